"""Loading and exporting playbooks from content/, and the loader's rejections."""

import re
import shutil
from copy import deepcopy
from datetime import date
from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command
from django.db.models import Q
from sigma.collection import SigmaCollection

from detections.content.loader import content_load
from detections.models import Detection
from playbooks.content.documents import playbook_fingerprint
from playbooks.models import Playbook, PlaybookQuery, ResponseStep

from .conftest import CONTENT_DIR, SEED_SLUG
from .test_content_loader import SEED_ID, database_state, edit_document

PLAYBOOK_SLUG = "archive-via-library-response"
PLAYBOOK_FOLDER = Path("playbooks") / PLAYBOOK_SLUG
PLAYBOOK_FILE = PLAYBOOK_FOLDER / "playbook.yml"
PLAYBOOK = PLAYBOOK_FILE.as_posix()
PHASES = ["triage", "investigation", "containment", "eradication", "recovery", "lessons-learned"]


@pytest.fixture
def content_copy(tmp_path) -> Path:
    root = tmp_path / "content"
    shutil.copytree(CONTENT_DIR, root)
    return root


@pytest.fixture
def playbook(db) -> Playbook:
    content_load(root=CONTENT_DIR)
    return Playbook.objects.get(slug=PLAYBOOK_SLUG)


def playbook_state() -> dict[str, list[str]]:
    """Every row of every playbooks table."""
    from django.apps import apps

    models = apps.get_app_config("playbooks").get_models(include_auto_created=True)
    return {
        model._meta.db_table: sorted(repr(row) for row in model.objects.values_list())
        for model in models
    }


def load_error(root: Path) -> str:
    with pytest.raises(CommandError) as error:
        call_command("load_content", str(root), verbosity=0)
    return str(error.value)


def test_load_creates_playbook(playbook):
    detection = Detection.objects.get(slug=SEED_SLUG)

    assert playbook.title == "Respond to Archive via Library (T1560.002)"
    assert playbook.status == "published"
    assert list(playbook.detections.all()) == [detection]
    assert list(detection.playbooks.all()) == [playbook]
    assert playbook.source_path == PLAYBOOK
    assert playbook.loaded_fingerprint == playbook_fingerprint(playbook)


def test_load_covers_every_phase(playbook):
    phases = list(playbook.steps.values_list("phase", flat=True))

    assert list(dict.fromkeys(phases)) == PHASES
    assert phases == sorted(phases, key=PHASES.index)


def test_load_keeps_query_owners_and_sigma(playbook):
    questions = [item.question for item in playbook.questions.all()]
    hunts_with_sigma = playbook.hunts.filter(queries__sigma_rule__isnull=False).distinct()

    assert playbook.steps.filter(queries__isnull=False).exists()
    assert questions[0].startswith("Which process loaded the compression library")
    assert playbook.sigma_rules.count() == 4
    assert hunts_with_sigma.count() == 4
    assert PlaybookQuery.objects.filter(sigma_rule__isnull=False).count() == 4


def test_shipped_queries_use_detection_telemetry(playbook):
    """Every Sysmon query reads the detection's index and sourcetype, and inputs as tokens."""
    sourcetype = 'sourcetype="XmlWinEventLog:Microsoft-Windows-Sysmon/Operational"'
    queries = PlaybookQuery.objects.filter(
        Q(step__playbook=playbook) | Q(question__playbook=playbook) | Q(hunt__playbook=playbook)
    )
    sysmon = [query for query in queries if not query.text.startswith("| tstats")]
    pivots = [query for query in sysmon if "$process_guid$" in query.text]

    assert len(sysmon) >= 20
    for query in sysmon:
        assert query.text.startswith(f"index=wineventlog {sourcetype}"), query.text
        assert query.language == "SPL"
    assert any("ParentProcessGuid" in query.text for query in pivots)
    assert any("EventCode IN (1, 3, 22)" in query.text for query in pivots)


def test_shipped_sigma_forms_parse_with_pysigma(playbook):
    for rule in playbook.sigma_rules.all():
        collection = SigmaCollection.from_yaml(rule.yaml_text)
        assert collection.errors == [], rule.filename
        assert len(collection.rules) == 1
        assert str(collection.rules[0].id) == str(rule.rule_id)


def test_load_twice_reports_playbook_unchanged(db):
    first = content_load(root=CONTENT_DIR)

    second = content_load(root=CONTENT_DIR)

    assert first.playbooks.created == [PLAYBOOK_SLUG]
    assert second.playbooks.unchanged == [PLAYBOOK_SLUG]
    assert Playbook.objects.count() == 1


def test_load_updates_playbook_when_file_changes(db, content_copy):
    content_load(root=content_copy)
    shipped_version = Playbook.objects.get().version
    edit_document(content_copy, PLAYBOOK_FILE, lambda doc: doc.update(version=shipped_version + 1))

    report = content_load(root=content_copy)

    document = yaml.safe_load((content_copy / PLAYBOOK_FILE).read_text())
    assert report.playbooks.updated == [PLAYBOOK_SLUG]
    assert Playbook.objects.get().version == shipped_version + 1
    assert ResponseStep.objects.count() == len(document["response"])


def test_load_updates_when_sigma_file_changes(db, content_copy):
    content_load(root=content_copy)
    sigma = content_copy / PLAYBOOK_FOLDER / "sigma" / "upload_tool_names_archive.yml"
    sigma.write_text(sigma.read_text().replace("level: medium", "level: high"))

    report = content_load(root=content_copy)

    rule = Playbook.objects.get().sigma_rules.get(filename="sigma/upload_tool_names_archive.yml")
    assert report.playbooks.updated == [PLAYBOOK_SLUG]
    assert rule.level == "high"


def test_load_keeps_playbook_edited_in_portal(playbook):
    playbook.summary = "Edited in the portal."
    playbook.save()

    report = content_load(root=CONTENT_DIR)

    playbook.refresh_from_db()
    assert report.playbooks.conflicts == [PLAYBOOK_SLUG]
    assert playbook.summary == "Edited in the portal."


def test_load_force_overwrites_playbook_edit(playbook):
    playbook.summary = "Edited in the portal."
    playbook.save()

    report = content_load(root=CONTENT_DIR, force=True)

    playbook.refresh_from_db()
    assert report.playbooks.updated == [PLAYBOOK_SLUG]
    assert playbook.summary.startswith("Use this playbook")


def test_load_command_reports_playbook(db, capsys):
    call_command("load_content", str(CONTENT_DIR))

    output = capsys.readouterr().out
    assert f"playbook created: {PLAYBOOK_SLUG}" in output
    assert "playbooks: 1 created" in output


def test_load_without_playbooks_folder(db, content_copy):
    shutil.rmtree(content_copy / "playbooks")

    report = content_load(root=content_copy)

    assert report.created == [SEED_SLUG]
    assert report.playbooks.created == []


def test_load_playbook_for_detection_in_database(db, content_copy):
    content_load(root=content_copy)
    shutil.rmtree(content_copy / "detections")
    edit_document(content_copy, PLAYBOOK_FILE, lambda doc: doc.update(version=3))

    report = content_load(root=content_copy)

    assert report.playbooks.updated == [PLAYBOOK_SLUG]
    assert Playbook.objects.get().detections.get().slug == SEED_SLUG


def _step(index: int, **fields):
    return lambda doc: doc["response"][index].update(fields)


def _without(key: str, index: int | None = None, section: str = "response"):
    def change(doc):
        target = doc if index is None else doc[section][index]
        del target[key]

    return change


def _first_query(section: str, index: int, **fields):
    return lambda doc: doc[section][index]["queries"][0].update(fields)


def _add_input(**fields):
    entry = {"name": "unused", "source": "analyst", "description": "Never recorded."}
    return lambda doc: doc["inputs"].append({**entry, **fields})


def _write_sigma(root: Path, name: str, text: str) -> None:
    path = root / PLAYBOOK_FOLDER / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


SEED_RULE = CONTENT_DIR / "detections" / SEED_SLUG / "sigma" / "compression_dll_load.yml"

# Each case edits the parsed playbook.yml of a copy of the shipped content and names
# the issue line that the load must report: "file: field path: message".
INVALID_PLAYBOOK_CASES = {
    "unknown_top_level_key": (
        lambda doc: doc.update(severity="high"),
        f"{PLAYBOOK}: severity: unknown field; known fields: format_version, id,",
    ),
    "unknown_step_key": (
        _step(2, owner="tier 1"),
        f"{PLAYBOOK}: response[2].owner: unknown field; known fields: phase, title,",
    ),
    "unknown_query_key": (
        _first_query("hunting", 1, engine="splunk"),
        f"{PLAYBOOK}: hunting[1].queries[0].engine: unknown field",
    ),
    "bad_phase": (
        _step(0, phase="detection"),
        f"{PLAYBOOK}: response[0].phase: 'detection' is not one of: triage, investigation, "
        "containment, eradication, recovery, lessons-learned",
    ),
    "missing_step_role": (
        _without("role", 4),
        f"{PLAYBOOK}: response[4].role: missing required field",
    ),
    "missing_automatable": (
        _without("automatable", 0),
        f"{PLAYBOOK}: response[0].automatable: missing required field",
    ),
    "missing_benign_answer": (
        _without("benign_answer", 1, "investigation"),
        f"{PLAYBOOK}: investigation[1].benign_answer: missing required field",
    ),
    "missing_hypothesis": (
        _without("hypothesis", 0, "hunting"),
        f"{PLAYBOOK}: hunting[0].hypothesis: missing required field",
    ),
    "missing_detections": (
        _without("detections"),
        f"{PLAYBOOK}: detections: missing required field",
    ),
    "empty_response": (
        lambda doc: doc.update(response=[]),
        f"{PLAYBOOK}: response: must have at least one entry",
    ),
    "hunt_without_queries": (
        lambda doc: doc["hunting"][0].update(queries=[]),
        f"{PLAYBOOK}: hunting[0].queries: must have at least one entry",
    ),
    "automatable_not_bool": (
        _step(1, automatable="yes"),
        f"{PLAYBOOK}: response[1].automatable: must be true or false, not 'yes'",
    ),
    "phase_order": (
        _step(1, phase="containment"),
        f"{PLAYBOOK}: response[2].phase: a 'triage' step comes after 'containment' steps",
    ),
    "dates_reversed": (
        lambda doc: doc.update(date_created=date(2027, 1, 1)),
        f"{PLAYBOOK}: date_modified: 2026-12-04 is earlier than date_created 2027-01-01",
    ),
    "slug_differs_from_folder": (
        lambda doc: doc.update(slug="archive-response"),
        f"{PLAYBOOK}: slug: 'archive-response' differs from the folder name",
    ),
    "undeclared_token": (
        _first_query("response", 0, text="index=wineventlog host=\"$hostname$\"\n"),
        f"{PLAYBOOK}: response[0].queries[0].text: $hostname$ is not the name of an input",
    ),
    "input_name_twice": (
        lambda doc: doc["inputs"].append(deepcopy(doc["inputs"][0])),
        f"{PLAYBOOK}: inputs[9].name: 'host' is also the name of inputs[0]",
    ),
    "input_name_uppercase": (
        lambda doc: doc["inputs"][0].update(name="Host"),
        f"{PLAYBOOK}: inputs[0].name: 'Host' is not an input name",
    ),
    "analyst_input_never_recorded": (
        _add_input(),
        f"{PLAYBOOK}: inputs[9]: no response step records the analyst input 'unused'",
    ),
    "records_alert_input": (
        lambda doc: doc["response"][0]["records"].append("host"),
        f"{PLAYBOOK}: response[0].records[3]: 'host' comes from the alert",
    ),
    "records_unknown_input": (
        lambda doc: doc["response"][0]["records"].append("pid"),
        f"{PLAYBOOK}: response[0].records[3]: 'pid' is not the name of an input",
    ),
    "hunt_name_twice": (
        lambda doc: doc["hunting"][1].update(name=doc["hunting"][0]["name"]),
        f"{PLAYBOOK}: hunting[1].name: 'Archive written, then sent out by the same process' "
        "is also the name of hunting[0]",
    ),
    "unknown_detection": (
        lambda doc: doc.update(detections=["0b8a4d8e-9b2c-4f5e-8a1d-3c6e7f9a0b1c"]),
        f"{PLAYBOOK}: detections[0]: no detection has the id 0b8a4d8e-9b2c-4f5e-8a1d-3c6e7f9a0b1c",
    ),
    "detection_listed_twice": (
        lambda doc: doc["detections"].append(SEED_ID),
        f"{PLAYBOOK}: detections[1]: '{SEED_ID}' is listed twice",
    ),
    "javascript_reference": (
        lambda doc: doc["references"][0].update(url="javascript:alert(1)"),
        f"{PLAYBOOK}: references[0].url: 'javascript:alert(1)' is not an http:// or https:// URL",
    ),
    "role_too_long": (
        _step(0, role="r" * 101),
        f"{PLAYBOOK}: response[0].role: is 101 characters long; the maximum is 100",
    ),
    "sigma_dot_dot": (
        _first_query("hunting", 1, sigma="../archive-via-library-response/sigma/x.yml"),
        f"{PLAYBOOK}: hunting[1].queries[0].sigma: '../archive-via-library-response/sigma/x.yml' "
        "may point outside the playbook folder",
    ),
    "sigma_missing_file": (
        _first_query("hunting", 0, sigma="sigma/missing.yml"),
        f"{PLAYBOOK}: hunting[0].queries[0].sigma: Sigma file "
        f"{PLAYBOOK_FOLDER.as_posix()}/sigma/missing.yml: file not found",
    ),
    "sigma_case_twin": (
        _first_query("hunting", 0, sigma="sigma/Compression_Library_User_Folder.yml"),
        f"{PLAYBOOK}: hunting[1].queries[0].sigma: 'sigma/compression_library_user_folder.yml' "
        "differs from 'sigma/Compression_Library_User_Folder.yml' only in case",
    ),
    "wrong_format_version": (
        lambda doc: doc.update(format_version=2),
        f"{PLAYBOOK}: format_version: version 2 is not supported",
    ),
}


@pytest.mark.parametrize("case", sorted(INVALID_PLAYBOOK_CASES))
def test_load_rejects_invalid_playbook(playbook, content_copy, case):
    change, expected = INVALID_PLAYBOOK_CASES[case]
    edit_document(content_copy, PLAYBOOK_FILE, change)
    seed = content_copy / "detections" / SEED_SLUG / "detection.yml"
    seed.write_text(seed.read_text().replace("confidence: medium", "confidence: high", 1))
    before = (database_state(), playbook_state())

    message = load_error(content_copy)

    assert expected in message
    assert "nothing was changed" in message
    assert (database_state(), playbook_state()) == before


def test_load_rejects_invalid_sigma_form(playbook, content_copy):
    _write_sigma(content_copy, "sigma/upload_tool_names_archive.yml", "title: [broken\n")
    before = playbook_state()

    message = load_error(content_copy)

    assert (
        f"{PLAYBOOK}: hunting[4].queries[0].sigma: {PLAYBOOK_FOLDER.as_posix()}/sigma/"
        "upload_tool_names_archive.yml: invalid YAML"
    ) in message
    assert playbook_state() == before


def test_load_rejects_sigma_id_of_detection_rule(db, content_copy):
    _write_sigma(content_copy, "sigma/copied.yml", SEED_RULE.read_text())
    edit_document(content_copy, PLAYBOOK_FILE, _first_query("hunting", 0, sigma="sigma/copied.yml"))

    message = load_error(content_copy)

    assert (
        f"{PLAYBOOK}: hunting[0].queries[0].sigma: Sigma rule id "
        "760a8c60-5f71-4805-ada6-afde0a1bd1af already belongs to detection "
        f"'{SEED_SLUG}'"
    ) in message
    assert Detection.objects.count() == 0
    assert Playbook.objects.count() == 0


def test_load_rejects_slug_of_other_playbook(playbook, content_copy):
    edit_document(
        content_copy,
        PLAYBOOK_FILE,
        lambda doc: doc.update(id="7d1f0a52-3c4b-4e8a-9f6d-2b5c8e1a4d70"),
    )

    message = load_error(content_copy)

    assert (
        f"{PLAYBOOK}: slug: '{PLAYBOOK_SLUG}' is the slug of playbook {playbook.uuid} in the "
        "database"
    ) in message


def test_load_rejects_duplicate_yaml_key(db, content_copy):
    path = content_copy / PLAYBOOK_FILE
    # Repeat the version line, whatever the shipped version is.
    pattern = re.compile(r"\nversion: (\d+)\n")
    text, replaced = pattern.subn(r"\g<0>version: \1\n", path.read_text(), count=1)
    assert replaced == 1
    path.write_text(text)

    message = load_error(content_copy)

    assert f"{PLAYBOOK}: invalid YAML" in message
    assert "duplicate key 'version'" in message


def test_load_rejects_playbook_linked_outside(db, content_copy):
    path = content_copy / PLAYBOOK_FILE
    path.unlink()
    path.symlink_to("/etc/hostname")

    message = load_error(content_copy)

    assert f"{PLAYBOOK}: is a link to /etc/hostname, which is outside" in message
    assert Detection.objects.count() == 0
