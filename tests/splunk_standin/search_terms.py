"""Search expressions of the ``search`` command, which also forms the base search.

Grammar modelled:

- bare terms and quoted phrases, matched against ``_raw``;
- comparisons ``field=value``, ``field!=value``, ``field<value`` (and ``>``, ``<=``, ``>=``),
  ``field::value`` and ``field IN (value, ...)``;
- ``AND``, ``OR`` and ``NOT`` in uppercase, because lowercase words are terms;
- parentheses, and an implied AND between terms side by side.

As in Splunk's search command, OR binds tighter than AND: ``a b OR c`` is ``a AND (b OR c)``.

Matching modelled: field names are case-sensitive and field values case-insensitive. ``*``
is a wildcard in values, terms and phrases, and a backslash cannot escape it. In quoted
and unquoted values ``\\\\`` is one backslash and ``\\"`` a quote. Any other backslash is
kept, so ``"*\\\\zlib.dll"`` is the value ``*\\zlib.dll``. ``field=value`` is false when the
event lacks the field, so ``NOT field=value`` is then true. ``field!=value`` is false when
the field is missing. A multivalue field matches ``=`` when any value matches and ``!=`` when
none does. ``<`` and the other orderings compare numbers when both sides are numeric and
strings otherwise.

Indexed fields: ``field::value`` matches only indexed fields, which are ``index``, ``host``,
``source``, ``sourcetype`` and the custom fields sent in HEC's ``fields``. Splunk searches
a custom indexed field that fields.conf does not declare ``INDEXED = true`` by first
looking its value up among the terms of the raw text. So ``field=value`` on such a field
also needs ``value`` as a term in ``_raw``, and ``field::value`` is the way to search it.
The stand-in has no fields.conf.

Time modifiers: ``earliest=<time>`` and ``latest=<time>`` parse to ``TimeModifier`` nodes,
whose values ``time_modifiers`` reads. Only the base search takes them, and ``spl.parse``
accepts them only as top-level terms. Every other time modifier is rejected.
NOTE: a bare term matches ``_raw`` case-insensitively when it is bounded by breaker
characters of Splunk's default segmentation. This approximates Splunk's term index, which
also splits on minor breakers and treats some characters differently.
"""

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .errors import SPLSyntaxError
from .time_modifiers import TimeSpec, parse_time_spec
from .values import INDEXED_FIELDS_KEY, field_values, to_number

# Major and minor breakers of Splunk's default segmenters.conf, without the URL-encoded ones.
BREAKERS = " \t\r\n[]<>(){}|!;,'\"*&?+/:=@.-$#%\\_"
NOT_BREAKER = "[^" + re.escape(BREAKERS) + "]"
# The time modifiers that the base search takes; the rest of TIME_MODIFIERS are rejected.
RANGE_MODIFIERS = frozenset({"earliest", "latest"})
TIME_MODIFIERS = frozenset(
    {
        "earliest", "latest", "_index_earliest", "_index_latest", "starttime", "endtime",
        "starttimeu", "endtimeu", "timeformat", "daysago", "hoursago", "minutesago",
        "searchtimespandays", "searchtimespanhours", "searchtimespanminutes",
    }
)  # fmt: skip
KNOWLEDGE_OBJECT_FIELDS = frozenset({"eventtype", "tag", "savedsearch", "savedsplunk"})
METADATA_FIELDS = frozenset({"index", "host", "source", "sourcetype"})
WORD_END = frozenset(" \t\r\n()\"=<>")


class SearchNode:
    """One node of a parsed search expression."""

    def matches(self, row: dict[str, Any]) -> bool:
        raise NotImplementedError

    def field_names(self) -> set[str]:
        return set()


@dataclass(frozen=True)
class MatchAll(SearchNode):
    def matches(self, row: dict[str, Any]) -> bool:
        return True


@dataclass(frozen=True)
class RawTerm(SearchNode):
    """A bare term or quoted phrase, matched against ``_raw``."""

    text: str

    def matches(self, row: dict[str, Any]) -> bool:
        raw = row.get("_raw")
        return isinstance(raw, str) and raw_term_pattern(self.text).search(raw) is not None


@dataclass(frozen=True)
class TimeModifier(SearchNode):
    """``earliest`` or ``latest``: it limits the time range of the search and matches every row."""

    name: str
    spec: TimeSpec

    def matches(self, row: dict[str, Any]) -> bool:
        return True


@dataclass(frozen=True)
class FieldComparison(SearchNode):
    field: str
    operator: str
    value: str

    def matches(self, row: dict[str, Any]) -> bool:
        values = field_values(row.get(self.field))
        if not values:
            return False
        custom_indexed = self.field in row.get(INDEXED_FIELDS_KEY, ())
        if self.operator == "::":
            if not custom_indexed and self.field not in METADATA_FIELDS:
                return False
            return any(value_pattern(self.value).fullmatch(value) for value in values)
        if self.operator == "=":
            if custom_indexed and not RawTerm(self.value).matches(row):
                return False
            return any(value_pattern(self.value).fullmatch(value) for value in values)
        if self.operator == "!=":
            return not any(value_pattern(self.value).fullmatch(value) for value in values)
        return any(_ordered(value, self.value, self.operator) for value in values)

    def field_names(self) -> set[str]:
        return {self.field}


@dataclass(frozen=True)
class FieldIn(SearchNode):
    field: str
    values: tuple[str, ...]

    def matches(self, row: dict[str, Any]) -> bool:
        custom_indexed = self.field in row.get(INDEXED_FIELDS_KEY, ())
        return any(
            value_pattern(candidate).fullmatch(value)
            and (not custom_indexed or RawTerm(candidate).matches(row))
            for value in field_values(row.get(self.field))
            for candidate in self.values
        )

    def field_names(self) -> set[str]:
        return {self.field}


@dataclass(frozen=True)
class And(SearchNode):
    parts: tuple[SearchNode, ...]

    def matches(self, row: dict[str, Any]) -> bool:
        return all(part.matches(row) for part in self.parts)

    def field_names(self) -> set[str]:
        return set().union(*(part.field_names() for part in self.parts))


@dataclass(frozen=True)
class Or(SearchNode):
    parts: tuple[SearchNode, ...]

    def matches(self, row: dict[str, Any]) -> bool:
        return any(part.matches(row) for part in self.parts)

    def field_names(self) -> set[str]:
        return set().union(*(part.field_names() for part in self.parts))


@dataclass(frozen=True)
class Not(SearchNode):
    part: SearchNode

    def matches(self, row: dict[str, Any]) -> bool:
        return not self.part.matches(row)

    def field_names(self) -> set[str]:
        return self.part.field_names()


@lru_cache(maxsize=4096)
def value_pattern(value: str) -> re.Pattern[str]:
    """Compile a field value with ``*`` wildcards for a case-insensitive whole-value match."""
    body = ".*".join(re.escape(part) for part in value.split("*"))
    return re.compile(body, re.IGNORECASE | re.DOTALL)


@lru_cache(maxsize=4096)
def raw_term_pattern(term: str) -> re.Pattern[str]:
    """Compile a term or phrase that must be bounded by breakers or the ends of ``_raw``."""
    body = r"\S*?".join(re.escape(part) for part in term.split("*"))
    return re.compile(f"(?<!{NOT_BREAKER}){body}(?!{NOT_BREAKER})", re.IGNORECASE)


def _ordered(value: str, bound: str, operator: str) -> bool:
    left: Any = to_number(value)
    right: Any = to_number(bound)
    if left is None or right is None:
        left, right = value, bound
    return {"<": left < right, ">": left > right, "<=": left <= right, ">=": left >= right}[
        operator
    ]


def unescape_search_text(text: str) -> str:
    """Resolve ``\\\\`` and ``\\"``; every other backslash stays, as in Splunk's search command."""
    out = []
    position = 0
    while position < len(text):
        char = text[position]
        if char == "\\" and position + 1 < len(text) and text[position + 1] in '\\"':
            out.append(text[position + 1])
            position += 2
        else:
            out.append(char)
            position += 1
    return "".join(out)


class SearchParser:
    """Recursive-descent parser for one search expression, working on the characters."""

    def __init__(self, text: str, command: str = "search", *, base: bool = False) -> None:
        self.text = text
        self.command = command
        # Only the base search takes the time modifiers earliest and latest.
        self.base = base
        self.position = 0

    def error(self, detail: str) -> SPLSyntaxError:
        return SPLSyntaxError(
            f"Error in '{self.command}' command: Unable to parse the search: {detail}"
        )

    def parse(self) -> SearchNode:
        self._skip_space()
        if self._at_end():
            return MatchAll()
        node = self._parse_and()
        self._skip_space()
        if not self._at_end():
            raise self.error(f"Unbalanced parentheses at position {self.position}.")
        return node

    def _at_end(self) -> bool:
        return self.position >= len(self.text)

    def _peek(self) -> str:
        return self.text[self.position] if not self._at_end() else ""

    def _skip_space(self) -> None:
        while not self._at_end() and self.text[self.position].isspace():
            self.position += 1

    def _keyword_ahead(self, keyword: str) -> bool:
        self._skip_space()
        end = self.position + len(keyword)
        if not self.text.startswith(keyword, self.position):
            return False
        return end == len(self.text) or self.text[end].isspace() or self.text[end] in '("'

    def _take_keyword(self, keyword: str) -> None:
        self._skip_space()
        self.position += len(keyword)

    def _parse_and(self) -> SearchNode:
        parts = [self._parse_or()]
        while True:
            self._skip_space()
            if self._at_end() or self._peek() == ")":
                break
            if self._keyword_ahead("AND"):
                self._take_keyword("AND")
            parts.append(self._parse_or())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def _parse_or(self) -> SearchNode:
        parts = [self._parse_not()]
        while self._keyword_ahead("OR"):
            self._take_keyword("OR")
            parts.append(self._parse_not())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def _parse_not(self) -> SearchNode:
        if self._keyword_ahead("NOT"):
            self._take_keyword("NOT")
            return Not(self._parse_not())
        return self._parse_primary()

    def _parse_primary(self) -> SearchNode:
        self._skip_space()
        char = self._peek()
        if not char:
            raise self.error("A search term is missing at the end of the search.")
        if char == "(":
            self.position += 1
            node = self._parse_and()
            self._skip_space()
            if self._peek() != ")":
                raise self.error("Unbalanced parentheses: a '(' is not closed.")
            self.position += 1
            return node
        if char == ")":
            raise self.error(f"Unbalanced parentheses: unexpected ')' at position {self.position}.")
        if char == '"':
            return _term(unescape_search_text(self._read_quoted()))
        if char == "`":
            raise self.error("The Splunk stand-in does not expand macros.")
        if self._keyword_ahead("AND") or self._keyword_ahead("OR"):
            raise self.error(f"A search term is missing before the keyword at position {self.position}.")
        word = self._read_word()
        if not word:
            raise self.error(f"Unexpected {char!r} at position {self.position}.")
        return self._parse_after_word(word)

    def _parse_after_word(self, word: str) -> SearchNode:
        after_word = self.position
        self._skip_space()
        operator = self._read_operator()
        if operator:
            if word in RANGE_MODIFIERS and operator == "=" and self.base:
                self._skip_space()
                return TimeModifier(word, parse_time_spec(word, self._read_value()))
            field = self._check_field(word)
            self._skip_space()
            return FieldComparison(field, operator, self._read_value())
        if self._keyword_ahead("IN"):
            self._take_keyword("IN")
            self._skip_space()
            if self._peek() == "(":
                return FieldIn(self._check_field(word), self._read_value_list())
        self.position = after_word
        if "::" in word:
            field, value = word.split("::", 1)
            if not value and self._peek() == '"':
                value = self._read_quoted()
            return FieldComparison(self._check_field(field), "::", unescape_search_text(value))
        return _term(unescape_search_text(word))

    def _check_field(self, field: str) -> str:
        if field in RANGE_MODIFIERS:
            raise self.error(
                f"The Splunk stand-in supports the time modifier '{field}' only as "
                f"{field}=<time> in the base search."
            )
        if field in TIME_MODIFIERS:
            raise self.error(
                f"The Splunk stand-in does not support the time modifier '{field}'; "
                "use earliest or latest."
            )
        if field in KNOWLEDGE_OBJECT_FIELDS:
            raise self.error(f"The Splunk stand-in has no knowledge objects for '{field}'.")
        return field

    def _read_quoted(self) -> str:
        """Read a double-quoted string and return its text with the escapes still in it."""
        start = self.position
        self.position += 1
        while not self._at_end():
            char = self.text[self.position]
            if char == "\\":
                self.position += 2
            elif char == '"':
                self.position += 1
                return self.text[start + 1 : self.position - 1]
            else:
                self.position += 1
        raise self.error(f"Unbalanced quotes: the string at position {start} is not closed.")

    def _read_word(self) -> str:
        start = self.position
        while not self._at_end():
            char = self.text[self.position]
            if char in WORD_END:
                break
            if char == "!" and self.text.startswith("!=", self.position):
                break
            if char == "\\" and self.position + 1 < len(self.text):
                self.position += 2
                continue
            self.position += 1
        return self.text[start : self.position]

    def _read_operator(self) -> str:
        for operator in ("!=", "<=", ">=", "=", "<", ">"):
            if self.text.startswith(operator, self.position):
                self.position += len(operator)
                return operator
        return ""

    def _read_value(self, stop: str = "") -> str:
        if self._peek() == '"':
            return unescape_search_text(self._read_quoted())
        start = self.position
        while not self._at_end():
            char = self.text[self.position]
            if char.isspace() or char in "()" or char in stop:
                break
            if char == "\\" and self.position + 1 < len(self.text):
                self.position += 2
                continue
            self.position += 1
        if start == self.position:
            raise self.error(f"A value is missing after the comparison at position {start}.")
        return unescape_search_text(self.text[start : self.position])

    def _read_value_list(self) -> tuple[str, ...]:
        self.position += 1
        values = []
        while True:
            self._skip_space()
            if self._peek() == ")":
                self.position += 1
                break
            if self._at_end():
                raise self.error("Unbalanced parentheses: the IN list is not closed.")
            values.append(self._read_value(stop=","))
            self._skip_space()
            if self._peek() == ",":
                self.position += 1
        if not values:
            raise self.error("The IN list is empty.")
        return tuple(values)


def _term(text: str) -> SearchNode:
    return MatchAll() if text.strip("*") == "" else RawTerm(text)


def parse_search(text: str, command: str = "search", *, base: bool = False) -> SearchNode:
    return SearchParser(text, command, base=base).parse()


def time_modifiers(node: SearchNode) -> tuple[SearchNode, dict[str, TimeSpec]]:
    """Take the top-level time modifiers out of a base search.

    A top-level term is one that every matching event must satisfy: the whole search, or
    a term joined to the rest by AND. Returns the search without them and their values by
    name. Raises SPLSyntaxError for a modifier in a group joined by OR or under NOT, where
    Splunk's handling is not modelled, and for a modifier given twice.
    """
    if isinstance(node, TimeModifier):
        top, rest = [node], MatchAll()
    elif isinstance(node, And):
        top = [part for part in node.parts if isinstance(part, TimeModifier)]
        kept = tuple(part for part in node.parts if not isinstance(part, TimeModifier))
        if not kept:
            rest = MatchAll()
        elif len(kept) == 1:
            rest = kept[0]
        else:
            rest = And(kept)
    else:
        top, rest = [], node
    if _contains_time_modifier(rest):
        raise SPLSyntaxError(
            "Error in 'search' command: The Splunk stand-in supports earliest and latest only "
            "as top-level terms of the base search, not in a group joined by OR or under NOT."
        )
    specs: dict[str, TimeSpec] = {}
    for modifier in top:
        if modifier.name in specs:
            raise SPLSyntaxError(
                f"Error in 'search' command: The time modifier '{modifier.name}' is given twice."
            )
        specs[modifier.name] = modifier.spec
    return rest, specs


def _contains_time_modifier(node: SearchNode) -> bool:
    if isinstance(node, TimeModifier):
        return True
    if isinstance(node, And | Or):
        return any(_contains_time_modifier(part) for part in node.parts)
    if isinstance(node, Not):
        return _contains_time_modifier(node.part)
    return False
