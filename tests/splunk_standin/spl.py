"""A parser and evaluator for a documented subset of SPL, used by the Splunk stand-in.

A query is a base search followed by commands separated by ``|``; pipes inside
double-quoted strings do not separate commands. The base search and the ``search``
command take the search-expression grammar of ``search_terms``. ``eval`` and ``where``
take the expression grammar of ``eval_expr``. The base search also takes the time
modifiers ``earliest`` and ``latest`` as top-level terms, with the values that
``time_modifiers`` describes. Without them a job covers all time, as with
``earliest_time=0``.

Commands modelled:

- ``search <expression>``
- ``eval <field>=<expression>[, <field>=<expression>]...``. Later assignments see earlier
  ones, a null result removes the field, and a boolean result is rejected as in Splunk.
- ``where <expression>`` keeps rows whose expression is true.
- ``table <field>...`` and ``fields [+|-] <field>...`` with ``*`` wildcards. ``fields``
  without ``-`` keeps internal fields whose names start with ``_``, as Splunk does.
- ``sort [<count>] [limit=<count>] [+|-]<field>... [desc]``, with ``num()``, ``str()`` and
  ``auto()``. The default is auto: numbers in numeric order before strings in code-point
  order. Missing values go last. The default limit is 10000 and 0 means no limit.
- ``head [<count>|limit=<count>]``, 10 rows by default.
- ``stats <function>[(<field>)] [as <name>]... [by <field>[, <field>]...]``. Rows missing
  a group-by field are left out, and groups come out sorted by their group-by values. The
  functions are ``count`` (or ``c``), ``dc`` (``distinct_count``), ``sum``, ``avg``
  (``mean``), ``min``, ``max`` and ``values``. Each value of a multivalue field counts.
  ``sum`` and ``avg`` read the numeric values only. ``min`` and ``max`` compare numbers
  when the field has any, and text in code-point order otherwise. NOTE: for a field
  with both numbers and text, which value Splunk's min and max return is not verified.
  ``values`` gives the distinct values in code-point order, as one value when there is
  only one. A function without values, such as ``sum`` of a field no row has, leaves its
  output field out.
- ``eventstats``, with the arguments of ``stats``, adds each group's results to every row
  of the group and keeps the rows. A row missing a group-by field is left unchanged.
  Grouping by a multivalue field fails the job, because how Splunk assigns such a row is
  not modelled.
- ``convert [timeformat=<format>] ctime(<field>) [as <name>]...`` formats epoch seconds
  with Python's strftime in UTC, ``%m/%d/%Y %H:%M:%S`` by default, and leaves other
  values unchanged.
- ``rename <field> as <name>[, ...]``
- ``dedup [<count>] <field>... [keepempty=<bool>]`` keeps the first rows per value combination.

Not modelled: time modifiers other than ``earliest`` and ``latest``. Macros, subsearches,
lookups and generating commands (``| makeresults``, ``| tstats``) are not modelled
either. Neither are knowledge objects such as event types, tags, field aliases and
calculated fields, nor any command or function not listed above (``rex``, ``spath``,
``join``, ``timechart`` and the stats function ``median``, for example). The parser
rejects all of them, and the server returns that as a 400 FATAL message.

Results of an event search come newest first, with every field of the event.
"""

import re
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from dataclasses import dataclass, field
from typing import Any

from . import eval_expr
from .errors import SPLRuntimeError, SPLSyntaxError
from .search_terms import SearchNode, parse_search, time_modifiers
from .time_modifiers import TimeSpec
from .values import field_values, render_scalar, to_number

DEFAULT_SORT_LIMIT = 10000
DEFAULT_HEAD_COUNT = 10
# Commands that Splunk has and the stand-in lacks, which get their own error message.
SPLUNK_ONLY_COMMANDS = frozenset(
    {
        "append", "appendcols", "bin", "bucket", "chart", "collect", "datamodel", "extract",
        "fieldformat", "fillnull", "foreach", "inputlookup", "iplocation", "join", "kv", "lookup",
        "makemv", "makeresults", "map", "metadata", "mstats", "multisearch", "mvexpand",
        "outputlookup", "rare", "regex", "rest", "reverse", "rex", "spath", "streamstats", "tail",
        "timechart", "top", "transaction", "tstats", "union", "xmlkv",
    }
)  # fmt: skip
ARGUMENT_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[(),=]|[^\s(),="]+')


class Command:
    """One command of a pipeline, applied to the rows that the previous one produced."""

    def apply(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        raise NotImplementedError


@dataclass
class Pipeline:
    """A parsed query: the base search and the commands after it."""

    base: SearchNode
    commands: list[Command] = field(default_factory=list)
    # The base search's ``earliest`` and ``latest`` values, by name.
    time_range: dict[str, TimeSpec] = field(default_factory=dict)

    def names_index(self) -> bool:
        """Return whether the base search mentions the ``index`` field anywhere."""
        return "index" in self.base.field_names()

    def run(
        self,
        events: Iterable[dict[str, Any]],
        default_indexes: Iterable[str] = ("main",),
        *,
        now: float | None = None,
    ) -> list[dict[str, Any]]:
        """Run the query over events given as field dicts and return the result rows.

        A base search that names no index reads only ``default_indexes``, like a Splunk
        role's default search indexes. ``now`` is the current time in epoch seconds that
        relative ``earliest`` and ``latest`` values count from, ``time.time()`` by default.
        """
        rows = [dict(event) for event in events]
        if not self.names_index():
            allowed = {name.lower() for name in default_indexes}
            rows = [row for row in rows if str(row.get("index", "")).lower() in allowed]
        if self.time_range:
            rows = self._in_time_range(rows, time.time() if now is None else now)
        rows = [row for row in rows if self.base.matches(row)]
        rows.sort(key=lambda row: to_number(row.get("_time")) or 0, reverse=True)
        for command in self.commands:
            rows = command.apply(rows)
        return rows

    def _in_time_range(self, rows: list[dict[str, Any]], now: float) -> list[dict[str, Any]]:
        earliest = self.time_range.get("earliest")
        latest = self.time_range.get("latest")
        low = earliest.resolve(now) if earliest else None
        high = latest.resolve(now) if latest else None
        kept = []
        for row in rows:
            moment = to_number(row.get("_time"))
            if moment is None:
                continue
            if low is not None and moment < low:
                continue
            if high is not None and moment >= high:
                continue
            kept.append(row)
        return kept


def parse(query: str) -> Pipeline:
    """Parse a query, raising SPLSyntaxError with a Splunk-style message when it is invalid."""
    segments = split_pipeline(query)
    base_text = segments[0]
    if not base_text.strip() and len(segments) > 1:
        name = segments[1].split(None, 1)[0] if segments[1].strip() else ""
        raise SPLSyntaxError(
            f"The Splunk stand-in does not support generating commands such as '{name}'; "
            "start the query with a search."
        )
    base_text = re.sub(r"^\s*search(?=\s|$)", "", base_text, count=1)
    base, time_range = time_modifiers(parse_search(base_text, base=True))
    pipeline = Pipeline(base, time_range=time_range)
    for segment in segments[1:]:
        pipeline.commands.append(parse_command(segment))
    return pipeline


def split_pipeline(query: str) -> list[str]:
    """Split a query at the pipes outside double-quoted strings."""
    segments = []
    start = 0
    position = 0
    while position < len(query):
        char = query[position]
        if char == '"':
            position = _end_of_quoted(query, position)
            continue
        if char == "[":
            raise SPLSyntaxError("The Splunk stand-in does not support subsearches.")
        if char == "`":
            raise SPLSyntaxError("The Splunk stand-in does not expand macros.")
        if char == "|":
            segments.append(query[start:position])
            start = position + 1
        position += 1
    segments.append(query[start:])
    return segments


def _end_of_quoted(text: str, start: int) -> int:
    position = start + 1
    while position < len(text):
        if text[position] == "\\":
            position += 2
        elif text[position] == '"':
            return position + 1
        else:
            position += 1
    raise SPLSyntaxError(f"Unbalanced quotes: the string at position {start} is not closed.")


def parse_command(segment: str) -> Command:
    match = re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*)", segment)
    if not match:
        raise SPLSyntaxError(f"Missing a search command before '|{segment.strip()[:20]}'.")
    name = match.group(1).lower()
    arguments = segment[match.end() :]
    parser = COMMAND_PARSERS.get(name)
    if parser is None:
        if name in SPLUNK_ONLY_COMMANDS:
            raise SPLSyntaxError(f"The Splunk stand-in does not support the '{name}' command.")
        raise SPLSyntaxError(f"Unknown search command '{match.group(1)}'.")
    return parser(arguments)


def argument_tokens(text: str) -> list[str]:
    """Split command arguments into words, quoted strings, commas, parentheses and '='."""
    tokens = []
    position = 0
    while position < len(text):
        if text[position].isspace():
            position += 1
            continue
        match = ARGUMENT_TOKEN.match(text, position)
        if match is None:
            raise SPLSyntaxError(f"Unbalanced quotes in the arguments {text.strip()!r}.")
        tokens.append(match.group())
        position = match.end()
    return tokens


def field_name(token: str) -> str:
    if token.startswith('"'):
        return eval_expr.unescape_string(token)
    return token


def field_list(tokens: list[str], command: str) -> list[str]:
    names = [field_name(token) for token in tokens if token != ","]
    if any(name in "()=" for name in names):
        raise SPLSyntaxError(f"Error in '{command}' command: Invalid argument in {tokens!r}.")
    return names


def wildcard(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)


def _parse_bool(value: str, command: str, option: str) -> bool:
    lowered = value.lower()
    if lowered in {"true", "t", "1"}:
        return True
    if lowered in {"false", "f", "0"}:
        return False
    raise SPLSyntaxError(f"Error in '{command}' command: Invalid value {value!r} for {option}.")


def _parse_count(value: str, command: str) -> int:
    if not re.fullmatch(r"\d+", value):
        raise SPLSyntaxError(f"Error in '{command}' command: Invalid count {value!r}.")
    return int(value)


# Commands


@dataclass
class SearchCommand(Command):
    expression: SearchNode

    def apply(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [row for row in rows if self.expression.matches(row)]


@dataclass
class EvalCommand(Command):
    assignments: list[tuple[str, Any]]

    def apply(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for row in rows:
            for name, expression in self.assignments:
                value = eval_expr.evaluate(expression, row)
                if isinstance(value, bool):
                    raise SPLRuntimeError(
                        "Error in 'eval' command: Fields cannot be assigned a boolean result. "
                        "Use if(<condition>, <value>, <value>) instead."
                    )
                if value is None:
                    row.pop(name, None)
                else:
                    row[name] = value
        return rows


def parse_eval(arguments: str) -> EvalCommand:
    parser = eval_expr.ExpressionParser(arguments, "eval")
    assignments = []
    while True:
        target = parser.take()
        if target.kind == "name" and target.text not in eval_expr.KEYWORDS:
            name = target.text
        elif target.kind in {"quoted_field", "string"}:
            name = eval_expr.unescape_string(target.text)
        else:
            raise parser.error(f"Expected a field name but found {target.text!r}.")
        parser.expect("=")
        expression = parser.parse_expression()
        if eval_expr.is_boolean(expression) is True:
            raise SPLSyntaxError(
                "Error in 'eval' command: Fields cannot be assigned a boolean result. "
                "Use if(<condition>, <value>, <value>) instead."
            )
        assignments.append((name, expression))
        if parser.at_end():
            return EvalCommand(assignments)
        parser.expect(",")


@dataclass
class WhereCommand(Command):
    expression: Any

    def apply(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        matching_rows = []
        for row in rows:
            value = eval_expr.evaluate(self.expression, row)
            if value is not None and not isinstance(value, bool):
                raise SPLRuntimeError(
                    "Error in 'where' command: The expression must give a boolean value."
                )
            if value is True:
                matching_rows.append(row)
        return matching_rows


def parse_where(arguments: str) -> WhereCommand:
    parser = eval_expr.ExpressionParser(arguments, "where")
    if parser.at_end():
        raise parser.error("The expression is missing.")
    expression = parser.parse_expression()
    if not parser.at_end():
        raise parser.error(f"Unexpected {parser.peek().text!r} after the expression.")
    if eval_expr.is_boolean(expression) is False:
        raise SPLSyntaxError(
            "Error in 'where' command: Type checking failed. The expression must give a "
            "boolean value."
        )
    return WhereCommand(expression)


@dataclass
class TableCommand(Command):
    patterns: list[str]

    def apply(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        table = []
        for row in rows:
            ordered: dict[str, Any] = {}
            for pattern in self.patterns:
                if "*" in pattern:
                    regex = wildcard(pattern)
                    for name, value in row.items():
                        if regex.fullmatch(name) and name not in ordered:
                            ordered[name] = value
                elif pattern in row:
                    ordered[pattern] = row[pattern]
            table.append(ordered)
        return table


def parse_table(arguments: str) -> TableCommand:
    names = field_list(argument_tokens(arguments), "table")
    if not names:
        raise SPLSyntaxError("Error in 'table' command: A field list is required.")
    return TableCommand(names)


@dataclass
class FieldsCommand(Command):
    remove: bool
    patterns: list[str]

    def apply(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        regexes = [wildcard(pattern) for pattern in self.patterns]

        def listed(name: str) -> bool:
            return any(regex.fullmatch(name) for regex in regexes)

        if self.remove:
            return [{name: value for name, value in row.items() if not listed(name)} for row in rows]
        return [
            {name: value for name, value in row.items() if listed(name) or name.startswith("_")}
            for row in rows
        ]


def parse_fields(arguments: str) -> FieldsCommand:
    tokens = argument_tokens(arguments)
    remove = False
    if tokens and tokens[0] in {"+", "-"}:
        remove = tokens.pop(0) == "-"
    names = field_list(tokens, "fields")
    if not names:
        raise SPLSyntaxError("Error in 'fields' command: A field list is required.")
    return FieldsCommand(remove, names)


@dataclass
class SortKey:
    field: str
    descending: bool
    mode: str


@dataclass
class SortCommand(Command):
    keys: list[SortKey]
    limit: int

    def apply(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        ordered = list(rows)
        # Python's sort is stable, so sorting by the last key first gives a multi-key sort.
        for key in reversed(self.keys):
            present = [row for row in ordered if field_values(row.get(key.field))]
            missing = [row for row in ordered if not field_values(row.get(key.field))]
            present.sort(key=lambda row, key=key: _sort_value(row, key), reverse=key.descending)
            ordered = present + missing
        return ordered if self.limit == 0 else ordered[: self.limit]


def _sort_value(row: dict[str, Any], key: SortKey) -> tuple[int, Any]:
    value = row.get(key.field)
    first = value[0] if isinstance(value, list) else value
    number = to_number(first)
    if key.mode == "str" or (key.mode == "auto" and number is None):
        return (1, render_scalar(first))
    if number is None:
        # num() puts values that are not numbers after the numbers.
        return (2, render_scalar(first))
    return (0, number)


def parse_sort(arguments: str) -> SortCommand:
    tokens = argument_tokens(arguments)
    limit = DEFAULT_SORT_LIMIT
    if tokens and re.fullmatch(r"\d+", tokens[0]):
        limit = int(tokens.pop(0))
    if len(tokens) >= 3 and tokens[0] == "limit" and tokens[1] == "=":
        limit = _parse_count(tokens[2], "sort")
        del tokens[:3]
    reverse_all = False
    if tokens and tokens[-1].lower() in {"d", "desc"}:
        reverse_all = True
        tokens.pop()
    keys = []
    position = 0
    while position < len(tokens):
        token = tokens[position]
        position += 1
        if token == ",":
            continue
        descending = False
        if token in {"+", "-"}:
            descending = token == "-"
            if position >= len(tokens):
                raise SPLSyntaxError(f"Error in 'sort' command: A field is missing after {token!r}.")
            token = tokens[position]
            position += 1
        elif token[0] in "+-" and len(token) > 1:
            descending = token[0] == "-"
            token = token[1:]
        mode = "auto"
        if token.lower() in {"num", "str", "auto", "ip"} and tokens[position : position + 1] == ["("]:
            if token.lower() == "ip":
                raise SPLSyntaxError("Error in 'sort' command: The Splunk stand-in does not support ip().")
            mode = token.lower()
            if tokens[position + 2 : position + 3] != [")"]:
                raise SPLSyntaxError(f"Error in 'sort' command: {token}() takes one field.")
            token = tokens[position + 1]
            position += 3
        if token in "()=":
            raise SPLSyntaxError(f"Error in 'sort' command: Unexpected {token!r}.")
        keys.append(SortKey(field_name(token), descending != reverse_all, mode))
    if not keys:
        raise SPLSyntaxError("Error in 'sort' command: A field to sort by is required.")
    return SortCommand(keys, limit)


@dataclass
class HeadCommand(Command):
    count: int

    def apply(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return rows[: self.count]


def parse_head(arguments: str) -> HeadCommand:
    tokens = argument_tokens(arguments)
    if not tokens:
        return HeadCommand(DEFAULT_HEAD_COUNT)
    if len(tokens) == 1:
        return HeadCommand(_parse_count(tokens[0], "head"))
    if len(tokens) == 3 and tokens[0] == "limit" and tokens[1] == "=":
        return HeadCommand(_parse_count(tokens[2], "head"))
    raise SPLSyntaxError(
        "Error in 'head' command: The Splunk stand-in supports only a row count."
    )


# Aggregation functions of stats and eventstats with the aliases that Splunk's Search
# Reference (9.2) lists: c for count, distinct_count for dc and mean for avg.
AGGREGATE_FUNCTIONS = {
    "count": "count",
    "c": "count",
    "dc": "dc",
    "distinct_count": "dc",
    "sum": "sum",
    "avg": "avg",
    "mean": "avg",
    "min": "min",
    "max": "max",
    "values": "values",
}


@dataclass
class Aggregate:
    function: str
    field: str | None
    output: str

    def compute(self, members: list[dict[str, Any]]) -> Any:
        """Aggregate the rows of one group; None means the result has no such field."""
        if self.field is None:
            return len(members)
        values = [value for member in members for value in _raw_values(member.get(self.field))]
        texts = [render_scalar(value) for value in values]
        if self.function == "count":
            return len(values)
        if self.function == "dc":
            return len(set(texts))
        if self.function == "values":
            distinct = sorted(set(texts))
            return _single_or_list(distinct)
        numbers = [number for number in map(to_number, values) if number is not None]
        if self.function == "sum":
            return sum(numbers) if numbers else None
        if self.function == "avg":
            return sum(numbers) / len(numbers) if numbers else None
        pick = min if self.function == "min" else max
        if numbers:
            return pick(numbers)
        return pick(texts) if texts else None


def _raw_values(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _single_or_list(values: list[str]) -> Any:
    if not values:
        return None
    return values[0] if len(values) == 1 else values


def _group_rows(
    rows: list[dict[str, Any]], group_by: list[str]
) -> dict[tuple[str, ...], list[dict[str, Any]]]:
    """Group rows by their group-by values; rows missing a group-by field are left out."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        key_values = [field_values(row.get(name)) for name in group_by]
        if any(not values for values in key_values):
            continue
        # A multivalue group-by field counts the row once in the group of each value.
        for key in _combinations(key_values):
            groups.setdefault(key, []).append(row)
    return groups


@dataclass
class StatsCommand(Command):
    aggregates: list[Aggregate]
    group_by: list[str]

    def apply(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        groups = _group_rows(rows, self.group_by)
        if not self.group_by and not groups:
            groups[()] = []
        results = []
        for key in sorted(groups, key=lambda key: [_group_order(value) for value in key]):
            members = groups[key]
            result: dict[str, Any] = dict(zip(self.group_by, key, strict=True))
            for aggregate in self.aggregates:
                value = aggregate.compute(members)
                if value is not None:
                    result[aggregate.output] = value
            results.append(result)
        return results


@dataclass
class EventstatsCommand(Command):
    """Add each group's aggregates to every row of the group, keeping the rows and their order."""

    aggregates: list[Aggregate]
    group_by: list[str]

    def apply(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for row in rows:
            if any(isinstance(row.get(name), list) for name in self.group_by):
                raise SPLRuntimeError(
                    "Error in 'eventstats' command: The Splunk stand-in does not model "
                    "grouping by a multivalue field."
                )
        groups = _group_rows(rows, self.group_by)
        results = {
            key: [aggregate.compute(members) for aggregate in self.aggregates]
            for key, members in groups.items()
        }
        for row in rows:
            key = tuple(render_scalar(row[name]) for name in self.group_by if name in row)
            if key not in results:
                continue
            for aggregate, value in zip(self.aggregates, results[key], strict=True):
                if value is None:
                    row.pop(aggregate.output, None)
                else:
                    row[aggregate.output] = value
        return rows


def _combinations(key_values: list[list[str]]) -> list[tuple[str, ...]]:
    combinations: list[tuple[str, ...]] = [()]
    for values in key_values:
        combinations = [prefix + (value,) for prefix in combinations for value in values]
    return combinations


def _group_order(value: str) -> tuple[int, Any]:
    number = to_number(value)
    return (0, number) if number is not None else (1, value)


def parse_aggregation(arguments: str, command: str) -> tuple[list[Aggregate], list[str]]:
    """Parse ``<function>[(<field>)] [as <name>]... [by <field>...]`` of stats or eventstats."""
    tokens = argument_tokens(arguments)
    by_position = next((i for i, token in enumerate(tokens) if token.lower() == "by"), len(tokens))
    aggregate_tokens, group_tokens = tokens[:by_position], tokens[by_position + 1 :]
    if by_position < len(tokens) and not group_tokens:
        raise SPLSyntaxError(f"Error in '{command}' command: A field list is required after 'by'.")
    aggregates = []
    position = 0
    while position < len(aggregate_tokens):
        token = aggregate_tokens[position]
        if token == ",":
            position += 1
            continue
        function = AGGREGATE_FUNCTIONS.get(token.lower())
        if function is None:
            supported = ", ".join(sorted(set(AGGREGATE_FUNCTIONS)))
            raise SPLSyntaxError(
                f"Error in '{command}' command: The Splunk stand-in does not support the "
                f"function {token!r}; it supports {supported}."
            )
        position += 1
        aggregated_field = None
        if aggregate_tokens[position : position + 1] == ["("]:
            closing = aggregate_tokens[position + 2 : position + 3]
            if closing != [")"] or aggregate_tokens[position + 1] in "()=,":
                raise SPLSyntaxError(f"Error in '{command}' command: {token}() takes one field.")
            aggregated_field = field_name(aggregate_tokens[position + 1])
            position += 3
        elif function != "count":
            raise SPLSyntaxError(
                f"Error in '{command}' command: {token} needs a field, as in {token}(x)."
            )
        output = token if aggregated_field is None else f"{token}({aggregated_field})"
        if position < len(aggregate_tokens) and aggregate_tokens[position].lower() == "as":
            if position + 1 >= len(aggregate_tokens):
                raise SPLSyntaxError(f"Error in '{command}' command: A name is missing after 'as'.")
            output = field_name(aggregate_tokens[position + 1])
            position += 2
        aggregates.append(Aggregate(function, aggregated_field, output))
    if not aggregates:
        raise SPLSyntaxError(
            f"Error in '{command}' command: An aggregation such as count is required."
        )
    return aggregates, field_list(group_tokens, command)


def parse_stats(arguments: str) -> StatsCommand:
    return StatsCommand(*parse_aggregation(arguments, "stats"))


def parse_eventstats(arguments: str) -> EventstatsCommand:
    return EventstatsCommand(*parse_aggregation(arguments, "eventstats"))


# The time format of convert without timeformat=, as Splunk's Search Reference (9.2) gives it.
DEFAULT_CONVERT_TIME_FORMAT = "%m/%d/%Y %H:%M:%S"


@dataclass
class ConvertCommand(Command):
    """``convert ctime(...)``: epoch seconds to text, in UTC with Python's strftime."""

    time_format: str
    conversions: list[tuple[str, str]]

    def apply(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for row in rows:
            for source, target in self.conversions:
                if source not in row:
                    continue
                converted = [self._ctime(value) for value in _raw_values(row[source])]
                row[target] = converted if isinstance(row[source], list) else converted[0]
        return rows

    def _ctime(self, value: Any) -> Any:
        number = to_number(value)
        if number is None:
            return value
        return datetime.fromtimestamp(number, tz=UTC).strftime(self.time_format)


def parse_convert(arguments: str) -> ConvertCommand:
    tokens = argument_tokens(arguments)
    time_format = DEFAULT_CONVERT_TIME_FORMAT
    if tokens[:2] == ["timeformat", "="] and len(tokens) >= 3:
        time_format = field_name(tokens[2])
        del tokens[:3]
    conversions = []
    position = 0
    while position < len(tokens):
        function = tokens[position]
        opening = tokens[position + 1 : position + 2]
        closing = tokens[position + 3 : position + 4]
        if opening != ["("] or closing != [")"]:
            raise SPLSyntaxError(
                f"Error in 'convert' command: Expected <function>(<field>) at {function!r}."
            )
        if function.lower() != "ctime":
            raise SPLSyntaxError(
                f"Error in 'convert' command: The Splunk stand-in supports only ctime(), "
                f"not {function}()."
            )
        source = field_name(tokens[position + 2])
        if "*" in source:
            raise SPLSyntaxError(
                "Error in 'convert' command: The Splunk stand-in does not convert by wildcard."
            )
        position += 4
        target = source
        if position + 1 < len(tokens) and tokens[position].lower() == "as":
            target = field_name(tokens[position + 1])
            position += 2
        conversions.append((source, target))
    if not conversions:
        raise SPLSyntaxError(
            "Error in 'convert' command: A conversion such as ctime(<field>) is required."
        )
    return ConvertCommand(time_format, conversions)


@dataclass
class RenameCommand(Command):
    pairs: list[tuple[str, str]]

    def apply(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for row in rows:
            for source, target in self.pairs:
                if source in row:
                    row[target] = row.pop(source)
        return rows


def parse_rename(arguments: str) -> RenameCommand:
    tokens = [token for token in argument_tokens(arguments) if token != ","]
    if not tokens or len(tokens) % 3 or any(token.lower() != "as" for token in tokens[1::3]):
        raise SPLSyntaxError(
            "Error in 'rename' command: Use rename <field> as <new name>[, <field> as <new name>]."
        )
    pairs = [(field_name(tokens[i]), field_name(tokens[i + 2])) for i in range(0, len(tokens), 3)]
    if any("*" in name for pair in pairs for name in pair):
        raise SPLSyntaxError("Error in 'rename' command: The Splunk stand-in does not rename by wildcard.")
    return RenameCommand(pairs)


@dataclass
class DedupCommand(Command):
    fields: list[str]
    count: int
    keep_empty: bool

    def apply(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        seen: dict[tuple[tuple[str, ...], ...], int] = {}
        unique_rows = []
        for row in rows:
            key = tuple(tuple(field_values(row.get(name))) for name in self.fields)
            if any(not values for values in key):
                if self.keep_empty:
                    unique_rows.append(row)
                continue
            seen[key] = seen.get(key, 0) + 1
            if seen[key] <= self.count:
                unique_rows.append(row)
        return unique_rows


def parse_dedup(arguments: str) -> DedupCommand:
    tokens = argument_tokens(arguments)
    count = 1
    if tokens and re.fullmatch(r"\d+", tokens[0]):
        count = int(tokens.pop(0))
    keep_empty = False
    names = []
    position = 0
    while position < len(tokens):
        token = tokens[position]
        if tokens[position + 1 : position + 2] == ["="]:
            if token != "keepempty" or position + 2 >= len(tokens):
                raise SPLSyntaxError(
                    f"Error in 'dedup' command: The Splunk stand-in does not support the option {token!r}."
                )
            keep_empty = _parse_bool(tokens[position + 2], "dedup", token)
            position += 3
            continue
        if token.lower() == "sortby":
            raise SPLSyntaxError("Error in 'dedup' command: The Splunk stand-in does not support sortby.")
        if token != ",":
            names.append(field_name(token))
        position += 1
    if not names or count < 1:
        raise SPLSyntaxError("Error in 'dedup' command: At least one field is required.")
    return DedupCommand(names, count, keep_empty)


COMMAND_PARSERS = {
    "search": lambda arguments: SearchCommand(parse_search(arguments)),
    "eval": parse_eval,
    "where": parse_where,
    "table": parse_table,
    "fields": parse_fields,
    "sort": parse_sort,
    "head": parse_head,
    "stats": parse_stats,
    "eventstats": parse_eventstats,
    "convert": parse_convert,
    "rename": parse_rename,
    "dedup": parse_dedup,
}
