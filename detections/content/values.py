"""Checks of single values against a `schema.Field`, and of free-form JSON values.

Each check returns a sentence describing the problem, or None when the value is fine.
"""

import datetime
import math
import re
import uuid
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

if TYPE_CHECKING:
    from .schema import Field

SLUG_PATTERN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
TACTIC_PATTERN = re.compile(r"TA\d{4}")
TECHNIQUE_PATTERN = re.compile(r"T\d{4}")
SUBTECHNIQUE_PATTERN = re.compile(r"T\d{4}\.\d{3}")
ATTACK_TECHNIQUE_PATTERN = re.compile(r"T\d{4}(?:\.\d{3})?")
SURROGATE_PATTERN = re.compile("[\ud800-\udfff]")
_url_validator = URLValidator(schemes=["http", "https"])


def text_problem(value: str) -> str | None:
    """Describe characters in `value` that PostgreSQL cannot store, or return None."""
    if "\0" in value:
        return "contains a NUL character (\\0), which the database cannot store; remove it"
    surrogate = SURROGATE_PATTERN.search(value)
    if surrogate:
        return (
            f"contains the lone surrogate U+{ord(surrogate.group()):04X}, which is not valid "
            "Unicode; write the character itself instead of a \\u escape"
        )
    return None


def scalar_problem(value: Any, field: "Field") -> str | None:  # noqa: PLR0911
    """Describe why a scalar `value` does not fit `field`, or return None."""
    kind = field.kind
    if kind == "int":
        return _int_problem(value, field)
    if kind == "bool":
        return None if isinstance(value, bool) else f"must be true or false, not {value!r}"
    if kind == "date":
        ok = isinstance(value, datetime.date) and not isinstance(value, datetime.datetime)
        return None if ok else f"must be a date written as YYYY-MM-DD, not {value!r}"
    if not isinstance(value, str):
        return f"must be a string, not {kind_name(value)}"
    problem = text_problem(value)
    if problem:
        return problem
    if field.max_length is not None and len(value) > field.max_length:
        return f"is {len(value)} characters long; the maximum is {field.max_length}"
    check = _STRING_CHECKS.get(kind)
    return check(value, field) if check else None


def _int_problem(value: Any, field: "Field") -> str | None:
    if not isinstance(value, int) or isinstance(value, bool):
        return f"must be a whole number, not {_preview(value)}"
    if not field.minimum <= value <= field.maximum:
        return (
            f"must be a whole number from {field.minimum} to {field.maximum}, not {_preview(value)}"
        )
    return None


def _choice_problem(value: str, field: "Field") -> str | None:
    if value in field.choices:
        return None
    return f"{value!r} is not one of: {', '.join(field.choices)}"


def _slug_problem(value: str, field: "Field") -> str | None:
    if SLUG_PATTERN.fullmatch(value):
        return None
    return f"{value!r} is not a slug (lowercase letters, digits and single hyphens)"


def _uuid_problem(value: str, field: "Field") -> str | None:
    try:
        canonical = str(uuid.UUID(value))
    except ValueError:
        return f"{value!r} is not a UUID"
    if canonical != value:
        return f"{value!r} is not in the canonical form; write it as {canonical}"
    return None


def _tactic_problem(value: str, field: "Field") -> str | None:
    if TACTIC_PATTERN.fullmatch(value):
        return None
    return f"{value!r} is not an ATT&CK tactic id such as TA0009"


def _technique_problem(value: str, field: "Field") -> str | None:
    if TECHNIQUE_PATTERN.fullmatch(value):
        return None
    if SUBTECHNIQUE_PATTERN.fullmatch(value):
        parent = value.split(".", 1)[0]
        return (
            f"{value!r} is a sub-technique id; write {parent} here and {value} as the subtechnique"
        )
    return f"{value!r} is not an ATT&CK technique id such as T1560"


def _subtechnique_problem(value: str, field: "Field") -> str | None:
    if SUBTECHNIQUE_PATTERN.fullmatch(value):
        return None
    return f"{value!r} is not an ATT&CK sub-technique id such as T1560.002"


def _attack_technique_problem(value: str, field: "Field") -> str | None:
    if ATTACK_TECHNIQUE_PATTERN.fullmatch(value):
        return None
    return f"{value!r} is not an ATT&CK technique id such as T1560 or T1560.002"


def _url_problem(value: str, field: "Field") -> str | None:
    try:
        _url_validator(value)
    except ValidationError:
        return f"{value!r} is not an http:// or https:// URL"
    return None


_STRING_CHECKS = {
    "choice": _choice_problem,
    "slug": _slug_problem,
    "uuid": _uuid_problem,
    "tactic": _tactic_problem,
    "technique": _technique_problem,
    "subtechnique": _subtechnique_problem,
    "attack_technique": _attack_technique_problem,
    "url": _url_problem,
}


def json_problems(value: Any, where: str) -> list[tuple[str, str]]:
    """Check a free-form value that is stored in a JSONField, at every level.

    JSON can contain strings, finite numbers, booleans, null, lists and mappings with
    string keys. YAML also has dates, timestamps, binary data, NaN, infinity and
    non-string keys, and each of these is reported with a hint to quote it. The walk
    uses a stack instead of recursion, so nesting depth cannot raise RecursionError.
    """
    problems = []
    pending = [(where, value)]
    while pending:
        path, item = pending.pop()
        if isinstance(item, dict):
            for key, child in reversed(item.items()):
                key_problem = (
                    text_problem(key)
                    if isinstance(key, str)
                    else f"mapping key {key!r} is not a string; quote the key"
                )
                if key_problem:
                    problems.append((path, key_problem))
                else:
                    pending.append((join_path(path, key), child))
            continue
        if isinstance(item, list):
            children = [(f"{path}[{index}]", child) for index, child in enumerate(item)]
            pending.extend(reversed(children))
            continue
        problem = _json_scalar_problem(item)
        if problem:
            problems.append((path, problem))
    return problems


def _json_scalar_problem(value: Any) -> str | None:
    if value is None or isinstance(value, bool | int):
        return None
    if isinstance(value, str):
        return text_problem(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return None
        return f"{value!r} cannot be stored as JSON; quote it to store it as text"
    if isinstance(value, datetime.datetime):
        return f"{value} is a timestamp, which JSON cannot store; quote it to store it as text"
    if isinstance(value, datetime.date):
        return f"{value} is a date, which JSON cannot store; quote it to store it as text"
    if isinstance(value, bytes):
        return "binary data (!!binary) cannot be stored as JSON; write the value as a string"
    return (
        f"{kind_name(value)} cannot be stored as JSON; use a string, number, boolean, "
        "null, list or mapping"
    )


def _preview(value: Any) -> str:
    preview = repr(value)
    return preview if len(preview) <= 40 else f"{preview[:40]}... ({len(preview)} characters)"


def join_path(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def kind_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string"}.get(
        type(value), type(value).__name__
    )
