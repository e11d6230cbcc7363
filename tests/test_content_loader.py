import shutil
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from detections.content.documents import detection_fingerprint
from detections.content.exporter import content_export
from detections.content.loader import content_load
from detections.models import Detection, SigmaRule, Technique

from .conftest import CONTENT_DIR, SEED_SLUG

SEED_FILE = Path("detections") / SEED_SLUG / "detection.yml"


def content_files(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.suffix in {".yml", ".json"}
    }


@pytest.fixture
def content_copy(tmp_path) -> Path:
    root = tmp_path / "content"
    shutil.copytree(CONTENT_DIR, root)
    return root


def test_export_reproduces_loaded_files_byte_for_byte(db, tmp_path):
    content_load(root=CONTENT_DIR)

    content_export(root=tmp_path / "out")

    assert content_files(tmp_path / "out") == content_files(CONTENT_DIR)


def test_export_command_writes_every_file(seed_detection, tmp_path):
    call_command("export_content", str(tmp_path / "out"), verbosity=0)

    assert set(content_files(tmp_path / "out")) == set(content_files(CONTENT_DIR))


def test_load_twice_reports_unchanged(db):
    first = content_load(root=CONTENT_DIR)

    second = content_load(root=CONTENT_DIR)

    assert first.created == [SEED_SLUG]
    assert second.unchanged == [SEED_SLUG]
    assert second.updated == []
    assert Detection.objects.count() == 1


def test_load_updates_detection_when_file_changes(db, content_copy):
    content_load(root=content_copy)
    path = content_copy / SEED_FILE
    path.write_text(path.read_text().replace("\nversion: 1\n", "\nversion: 2\n", 1))

    report = content_load(root=content_copy)

    assert report.updated == [SEED_SLUG]
    assert Detection.objects.get(slug=SEED_SLUG).version == 2


def test_load_keeps_detection_edited_in_portal(seed_detection):
    seed_detection.tuning_notes = "Exclude the nightly backup agent."
    seed_detection.save()

    report = content_load(root=CONTENT_DIR)

    seed_detection.refresh_from_db()
    assert report.conflicts == [SEED_SLUG]
    assert seed_detection.tuning_notes == "Exclude the nightly backup agent."


def test_load_command_reports_portal_edit(seed_detection, capsys):
    seed_detection.tuning_notes = "Edited in the portal."
    seed_detection.save()

    call_command("load_content", str(CONTENT_DIR))

    assert "changed in the portal" in capsys.readouterr().err


def test_load_force_overwrites_portal_edit(seed_detection):
    seed_detection.tuning_notes = "Edited in the portal."
    seed_detection.save()

    report = content_load(root=CONTENT_DIR, force=True)

    seed_detection.refresh_from_db()
    assert report.updated == [SEED_SLUG]
    assert seed_detection.tuning_notes.startswith("### Findings")


def test_load_leaves_children_consistent_after_update(db, content_copy):
    content_load(root=content_copy)
    path = content_copy / SEED_FILE
    path.write_text(path.read_text().replace("\nversion: 1\n", "\nversion: 3\n", 1))

    content_load(root=content_copy)

    detection = Detection.objects.get(slug=SEED_SLUG)
    assert detection.sigma_rules.count() == 5
    assert detection.tests.count() == 4
    assert detection.queries.get().branches.count() == 4
    assert detection.loaded_fingerprint == detection_fingerprint(detection)


BROKEN_CASES = {
    "invalid_yaml": (
        SEED_FILE,
        lambda text: text.replace("title: Detect", "title: [Detect", 1),
        "invalid YAML",
    ),
    "missing_title": (
        SEED_FILE,
        lambda text: text.replace("title: Detect Archive via Library in Splunk\n", "", 1),
        "title: missing required",
    ),
    "unknown_technique": (
        SEED_FILE,
        lambda text: text.replace("  subtechnique: T1560.002", "  subtechnique: T1560.009", 1),
        "attack[0].subtechnique: unknown ATT&CK technique T1560.009",
    ),
    "bad_severity": (
        SEED_FILE,
        lambda text: text.replace("severity: medium", "severity: huge", 1),
        "severity: 'huge' is not one of",
    ),
    "unknown_field": (
        SEED_FILE,
        lambda text: text.replace("\nversion: 1\n", "\nverison: 1\n", 1),
        "verison: unknown field",
    ),
    "sigma_condition": (
        Path("detections") / SEED_SLUG / "sigma" / "compression_dll_load.yml",
        lambda text: text.replace(
            "condition: selection and", "condition: selection_missing and", 1
        ),
        "sigma_rules[0]: detections/archive-via-library-splunk/sigma/"
        "compression_dll_load.yml: invalid condition",
    ),
    "sigma_yaml": (
        Path("detections") / SEED_SLUG / "sigma" / "python_compression_import.yml",
        lambda text: text.replace("detection:", "detection: [", 1),
        "python_compression_import.yml: invalid YAML",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN_CASES))
def test_load_rejects_broken_file_and_changes_nothing(seed_detection, content_copy, case):
    relative, breaker, expected = BROKEN_CASES[case]
    broken = content_copy / relative
    broken.write_text(breaker(broken.read_text()))
    seed_path = content_copy / SEED_FILE
    seed_path.write_text(seed_path.read_text().replace("confidence: medium", "confidence: high", 1))
    fingerprint = detection_fingerprint(seed_detection)

    with pytest.raises(CommandError) as error:
        call_command("load_content", str(content_copy), verbosity=0)

    message = str(error.value)
    seed_detection.refresh_from_db()
    assert expected in message
    assert "nothing was changed" in message
    assert seed_detection.confidence == "medium"
    assert detection_fingerprint(seed_detection) == fingerprint


def test_load_rejects_unknown_technique_in_fresh_database(db, content_copy):
    path = content_copy / SEED_FILE
    path.write_text(path.read_text().replace("  technique: T1560\n", "  technique: T9999\n", 1))

    with pytest.raises(CommandError, match="T9999"):
        call_command("load_content", str(content_copy), verbosity=0)

    assert Detection.objects.count() == 0
    assert Technique.objects.count() == 0


def test_load_rejects_sigma_file_outside_detection_folder(db, content_copy):
    path = content_copy / SEED_FILE
    path.write_text(
        path.read_text().replace("- sigma/compression_dll_load.yml", "- ../../attack.yml", 1)
    )

    with pytest.raises(CommandError, match="outside the detection folder"):
        call_command("load_content", str(content_copy), verbosity=0)

    assert SigmaRule.objects.count() == 0


def test_load_rejects_missing_folder(db, tmp_path):
    with pytest.raises(CommandError, match="content folder not found"):
        call_command("load_content", str(tmp_path / "missing"), verbosity=0)
