"""Values taken from Sigma rules and written into synthetic events, so that rules match.

A plan reads a rule's detections once. Planting fills one event with values that
satisfy every detection whose name does not start with `filter`: one value of each
OR list, every value of a `|all` list, and one branch of a list of maps. Regular
expressions and keywords are not planted, so the events miss the rules that need them
unless a background value happens to match.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from sigma.conditions import ConditionAND
from sigma.pipelines.sysmon.sysmon import sysmon_generic_logsource_eventid_mapping
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule
from sigma.types import (
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaString,
    SpecialChars,
)

# Share of planted strings written in upper case, as Windows often reports paths, so
# that case-insensitive matching is exercised.
UPPER_CASE_SHARE = 0.2

# Event kinds of the Sigma categories and services that the generator can build.
CATEGORY_KINDS = {
    category: [f"sysmon:{event_id}" for event_id in (ids if isinstance(ids, list) else [ids])]
    for category, ids in sysmon_generic_logsource_eventid_mapping.items()
}
CATEGORY_KINDS["ps_script"] = ["powershell:4104"]

# The folder put in front of a planted value that must end with `\name`.
PATH_PREFIX = "C:\\Windows\\System32"
# The value a field gets when an `|exists: true` item or a field reference needs one.
PRESENT_VALUE = "present"


class _Unplantable(Exception):
    """A value with no plain matching text: a regular expression or a placeholder."""


@dataclass
class RulePlan:
    """How to make events that a rule's positive detections match."""

    key: str
    kinds: list[str]
    detections: list[SigmaDetection]

    def event_kind(self, rng: random.Random) -> str:
        return self.kinds[rng.randrange(len(self.kinds))]

    def plant(self, event: dict, rng: random.Random) -> None:
        """Write values into the event so that each positive detection holds."""
        assignments: dict[str, list] = {}
        for detection in self.detections:
            _collect(detection, rng, assignments)
        names = {key.casefold(): key for key in event}
        for field, values in assignments.items():
            name = names.get(field.casefold(), field)
            value = _combine(values, event, rng)
            if value is _SKIP:
                continue
            if value is _REMOVE:
                event.pop(name, None)
            elif name == "EventID" and value.isdigit():
                event[name] = int(value)
            else:
                event[name] = value


# Markers returned by _combine: delete the field, or leave it as generated.
_REMOVE = object()
_SKIP = object()


def rule_plan(key: str, text: str) -> RulePlan | None:
    """Build the plan of one rule file, or None if no generated event kind fits it."""
    try:
        rule = SigmaRule.from_yaml(text)
    except Exception:  # noqa: BLE001 - any parse failure means the rule is not planted
        return None
    kinds = _kinds(rule)
    if not kinds:
        return None
    detections = [
        detection
        for name, detection in rule.detection.detections.items()
        if not name.lower().startswith("filter")
    ]
    if not detections or any(_has_keywords(detection) for detection in detections):
        return None
    return RulePlan(key, kinds, detections)


def _kinds(rule: SigmaRule) -> list[str]:
    logsource = rule.logsource
    if logsource.product != "windows":
        return []
    if logsource.category:
        return CATEGORY_KINDS.get(logsource.category, [])
    if logsource.service == "security":
        return [f"security:{value}" for value in _event_ids(rule)] or ["security:4688"]
    if logsource.service == "sysmon":
        return [f"sysmon:{value}" for value in _event_ids(rule)] or ["sysmon:16"]
    return []


def _event_ids(rule: SigmaRule) -> list[int]:
    found = []
    for detection in rule.detection.detections.values():
        for item in _items(detection):
            if item.field == "EventID":
                numbers = [value for value in item.value if isinstance(value, SigmaNumber)]
                found.extend(int(value.number) for value in numbers)
    return found


def _items(detection: SigmaDetection):
    for item in detection.detection_items:
        if isinstance(item, SigmaDetection):
            yield from _items(item)
        else:
            yield item


def _has_keywords(detection: SigmaDetection) -> bool:
    return any(item.field is None for item in _items(detection))


def _collect(detection: SigmaDetection, rng: random.Random, assignments: dict[str, list]) -> None:
    items = detection.detection_items
    if not isinstance(detection.item_linking, ConditionAND) and len(items) > 1:
        items = [items[rng.randrange(len(items))]]
    for item in items:
        if isinstance(item, SigmaDetection):
            _collect(item, rng, assignments)
            continue
        _collect_item(item, rng, assignments)


def _collect_item(
    item: SigmaDetectionItem, rng: random.Random, assignments: dict[str, list]
) -> None:
    values = list(item.value)
    if not values:
        return
    if not isinstance(item.value_linking, ConditionAND):
        values = [values[rng.randrange(len(values))]]
    assignments.setdefault(item.field, []).extend(values)


def _combine(values: list, event: dict, rng: random.Random):
    """Return one field value satisfying all of `values`, as far as they can be combined."""
    starts: list[str] = []
    middles: list[str] = []
    ends: list[str] = []
    whole: list[str] = []
    cased = False
    for value in values:
        if isinstance(value, SigmaExpansion):
            # windash and base64offset expand a value into variants; any one of them matches.
            value = value.values[rng.randrange(len(value.values))]
        try:
            text = _plain(value, event)
        except _Unplantable:
            continue
        if text is _REMOVE:
            return _REMOVE
        if not isinstance(value, SigmaString):
            whole.append(text)
            continue
        cased = cased or isinstance(value, SigmaCasedString)
        leading = value.startswith(SpecialChars.WILDCARD_MULTI)
        trailing = value.endswith(SpecialChars.WILDCARD_MULTI)
        if leading and trailing:
            middles.append(text)
        elif leading:
            ends.append(text)
        elif trailing:
            starts.append(text)
        else:
            whole.append(text)
    if whole:
        text = whole[-1]
    elif not (starts or middles or ends):
        return _SKIP
    else:
        tail = ends[-1:]
        if tail and tail[0].startswith("\\") and not starts and not middles:
            # A value that only has to end with `\name` gets a folder in front of it.
            tail = [PATH_PREFIX + tail[0]]
        text = " ".join([*starts[-1:], *middles, *tail])
    if not cased and rng.random() < UPPER_CASE_SHARE:
        text = text.upper()
    return text


def _plain(value, event: dict):
    if isinstance(value, SigmaString):
        if value.contains_placeholder():
            raise _Unplantable
        parts = []
        for part in value.s:
            if part == SpecialChars.WILDCARD_SINGLE:
                parts.append("x")
            elif isinstance(part, str):
                parts.append(part)
        return "".join(parts)
    if isinstance(value, SigmaNumber):
        return str(value.number)
    if isinstance(value, SigmaBool):
        return "true" if value.boolean else "false"
    if isinstance(value, SigmaNull):
        return _REMOVE
    if isinstance(value, SigmaExists):
        return PRESENT_VALUE if value.exists else _REMOVE
    if isinstance(value, SigmaCIDRExpression):
        network = value.network
        return str(network[1] if network.num_addresses > 2 else network[0])
    if isinstance(value, SigmaCompareExpression):
        step = 1 if value.op in (value.CompareOperators.GT, value.CompareOperators.GTE) else -1
        return str(value.number.number + step)
    if isinstance(value, SigmaFieldReference):
        return str(event.get(value.field, PRESENT_VALUE))
    raise _Unplantable
