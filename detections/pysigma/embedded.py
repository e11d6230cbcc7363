"""Sigma rules compiled to SQLite queries for the embedded validation engine.

The engine is pySigma-backend-sqlite over in-memory tables whose columns are
`TEXT COLLATE NOCASE`. Chosen by measurement against pysigma-backend-duckdb 0.1.4,
which ran about three times faster but gave wrong verdicts: it leaves `%` and `_`
unescaped in LIKE patterns, drops rows under NOT when a filter field is NULL, compares
`=` with case, and writes invalid SQL for reserved words and for regular expressions
that contain a quote. The SQLite backend escapes all of these and wraps every NOT in
`COALESCE(..., 0)`, so a missing field reads as false, as Sigma requires.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from importlib import metadata

from sigma.backends.sqlite import sqliteBackend
from sigma.collection import SigmaCollection
from sigma.exceptions import SigmaError
from sigma.pipelines.common import windows_logsource_mapping
from sigma.pipelines.sysmon import sysmon_pipeline
from sigma.types import SigmaExists, SigmaFieldReference, SigmaNull

from .fidelity import detection_items
from .rules import SigmaRuleError, _load_rule
from .tuning import apply_filters

# The SQL function that reads a column as a number for |gt, |gte, |lt and |lte.
NUMBER_FUNCTION = "sigma_number"

SELECT_PREFIX = "SELECT * FROM logs WHERE "


class EmbeddedBackend(sqliteBackend):
    """The SQLite backend with numeric comparisons that work on text columns.

    Columns hold text so that `=` can ignore case; a plain `field > 5` would then
    compare as text ('10' < '5'). The engine registers `sigma_number`, which reads a
    value as a number or returns NULL, so a non-numeric value never compares true.
    """

    compare_op_expression = NUMBER_FUNCTION + "({field}) {operator} {value}"


@dataclass(frozen=True)
class CompiledRule:
    """A Sigma rule as the embedded engine runs it."""

    rule_id: str
    title: str
    logsource: dict[str, str]
    # Each query selects the `_event` numbers of matching rows from a table named logs.
    queries: tuple[str, ...]
    # Fields the rule compares after the pipeline, except those it only tests for
    # existence or null: an event source lacking one of these is reported.
    fields: frozenset[str]
    error: str | None = None
    # Fields only tuning filters compare. A filter on a field the events lack excludes
    # nothing, so these get an empty column but no error.
    optional_fields: frozenset[str] = frozenset()


def windows_channel_services() -> dict[str, str]:
    """Return Sigma's Windows log source service for each event log channel, from pySigma."""
    services: dict[str, str] = {}
    for service, channels in windows_logsource_mapping.items():
        # A service may span several channels, and a few channels serve several
        # services; the first service named for a channel wins.
        for channel in channels if isinstance(channels, list) else [channels]:
            services.setdefault(channel, service)
    return services


def engine_versions() -> dict[str, str]:
    """Return the package versions that produce the embedded engine's queries."""
    versions = {}
    for package in ("pySigma", "pySigma-backend-sqlite", "pysigma-pipeline-sysmon"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "missing"
    return versions


def compile_rule(text: str, *, source: str, filters: list[dict] | None = None) -> CompiledRule:
    """Convert one Sigma rule to the SQL the embedded engine runs.

    Windows rules go through Sigma's Sysmon pipeline, which adds the event ID of the
    rule's category. `filters` are Sigma filter documents that pySigma applies to the
    rule first. A rule pySigma cannot convert comes back with `error` set.
    """
    try:
        rule = _load_rule(text, source=source)
        own_fields = {item.field for item in detection_items(rule) if item.field}
        if filters:
            rule = apply_filters(rule, filters)
    except SigmaRuleError as exc:
        return CompiledRule("", source, {}, (), frozenset(), error=str(exc))
    if rule.errors:
        reasons = "; ".join(str(error) for error in rule.errors)
        return CompiledRule(str(rule.id or ""), rule.title, {}, (), frozenset(), error=reasons)
    logsource = {
        key: value
        for key, value in (
            ("category", rule.logsource.category),
            ("product", rule.logsource.product),
            ("service", rule.logsource.service),
        )
        if value
    }
    rule_id = str(rule.id or "")
    pipeline = sysmon_pipeline() if rule.logsource.product == "windows" else None
    backend = EmbeddedBackend(processing_pipeline=pipeline)
    processed = copy.deepcopy(rule)
    try:
        outputs = backend.convert(SigmaCollection([processed]))
    except SigmaError as exc:
        return CompiledRule(rule_id, rule.title, logsource, (), frozenset(), error=_reason(exc))
    except RecursionError:
        return CompiledRule(
            rule_id, rule.title, logsource, (), frozenset(),
            error="the condition is nested too deeply to convert",
        )
    queries = []
    for output in outputs:
        if not output.startswith(SELECT_PREFIX):
            return CompiledRule(
                rule_id, rule.title, logsource, (), frozenset(),
                error=f"unexpected SQL from the SQLite backend: {output[:80]!r}",
            )
        queries.append("SELECT _event FROM logs WHERE " + output[len(SELECT_PREFIX):])
    fields = _read_fields(processed)
    filter_only = frozenset()
    if filters:
        filter_only = frozenset(name for name in fields if name not in own_fields)
    return CompiledRule(
        rule_id, rule.title, logsource, tuple(queries), fields - filter_only,
        optional_fields=filter_only,
    )


def _read_fields(rule) -> frozenset[str]:
    fields = set()
    for item in detection_items(rule):
        values = item.value
        if item.field is None:
            continue
        if all(isinstance(value, SigmaExists | SigmaNull) for value in values):
            continue
        fields.add(item.field)
        for value in values:
            if isinstance(value, SigmaFieldReference):
                fields.add(value.field)
    return frozenset(fields)


def _reason(exc: SigmaError) -> str:
    text = str(exc).strip() or type(exc).__name__
    if "full text search" in text.lower() or "keywords" in text.lower():
        return (
            "keyword (full-text) searches are not supported by the embedded engine; "
            "name the field the keyword appears in"
        )
    return text
