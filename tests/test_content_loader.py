import shutil
from copy import deepcopy
from datetime import date, datetime
from pathlib import Path

import pytest
import yaml
from django.apps import apps
from django.core.management import CommandError, call_command

from detections.content.documents import detection_fingerprint
from detections.content.exporter import content_export
from detections.content.loader import content_load
from detections.content.yamlio import dump_document
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

    exported = content_files(tmp_path / "out")
    playbook_folder = "playbooks/archive-via-library-response"
    assert f"{playbook_folder}/playbook.yml" in exported
    assert f"{playbook_folder}/sigma/upload_tool_names_archive.yml" in exported
    assert exported == content_files(CONTENT_DIR)


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
    assert detection.tests.count() == 16
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


SEED_SIGMA = Path("detections") / SEED_SLUG / "sigma" / "compression_dll_load.yml"
SEED_ID = "f8254b3c-d7ed-4cd4-8a1a-41b909358fc3"
OTHER_SLUG = "archive-via-library-elastic"


def database_state() -> dict[str, list[str]]:
    """Every row of every detections table, including the many-to-many tables."""
    models = apps.get_app_config("detections").get_models(include_auto_created=True)
    return {
        model._meta.db_table: sorted(repr(row) for row in model.objects.values_list())
        for model in models
    }


def edit_document(root: Path, relative: str | Path, change) -> None:
    """Apply `change` to the parsed YAML file and write it back in the export layout."""
    path = root / relative
    document = yaml.safe_load(path.read_text())
    change(document)
    path.write_text(dump_document(document))


def write_other_detection(root: Path, **fields) -> Path:
    """Write a second, minimal detection beside the seed and return its file."""
    document = {
        "format_version": 1,
        "id": "0c6f3b8e-5d0a-4f55-9b8e-2f6d1f0a7c11",
        "slug": OTHER_SLUG,
        "title": "Detect Archive via Library in Elastic",
        "platform": "Elastic",
        "query_language": "EQL",
        "status": "draft",
        "severity": "medium",
        "confidence": "low",
        "attack": [{"tactic": "TA0009", "technique": "T1560", "subtechnique": "T1560.002"}],
        "description": "The Elastic version of the seed detection.",
        **fields,
    }
    path = root / "detections" / OTHER_SLUG / "detection.yml"
    path.parent.mkdir(parents=True)
    path.write_text(dump_document(document))
    return path


def test_links_are_kept_per_file(db, content_copy, tmp_path):
    edit_document(content_copy, SEED_FILE, lambda doc: doc.update(related=[OTHER_SLUG]))
    write_other_detection(content_copy, related=[], other_platforms=[SEED_SLUG])

    content_load(root=content_copy)
    second = content_load(root=content_copy)
    content_export(root=tmp_path / "out")

    seed = Detection.objects.get(slug=SEED_SLUG)
    other = Detection.objects.get(slug=OTHER_SLUG)
    exported = yaml.safe_load((tmp_path / "out" / SEED_FILE).read_text())
    exported_other = yaml.safe_load(
        (tmp_path / "out" / "detections" / OTHER_SLUG / "detection.yml").read_text()
    )
    assert list(seed.related.values_list("slug", flat=True)) == [OTHER_SLUG]
    assert list(other.related.all()) == []
    assert list(seed.other_platforms.all()) == []
    assert list(other.other_platforms.values_list("slug", flat=True)) == [SEED_SLUG]
    assert second.conflicts == []
    assert sorted(second.unchanged) == sorted([SEED_SLUG, OTHER_SLUG])
    assert exported["related"] == [OTHER_SLUG]
    assert exported["other_platforms"] == []
    assert exported_other["related"] == []
    assert exported_other["other_platforms"] == [SEED_SLUG]


def _attack(doc, **fields):
    doc["attack"][0].update(fields)


def _first_test(doc, **fields):
    doc["tests"][0].update(fields)


def _first_key_fields(doc, **fields):
    doc["tests"][0]["telemetry"][0]["key_fields"].update(fields)


def _add_catalogue_tactic(doc):
    doc["tactics"].append(
        {
            "id": "TA0010",
            "name": "Exfiltration",
            "shortname": "exfiltration",
            "url": "https://attack.mitre.org/tactics/TA0010/",
        }
    )


def _add_catalogue_technique(doc, **fields):
    entry = {"id": "T1111.001", "name": "Test", "url": "https://attack.mitre.org/"}
    doc["techniques"].append({**entry, **fields})


DETECTION = SEED_FILE.as_posix()
CATALOGUE = "attack.yml"

# Each case edits the parsed files of a copy of the shipped content and names the
# issue line that the load must report: "file: field path: message".
INVALID_CONTENT_CASES = {
    "self_link": (
        {SEED_FILE: lambda doc: doc.update(related=[SEED_SLUG])},
        f"{DETECTION}: related[0]: a detection cannot link to itself",
    ),
    "self_other_platform": (
        {SEED_FILE: lambda doc: doc.update(other_platforms=[SEED_SLUG])},
        f"{DETECTION}: other_platforms[0]: a detection cannot link to itself",
    ),
    "sigma_absolute_path": (
        {SEED_FILE: lambda doc: doc["sigma_rules"].__setitem__(0, str(CONTENT_DIR / SEED_SIGMA))},
        f"{DETECTION}: sigma_rules[0]: '{CONTENT_DIR / SEED_SIGMA}' is an absolute path",
    ),
    "sigma_dot_dot": (
        {
            SEED_FILE: lambda doc: doc["sigma_rules"].__setitem__(
                1, "sigma/../sigma/compression_dll_load.yml"
            )
        },
        f"{DETECTION}: sigma_rules[1]: 'sigma/../sigma/compression_dll_load.yml' may point "
        "outside the detection folder",
    ),
    "sigma_backslash": (
        {SEED_FILE: lambda doc: doc["sigma_rules"].__setitem__(0, "sigma\\x.yml")},
        f"{DETECTION}: sigma_rules[0]: 'sigma\\\\x.yml' contains a backslash",
    ),
    "sigma_listed_twice": (
        {SEED_FILE: lambda doc: doc["sigma_rules"].append(doc["sigma_rules"][0])},
        f"{DETECTION}: sigma_rules[5]: 'sigma/compression_dll_load.yml' is listed twice",
    ),
    "sigma_same_base_name": (
        {SEED_FILE: lambda doc: doc["sigma_rules"].append("sigma/old/Compression_DLL_Load.yml")},
        f"{DETECTION}: sigma_rules[5]: 'sigma/old/Compression_DLL_Load.yml' has the same file "
        "name as 'sigma/compression_dll_load.yml'",
    ),
    "sigma_path_too_long": (
        {SEED_FILE: lambda doc: doc["sigma_rules"].__setitem__(0, "s" * 201)},
        f"{DETECTION}: sigma_rules[0]: is 201 characters long; the maximum is 200",
    ),
    "duplicate_attack_entry": (
        {SEED_FILE: lambda doc: doc["attack"].append(deepcopy(doc["attack"][0]))},
        f"{DETECTION}: attack[1]: repeats attack[0]",
    ),
    "duplicate_branch_name": (
        {SEED_FILE: lambda doc: doc["queries"][0]["branches"][1].update(name="CompressionDllLoad")},
        f"{DETECTION}: queries[0].branches[1].name: 'CompressionDllLoad' is also the name "
        "of branches[0]",
    ),
    "slug_of_other_detection": (
        {SEED_FILE: lambda doc: doc.update(id="6a1b9c43-8f1e-4a4f-93a0-0c9f4b0b7d2e")},
        f"{DETECTION}: slug: 'archive-via-library-splunk' is the slug of detection {SEED_ID} "
        "in the database",
    ),
    "folder_differs_from_slug": (
        {SEED_FILE: lambda doc: doc.update(slug="archive-via-library")},
        f"{DETECTION}: slug: 'archive-via-library' differs from the folder name "
        "'archive-via-library-splunk'",
    ),
    "uppercase_uuid": (
        {SEED_FILE: lambda doc: doc.update(id=SEED_ID.upper())},
        f"{DETECTION}: id: '{SEED_ID.upper()}' is not in the canonical form",
    ),
    "empty_attack": (
        {SEED_FILE: lambda doc: doc.update(attack=[])},
        f"{DETECTION}: attack: must have at least one entry",
    ),
    "subtechnique_as_technique": (
        {SEED_FILE: lambda doc: _attack(doc, technique="T1560.002")},
        f"{DETECTION}: attack[0].technique: 'T1560.002' is a sub-technique id",
    ),
    "subtechnique_of_other_technique": (
        {SEED_FILE: lambda doc: _attack(doc, technique="T1560", subtechnique="T1560.009")},
        f"{DETECTION}: attack[0].subtechnique: unknown ATT&CK technique T1560.009",
    ),
    "tactic_not_of_technique": (
        {CATALOGUE: _add_catalogue_tactic, SEED_FILE: lambda doc: _attack(doc, tactic="TA0010")},
        f"{DETECTION}: attack[0].tactic: TA0010 is not a tactic of T1560 in the ATT&CK "
        "catalogue (its tactics: TA0009)",
    ),
    "javascript_canonical_reference": (
        {SEED_FILE: lambda doc: doc.update(canonical_reference="javascript:alert(1)")},
        f"{DETECTION}: canonical_reference: 'javascript:alert(1)' is not an http:// or "
        "https:// URL",
    ),
    "javascript_reference": (
        {SEED_FILE: lambda doc: doc["references"].append("javascript:alert(1)")},
        f"{DETECTION}: references[1]: 'javascript:alert(1)' is not an http:// or https:// URL",
    ),
    "recorded_event_date": (
        {SEED_FILE: lambda doc: _first_test(doc, recorded_events=[{"Day": date(2026, 12, 4)}])},
        f"{DETECTION}: tests[0].recorded_events[0].Day: 2026-12-04 is a date, which JSON "
        "cannot store; quote it",
    ),
    "recorded_event_timestamp": (
        {
            SEED_FILE: lambda doc: _first_test(
                doc, recorded_events=[{"UtcTime": datetime(2026, 12, 4, 10)}]
            )
        },
        f"{DETECTION}: tests[0].recorded_events[0].UtcTime: 2026-12-04 10:00:00 is a "
        "timestamp, which JSON cannot store; quote it",
    ),
    "key_fields_binary": (
        {SEED_FILE: lambda doc: _first_key_fields(doc, Image=b"python.exe")},
        f"{DETECTION}: tests[0].telemetry[0].key_fields.Image: binary data (!!binary) "
        "cannot be stored as JSON",
    ),
    "key_fields_nan": (
        {SEED_FILE: lambda doc: _first_key_fields(doc, Score=[1.5, float("nan")])},
        f"{DETECTION}: tests[0].telemetry[0].key_fields.Score[1]: nan cannot be stored as "
        "JSON; quote it",
    ),
    "key_fields_infinity": (
        {SEED_FILE: lambda doc: _first_key_fields(doc, Score=float("inf"))},
        f"{DETECTION}: tests[0].telemetry[0].key_fields.Score: inf cannot be stored as JSON",
    ),
    "key_fields_integer_key": (
        {SEED_FILE: lambda doc: _first_key_fields(doc, Nested={1: 2})},
        f"{DETECTION}: tests[0].telemetry[0].key_fields.Nested: mapping key 1 is not a "
        "string; quote the key",
    ),
    "version_overflow": (
        {SEED_FILE: lambda doc: doc.update(version=2**70)},
        f"{DETECTION}: version: must be a whole number from 1 to 2147483647, not {2**70}",
    ),
    "event_id_too_large": (
        {SEED_FILE: lambda doc: doc["data_sources"][0].update(event_id=2**31)},
        f"{DETECTION}: data_sources[0].event_id: must be a whole number from 0 to "
        f"2147483647, not {2**31}",
    ),
    "negative_min_matches": (
        {SEED_FILE: lambda doc: _first_test(doc, min_matches=-1)},
        f"{DETECTION}: tests[0].min_matches: must be a whole number from 0 to 2147483647, not -1",
    ),
    "nul_in_title": (
        {SEED_FILE: lambda doc: doc.update(title="Detect\0Archive")},
        f"{DETECTION}: title: contains a NUL character",
    ),
    "nul_in_key_fields": (
        {SEED_FILE: lambda doc: _first_key_fields(doc, Image="python\0.exe")},
        f"{DETECTION}: tests[0].telemetry[0].key_fields.Image: contains a NUL character",
    ),
    "lone_surrogate": (
        {SEED_FILE: lambda doc: doc.update(summary="text \ud800 more")},
        f"{DETECTION}: summary: contains the lone surrogate U+D800",
    ),
    "title_too_long": (
        {SEED_FILE: lambda doc: doc.update(title="T" * 301)},
        f"{DETECTION}: title: is 301 characters long; the maximum is 300",
    ),
    "log_source_too_long": (
        {SEED_FILE: lambda doc: doc["data_sources"][0].update(log_source="S" * 101)},
        f"{DETECTION}: data_sources[0].log_source: is 101 characters long; the maximum is 100",
    ),
    "artifact_path_too_long": (
        {SEED_FILE: lambda doc: doc["tests"][0]["telemetry"][1].update(artifact_path="p" * 501)},
        f"{DETECTION}: tests[0].telemetry[1].artifact_path: is 501 characters long",
    ),
    "executor_too_long": (
        {SEED_FILE: lambda doc: _first_test(doc, executor="e" * 51)},
        f"{DETECTION}: tests[0].executor: is 51 characters long; the maximum is 50",
    ),
    "too_many_false_positives": (
        {SEED_FILE: lambda doc: doc.update(false_positives=["benign"] * 1001)},
        f"{DETECTION}: false_positives: has 1001 entries; the maximum is 1000",
    ),
    "too_many_telemetry_entries": (
        {SEED_FILE: lambda doc: _first_test(doc, telemetry=[{"source": "Sysmon"}] * 1001)},
        f"{DETECTION}: tests[0].telemetry: has 1001 entries; the maximum is 1000",
    ),
    "catalogue_unknown_parent": (
        {CATALOGUE: lambda doc: _add_catalogue_technique(doc, parent="T1111", tactics=[])},
        f"{CATALOGUE}: techniques[4].parent: T1111 is not listed under techniques",
    ),
    "catalogue_unknown_tactic": (
        {CATALOGUE: lambda doc: doc["techniques"][0]["tactics"].append("TA0010")},
        f"{CATALOGUE}: techniques[0].tactics[1]: TA0010 is not listed under tactics",
    ),
    "catalogue_duplicate_technique": (
        {CATALOGUE: lambda doc: doc["techniques"].append(deepcopy(doc["techniques"][1]))},
        f"{CATALOGUE}: techniques[4].id: T1560.001 is also listed as techniques[1]",
    ),
    "catalogue_duplicate_tactic": (
        {CATALOGUE: lambda doc: doc["tactics"].append(deepcopy(doc["tactics"][0]))},
        f"{CATALOGUE}: tactics[1].id: TA0009 is also listed as tactics[0]",
    ),
    "catalogue_parent_prefix": (
        {CATALOGUE: lambda doc: _add_catalogue_technique(doc, id="T1560.009", parent="T1111")},
        f"{CATALOGUE}: techniques[4].parent: T1111 cannot be the parent of T1560.009",
    ),
    "catalogue_subtechnique_without_parent": (
        {CATALOGUE: lambda doc: doc["techniques"][1].pop("parent")},
        f"{CATALOGUE}: techniques[1].parent: sub-technique T1560.001 needs parent: T1560",
    ),
    "catalogue_javascript_url": (
        {CATALOGUE: lambda doc: doc["tactics"][0].update(url="javascript:alert(1)")},
        f"{CATALOGUE}: tactics[0].url: 'javascript:alert(1)' is not an http:// or https:// URL",
    ),
    "catalogue_name_too_long": (
        {CATALOGUE: lambda doc: doc["techniques"][0].update(name="N" * 201)},
        f"{CATALOGUE}: techniques[0].name: is 201 characters long; the maximum is 200",
    ),
}


@pytest.mark.parametrize("case", sorted(INVALID_CONTENT_CASES))
def test_load_rejects_invalid_content(seed_detection, content_copy, case):
    changes, expected = INVALID_CONTENT_CASES[case]
    for relative, change in changes.items():
        edit_document(content_copy, relative, change)
    before = database_state()

    with pytest.raises(CommandError) as error:
        call_command("load_content", str(content_copy), verbosity=0)

    assert expected in str(error.value)
    assert "nothing was changed" in str(error.value)
    assert database_state() == before


SIGMA_CASES = {
    "selector_matches_nothing": (
        lambda text: text.replace("not 1 of filter_main_*", "not 1 of filter_mian_*"),
        "invalid condition: '1 of filter_mian_*' matches no detection identifier",
    ),
    "date_out_of_range": (
        lambda text: text.replace("date: 2026-12-04", "date: 2026-99-99"),
        "invalid YAML: invalid value '2026-99-99': month must be in 1..12",
    ),
    "quoted_date_out_of_range": (
        lambda text: text.replace("date: 2026-12-04", "date: '2026-99-99'"),
        "invalid Sigma rule: Rule date '2026-99-99' is invalid",
    ),
    "alias": (
        lambda text: text.replace("    selection:\n", "    selection: &sel\n", 1) + "extra: *sel\n",
        "invalid YAML: YAML anchors are not allowed (found &sel)",
    ),
    "nul_in_false_positive": (
        lambda text: text.replace(
            "    - Monitoring agents", '    - "Monitoring\\0 agents', 1
        ).replace("before sending it\n", 'before sending it"\n', 1),
        "falsepositives[2]: contains a NUL character",
    ),
}


@pytest.mark.parametrize("case", sorted(SIGMA_CASES))
def test_load_rejects_invalid_sigma_rule(seed_detection, content_copy, case):
    change, expected = SIGMA_CASES[case]
    path = content_copy / SEED_SIGMA
    path.write_text(change(path.read_text()))
    before = database_state()

    with pytest.raises(CommandError) as error:
        call_command("load_content", str(content_copy), verbosity=0)

    assert f"{DETECTION}: sigma_rules[0]: {SEED_SIGMA.as_posix()}: {expected}" in str(error.value)
    assert database_state() == before


def _at_limits(doc):
    doc.update(title="T" * 300, version=2**31 - 1, summary="Emoji 🗜️ and accents: é ü")
    doc.update(false_positives=[f"cause {index}" for index in range(1000)])
    doc["data_sources"][0].update(log_source="S" * 100, event_id=2**31 - 1)
    doc["tests"][0]["telemetry"][1]["artifact_path"] = "p" * 500
    test = doc["tests"][0]
    telemetry = test.pop("telemetry")
    # Export writes `events` just before `telemetry`.
    test.update(events=AT_LIMITS_EVENTS, telemetry=telemetry)


AT_LIMITS_EVENTS = "events/01-python-zlib-compression-of-sensitive-file-collection.ndjson"


def test_load_accepts_values_at_the_limits(db, content_copy, tmp_path):
    edit_document(content_copy, SEED_FILE, _at_limits)
    events_path = content_copy / SEED_FILE.parent / AT_LIMITS_EVENTS
    events_path.parent.mkdir(exist_ok=True)
    # Keys in sorted order, as export writes them.
    events_path.write_text(
        '{"Count": 1180591620717411303424, "Empty": null, "Flag": true, "Ratio": -0.5}\n'
    )

    content_load(root=content_copy)
    content_export(root=tmp_path / "out")

    assert (tmp_path / "out" / SEED_FILE).read_bytes() == (content_copy / SEED_FILE).read_bytes()
    exported_events = tmp_path / "out" / SEED_FILE.parent / AT_LIMITS_EVENTS
    assert exported_events.read_bytes() == events_path.read_bytes()
