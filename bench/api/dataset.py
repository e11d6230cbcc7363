"""Fill the benchmark database with copies of the shipped detection, in bulk.

Run with Django configured for the benchmark database, after `migrate` and
`load_content`: `python -m bench.api.dataset --count 3000`. Each copy gets its
own slug, UUID, title, severity, status and ATT&CK technique, and copies of the
seed's queries, branches, Sigma rules with their renders, false positives, tests,
expected telemetry and its newest validation run.
"""

import argparse
import random
import time
import uuid

import django

django.setup()

from django.db import connection, transaction  # noqa: E402

from detections.models import (  # noqa: E402
    AttackMapping,
    Detection,
    DetectionBranch,
    DetectionDataSource,
    DetectionTest,
    ExpectedTelemetry,
    FalsePositive,
    Query,
    Render,
    SigmaRule,
    Technique,
    ValidationRun,
)

SEED_SLUG = "archive-via-library-splunk"
SEED = 20261204
PREFIX = "bench-"


def copy_row(row, **changes):
    """Return an unsaved copy of a model instance with the given fields changed."""
    clone = type(row)()
    for field in row._meta.concrete_fields:
        if field.primary_key:
            continue
        setattr(clone, field.attname, getattr(row, field.attname))
    for name, value in changes.items():
        setattr(clone, name, value)
    return clone


def create_copies(count: int) -> dict[str, int]:
    random_source = random.Random(SEED)
    seed = Detection.objects.get(slug=SEED_SLUG)
    techniques = list(Technique.objects.filter(parent__isnull=True).prefetch_related("tactics"))
    techniques = [technique for technique in techniques if technique.tactics.exists()]
    mappings = list(seed.mappings.all())
    data_sources = list(seed.data_sources.all())
    queries = list(seed.queries.all())
    branches = list(DetectionBranch.objects.filter(query__detection=seed))
    rules = list(seed.sigma_rules.all())
    renders = list(Render.objects.filter(sigma_rule__detection=seed))
    false_positives = list(seed.false_positives.all())
    tests = list(seed.tests.all())
    telemetry = list(ExpectedTelemetry.objects.filter(test__detection=seed))
    run = seed.validation_runs.first()
    levels = Detection.Level.values
    # Every tenth detection is in review and every tenth in draft, so anonymous
    # clients see 80 %; run.py's detail paths (multiples of 30) are all published.
    hidden = {8: Detection.Status.REVIEW, 9: Detection.Status.DRAFT}

    detections = Detection.objects.bulk_create(
        [
            copy_row(
                seed,
                uuid=uuid.uuid4(),
                slug=f"{PREFIX}{number:05d}",
                title=f"{seed.title} copy {number:05d}",
                severity=random_source.choice(levels),
                confidence=random_source.choice(levels),
                status=hidden.get(number % 10, Detection.Status.PUBLISHED),
                source_path="",
                source_hash="",
                loaded_fingerprint="",
            )
            for number in range(count)
        ],
        batch_size=500,
    )
    rows: dict[str, list] = {name: [] for name in ("mappings", "sources", "fps", "runs")}
    new_queries, new_rules, new_tests = [], [], []
    for detection in detections:
        technique = random_source.choice(techniques)
        for mapping in mappings:
            rows["mappings"].append(copy_row(mapping, detection_id=detection.pk))
        rows["mappings"].append(
            AttackMapping(
                detection=detection,
                tactic=technique.tactics.all()[0],
                technique=technique,
            )
        )
        rows["sources"] += [copy_row(item, detection_id=detection.pk) for item in data_sources]
        rows["fps"] += [copy_row(item, detection_id=detection.pk) for item in false_positives]
        new_queries += [(item, copy_row(item, detection_id=detection.pk)) for item in queries]
        new_rules += [
            (item, copy_row(item, detection_id=detection.pk, rule_id=uuid.uuid4()))
            for item in rules
        ]
        new_tests += [(item, copy_row(item, detection_id=detection.pk)) for item in tests]
        if run is not None:
            rows["runs"].append(copy_row(run, detection_id=detection.pk))

    AttackMapping.objects.bulk_create(rows["mappings"], batch_size=2000, ignore_conflicts=True)
    DetectionDataSource.objects.bulk_create(rows["sources"], batch_size=2000)
    FalsePositive.objects.bulk_create(rows["fps"], batch_size=2000)
    ValidationRun.objects.bulk_create(rows["runs"], batch_size=2000)
    Query.objects.bulk_create([clone for _, clone in new_queries], batch_size=2000)
    SigmaRule.objects.bulk_create([clone for _, clone in new_rules], batch_size=2000)
    DetectionTest.objects.bulk_create([clone for _, clone in new_tests], batch_size=500)

    query_copies = _copies_by_original(new_queries)
    rule_copies = _copies_by_original(new_rules)
    test_copies = _copies_by_original(new_tests)
    new_branches = []
    for branch in branches:
        rule_targets = rule_copies.get(branch.sigma_rule_id)
        for index, query in enumerate(query_copies[branch.query_id]):
            rule_id = rule_targets[index].pk if rule_targets else None
            new_branches.append(copy_row(branch, query_id=query.pk, sigma_rule_id=rule_id))
    DetectionBranch.objects.bulk_create(new_branches, batch_size=2000)
    new_renders = [
        copy_row(render, sigma_rule_id=rule.pk)
        for render in renders
        for rule in rule_copies[render.sigma_rule_id]
    ]
    Render.objects.bulk_create(new_renders, batch_size=2000)
    new_telemetry = [
        copy_row(item, test_id=test.pk) for item in telemetry for test in test_copies[item.test_id]
    ]
    ExpectedTelemetry.objects.bulk_create(new_telemetry, batch_size=2000)
    return {
        "detections": len(detections),
        "mappings": len(rows["mappings"]),
        "sigma_rules": len(new_rules),
        "renders": len(new_renders),
        "tests": len(new_tests),
        "branches": len(new_branches),
        "validation_runs": len(rows["runs"]),
    }


def _copies_by_original(pairs) -> dict[int, list]:
    copies: dict[int, list] = {}
    for original, clone in pairs:
        copies.setdefault(original.pk, []).append(clone)
    return copies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=3000, help="detections to create")
    args = parser.parse_args()
    started = time.perf_counter()
    with transaction.atomic():
        counts = create_copies(args.count)
    if connection.vendor == "postgresql":
        # Planner statistics for the new rows, as autovacuum would gather them later;
        # without them PostgreSQL scans all renders for one detection's summary.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    elapsed = time.perf_counter() - started
    print(" ".join(f"{name}={value}" for name, value in counts.items()), f"seconds={elapsed:.1f}")


if __name__ == "__main__":
    main()
