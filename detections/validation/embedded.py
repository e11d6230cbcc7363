"""The embedded engine: Sigma rules as SQLite queries over a test's recorded events.

Events are split by log source, and each source gets its own in-memory table named
`logs`, so a rule only reads the events its logsource covers, as a SIEM's
index and sourcetype scoping would do. Every column is `TEXT COLLATE NOCASE`, which
makes `=` ignore case as Sigma requires. SQLite's LIKE already ignores case, but
only for ASCII letters.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache

from detections.pysigma.embedded import NUMBER_FUNCTION, CompiledRule

from .events import EventSource, event_source, logsource_matches


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
    """The events of one log source in an in-memory SQLite table named logs."""

    def __init__(self, source: EventSource, events: list[tuple[int, dict]]):
        self.source = source
        self.count = len(events)
        self.connection = sqlite3.connect(":memory:")
        self.connection.create_function("REGEXP", 2, _regexp, deterministic=True)
        self.connection.create_function(NUMBER_FUNCTION, 1, _number, deterministic=True)
        names: dict[str, str] = {}
        for _, event in events:
            for key in event:
                names.setdefault(key.casefold(), key)
        self.columns = names
        column_list = ", ".join(f"{_quote(name)} TEXT COLLATE NOCASE" for name in names.values())
        separator = ", " if column_list else ""
        self.connection.execute(f"CREATE TABLE logs (_event INTEGER PRIMARY KEY{separator}{column_list})")
        ordered = list(names.values())
        placeholders = ", ".join("?" for _ in range(len(ordered) + 1))
        self.connection.executemany(
            f"INSERT INTO logs VALUES ({placeholders})",
            ([index, *(_cell(_lookup(event, name)) for name in ordered)] for index, event in events),
        )

    def missing(self, fields: frozenset[str]) -> list[str]:
        return sorted(name for name in fields if name.casefold() not in self.columns)

    def add_empty_columns(self, names: list[str]) -> None:
        """Add columns that stay NULL, so a rule reading a field no event has can still run."""
        for name in names:
            self.connection.execute(f"ALTER TABLE logs ADD COLUMN {_quote(name)} TEXT COLLATE NOCASE")
            self.columns[name.casefold()] = name

    def select(self, query: str) -> set[int]:
        return {row[0] for row in self.connection.execute(query)}

    def close(self) -> None:
        self.connection.close()


def run_rules(rules: list[CompiledRule], events: list[dict]) -> EngineResult:
    """Run every rule over the events whose log source it covers and collect the matches."""
    grouped: dict[EventSource, list[tuple[int, dict]]] = defaultdict(list)
    for index, event in enumerate(events):
        grouped[event_source(event)].append((index, event))
    tables = {source: SourceTable(source, members) for source, members in grouped.items()}
    read_sources: set[EventSource] = set()
    outcomes = []
    try:
        for rule in rules:
            outcome = RuleOutcome(rule.rule_id, rule.title)
            outcomes.append(outcome)
            if rule.error:
                outcome.errors.append(f"cannot be run: {rule.error}")
                continue
            for source, table in tables.items():
                if not logsource_matches(rule.logsource, source):
                    continue
                read_sources.add(source)
                outcome.sources[source.label] = table.count
                _run_on_table(rule, table, outcome)
    finally:
        for table in tables.values():
            table.close()
    unread = {source.label: len(grouped[source]) for source in grouped if source not in read_sources}
    return EngineResult(outcomes, len(events), unread)


def _run_on_table(rule: CompiledRule, table: SourceTable, outcome: RuleOutcome) -> None:
    missing = table.missing(rule.fields)
    if missing:
        outcome.errors.append(
            f"reads {_names(missing)}, which none of the {table.count} {table.source.label} "
            "events has; the events or the rule's field names are wrong"
        )
        table.add_empty_columns(missing)
    for query in rule.queries:
        try:
            outcome.matched |= table.select(query)
        except sqlite3.Error as exc:
            outcome.errors.append(f"the query failed in SQLite: {exc}")


def _names(fields: list[str]) -> str:
    quoted = [f"'{name}'" for name in fields]
    if len(quoted) == 1:
        return f"field {quoted[0]}"
    return "fields " + ", ".join(quoted[:-1]) + " and " + quoted[-1]


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
