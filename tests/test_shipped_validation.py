"""The shipped T1560.002 tests, validated on the embedded engine as a worker would."""

import json

import pytest

from detections.models import ValidationRun
from detections.validation.runs import validation_execute, validation_request
from tests.conftest import CONTENT_DIR, SEED_SLUG

ATOMIC_GUIDS = {
    "391f5298-b12d-4636-8482-35d9c17d53a8",
    "c75612b2-9de0-4d7c-879c-10d7b077072d",
    "001a042b-859f-44d9-bf81-fd1c4e2200b0",
    "e86f1b4b-fcc1-4a2a-ae10-b49da01458db",
}
# The one expectation the detection does not meet: decompression fires the
# PowerShell branch. The tuning notes record it.
KNOWN_FAILURE = "PowerShell GZipStream Decompression of a Downloaded File"


@pytest.fixture
def shipped_run(seed_detection) -> ValidationRun:
    run = validation_request(seed_detection, enqueue=False)
    return validation_execute(run.pk, task_id="test")


def test_shipped_tests_have_events(seed_detection):
    tests = list(seed_detection.tests.all())

    assert len(tests) == 16
    assert all(test.recorded_events for test in tests)


def test_shipped_atomic_guids(seed_detection):
    guids = {str(test.atomic_guid) for test in seed_detection.tests.exclude(atomic_guid=None)}

    assert guids == ATOMIC_GUIDS


def test_shipped_results_as_expected(shipped_run):
    results = {result.name: result for result in shipped_run.results.all()}

    assert shipped_run.status == ValidationRun.Status.FAILED
    assert all(result.error == "" for result in results.values())
    assert results[KNOWN_FAILURE].passed is False
    assert results[KNOWN_FAILURE].matches == 1
    passed = {name for name, result in results.items() if result.passed}
    assert passed == set(results) - {KNOWN_FAILURE}


# Each known false positive test and the shipped tuning entry that silences it.
FALSE_POSITIVE_ENTRIES = {
    "Scheduled Python ETL Job Writes Gzip Exports to ProgramData": {
        "3c1d6f0e-5a8b-4e0f-9d3a-7b2e4c9a1f01"
    },
    "Conda Install Loads zlib.dll from the Environment Library Folder": {
        "8e4b2a71-0c9d-4f3e-b6a5-2d7f1e8c3b02",
        "5f9a3c20-7e1b-4d6a-8c4f-9b0e2a6d1c03",
    },
    "Scheduled PowerShell Task Archives IIS Logs with GZipStream": {
        "a2d7e4b9-3f6c-4a1e-9b8d-0c5f7e2a4d04"
    },
    "Gradle Build on a Jenkins Agent Packages a tar.gz Distribution": {
        "6b0e8d3a-2c4f-4e7b-a1d9-5e3c7f0b8a05"
    },
    "Fluentd Forwarder Loads zlib1.dll to Compress Log Batches": {
        "9d2c5e7f-4b1a-4c8e-b3f6-1a8d0e9c7b06"
    },
}


def test_shipped_false_positive_tests_fire_untuned(shipped_run):
    noisy = shipped_run.results.filter(known_false_positive=True)

    assert noisy.count() == 5
    assert all(result.raw_matches >= 1 for result in noisy)


def test_shipped_entries_silence_false_positives(shipped_run):
    for result in shipped_run.results.filter(known_false_positive=True):
        suppressed = set()
        for row in result.tuning:
            suppressed |= set(row["suppressed_events"])
        entries = {row["entry"] for row in result.tuning}

        assert result.matches == 0, result.name
        assert entries == FALSE_POSITIVE_ENTRIES[result.name], result.name
        assert suppressed == set(result.raw_matched_events), result.name


def test_shipped_entries_spare_attack_tests(shipped_run):
    attacks = shipped_run.results.filter(known_false_positive=False, expect="fires")

    assert attacks.count() == 8
    for result in attacks:
        assert result.tuning == [], result.name
        assert result.matches == result.raw_matches, result.name


def test_shipped_near_misses_silent(shipped_run):
    silent = shipped_run.results.filter(expect="silent").exclude(name=KNOWN_FAILURE)

    assert silent.count() == 2
    assert all(result.matches == 0 for result in silent)


def test_shipped_first_test_branches(shipped_run):
    result = shipped_run.results.get(position=0)
    by_branch = {detail["branch"]: detail["matched_events"] for detail in result.details}

    assert len(by_branch["PythonLibraryCompression"]) == 1
    assert len(by_branch["StagedCompressedFileCreation"]) == 1
    assert by_branch["CompressionDllLoad"] == []


def test_shipped_events_files_sorted():
    folder = CONTENT_DIR / "detections" / SEED_SLUG / "events"

    for path in sorted(folder.glob("*.ndjson")):
        for line in path.read_text(encoding="utf-8").splitlines():
            event = json.loads(line)
            assert line == json.dumps(event, sort_keys=True, ensure_ascii=False), path.name
