"""import_atomics: Atomic Red Team tests linked to the detections mapped to their technique."""

import uuid

import pytest
import yaml
from django.core.management import call_command

from detections.content.documents import detection_document
from detections.models import Detection, DetectionTest

from .conftest import CONTENT_DIR, SEED_SLUG
from .import_helpers import only_failure, rule_text, run_import, write

LIBRARY_GUID = "7c1b7e1a-6a1c-4c43-a8b0-0d1a6c0f9b11"
CUSTOM_GUID = "8d2c8f2b-7b2d-4d54-b9c1-1e2b7d1fac22"
PARENT_GUID = "9e3d903c-8c3e-4e65-8ad2-2f3c8e20bd33"
SECRET_COMMAND = "python -c 'import zlib; exfiltrate()'"


def technique_file(technique: str, tests: list[dict]) -> str:
    return yaml.safe_dump(
        {"attack_technique": technique, "display_name": "Archive", "atomic_tests": tests},
        sort_keys=False,
    )


def atomic(guid: str, name: str, **fields) -> dict:
    test = {
        "name": name,
        "auto_generated_guid": guid,
        "description": "Compress a file with a library.",
        "supported_platforms": ["windows", "linux"],
        "input_arguments": {
            "output_file": {"description": "Output path", "type": "path", "default": "/tmp/a.gz"}
        },
        "executor": {
            "name": "sh",
            "elevation_required": False,
            "command": SECRET_COMMAND,
            "cleanup_command": "rm /tmp/a.gz",
        },
    }
    test.update(fields)
    return test


@pytest.fixture
def atomics(tmp_path):
    """An atomics folder with one sub-technique file, one technique file and an index."""
    root = tmp_path / "atomics"
    write(
        root,
        "T1560.002/T1560.002.yaml",
        technique_file(
            "T1560.002",
            [atomic(LIBRARY_GUID, "Compress with zlib"), atomic(CUSTOM_GUID, "Compress with bz2")],
        ),
    )
    write(root, "T1560/T1560.yaml", technique_file("T1560", [atomic(PARENT_GUID, "Archive data")]))
    write(root, "Indexes/index.yaml", "not: [an atomics file\n")
    write(root, "T1560.002/T1560.002.md", "# documentation")
    return root


@pytest.fixture
def detections(seed_detection, tmp_path):
    """The seed detection (T1560.002) and two imported ones: T1560.002 and T1560.001."""
    library_rule, utility_rule = str(uuid.uuid4()), str(uuid.uuid4())
    write(tmp_path / "rules", "library.yml", rule_text(rule_id=library_rule, title="Library"))
    utility = rule_text(rule_id=utility_rule, title="Utility").replace("t1560.002", "t1560.001")
    write(tmp_path / "rules", "utility.yml", utility)
    run_import("import_sigma", tmp_path / "rules")
    return {
        "seed": seed_detection,
        "library": Detection.objects.get(uuid=library_rule),
        "utility": Detection.objects.get(uuid=utility_rule),
    }


def imported_guids(detection: Detection) -> set[str]:
    tests = detection.tests.filter(origin=DetectionTest.Origin.ATOMIC_RED_TEAM)
    return {str(guid) for guid in tests.values_list("atomic_guid", flat=True)}


def test_tests_linked_by_technique(detections, atomics):
    summary = run_import("import_atomics", atomics)

    assert summary["failed"] == []
    assert summary["tests_read"] == 3
    assert imported_guids(detections["library"]) == {LIBRARY_GUID, CUSTOM_GUID, PARENT_GUID}
    assert imported_guids(detections["utility"]) == {PARENT_GUID}
    assert imported_guids(detections["seed"]) == {LIBRARY_GUID, CUSTOM_GUID, PARENT_GUID}
    assert summary["created"] == 7


def test_fields_stored_without_commands(detections, atomics):
    run_import("import_atomics", atomics)

    test = detections["library"].tests.get(atomic_guid=LIBRARY_GUID)
    assert test.name == "Compress with zlib"
    assert test.description == "Compress a file with a library."
    assert test.platform == "windows"
    assert test.platforms == ["windows", "linux"]
    assert test.executor == "sh"
    assert test.executor_summary == ""
    assert test.input_arguments == {
        "output_file": {"description": "Output path", "type": "path", "default": "/tmp/a.gz"}
    }
    for row in DetectionTest.objects.values():
        assert SECRET_COMMAND not in repr(row)


def test_reimport_unchanged(detections, atomics):
    run_import("import_atomics", atomics)

    summary = run_import("import_atomics", atomics)

    assert summary["created"] == 0
    assert summary["updated"] == 0
    assert summary["unchanged"] == 7


def test_changed_test_updated(detections, atomics):
    run_import("import_atomics", atomics)
    executor = {"name": "bash", "elevation_required": True}
    changed = atomic(LIBRARY_GUID, "Compress with zlib, renamed", executor=executor)
    tests = [changed, atomic(CUSTOM_GUID, "Compress with bz2")]
    write(atomics, "T1560.002/T1560.002.yaml", technique_file("T1560.002", tests))

    summary = run_import("import_atomics", atomics)

    assert summary["updated"] == 2
    test = detections["library"].tests.get(atomic_guid=LIBRARY_GUID)
    assert test.name == "Compress with zlib, renamed"
    assert test.executor == "bash"
    assert test.executor_summary == "Needs administrator or root rights."


def test_unmapped_detection_loses_test(detections, atomics):
    run_import("import_atomics", atomics)
    detections["library"].mappings.all().delete()

    summary = run_import("import_atomics", atomics)

    assert summary["links_removed"] == 3
    assert imported_guids(detections["library"]) == set()


def test_single_technique_file(detections, atomics):
    summary = run_import("import_atomics", atomics / "T1560" / "T1560.yaml")

    assert summary["tests_read"] == 1
    assert imported_guids(detections["utility"]) == {PARENT_GUID}


def test_content_reload_keeps_imported_tests(detections, atomics):
    run_import("import_atomics", atomics)
    seed = detections["seed"]
    authored = seed.tests.filter(origin=DetectionTest.Origin.AUTHORED).count()

    call_command("load_content", str(CONTENT_DIR), force=True, verbosity=0)

    seed = Detection.objects.get(slug=SEED_SLUG)
    assert imported_guids(seed) == {LIBRARY_GUID, CUSTOM_GUID, PARENT_GUID}
    assert seed.tests.filter(origin=DetectionTest.Origin.AUTHORED).count() == authored
    exported = [test.get("atomic_guid") for test in detection_document(seed)["tests"]]
    assert LIBRARY_GUID not in exported


def test_content_load_after_import_not_conflict(detections, atomics):
    run_import("import_atomics", atomics)

    call_command("load_content", str(CONTENT_DIR), verbosity=0)

    seed = Detection.objects.get(slug=SEED_SLUG)
    assert imported_guids(seed) == {LIBRARY_GUID, CUSTOM_GUID, PARENT_GUID}


def test_authored_test_with_same_guid_wins(detections, atomics):
    authored_guid = "391f5298-b12d-4636-8482-35d9c17d53a8"  # a test in the seed's content
    tests = [atomic(authored_guid, "Upstream name"), atomic(LIBRARY_GUID, "Compress with zlib")]
    write(atomics, "T1560.002/T1560.002.yaml", technique_file("T1560.002", tests))

    summary = run_import("import_atomics", atomics)

    seed = detections["seed"]
    assert seed.tests.filter(atomic_guid=authored_guid).count() == 1
    assert seed.tests.get(atomic_guid=authored_guid).origin == DetectionTest.Origin.AUTHORED
    assert authored_guid in imported_guids(detections["library"])
    assert summary["unchanged"] == 1


BROKEN_FILES = {
    "alias": ("attack_technique: &t T1560\natomic_tests: []\n", "YAML anchors are not allowed"),
    "not_mapping": ("- T1560\n", "an Atomic Red Team file is one YAML mapping"),
    "bad_technique": (technique_file("TA0009", []), "is not an ATT&CK technique id"),
    "tests_not_list": (
        "attack_technique: T1560\natomic_tests: {}\n", "atomic_tests must be a list"
    ),
    "bad_guid": (technique_file("T1560", [atomic("not-a-guid", "X")]), "is not a UUID"),
    "name_line_break": (
        technique_file("T1560", [atomic(PARENT_GUID, "Two\nlines")]), "control character"
    ),
    "platforms_not_list": (
        technique_file("T1560", [atomic(PARENT_GUID, "X", supported_platforms="windows")]),
        "supported_platforms must be a list of strings",
    ),
    "executor_not_mapping": (
        technique_file("T1560", [atomic(PARENT_GUID, "X", executor="sh")]),
        "executor must be a mapping",
    ),
    "arguments_not_json": (
        technique_file(
            "T1560", [atomic(PARENT_GUID, "X", input_arguments={"n": {"default": float("nan")}})]
        ),
        "cannot be stored as JSON",
    ),
    "nul_byte": ("attack_technique: T1560\x00\n", "NUL byte"),
}


@pytest.mark.parametrize("case", list(BROKEN_FILES))
def test_broken_file_fails_alone(detections, atomics, case):
    content, reason = BROKEN_FILES[case]
    write(atomics, "T1560/T1560.yaml", content)

    summary = run_import("import_atomics", atomics, expect_failure=True)

    failure = only_failure(summary)
    assert failure["file"] == "atomics/T1560/T1560.yaml"
    assert reason in failure["reason"]
    assert imported_guids(detections["library"]) == {LIBRARY_GUID, CUSTOM_GUID}


def test_repeated_guid_fails_both(detections, atomics):
    write(atomics, "T1560/T1560.yaml", technique_file("T1560", [atomic(LIBRARY_GUID, "Copy")]))

    summary = run_import("import_atomics", atomics, expect_failure=True)

    assert sorted(failure["file"] for failure in summary["failed"]) == [
        "atomics/T1560.002/T1560.002.yaml",
        "atomics/T1560/T1560.yaml",
    ]
    assert imported_guids(detections["library"]) == {CUSTOM_GUID}


def test_import_records_history(detections, atomics):
    from detections import editing

    run_import("import_atomics", atomics)
    run_import("import_atomics", atomics)

    library = Detection.objects.get(pk=detections["library"].pk)
    entries = editing.history(library)
    assert library.revision == 2
    assert [entry.comment for entry in entries] == ["import_atomics", entries[1].comment]
    assert entries[1].comment.startswith("import_sigma: ")
