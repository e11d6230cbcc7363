"""Checks of an imported Sigma document that run before pySigma parses it.

pySigma accepts some values that are harmless in YAML but harmful later: field names
that a backend writes unquoted into a query, titles with line breaks that end a
savedsearches.conf line, `javascript:` references and conditions nested deep enough
to exhaust the recursion limit. Each check returns the problem and the path of the
value, so the caller can name the line.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from .yamlread import Path

# Letters, digits, "_", "." and "-": every field name in SigmaHQ's rules at commit
# 8eaafff (August 2026) fits. Quotes, spaces, "=", "*", "|" and brackets would let a
# field name add search terms to an SPL, KQL or Lucene query.
FIELD_NAME_PATTERN = re.compile(r"[A-Za-z0-9_.-]*")
MODIFIER_PATTERN = re.compile(r"[A-Za-z0-9_]+")
URL_SCHEME_PATTERN = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
WEB_SCHEMES = {"http", "https"}
# A browser parses a URL after removing C0 controls and spaces at both ends and
# tabs and line breaks anywhere (WHATWG URL standard, basic URL parser), so
# " java\tscript:" is a javascript: URL.
URL_EDGE_CHARACTERS = "".join(chr(code) for code in range(0x21))
URL_REMOVED_CHARACTERS = re.compile(r"[\t\n\r]")
CONDITION_TOKEN = re.compile(r"\(|\)|[^\s()]+")
# Keys of `detection` (and `filter`) that are not detection identifiers.
DETECTION_KEYWORDS = {"condition", "timeframe", "rules"}
# Control characters (Cc), format characters such as bidirectional overrides (Cf), and
# the Unicode line and paragraph separators.
CONTROL_CATEGORIES = {"Cc", "Cf", "Zl", "Zp"}


@dataclass(frozen=True)
class DocumentProblem:
    """A reason to reject a Sigma document, with the path of the value at fault."""

    message: str
    path: Path = ()


def document_problem(document: object, max_nesting: int) -> DocumentProblem | None:
    """Describe the first problem of one Sigma document, or return None."""
    if document is None:
        return DocumentProblem("the document is empty; a Sigma rule is a YAML mapping")
    if not isinstance(document, dict):
        kind = "a list" if isinstance(document, list) else f"a {type(document).__name__}"
        return DocumentProblem(f"a Sigma rule must be a YAML mapping, not {kind}")
    if "action" in document:
        return DocumentProblem(
            "Sigma collection actions (action: global, reset or repeat) are not supported; "
            "write each rule out in full",
            ("action",),
        )
    for check in (_text_problem, _references_problem, _fields_problem, _correlation_problem):
        problem = check(document)
        if problem:
            return problem
    return _conditions_problem(document, max_nesting)


def _text_problem(document: dict) -> DocumentProblem | None:
    for key in ("title", "name"):
        value = document.get(key)
        if isinstance(value, str):
            char = control_character(value)
            if char:
                return DocumentProblem(
                    f"the {key} contains the control character U+{ord(char):04X}; "
                    f"write the {key} on one line without control characters",
                    (key,),
                )
    return None


def control_character(text: str) -> str | None:
    for char in text:
        if unicodedata.category(char) in CONTROL_CATEGORIES:
            return char
    return None


def _references_problem(document: dict) -> DocumentProblem | None:
    references = document.get("references")
    if not isinstance(references, list):
        return None
    for index, reference in enumerate(references):
        if not isinstance(reference, str):
            continue
        parsed = URL_REMOVED_CHARACTERS.sub("", reference.strip(URL_EDGE_CHARACTERS))
        match = URL_SCHEME_PATTERN.match(parsed)
        if match and match.group(1).lower() not in WEB_SCHEMES:
            return DocumentProblem(
                f"reference {_preview(reference)} uses the {match.group(1).lower()}: scheme; "
                "references may be http:// or https:// URLs or plain text",
                ("references", index),
            )
    return None


def _fields_problem(document: dict) -> DocumentProblem | None:
    for section in ("detection", "filter"):
        block = document.get(section)
        if isinstance(block, dict):
            for identifier, value in block.items():
                if identifier in DETECTION_KEYWORDS:
                    continue
                problem = _detection_fields_problem(value, (section, _key(identifier)))
                if problem:
                    return problem
    fields = document.get("fields")
    if isinstance(fields, list):
        for index, name in enumerate(fields):
            if isinstance(name, str) and not FIELD_NAME_PATTERN.fullmatch(name):
                return _field_name_problem(name, ("fields", index))
    return None


def _detection_fields_problem(value: object, path: Path) -> DocumentProblem | None:
    """Check the keys of a detection identifier: a mapping, or a list of mappings and values."""
    mappings = []
    if isinstance(value, dict):
        mappings.append((value, path))
    elif isinstance(value, list):
        mappings.extend(
            (item, (*path, index)) for index, item in enumerate(value) if isinstance(item, dict)
        )
    for mapping, mapping_path in mappings:
        for key in mapping:
            if not isinstance(key, str):
                continue
            name, _, modifiers = key.partition("|")
            key_path = (*mapping_path, key)
            if not FIELD_NAME_PATTERN.fullmatch(name):
                return _field_name_problem(name, key_path)
            for modifier in modifiers.split("|") if modifiers else ():
                if not MODIFIER_PATTERN.fullmatch(modifier):
                    return DocumentProblem(
                        f"the modifier {_preview(modifier)} of field {name!r} is not a "
                        "modifier name; modifiers use letters, digits and '_'",
                        key_path,
                    )
    return None


def _correlation_problem(document: dict) -> DocumentProblem | None:
    correlation = document.get("correlation")
    if not isinstance(correlation, dict):
        return None
    group_by = correlation.get("group-by")
    if isinstance(group_by, list):
        for index, name in enumerate(group_by):
            if isinstance(name, str) and not FIELD_NAME_PATTERN.fullmatch(name):
                return _field_name_problem(name, ("correlation", "group-by", index))
    aliases = correlation.get("aliases")
    if isinstance(aliases, dict):
        for alias, mapping in aliases.items():
            names = [alias] + (list(mapping.values()) if isinstance(mapping, dict) else [])
            for name in names:
                if isinstance(name, str) and not FIELD_NAME_PATTERN.fullmatch(name):
                    return _field_name_problem(name, ("correlation", "aliases", _key(alias)))
    condition = correlation.get("condition")
    if isinstance(condition, dict):
        name = condition.get("field")
        if isinstance(name, str) and not FIELD_NAME_PATTERN.fullmatch(name):
            return _field_name_problem(name, ("correlation", "condition", "field"))
    return None


def _field_name_problem(name: str, path: Path) -> DocumentProblem:
    return DocumentProblem(
        f"field name {_preview(name)} has characters other than letters, digits, '_', '.' "
        "and '-'; a backend would write it into the query unquoted",
        path,
    )


def _conditions_problem(document: dict, max_nesting: int) -> DocumentProblem | None:
    candidates: list[tuple[object, Path]] = []
    for section in ("detection", "filter"):
        block = document.get(section)
        if isinstance(block, dict):
            candidates.append((block.get("condition"), (section, "condition")))
    correlation = document.get("correlation")
    if isinstance(correlation, dict):
        candidates.append((correlation.get("condition"), ("correlation", "condition")))
    for condition, path in candidates:
        texts = condition if isinstance(condition, list) else [condition]
        for text in texts:
            if not isinstance(text, str):
                continue
            depth = condition_depth(text)
            if depth > max_nesting:
                return DocumentProblem(
                    f"the condition is nested {depth} levels deep (parentheses and 'not'); "
                    f"the limit is {max_nesting}",
                    path,
                )
    return None


def condition_depth(condition: str) -> int:
    """Return how deeply a condition nests: each parenthesis and each `not` adds a level.

    `not not x` nests as deeply as `((x))`, and pySigma's parser recurses once for each.
    """
    deepest = 0
    enclosing = 0  # Levels of the open parentheses and of the `not`s before them.
    pending_not = 0  # `not`s waiting for their operand.
    opened: list[int] = []
    for token in CONDITION_TOKEN.findall(condition):
        if token == "(":
            opened.append(enclosing)
            enclosing += pending_not + 1
            pending_not = 0
            deepest = max(deepest, enclosing)
        elif token == ")":
            enclosing = opened.pop() if opened else 0
        elif token.lower() == "not":
            pending_not += 1
            deepest = max(deepest, enclosing + pending_not)
        elif token.lower() not in {"and", "or"}:
            pending_not = 0
    return deepest


def _key(value: object) -> str | int:
    return value if isinstance(value, str | int) and not isinstance(value, bool) else str(value)


def _preview(value: str) -> str:
    shown = value if len(value) <= 60 else value[:60] + "..."
    return repr(shown)
