"""The embedded engine: Sigma rules as SQLite queries over a test's recorded events.

Events are split by log source, and each source gets its own in-memory table named
`logs`, so a rule only reads the events its logsource covers, as a SIEM's
index and sourcetype scoping would do. Every column is `TEXT COLLATE NOCASE`, which
makes `=` ignore case as Sigma requires. SQLite's LIKE already ignores case, but
only for ASCII letters.

One table scan evaluates several rules (RULES_PER_SCAN), so that they share the cost
of stepping through the rows of a wide Sysmon table. A source with many rule-event
pairs is split into slices of events, which worker threads scan at the same time.
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
from collections import defaultdict
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

SELECT_PREFIX = "SELECT _event FROM logs WHERE "

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
    # Seconds spent building tables and scanning them, summed over worker threads, so
    # with several workers their sum can exceed the wall time of run_rules.
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
    plans = [_plan_source(source, members, rules) for source, members in grouped.items()]
    tasks = [task for plan in plans for task in plan.tasks(workers)]
    _run_tasks(tasks, workers)
    unread = {plan.source.label: len(plan.events) for plan in plans if not plan.rules}
    return EngineResult(
        _outcomes(rules, plans),
        len(events),
        unread,
        load_seconds=sum(task.load_seconds for task in tasks),
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
    """One slice of a source's events, scanned with every rule that reads the source."""

    plan: _SourcePlan
    events: list[tuple[int, dict]]
    # Per rule position, one result per query of the rule.
    results: dict[int, list[_QueryResult]] = field(default_factory=dict)
    load_seconds: float = 0.0
    scan_seconds: float = 0.0

    @property
    def pairs(self) -> int:
        return len(self.events) * len(self.plan.rules)


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
        count = len(self.events)
        parts = 1
        if workers > 1 and count * len(self.rules) >= PARALLEL_MIN_PAIRS:
            parts = min(workers, count)
        size = -(-count // parts)
        self.scans = [
            _ScanTask(self, self.events[start:start + size]) for start in range(0, count, size)
        ]
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
        for query_index in range(len(rule.queries)):
            results = [task.results[position][query_index] for task in self.scans]
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
    table = SourceTable(task.plan.source, task.events, columns=task.plan.columns)
    loaded = time.perf_counter()
    try:
        positions = list(task.plan.rules)
        for start in range(0, len(positions), RULES_PER_SCAN):
            batch = {
                position: task.plan.rules[position][0]
                for position in positions[start:start + RULES_PER_SCAN]
            }
            task.results.update(_run_batch(table, batch))
    finally:
        table.close()
    task.load_seconds = loaded - started
    task.scan_seconds = time.perf_counter() - loaded


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
