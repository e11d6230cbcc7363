"""The content file format, as field specifications, and the checker that applies them.

A specification maps each key of a YAML mapping to a `Field`. The checker walks a
parsed document and reports every problem with its field path, such as
`tests[2].telemetry[0].event_id`, so an author can find it in the file.

Lengths, item counts and integer ranges follow the model columns the values are
stored in, so content that passes the checker fits on SQLite and on PostgreSQL alike.
"""

from dataclasses import dataclass
from typing import Any

from .values import join_path, json_problems, kind_name, scalar_problem

LEVELS = ("informational", "low", "medium", "high", "critical")
STATUSES = ("draft", "review", "published", "deprecated")
EXPECTATIONS = ("fires", "silent")

# PositiveIntegerField is a 4-byte `integer` on PostgreSQL.
MAX_INTEGER = 2**31 - 1
# Rows of these lists get a PositiveSmallIntegerField position (at most 32,767); no
# real detection comes near this many entries.
MAX_ROWS = 1000
# Django's URLField default max_length.
MAX_URL_LENGTH = 200
ATTACK_ID_LENGTH = 16


@dataclass(frozen=True)
class Field:
    """One key of a mapping: its kind, whether it is required, and its limits.

    A "list" field contains mappings described by `fields`, or scalars described by
    `item`. `max_length` is in characters, as the database column counts them.
    """

    kind: str
    required: bool = False
    choices: tuple[str, ...] = ()
    fields: dict[str, "Field"] | None = None
    item: "Field | None" = None
    max_length: int | None = None
    non_empty: bool = False
    max_items: int | None = None
    unique: bool = False
    minimum: int = 0
    maximum: int = MAX_INTEGER


def list_of(item: Field, **options) -> Field:
    """Return a Field for a list of scalars, each checked against `item`."""
    return Field("list", item=item, **options)


def text(max_length: int | None = None, *, required: bool = False) -> Field:
    return Field("str", required=required, max_length=max_length)


STRINGS = list_of(text())
SLUGS = list_of(Field("slug", max_length=200), unique=True)

TELEMETRY_FIELDS = {
    "source": text(100, required=True),
    "event_id": Field("int"),
    "event_name": text(100),
    "key_fields": Field("json_object"),
    "artifact_path": text(500),
    "description": text(),
}

TEST_FIELDS = {
    "name": text(300, required=True),
    "description": text(),
    "atomic_guid": Field("uuid"),
    "platform": Field("choice", required=True, choices=("windows", "linux", "macos")),
    "executor": text(50),
    "executor_summary": text(),
    "expected_signal": text(required=True),
    "expect": Field("choice", choices=EXPECTATIONS),
    "min_matches": Field("int"),
    "known_false_positive": Field("bool"),
    "events": text(200),
    "telemetry": Field("list", fields=TELEMETRY_FIELDS, max_items=MAX_ROWS),
    "recorded_events": Field("json_objects"),
}

BRANCH_FIELDS = {
    "name": text(100, required=True),
    "description": text(),
    "log_source": text(100, required=True),
    "event_id": Field("int", required=True),
    "sigma_rule": Field("uuid"),
    "dll_names": STRINGS,
    "excluded_processes": STRINGS,
    "excluded_paths": STRINGS,
    "processes": STRINGS,
    "command_line_markers": STRINGS,
    "file_extensions": STRINGS,
    "staging_paths": STRINGS,
}

QUERY_FIELDS = {
    "platform": text(100, required=True),
    "language": text(50, required=True),
    "required_sourcetypes": STRINGS,
    "output_fields": STRINGS,
    "branch_field": text(100),
    "text": text(required=True),
    "branches": Field("list", fields=BRANCH_FIELDS, max_items=MAX_ROWS),
}

# The condition is checked by checks.tuning_problems with pySigma; the rule ids and
# branch names against the detection's Sigma files and queries by the reader.
TUNING_FIELDS = {
    "id": Field("uuid", required=True),
    "condition": Field("json_object", required=True),
    "rules": list_of(Field("uuid"), unique=True),
    "branches": list_of(text(100), unique=True),
    "reason": text(required=True),
    "owner": text(200, required=True),
    "expires": Field("date"),
    "ticket": text(300),
    "enabled": Field("bool"),
}

DETECTION_FIELDS = {
    "format_version": Field("int", required=True),
    "id": Field("uuid", required=True),
    "slug": Field("slug", required=True, max_length=200),
    "title": text(300, required=True),
    "platform": text(100, required=True),
    "query_language": text(50, required=True),
    "status": Field("choice", required=True, choices=STATUSES),
    # Detection.version defaults to 1, so 0 would load as 1 and export differently.
    "version": Field("int", minimum=1),
    "severity": Field("choice", required=True, choices=LEVELS),
    "confidence": Field("choice", required=True, choices=LEVELS),
    "date_created": Field("date"),
    "date_modified": Field("date"),
    "authors": STRINGS,
    "canonical_reference": Field("url", max_length=MAX_URL_LENGTH),
    "references": list_of(Field("url")),
    "attack": Field(
        "list",
        required=True,
        non_empty=True,
        max_items=MAX_ROWS,
        fields={
            "tactic": Field("tactic", required=True),
            "technique": Field("technique", required=True),
            "subtechnique": Field("subtechnique"),
        },
    ),
    "description": text(required=True),
    "libraries": Field(
        "list",
        fields={
            "ecosystem": text(required=True),
            "names": Field("list", required=True, item=text()),
            "classes": STRINGS,
        },
    ),
    "evaded_tools": STRINGS,
    "malware_families": STRINGS,
    "summary": text(),
    "data_sources": Field(
        "list",
        max_items=MAX_ROWS,
        fields={
            "component": text(ATTACK_ID_LENGTH, required=True),
            "log_source": text(100, required=True),
            "event_id": Field("int"),
            "event_name": text(100),
        },
    ),
    "queries": Field("list", fields=QUERY_FIELDS, max_items=MAX_ROWS),
    # The path rules for Sigma files are in checks.sigma_path_problem.
    "sigma_rules": list_of(text(200), unique=True, max_items=MAX_ROWS),
    "false_positives": list_of(text(), max_items=MAX_ROWS),
    "tuning_notes": text(),
    "tuning": Field("list", fields=TUNING_FIELDS, max_items=MAX_ROWS),
    "tests": Field("list", fields=TEST_FIELDS, max_items=MAX_ROWS),
    "related": SLUGS,
    "other_platforms": SLUGS,
}

CATALOGUE_FIELDS = {
    "format_version": Field("int", required=True),
    "tactics": Field(
        "list",
        required=True,
        fields={
            "id": Field("tactic", required=True),
            "name": text(200, required=True),
            "shortname": Field("slug", required=True, max_length=100),
            "url": Field("url", required=True, max_length=MAX_URL_LENGTH),
        },
    ),
    "techniques": Field(
        "list",
        required=True,
        fields={
            "id": Field("attack_technique", required=True),
            "name": text(200, required=True),
            "url": Field("url", required=True, max_length=MAX_URL_LENGTH),
            "parent": Field("technique"),
            "tactics": list_of(Field("tactic"), unique=True),
        },
    ),
    "data_components": Field(
        "list",
        fields={
            "id": text(ATTACK_ID_LENGTH, required=True),
            "name": text(200, required=True),
            "data_source": text(200, required=True),
            "data_source_id": text(ATTACK_ID_LENGTH, required=True),
            "url": Field("url", required=True, max_length=MAX_URL_LENGTH),
        },
    ),
}


def check_mapping(value: Any, spec: dict[str, Field], where: str = "") -> list[tuple[str, str]]:
    """Check a parsed mapping against a specification; return (field path, problem) pairs."""
    if not isinstance(value, dict):
        return [(where or "(document)", f"must be a mapping, not {kind_name(value)}")]
    problems = []
    for key in value:
        if key not in spec:
            known = ", ".join(spec)
            problems.append((join_path(where, str(key)), f"unknown field; known fields: {known}"))
    for key, field in spec.items():
        path = join_path(where, key)
        if key not in value or value[key] is None:
            if field.required:
                problems.append((path, "missing required field"))
            continue
        problems.extend(_check_value(value[key], field, path))
    return problems


def _check_value(value: Any, field: Field, path: str) -> list[tuple[str, str]]:
    if field.kind == "list":
        return _check_list(value, field, path)
    if field.kind == "json_object":
        if not isinstance(value, dict):
            return [(path, f"must be a mapping, not {kind_name(value)}")]
        return json_problems(value, path)
    if field.kind == "json_objects":
        if not isinstance(value, list):
            return [(path, f"must be a list of mappings, not {kind_name(value)}")]
        problems = []
        for index, item in enumerate(value):
            where = f"{path}[{index}]"
            if isinstance(item, dict):
                problems.extend(json_problems(item, where))
            else:
                problems.append((where, f"must be a mapping, not {kind_name(item)}"))
        return problems
    problem = scalar_problem(value, field)
    return [(path, problem)] if problem else []


def _check_list(value: Any, field: Field, path: str) -> list[tuple[str, str]]:
    if not isinstance(value, list):
        return [(path, f"must be a list, not {kind_name(value)}")]
    if field.non_empty and not value:
        return [(path, "must have at least one entry")]
    if field.max_items is not None and len(value) > field.max_items:
        return [(path, f"has {len(value)} entries; the maximum is {field.max_items}")]
    problems = []
    seen = set()
    for index, item in enumerate(value):
        where = f"{path}[{index}]"
        if field.item is None:
            problems.extend(check_mapping(item, field.fields or {}, where))
            continue
        problem = scalar_problem(item, field.item)
        if problem:
            problems.append((where, problem))
        elif field.unique and item in seen:
            problems.append((where, f"{item!r} is listed twice"))
        else:
            seen.add(item)
    return problems
