"""Rendering opens no network connection, and pySigma's ATT&CK data comes from the repository.

pySigma 1.x downloads MITRE's STIX bundle on first use of sigma.data.mitre_attack;
detections.pysigma.attack_data points it at content/attack-stix.json instead.
"""

import dataclasses
import json
import socket
from pathlib import Path

import pytest
import yaml

from detections.pysigma import attack_data
from detections.pysigma.convert import TargetConverter, load_rule, render_targets

from .conftest import CONTENT_DIR, SEED_SLUG

RULE_FILES = sorted((CONTENT_DIR / "detections" / SEED_SLUG / "sigma").glob("*.yml"))
SHIPPED_STIX = CONTENT_DIR / "attack-stix.json"


@pytest.fixture
def network_attempts(monkeypatch) -> list[str]:
    """Make every way of opening a connection record the attempt and raise OSError."""
    attempts: list[str] = []

    def blocked(name: str):
        def record_and_raise(*args, **kwargs):
            attempts.append(f"{name}{args!r}")
            raise OSError(f"the test blocks network access: {name}")

        return record_and_raise

    monkeypatch.setattr(socket.socket, "connect", blocked("socket.connect"))
    monkeypatch.setattr(socket.socket, "connect_ex", blocked("socket.connect_ex"))
    monkeypatch.setattr(socket, "create_connection", blocked("socket.create_connection"))
    monkeypatch.setattr(socket, "getaddrinfo", blocked("socket.getaddrinfo"))
    return attempts


@pytest.fixture
def fresh_attack_cache(settings, tmp_path):
    """An empty pySigma cache, so the ATT&CK data must be read from the STIX file again."""
    settings.SIGMA_CACHE_DIR = tmp_path / "pysigma-cache"
    attack_data._configured_for = None
    yield settings
    # The next converter points pySigma at the configured file and cache again.
    attack_data._configured_for = None


def _esql_siem_rule_target():
    esql = render_targets()["elasticsearch_esql"]
    return dataclasses.replace(esql, key="elasticsearch_esql_siem_rule", output_format="siem_rule")


def _threat(query: str) -> list[dict]:
    return json.loads(query)["params"]["threat"]


def test_offline_every_target_renders(network_attempts, fresh_attack_cache):
    outcomes = {}

    for key, target in render_targets().items():
        converter = TargetConverter(target)
        for rule_path in RULE_FILES:
            rule = load_rule(rule_path.read_text(encoding="utf-8"))
            outcomes[(key, rule_path.name)] = converter.convert(rule)

    assert network_attempts == []
    assert len(outcomes) == len(render_targets()) * len(RULE_FILES)
    blocked_errors = [
        outcome.error for outcome in outcomes.values() if "blocks network access" in outcome.error
    ]
    assert blocked_errors == []
    rendered = [outcome for outcome in outcomes.values() if outcome.succeeded]
    assert rendered != []


def test_offline_esql_siem_rule_uses_shipped_attack(network_attempts, fresh_attack_cache):
    converter = TargetConverter(_esql_siem_rule_target())
    rule = load_rule(RULE_FILES[0].read_text(encoding="utf-8"))

    conversion = converter.convert(rule)

    assert network_attempts == []
    assert conversion.error == ""
    threat = _threat(conversion.query)
    assert threat[0]["tactic"]["id"] == "TA0009"
    technique = threat[0]["technique"][0]
    assert technique["id"] == "T1560"
    assert technique["name"] == "Archive Collected Data"
    assert technique["subtechnique"][0]["id"] == "T1560.002"
    assert technique["subtechnique"][0]["name"] == "Archive via Library"


def test_offline_attack_names_come_from_stix_file(network_attempts, fresh_attack_cache, tmp_path):
    bundle = json.loads(SHIPPED_STIX.read_text(encoding="utf-8"))
    for entry in bundle["objects"]:
        if entry.get("name") == "Archive via Library":
            entry["name"] = "Archive via Library (edited copy)"
    edited_stix = tmp_path / "attack-stix-edited.json"
    edited_stix.write_text(json.dumps(bundle), encoding="utf-8")
    fresh_attack_cache.SIGMA_ATTACK_STIX_FILE = edited_stix
    converter = TargetConverter(_esql_siem_rule_target())
    rule = load_rule(RULE_FILES[0].read_text(encoding="utf-8"))

    conversion = converter.convert(rule)

    assert network_attempts == []
    subtechnique = _threat(conversion.query)[0]["technique"][0]["subtechnique"][0]
    assert subtechnique["name"] == "Archive via Library (edited copy)"


def test_offline_missing_stix_file_raises(fresh_attack_cache, tmp_path):
    fresh_attack_cache.SIGMA_ATTACK_STIX_FILE = tmp_path / "missing.json"

    with pytest.raises(FileNotFoundError, match="SIGMA_ATTACK_STIX_FILE=.*missing.json"):
        attack_data.use_shipped_attack_data()


def test_shipped_stix_matches_attack_catalogue():
    catalogue = yaml.safe_load((CONTENT_DIR / "attack.yml").read_text(encoding="utf-8"))

    expected = attack_data.stix_bundle_text(catalogue)

    assert SHIPPED_STIX.read_text(encoding="utf-8") == expected


def test_shipped_stix_is_default_setting(settings):
    assert Path(settings.SIGMA_ATTACK_STIX_FILE) == SHIPPED_STIX
