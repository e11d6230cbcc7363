"""The content file format, as field specifications, and the checker that applies them.

A specification maps each key of a YAML mapping to a `Field`. The checker walks a
parsed document and reports every problem with its field path, such as
`tests[2].telemetry[0].event_id`, so an author can find it in the file.
"""

import datetime
import re
import uuid
from dataclasses import dataclass
from typing import Any

LEVELS = ("informational", "low", "medium", "high", "critical")
STATUSES = ("draft", "review", "published", "deprecated")
EXPECTATIONS = ("fires", "silent")
SLUG_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
ATTACK_TECHNIQUE_PATTERN = re.compile(r"^T\d{4}(?:\.\d{3})?$")


@dataclass(frozen=True)
class Field:
    """One key of a mapping: its kind, whether it is required, and nested fields."""

    kind: str
    required: bool = False
    choices: tuple[str, ...] = ()
    fields: dict[str, "Field"] | None = None


STRING_LIST = "list[str]"

TELEMETRY_FIELDS = {
    "source": Field("str", required=True),
    "event_id": Field("int"),
    "event_name": Field("str"),
    "key_fields": Field("dict"),
    "artifact_path": Field("str"),
    "description": Field("str"),
}

TEST_FIELDS = {
    "name": Field("str", required=True),
    "description": Field("str"),
    "atomic_guid": Field("uuid"),
    "platform": Field("choice", required=True, choices=("windows", "linux", "macos")),
    "executor": Field("str"),
    "executor_summary": Field("str"),
    "expected_signal": Field("str", required=True),
    "expect": Field("choice", choices=EXPECTATIONS),
    "min_matches": Field("int"),
    "known_false_positive": Field("bool"),
    "telemetry": Field("list", fields=TELEMETRY_FIELDS),
    "recorded_events": Field("list[dict]"),
}

BRANCH_FIELDS = {
    "name": Field("str", required=True),
    "description": Field("str"),
    "log_source": Field("str", required=True),
    "event_id": Field("int", required=True),
    "sigma_rule": Field("uuid"),
    "dll_names": Field(STRING_LIST),
    "excluded_processes": Field(STRING_LIST),
    "excluded_paths": Field(STRING_LIST),
    "processes": Field(STRING_LIST),
    "command_line_markers": Field(STRING_LIST),
    "file_extensions": Field(STRING_LIST),
    "staging_paths": Field(STRING_LIST),
}

QUERY_FIELDS = {
    "platform": Field("str", required=True),
    "language": Field("str", required=True),
    "required_sourcetypes": Field(STRING_LIST),
    "output_fields": Field(STRING_LIST),
    "branch_field": Field("str"),
    "text": Field("str", required=True),
    "branches": Field("list", fields=BRANCH_FIELDS),
}

DETECTION_FIELDS = {
    "format_version": Field("int", required=True),
    "id": Field("uuid", required=True),
    "slug": Field("slug", required=True),
    "title": Field("str", required=True),
    "platform": Field("str", required=True),
    "query_language": Field("str", required=True),
    "status": Field("choice", required=True, choices=STATUSES),
    "version": Field("int"),
    "severity": Field("choice", required=True, choices=LEVELS),
    "confidence": Field("choice", required=True, choices=LEVELS),
    "date_created": Field("date"),
    "date_modified": Field("date"),
    "authors": Field(STRING_LIST),
    "canonical_reference": Field("str"),
    "references": Field(STRING_LIST),
    "attack": Field(
        "list",
        required=True,
        fields={
            "tactic": Field("str", required=True),
            "technique": Field("technique", required=True),
            "subtechnique": Field("technique"),
        },
    ),
    "description": Field("str", required=True),
    "libraries": Field(
        "list",
        fields={
            "ecosystem": Field("str", required=True),
            "names": Field(STRING_LIST, required=True),
            "classes": Field(STRING_LIST),
        },
    ),
    "evaded_tools": Field(STRING_LIST),
    "malware_families": Field(STRING_LIST),
    "summary": Field("str"),
    "data_sources": Field(
        "list",
        fields={
            "component": Field("str", required=True),
            "log_source": Field("str", required=True),
            "event_id": Field("int"),
            "event_name": Field("str"),
        },
    ),
    "queries": Field("list", fields=QUERY_FIELDS),
    "sigma_rules": Field(STRING_LIST),
    "false_positives": Field(STRING_LIST),
    "tuning_notes": Field("str"),
    "tests": Field("list", fields=TEST_FIELDS),
    "related": Field(STRING_LIST),
    "other_platforms": Field(STRING_LIST),
}

CATALOGUE_FIELDS = {
    "format_version": Field("int", required=True),
    "tactics": Field(
        "list",
        required=True,
        fields={
            "id": Field("str", required=True),
            "name": Field("str", required=True),
            "shortname": Field("slug", required=True),
            "url": Field("str", required=True),
        },
    ),
    "techniques": Field(
        "list",
        required=True,
        fields={
            "id": Field("technique", required=True),
            "name": Field("str", required=True),
            "url": Field("str", required=True),
            "parent": Field("technique"),
            "tactics": Field(STRING_LIST),
        },
    ),
    "data_components": Field(
        "list",
        fields={
            "id": Field("str", required=True),
            "name": Field("str", required=True),
            "data_source": Field("str", required=True),
            "data_source_id": Field("str", required=True),
            "url": Field("str", required=True),
        },
    ),
}


def check_mapping(value: Any, spec: dict[str, Field], where: str = "") -> list[tuple[str, str]]:
    """Check a parsed mapping against a specification; return (field path, problem) pairs."""
    if not isinstance(value, dict):
        return [(where or "(document)", f"must be a mapping, not {_kind_name(value)}")]
    problems = []
    for key in value:
        if key not in spec:
            known = ", ".join(spec)
            problems.append((_join(where, str(key)), f"unknown field; known fields: {known}"))
    for key, field in spec.items():
        path = _join(where, key)
        if key not in value or value[key] is None:
            if field.required:
                problems.append((path, "missing required field"))
            continue
        problems.extend(_check_value(value[key], field, path))
    return problems


def _check_value(value: Any, field: Field, path: str) -> list[tuple[str, str]]:
    if field.kind == "list":
        if not isinstance(value, list):
            return [(path, f"must be a list, not {_kind_name(value)}")]
        problems = []
        for index, item in enumerate(value):
            problems.extend(check_mapping(item, field.fields or {}, f"{path}[{index}]"))
        return problems
    problem = _scalar_problem(value, field)
    return [(path, problem)] if problem else []


def _scalar_problem(value: Any, field: Field) -> str | None:  # noqa: PLR0911
    kind = field.kind
    if kind == STRING_LIST:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            return "must be a list of strings"
        return None
    if kind == "list[dict]":
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            return "must be a list of mappings"
        return None
    if kind == "dict":
        return None if isinstance(value, dict) else "must be a mapping"
    if kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        return None if ok else f"must be a whole number of 0 or more, not {value!r}"
    if kind == "bool":
        return None if isinstance(value, bool) else f"must be true or false, not {value!r}"
    if kind == "date":
        ok = isinstance(value, datetime.date) and not isinstance(value, datetime.datetime)
        return None if ok else f"must be a date written as YYYY-MM-DD, not {value!r}"
    if not isinstance(value, str):
        return f"must be a string, not {_kind_name(value)}"
    if kind == "choice" and value not in field.choices:
        return f"{value!r} is not one of: {', '.join(field.choices)}"
    if kind == "slug" and not SLUG_PATTERN.match(value):
        return f"{value!r} is not a slug (lowercase letters, digits and single hyphens)"
    if kind == "technique" and not ATTACK_TECHNIQUE_PATTERN.match(value):
        return f"{value!r} is not an ATT&CK technique id such as T1560 or T1560.002"
    if kind == "uuid":
        try:
            uuid.UUID(value)
        except ValueError:
            return f"{value!r} is not a UUID"
    return None


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _kind_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string"}.get(
        type(value), type(value).__name__
    )
