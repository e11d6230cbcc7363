"""Fidelity warnings: where a render target is known to translate a Sigma construct loosely.

A warning has a stable `code` and a message that names the rule's field and value and
states what to check. The checks read the original parsed rule (before any processing
pipeline), the backend's query text and the conditions the backend left out of its
query, if any. They never change the query.

KNOWN_LOSSES at the end of this module is the one table of which check applies to which
render target, with how each entry was verified. "Probe" there means: rules written to
trigger the construct were converted with TargetConverter for every target in
settings.RENDER_TARGETS on the pinned package versions (pyproject.toml), and the output
was read. tests/test_fidelity.py repeats these probes.
"""

import copy
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass

from django.conf import settings
from sigma.conditions import ConditionFieldEqualsValueExpression, ConditionNOT
from sigma.modifiers import (
    SigmaAllModifier,
    SigmaCaseSensitiveModifier,
    reverse_modifier_mapping,
)
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule
from sigma.types import (
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaNull,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SpecialChars,
)


@dataclass(frozen=True)
class FidelityWarning:
    """One known loss of meaning in a rendered query."""

    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class RenderFacts:
    """The inputs every check reads: the original rule, the target and the query text."""

    rule: SigmaRule
    target_key: str
    query: str
    items: tuple[SigmaDetectionItem, ...]
    # Conditions the backend left out of every query, as text (see speedups.py).
    left_out: tuple[str, ...] = ()

    @property
    def target_label(self) -> str:
        entry = settings.RENDER_TARGETS.get(self.target_key) or {}
        return entry.get("label", self.target_key)


logger = logging.getLogger(__name__)

# A check yields one message per detection item (or per query) that has the problem.
Check = Callable[[RenderFacts], Iterable[str]]

# Values named in a message before the rest are summarised as "and N more".
MAX_VALUES_NAMED = 3

# Characters that str.splitlines() treats as line ends. Readers of .conf files differ in
# which of them end a line, so savedsearches.conf output must contain only "\n".
LINE_BREAKS = "\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


# --- Walking the rule's detection items -------------------------------------------------


def detection_items(rule: SigmaRule) -> tuple[SigmaDetectionItem, ...]:
    """Return every detection item of the rule, including items in nested detections."""
    found: list[SigmaDetectionItem] = []
    for detection in rule.detection.detections.values():
        found.extend(_items_of(detection))
    return tuple(found)


def _items_of(detection: SigmaDetection) -> Iterator[SigmaDetectionItem]:
    for entry in detection.detection_items:
        if isinstance(entry, SigmaDetection):
            yield from _items_of(entry)
        else:
            yield entry


def item_values(item: SigmaDetectionItem) -> list:
    """Return the item's values after its modifiers, with windash and similar expansions
    flattened into their single values."""
    values = []
    for value in item.value:
        if isinstance(value, SigmaExpansion):
            values.extend(value.values)
        else:
            values.append(value)
    return values


def string_values(item: SigmaDetectionItem) -> list[SigmaString]:
    return [value for value in item_values(item) if isinstance(value, SigmaString)]


def regex_values(item: SigmaDetectionItem) -> list[SigmaRegularExpression]:
    return [value for value in item_values(item) if isinstance(value, SigmaRegularExpression)]


def cidr_values(item: SigmaDetectionItem) -> list[SigmaCIDRExpression]:
    return [value for value in item_values(item) if isinstance(value, SigmaCIDRExpression)]


def is_cased(item: SigmaDetectionItem, value: SigmaString) -> bool:
    return SigmaCaseSensitiveModifier in item.modifiers or isinstance(value, SigmaCasedString)


def uncased_string_values(item: SigmaDetectionItem) -> list[SigmaString]:
    return [value for value in string_values(item) if not is_cased(item, value)]


def plain_text(value: SigmaString) -> str:
    """Return the value's literal characters, without its wildcards."""
    return "".join(part for part in value.s if isinstance(part, str))


def has_letters(text: str) -> bool:
    """Return whether the text has a character whose upper and lower case differ."""
    return any(char.lower() != char.upper() for char in text)


def has_non_ascii_letters(text: str) -> bool:
    return any(not char.isascii() and char.lower() != char.upper() for char in text)


def has_single_wildcard(value: SigmaString) -> bool:
    return SpecialChars.WILDCARD_SINGLE in value.s


def has_inner_wildcard(value: SigmaString) -> bool:
    """Return whether a wildcard remains after one leading and one trailing * are removed,
    so the value is more than a plain contains, startswith or endswith match."""
    parts = list(value.s)
    if parts and parts[0] == SpecialChars.WILDCARD_MULTI:
        parts = parts[1:]
    if parts and parts[-1] == SpecialChars.WILDCARD_MULTI:
        parts = parts[:-1]
    return any(isinstance(part, SpecialChars) for part in parts)


def has_literal_wildcard(value: SigmaString, characters: str) -> bool:
    """Return whether the value has one of `characters` escaped in the rule (for example
    `\\*`), which makes it a literal character instead of a wildcard."""
    return any(
        isinstance(part, str) and any(char in part for char in characters) for part in value.s
    )


def anchor_shape(value: SigmaString) -> str | None:
    """Return "startswith" or "endswith" when the value's only wildcard is one * at the end
    or at the start, the shapes that backends render with an anchored operator."""
    parts = list(value.s)
    specials = [part for part in parts if isinstance(part, SpecialChars)]
    if len(parts) < 2 or specials != [SpecialChars.WILDCARD_MULTI]:
        return None
    if parts[-1] == SpecialChars.WILDCARD_MULTI:
        return "startswith"
    if parts[0] == SpecialChars.WILDCARD_MULTI:
        return "endswith"
    return None


def negated_fields(rule: SigmaRule) -> list[str]:
    """Return the fields the condition compares under an odd number of NOTs, in order.

    Null and exists tests are left out, because they never evaluate to NULL in SQL.
    """
    fields: list[str] = []
    # Parsing links the detections into the condition tree, so a copy is parsed and the
    # caller's rule stays unchanged.
    for condition in copy.deepcopy(rule).detection.parsed_condition:
        _collect_negated(condition.parse(), negated=False, fields=fields)
    return fields


def _collect_negated(node, *, negated: bool, fields: list[str]) -> None:
    if isinstance(node, ConditionFieldEqualsValueExpression):
        if negated and not isinstance(node.value, (SigmaNull, SigmaExists)):
            if node.field not in fields:
                fields.append(node.field)
        return
    flipped = not negated if isinstance(node, ConditionNOT) else negated
    for child in getattr(node, "args", None) or ():
        _collect_negated(child, negated=flipped, fields=fields)


# --- Wording helpers ----------------------------------------------------------------------


def value_text(value) -> str:
    if isinstance(value, SigmaRegularExpression):
        return str(value.regexp)
    if isinstance(value, SigmaCIDRExpression):
        return value.cidr
    return str(value)


def written_text(item: SigmaDetectionItem, value) -> str:
    """Return the value as the rule writes it, before modifiers, when it can be determined.

    Modifiers such as windash expand one written value into several, and then the value
    after the modifiers is returned.
    """
    written = item.original_value
    if isinstance(written, list) and len(written) == len(item.value):
        for index, converted in enumerate(item.value):
            if converted is value:
                return value_text(written[index])
    return value_text(value)


def subject(item: SigmaDetectionItem, values: list) -> str:
    """Name the item's field, modifiers and the given values as the rule writes them."""
    modifiers = "".join(
        "|" + reverse_modifier_mapping.get(modifier.__name__, modifier.__name__)
        for modifier in item.modifiers
    )
    name = f"{item.field}{modifiers}" if item.field else f"keyword{modifiers}"
    texts = [written_text(item, value) for value in values[:MAX_VALUES_NAMED]]
    return f"{name} {quoted_list(texts, len(values))}"


def quoted_list(texts: list[str], count: int) -> str:
    """Quote the first MAX_VALUES_NAMED texts and summarise the rest of `count`."""
    named = ", ".join(f"'{text}'" for text in texts[:MAX_VALUES_NAMED])
    rest = count - MAX_VALUES_NAMED
    if rest > 0:
        named += f" and {rest} more"
    return named


def field_list(fields: list[str]) -> str:
    return ", ".join(fields)


def kql_literal(text: str) -> str:
    """Return text as the Kusto backend writes it inside a double-quoted string."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


# --- Checks: wildcards and anchors ----------------------------------------------------------


def single_wildcard_widened(facts: RenderFacts) -> Iterator[str]:
    for item in facts.items:
        values = [value for value in string_values(item) if has_single_wildcard(value)]
        if values:
            yield (
                f"{subject(item, values)}: {facts.target_label} renders the one-character "
                "wildcard ? as *, so the query also matches any number of characters, or "
                "none, in its place. Check the matches for false positives."
            )


def kusto_wildcards_split(facts: RenderFacts) -> Iterator[str]:
    """Find values that the query tests as separate `contains` pieces.

    The backend splits a value with a wildcard inside when the item has two or more values,
    and renders a single value as `matches regex`.
    """
    for item in facts.items:
        values = [
            value
            for value in uncased_string_values(item)
            if value[1:-1].contains_special() and _kusto_split_found(value, facts.query)
        ]
        if values:
            yield (
                f"{subject(item, values)}: the Kusto backend splits each value at its "
                "wildcards into separate `contains` tests joined with `and`, so the parts "
                "can match in any order and at any distance, and ? no longer stands for "
                "exactly one character. Check the matches for false positives."
            )


def _kusto_split_found(value: SigmaString, query: str) -> bool:
    pieces = [part for part in value.s if isinstance(part, str)]
    if not pieces:
        return False
    tests = [rf'[\w.]+ contains "{re.escape(kql_literal(piece))}"' for piece in pieces]
    return re.search(r"\(" + " and ".join(tests) + r"\)", query) is not None


def kusto_has_all(facts: RenderFacts) -> Iterator[str]:
    lists = [match.group(1) for match in re.finditer(r"has_all \(([^)]*)\)", facts.query)]
    if not lists:
        return
    for item in facts.items:
        if SigmaAllModifier not in item.modifiers:
            continue
        values = [
            value
            for value in uncased_string_values(item)
            if not value.contains_special()
            and any(f'"{kql_literal(plain_text(value))}"' in listed for listed in lists)
        ]
        if values:
            yield (
                f"{subject(item, values)}: the Kusto backend renders |all over exact values "
                "as `has_all`, which matches the values as whole terms anywhere in the "
                "field instead of the complete field value. Check the matches for false "
                "positives."
            )


def sentinelone_anchor_widened(facts: RenderFacts) -> Iterator[str]:
    for item in facts.items:
        values = [value for value in string_values(item) if anchor_shape(value)]
        if values:
            yield (
                f"{subject(item, values)}: SentinelOne PowerQuery renders startswith and "
                "endswith matches as `contains`, so the value can match anywhere in the "
                "field. Check the matches for false positives."
            )
        for network in cidr_values(item):
            patterns = network.expand()
            if not any(pattern.endswith("*") for pattern in patterns):
                continue
            prefixes = ", ".join(f"'{pattern.rstrip('*')}'" for pattern in patterns)
            yield (
                f"{subject(item, [network])}: the network is expanded to text prefixes "
                f"({prefixes}) that SentinelOne PowerQuery matches with `contains`, so an "
                "address that has one of these texts anywhere, not only at its start, also "
                "matches. Check the matches for false positives."
            )


def splunk_escaped_wildcard(facts: RenderFacts) -> Iterator[str]:
    for item in facts.items:
        values = [value for value in string_values(item) if has_literal_wildcard(value, "*")]
        if values:
            yield (
                f"{subject(item, values)}: the value has an escaped, literal *. The backend "
                "writes it as \\*, but Splunk's search command has no escape for *, so it "
                "does not match only an asterisk. Check the matches, or test the value "
                "with |re instead."
            )


def loki_escaped_wildcard(facts: RenderFacts) -> Iterator[str]:
    for item in facts.items:
        values = [value for value in string_values(item) if has_literal_wildcard(value, "*?")]
        if values:
            yield (
                f"{subject(item, values)}: the value has an escaped, literal * or ?, which "
                "the Loki backend renders as a literal backslash followed by a wildcard "
                "(\\\\.* or \\\\.), so the query only matches text with a backslash there. "
                "Test the value with |re instead."
            )


def eql_cased_wildcard(facts: RenderFacts) -> Iterator[str]:
    for item in facts.items:
        values = [
            value
            for value in string_values(item)
            if is_cased(item, value) and value.contains_special()
        ]
        if values:
            yield (
                f"{subject(item, values)}: EQL renders |cased with ==, which has no "
                "wildcards since Elasticsearch 7.10, so each * or ? is compared as a literal "
                "character and the condition misses the values it is meant to match. Use "
                "|re for a case-sensitive pattern."
            )


def qradar_like_unescaped(facts: RenderFacts) -> Iterator[str]:
    yield from _like_unescaped(facts, "QRadar AQL")


def duckdb_like_unescaped(facts: RenderFacts) -> Iterator[str]:
    yield from _like_unescaped(facts, "DuckDB")


def _like_unescaped(facts: RenderFacts, engine: str) -> Iterator[str]:
    for item in facts.items:
        values = [
            value
            for value in uncased_string_values(item)
            if value.contains_special() and any(char in plain_text(value) for char in "%_")
        ]
        if values:
            yield (
                f"{subject(item, values)}: the literal % or _ in the value is put into a "
                f"{engine} LIKE pattern unescaped, where % matches any text and _ any one "
                "character, so other values also match. Check the matches for false "
                "positives."
            )


# --- Checks: letter case --------------------------------------------------------------------


def sqlite_case_sensitive(facts: RenderFacts) -> Iterator[str]:
    yield from _equality_case_sensitive(facts, "SQLite")
    for item in facts.items:
        if item.field is None:
            continue
        values = [
            value
            for value in uncased_string_values(item)
            if value.contains_special() and has_non_ascii_letters(plain_text(value))
        ]
        if values:
            yield (
                f"{subject(item, values)}: SQLite's LIKE ignores letter case only for ASCII "
                "letters, so the non-ASCII letters in the value match only in the same "
                "case. Check the letter case the logs use."
            )


def duckdb_case_sensitive(facts: RenderFacts) -> Iterator[str]:
    yield from _equality_case_sensitive(facts, "DuckDB")


def qradar_case_sensitive(facts: RenderFacts) -> Iterator[str]:
    yield from _equality_case_sensitive(facts, "QRadar AQL")


def _equality_case_sensitive(facts: RenderFacts, engine: str) -> Iterator[str]:
    """Find values without wildcards, which the SQL backends compare with `=`."""
    for item in facts.items:
        if item.field is None:
            continue
        values = [
            value
            for value in uncased_string_values(item)
            if not value.contains_special() and has_letters(plain_text(value))
        ]
        if values:
            yield (
                f"{subject(item, values)}: the query compares the value with `=`, which is "
                f"case-sensitive in {engine}, so events whose value differs only in letter "
                "case are missed. Check the letter case the logs use."
            )


def esql_case_sensitive(facts: RenderFacts) -> Iterator[str]:
    for item in facts.items:
        values = [value for value in uncased_string_values(item) if has_letters(plain_text(value))]
        if values:
            yield (
                f"{subject(item, values)}: ES|QL compares strings case-sensitively (==, in, "
                "like, starts_with, ends_with), so events whose value differs only in "
                "letter case are missed. Check the letter case the logs use."
            )


def lucene_case_sensitive(facts: RenderFacts) -> Iterator[str]:
    """Find values that the query compares with a field that is not a `.caseless` field."""
    # The first field that is not .caseless for each term text, so each value takes one
    # lookup: a rule with thousands of values renders thousands of terms.
    cased_field_by_text: dict[str, str] = {}
    for field, text in lucene_field_values(facts.query):
        if not field.endswith(".caseless"):
            cased_field_by_text.setdefault(text, field)
    for item in facts.items:
        if item.field is None:
            continue
        fields: list[str] = []
        values = []
        for value in uncased_string_values(item):
            if not has_letters(plain_text(value)):
                continue
            field = cased_field_by_text.get(lucene_pattern(value))
            if field is not None:
                values.append(value)
                if field not in fields:
                    fields.append(field)
        if values:
            yield (
                f"{subject(item, values)}: the query compares the value with "
                f"{field_list(fields)}, which is not a .caseless field, so the match is "
                "case-sensitive on a keyword or wildcard field and events whose value "
                "differs only in letter case are missed. Check the field mapping, or the "
                "letter case the logs use."
            )


def kusto_regex_case_sensitive(facts: RenderFacts) -> Iterator[str]:
    """Find values with an inner wildcard that the query tests with `matches regex`."""
    if not re.search(r'matches regex "(?!\(\?i\))', facts.query):
        return
    for item in facts.items:
        values = [
            value
            for value in uncased_string_values(item)
            if has_inner_wildcard(value)
            and has_letters(plain_text(value))
            and not _kusto_split_found(value, facts.query)
        ]
        if values:
            yield (
                f"{subject(item, values)}: the Kusto backend renders a value with a wildcard "
                "inside as `matches regex` without (?i), which is case-sensitive, so events "
                "whose value differs only in letter case are missed. Check the letter case "
                "the logs use."
            )


# Lucene query_string field:value terms. A group is `field:(a OR b)`, a regular expression
# `field:/re/`, a phrase `field:"a b"`. Escaped characters (\x) never end a term.
LUCENE_TERM = re.compile(
    r"(?:^|(?<=[\s(]))(?P<field>[A-Za-z_@][\w.@-]*):"
    r"(?P<value>\((?:\\.|\"(?:\\.|[^\"\\])*\"|[^()\\])*\)"
    r"|\"(?:\\.|[^\"\\])*\""
    r"|/(?:\\.|[^/\\])*/"
    r"|(?:\\.|[^\s()\\])+)"
)


def lucene_field_values(query: str) -> list[tuple[str, str]]:
    """Return (field, unescaped value) for every field term in a Lucene query."""
    pairs = []
    for match in LUCENE_TERM.finditer(query):
        field, value = match.group("field"), match.group("value")
        if value.startswith("/"):
            continue
        if value.startswith("("):
            terms = re.split(r" (?:OR|AND) ", value[1:-1])
        else:
            terms = [value]
        for term in terms:
            if term.startswith('"') and term.endswith('"') and len(term) >= 2:
                term = term[1:-1]
            pairs.append((field, re.sub(r"\\(.)", r"\1", term)))
    return pairs


def lucene_pattern(value: SigmaString) -> str:
    """Return the value as a Lucene term reads after unescaping: wildcards as * and ?."""
    wildcards = {SpecialChars.WILDCARD_MULTI: "*", SpecialChars.WILDCARD_SINGLE: "?"}
    return "".join(
        wildcards.get(part, "") if isinstance(part, SpecialChars) else part for part in value.s
    )


# --- Checks: regular expressions ------------------------------------------------------------


def flag_names(regex: SigmaRegularExpression) -> str:
    letters = sorted(SigmaRegularExpression.sigma_to_re_flag[flag] for flag in regex.flags)
    return "".join(letters)


def sentinelone_regex_flags_dropped(facts: RenderFacts) -> Iterator[str]:
    for item in facts.items:
        values = [value for value in regex_values(item) if value.flags]
        if values:
            flags = ", ".join(sorted({flag_names(value) for value in values}))
            yield (
                f"{subject(item, values)}: the SentinelOne PowerQuery backend drops the "
                f"regular-expression flags ({flags}), so the pattern runs without them. "
                "Check that it still matches the intended letter case and lines."
            )


def lucene_regex_flags_unsupported(facts: RenderFacts) -> Iterator[str]:
    for item in facts.items:
        values = [value for value in regex_values(item) if value.flags]
        if values:
            prefix = f"(?{flag_names(values[0])})"
            yield (
                f"{subject(item, values)}: the backend writes the flags as a {prefix} "
                "prefix, but Elasticsearch and OpenSearch regular expressions use Lucene "
                "syntax, which has no inline flags, so the prefix is not read as a flag. "
                "Rewrite the pattern without flags, for example with [Aa] for letter case."
            )


def eql_regex_case_insensitive(facts: RenderFacts) -> Iterator[str]:
    for item in facts.items:
        values = [
            value
            for value in regex_values(item)
            if SigmaRegularExpressionFlag.IGNORECASE not in value.flags
            and has_letters(str(value.regexp))
        ]
        if values:
            yield (
                f"{subject(item, values)}: EQL's regex~ matches case-insensitively, while a "
                "Sigma regular expression without |i is case-sensitive, so the query also "
                "matches other letter cases. Check the matches for false positives."
            )


def duckdb_regex_quote(facts: RenderFacts) -> Iterator[str]:
    for item in facts.items:
        values = [value for value in regex_values(item) if "'" in str(value.regexp)]
        if values:
            yield (
                f"{subject(item, values)}: the DuckDB backend does not escape the single "
                "quote in the regular expression, so the query is invalid SQL and DuckDB "
                "rejects it with a parser error. Write the quote as \\x27 in the pattern."
            )


# --- Checks: CIDR networks and keywords -----------------------------------------------------


def kusto_cidr_ipv6(facts: RenderFacts) -> Iterator[str]:
    for item in facts.items:
        values = [value for value in cidr_values(item) if value.network.version == 6]
        if values:
            yield (
                f"{subject(item, values)}: the Kusto backend tests the IPv6 network with "
                "ipv4_is_in_range, which returns null for IPv6 input, so this condition "
                "never matches. Test the network with ipv6_is_in_range instead."
            )


def cidr_ipv6_as_text(facts: RenderFacts) -> Iterator[str]:
    for item in facts.items:
        for network in cidr_values(item):
            patterns = network.expand()
            if network.network.version != 6 or not any("*" in pattern for pattern in patterns):
                continue
            prefixes = ", ".join(f"'{pattern}'" for pattern in patterns)
            yield (
                f"{subject(item, [network])}: the network is expanded to text patterns "
                f"({prefixes}) matched with LIKE, which only works when the logs write IPv6 "
                "addresses in compressed form, and which can also match addresses outside "
                "the network when the prefix length is not a multiple of 16. Check how the "
                "logs write IPv6 addresses."
            )


def keyword_not_condition(facts: RenderFacts) -> Iterator[str]:
    for item in facts.items:
        values = string_values(item) if item.field is None else []
        if values:
            yield (
                f"{subject(item, values)}: the backend writes the keyword as a bare string "
                f"where {facts.target_label} expects a condition, so the query is "
                "rejected. Replace the keyword with a field condition."
            )


def logscale_quotes_in_regex(facts: RenderFacts) -> Iterator[str]:
    for item in facts.items:
        values = [
            value
            for value in string_values(item)
            if item.field is None or (is_cased(item, value) and value.contains_special())
        ]
        if values:
            yield (
                f"{subject(item, values)}: the LogScale backend puts the value inside a "
                'regular expression with its double quotes (for example /"value"/), so it '
                "only matches where the value is surrounded by double quotes. Use a field "
                "condition without |cased, or |re."
            )


# --- Checks: the query text -----------------------------------------------------------------

# The text form of a pySigma object that a backend formatted instead of its value.
PYTHON_REPR = re.compile(
    r"<[\w.]+ object at 0x[0-9A-Fa-f]+>"
    r"|\b(?:Sigma|Condition)[A-Z]\w*\("
    r"|\bSpecialChars\.[A-Z_]+"
)


def python_repr_in_query(facts: RenderFacts) -> Iterator[str]:
    match = PYTHON_REPR.search(facts.query)
    if match:
        yield (
            f"The query contains {match.group(0)!r}, the text form of a pySigma object and "
            "not a query value, so the backend mishandled a value of this rule. Do not "
            "deploy the query. Report it to the backend's maintainers or rewrite the "
            "construct."
        )


# Commands that can start a Splunk search. NOTE: these are the common generating commands,
# not Splunk's complete list, so a rare generating command is reported as well.
SPLUNK_GENERATING_COMMANDS = frozenset(
    {
        "datamodel",
        "dbinspect",
        "eventcount",
        "from",
        "inputcsv",
        "inputlookup",
        "loadjob",
        "makeresults",
        "metadata",
        "metasearch",
        "mstats",
        "multisearch",
        "pivot",
        "rest",
        "savedsearch",
        "search",
        "tstats",
    }
)


def splunk_search_text(facts: RenderFacts) -> str:
    """Return the SPL search of a query, or of the `search` key of savedsearches.conf."""
    if facts.target_key != "splunk_savedsearches":
        return facts.query
    lines = iter(facts.query.split("\n"))
    for line in lines:
        if not line.startswith("search = "):
            continue
        parts = [line[len("search = ") :]]
        # A value continues on the next line while its line ends with a backslash.
        while parts[-1].endswith("\\"):
            parts[-1] = parts[-1][:-1]
            parts.append(next(lines, ""))
        return "\n".join(parts)
    return ""


def splunk_non_generating_start(facts: RenderFacts) -> Iterator[str]:
    search = splunk_search_text(facts).strip()
    match = re.match(r"\|\s*(\w+)", search)
    if match and match.group(1).lower() not in SPLUNK_GENERATING_COMMANDS:
        yield (
            f"The query starts with `| {match.group(1)}`, which is not a generating "
            "command, so it has no events to work on: a Splunk search must start with a "
            "base search or a generating command. The backend puts no condition before "
            "the pipe when regular expressions are combined with `or` and the log source "
            "adds no condition. Prefix the query with a base search such as `index=...`."
        )


def savedsearches_line_break(facts: RenderFacts) -> Iterator[str]:
    found = sorted({repr(char) for char in facts.query if char in LINE_BREAKS})
    if found:
        yield (
            f"The search contains the line-break character {', '.join(found)}, taken from "
            "a detection value. savedsearches.conf continues values only across \\n, so a "
            "reader that ends lines at this character splits the search and can read the "
            "rest as another key. Remove the character from the rule's values."
        )


def qradar_field_is_literal(facts: RenderFacts) -> Iterator[str]:
    for expression in dict.fromkeys(re.findall(r"CONCAT\('[^)]*\)", facts.query)):
        yield (
            f"The query compares {expression}, from the QRadar field mapping. Single quotes "
            "make a string literal in AQL, not a property name, so the literal text is "
            "compared instead of the event's property and the condition does not test "
            "the intended field. Check the QRadar field mapping for this rule's fields."
        )


# --- Checks: SQL validity and NULL fields ---------------------------------------------------

# DuckDB's reserved keywords, from `SELECT keyword_name FROM duckdb_keywords() WHERE
# keyword_category = 'reserved'` in duckdb 2.0.1. tests/test_fidelity.py compares this list
# with the installed duckdb. The DuckDB backend quotes only names with characters other than
# letters, digits and _, so these names are left bare and break the query.
DUCKDB_RESERVED_WORDS = frozenset(
    """
    all analyse analyze and any array as asc asymmetric both case cast check collate column
    constraint create default deferrable desc describe distinct do else end except false
    fetch for foreign from group having in initially intersect into lambda lateral leading
    limit not null offset on only or order pivot pivot_longer pivot_wider placing primary
    qualify references returning select show some summarize symmetric table then to
    trailing true union unique unpivot using variadic when where window with
    """.split()
)


def duckdb_reserved_field(facts: RenderFacts) -> Iterator[str]:
    fields = dict.fromkeys(
        item.field
        for item in facts.items
        if item.field
        and re.fullmatch(r"[A-Za-z0-9_]+", item.field)
        and item.field.lower() in DUCKDB_RESERVED_WORDS
    )
    for field in fields:
        yield (
            f"Field {field} is a reserved word in DuckDB and the backend leaves it unquoted, "
            "so the query is invalid SQL and DuckDB rejects it with a parser error. Quote "
            f'the field as "{field}" in the query, or map it to another name.'
        )


def null_field_dropped(facts: RenderFacts) -> Iterator[str]:
    fields = negated_fields(facts.rule)
    if fields:
        yield (
            f"The condition tests {field_list(fields)} under `not`. {facts.target_label} "
            "evaluates a comparison with a missing (NULL) field as NULL, and NOT NULL is "
            "still NULL, so an event without one of these fields is dropped, where Sigma "
            "treats the negated test as true and keeps it. Check that the fields are always "
            "present, or add `OR field IS NULL` to the negated part."
        )


def split_left_out(facts: RenderFacts) -> Iterator[str]:
    if not facts.left_out:
        return
    count = len(facts.left_out)
    named = quoted_list(list(facts.left_out), count)
    left_out = (
        "left out the last alternative, which did not fill a whole query"
        if count == 1
        else f"left out the last {count} alternatives, which did not fill a whole query"
    )
    yield (
        f"The rule's query was too long for {facts.target_label}, so the backend split "
        f"its top-level `or` into several queries of equal size and {left_out}: {named}. "
        "Events that match only those are missed. Add them as a query of their own, or "
        "split the rule."
    )


# --- The table ----------------------------------------------------------------------------

SPLUNK = frozenset({"splunk", "splunk_savedsearches"})
LUCENE = frozenset({"elasticsearch_lucene", "opensearch_lucene"})
LUCENE_REGEX = LUCENE | {"elasticsearch_esql", "elasticsearch_eql"}
KUSTO = frozenset({"sentinel_kql", "defender_kql"})
ALL_TARGETS = None


@dataclass(frozen=True)
class KnownLoss:
    """One row of KNOWN_LOSSES: a warning code, the targets it applies to and its check.

    `targets` of None applies the check to every target.
    """

    code: str
    targets: frozenset[str] | None
    check: Check


KNOWN_LOSSES: tuple[KnownLoss, ...] = (
    # pysigma-backend-splunk 2.1.0 (wildcard_single = "*"): probe `a?c` renders as `a*c`,
    # `|contains a?c` as `*a*c*`. pysigma-backend-sentinelone-pq 0.1.6 does the same.
    # Every other target keeps a one-character wildcard (?, _, . in regex).
    KnownLoss("wildcard_widened", SPLUNK | {"sentinelone_pq"}, single_wildcard_widened),
    # pySigma-backend-kusto 1.0.1 convert_condition_as_in_expression: with two or more
    # values, `a?b` renders as (F contains "a" and F contains "b"); probe output read.
    KnownLoss("wildcard_widened", KUSTO, kusto_wildcards_split),
    # pySigma-backend-kusto 1.0.1: `|all` over plain values renders as `has_all (...)`,
    # a term match; probe output read.
    KnownLoss("anchor_widened", KUSTO, kusto_has_all),
    # pysigma-backend-sentinelone-pq 0.1.6 startswith_expression and endswith_expression
    # are "{field} contains {value}"; probe `|endswith \x.exe` and `|cidr 10.0.0.0/8`
    # render as `contains`.
    KnownLoss("anchor_widened", frozenset({"sentinelone_pq"}), sentinelone_anchor_widened),
    # pysigma-backend-splunk 2.1.0 writes an escaped * as \* (probe). SPL search terms have
    # no escape for *, as reported against the legacy Splunk backend. Not run against Splunk.
    KnownLoss("escaped_wildcard_lost", SPLUNK, splunk_escaped_wildcard),
    # pySigma-backend-loki 0.15.1: probe `|contains lit\*star` renders as
    # `(?i).*lit\\.*star.*`; the test runs that pattern with Python's re, which reads it
    # like Loki's RE2.
    KnownLoss("escaped_wildcard_lost", frozenset({"grafana_loki"}), loki_escaped_wildcard),
    # pySigma-backend-elasticsearch 2.1.1 EQL: probe `|cased Evil*` renders as
    # `== "Evil*"`. Elasticsearch 7.10 removed wildcard matching from EQL's ==, which is
    # now an exact comparison. Not run against Elasticsearch.
    KnownLoss("wildcard_literal", frozenset({"elasticsearch_eql"}), eql_cased_wildcard),
    # pySigma-backend-sqlite 2.0.0: a value without wildcards renders as `field='value'`.
    # The test shows sqlite3 (SQLite 3.40) missing an event that differs only in case, and
    # LIKE missing a non-ASCII letter in the other case.
    KnownLoss("case_sensitive_match", frozenset({"sqlite"}), sqlite_case_sensitive),
    # pySigma-backend-duckdb 0.1.4: plain values render as `field='value'`; the test shows
    # duckdb 2.0.1 missing an event that differs only in case. ILIKE is case-insensitive.
    KnownLoss("case_sensitive_match", frozenset({"duckdb"}), duckdb_case_sensitive),
    # pySigma-backend-QRadar-community 0.4.0: plain values render as `Command='AbC'`, while
    # wildcard values use LOWER(...) LIKE (probe). IBM support describes AQL string matching
    # as case-sensitive. NOTE: `=` itself was not run against QRadar.
    KnownLoss("case_sensitive_match", frozenset({"qradar_aql"}), qradar_case_sensitive),
    # pySigma-backend-elasticsearch 2.1.1 ES|QL renders ==, in, like, starts_with and
    # ends_with (probe). ES|QL compares strings case-sensitively, with TO_LOWER as the only
    # workaround, as Elastic support stated in the backend's issue tracker. Not run against
    # Elasticsearch.
    KnownLoss("case_sensitive_match", frozenset({"elasticsearch_esql"}), esql_case_sensitive),
    # pySigma-backend-elasticsearch 2.1.1 and pySigma-backend-opensearch 2.0.3 with the
    # ecs_windows pipeline map only some fields to .caseless keyword fields (probe), so
    # process.command_line or file.path match case-sensitively on ECS keyword and wildcard
    # mappings. Not run against a cluster.
    KnownLoss("case_sensitive_match", LUCENE, lucene_case_sensitive),
    # pySigma-backend-kusto 1.0.1: a single value with an inner wildcard renders as
    # `matches regex "a.c"` without (?i); KQL regular expressions are case-sensitive.
    KnownLoss("case_sensitive_match", KUSTO, kusto_regex_case_sensitive),
    # Detected on the query text for every target. No probe made a backend of the pinned
    # versions emit a Python object's text; the test feeds one through TargetConverter.
    KnownLoss("python_repr_in_output", ALL_TARGETS, python_repr_in_query),
    # pysigma-backend-splunk 2.1.0: regular expressions combined with `or` and no log
    # source condition render as a query starting with `| rex` (probe; a single |re
    # renders as `*` followed by `| regex`).
    KnownLoss("non_generating_start", SPLUNK, splunk_non_generating_start),
    # pySigma-backend-duckdb 0.1.4 (escape_char ""): `|contains 50%_off` renders as
    # ILIKE '%50%_off%'; the test shows duckdb 2.0.1 matching '50x-off'.
    # pySigma-backend-QRadar-community 0.4.0 renders LIKE '%50%_off%' as well (not run).
    # pySigma-backend-sqlite 2.0.0 escapes both with ESCAPE '\'.
    KnownLoss("like_wildcard_unescaped", frozenset({"duckdb"}), duckdb_like_unescaped),
    KnownLoss("like_wildcard_unescaped", frozenset({"qradar_aql"}), qradar_like_unescaped),
    # pySigma-backend-duckdb 0.1.4 renders `not filter` as `NOT (...)`; the test shows
    # duckdb 2.0.1 dropping the event whose field is NULL. ES|QL does the same per
    # Elastic's "Working with NULL values in ES|QL" page (not run). pySigma-backend-sqlite
    # 2.0.0 wraps the negated part in COALESCE(..., 0) and keeps the event (test).
    KnownLoss(
        "null_field_dropped", frozenset({"duckdb", "elasticsearch_esql"}), null_field_dropped
    ),
    # pySigma-backend-duckdb 0.1.4: a field named Order renders as `WHERE Order='x'`;
    # duckdb 2.0.1 raises a parser error (test). pySigma-backend-sqlite quotes with ``.
    KnownLoss("reserved_word_field", frozenset({"duckdb"}), duckdb_reserved_field),
    # pySigma-backend-duckdb 0.1.4 (re_escape empty): `|re it's` renders as
    # regexp_matches(User, 'it's'); duckdb 2.0.1 raises a parser error (test).
    KnownLoss("unescaped_quote", frozenset({"duckdb"}), duckdb_regex_quote),
    # pysigma-backend-sentinelone-pq 0.1.6: re_flag_prefix False and no {flag_x} in
    # re_expression, so `|re|i` renders as `matches "..."` without the flag (probe).
    KnownLoss(
        "regex_flags_dropped", frozenset({"sentinelone_pq"}), sentinelone_regex_flags_dropped
    ),
    # pySigma-backend-elasticsearch 2.1.1 and pySigma-backend-opensearch 2.0.3 prefix
    # (?i) to /.../, rlike and regex~ patterns (probe). Elastic's "Regular expression syntax"
    # page: Lucene's engine is not PCRE and reads ( and ? as operators, so (?i) is no flag.
    # Not run against a cluster.
    KnownLoss("regex_flags_unsupported", LUCENE_REGEX, lucene_regex_flags_unsupported),
    # pySigma-backend-elasticsearch 2.1.1 EQL renders |re as `regex~`, the case-insensitive
    # form of EQL's regex operator (probe). Not run against Elasticsearch.
    KnownLoss(
        "regex_case_insensitive", frozenset({"elasticsearch_eql"}), eql_regex_case_insensitive
    ),
    # pySigma-backend-kusto 1.0.1: `|cidr 2001:db8::/64` renders as
    # ipv4_is_in_range(F, "2001:db8::/64") (probe). Microsoft's page for the KQL IPv4 range
    # functions: the result is null when a string cannot be converted to IPv4. Not run.
    KnownLoss("cidr_ipv6_unsupported", KUSTO, kusto_cidr_ipv6),
    # pySigma 1.5.1 expands IPv6 networks to text prefixes, which pySigma-backend-sqlite
    # 2.0.0 and pySigma-backend-duckdb 0.1.4 match with LIKE; the test shows SQLite matching
    # 2001:db8::1:5 for 2001:db8::/112.
    KnownLoss("cidr_matched_as_text", frozenset({"sqlite", "duckdb"}), cidr_ipv6_as_text),
    # pySigma-backend-kusto 1.0.1 (unbound_value_str_expression "{value}") renders keywords
    # as `| where "EvilTool"` and pySigma-backend-elasticsearch 2.1.1 EQL as
    # `... and "EvilTool")` (probe). Not run against Kusto or Elasticsearch.
    KnownLoss("keyword_search_invalid", KUSTO | {"elasticsearch_eql"}, keyword_not_condition),
    # pysigma-backend-crowdstrike 3.0.0 renders keywords as /"EvilTool"/i and |cased values
    # with wildcards as /^"Evil"/ (probe); the test runs the pattern with Python's re.
    KnownLoss(
        "literal_quotes_added", frozenset({"crowdstrike_logscale"}), logscale_quotes_in_regex
    ),
    # pySigma-backend-QRadar-community 0.4.0 maps ImageLoaded to
    # CONCAT('file directory', '/', filename) and Hashes to CONCAT of literals; IBM's AQL
    # "Quotation marks" page: single quotes are string literals. Not run against QRadar.
    KnownLoss("field_mapped_to_literal", frozenset({"qradar_aql"}), qradar_field_is_literal),
    # pysigma-backend-splunk 2.1.0 _generate_settings continues values only across "\n";
    # a detection value with "\r" keeps it in the search line (probe).
    KnownLoss("conf_line_break", frozenset({"splunk_savedsearches"}), savedsearches_line_break),
    # pySigma-backend-loki 0.15.1 partition_rule splits a query of 4,096 characters or
    # more into parts of int(count / parts) arguments of the highest `or`, so the last
    # count % parts arguments are in no part. SigmaHQ's driver_load_win_vuln_drivers.yml
    # (4,432 hashes, 78 parts) loses 64 hashes (probe). tests/test_render_speedups.py
    # counts the missing values of a generated rule.
    KnownLoss("alternatives_left_out", frozenset({"grafana_loki"}), split_left_out),
)


def fidelity_warnings(
    rule: SigmaRule, target_key: str, query: str, *, left_out: Iterable[str] = ()
) -> list[FidelityWarning]:
    """Return the warnings that apply to `rule` rendered for `target_key` as `query`.

    `rule` is the parsed rule before any processing pipeline and is not changed.
    `left_out` names the conditions the backend dropped while converting, if any.
    """
    facts = RenderFacts(
        rule=rule,
        target_key=target_key,
        query=query,
        items=detection_items(rule),
        left_out=tuple(left_out),
    )
    warnings: list[FidelityWarning] = []
    for known in KNOWN_LOSSES:
        if known.targets is not None and target_key not in known.targets:
            continue
        try:
            messages = list(known.check(facts))
        except Exception:  # noqa: BLE001 - a failing check must not fail the render
            logger.exception(
                "fidelity check %s failed for rule %s on target %s",
                known.check.__name__,
                rule.id,
                target_key,
            )
            continue
        for message in messages:
            warning = FidelityWarning(code=known.code, message=message)
            if warning not in warnings:
                warnings.append(warning)
    return warnings
