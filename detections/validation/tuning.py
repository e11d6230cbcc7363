"""Tuning entries in validation runs: the filtered rules, and which entry silenced what.

The embedded engine runs three sets of queries over a test's events in one pass:

- the rules as written, for the raw outcome;
- the rules with the Sigma filters of the active entries applied by pySigma, for
  the tuned outcome;
- for each entry and each rule it filters, a rule that selects exactly the events of
  the entry's condition within the rule's log source.

An event an entry suppressed is one the rule matched raw and the entry's condition
selects. The tuned outcome must equal the raw one minus the suppressed events. A
difference is reported as an error, because pySigma's filter and the entry disagree.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field, replace

from detections.models import Detection, DetectionTest, SigmaRule, TuningEntry
from detections.pysigma.embedded import CompiledRule, compile_rule
from detections.pysigma.tuning import selection_rule
from detections.tuning import active_entries, filter_files

from .embedded import EngineResult


@dataclass(frozen=True)
class EntryProbe:
    """The events one entry's condition selects among those one rule reads."""

    entry: TuningEntry
    rule_id: str
    compiled: CompiledRule


@dataclass
class TuningPlan:
    """The active entries of a detection and the queries that measure their effect."""

    entries: list[TuningEntry]
    # Filtered rules, in the order of the detection's rules; a rule no entry names is
    # compiled unchanged.
    tuned: list[CompiledRule]
    probes: list[EntryProbe]
    # Filter documents by rule id, for the Splunk engine's rendered SPL.
    filters: dict[str, list[dict]] = field(default_factory=dict)


def tuning_plan(detection: Detection, today=None) -> TuningPlan | None:
    """Compile the filtered rules and entry probes of a detection; None without active entries."""
    entries = active_entries(detection, today)
    if not entries:
        return None
    files = filter_files(detection, entries)
    filters: dict[str, list[dict]] = defaultdict(list)
    for item in files:
        for rule_id in item.rule_ids:
            filters[rule_id].append(item.document)
    rules = list(detection.sigma_rules.all())
    by_id = {str(rule.rule_id): rule for rule in rules}
    tuned = [
        compile_rule(
            rule.yaml_text,
            source=f"{detection.slug}/{rule.filename}",
            filters=filters.get(str(rule.rule_id)),
        )
        for rule in rules
    ]
    probes = []
    for item in files:
        for rule_id in item.rule_ids:
            probes.append(_probe(detection, item.entry, by_id[rule_id]))
    return TuningPlan(entries, tuned, probes, dict(filters))


def _probe(detection: Detection, entry: TuningEntry, rule: SigmaRule) -> EntryProbe:
    probe_id = str(uuid.uuid5(uuid.UUID(str(entry.uuid)), str(rule.rule_id)))
    text = selection_rule(
        rule.logsource, entry.condition, rule_id=probe_id, title=f"tuning entry {entry.uuid}"
    )
    compiled = compile_rule(text, source=f"{detection.slug}/tuning/{entry.uuid}")
    # An entry's field that the events lack selects nothing, which is no error.
    compiled = replace(compiled, fields=frozenset(), optional_fields=compiled.fields)
    return EntryProbe(entry, str(rule.rule_id), compiled)


@dataclass
class TunedResult:
    """A test's outcome with tuning: tuned matches, per-entry suppression and problems."""

    matched: set[int]
    tuned_by_rule: dict[str, set[int]]
    entries: list[dict]
    errors: list[str]


def tuned_result(
    plan: TuningPlan, raw: EngineResult, tuned: EngineResult, probes: EngineResult
) -> TunedResult:
    """Compare the raw, tuned and probe outcomes of one test's events."""
    raw_by_rule = {outcome.rule_id: outcome.matched for outcome in raw.rules}
    tuned_by_rule = {outcome.rule_id: set(outcome.matched) for outcome in tuned.rules}
    suppressed: dict[str, set[int]] = defaultdict(set)
    suppressed_by_rule: dict[str, set[int]] = defaultdict(set)
    errors = [error for error in tuned.errors if error not in raw.errors]

    for probe, outcome in zip(plan.probes, probes.rules, strict=True):
        if outcome.errors:
            errors += [f"tuning entry {probe.entry.uuid}: {error}" for error in outcome.errors]
        events = raw_by_rule.get(probe.rule_id, set()) & outcome.matched
        suppressed[str(probe.entry.uuid)] |= events
        suppressed_by_rule[probe.rule_id] |= events

    for rule_id, matched in raw_by_rule.items():
        expected = matched - suppressed_by_rule.get(rule_id, set())
        actual = tuned_by_rule.get(rule_id, set())
        if actual != expected and not errors:
            errors.append(
                f"rule {rule_id}: the filtered rule matched events {sorted(actual)}, but the "
                f"raw matches less the entries' selections are {sorted(expected)}"
            )

    entries = [
        {
            "entry": str(entry.uuid),
            "owner": entry.owner,
            "suppressed_events": sorted(suppressed[str(entry.uuid)]),
        }
        for entry in plan.entries
        if suppressed.get(str(entry.uuid))
    ]
    matched = set()
    for events in tuned_by_rule.values():
        matched |= events
    return TunedResult(matched, tuned_by_rule, entries, errors)


def attack_test_problem(test: DetectionTest, entries: list[dict]) -> str:
    """Describe the entries that suppressed events of an attack test, or return "".

    An attack test is one that expects the detection to fire and is not a known
    false positive. Any of its events silenced by an entry means the entry is too
    broad, so each such row of `entries` gets a `problem` too.
    """
    if test.expect != DetectionTest.Expectation.FIRES or test.known_false_positive:
        return ""
    problems = []
    for row in entries:
        if row["suppressed_events"]:
            row["problem"] = (
                f"suppressed events {row['suppressed_events']} of this attack test; "
                "narrow the entry's condition"
            )
            problems.append(f"tuning entry {row['entry']} (owner {row['owner']}) {row['problem']}")
    return "\n".join(problems)
