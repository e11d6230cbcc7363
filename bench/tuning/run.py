"""Time the shipped detection's validation runs with and without tuning, and the filter building.

    python bench/tuning/run.py [--repeats N]

Loads content/ into a throwaway SQLite database and runs the embedded engine over the
shipped detection's 16 tests, first with its tuning entries active and then with all
of them disabled. With entries, each test's events go through the rules as written,
the filtered rules and one selection query per entry and rule. Also times
`filters_by_rule` and the detail page's tuning context. Prints one JSON line with the
median seconds of each step.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs per measurement")
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        os.environ["DATABASE_URL"] = f"sqlite:///{folder}/bench.sqlite3"
        os.environ["CELERY_BROKER_URL"] = "memory://"
        sys.path.insert(0, str(REPO_ROOT))
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
        import django

        django.setup()
        print(json.dumps(measure(options.repeats)))
    return 0


def measure(repeats: int) -> dict:
    from django.core.management import call_command

    from detections.models import Detection, SigmaRule
    from detections.tuning import filters_by_rule
    from detections.tuning_page import tuning_context
    from detections.validation.runs import run_inline

    call_command("migrate", verbosity=0)
    call_command("load_content", str(REPO_ROOT / "content"), verbosity=0)
    detection = Detection.objects.get(slug="archive-via-library-splunk")
    rules = list(SigmaRule.objects.filter(detection=detection))

    def timed(step) -> float:
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            step()
            times.append(time.perf_counter() - started)
        return round(statistics.median(times), 4)

    def validate() -> None:
        run_inline(Detection.objects.get(pk=detection.pk), engine="embedded", trigger="command")

    figures = {
        "entries": detection.tuning_entries.count(),
        "tests": detection.tests.count(),
        "validation_with_tuning_s": timed(validate),
        "filters_by_rule_s": timed(lambda: filters_by_rule(rules)),
        "page_tuning_context_s": timed(
            lambda: tuning_context(Detection.objects.get(pk=detection.pk))
        ),
    }
    detection.tuning_entries.update(enabled=False)
    figures["validation_without_tuning_s"] = timed(validate)
    return figures


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
