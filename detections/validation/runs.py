"""Validation runs: request, execute and recover them, and keep every result.

A run is created `queued`, and a worker claims it with a conditional update, so a
message delivered twice executes the run once. Results are written with the final
status in one transaction. A run whose worker died is failed with the reason by
`validations_recover`, which the worker calls at start and on a timer, and which
every new request and the `validate_detection` command call too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from detections.models import Detection, DetectionTest, TestResult, ValidationRun
from detections.pysigma.embedded import CompiledRule, compile_rule, engine_versions

from .embedded import EngineResult, run_rules
from .tuning import TuningPlan, attack_test_problem, tuned_result, tuning_plan

logger = logging.getLogger(__name__)


class ValidationUnavailable(Exception):
    """An engine that cannot run here, with the setting or fix that would enable it."""


@dataclass
class TestOutcome:
    """The result of one test before it is stored."""

    __test__ = False  # Not a pytest test class, despite the name.

    test: DetectionTest
    # Matches with the active tuning entries applied.
    matched_events: list[int]
    details: list[dict]
    error: str = ""
    # Matches without tuning; None when no entry is active, as they equal matched_events.
    raw_matched_events: list[int] | None = None
    # Per entry that suppressed events: its uuid, owner and the suppressed event positions.
    tuning: list[dict] = field(default_factory=list)
    # Why tuning fails the test, such as an entry that silenced part of an attack test.
    tuning_problem: str = ""

    @property
    def matches(self) -> int:
        return len(self.matched_events)

    @property
    def raw_matches(self) -> int:
        if self.raw_matched_events is None:
            return self.matches
        return len(self.raw_matched_events)

    @property
    def passed(self) -> bool:
        """Judge a known false positive test by its raw matches, any other test tuned.

        A known false positive test documents noise that the untuned detection raises,
        so it passes while that noise is still there. Its tuning rows show whether an
        entry silences it. Every other test is judged as the detection runs with its
        tuning, and fails when an entry suppressed part of an attack test.
        """
        if self.error or self.tuning_problem:
            return False
        matches = self.raw_matches if self.test.known_false_positive else self.matches
        if self.test.expect == DetectionTest.Expectation.SILENT:
            return matches == 0
        return matches >= self.test.min_matches


def validation_request(
    detection: Detection,
    *,
    engine: str = ValidationRun.Engine.EMBEDDED,
    trigger: str = ValidationRun.Trigger.COMMAND,
    user=None,
    enqueue: bool = True,
) -> ValidationRun:
    """Create a queued run for a detection and send it to a worker once committed."""
    if engine == ValidationRun.Engine.SPLUNK:
        from .splunk_runs import splunk_target

        target = splunk_target()
    else:
        target = "sqlite"
    validations_recover()
    run = ValidationRun.objects.create(
        detection=detection,
        engine=engine,
        target=target,
        trigger=trigger,
        requested_by=user if getattr(user, "is_authenticated", False) else None,
    )
    if enqueue:
        transaction.on_commit(lambda: validation_enqueue(run.pk))
    return run


def validation_enqueue(run_id: int) -> bool:
    """Send a run to the `validate` queue; return False when the broker is unreachable.

    A run that cannot be sent stays queued with the reason in `error`, and is sent
    again when a worker starts.
    """
    from detections.tasks import validate_run

    try:
        validate_run.delay(run_id)
    except Exception as exc:  # noqa: BLE001 - any publish failure must reach the run row
        logger.warning("broker unreachable, validation run %s stays queued: %s", run_id, exc)
        ValidationRun.objects.filter(pk=run_id, status=ValidationRun.Status.QUEUED).update(
            error=(
                f"The run could not be sent to a worker: {exc}. It stays queued and is sent "
                "when a worker starts; check CELERY_BROKER_URL and that the broker is running."
            )
        )
        return False
    ValidationRun.objects.filter(pk=run_id, status=ValidationRun.Status.QUEUED).exclude(error="").update(
        error=""
    )
    return True


def validation_execute(run_id: int, *, task_id: str = "", timeout_errors: tuple = ()) -> ValidationRun | None:
    """Run a queued validation run and store its results; return None if it was not claimable.

    A run already finished is left as it is, so executing a run twice changes nothing.
    """
    run = _claim(run_id, task_id)
    if run is None:
        return None
    logger.info("validation run %s of %s on %s started", run.pk, run.detection.slug, run.engine)
    try:
        outcomes, queries, versions = _execute(run)
    except ValidationUnavailable as exc:
        return _finish_error(run, str(exc))
    except timeout_errors:
        return _finish_error(
            run,
            f"The run exceeded its time limit of {settings.VALIDATION_SOFT_TIME_LIMIT} seconds "
            "(VALIDATION_SOFT_TIME_LIMIT).",
        )
    return _finish(run, outcomes, queries, versions)


def run_inline(detection: Detection, *, engine: str, trigger: str) -> ValidationRun:
    """Create a run and execute it in this process, without a worker."""
    run = validation_request(detection, engine=engine, trigger=trigger, enqueue=False)
    executed = validation_execute(run.pk, task_id="inline")
    return executed or ValidationRun.objects.get(pk=run.pk)


def validations_recover(*, requeue: bool = False, requeue_all: bool = False) -> list[int]:
    """Fail runs left `running` by a dead worker, and resend queued runs.

    A run counts as abandoned once it has run longer than the hard time limit plus a
    margin: by then Celery has killed the task, so no worker still owns it. With
    `requeue`, queued runs older than that are sent again; with `requeue_all`, every
    queued run is, as a starting worker does. Sending a run twice is harmless because
    only one worker can claim it.
    """
    now = timezone.now()
    cutoff = now - timedelta(
        seconds=settings.VALIDATION_HARD_TIME_LIMIT + settings.VALIDATION_ABANDONED_MARGIN
    )
    abandoned = list(
        ValidationRun.objects.filter(status=ValidationRun.Status.RUNNING, started_at__lt=cutoff)
        .values_list("pk", flat=True)
    )
    if abandoned:
        ValidationRun.objects.filter(pk__in=abandoned, status=ValidationRun.Status.RUNNING).update(
            status=ValidationRun.Status.ERROR,
            error=(
                "The worker running this validation stopped before it finished (killed, "
                "restarted or out of memory); run it again."
            ),
            finished_at=now,
        )
        logger.warning("failed %d abandoned validation runs: %s", len(abandoned), abandoned)
    if requeue or requeue_all:
        queued = ValidationRun.objects.filter(status=ValidationRun.Status.QUEUED)
        if not requeue_all:
            queued = queued.filter(created_at__lt=cutoff)
        for run_id in queued.values_list("pk", flat=True):
            if not validation_enqueue(run_id):
                break
    return abandoned


def latest_runs(detection_ids) -> dict[int, ValidationRun]:
    """Return the newest run of each detection, by detection id."""
    runs = (
        ValidationRun.objects.filter(detection_id__in=list(detection_ids))
        # The badges and summaries never show the queries and versions of a run, which
        # hold the full text of every query it ran.
        .defer("queries", "versions")
        .order_by("detection_id", "-created_at", "-pk")
    )
    latest: dict[int, ValidationRun] = {}
    for run in runs:
        latest.setdefault(run.detection_id, run)
    return latest


def _claim(run_id: int, task_id: str) -> ValidationRun | None:
    now = timezone.now()
    claimed = ValidationRun.objects.filter(pk=run_id, status=ValidationRun.Status.QUEUED).update(
        status=ValidationRun.Status.RUNNING, task_id=task_id, started_at=now
    )
    if not claimed and task_id:
        claimed = _resume(run_id, task_id, now)
    if not claimed:
        logger.info("validation run %s was not claimable (finished or taken)", run_id)
        return None
    return ValidationRun.objects.select_related("detection").get(pk=run_id)


def _resume(run_id: int, task_id: str, now) -> bool:
    """Resume a run whose message was redelivered after the worker running it died.

    The run keeps the start time of its first claim. A run that kills its worker on
    every attempt (out of memory, a crash in native code) is therefore failed once
    it has been running for the hard time limit plus the margin, instead of being
    redelivered for ever.

    NOTE: the limit covers all attempts together, so a long run resumed once after a
    worker restart can be failed by the recovery sweep before its second attempt ends.
    """
    running = ValidationRun.objects.filter(
        pk=run_id, status=ValidationRun.Status.RUNNING, task_id=task_id
    )
    cutoff = now - timedelta(
        seconds=settings.VALIDATION_HARD_TIME_LIMIT + settings.VALIDATION_ABANDONED_MARGIN
    )
    if running.filter(started_at__gte=cutoff).exists():
        logger.warning(
            "validation run %s resumed after its worker stopped (task %s)", run_id, task_id
        )
        return True
    failed = running.update(
        status=ValidationRun.Status.ERROR,
        error=(
            "The worker running this validation stopped on every attempt (killed, out of "
            f"memory or a crash) for {settings.VALIDATION_HARD_TIME_LIMIT} seconds "
            "(VALIDATION_HARD_TIME_LIMIT); not retried. Check the worker log, then run it again."
        ),
        finished_at=now,
    )
    if failed:
        logger.warning("validation run %s failed: its worker stopped on every attempt", run_id)
    return False


def _execute(run: ValidationRun) -> tuple[list[TestOutcome], list[dict], dict]:
    # Tests that import_atomics added describe an Atomic Red Team test but carry no
    # recorded events, so only authored tests are run.
    tests = list(run.detection.tests.filter(origin=DetectionTest.Origin.AUTHORED))
    if not tests:
        raise ValidationUnavailable(
            f"The detection {run.detection.slug} has no tests with recorded events "
            "(imported Atomic Red Team tests have none); add one with "
            "`python manage.py add_test` first."
        )
    rules = compiled_rules(run.detection)
    plan = tuning_plan(run.detection)
    if run.engine == ValidationRun.Engine.SPLUNK:
        from .splunk_runs import splunk_execute

        return splunk_execute(run, tests, rules, plan)
    queries = [_query_record(rule) for rule in rules]
    if plan is not None:
        queries += [_query_record(rule, tuned=True) for rule in plan.tuned]
    outcomes = [embedded_outcome(test, rules, plan) for test in tests]
    return outcomes, queries, engine_versions()


def _query_record(rule: CompiledRule, *, tuned: bool = False) -> dict:
    return {
        "name": f"{rule.title} (with tuning)" if tuned else rule.title,
        "rule_id": rule.rule_id,
        "language": "sqlite",
        "text": "\n".join(rule.queries),
        "error": rule.error,
        "tuned": tuned,
    }


def compiled_rules(detection: Detection) -> list[CompiledRule]:
    """Compile every Sigma rule of a detection for the embedded engine."""
    return [
        compile_rule(rule.yaml_text, source=f"{detection.slug}/{rule.filename}")
        for rule in detection.sigma_rules.all()
    ]


def embedded_outcome(
    test: DetectionTest, rules: list[CompiledRule], plan: TuningPlan | None = None
) -> TestOutcome:
    """Run the compiled rules over one test's recorded events, with tuning when `plan` is set."""
    if not test.recorded_events:
        return TestOutcome(
            test, [], [],
            error="The test has no recorded events; attach them with `python manage.py add_test`.",
        )
    if plan is None:
        result = run_rules(rules, test.recorded_events)
        return TestOutcome(
            test,
            sorted(result.matched),
            _embedded_details(result, test),
            error=_embedded_error(result),
        )
    probes = [probe.compiled for probe in plan.probes]
    combined = run_rules(rules + plan.tuned + probes, test.recorded_events)
    raw, tuned, probed = _split(combined, [len(rules), len(plan.tuned), len(probes)])
    tuned_outcome = tuned_result(plan, raw, tuned, probed)
    details = _embedded_details(raw, test)
    for detail in details:
        tuned_events = tuned_outcome.tuned_by_rule.get(detail["rule_id"], set())
        detail["tuned_matched_events"] = sorted(tuned_events)
    error = "\n".join(filter(None, [_embedded_error(raw), *tuned_outcome.errors]))
    return TestOutcome(
        test,
        sorted(tuned_outcome.matched),
        details,
        error=error,
        raw_matched_events=sorted(raw.matched),
        tuning=tuned_outcome.entries,
        tuning_problem=attack_test_problem(test, tuned_outcome.entries),
    )


def _split(result: EngineResult, sizes: list[int]) -> list[EngineResult]:
    """Split one engine result over several rule lists back into one result per list."""
    parts = []
    start = 0
    for size in sizes:
        rules = result.rules[start : start + size]
        read = any(outcome.sources for outcome in rules)
        unread = {} if read else result.unread_sources
        parts.append(EngineResult(rules, result.event_count, unread))
        start += size
    return parts


def _embedded_details(result: EngineResult, test: DetectionTest) -> list[dict]:
    branches = {
        str(branch.sigma_rule.rule_id): branch.name
        for query in test.detection.queries.all()
        for branch in query.branches.all()
        if branch.sigma_rule_id
    }
    return [
        {
            "engine": "embedded",
            "name": outcome.title,
            "rule_id": outcome.rule_id,
            "branch": branches.get(outcome.rule_id, ""),
            "matched_events": sorted(outcome.matched),
            "sources": outcome.sources,
            "errors": outcome.errors,
        }
        for outcome in result.rules
    ]


def _embedded_error(result: EngineResult) -> str:
    problems = list(result.errors)
    if result.rules_applied == 0:
        sources = ", ".join(f"{count} {label}" for label, count in result.unread_sources.items())
        problems.append(
            f"No rule of the detection reads these events ({sources}): the recording does "
            "not fit the rules' log sources."
        )
    return "\n".join(problems)


def _finish(
    run: ValidationRun, outcomes: list[TestOutcome], queries: list[dict], versions: dict
) -> ValidationRun:
    results = [
        TestResult(
            run=run,
            test=outcome.test,
            position=outcome.test.position,
            name=outcome.test.name,
            expect=outcome.test.expect,
            min_matches=outcome.test.min_matches,
            known_false_positive=outcome.test.known_false_positive,
            event_count=len(outcome.test.recorded_events),
            matches=outcome.matches,
            matched_events=outcome.matched_events,
            raw_matches=outcome.raw_matches,
            raw_matched_events=(
                outcome.matched_events
                if outcome.raw_matched_events is None
                else outcome.raw_matched_events
            ),
            tuning=outcome.tuning,
            details=outcome.details,
            passed=outcome.passed,
            error=outcome.error,
        )
        for outcome in outcomes
    ]
    passed = sum(1 for result in results if result.passed)
    if any(result.error for result in results):
        status = ValidationRun.Status.ERROR
    elif passed == len(results):
        status = ValidationRun.Status.PASSED
    else:
        status = ValidationRun.Status.FAILED
    with transaction.atomic():
        updated = ValidationRun.objects.filter(pk=run.pk, status=ValidationRun.Status.RUNNING).update(
            status=status,
            queries=queries,
            versions=versions,
            tests_total=len(results),
            tests_passed=passed,
            finished_at=timezone.now(),
        )
        if not updated:
            logger.warning("validation run %s was finished by another process; results dropped", run.pk)
            return ValidationRun.objects.get(pk=run.pk)
        TestResult.objects.filter(run=run).delete()
        TestResult.objects.bulk_create(results)
    run.refresh_from_db()
    logger.info(
        "validation run %s of %s finished: %s, %d of %d tests passed",
        run.pk, run.detection.slug, run.status, passed, len(results),
    )
    return run


def _finish_error(run: ValidationRun, message: str) -> ValidationRun:
    ValidationRun.objects.filter(pk=run.pk, status=ValidationRun.Status.RUNNING).update(
        status=ValidationRun.Status.ERROR, error=message, finished_at=timezone.now()
    )
    logger.warning("validation run %s of %s failed: %s", run.pk, run.detection.slug, message)
    run.refresh_from_db()
    return run
