"""Tuning conditions as Sigma: checking them, turning them into Sigma filters and SPL.

A tuning condition is one Sigma detection selection, a mapping of `Field|modifier`
to a value or a list of values. The same condition becomes a Sigma filter (a
`filter:` meta rule that pySigma 1.x applies to the rules it names) and a Splunk
search expression for the detection's filter macro. Only conditions that both forms
express exactly are accepted, so the Sigma filters and the SPL macro always exclude
the same events.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from sigma.collection import SigmaCollection
from sigma.exceptions import SigmaError
from sigma.filters import SigmaFilter
from sigma.rule import SigmaDetection, SigmaRule
from sigma.types import (
    SigmaCompareExpression,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaRegularExpression,
    SigmaString,
    SpecialChars,
)

from .fidelity import _items_of
from .rules import SigmaRuleError

# The characters a backend may write unquoted into a query as a field name; the same
# rule applies to fields of imported Sigma rules.
FIELD_NAME_PATTERN = re.compile(r"[A-Za-z0-9_.-]+")
# Maximum number of field conditions in one entry, and of values per field.
MAX_CONDITION_FIELDS = 50
MAX_CONDITION_VALUES = 500
SCALAR_TYPES = (str, int, float, bool)


def condition_problems(condition: Any) -> list[str]:
    """Describe every reason `condition` is not a usable tuning condition.

    Returns an empty list for a valid condition. Each message names the field and
    value and the fix.
    """
    if not isinstance(condition, dict):
        return [
            "the condition must be a mapping of 'Field|modifier' to a value or a list of "
            f"values, such as {{'Image|endswith': '\\\\pip.exe'}}, not {type(condition).__name__}"
        ]
    if not condition:
        return ["the condition is empty; name at least one field and the value to exclude"]
    if len(condition) > MAX_CONDITION_FIELDS:
        return [f"the condition has {len(condition)} fields; the maximum is {MAX_CONDITION_FIELDS}"]
    problems = []
    for key, value in condition.items():
        problems.extend(_key_problems(key, value))
    if problems:
        return problems
    for key, value in condition.items():
        for written in value if isinstance(value, list) else [value]:
            problems.extend(_written_value_problems(key, written))
    if problems:
        return problems
    try:
        splunk_expression(condition)
    except SigmaRuleError as exc:
        return [str(exc)]
    return []


def _key_problems(key: Any, value: Any) -> list[str]:
    if not isinstance(key, str):
        return [f"the field name {key!r} must be a string such as 'Image|endswith'"]
    field, *modifiers = key.split("|")
    if not FIELD_NAME_PATTERN.fullmatch(field):
        return [
            f"the field name {field!r} of {key!r} is not valid: use letters, digits, "
            "'_', '.' and '-', and add modifiers after '|'"
        ]
    if "" in modifiers:
        return [f"{key!r} has an empty modifier; remove the extra '|'"]
    values = value if isinstance(value, list) else [value]
    if isinstance(value, list) and not value:
        return [f"{key!r} has an empty list; give at least one value to exclude"]
    if len(values) > MAX_CONDITION_VALUES:
        return [f"{key!r} has {len(values)} values; the maximum is {MAX_CONDITION_VALUES}"]
    problems = []
    for item in values:
        if item is None:
            problems.append(
                f"{key!r} has an empty value (null); give the value to exclude, or remove the field"
            )
        elif not isinstance(item, SCALAR_TYPES):
            problems.append(
                f"{key!r} has the value {item!r} of type {type(item).__name__}; "
                "use a string, a number or a boolean"
            )
        elif isinstance(item, str) and not item.strip():
            problems.append(
                f"{key!r} has an empty value {item!r}, which would exclude every event "
                "without text in the field; give the value to exclude"
            )
    return problems


def _written_value_problems(key: str, written: Any) -> list[str]:
    """Check one written value of `key` after pySigma has applied the key's modifiers."""
    label = f"{key}: {written!r}"
    try:
        detection = SigmaDetection.from_definition({key: written})
    except (SigmaError, ValueError, TypeError, AttributeError) as exc:
        hint = ""
        if "modifier" in str(exc).lower():
            hint = "; use Sigma modifiers such as contains, startswith, endswith, all or windash"
        return [f"{label} is rejected by pySigma: {exc}{hint}"]
    problems = []
    for item in _items_of(detection):
        for value in _flattened(item.value):
            problems.extend(_value_problems(label, value))
    return problems[:1]


def _value_problems(label: str, value: Any) -> list[str]:
    if isinstance(value, SigmaRegularExpression):
        return [
            f"{label} uses the re modifier; Splunk's search command has no regular "
            "expressions, so the filter macro could not exclude it. Use contains, "
            "startswith or endswith with * wildcards"
        ]
    if isinstance(value, SigmaFieldReference):
        return [
            f"{label} uses the fieldref modifier, which a search command filter cannot "
            "express; compare with a value instead"
        ]
    if isinstance(value, SigmaNull):
        return [f"{label} is empty; give the value to exclude"]
    if isinstance(value, SigmaString):
        return _string_problems(label, value)
    return []


def _string_problems(label: str, value: SigmaString) -> list[str]:
    parts = value.s
    if all(part == SpecialChars.WILDCARD_MULTI for part in parts):
        return [
            f"{label} matches every value of the field, which would silence the whole "
            "detection; give the text to exclude"
        ]
    if SpecialChars.WILDCARD_SINGLE in parts:
        return [
            f"{label} uses the single-character wildcard '?', which Splunk's search command "
            "does not have; write the value with '*' or list each spelling"
        ]
    if any(isinstance(part, str) and "*" in part for part in parts):
        return [
            f"{label} contains an escaped '*': Sigma reads \\* as a literal asterisk, which "
            "Splunk's search command cannot match. Write \\\\* for a backslash followed by a "
            "wildcard, or end the value before the '*'"
        ]
    return []


def _flattened(values: list) -> list:
    flat = []
    for value in values:
        if isinstance(value, SigmaExpansion):
            flat.extend(value.values)
        elif not isinstance(value, SigmaCompareExpression):
            flat.append(value)
    return flat


def sorted_condition(condition: dict) -> dict:
    """Return the condition with its keys sorted.

    PostgreSQL's jsonb does not keep key order, so every output made from a condition
    (SPL, filters, the page) uses sorted keys to read the same on every database.
    """
    return {key: copy.deepcopy(condition[key]) for key in sorted(condition)}


def splunk_expression(condition: dict) -> str:
    """Convert a tuning condition to a Splunk search expression with pySigma's Splunk backend.

    Field names stay as written (no pipeline), because the authored SPL reads the raw
    event fields. Raises SigmaRuleError when the backend needs more than one search
    expression, such as a `| regex` command.
    """
    from sigma.backends.splunk import SplunkBackend

    document = {
        "title": "tuning condition",
        "logsource": {"product": "any"},
        "detection": {"selection": sorted_condition(condition), "condition": "selection"},
    }
    try:
        outputs = SplunkBackend().convert(SigmaCollection.from_dicts([document]))
    except SigmaError as exc:
        raise SigmaRuleError(f"the condition cannot be converted to SPL: {exc}") from exc
    if len(outputs) != 1 or "|" in _unquoted(outputs[0]):
        raise SigmaRuleError(
            "the condition needs more than a search expression in SPL; use plain values, "
            "contains, startswith or endswith"
        )
    return outputs[0]


def _unquoted(text: str) -> str:
    """Return `text` with its double-quoted strings removed."""
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)


def filter_document(
    *,
    filter_id: str,
    title: str,
    description: str,
    author: str,
    references: list[str],
    logsource: dict[str, str],
    rule_ids: list[str],
    condition: dict,
) -> dict:
    """Build the Sigma filter (meta rule) that excludes `condition` from the named rules."""
    document: dict[str, Any] = {"title": title, "id": filter_id}
    if description:
        document["description"] = description
    if author:
        document["author"] = author
    if references:
        document["references"] = list(references)
    document["logsource"] = dict(logsource)
    document["filter"] = {
        "rules": list(rule_ids),
        "tuning_condition": sorted_condition(condition),
        "condition": "not tuning_condition",
    }
    return document


def check_filter(document: dict) -> None:
    """Parse a filter document with pySigma; raise SigmaRuleError naming the problem."""
    try:
        sigma_filter = SigmaFilter.from_dict(copy.deepcopy(document), collect_errors=True)
    except (SigmaError, ValueError, TypeError, AttributeError) as exc:
        raise SigmaRuleError(f"invalid Sigma filter: {exc}") from exc
    if sigma_filter.errors:
        reasons = "; ".join(str(error) for error in sigma_filter.errors)
        raise SigmaRuleError(f"invalid Sigma filter: {reasons}")


def apply_filters(rule: SigmaRule, documents: list[dict]) -> SigmaRule:
    """Return a copy of `rule` with every filter document that names it applied by pySigma.

    pySigma decides whether a filter applies: the rule must be listed in its `rules`
    and its log source must contain the rule's.
    """
    filtered = copy.deepcopy(rule)
    for document in documents:
        try:
            sigma_filter = SigmaFilter.from_dict(copy.deepcopy(document))
            filtered = sigma_filter.apply_on_rule(filtered)
        except (SigmaError, ValueError, TypeError, AttributeError) as exc:
            raise SigmaRuleError(f"invalid Sigma filter {document.get('id')}: {exc}") from exc
    return filtered


def selection_rule(logsource: dict[str, str], condition: dict, *, rule_id: str, title: str) -> str:
    """Return the YAML of a rule that matches exactly the events `condition` selects.

    The validation engine runs it to find which events a tuning entry excludes.
    """
    import yaml

    document = {
        "title": title,
        "id": rule_id,
        "logsource": dict(logsource),
        "detection": {
            "tuning_condition": sorted_condition(condition),
            "condition": "tuning_condition",
        },
    }
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
