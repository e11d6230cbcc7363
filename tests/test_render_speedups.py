"""The faster Loki query split gives the backend's own output, and its left-out
alternatives are reported.

pySigma-backend-loki splits a query of 4,096 characters or more into parts of
int(count / parts) arguments of the highest `or`. Each test converts the same rule
with a converter that uses the portal's split and one that uses the backend's
method, and compares query, error and warnings.
"""

import re
import textwrap
import warnings

import pytest

from detections.pysigma import convert
from detections.pysigma.convert import TargetConverter, load_rule, render_targets

RULE = """\
title: Many hashes
id: 0b7f6a1e-3c55-4a8e-9d0e-6a2f3c4b5d6e
status: test
logsource:
    category: driver_load
    product: windows
detection:
{detection}
condition: {condition}
level: high
"""


def hashes(count: int, start: int = 0) -> list[str]:
    return [f"MD5={index:032x}" for index in range(start, start + count)]


def rule_text(selections: dict[str, list[str]], condition: str) -> str:
    lines = []
    for name, values in selections.items():
        lines.append(f"{name}:")
        lines.append("    Hashes|contains:")
        lines.extend(f"        - '{value}'" for value in values)
    detection = textwrap.indent("\n".join(lines), "    ")
    return RULE.format(detection=detection, condition=condition).replace(
        "condition:", "    condition:"
    )


@pytest.fixture
def pair(monkeypatch) -> tuple[TargetConverter, TargetConverter]:
    """A converter with the portal's split and one with the backend's own."""
    target = render_targets()["grafana_loki"]
    fast = TargetConverter(target)
    monkeypatch.setattr(convert, "speedups_apply", lambda backend: None)
    own = TargetConverter(target)
    assert "partition_rule" in vars(fast.backend)
    assert "partition_rule" not in vars(own.backend)
    return fast, own


def both(pair, text: str):
    fast, own = pair
    rule = load_rule(text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ours, theirs = fast.convert(rule), own.convert(rule)
    assert ours.error == ""
    assert theirs.error == ""
    assert ours.query == theirs.query
    return ours, theirs


def found(query: str) -> set[str]:
    return set(re.findall(r"MD5=([0-9a-f]{32})", query))


def codes(conversion) -> list[str]:
    return [warning.code for warning in conversion.warnings]


def test_split_remainder_warns(pair):
    values = hashes(250)
    ours, theirs = both(pair, rule_text({"selection": values}, "selection"))
    parts = ours.query.split("\n\n")
    assert len(parts) > 1
    missing = [value for value in values if value[4:] not in found(ours.query)]
    assert missing
    assert len(missing) == 250 % len(parts)
    assert missing == values[-len(missing) :]
    # The backend's method records nothing, so only the portal's conversion warns.
    assert "alternatives_left_out" not in codes(theirs)
    [message] = [w.message for w in ours.warnings if w.code == "alternatives_left_out"]
    assert f"left out the last {len(missing)} alternatives" in message
    assert missing[0][4:] in message
    assert {w.as_dict()["code"] for w in ours.warnings} - {"alternatives_left_out"} == set(
        codes(theirs)
    )


def test_even_split_keeps_every_value(pair):
    fast, _ = pair
    # Find a count the backend splits into parts of equal size.
    for count in range(240, 320):
        conversion = fast.convert(load_rule(rule_text({"selection": hashes(count)}, "selection")))
        parts = len(conversion.query.split("\n\n"))
        if parts > 1 and count % parts == 0:
            break
    else:
        pytest.fail("no count between 240 and 320 splits evenly")
    ours, theirs = both(pair, rule_text({"selection": hashes(count)}, "selection"))
    assert len(found(ours.query)) == count
    assert "alternatives_left_out" not in codes(ours)


def test_split_two_way_or(pair):
    # The highest `or` has two arguments, the query needs more parts, so the backend
    # reduces the parts to two and keeps every value.
    selections = {"first": hashes(120), "second": hashes(120, start=1000)}
    ours, _ = both(pair, rule_text(selections, "first or second"))
    assert len(ours.query.split("\n\n")) == 2
    assert len(found(ours.query)) == 240
    assert "alternatives_left_out" not in codes(ours)


def test_split_under_and(pair):
    selections = {"first": hashes(250), "second": ["MD5=" + "f" * 32]}
    ours, _ = both(pair, rule_text(selections, "first and second"))
    assert len(ours.query.split("\n\n")) > 1
    assert "alternatives_left_out" in codes(ours)


def test_short_rule_not_split(pair):
    ours, _ = both(pair, rule_text({"selection": hashes(3)}, "selection"))
    assert "\n" not in ours.query
    assert len(found(ours.query)) == 3
    assert "alternatives_left_out" not in codes(ours)


def test_warning_not_carried_over(pair):
    fast, _ = pair
    long_rule = load_rule(rule_text({"selection": hashes(250)}, "selection"))
    short_rule = load_rule(rule_text({"selection": hashes(3)}, "selection"))
    assert "alternatives_left_out" in codes(fast.convert(long_rule))
    assert "alternatives_left_out" not in codes(fast.convert(short_rule))


@pytest.mark.parametrize("condition", ["1 of selection*", "all of selection*", "1 of them"])
def test_split_selector_with_one_match(pair, condition):
    # The condition is the selection's `or`, and its parent chain leads back to it
    # through the selector's dropped `or`, so copying the parent copies it whole.
    ours, _ = both(pair, rule_text({"selection_a": hashes(250)}, condition))
    parts = ours.query.split("\n\n")
    assert len(parts) == 4
    assert [len(found(part)) for part in parts] == [62, 62, 62, 62]
    assert len(found(ours.query)) == 248


def keyword_rule(count: int) -> str:
    values = "\n".join(f"        - 'MD5={index:032x}'" for index in range(count))
    return RULE.format(detection=f"    keywords:\n{values}", condition="keywords").replace(
        "condition:", "    condition:"
    )


def left_out_message(conversion) -> str:
    [message] = [w.message for w in conversion.warnings if w.code == "alternatives_left_out"]
    return message


def test_left_out_keyword_named(pair):
    ours, _ = both(pair, keyword_rule(250))
    message = left_out_message(ours)
    assert "keyword ~ " in message
    assert "nested" not in message


def test_left_out_and_named_by_its_fields(pair):
    # A list of maps is an `or` of `and`s, each `and` one alternative.
    maps = "\n".join(
        f"            - Hashes|contains: 'MD5={index:032x}'\n"
        f"              Image|endswith: '\\\\d{index}.sys'"
        for index in range(130)
    )
    text = RULE.format(detection=f"    selection:\n{maps}", condition="selection").replace(
        "condition:", "    condition:"
    )
    ours, _ = both(pair, text)
    message = left_out_message(ours)
    assert " and Image ~ " in message
    assert message.count("(Hashes ~ ") >= 1


def test_one_left_out_worded_singular(pair):
    fast, _ = pair
    for count in range(240, 330):
        text = rule_text({"selection": hashes(count)}, "selection")
        conversion = fast.convert(load_rule(text))
        if "alternatives_left_out" not in codes(conversion):
            continue
        message = left_out_message(conversion)
        if "left out the last alternative," in message:
            break
    else:
        pytest.fail("no count between 240 and 330 leaves out exactly one alternative")
    assert "1 alternatives" not in message
