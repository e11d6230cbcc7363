"""The reference engine: Sigma rules run the way Zircolite runs them.

Zircolite (github.com/wagga40/Zircolite, `zircolite/core.py` and
`zircolite/flattener.py`) converts rules with pySigma's SQLite backend. It loads every
event of a run into ONE in-memory table named `logs`, with a column per field name and
field names compared without case. The rows go in with `executemany` in one
transaction, and then an index on `EventID` is created. Each rule's SQL runs
unchanged, on all events. This module does the same with these choices:

- Every column is `TEXT COLLATE NOCASE`. Zircolite declares a column INTEGER when the
  first value read for it is an integer, so the portal's events would give `EventID`
  an INTEGER column. That changes only `<` and `>` comparisons, and no Windows rule
  of SigmaHQ (commit 8eaafff, August 2026) uses one.
- Rules are converted with the plain `sqliteBackend` and Sigma's Sysmon pipeline only.
  Zircolite's published rule sets also apply the Windows logsource pipeline, which
  adds `Channel` conditions to service rules; `--anchor-pipeline windows` selects that.
- Rows come back as tuples. Zircolite turns each matching row into a dict, which
  costs it time per match; leaving that out makes this reference slightly faster.
- The REGEXP function caches compiled patterns, as recent Zircolite versions do.
- Zircolite 4 added a literal prefilter (Aho-Corasick over the LIKE literals, in
  `zircolite/prefilter.py`) that skips rows no rule can match. It needs packages the
  portal does not install, and this module does not imitate it.
"""

from __future__ import annotations

import re
import sqlite3
import time
from dataclasses import dataclass, field
from functools import lru_cache

from sigma.backends.sqlite import sqliteBackend
from sigma.collection import SigmaCollection
from sigma.exceptions import SigmaError
from sigma.pipelines.sysmon import sysmon_pipeline

# Zircolite's settings for an in-memory database (zircolite/core.py, create_connection).
IN_MEMORY_PRAGMAS = (
    ("journal_mode", "OFF"),
    ("synchronous", "OFF"),
    ("cache_size", "-128000"),
    ("locking_mode", "EXCLUSIVE"),
    ("temp_store", "MEMORY"),
    ("mmap_size", "268435456"),
    ("page_size", "4096"),
    ("threads", "4"),
)
INSERT_BATCH = 5000


@dataclass
class AnchorRule:
    """One rule file converted by the plain SQLite backend."""

    key: str
    rule_id: str
    title: str
    logsource: dict[str, str]
    queries: list[str]
    error: str | None = None


@dataclass
class AnchorResult:
    """Matching row ids per rule key, SQL errors per rule key and the phase times."""

    matched: dict[str, list[int]]
    errors: dict[str, str] = field(default_factory=dict)
    load_seconds: float = 0.0
    run_seconds: float = 0.0


def convert_rules(
    rule_files: list[tuple[str, str]], *, pipeline: str = "sysmon"
) -> list[AnchorRule]:
    """Convert each (key, YAML text) with its own backend and pipeline instance."""
    converted = []
    for key, text in rule_files:
        rule = AnchorRule(key, "", key, {}, [])
        try:
            collection = SigmaCollection.from_yaml(text)
            if collection.rules:
                parsed = collection.rules[0]
                rule.rule_id = str(parsed.id or "")
                rule.title = parsed.title
                rule.logsource = {
                    name: value
                    for name in ("category", "product", "service")
                    if (value := getattr(parsed.logsource, name))
                }
            backend = sqliteBackend(processing_pipeline=_pipeline(pipeline))
            rule.queries = list(backend.convert(collection))
        except (SigmaError, ValueError, TypeError, KeyError) as exc:
            rule.error = f"{type(exc).__name__}: {exc}"
        converted.append(rule)
    return converted


def _pipeline(name: str):
    if name == "sysmon":
        return sysmon_pipeline()
    if name == "windows":
        from sigma.pipelines.windows import windows_logsource_pipeline

        return sysmon_pipeline() + windows_logsource_pipeline()
    raise ValueError(f"unknown anchor pipeline {name!r}; use sysmon or windows")


def run_anchor(
    rules: list[AnchorRule], events: list[dict], *, index_event_id: bool = True
) -> AnchorResult:
    """Load all events into one table and run every converted rule on it."""
    started = time.perf_counter()
    connection = _load(events, index_event_id=index_event_id)
    loaded = time.perf_counter()
    result = AnchorResult({})
    try:
        for rule in rules:
            if rule.error:
                continue
            rows: set[int] = set()
            for query in rule.queries:
                try:
                    rows.update(row[0] for row in connection.execute(query).fetchall())
                except sqlite3.Error as exc:
                    # Zircolite logs such a failure at debug level and reports no match.
                    result.errors[rule.key] = str(exc)
            result.matched[rule.key] = sorted(rows)
    finally:
        connection.close()
    result.load_seconds = loaded - started
    result.run_seconds = time.perf_counter() - loaded
    return result


def _load(events: list[dict], *, index_event_id: bool) -> sqlite3.Connection:
    connection = sqlite3.connect(":memory:", isolation_level=None)
    for name, value in IN_MEMORY_PRAGMAS:
        connection.execute(f"PRAGMA {name} = {value}")
    connection.create_function("regexp", 2, _regexp)
    names: dict[str, str] = {}
    for event in events:
        for key in event:
            names.setdefault(key.lower(), key)
    ordered = sorted(names.values())
    columns = "".join(f", {_quote(name)} TEXT COLLATE NOCASE" for name in ordered)
    connection.execute(f"CREATE TABLE logs (row_id INTEGER PRIMARY KEY AUTOINCREMENT{columns})")

    _insert(connection, events, ordered)
    if index_event_id and "eventid" in names:
        connection.execute('CREATE INDEX "idx_eventid" ON "logs" ("eventid")')
    return connection


def _insert(connection: sqlite3.Connection, events: list[dict], ordered: list[str]) -> None:
    """Insert every event in batches inside one transaction; row_id is the event's number."""
    placeholders = ", ".join("?" for _ in range(len(ordered) + 1))
    insert = f"INSERT INTO logs VALUES ({placeholders})"
    positions = {name.lower(): position for position, name in enumerate(ordered, start=1)}
    connection.execute("BEGIN")
    batch = []
    for number, event in enumerate(events):
        row = [None] * (len(ordered) + 1)
        row[0] = number
        for key, value in event.items():
            row[positions[key.lower()]] = value
        batch.append(row)
        if len(batch) >= INSERT_BATCH:
            connection.executemany(insert, batch)
            batch.clear()
    if batch:
        connection.executemany(insert, batch)
    connection.execute("COMMIT")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern:
    return re.compile(pattern)


def _regexp(pattern, value) -> int:
    if value is None:
        return 0
    return 1 if _compiled(pattern).search(value) else 0
