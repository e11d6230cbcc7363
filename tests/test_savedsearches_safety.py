"""Rule metadata must never add a key or a stanza to generated savedsearches.conf output.

The output is read the strictest way a .conf reader could: every character that
str.splitlines() treats as a line end ends a line, and a line ending with a backslash
continues on the next.
"""

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from detections.pysigma import convert
from detections.pysigma.convert import Conversion, TargetConverter, load_rule, render_targets

from .conftest import CONTENT_DIR, SEED_SLUG

RULE_ID = "5f0e8a55-1b1e-4d3e-9a43-0d3b3f8f6d11"
DEFAULT_KEYS = ["dispatch.earliest_time", "dispatch.latest_time"]
RULE_KEYS = ["description", "search"]


@dataclass
class ConfText:
    """The stanzas and keys a .conf reader finds in a text, in order."""

    stanzas: dict[str, list[str]] = field(default_factory=dict)
    values: dict[tuple[str, str], str] = field(default_factory=dict)
    invalid_lines: list[str] = field(default_factory=list)
    ends_in_continuation: bool = False


def conf_read(text: str) -> ConfText:
    """Read stanzas and keys from .conf text. Lines that are neither go to `invalid_lines`."""
    result = ConfText()
    logical_lines = []
    pending = None
    for line in text.splitlines():
        if pending is not None:
            line = pending + "\n" + line
            pending = None
        if line.endswith("\\"):
            pending = line[:-1]
            continue
        logical_lines.append(line)
    if pending is not None:
        logical_lines.append(pending)
        result.ends_in_continuation = True

    stanza = None
    for line in logical_lines:
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("[") and stripped.endswith("]"):
            stanza = stripped[1:-1]
            result.stanzas[stanza] = []
        elif "=" in line and stanza is not None:
            key, value = line.split("=", 1)
            result.stanzas[stanza].append(key.strip())
            result.values[(stanza, key.strip())] = value.strip()
        else:
            result.invalid_lines.append(line)
    return result


def rule_text(title: str, description: str, fields: list[str] | None = None) -> str:
    document = {
        "title": title,
        "id": RULE_ID,
        "status": "test",
        "description": description,
        "logsource": {"category": "process_creation", "product": "windows"},
        "detection": {"sel": {"CommandLine|contains": "zlib"}, "condition": "sel"},
        "level": "low",
    }
    if fields:
        document["fields"] = fields
    return yaml.safe_dump(document, allow_unicode=True)


def render(text: str, target_key: str = "splunk_savedsearches") -> Conversion:
    converter = TargetConverter(render_targets()[target_key])
    return converter.convert(load_rule(text))


def stanza_names(conf: ConfText) -> list[str]:
    return list(conf.stanzas)


def rule_stanza(conf: ConfText) -> str:
    return stanza_names(conf)[-1]


def codes(conversion: Conversion) -> set[str]:
    return {warning.code for warning in conversion.warnings}


TITLES = [
    "Title\naction.email = 1",
    "Title\r\naction.email = 1",
    "Title\raction.email = 1",
    "Title\u2028action.email = 1",
    "Title]\n[evil",
    "Title [x] = 1",
    "Title ends with backslash\\",
    "Title = value",
]

DESCRIPTIONS = [
    "first line\naction.email = 1",
    "[evil]\naction.email = 1",
    "ends with backslash\\",
    "ends with backslashes \\\\",
    "middle backslash\\\naction.email = 1",
    "carriage return\raction.email = 1",
    "crlf\r\naction.email = 1",
    "next line\x85action.email = 1",
    "x = y",
]

FIELDS = [
    ["Image", "CommandLine\naction.email = 1"],
    ["Image", "CommandLine\raction.email = 1"],
    ["Image", "CommandLine\\"],
    ["Image]\n[evil"],
]


@pytest.mark.parametrize("title", TITLES)
def test_savedsearches_title_adds_no_key(title):
    conf = conf_read(render(rule_text(title, "desc")).query)

    assert len(conf.stanzas) == 2
    assert conf.stanzas["default"] == DEFAULT_KEYS
    assert conf.stanzas[rule_stanza(conf)] == RULE_KEYS
    assert conf.invalid_lines == []
    assert not conf.ends_in_continuation


@pytest.mark.parametrize("description", DESCRIPTIONS)
def test_savedsearches_description_adds_no_key(description):
    conf = conf_read(render(rule_text("Title", description)).query)

    assert stanza_names(conf) == ["default", "Title"]
    assert conf.stanzas["Title"] == RULE_KEYS
    assert conf.invalid_lines == []
    assert not conf.ends_in_continuation


@pytest.mark.parametrize("fields", FIELDS)
def test_savedsearches_fields_add_no_key(fields):
    conf = conf_read(render(rule_text("Title", "desc", fields)).query)

    assert stanza_names(conf) == ["default", "Title"]
    assert conf.stanzas["Title"] == RULE_KEYS
    assert conf.invalid_lines == []
    assert not conf.ends_in_continuation


@pytest.mark.parametrize(
    ("title", "description", "fields"),
    [
        ("Title\naction.email = 1", "desc", None),
        ("Title\raction.email = 1", "desc", None),
        ("Title", "ends with backslash\\", None),
        ("Title", "carriage return\raction.email = 1", None),
        ("Title", "desc", ["Image", "CommandLine\raction.email = 1"]),
        ("Title", "desc", ["Image", "CommandLine\\"]),
    ],
)
def test_savedsearches_breaks_without_sanitizing(monkeypatch, title, description, fields):
    monkeypatch.setattr(convert, "savedsearches_metadata_sanitize", lambda rule: [])

    conf = conf_read(render(rule_text(title, description, fields)).query)
    broken = (
        len(conf.stanzas) != 2
        or conf.stanzas[rule_stanza(conf)] != RULE_KEYS
        or conf.invalid_lines
        or conf.ends_in_continuation
    )

    assert broken


def test_savedsearches_title_keeps_equals_sign():
    conf = conf_read(render(rule_text("Title = value", "desc")).query)

    assert stanza_names(conf) == ["default", "Title = value"]


def test_savedsearches_title_break_becomes_space():
    conf = conf_read(render(rule_text("Title\naction.email = 1", "desc")).query)

    assert stanza_names(conf) == ["default", "Title action.email = 1"]


def test_savedsearches_description_keeps_its_lines():
    conf = conf_read(render(rule_text("Title", "first line\naction.email = 1")).query)

    assert conf.values[("Title", "description")] == "first line \naction.email = 1"


def test_metadata_sanitized_names_title_change():
    conversion = render(rule_text("Title\naction.email = 1", "desc"))

    assert [w.code for w in conversion.warnings] == ["metadata_sanitized"]
    assert "title" in conversion.warnings[0].message


def test_metadata_sanitized_names_description():
    conversion = render(rule_text("Title", "ends with backslash\\"))

    assert "backslash at the end of the description" in conversion.warnings[0].message


def test_metadata_sanitized_names_last_field():
    conversion = render(rule_text("Title", "desc", ["Image", "CommandLine\\"]))

    assert "backslash at the end of the last field" in conversion.warnings[0].message


@pytest.mark.parametrize("description", ["plain", "first line\nsecond line", "a = b [c]"])
def test_metadata_sanitized_absent_for_safe_text(description):
    conversion = render(rule_text("Title [x] = y", description, ["Image", "CommandLine"]))

    assert "metadata_sanitized" not in codes(conversion)


def test_metadata_sanitized_absent_for_splunk():
    conversion = render(rule_text("Title\naction.email = 1", "desc"), target_key="splunk")

    assert "metadata_sanitized" not in codes(conversion)


def test_sanitizing_leaves_loaded_rule_unchanged():
    loaded = load_rule(rule_text("Title\naction.email = 1", "ends with backslash\\"))
    converter = TargetConverter(render_targets()["splunk_savedsearches"])

    converter.convert(loaded)

    assert loaded.rule.title == "Title\naction.email = 1"
    assert loaded.rule.description == "ends with backslash\\"


SHIPPED_RULES = sorted((CONTENT_DIR / "detections" / SEED_SLUG / "sigma").glob("*.yml"))


@pytest.mark.parametrize("path", SHIPPED_RULES, ids=lambda path: path.name)
def test_savedsearches_shipped_rule_as_sigma_cli(path):
    target = render_targets()["splunk_savedsearches"]
    command = [str(Path(sys.executable).parent / "sigma"), "convert", "-t", target.cli[0]]
    for pipeline in target.cli[1]:
        command += ["-p", pipeline]
    command += ["-f", "savedsearches", str(path)]

    conversion = render(path.read_text())
    cli = subprocess.run(command, capture_output=True, text=True, check=True)

    assert "metadata_sanitized" not in codes(conversion)
    assert cli.stdout == conversion.query + "\n"
