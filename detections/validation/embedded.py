"""The embedded engine: Sigma rules as SQLite queries over a test's recorded events.

Events are split by log source, and each source gets its own in-memory table named
`logs`, so a rule only reads the events its logsource covers, as a SIEM's
index and sourcetype scoping would do. Every column is `TEXT COLLATE NOCASE`, which
makes `=` ignore case as Sigma requires. SQLite's LIKE already ignores case, but
only for ASCII letters.

One table scan evaluates several rules (RULES_PER_SCAN), so that they share the cost
of stepping through the rows of a wide Sysmon table. In a large source, the rules that
read only a few columns run over the distinct value combinations of those columns
instead of every event, and the other rules over a table of only the columns they
read (see _distinct_tables). A source with many rule-event pairs is split into slices,
which worker threads scan at the same time.
Python's sqlite3 module releases the GIL while SQLite runs a statement, so the slices
use several cores, with no process start-up and no copy of the events. Only the
Python functions REGEXP and sigma_number take the GIL back, once per call.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from array import array
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache

from detections.pysigma.embedded import NUMBER_FUNCTION, CompiledRule

from .events import EventSource, event_source, logsource_matches

# Rules whose queries one statement evaluates per row. This was measured on a 2-core
# AMD EPYC VM with 20,000 process creation events from bench/validate and SigmaHQ's
# 1,183 process_creation rules. There, 10 to 50 rules per scan took 26 to 30 % less
# CPU than one scan per rule, and 200 per scan took about 5 % more.
RULES_PER_SCAN = 16

# Worker threads start, and a source is split into slices for them, only from this
# many rule-event pairs on. A pair costs roughly 0.5 to 1 µs (same measurement), so
# smaller inputs finish in well under a second and gain nothing from threads.
PARALLEL_MIN_PAIRS = 1_000_000

# From this many events of one source on, the rules that read only a few columns run
# over the distinct value combinations of those columns, one row per combination,
# instead of over every event (see _distinct_tables). Smaller sources are scanned as
# they are, because grouping their events would save little.
DISTINCT_MIN_EVENTS = 10_000

# Columns a distinct view may have, taken in the order of how many rules read them,
# and views per source.
DISTINCT_MAX_COLUMNS = 6
DISTINCT_MAX_VIEWS = 3

# Rows of one table at most. A larger source is scanned in slices of this size, which
# caps the memory of the tables that exist at the same time at one slice per worker.
SLICE_MAX_ROWS = 100_000

# The column of each table that contains the event number, or in a view the row number.
ROW_NUMBER = "_event"
SELECT_PREFIX = "SELECT _event FROM logs WHERE "

# String literals and identifiers of SQLite statements: 'text', "name", `name` or a bare word.
_LITERAL = re.compile(r"'(?:[^']|'')*'")
_IDENTIFIER = re.compile(r'"((?:[^"]|"")*)"|`((?:[^`]|``)*)`|([A-Za-z_][A-Za-z0-9_]*)')

# Value types that SQLite stores as they are; _cell converts every other type.
_PLAIN_TYPES = frozenset((str, int, float, type(None)))


def default_workers() -> int:
    """Return run_rules' default number of worker threads: one per core."""
    return os.cpu_count() or 1


@dataclass
class RuleOutcome:
    """Matches and errors of one rule over one set of events."""

    rule_id: str
    title: str
    matched: set[int] = field(default_factory=set)
    # Log sources of the events the rule read, with their event counts.
    sources: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


@dataclass
class EngineResult:
    """Matches of all rules over one set of events."""

    rules: list[RuleOutcome]
    event_count: int
    unread_sources: dict[str, int]
    # Seconds spent grouping events and building tables, and seconds spent scanning
    # them. Both are summed over worker threads, so with several workers their sum can
    # exceed the wall time of run_rules.
    load_seconds: float = 0.0
    scan_seconds: float = 0.0

    @property
    def matched(self) -> set[int]:
        found: set[int] = set()
        for outcome in self.rules:
            found |= outcome.matched
        return found

    @property
    def errors(self) -> list[str]:
        return [f"{outcome.title}: {error}" for outcome in self.rules for error in outcome.errors]

    @property
    def rules_applied(self) -> int:
        return sum(1 for outcome in self.rules if outcome.sources)


class SourceTable:
    """The events of one log source in an in-memory SQLite table named logs.

    `columns` maps each case-folded field name to the spelling used as the column name.
    By default it is computed from `events`; a slice of a larger source receives the
    columns of the whole source, so that every slice has the same table.
    """

    def __init__(
        self,
        source: EventSource,
        events: list[tuple[int, dict]],
        columns: dict[str, str] | None = None,
    ):
        self.source = source
        self.count = len(events)
        self.connection = sqlite3.connect(":memory:")
        self.connection.create_function("REGEXP", 2, _regexp, deterministic=True)
        self.connection.create_function(NUMBER_FUNCTION, 1, _number, deterministic=True)
        if columns is None:
            columns = column_names(event for _, event in events)
        self.columns = dict(columns)
        names = list(self.columns.values())
        column_list = "".join(f", {_quote(name)} TEXT COLLATE NOCASE" for name in names)
        self.connection.execute(f"CREATE TABLE logs (_event INTEGER PRIMARY KEY{column_list})")
        placeholders = ", ".join("?" for _ in range(len(names) + 1))
        # The first INSERT opens an implicit transaction that holds all of them.
        insert = f"INSERT INTO logs VALUES ({placeholders})"
        self.connection.executemany(insert, _rows(events, names))

    def select(self, query: str) -> set[int]:
        return {row[0] for row in self.connection.execute(query)}

    def close(self) -> None:
        self.connection.close()


def column_names(events) -> dict[str, str]:
    """Return the column names of a table of these events, keyed by case-folded name.

    A column takes the spelling of the first event key of its folded name, and columns
    are ordered by first appearance.
    """
    keys: dict[str, None] = {}
    for event in events:
        keys.update(dict.fromkeys(event))
    names: dict[str, str] = {}
    for key in keys:
        names.setdefault(key.casefold(), key)
    return names


def run_rules(
    rules: list[CompiledRule], events: list[dict], *, workers: int | None = None
) -> EngineResult:
    """Run every rule over the events whose log source it covers and collect the matches.

    `workers` caps the threads that scan large sources at the same time (default: one
    per core). The result does not depend on it.
    """
    workers = default_workers() if workers is None else max(1, workers)
    grouped: dict[EventSource, list[tuple[int, dict]]] = defaultdict(list)
    for index, event in enumerate(events):
        grouped[event_source(event)].append((index, event))
    started = time.perf_counter()
    plans = [_plan_source(source, members, rules) for source, members in grouped.items()]
    tasks = [task for plan in plans for task in plan.tasks(workers)]
    planned = time.perf_counter() - started
    _run_tasks(tasks, workers)
    unread = {plan.source.label: len(plan.events) for plan in plans if not plan.rules}
    return EngineResult(
        _outcomes(rules, plans),
        len(events),
        unread,
        load_seconds=planned + sum(task.load_seconds for task in tasks),
        scan_seconds=sum(task.scan_seconds for task in tasks),
    )


def _run_tasks(tasks: list[_ScanTask], workers: int) -> None:
    # Small inputs stay on the calling thread, as threads would gain them nothing.
    if workers == 1 or len(tasks) < 2 or sum(task.pairs for task in tasks) < PARALLEL_MIN_PAIRS:
        for task in tasks:
            _scan(task)
        return
    # The longest scans start first, so no thread is left with a large one at the end.
    ordered = sorted(tasks, key=lambda task: -task.pairs)
    with ThreadPoolExecutor(max_workers=min(workers, len(tasks))) as pool:
        list(pool.map(_scan, ordered))


def _outcomes(rules: list[CompiledRule], plans: list[_SourcePlan]) -> list[RuleOutcome]:
    outcomes = []
    for position, rule in enumerate(rules):
        outcome = RuleOutcome(rule.rule_id, rule.title)
        outcomes.append(outcome)
        if rule.error:
            outcome.errors.append(f"cannot be run: {rule.error}")
            continue
        for plan in plans:
            if position in plan.rules:
                plan.report(position, outcome)
    return outcomes


@dataclass
class _QueryResult:
    rows: set[int] = field(default_factory=set)
    error: str | None = None


@dataclass
class _ScanTask:
    """One table of events (or of distinct value rows), scanned with a set of rules."""

    plan: _SourcePlan
    events: list[tuple[int, dict]]
    # Rule positions to run on this table, in run_rules' order.
    positions: list[int]
    columns: dict[str, str]
    # For a distinct view, the view row number of each of the source's events, in the
    # order of _SourcePlan.events; None for a table of events.
    groups: array | None = None
    # Per rule position, one result per query of the rule.
    results: dict[int, list[_QueryResult]] = field(default_factory=dict)
    load_seconds: float = 0.0
    scan_seconds: float = 0.0

    @property
    def pairs(self) -> int:
        return len(self.events) * len(self.positions)


@dataclass
class _SourcePlan:
    """The rules that read one source, the fields each lacks, and the slices to scan."""

    source: EventSource
    events: list[tuple[int, dict]]
    columns: dict[str, str]
    # Rule positions in run_rules' list, in that order, with the rule and its missing fields.
    rules: dict[int, tuple[CompiledRule, list[str]]]
    scans: list[_ScanTask] = field(default_factory=list)

    def tasks(self, workers: int) -> list[_ScanTask]:
        if not self.rules:
            return []
        positions = list(self.rules)
        tables = [(self.events, positions, self.columns, None)]
        if len(self.events) >= DISTINCT_MIN_EVENTS:
            tables = _distinct_tables(self)
        self.scans = []
        for events, table_positions, columns, groups in tables:
            count = len(events)
            parts = 1
            if workers > 1 and count * len(table_positions) >= PARALLEL_MIN_PAIRS:
                parts = min(workers, count)
            size = min(-(-count // parts), SLICE_MAX_ROWS)
            for start in range(0, count, size):
                self.scans.append(
                    _ScanTask(self, events[start:start + size], table_positions, columns, groups)
                )
        return self.scans

    def report(self, position: int, outcome: RuleOutcome) -> None:
        """Add this source's matches and errors for one rule, as a scan of all its events would."""
        rule, missing = self.rules[position]
        count = len(self.events)
        outcome.sources[self.source.label] = count
        if missing:
            outcome.errors.append(
                f"reads {_names(missing)}, which none of the {count} {self.source.label} "
                "events has; the events or the rule's field names are wrong"
            )
        scans = [task for task in self.scans if position in task.results]
        for query_index in range(len(rule.queries)):
            results = [task.results[position][query_index] for task in scans]
            failed = [result.error for result in results if result.error is not None]
            if failed:
                # One statement over the whole source stops at its first failing row and
                # returns nothing, so a failure in any slice discards every slice's rows.
                outcome.errors.append(f"the query failed in SQLite: {failed[0]}")
                continue
            for result in results:
                outcome.matched |= result.rows


def _plan_source(
    source: EventSource, members: list[tuple[int, dict]], rules: list[CompiledRule]
) -> _SourcePlan:
    columns = column_names(event for _, event in members)
    present = set(columns)
    applicable: dict[int, tuple[CompiledRule, list[str]]] = {}
    for position, rule in enumerate(rules):
        if rule.error or not logsource_matches(rule.logsource, source):
            continue
        # Each rule reading a field that no event has gets an error. The table gets an
        # empty column for the field, so that the rule's other conditions still decide.
        missing = sorted(name for name in rule.fields if name.casefold() not in present)
        for name in [*missing, *rule.optional_fields]:
            columns.setdefault(name.casefold(), name)
        applicable[position] = (rule, missing)
    return _SourcePlan(source, members, columns, applicable)


def _scan(task: _ScanTask) -> None:
    started = time.perf_counter()
    table = SourceTable(task.plan.source, task.events, columns=task.columns)
    loaded = time.perf_counter()
    try:
        positions = task.positions
        for start in range(0, len(positions), RULES_PER_SCAN):
            batch = {
                position: task.plan.rules[position][0]
                for position in positions[start:start + RULES_PER_SCAN]
            }
            task.results.update(_run_batch(table, batch))
    finally:
        table.close()
    if task.groups is not None:
        _expand(task)
    # The table is closed, and run_rules needs only the results.
    task.events = []
    task.groups = None
    task.load_seconds = loaded - started
    task.scan_seconds = time.perf_counter() - loaded


def _expand(task: _ScanTask) -> None:
    """Replace the view row numbers in a view's matches by the events of those rows."""
    members: dict[int, list[int]] = {}
    for results in task.results.values():
        for result in results:
            members.update((row, []) for row in result.rows)
    if members:
        for (index, _), group in zip(task.plan.events, task.groups):
            if group in members:
                members[group].append(index)
    for results in task.results.values():
        for result in results:
            result.rows = {event for row in result.rows for event in members[row]}


def _distinct_tables(plan: _SourcePlan) -> list[tuple]:
    """Split a large source's rules between distinct views and a table of its events.

    A query is a function of the values of the columns it names, because every SQL
    function the engine registers is deterministic. Events that agree on those columns
    therefore get the same verdict. A view has one row per distinct combination of
    values of a few columns, and a rule that reads only those columns runs over the
    view. A match on a view row counts for every event of that row. The rules left
    over run over every event. Each returned table is (rows, rule positions, columns,
    the view row number of each event or None).
    """
    read = {
        position: _read_columns(rule, plan.columns) for position, (rule, _) in plan.rules.items()
    }
    # A view numbers its rows by view row, not by event, so a query that reads the
    # row number runs over the events.
    remaining = {position: names for position, names in read.items() if ROW_NUMBER not in names}
    counts = Counter(name for names in remaining.values() for name in names)
    # Each column's value numbers, computed once for all views.
    codes: dict[str, array] = {}
    tables = []
    in_views: set[int] = set()
    for _ in range(DISTINCT_MAX_VIEWS):
        view = _choose_view(plan, remaining, codes)
        if view is None:
            break
        view_columns, groups = view
        prefix = set(view_columns)
        covered = [position for position, names in remaining.items() if names <= prefix]
        runnable = _runnable(covered, plan, view_columns)
        if not runnable:
            break
        tables.append((_view_rows(plan.events, groups), runnable, view_columns, groups))
        for position in runnable:
            del remaining[position]
            in_views.add(position)

    rest = [position for position in read if position not in in_views]
    if rest:
        used = {name for position in rest for name in read[position]}
        ordered = [name for name, _ in counts.most_common() if name in used]
        ordered += sorted(used - set(ordered) - {ROW_NUMBER})
        columns = {name: plan.columns[name] for name in ordered}
        if len(_runnable(rest, plan, columns)) < len(rest):
            # When a query names a column this scan did not find or fails to compile, the
            # table keeps every column, so the rule fails or runs as it would without views.
            columns = plan.columns
        tables.append((plan.events, rest, columns, None))
    return tables


def _choose_view(
    plan: _SourcePlan, remaining: dict[int, frozenset[str]], codes: dict[str, array]
) -> tuple[dict[str, str], array] | None:
    """Return the columns and the row number of each event of the best view, or None.

    The candidates are the prefixes of the columns that most remaining rules read, up
    to DISTINCT_MAX_COLUMNS. The best one gives the fewest rule-row pairs, counting the
    rules it cannot cover as scans of every event. None means no view saves pairs.
    """
    counts = Counter(name for names in remaining.values() for name in names)
    # NOTE: a column with nearly one value per event early in this order (CommandLine
    # in a recording with unique command lines) makes every longer prefix as large as
    # the source, and no prefix without that column is tried.
    candidates = [name for name, _ in counts.most_common(DISTINCT_MAX_COLUMNS)]
    count = len(plan.events)
    best_pairs, best_width, best_groups = count * len(remaining), 0, array("l")
    groups = array("l", [0]) * count
    for width, name in enumerate(candidates, start=1):
        if name not in codes:
            codes[name] = _value_codes(_column_values(plan.events, plan.columns[name]))
        numbers: dict[tuple[int, int], int] = {}
        groups = array(
            "l", [numbers.setdefault(key, len(numbers)) for key in zip(groups, codes[name])]
        )
        prefix = set(candidates[:width])
        covered = sum(1 for names in remaining.values() if names <= prefix)
        pairs = len(numbers) * covered + count * (len(remaining) - covered)
        if pairs < best_pairs:
            best_pairs, best_width, best_groups = pairs, width, groups
    if not best_width:
        return None
    return {name: plan.columns[name] for name in candidates[:best_width]}, best_groups


def _view_rows(events: list[tuple[int, dict]], groups: array) -> list[tuple[int, dict]]:
    """Return one row per view row number: the first event with that number.

    That event has the row's values in the view's columns, and the view's table reads
    only those columns from it.
    """
    rows = []
    for (_, event), group in zip(events, groups):
        if group == len(rows):
            rows.append((group, event))
    return rows


def _read_columns(rule: CompiledRule, columns: dict[str, str]) -> frozenset[str]:
    """Return the case-folded names of the table columns that the rule's queries name.

    The names include ROW_NUMBER when a query reads it in more places than the select list.
    """
    names = set()
    for query in rule.queries:
        row_numbers = 0
        for match in _IDENTIFIER.finditer(_LITERAL.sub(" ", query)):
            quoted, backquoted, bare = match.groups()
            if quoted is not None:
                name = quoted.replace('""', '"')
            elif backquoted is not None:
                name = backquoted.replace("``", "`")
            else:
                name = bare
            if name.casefold() == ROW_NUMBER:
                row_numbers += 1
            elif name.casefold() in columns:
                names.add(name.casefold())
        if row_numbers > 1:
            names.add(ROW_NUMBER)
    return frozenset(names)


def _runnable(positions: list[int], plan: _SourcePlan, columns: dict[str, str]) -> list[int]:
    """Return the positions of the rules whose queries all compile against these columns."""
    table = SourceTable(plan.source, [], columns=columns)
    try:
        runnable = []
        for position in positions:
            try:
                for query in plan.rules[position][0].queries:
                    table.connection.execute(query).fetchall()
            except sqlite3.Error:
                continue
            runnable.append(position)
        return runnable
    finally:
        table.close()


def _column_values(events: list[tuple[int, dict]], name: str) -> list:
    """Return each event's value of a column as the table stores it."""
    values = []
    for _, event in events:
        value = event[name] if name in event else _lookup(event, name)
        values.append(value if type(value) in _PLAIN_TYPES else _cell(value))
    return values


def _value_codes(values: list) -> array:
    """Number each distinct stored value of a column, in order of first appearance."""
    numbers: dict = {}
    return array("l", [numbers.setdefault(_group_key(value), len(numbers)) for value in values])


def _group_key(value):
    # SQLite stores 1 and 1.0 differently in a TEXT column, while Python's == and hash
    # treat them as equal, so numbers carry their type in the key.
    if value is None or type(value) is str:
        return value
    return (type(value), value)


def _run_batch(
    table: SourceTable, batch: dict[int, CompiledRule]
) -> dict[int, list[_QueryResult]]:
    """Evaluate the queries of several rules in one scan; on an SQL error, run them one by one."""
    queries = [query for rule in batch.values() for query in rule.queries]
    if not all(query.startswith(SELECT_PREFIX) for query in queries):
        return _run_each(table, batch)
    conditions = [
        (position, query_index, query[len(SELECT_PREFIX):])
        for position, rule in batch.items()
        for query_index, query in enumerate(rule.queries)
    ]
    results = {
        position: [_QueryResult() for _ in rule.queries] for position, rule in batch.items()
    }
    if not conditions:
        return results
    # CASE WHEN and WHERE both count a condition as met only when it is true, so a row
    # is flagged for exactly the queries that would return it on their own.
    flags = ", ".join(f"CASE WHEN ({condition}) THEN 1 END" for _, _, condition in conditions)
    where = " OR ".join(f"({condition})" for _, _, condition in conditions)
    try:
        statement = f"SELECT _event, {flags} FROM logs WHERE {where}"
        rows = table.connection.execute(statement).fetchall()
    except sqlite3.Error:
        return _run_each(table, batch)
    for row in rows:
        event = row[0]
        for (position, query_index, _), flag in zip(conditions, row[1:]):
            if flag is not None:
                results[position][query_index].rows.add(event)
    return results


def _run_each(
    table: SourceTable, batch: dict[int, CompiledRule]
) -> dict[int, list[_QueryResult]]:
    results = {}
    for position, rule in batch.items():
        query_results = []
        for query in rule.queries:
            try:
                query_results.append(_QueryResult(rows=table.select(query)))
            except sqlite3.Error as exc:
                query_results.append(_QueryResult(error=str(exc)))
        results[position] = query_results
    return results


def _names(fields: list[str]) -> str:
    quoted = [f"'{name}'" for name in fields]
    if len(quoted) == 1:
        return f"field {quoted[0]}"
    return "fields " + ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _rows(events: list[tuple[int, dict]], names: list[str]):
    """Yield one insert row per event, with the values in column order."""
    positions = {name: position for position, name in enumerate(names, start=1)}
    for index, event in events:
        # Fast path: every key of the event is a column name as spelled. Otherwise look
        # each column up by name, then without case, as _lookup does.
        if event and all(key in positions for key in event):
            row = [None] * (len(names) + 1)
            row[0] = index
            for key, value in event.items():
                row[positions[key]] = value if type(value) in _PLAIN_TYPES else _cell(value)
            yield row
        else:
            yield [index, *(_cell(_lookup(event, name)) for name in names)]


def _lookup(event: dict, name: str):
    if name in event:
        return event[name]
    folded = name.casefold()
    for key, value in event.items():
        if key.casefold() == folded:
            return value
    return None


def _cell(value):
    # Sigma compares booleans with the words true and false, as Zircolite stores them.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return value


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern:
    return re.compile(pattern)


def _regexp(pattern, value) -> bool:
    if value is None or pattern is None:
        return False
    return _compiled(pattern).search(str(value)) is not None


def _number(value) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        text = str(value).strip()
        return float(int(text, 0)) if text.lower().startswith("0x") else float(text)
    except ValueError:
        return None
