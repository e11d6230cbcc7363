"""Rule-by-rule comparison of the engine's and the anchor's matches, with the likely cause.

For every rule, the event numbers only one side matched are grouped by cause. Each
cause names the side that Sigma's semantics support:

- The anchor runs every rule on all events, so it can match events outside the rule's
  logsource. Sigma applies a rule only to its log source: the engine is right.
- Sigma's Sysmon pipeline maps the rule's category to the event's Sysmon event ID,
  but the engine classifies the event under another category and never runs the rule
  on it: the anchor is right.
- The anchor's statement fails because no event has a field the rule reads, and
  Zircolite reports such a rule as matching nothing. By Sigma, a field an event does
  not have equals no value, so the rule's other conditions decide: the engine, which
  runs the rule with that column empty, is right.
- One side cannot convert the rule at all. The other side's matches are what Sigma's
  semantics give, and the failing side reports the rule as not run.
- Anything else is "unexplained" and shows both queries, so it can be investigated.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sigma.pipelines.sysmon.sysmon import sysmon_generic_logsource_eventid_mapping

from detections.validation.events import SYSMON_CHANNEL, event_source, logsource_matches

from .measure import Measurement, RuleVerdict

ANCHOR_OUTSIDE_LOGSOURCE = "anchor reads events outside the rule's logsource"
ENGINE_SCOPE_TOO_NARROW = "engine skips events the Sysmon pipeline puts in the rule's logsource"
ANCHOR_MISSING_COLUMN = "anchor drops a rule that reads a field no event has"
ENGINE_REJECTS_RULE = "engine cannot run the rule"
ANCHOR_REJECTS_RULE = "anchor cannot convert the rule"
UNEXPLAINED = "unexplained"

RIGHT_SIDE = {
    ANCHOR_OUTSIDE_LOGSOURCE: "engine",
    ENGINE_SCOPE_TOO_NARROW: "anchor",
    ANCHOR_MISSING_COLUMN: "engine",
    ENGINE_REJECTS_RULE: "anchor",
    ANCHOR_REJECTS_RULE: "engine",
    UNEXPLAINED: "unknown",
}


@dataclass
class Disagreement:
    """A rule whose matching events differ between the two engines."""

    key: str
    rule_id: str
    title: str
    logsource: dict[str, str]
    # Event numbers only one side matched, grouped by cause.
    engine_only: dict[str, list[int]] = field(default_factory=dict)
    anchor_only: dict[str, list[int]] = field(default_factory=dict)
    engine_errors: list[str] = field(default_factory=list)
    anchor_errors: list[str] = field(default_factory=list)
    engine_queries: list[str] = field(default_factory=list)
    anchor_queries: list[str] = field(default_factory=list)

    @property
    def causes(self) -> list[str]:
        return sorted(set(self.engine_only) | set(self.anchor_only))


@dataclass
class Comparison:
    """All rules of one workload: how many agree and every disagreement."""

    rules: int
    agreeing: int
    agreeing_with_matches: int
    disagreements: list[Disagreement]

    def causes(self) -> Counter:
        """Count disagreeing rules by cause; a rule with two causes counts under both."""
        counts: Counter = Counter()
        for disagreement in self.disagreements:
            counts.update(disagreement.causes)
        return counts


def compare(engine: Measurement, anchor: Measurement, events: list[dict]) -> Comparison:
    """Compare the matches of every rule and classify each event only one side matched."""
    keys = sorted(set(engine.verdicts) | set(anchor.verdicts))
    disagreements = []
    agreeing_with_matches = 0
    for key in keys:
        ours = engine.verdicts.get(key)
        theirs = anchor.verdicts.get(key)
        ours_matched = set(ours.matched) if ours else set()
        theirs_matched = set(theirs.matched) if theirs else set()
        if ours_matched == theirs_matched:
            agreeing_with_matches += bool(ours_matched)
            continue
        disagreements.append(_disagreement(key, ours, theirs, ours_matched, theirs_matched, events))
    agreeing = len(keys) - len(disagreements)
    return Comparison(len(keys), agreeing, agreeing_with_matches, disagreements)


def _disagreement(
    key: str,
    ours: RuleVerdict | None,
    theirs: RuleVerdict | None,
    ours_matched: set[int],
    theirs_matched: set[int],
    events: list[dict],
) -> Disagreement:
    # A rule the engine could not parse has no id or logsource there; the anchor's has.
    known = ours if ours and ours.rule_id else theirs or ours
    logsource = known.logsource
    result = Disagreement(
        key=key,
        rule_id=known.rule_id,
        title=known.title,
        logsource=logsource,
        engine_errors=list(ours.errors) if ours else ["not compiled"],
        anchor_errors=list(theirs.errors) if theirs else ["not converted"],
        engine_queries=list(ours.queries) if ours else [],
        anchor_queries=list(theirs.queries) if theirs else [],
    )
    for number in sorted(theirs_matched - ours_matched):
        cause = _anchor_only_cause(ours, logsource, events[number])
        result.anchor_only.setdefault(cause, []).append(number)
    for number in sorted(ours_matched - theirs_matched):
        cause = _engine_only_cause(theirs)
        result.engine_only.setdefault(cause, []).append(number)
    return result


def _anchor_only_cause(ours: RuleVerdict | None, logsource: dict, event: dict) -> str:
    if ours is None or not ours.runnable:
        return ENGINE_REJECTS_RULE
    if logsource_matches(logsource, event_source(event)):
        return UNEXPLAINED
    if in_sysmon_scope(logsource, event):
        return ENGINE_SCOPE_TOO_NARROW
    return ANCHOR_OUTSIDE_LOGSOURCE


def _engine_only_cause(theirs: RuleVerdict | None) -> str:
    if theirs is None or not theirs.runnable:
        return ANCHOR_REJECTS_RULE
    if any("no such column" in error for error in theirs.errors):
        return ANCHOR_MISSING_COLUMN
    return UNEXPLAINED


def in_sysmon_scope(logsource: dict, event: dict) -> bool:
    """Tell whether Sigma's Sysmon pipeline assigns this Sysmon event to the rule's category."""
    if logsource.get("product") != "windows" or event.get("Channel") != SYSMON_CHANNEL:
        return False
    event_ids = sysmon_generic_logsource_eventid_mapping.get(logsource.get("category"))
    if event_ids is None:
        return False
    if not isinstance(event_ids, list):
        event_ids = [event_ids]
    return str(event.get("EventID")) in {str(value) for value in event_ids}
