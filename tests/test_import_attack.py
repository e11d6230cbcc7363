"""import_attack on small STIX bundles written by the tests, in both input layouts."""

import json
import os
import uuid

import pytest
from django.core.management import call_command
from django.test import override_settings

from detections.models import Analytic, DataComponent, DetectionStrategy, Tactic, Technique

from .conftest import CONTENT_DIR
from .import_helpers import only_failure, rule_text, run_import, write


def stix_id(kind: str, name: str) -> str:
    return f"{kind}--{uuid.uuid5(uuid.NAMESPACE_URL, name)}"


def attack_object(kind: str, attack_id: str, name: str, **fields) -> dict:
    page = attack_id.replace(".", "/")
    return {
        "type": kind,
        "id": stix_id(kind, attack_id),
        "name": name,
        "external_references": [
            {
                "source_name": "mitre-attack",
                "external_id": attack_id,
                "url": f"https://attack.mitre.org/x/{page}",
            }
        ],
        **fields,
    }


def phases(*names: str) -> list[dict]:
    return [{"kill_chain_name": "mitre-attack", "phase_name": name} for name in names]


def relationship(kind: str, source: str, target: str) -> dict:
    return {
        "type": "relationship",
        "id": stix_id("relationship", f"{kind}{source}{target}"),
        "relationship_type": kind,
        "source_ref": source,
        "target_ref": target,
    }


def sample_objects() -> list[dict]:
    """Two tactics, a technique with a sub-technique, a revoked and a deprecated
    technique, data components with and without a data source, an analytic and a
    detection strategy, as ATT&CK v18 writes them."""
    process = attack_object("x-mitre-data-source", "DS0009", "Process")
    creation = attack_object(
        "x-mitre-data-component",
        "DC0032",
        "Process Creation",
        description="A new process starts.",
        x_mitre_data_source_ref=process["id"],
    )
    script = attack_object("x-mitre-data-component", "DC0029", "Script Execution")
    analytic = attack_object(
        "x-mitre-analytic",
        "AN0001",
        "Analytic 0001",
        description="Watch PowerShell start with encoded commands.",
        x_mitre_platforms=["Windows"],
        x_mitre_log_source_references=[
            {
                "x_mitre_data_component_ref": creation["id"],
                "name": "WinEventLog:Security",
                "channel": "EventCode=4688",
            }
        ],
        x_mitre_mutable_elements=[{"field": "TimeWindow", "description": "Tune per site."}],
    )
    strategy = attack_object(
        "x-mitre-detection-strategy",
        "DET0001",
        "Detect Encoded PowerShell",
        x_mitre_analytic_refs=[analytic["id"]],
    )
    technique = attack_object(
        "attack-pattern",
        "T1059",
        "Command and Scripting Interpreter",
        kill_chain_phases=phases("execution"),
        x_mitre_platforms=["Windows", "Linux"],
        description="Adversaries abuse interpreters.",
    )
    subtechnique = attack_object(
        "attack-pattern",
        "T1059.001",
        "PowerShell",
        kill_chain_phases=phases("execution"),
        x_mitre_is_subtechnique=True,
    )
    revoked = attack_object("attack-pattern", "T1086", "PowerShell", revoked=True)
    deprecated = attack_object(
        "attack-pattern",
        "T1064",
        "Scripting",
        kill_chain_phases=phases("execution", "defense-evasion"),
        x_mitre_deprecated=True,
    )
    return [
        attack_object(
            "x-mitre-tactic", "TA0002", "Execution", x_mitre_shortname="execution",
            description="The adversary is trying to run code.",
        ),
        attack_object(
            "x-mitre-tactic", "TA0005", "Defense Evasion", x_mitre_shortname="defense-evasion"
        ),
        technique,
        subtechnique,
        revoked,
        deprecated,
        process,
        creation,
        script,
        analytic,
        strategy,
        relationship("revoked-by", revoked["id"], subtechnique["id"]),
        relationship("detects", strategy["id"], subtechnique["id"]),
        relationship("uses", stix_id("malware", "x"), technique["id"]),
        {"type": "malware", "id": stix_id("malware", "x"), "name": "Ignored"},
    ]


def bundle_file(folder, objects: list[dict], name: str = "enterprise-attack.json"):
    bundle = {
        "type": "bundle",
        "id": stix_id("bundle", name),
        "spec_version": "2.0",
        "objects": objects,
    }
    return write(folder, name, json.dumps(bundle))


def object_folder(folder, objects: list[dict]):
    """Write one bundle per object under a folder per type, as MITRE's cti repository does."""
    root = folder / "enterprise-attack"
    for item in objects:
        bundle_file(root / item["type"], [item], f"{item['id']}.json")
    return root


def assert_sample_stored() -> None:
    technique = Technique.objects.get(attack_id="T1059.001")
    assert technique.name == "PowerShell"
    assert technique.parent.attack_id == "T1059"
    assert list(technique.tactics.values_list("attack_id", flat=True)) == ["TA0002"]
    assert technique.url == "https://attack.mitre.org/x/T1059/001"
    parent = Technique.objects.get(attack_id="T1059")
    assert parent.platforms == ["Windows", "Linux"]
    assert parent.description == "Adversaries abuse interpreters."
    revoked = Technique.objects.get(attack_id="T1086")
    assert revoked.revoked is True
    assert revoked.revoked_by == technique
    deprecated = Technique.objects.get(attack_id="T1064")
    assert deprecated.deprecated is True
    assert set(deprecated.tactics.values_list("attack_id", flat=True)) == {"TA0002", "TA0005"}
    tactic = Tactic.objects.get(attack_id="TA0002")
    assert tactic.shortname == "execution"
    assert tactic.description == "The adversary is trying to run code."
    component = DataComponent.objects.get(attack_id="DC0032")
    assert component.data_source == "Process"
    assert component.data_source_id == "DS0009"
    assert DataComponent.objects.get(attack_id="DC0029").label == "Script Execution"
    analytic = Analytic.objects.get(attack_id="AN0001")
    assert analytic.platforms == ["Windows"]
    assert analytic.log_sources == [
        {"name": "WinEventLog:Security", "channel": "EventCode=4688", "component": "DC0032"}
    ]
    assert list(analytic.data_components.values_list("attack_id", flat=True)) == ["DC0032"]
    assert analytic.mutable_elements == [{"field": "TimeWindow", "description": "Tune per site."}]
    strategy = DetectionStrategy.objects.get(attack_id="DET0001")
    assert list(strategy.analytics.all()) == [analytic]
    assert list(strategy.techniques.all()) == [technique]


def test_bundle_file_imported(db, tmp_path):
    path = bundle_file(tmp_path, sample_objects())

    summary = run_import("import_attack", path)

    assert summary["created"] == 10
    assert summary["failed"] == []
    assert_sample_stored()


def test_object_folder_imported(db, tmp_path):
    folder = object_folder(tmp_path, sample_objects())
    write(folder, "README.md", "not JSON")

    summary = run_import("import_attack", folder)

    assert summary["created"] == 10
    assert_sample_stored()


def test_reimport_unchanged(db, tmp_path):
    path = bundle_file(tmp_path, sample_objects())
    run_import("import_attack", path)

    summary = run_import("import_attack", path)

    assert summary["unchanged"] == 10
    assert summary["created"] == 0
    assert summary["updated"] == 0


def test_changed_object_updated(db, tmp_path):
    objects = sample_objects()
    path = bundle_file(tmp_path, objects)
    run_import("import_attack", path)
    objects[2]["name"] = "Command Interpreter"
    bundle_file(tmp_path, objects)

    summary = run_import("import_attack", path)

    assert summary["updated"] == 1
    assert Technique.objects.get(attack_id="T1059").name == "Command Interpreter"


def test_v18_component_keeps_stored_data_source(db, tmp_path):
    call_command("load_content", str(CONTENT_DIR), verbosity=0)
    component = attack_object("x-mitre-data-component", "DC0032", "Process Creation")

    run_import("import_attack", bundle_file(tmp_path, [component]))

    stored = DataComponent.objects.get(attack_id="DC0032")
    assert stored.data_source == "Process"
    assert stored.data_source_id == "DS0009"
    assert stored.stix_id == component["id"]


def test_sigma_tags_map_after_import(db, tmp_path):
    run_import("import_attack", bundle_file(tmp_path, sample_objects()))
    text = rule_text().replace("attack.collection", "attack.execution")
    text = text.replace("attack.t1560.002", "attack.t1086")
    write(tmp_path / "rules", "rule.yml", text)

    summary = run_import("import_sigma", tmp_path / "rules")

    messages = [item["message"] for item in summary["warnings"]]
    assert "T1086 is revoked in the ATT&CK catalogue; ATT&CK replaced it with T1059.001" in messages


# --- Broken and hostile input ---------------------------------------------------------


def deep_json(levels: int) -> str:
    return "[" * levels + "]" * levels


BROKEN_FILES = {
    "not_json": (b"{not json", "not valid JSON"),
    "nan_constant": (b'{"type": "bundle", "objects": [NaN]}', "NaN is not a JSON number"),
    "invalid_utf8": (b'{"type": "bundle", "name": "\xff"}', "not valid JSON"),
    "deep_nesting": (deep_json(100000).encode(), "nested too deeply"),
    "top_level_list": (b"[]", "must be a JSON object"),
    "objects_not_list": (b'{"type": "bundle", "objects": {}}', "'objects' must be a list"),
    "object_not_mapping": (
        b'{"type": "bundle", "objects": [5]}', "a STIX object must be a JSON object"
    ),
}


@pytest.mark.parametrize("case", list(BROKEN_FILES))
def test_broken_file_fails(db, tmp_path, case):
    content, reason = BROKEN_FILES[case]
    path = write(tmp_path, "bundle.json", content)

    summary = run_import("import_attack", path, expect_failure=True)

    failure = only_failure(summary)
    assert failure["file"] == str(path)
    assert reason in failure["reason"]


BROKEN_OBJECTS = {
    "missing_attack_id": (
        {"type": "attack-pattern", "id": "attack-pattern--1", "name": "x"},
        "no mitre-attack external reference",
    ),
    "wrong_id_pattern": (
        attack_object("attack-pattern", "TA0001", "Wrong"),
        "the ATT&CK id 'TA0001' is not valid for a attack-pattern",
    ),
    "nul_in_name": (attack_object("attack-pattern", "T1001", "Bad\u0000Name"), "NUL character"),
    "name_not_string": (
        attack_object("attack-pattern", "T1001", ["list"]), "'name' must be a non-empty string"
    ),
    "name_too_long": (attack_object("attack-pattern", "T1001", "x" * 201), "the maximum is 200"),
    "platforms_not_strings": (
        attack_object("attack-pattern", "T1001", "Name", x_mitre_platforms=[1]),
        "'x_mitre_platforms' must be a list of strings",
    ),
    "missing_parent": (
        attack_object(
            "attack-pattern", "T1999.001", "Orphan", kill_chain_phases=phases("execution")
        ),
        "the parent technique T1999 of T1999.001 is neither in the input nor stored",
    ),
    "tactic_shortname_not_slug": (
        attack_object("x-mitre-tactic", "TA0099", "Odd", x_mitre_shortname="Not A Slug"),
        "is not a slug",
    ),
}


@pytest.mark.parametrize("case", list(BROKEN_OBJECTS))
def test_broken_object_left_out(db, tmp_path, case):
    bad, reason = BROKEN_OBJECTS[case]
    path = bundle_file(tmp_path, sample_objects() + [bad])

    summary = run_import("import_attack", path, expect_failure=True)

    assert reason in only_failure(summary)["reason"]
    assert summary["created"] == 10
    assert_sample_stored()


def test_javascript_url_not_stored(db, tmp_path):
    tactic = attack_object("x-mitre-tactic", "TA0002", "Execution", x_mitre_shortname="execution")
    tactic["external_references"][0]["url"] = "javascript:alert(1)"

    run_import("import_attack", bundle_file(tmp_path, [tactic]))

    assert Tactic.objects.get(attack_id="TA0002").url == ""


def test_duplicate_active_ids_fail(db, tmp_path):
    first = attack_object("x-mitre-tactic", "TA0002", "Execution", x_mitre_shortname="execution")
    second = dict(first, id=stix_id("x-mitre-tactic", "other"), name="Other")

    path = bundle_file(tmp_path, [first, second])

    summary = run_import("import_attack", path, expect_failure=True)

    assert "TA0002 is also the id of" in only_failure(summary)["reason"]
    assert Tactic.objects.get(attack_id="TA0002").name == "Execution"


@override_settings(IMPORT_MAX_FILE_BYTES=1000)
def test_folder_file_over_limit(db, tmp_path):
    folder = object_folder(tmp_path, sample_objects())
    write(folder / "attack-pattern", "huge.json", "{" + " " * 2000 + "}")

    summary = run_import("import_attack", folder, expect_failure=True)

    assert only_failure(summary)["reason"] == "file is larger than the limit of 1000 bytes"


def test_folder_link_outside_rejected(db, tmp_path):
    folder = object_folder(tmp_path, sample_objects())
    os.symlink("/etc/hostname", folder / "attack-pattern" / "link.json")

    summary = run_import("import_attack", folder, expect_failure=True)

    assert "is a link to /etc/hostname, which is outside" in only_failure(summary)["reason"]
