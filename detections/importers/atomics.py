"""Importing Atomic Red Team tests as tests of the detections that map to their technique.

Atomic Red Team keeps one YAML file per technique, `atomics/T1003.001/T1003.001.yaml`,
with a list of `atomic_tests`. Each test is linked to every detection mapped to the
file's technique. A test of a technique (T1003) goes to detections mapped to T1003 or
to any of its sub-techniques. A test of a sub-technique (T1003.001) goes to detections
mapped to that sub-technique. The API's `technique` filter matches the same way.

The portal stores the test's GUID, name, description, platforms, executor name, whether
it needs elevation, and its input arguments. The commands (`executor.command`,
`cleanup_command`, dependencies) are never stored, so nothing in the portal can run
them. A re-import updates tests whose fields changed, links tests to detections mapped
since, and unlinks them from detections no longer mapped to the technique.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction
from django.db.models import F, Max

from detections.content.values import json_problems
from detections.models import AttackMapping, Detection, DetectionTest
from detections.versioning import revisions_bulk_record

from .progress import Progress
from .report import ImportSummary
from .sigma import decode_text
from .sigma_checks import control_character
from .sources import ImportLimits, SourceFile, sources_from_paths
from .yamlread import YAMLReadError, read_documents

logger = logging.getLogger(__name__)

TECHNIQUE_FILE = re.compile(r"T\d{4}(?:\.\d{3})?\.ya?ml", re.IGNORECASE)
TECHNIQUE_ID = re.compile(r"T\d{4}(?:\.\d{3})?")
MAX_NAME = 300  # DetectionTest.name
MAX_PLATFORM = 50  # DetectionTest.platform and .executor
STORED_FIELDS = [
    "name",
    "description",
    "platform",
    "platforms",
    "executor",
    "executor_summary",
    "input_arguments",
]
ELEVATION_SUMMARY = "Needs administrator or root rights."
# Rows per query, well under SQLite's limit on query parameters.
QUERY_CHUNK = 500


@dataclass
class AtomicTest:
    """The stored fields of one atomic test, and the technique of its file."""

    technique: str
    guid: uuid.UUID
    values: dict
    file: str


@dataclass
class AtomicsSummary(ImportSummary):
    """The import summary, plus how many tests were read and how many matched no detection."""

    tests_read: int = 0
    tests_unmatched: int = 0
    links_removed: int = 0

    def text_lines(self, *, max_warnings: int = 20) -> list[str]:
        lines = super().text_lines(max_warnings=max_warnings)
        lines.insert(
            1,
            f"atomic tests read: {self.tests_read}, matching no detection: "
            f"{self.tests_unmatched}, links removed: {self.links_removed}",
        )
        return lines


def import_atomics(paths: list[Path], *, progress: Progress | None = None) -> AtomicsSummary:
    """Import Atomic Red Team technique files (an atomics folder or single files)."""
    progress = progress or Progress(None)
    limits = ImportLimits.from_settings()
    summary = AtomicsSummary()
    sources = [
        source
        for source in sources_from_paths(paths, limits)
        if _is_technique_file(source, paths)
    ]
    logger.info("Atomic Red Team import started: %d files", len(sources))
    tests: list[AtomicTest] = []
    progress.start("reading", len(sources))
    for source in sources:
        progress.advance()
        tests += read_atomics_file(source, limits, summary)
    progress.finish()
    tests = _without_repeated_guids(tests, summary)
    summary.tests_read = len(tests)
    with transaction.atomic():
        _write(tests, summary)
    logger.info(
        "Atomic Red Team import finished: %d created, %d updated, %d unchanged, %d files failed",
        summary.created,
        summary.updated,
        summary.unchanged,
        len(summary.failed),
    )
    return summary


def _is_technique_file(source: SourceFile, paths: list[Path]) -> bool:
    """Keep files named like T1003.001.yaml, and YAML files named on the command line.

    The atomics folder also contains index files of every technique (Indexes/*.yaml),
    which are not tests.
    """
    if TECHNIQUE_FILE.fullmatch(Path(source.path).name):
        return True
    return any(path.is_file() and source.label == str(path) for path in paths)


def read_atomics_file(
    source: SourceFile, limits: ImportLimits, summary: ImportSummary
) -> list[AtomicTest]:
    """Read one technique file; on any problem record the failure and return no test."""
    if source.error is not None:
        summary.fail(source.label, source.error)
        return []
    try:
        documents = read_documents(
            decode_text(source.data), max_depth=limits.max_nesting, max_items=limits.max_values
        )
    except YAMLReadError as exc:
        summary.fail(source.label, exc.message, exc.line)
        return []
    documents = [document for document in documents if document.value is not None]
    if len(documents) != 1 or not isinstance(documents[0].value, dict):
        summary.fail(source.label, "an Atomic Red Team file is one YAML mapping")
        return []

    document = documents[0]
    data = document.value
    technique = data.get("attack_technique")
    if not isinstance(technique, str) or not TECHNIQUE_ID.fullmatch(technique.strip().upper()):
        summary.fail(
            source.label,
            f"attack_technique {technique!r} is not an ATT&CK technique id such as T1003.001",
            document.line_of(("attack_technique",)),
        )
        return []
    technique = technique.strip().upper()

    entries = data.get("atomic_tests")
    if not isinstance(entries, list):
        line = document.line_of(("atomic_tests",))
        summary.fail(source.label, "atomic_tests must be a list", line)
        return []
    tests = []
    for index, entry in enumerate(entries):
        try:
            tests.append(_atomic_test(entry, technique, source.label))
        except ValueError as exc:
            line = document.line_of(("atomic_tests", index))
            summary.fail(source.label, f"atomic_tests[{index}]: {exc}", line)
            return []
    return tests


def _atomic_test(entry: object, technique: str, label: str) -> AtomicTest:
    if not isinstance(entry, dict):
        raise ValueError("a test must be a mapping")
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValueError("name must be a non-empty string")
    if len(name) > MAX_NAME:
        raise ValueError(f"name is {len(name)} characters long; the maximum is {MAX_NAME}")
    if control_character(name):
        raise ValueError("name contains a control character or line break")

    try:
        guid = uuid.UUID(str(entry.get("auto_generated_guid")))
    except ValueError as exc:
        value = entry.get("auto_generated_guid")
        raise ValueError(f"auto_generated_guid {value!r} is not a UUID") from exc
    description = entry.get("description") or ""
    if not isinstance(description, str):
        raise ValueError("description must be a string")

    platforms = entry.get("supported_platforms") or []
    if not isinstance(platforms, list) or not all(isinstance(item, str) for item in platforms):
        raise ValueError("supported_platforms must be a list of strings")
    if any(len(item) > MAX_PLATFORM for item in platforms):
        raise ValueError(f"a platform name is longer than {MAX_PLATFORM} characters")

    executor = entry.get("executor") or {}
    if not isinstance(executor, dict):
        raise ValueError("executor must be a mapping")
    executor_name = executor.get("name") or ""
    if not isinstance(executor_name, str) or len(executor_name) > MAX_PLATFORM:
        raise ValueError(f"executor.name must be a string of at most {MAX_PLATFORM} characters")

    arguments = entry.get("input_arguments") or {}
    if not isinstance(arguments, dict):
        raise ValueError("input_arguments must be a mapping")
    problems = json_problems(arguments, "input_arguments")
    if problems:
        where, message = problems[0]
        raise ValueError(f"{where}: {message}")

    return AtomicTest(
        technique=technique,
        guid=guid,
        values={
            "name": name,
            "description": description,
            "platform": platforms[0] if platforms else "",
            "platforms": platforms,
            "executor": executor_name,
            "executor_summary": (
                ELEVATION_SUMMARY if executor.get("elevation_required") is True else ""
            ),
            "input_arguments": arguments,
        },
        file=label,
    )


def _without_repeated_guids(tests: list[AtomicTest], summary: ImportSummary) -> list[AtomicTest]:
    """Leave out every test whose GUID another test also has, reporting each file."""
    files: dict[uuid.UUID, list[str]] = defaultdict(list)
    for test in tests:
        files[test.guid].append(test.file)
    repeated = {guid for guid, labels in files.items() if len(labels) > 1}
    for guid in sorted(repeated, key=str):
        for label in dict.fromkeys(files[guid]):
            summary.fail(
                label,
                f"the test GUID {guid} appears more than once in this import; "
                "those tests were not imported",
            )
    return [test for test in tests if test.guid not in repeated]


def _write(tests: list[AtomicTest], summary: AtomicsSummary) -> None:
    by_technique = _detections_by_technique()
    wanted: dict[tuple[int, uuid.UUID], AtomicTest] = {}
    for test in tests:
        detections = by_technique.get(test.technique, set())
        if not detections:
            summary.tests_unmatched += 1
        for detection_pk in detections:
            wanted[(detection_pk, test.guid)] = test

    guids = list({test.guid for test in tests})
    stored: dict[tuple[int, uuid.UUID], DetectionTest] = {}
    authored: set[tuple[int, uuid.UUID]] = set()
    for start in range(0, len(guids), QUERY_CHUNK):
        rows = DetectionTest.objects.filter(atomic_guid__in=guids[start : start + QUERY_CHUNK])
        for row in rows.only("pk", "detection_id", "atomic_guid", "origin", *STORED_FIELDS):
            key = (row.detection_id, row.atomic_guid)
            if row.origin == DetectionTest.Origin.ATOMIC_RED_TEAM:
                stored[key] = row
            else:
                authored.add(key)

    stale = [row.pk for key, row in stored.items() if key not in wanted]
    for start in range(0, len(stale), QUERY_CHUNK):
        DetectionTest.objects.filter(pk__in=stale[start : start + QUERY_CHUNK]).delete()
    summary.links_removed = len(stale)

    next_position = _next_positions({detection_pk for detection_pk, _ in wanted})
    creates, updates = [], []
    # Sorted, so tests get the same positions on every database.
    ordered = sorted(
        wanted.items(),
        key=lambda item: (item[0][0], item[1].technique, item[1].values["name"]),
    )
    for key, test in ordered:
        if key in authored:
            # The detection's own content already describes this test; that one wins.
            summary.unchanged += 1
            continue
        row = stored.get(key)
        if row is None:
            detection_pk = key[0]
            creates.append(
                DetectionTest(
                    detection_id=detection_pk,
                    position=next_position[detection_pk],
                    atomic_guid=test.guid,
                    origin=DetectionTest.Origin.ATOMIC_RED_TEAM,
                    **test.values,
                )
            )
            next_position[detection_pk] += 1
        elif any(getattr(row, name) != test.values[name] for name in STORED_FIELDS):
            for name in STORED_FIELDS:
                setattr(row, name, test.values[name])
            updates.append(row)
        else:
            summary.unchanged += 1
    DetectionTest.objects.bulk_create(creates, batch_size=QUERY_CHUNK)
    DetectionTest.objects.bulk_update(updates, STORED_FIELDS, batch_size=QUERY_CHUNK)
    summary.created += len(creates)
    summary.updated += len(updates)
    changed = {row.detection_id for row in creates + updates}
    changed |= {key[0] for key, row in stored.items() if key not in wanted}
    _revisions_record(sorted(changed))


def _revisions_record(detection_pks: list[int]) -> None:
    """Raise the revision of detections whose tests changed and store them in history."""
    for start in range(0, len(detection_pks), QUERY_CHUNK):
        pks = detection_pks[start : start + QUERY_CHUNK]
        Detection.objects.filter(pk__in=pks).update(revision=F("revision") + 1)
        revisions_bulk_record(Detection, dict.fromkeys(pks, "import_atomics"))


def _detections_by_technique() -> dict[str, set[int]]:
    """Return the pks of detections mapped to each technique and sub-technique id.

    A detection mapped to a sub-technique also counts as mapped to its technique.
    """
    found: dict[str, set[int]] = defaultdict(set)
    rows = AttackMapping.objects.values_list(
        "detection_id", "technique__attack_id", "subtechnique__attack_id"
    )
    for detection_pk, technique, subtechnique in rows:
        found[technique].add(detection_pk)
        if subtechnique:
            found[subtechnique].add(detection_pk)
    return found


def _next_positions(detection_pks: set[int]) -> dict[int, int]:
    positions = defaultdict(int)
    pks = sorted(detection_pks)
    for start in range(0, len(pks), QUERY_CHUNK):
        rows = (
            DetectionTest.objects.filter(detection_id__in=pks[start : start + QUERY_CHUNK])
            .values("detection_id")
            .annotate(last=Max("position"))
        )
        for row in rows:
            positions[row["detection_id"]] = row["last"] + 1
    return positions

