"""Sigma semantics on the embedded engine: each case is a small rule over made-up events."""

import textwrap
from unittest import mock

import pytest

from detections.pysigma.embedded import CompiledRule, compile_rule
from detections.validation import embedded
from detections.validation.embedded import run_rules

SYSMON = "Microsoft-Windows-Sysmon/Operational"


def rule_text(detection: str, *, logsource: str = "category: process_creation\n    product: windows") -> str:
    return textwrap.dedent(
        """\
        title: Test rule
        id: 5f0c1a52-7d4e-4c55-9a57-1f6f3f6d2c11
        status: test
        logsource:
            {logsource}
        detection:
        {detection}
        level: low
        """
    ).format(logsource=logsource, detection=textwrap.indent(textwrap.dedent(detection), "    "))


def process(**fields) -> dict:
    return {"Channel": SYSMON, "EventID": 1, "Image": "C:\\Windows\\System32\\cmd.exe", **fields}


def matched(detection: str, events: list[dict], **kwargs) -> set[int]:
    rule = compile_rule(rule_text(detection, **kwargs), source="test.yml")
    assert rule.error is None
    result = run_rules([rule], events)
    assert result.errors == []
    assert matched_in_view(rule, events) == result.matched
    return result.matched


def matched_in_view(rule, events: list[dict]) -> set[int]:
    """Run the rule over the events and a copy of them through distinct views.

    Every event then has a duplicate, so each source's view has at most half as many
    rows as events and the rule runs on the view. Return the first copy's matches.
    """
    views = []
    scan = embedded._scan

    def recording_scan(task):
        views.append(task.groups is not None)
        scan(task)

    with (
        mock.patch.object(embedded, "DISTINCT_MIN_EVENTS", 1),
        mock.patch.object(embedded, "_scan", recording_scan),
    ):
        result = run_rules([rule], events + events, workers=1)
    assert result.errors == []
    assert views and all(views)
    count = len(events)
    first = {number for number in result.matched if number < count}
    second = {number - count for number in result.matched if number >= count}
    assert second == first
    return first


def test_equality_ignores_case():
    events = [process(User="CORP\\JDoe"), process(User="corp\\jdoe"), process(User="corp\\jdoe2")]

    found = matched("sel:\n    User: 'corp\\jdoe'\ncondition: sel", events)

    assert found == {0, 1}


def test_contains_ignores_case():
    events = [process(CommandLine="python -c 'IMPORT ZLIB'"), process(CommandLine="python -c x")]

    assert matched("sel:\n    CommandLine|contains: 'import zlib'\ncondition: sel", events) == {0}


def test_endswith_keeps_backslash_literal():
    events = [
        process(ImageLoaded="C:\\tools\\zlib.dll"),
        process(ImageLoaded="C:\\tools\\libzlib.dll"),
    ]

    found = matched("sel:\n    ImageLoaded|endswith: '\\zlib.dll'\ncondition: sel", events)

    assert found == {0}


def test_startswith():
    events = [process(CurrentDirectory="C:\\Users\\a\\"), process(CurrentDirectory="D:\\C:\\Users")]

    assert matched("sel:\n    CurrentDirectory|startswith: 'C:\\Users'\ncondition: sel", events) == {0}


def test_wildcards_star_and_question_mark():
    events = [
        process(Image="C:\\Python312\\python.exe"),
        process(Image="C:\\Python3\\python.exe"),
        process(Image="C:\\Python312\\pythonw.exe"),
    ]

    found = matched("sel:\n    Image: 'C:\\Python3?2\\python.exe'\ncondition: sel", events)
    star = matched("sel:\n    Image: 'C:\\Python*\\python.exe'\ncondition: sel", events)

    assert found == {0}
    assert star == {0, 1}


@pytest.mark.parametrize(
    ("value", "expected"),
    [("50%", {0}), ("a_b", {2})],
)
def test_sql_wildcards_in_values_are_literal(value, expected):
    events = [process(CommandLine="x 50% y"), process(CommandLine="x 50 y"), process(CommandLine="a_b"), process(CommandLine="axb")]

    found = matched(f"sel:\n    CommandLine|contains: '{value}'\ncondition: sel", events)

    assert found == expected


def test_escaped_wildcard_is_literal():
    events = [process(CommandLine="dir *.txt"), process(CommandLine="dir a.txt")]

    assert matched("sel:\n    CommandLine|contains: '\\*.txt'\ncondition: sel", events) == {0}


def test_contains_all():
    events = [
        process(CommandLine="GZipStream MemoryStream"),
        process(CommandLine="GZipStream only"),
    ]

    found = matched(
        "sel:\n    CommandLine|contains|all:\n        - 'gzipstream'\n        - 'memorystream'\ncondition: sel",
        events,
    )

    assert found == {0}


def test_regex_is_case_sensitive():
    events = [process(CommandLine="Invoke-Thing"), process(CommandLine="invoke-thing")]

    assert matched("sel:\n    CommandLine|re: 'Invoke-\\w+'\ncondition: sel", events) == {0}


def test_regex_with_i_flag_ignores_case():
    events = [process(CommandLine="Invoke-Thing"), process(CommandLine="invoke-thing")]

    assert matched("sel:\n    CommandLine|re|i: 'invoke-\\w+'\ncondition: sel", events) == {0, 1}


def test_regex_with_quote():
    events = [process(CommandLine="echo 'x'"), process(CommandLine="echo x")]

    assert matched("sel:\n    CommandLine|re: \"'x'\"\ncondition: sel", events) == {0}


def test_cidr():
    events = [
        {"Channel": SYSMON, "EventID": 3, "DestinationIp": "10.1.2.3"},
        {"Channel": SYSMON, "EventID": 3, "DestinationIp": "11.1.2.3"},
        {"Channel": SYSMON, "EventID": 3, "DestinationIp": "192.168.7.9"},
    ]

    found = matched(
        "sel:\n    DestinationIp|cidr:\n        - '10.0.0.0/8'\n        - '192.168.0.0/16'\ncondition: sel",
        events,
        logsource="category: network_connection\n    product: windows",
    )

    assert found == {0, 2}


def test_exists_true_and_false():
    events = [process(ParentUser="CORP\\a"), process()]

    present = matched("sel:\n    ParentUser|exists: true\ncondition: sel", events)
    absent = matched("sel:\n    ParentUser|exists: false\ncondition: sel", events)

    assert present == {0}
    assert absent == {1}


def test_null_matches_missing_and_null():
    events = [process(ParentUser=None), process(ParentUser="CORP\\a")]

    assert matched("sel:\n    ParentUser: null\ncondition: sel", events) == {0}


def test_not_filter_on_null_field_keeps_event():
    # The third event has no ParentImage value, so the filter cannot exclude it.
    events = [
        process(CommandLine="x", ParentImage="C:\\Windows\\explorer.exe"),
        process(CommandLine="x", ParentImage="C:\\tools\\run.exe"),
        process(CommandLine="x", ParentImage=None),
    ]

    found = matched(
        "sel:\n    CommandLine: x\nfilter:\n    ParentImage|endswith: '\\explorer.exe'\n"
        "condition: sel and not filter",
        events,
    )

    assert found == {1, 2}


def test_numeric_comparison_is_numeric():
    events = [
        {"Channel": SYSMON, "EventID": 3, "DestinationPort": "10"},
        {"Channel": SYSMON, "EventID": 3, "DestinationPort": "5"},
        {"Channel": SYSMON, "EventID": 3, "DestinationPort": "n/a"},
    ]

    found = matched(
        "sel:\n    DestinationPort|gt: 6\ncondition: sel",
        events,
        logsource="category: network_connection\n    product: windows",
    )

    assert found == {0}


def test_boolean_value():
    events = [
        {"Channel": SYSMON, "EventID": 3, "Initiated": True},
        {"Channel": SYSMON, "EventID": 3, "Initiated": "false"},
    ]

    found = matched(
        "sel:\n    Initiated: true\ncondition: sel",
        events,
        logsource="category: network_connection\n    product: windows",
    )

    assert found == {0}


def test_sysmon_pipeline_adds_event_id():
    # Both events sit in one Sysmon table only if classified alike, so use an unknown
    # category: the rule's pipeline condition EventID=1 must still hold.
    rule = compile_rule(rule_text("sel:\n    Image|endswith: '\\cmd.exe'\ncondition: sel"), source="t")

    assert "EventID=1" in rule.queries[0]
    assert "EventID" in rule.fields


@pytest.mark.parametrize(
    ("category", "event_id", "detection"),
    [
        ("registry_delete", 12, "sel:\n    EventType: DeleteKey\ncondition: sel"),
        ("sysmon_status", 16, "sel:\n    Configuration|endswith: '.xml'\ncondition: sel"),
        ("sysmon_error", 255, "sel:\n    ID: DriverCommunication\ncondition: sel"),
    ],
)
def test_sysmon_categories_follow_pipeline(category, event_id, detection):
    events = [
        {"Channel": SYSMON, "EventID": event_id, "EventType": "DeleteKey",
         "Configuration": "C:\\sysmon.xml", "ID": "DriverCommunication"},
        {"Channel": SYSMON, "EventID": 13, "EventType": "DeleteKey",
         "Configuration": "C:\\sysmon.xml", "ID": "DriverCommunication"},
    ]

    found = matched(detection, events, logsource=f"category: {category}\n    product: windows")

    assert found == {0}


def test_logsource_limits_events_read():
    linux = compile_rule(
        rule_text("sel:\n    type: EXECVE\n    a0: python3\ncondition: sel", logsource="product: linux\n    service: auditd"),
        source="linux.yml",
    )
    events = [process(CommandLine="python3"), {"type": "EXECVE", "msg": "audit(1.0:1)", "a0": "python3"}]

    result = run_rules([linux], events)

    assert result.matched == {1}
    assert result.rules[0].sources == {"linux/auditd": 1}
    assert result.errors == []


def test_missing_field_reported():
    rule = compile_rule(rule_text("sel:\n    OriginalFileName: 'python.exe'\ncondition: sel"), source="t")
    events = [process(CommandLine="x")]

    result = run_rules([rule], events)

    assert result.matched == set()
    assert len(result.errors) == 1
    assert "'OriginalFileName'" in result.errors[0]
    assert "none of the 1 windows/sysmon/process_creation events" in result.errors[0]


def test_missing_field_reported_for_each_rule():
    first = compile_rule(rule_text("sel:\n    OriginalFileName: 'python.exe'\ncondition: sel"), source="a")
    second = compile_rule(
        rule_text("sel:\n    CommandLine: x\nfilter:\n    OriginalFileName: 'cmd.exe'\n"
                  "condition: sel and not filter"),
        source="b",
    )
    events = [process(CommandLine="x")]

    result = run_rules([first, second], events)

    assert result.rules[0].matched == set()
    assert result.rules[1].matched == {0}
    assert len(result.rules[0].errors) == 1
    assert len(result.rules[1].errors) == 1
    assert "'OriginalFileName'" in result.rules[1].errors[0]


def test_keyword_rule_reported_as_unsupported():
    rule = compile_rule(rule_text("keywords:\n    - mimikatz\ncondition: keywords"), source="t")

    result = run_rules([rule], [process()])

    assert rule.error is not None
    assert "keyword" in result.errors[0]


def test_no_rule_reads_source_counts_as_unread():
    rule = compile_rule(rule_text("sel:\n    Image: x\ncondition: sel"), source="t")

    result = run_rules([rule], [{"type": "EXECVE", "msg": "audit(1.0:1)"}])

    assert result.rules_applied == 0
    assert result.unread_sources == {"linux/auditd": 1}


def engine_view(result) -> list:
    """Everything run_rules reports, in a form two results can be compared by."""
    rules = [(o.rule_id, o.title, sorted(o.matched), o.sources, o.errors) for o in result.rules]
    return [rules, result.event_count, result.unread_sources]


def mixed_events() -> list[dict]:
    events = []
    for number in range(30):
        events.append(process(CommandLine=f"python -c x{number}", ParentImage="C:\\Windows\\explorer.exe"))
        events.append({"Channel": SYSMON, "EventID": 3, "DestinationPort": str(number), "Image": "C:\\a\\curl.exe"})
    events.append({"type": "EXECVE", "msg": "audit(1.0:1)", "a0": "python3"})
    return events


def mixed_rules() -> list:
    texts = [
        rule_text("sel:\n    CommandLine|contains: 'x1'\ncondition: sel"),
        rule_text("sel:\n    CommandLine|endswith: '7'\nfilter:\n    ParentImage|endswith: '\\cmd.exe'\ncondition: sel and not filter"),
        rule_text("sel:\n    OriginalFileName: 'python.exe'\ncondition: sel"),
        rule_text(
            "sel:\n    DestinationPort|gt: 20\ncondition: sel",
            logsource="category: network_connection\n    product: windows",
        ),
        rule_text("sel:\n    Image|endswith: '\\curl.exe'\ncondition: sel", logsource="product: windows"),
        rule_text("keywords:\n    - mimikatz\ncondition: keywords"),
    ]
    return [compile_rule(text, source=f"rule{index}.yml") for index, text in enumerate(texts)]


def test_parallel_slices_match_serial(monkeypatch):
    from detections.validation import embedded

    rules = mixed_rules()
    events = mixed_events()
    serial = run_rules(rules, events, workers=1)
    monkeypatch.setattr(embedded, "PARALLEL_MIN_PAIRS", 1)

    parallel = run_rules(rules, events, workers=3)

    assert engine_view(parallel) == engine_view(serial)
    assert serial.matched


def test_single_rule_scans_match_batched(monkeypatch):
    from detections.validation import embedded

    rules = mixed_rules() * 7
    events = mixed_events()
    batched = run_rules(rules, events, workers=1)
    monkeypatch.setattr(embedded, "RULES_PER_SCAN", 1)

    single = run_rules(rules, events, workers=1)

    assert engine_view(batched) == engine_view(single)


def test_failing_query_spares_other_rules():
    good = compile_rule(rule_text("sel:\n    CommandLine|contains: 'x1'\ncondition: sel"), source="good.yml")
    broken = CompiledRule(
        "broken", "Broken rule", {"category": "process_creation", "product": "windows"},
        ("SELECT _event FROM logs WHERE no_such_function(CommandLine)",), frozenset({"CommandLine"}),
    )
    events = [process(CommandLine="x1"), process(CommandLine="x2")]

    result = run_rules([good, broken, good], events, workers=1)

    assert result.rules[0].matched == {0}
    assert result.rules[2].matched == {0}
    assert result.rules[1].matched == set()
    assert result.rules[1].errors == ["the query failed in SQLite: no such function: no_such_function"]


def test_slice_failure_discards_all_rows(monkeypatch):
    # The pattern comes from the event: the last event's is an invalid regular expression,
    # so a statement over all events fails, although the first slice alone would match.
    from detections.validation import embedded

    rule = CompiledRule(
        "from-data", "Pattern from the event", {"category": "process_creation", "product": "windows"},
        ("SELECT _event FROM logs WHERE CommandLine REGEXP ParentCommandLine",),
        frozenset({"CommandLine", "ParentCommandLine"}),
    )
    events = [process(CommandLine="abc", ParentCommandLine="b") for _ in range(5)]
    events.append(process(CommandLine="abc", ParentCommandLine="("))
    serial = run_rules([rule], events, workers=1)
    monkeypatch.setattr(embedded, "PARALLEL_MIN_PAIRS", 1)
    scanned = []
    scan = embedded._scan

    def counting_scan(task):
        scanned.append(len(task.events))
        scan(task)

    monkeypatch.setattr(embedded, "_scan", counting_scan)

    parallel = run_rules([rule], events, workers=2)

    assert scanned == [3, 3]
    assert serial.rules[0].matched == set()
    assert len(serial.rules[0].errors) == 1
    assert engine_view(parallel) == engine_view(serial)


def test_case_variant_keys_share_column():
    events = [
        {"Channel": SYSMON, "EventID": 1, "Image": "C:\\a\\cmd.exe"},
        {"Channel": SYSMON, "EventID": 1, "image": "C:\\b\\cmd.exe"},
        {"Channel": SYSMON, "EventID": 1, "IMAGE": "C:\\c\\calc.exe"},
    ]

    found = matched("sel:\n    Image|endswith: '\\cmd.exe'\ncondition: sel", events)

    assert found == {0, 1}


def test_small_input_stays_on_calling_thread(monkeypatch):
    from detections.validation import embedded

    def no_threads(*args, **kwargs):
        raise AssertionError("a small input started worker threads")

    monkeypatch.setattr(embedded, "ThreadPoolExecutor", no_threads)

    result = run_rules(mixed_rules(), mixed_events(), workers=4)

    assert result.unread_sources == {"linux/auditd": 1}
    assert result.matched


def view_and_plain(rules: list, events: list[dict]) -> tuple:
    """Run the rules with distinct views from any size on, and with none."""
    with mock.patch.object(embedded, "DISTINCT_MIN_EVENTS", 1):
        viewed = run_rules(rules, events, workers=1)
    with mock.patch.object(embedded, "DISTINCT_MIN_EVENTS", len(events) + 1):
        plain = run_rules(rules, events, workers=1)
    return viewed, plain


def test_distinct_view_matches_plain_scan(monkeypatch):
    rules = mixed_rules()
    events = mixed_events() * 3
    monkeypatch.setattr(embedded, "PARALLEL_MIN_PAIRS", 1)
    with mock.patch.object(embedded, "DISTINCT_MIN_EVENTS", 1):
        parallel = run_rules(rules, events, workers=2)

    viewed, plain = view_and_plain(rules, events)

    assert engine_view(viewed) == engine_view(plain)
    assert engine_view(parallel) == engine_view(plain)
    assert len(plain.rules[0].matched) == 33


def test_distinct_view_keeps_number_types():
    # SQLite stores 1 as '1' and 1.0 as '1.0' in a TEXT column, while Python's 1 == 1.0.
    events = [process(TerminalSessionId=1), process(TerminalSessionId=1.0)] * 2
    rule = compile_rule(rule_text("sel:\n    TerminalSessionId: '1'\ncondition: sel"), source="t")

    viewed, plain = view_and_plain([rule], events)

    assert plain.matched == {0, 2}
    assert viewed.matched == {0, 2}


def test_distinct_view_keeps_case_for_regex():
    events = [process(CommandLine="Invoke-Thing"), process(CommandLine="invoke-thing")] * 2
    rule = compile_rule(rule_text("sel:\n    CommandLine|re: 'Invoke-\\w+'\ncondition: sel"), source="t")

    viewed, plain = view_and_plain([rule], events)

    assert plain.matched == {0, 2}
    assert viewed.matched == {0, 2}


def test_wide_rule_runs_beside_view():
    names = ["Image", "CommandLine", "User", "ParentImage", "IntegrityLevel", "Company", "Product"]
    wide = "sel:\n" + "".join(f"    {name}|contains: 'a'\n" for name in names) + "condition: sel"
    narrow = "sel:\n    CommandLine|contains: 'run'\ncondition: sel"
    rules = [compile_rule(rule_text(text), source="t") for text in (wide, narrow)]
    values = {name: f"{name} a" for name in names}
    events = [process(**values), process(**{**values, "CommandLine": "run b"})] * 3
    scanned = []
    scan = embedded._scan

    def recording_scan(task):
        scanned.append((task.groups is not None, len(task.events), len(task.positions)))
        scan(task)

    with mock.patch.object(embedded, "_scan", recording_scan):
        viewed, plain = view_and_plain(rules, events)

    assert engine_view(viewed) == engine_view(plain)
    assert viewed.rules[0].matched == {0, 2, 4}
    assert viewed.rules[1].matched == {1, 3, 5}
    assert (True, 2, 1) in scanned
    assert (False, 6, 1) in scanned


def test_view_keeps_rule_with_unknown_column_out():
    good = compile_rule(rule_text("sel:\n    CommandLine|contains: 'x1'\ncondition: sel"), source="good.yml")
    broken = CompiledRule(
        "broken", "Broken rule", {"category": "process_creation", "product": "windows"},
        ("SELECT _event FROM logs WHERE no_such_function(CommandLine)",), frozenset({"CommandLine"}),
    )
    events = [process(CommandLine="x1"), process(CommandLine="x2")] * 2

    viewed, plain = view_and_plain([good, broken], events)

    assert engine_view(viewed) == engine_view(plain)
    assert viewed.rules[0].matched == {0, 2}
    assert viewed.rules[1].errors == ["the query failed in SQLite: no such function: no_such_function"]


def test_rule_reading_row_number_skips_views():
    rule = CompiledRule(
        "even", "Even event numbers", {"category": "process_creation", "product": "windows"},
        ("SELECT _event FROM logs WHERE _event % 2 = 0 AND CommandLine = 'x'",),
        frozenset({"CommandLine"}),
    )
    events = [process(CommandLine="x")] * 6

    viewed, plain = view_and_plain([rule], events)

    assert plain.matched == {0, 2, 4}
    assert viewed.matched == {0, 2, 4}
