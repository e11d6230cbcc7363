"""Tuning entries in effect: which rules they filter, their Sigma filters and the SPL macro.

An entry is active while it is enabled and not expired. Active entries become:

- Sigma filters (pySigma 1.x meta rules) that the renders and the embedded
  validation engine apply to the detection's rules;
- clauses of the detection's Splunk filter macro `<title>_filter`, which the tuned
  SPL calls where the raw event fields still exist.
"""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from dataclasses import dataclass

from django.utils import timezone

from .models import Detection, DetectionBranch, Query, SigmaRule, TuningEntry
from .pysigma import SigmaRuleError
from .pysigma.tuning import (
    check_filter,
    condition_problems,
    filter_document,
    sorted_condition,
    splunk_expression,
)

# Commands that keep every field of an event, so a filter placed after them can still
# compare the raw fields.
FIELD_KEEPING_COMMANDS = frozenset({"eval", "where", "search", "rex", "fillnull", "spath"})
# Sigma titles are at most 256 characters in pySigma 1.5.
MAX_FILTER_TITLE = 256


def entry_problems(entry: TuningEntry) -> list[str]:
    """Describe why an entry cannot be saved; an empty list means it is valid."""
    problems = [f"condition: {problem}" for problem in condition_problems(entry.condition)]
    if not problems:
        problems += _filter_problems(entry)
    if not (entry.reason or "").strip():
        problems.append("reason: say why the excluded events are benign")
    if not (entry.owner or "").strip():
        problems.append("owner: name the team or person who owns the entry")
    problems += _reference_problems(entry)
    return problems


def _filter_problems(entry: TuningEntry) -> list[str]:
    """Parse the entry as a pySigma filter, as renders and validation runs will."""
    document = filter_document(
        filter_id=str(entry.uuid),
        title="tuning entry",
        description="",
        author="",
        references=[],
        logsource={"product": "windows"},
        rule_ids=[],
        condition=entry.condition,
    )
    try:
        check_filter(document)
    except SigmaRuleError as exc:
        return [f"condition: {exc}"]
    return []


def _reference_problems(entry: TuningEntry) -> list[str]:
    problems = []
    for name in ("rules", "branches"):
        value = getattr(entry, name)
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            problems.append(f"{name}: must be a list of strings")
    if problems or entry.detection_id is None:
        return problems
    rule_ids = {
        str(rule_id)
        for rule_id in SigmaRule.objects.filter(
            detection_id=entry.detection_id, kind=SigmaRule.Kind.RULE
        ).values_list("rule_id", flat=True)
    }
    for rule_id in entry.rules:
        if rule_id not in rule_ids:
            known = ", ".join(sorted(rule_ids)) or "none"
            problems.append(
                f"rules: {rule_id!r} is not the id of a Sigma rule of this detection "
                f"(rule ids: {known})"
            )
    branch_names = set(
        DetectionBranch.objects.filter(query__detection_id=entry.detection_id).values_list(
            "name", flat=True
        )
    )
    for name in entry.branches:
        if name not in branch_names:
            known = ", ".join(sorted(branch_names)) or "none"
            problems.append(
                f"branches: {name!r} is not a branch of this detection's queries "
                f"(branches: {known})"
            )
    return problems


def active_entries(detection: Detection, today=None) -> list[TuningEntry]:
    """Return the detection's enabled, unexpired entries in their order."""
    today = today or timezone.localdate()
    return [entry for entry in detection.tuning_entries.all() if entry.is_active(today)]


@dataclass(frozen=True)
class SigmaFilterFile:
    """One Sigma filter made from a tuning entry, with its download name."""

    entry: TuningEntry
    filename: str
    document: dict
    rule_ids: tuple[str, ...]


def entry_rule_ids(
    entry: TuningEntry, rules: list[SigmaRule], branch_rules: dict[str, str]
) -> list[str]:
    """Return the ids of the rules an entry applies to.

    `branch_rules` maps branch names to the id of the Sigma rule that implements them.
    An entry that names neither rules nor branches applies to every rule.
    """
    if not entry.rules and not entry.branches:
        return [str(rule.rule_id) for rule in rules]
    named = set(entry.rules)
    named |= {branch_rules[name] for name in entry.branches if name in branch_rules}
    return [str(rule.rule_id) for rule in rules if str(rule.rule_id) in named]


def branch_rule_ids(detection: Detection) -> dict[str, str]:
    """Map each branch name of the detection's queries to its Sigma rule id."""
    return {
        branch.name: str(branch.sigma_rule.rule_id)
        for query in detection.queries.all()
        for branch in query.branches.all()
        if branch.sigma_rule_id
    }


def filter_files(
    detection: Detection, entries: list[TuningEntry] | None = None
) -> list[SigmaFilterFile]:
    """Build the Sigma filters of the detection's active entries (or of `entries`).

    A filter's log source must contain the log source of every rule it names. When the
    rules of one entry share no log source attribute, such as a Windows rule and a
    Linux rule, they are grouped by log source and each group gets its own filter.
    """
    if entries is None:
        entries = active_entries(detection)
    rules = [rule for rule in detection.sigma_rules.all() if rule.kind == SigmaRule.Kind.RULE]
    branch_rules = branch_rule_ids(detection)
    files = []
    for entry in entries:
        rule_ids = set(entry_rule_ids(entry, rules, branch_rules))
        groups = _logsource_groups([rule for rule in rules if str(rule.rule_id) in rule_ids])
        for index, (logsource, members) in enumerate(groups):
            filter_id = str(entry.uuid)
            suffix = ""
            if len(groups) > 1:
                filter_id = str(uuid.uuid5(uuid.UUID(str(entry.uuid)), str(index)))
                suffix = f"-{index + 1}"
            member_ids = tuple(str(rule.rule_id) for rule in members)
            document = filter_document(
                filter_id=filter_id,
                title=_filter_title(entry, detection),
                description=entry.reason,
                author=entry.owner,
                references=[entry.ticket] if entry.ticket else [],
                logsource=logsource,
                rule_ids=list(member_ids),
                condition=entry.condition,
            )
            filename = f"filters/tuning-{entry.uuid}{suffix}.yml"
            files.append(SigmaFilterFile(entry, filename, document, member_ids))
    return files


def _filter_title(entry: TuningEntry, detection: Detection) -> str:
    title = f"Tuning of {detection.title} owned by {entry.owner}"
    return title[:MAX_FILTER_TITLE]


def _logsource_groups(rules: list[SigmaRule]) -> list[tuple[dict, list[SigmaRule]]]:
    """Group rules under the fewest log sources that each contain all their members' log sources.

    One group when the rules share an attribute, else one group per product, and one per
    full log source for rules of one product that share nothing else.
    """
    if not rules:
        return []
    common = _common_logsource(rules)
    if common:
        return [(common, rules)]
    groups = []
    for members in _grouped(rules, lambda rule: rule.logsource.get("product") or "").values():
        common = _common_logsource(members)
        if common:
            groups.append((common, members))
            continue
        for same in _grouped(members, lambda rule: tuple(sorted(rule.logsource.items()))).values():
            groups.append((dict(same[0].logsource), same))
    return groups


def _common_logsource(rules: list[SigmaRule]) -> dict[str, str]:
    return {
        key: value
        for key, value in rules[0].logsource.items()
        if all(rule.logsource.get(key) == value for rule in rules)
    }


def _grouped(rules: list[SigmaRule], key) -> dict:
    grouped: dict = defaultdict(list)
    for rule in rules:
        grouped[key(rule)].append(rule)
    return grouped


def filters_by_rule(rules: list[SigmaRule], today=None) -> dict[int, list[dict]]:
    """Return the filter documents that apply to each rule, by rule primary key.

    Reads the entries and branches of all the rules' detections in three queries, so
    scheduling the renders of thousands of rules stays cheap.
    """
    detection_ids = {rule.detection_id for rule in rules}
    entries = list(
        TuningEntry.objects.filter(detection_id__in=detection_ids, enabled=True).select_related(
            "detection"
        )
    )
    today = today or timezone.localdate()
    entries = [entry for entry in entries if entry.is_active(today)]
    if not entries:
        return {}
    with_entries = {entry.detection_id for entry in entries}
    detections = (
        Detection.objects.filter(pk__in=with_entries)
        .prefetch_related("sigma_rules", "queries__branches__sigma_rule", "tuning_entries")
    )
    by_rule_id: dict[str, list[dict]] = defaultdict(list)
    for detection in detections:
        for item in filter_files(detection, active_entries(detection, today)):
            for rule_id in item.rule_ids:
                by_rule_id[rule_id].append(item.document)
    return {
        rule.pk: by_rule_id[str(rule.rule_id)]
        for rule in rules
        if str(rule.rule_id) in by_rule_id
    }


def macro_name(detection: Detection) -> str:
    """Return the detection's filter macro name, as Splunk's security_content forms it.

    The title is lowercased, each character other than a-z and 0-9 becomes `_`, and
    `_filter` is appended: "Archive via Library" gives `archive_via_library_filter`.
    """
    return re.sub(r"[^a-z0-9]", "_", detection.title.lower()) + "_filter"


def entry_spl(entry: TuningEntry) -> str:
    """Return the entry's condition as a Splunk search expression.

    Saving an entry stores the expression in `spl`, so pages never load pySigma's
    Splunk backend; an entry never saved through `save()` is converted here.
    """
    return entry.spl or splunk_expression(entry.condition)


@dataclass
class Macro:
    """The detection's filter macro and the entries it could not express."""

    name: str
    definition: str
    # (entry, reason) for active entries that the authored SPL cannot apply.
    skipped: list[tuple[TuningEntry, str]]
    scoped: bool

    @property
    def stanza(self) -> str:
        """Return the macro as a macros.conf stanza."""
        return f"[{self.name}]\ndefinition = {self.definition}\niseval = 0\n"


def detection_macro(detection: Detection, entries: list[TuningEntry] | None = None) -> Macro:
    """Build the filter macro from the active entries that apply to the authored SPL.

    An entry limited to rules or branches is scoped to the branches it names (and to
    the branches of the rules it names) with the query's branch field, such as
    `DetectionSource="CompressionDllLoad"`. An entry limited only to rules that no
    branch implements does not apply to the authored SPL.
    """
    if entries is None:
        entries = active_entries(detection)
    clauses = []
    skipped = []
    scoped = False
    queries = _spl_queries(detection)
    rule_branches: dict[str, list[tuple[Query, str]]] = defaultdict(list)
    for query in queries:
        for branch in query.branches.all():
            if branch.sigma_rule_id:
                rule_branches[str(branch.sigma_rule.rule_id)].append((query, branch.name))
    for entry in entries:
        try:
            expression = entry_spl(entry)
        except SigmaRuleError as exc:
            skipped.append((entry, str(exc)))
            continue
        if not entry.rules and not entry.branches:
            clauses.append(f"({expression})")
            continue
        branch_terms = _branch_terms(entry, queries, rule_branches)
        if not branch_terms:
            reason = (
                "it is limited to rules or branches, and the authored SPL sets no branch "
                "field for them before it renames or drops the raw fields"
            )
            skipped.append((entry, reason))
            continue
        scoped = True
        clauses.append(f"({branch_terms} {expression})")
    definition = f"search NOT ({' OR '.join(clauses)})" if clauses else "search *"
    return Macro(macro_name(detection), definition, skipped, scoped)


def _spl_queries(detection: Detection) -> list[Query]:
    return [query for query in detection.queries.all() if query.language.upper() == "SPL"]


def _branch_terms(entry: TuningEntry, queries: list[Query], rule_branches: dict) -> str:
    terms = []
    for query in queries:
        if not query.branch_field:
            continue
        if _after_branch_field(query, pipe_positions(query.text)) is None:
            # The branch field is not set where the raw fields still exist.
            continue
        names = [branch.name for branch in query.branches.all() if branch.name in entry.branches]
        for owner, name in _flatten(rule_branches, entry.rules):
            if owner.pk == query.pk:
                names.append(name)
        for name in dict.fromkeys(names):
            terms.append(f'{query.branch_field}="{_spl_quoted(name)}"')
    if len(terms) > 1:
        return "(" + " OR ".join(terms) + ")"
    return terms[0] if terms else ""


def _flatten(rule_branches: dict, rule_ids: list[str]) -> list[tuple[Query, str]]:
    return [pair for rule_id in rule_ids for pair in rule_branches.get(rule_id, [])]


def _spl_quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def tuned_spl(query: Query, macro: Macro, *, expand: bool = False) -> str:
    """Return the authored SPL with the filter macro applied where the raw fields exist.

    The macro goes right after the base search (before the first pipe), or, when it
    scopes entries by branch, right after the command that sets the branch field,
    provided every command before it keeps the raw fields. Later commands such as
    `eval ProcessPath=coalesce(Image, "")` and `table` rename or drop the raw fields
    the entries compare. With `expand`, the macro's definition is written in place of
    the macro call, for a Splunk that does not have the macro defined. Returns the
    query unchanged when no entry applies.
    """
    if macro.definition == "search *":
        return query.text
    call = f"| {macro.definition}" if expand else f"| `{macro.name}`"
    pipes = pipe_positions(query.text)
    position = _insert_position(query, pipes, macro.scoped)
    if position is None:
        text = query.text.rstrip("\n")
        trailing = query.text[len(text):]
        return f"{text}\n{call}{trailing}"
    indent = _indent_before(query.text, position)
    return f"{query.text[:position]}{call}\n{indent}{query.text[position:]}"


def _insert_position(query: Query, pipes: list[int], scoped: bool) -> int | None:
    """Return where the macro call goes: the position of a pipe, or None for the end."""
    if not pipes:
        return None
    if scoped and query.branch_field:
        position = _after_branch_field(query, pipes)
        if position is not None:
            return position if position < len(query.text) else None
    return pipes[0]


def _after_branch_field(query: Query, pipes: list[int]) -> int | None:
    """Return the end of the command that sets the query's branch field.

    Returns None when no `eval <branch field>=` comes before the first command that may
    drop or rename fields, because a filter placed later would miss the raw fields.
    """
    assignment = re.compile(rf"\s*eval\s+{re.escape(query.branch_field)}\s*=", re.IGNORECASE)
    bounds = pipes + [len(query.text)]
    for index, start in enumerate(pipes):
        segment = query.text[start + 1 : bounds[index + 1]]
        if assignment.match(segment):
            return bounds[index + 1]
        command = segment.split(None, 1)[0].lower() if segment.strip() else ""
        if command not in FIELD_KEEPING_COMMANDS:
            return None
    return None


def _indent_before(text: str, position: int) -> str:
    line_start = text.rfind("\n", 0, position) + 1
    prefix = text[line_start:position]
    return prefix if not prefix.strip() else ""


def pipe_positions(spl: str) -> list[int]:
    """Return the positions of the pipes that separate commands of `spl`.

    Pipes inside double-quoted strings, backtick macro calls and square-bracket
    subsearches do not separate commands.
    """
    positions = []
    depth = 0
    index = 0
    while index < len(spl):
        char = spl[index]
        if char == '"':
            index = _after_quoted(spl, index, '"')
            continue
        if char == "`":
            index = _after_quoted(spl, index, "`")
            continue
        if char == "[":
            depth += 1
        elif char == "]" and depth:
            depth -= 1
        elif char == "|" and depth == 0:
            positions.append(index)
        index += 1
    return positions


def _after_quoted(text: str, start: int, quote: str) -> int:
    index = start + 1
    while index < len(text):
        if text[index] == "\\" and quote == '"':
            index += 2
            continue
        if text[index] == quote:
            return index + 1
        index += 1
    return len(text)


MODIFIER_WORDS = {
    "contains": "contains",
    "startswith": "starts with",
    "endswith": "ends with",
    "cidr": "is in the network",
    "exists": "exists:",
    "windash": "with - or / as",
    "cased": "with case",
    "base64": "base64 of",
    "base64offset": "base64 at any offset of",
    "lt": "<",
    "lte": "<=",
    "gt": ">",
    "gte": ">=",
}


def condition_lines(condition: dict) -> list[str]:
    """Write a tuning condition in words, one field per line, for pages and the API.

    `{"Image|endswith": ["\\pip.exe", "\\pip3.exe"]}` reads
    `Image ends with "\\pip.exe" or "\\pip3.exe"`. Every line must hold for an event to
    be excluded.
    """
    lines = []
    for key, value in sorted_condition(condition).items():
        field_name, *modifiers = str(key).split("|")
        joiner = " and " if "all" in modifiers else " or "
        words = [MODIFIER_WORDS.get(name, name) for name in modifiers if name != "all"]
        operator = " ".join(words) if words else "is"
        values = value if isinstance(value, list) else [value]
        values_text = joiner.join(_quoted_value(item) for item in values)
        lines.append(f"{field_name} {operator} {values_text}")
    return lines


def _quoted_value(value) -> str:
    if isinstance(value, str):
        return '"' + value.replace('"', '\\"') + '"'
    return str(value).lower() if isinstance(value, bool) else str(value)
