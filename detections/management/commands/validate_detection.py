import json
import time
from xml.etree import ElementTree

from django.core.management.base import BaseCommand, CommandError

from detections.models import Detection, DetectionTest, ValidationRun
from detections.validation.runs import (
    ValidationUnavailable,
    run_inline,
    validation_request,
    validations_recover,
)


class Command(BaseCommand):
    help = (
        "Run the tests of detections and report the results. Exits 0 only when every "
        "test of every detection passed, so it fits a CI pipeline. Runs on the workers "
        "and waits for them, or in this process with --inline."
    )

    def add_arguments(self, parser):
        parser.add_argument("slugs", nargs="*", help="Detection slugs.")
        parser.add_argument(
            "--all",
            action="store_true",
            dest="all_detections",
            help="Every detection that has tests, whatever its status.",
        )
        parser.add_argument(
            "--engine",
            choices=[choice.value for choice in ValidationRun.Engine],
            default=ValidationRun.Engine.EMBEDDED,
            help="embedded (default): Sigma rules in SQLite; splunk: the configured Splunk.",
        )
        parser.add_argument(
            "--format",
            choices=["table", "json", "junit"],
            default="table",
            help="Output: a table (default), one JSON object, or JUnit XML for CI systems.",
        )
        parser.add_argument(
            "--inline", action="store_true", help="Run in this process instead of on a worker."
        )
        parser.add_argument(
            "--wait",
            type=float,
            default=300,
            help="Seconds to wait for the workers to finish (default 300).",
        )

    def handle(self, *args, slugs, all_detections, engine, format, inline, wait, **options):
        detections = self._detections(slugs, all_detections)
        if not inline:
            validations_recover(requeue=True)
        try:
            if inline:
                runs = [
                    run_inline(detection, engine=engine, trigger=ValidationRun.Trigger.COMMAND)
                    for detection in detections
                ]
            else:
                requested = [
                    validation_request(detection, engine=engine, trigger=ValidationRun.Trigger.COMMAND)
                    for detection in detections
                ]
                self._check_sent(requested)
                runs = self._wait(requested, wait)
        except ValidationUnavailable as exc:
            raise CommandError(str(exc)) from None
        reports = [run_report(run) for run in runs]
        if format == "json":
            self.stdout.write(json.dumps(
                {"engine": engine, "passed": all(r["passed"] for r in reports), "detections": reports},
                indent=2,
            ))
        elif format == "junit":
            self.stdout.write(junit_xml(reports))
        else:
            self._table(reports)
        if not all(report["passed"] for report in reports):
            raise SystemExit(1)

    def _detections(self, slugs: list[str], all_detections: bool) -> list[Detection]:
        if all_detections and slugs:
            raise CommandError("Give detection slugs or --all, not both.")
        if all_detections:
            authored = Detection.objects.filter(tests__origin=DetectionTest.Origin.AUTHORED)
            detections = list(authored.distinct().order_by("slug"))
            if not detections:
                raise CommandError("No detection has tests; add one with `python manage.py add_test`.")
            return detections
        if not slugs:
            raise CommandError("Give one or more detection slugs, or --all.")
        found = {d.slug: d for d in Detection.objects.filter(slug__in=slugs)}
        missing = [slug for slug in slugs if slug not in found]
        if missing:
            raise CommandError(f"No detection with the slug {', '.join(map(repr, missing))}.")
        return [found[slug] for slug in dict.fromkeys(slugs)]

    def _check_sent(self, runs: list[ValidationRun]) -> None:
        for run in runs:
            run.refresh_from_db(fields=["status", "error"])
            if run.status == ValidationRun.Status.QUEUED and run.error:
                raise CommandError(f"{run.error} Or run the tests here with --inline.")

    def _wait(self, runs: list[ValidationRun], wait: float) -> list[ValidationRun]:
        deadline = time.monotonic() + wait
        ids = [run.pk for run in runs]
        while True:
            current = {run.pk: run for run in ValidationRun.objects.filter(pk__in=ids)}
            if all(run.status in ValidationRun.TERMINAL for run in current.values()):
                return [current[pk] for pk in ids]
            if time.monotonic() >= deadline:
                waiting = [pk for pk in ids if current[pk].status not in ValidationRun.TERMINAL]
                raise CommandError(
                    f"Validation runs {waiting} did not finish within {wait:g} seconds. Start a "
                    "worker (celery -A portal worker -Q render,validate) or use --inline."
                )
            time.sleep(0.2)

    def _table(self, reports: list[dict]) -> None:
        for report in reports:
            verdict = "PASSED" if report["passed"] else report["status"].upper()
            self.stdout.write(
                f"{report['slug']}  {verdict}  ({report['engine']}, run {report['run_id']})"
            )
            if report["error"]:
                self.stdout.write(f"  error: {report['error']}")
            for test in report["tests"]:
                mark = "pass" if test["passed"] else "FAIL"
                expected = (
                    "silent" if test["expect"] == "silent" else f"fires >= {test['min_matches']}"
                )
                before = ""
                if test["raw_matches"] != test["matches"]:
                    before = f" ({test['raw_matches']} before tuning)"
                self.stdout.write(
                    f"  {mark}  {test['name']}  expect {expected}, matched {test['matches']}"
                    + before
                    + ("  [known false positive]" if test["known_false_positive"] else "")
                )
                if test["error"]:
                    for line in test["error"].splitlines():
                        self.stdout.write(f"        {line}")
                for problem in tuning_problems(test):
                    self.stdout.write(f"        {problem}")


def run_report(run: ValidationRun) -> dict:
    """Summarize a finished run as the JSON the command prints."""
    tests = [
        {
            "name": result.name,
            "expect": result.expect,
            "min_matches": result.min_matches,
            "matches": result.matches,
            "passed": result.passed,
            "error": result.error or None,
            "known_false_positive": result.known_false_positive,
            "raw_matches": result.raw_matches,
            "tuning": result.tuning,
        }
        for result in run.results.all()
    ]
    return {
        "slug": run.detection.slug,
        "run_id": run.pk,
        "engine": run.engine,
        "status": run.status,
        "passed": run.status == ValidationRun.Status.PASSED,
        "error": run.error or None,
        "tests": tests,
    }


def tuning_problems(test: dict) -> list[str]:
    """Return a line per tuning entry that suppressed events of an attack test."""
    return [
        f"tuning entry {row['entry']} ({row['owner']}) {row['problem']}"
        for row in test["tuning"]
        if row.get("problem")
    ]


def junit_xml(reports: list[dict]) -> str:
    """Write the reports as JUnit XML: one test suite per detection, one case per test."""
    suites = ElementTree.Element("testsuites", name="detection validation")
    for report in reports:
        failures = sum(1 for test in report["tests"] if not test["passed"] and not test["error"])
        errors = sum(1 for test in report["tests"] if test["error"]) + (1 if report["error"] else 0)
        suite = ElementTree.SubElement(
            suites,
            "testsuite",
            name=report["slug"],
            tests=str(len(report["tests"])),
            failures=str(failures),
            errors=str(errors),
        )
        if report["error"]:
            case = ElementTree.SubElement(suite, "testcase", classname=report["slug"], name="run")
            ElementTree.SubElement(case, "error", message=report["error"])
        for test in report["tests"]:
            case = ElementTree.SubElement(suite, "testcase", classname=report["slug"], name=test["name"])
            if test["error"]:
                ElementTree.SubElement(case, "error", message=test["error"])
            elif tuning_problems(test):
                ElementTree.SubElement(case, "failure", message="\n".join(tuning_problems(test)))
            elif not test["passed"]:
                expected = "no match" if test["expect"] == "silent" else f"at least {test['min_matches']}"
                ElementTree.SubElement(
                    case,
                    "failure",
                    message=f"expected {expected}, matched {test['matches']} events",
                )
    return ElementTree.tostring(suites, encoding="unicode", xml_declaration=True)
