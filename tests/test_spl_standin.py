"""Unit tests of the stand-in's SPL parser and evaluator, without HTTP."""

import json

import pytest
import yaml

from .conftest import CONTENT_DIR, SEED_SLUG
from .splunk_standin import SplunkStandIn, spl
from .splunk_standin.errors import SPLRuntimeError, SPLSyntaxError
from .splunk_standin.events import StoredEvent, extract_json_fields
from .splunk_standin.time_modifiers import parse_time_spec
from .splunk_standin.values import render_row, to_number

SYSMON = "XmlWinEventLog:Microsoft-Windows-Sysmon/Operational"
# The time of the first event that ``stored`` builds; each later position adds a second.
FIRST_EVENT_TIME = 1_700_000_000.0


def stored(fields: dict, *, position: int = 0, index: str = "main", **metadata) -> dict:
    """Return the search-time fields of an event indexed with JSON ``fields``."""
    event = StoredEvent(
        time=FIRST_EVENT_TIME + position,
        host=metadata.get("host", "host1"),
        source=metadata.get("source", "source1"),
        sourcetype=metadata.get("sourcetype", "json"),
        index=index,
        raw=json.dumps(fields),
        indexed_fields=metadata.get("indexed_fields", {}),
        searchable_at=0.0,
    )
    return event.search_fields()


def run(query: str, *events: dict, index: str = "main", now: float | None = None) -> list[dict]:
    rows = [stored(fields, position=position, index=index) for position, fields in enumerate(events)]
    return spl.parse(query).run(rows, now=now)


def ids(rows: list[dict]) -> list:
    """Return the ``id`` of each row; JSON extraction gives the ids back as text."""
    return [to_number(row.get("id")) for row in rows]


def matched(query: str, *events: dict) -> set:
    return set(ids(run(query, *events)))


# Pipeline and errors


def test_pipe_in_quotes_kept():
    rows = run('note="a | b" | table id', {"id": 1, "note": "a | b"}, {"id": 2, "note": "a"})

    assert ids(rows) == [1]


def test_unknown_command():
    with pytest.raises(SPLSyntaxError) as error:
        spl.parse("x=1 | foo bar")

    assert str(error.value) == "Unknown search command 'foo'."


def test_unsupported_command():
    with pytest.raises(SPLSyntaxError, match="does not support the 'rex' command"):
        spl.parse('x=1 | rex field=a "(?<b>.*)"')


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("x=1 [search y=2]", "subsearches"),
        ("`sysmon` x=1", "macros"),
        ("x=1 daysago=1", "time modifier 'daysago'"),
        ("eventtype=foo", "knowledge objects"),
        ("| makeresults", "generating commands"),
        ("(x=1 OR y=2", "'(' is not closed"),
        ("x=1)", "Unbalanced parentheses"),
        ('x="abc', "Unbalanced quotes"),
        ("x=1 OR", "missing"),
        ("x=", "value is missing"),
        ("x IN ()", "IN list is empty"),
    ],
)
def test_parse_rejects(query, message):
    with pytest.raises(SPLSyntaxError) as error:
        spl.parse(query)

    assert message in str(error.value)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("x=1 | eval y=foo(x)", "The 'foo' function is unsupported or undefined."),
        ("x=1 | eval y=floor(x)", "does not support the 'floor' function"),
        ("x=1 | eval y=x=1", "cannot be assigned a boolean result"),
        ("x=1 | eval y=case(x=1)", "even number of arguments"),
        ("x=1 | eval y=match(x)", "takes 2 arguments, not 1"),
        ('x=1 | eval y=match(x, "(")', "Regex"),
        ("x=1 | eval y=(x", "Expected ')'"),
        ("x=1 | eval y=x ^ 2", "Unexpected character"),
        ("x=1 | where x + 1", "boolean"),
        ("x=1 | stats median(x)", "does not support the function 'median'"),
        ("x=1 | stats sum", "sum needs a field"),
        ("x=1 | stats max(x y)", "max() takes one field"),
        ("x=1 | eventstats count by", "field list is required after 'by'"),
        ("x=1 | convert dur2sec(x)", "supports only ctime()"),
        ("x=1 | convert ctime x", "Expected <function>(<field>)"),
        ("x=1 | convert ctime(*)", "does not convert by wildcard"),
        ("x=1 | convert", "conversion such as ctime(<field>) is required"),
        ("x=1 | sort", "field to sort by"),
        ("x=1 | head foo", "Invalid count"),
        ("x=1 | rename a b", "rename <field> as"),
        ("x=1 | dedup", "At least one field"),
        ("x=1 | table", "field list is required"),
    ],
)
def test_command_rejects(query, message):
    with pytest.raises(SPLSyntaxError) as error:
        spl.parse(query)

    assert message in str(error.value)


# Search terms


def test_value_case_insensitive():
    assert matched("user=ADMIN", {"id": 1, "user": "admin"}, {"id": 2, "user": "root"}) == {1}


def test_field_name_case_sensitive():
    assert matched("User=admin", {"id": 1, "user": "admin"}) == set()


def test_value_wildcards():
    events = [
        {"id": 1, "path": "C:/tools/python.exe"},
        {"id": 2, "path": "python.exe.bak"},
        {"id": 3, "path": "C:/python/readme"},
    ]

    assert matched("path=*python.exe", *events) == {1}
    assert matched("path=python*", *events) == {2}
    assert matched("path=C:*python*", *events) == {1, 3}
    assert matched("path=*", *events) == {1, 2, 3}


def test_escaped_backslash_value():
    events = [
        {"id": 1, "ImageLoaded": "C:\\App\\zlib.dll"},
        {"id": 2, "ImageLoaded": "C:\\App\\myzlib.dll"},
        {"id": 3, "ImageLoaded": "C:\\App\\zlib.dll.bak"},
    ]

    assert matched(r'ImageLoaded="*\\zlib.dll"', *events) == {1}
    assert matched(r"ImageLoaded=*\\zlib.dll", *events) == {1}


def test_backslash_before_star_kept():
    events = [{"id": 1, "path": "C:\\Windows\\System32"}, {"id": 2, "path": "C:\\Windows"}]

    assert matched(r'path="C:\Windows\*"', *events) == {1}


def test_escaped_quote_value():
    events = [{"id": 1, "cmd": 'say "hi"'}, {"id": 2, "cmd": "say hi"}]

    assert matched(r'cmd="say \"hi\""', *events) == {1}


def test_missing_field_equals_false():
    assert matched("color=red", {"id": 1}) == set()


def test_not_missing_field_true():
    assert matched("NOT color=red", {"id": 1}, {"id": 2, "color": "red"}) == {1}


def test_not_equal_missing_false():
    assert matched("color!=red", {"id": 1}) == set()


def test_not_equal_present():
    events = [{"id": 1, "color": "blue"}, {"id": 2, "color": "RED"}]

    assert matched("color!=red", *events) == {1}


def test_implicit_and():
    events = [{"id": 1, "a": "1", "b": "2"}, {"id": 2, "a": "1"}]

    assert matched("a=1 b=2", *events) == {1}
    assert matched("a=1 AND b=2", *events) == {1}


def test_or_binds_tighter_than_and():
    events = [{"id": 1, "a": "1", "b": "2"}, {"id": 2, "a": "1", "c": "3"}, {"id": 3, "c": "3"}]

    assert matched("a=1 b=2 OR c=3", *events) == {1, 2}


def test_not_binds_one_term():
    events = [{"id": 1, "a": "1", "b": "2"}, {"id": 2, "b": "2"}, {"id": 3}]

    assert matched("NOT a=1 b=2", *events) == {2}


def test_parentheses_group():
    events = [{"id": 1, "a": "1"}, {"id": 2, "b": "2"}, {"id": 3, "a": "1", "b": "2"}]

    assert matched("NOT (a=1 OR b=2)", *events, {"id": 4}) == {4}
    assert matched("(a=1 b=2) OR a=0", *events) == {3}


def test_lowercase_or_is_term():
    events = [{"id": 1, "b": "2", "c": "3"}, {"id": 2, "b": "2", "c": "3", "note": "this or that"}]

    assert matched("b=2 or c=3", *events) == {2}


def test_raw_term_boundaries():
    events = [{"id": 1, "cmd": "python -c import zlib"}, {"id": 2, "cmd": "zlibrary"}]

    assert matched("ZLIB", *events) == {1}
    assert matched("zli", *events) == set()
    assert matched("zli*", *events) == {1, 2}


def test_phrase_term():
    events = [{"id": 1, "cmd": "python -c import zlib"}, {"id": 2, "cmd": "import os, zlib"}]

    assert matched('"import zlib"', *events) == {1}


def test_numeric_comparison():
    events = [{"id": 1, "size": 10}, {"id": 2, "size": 9}, {"id": 3, "size": 100}]

    assert matched("size>9", *events) == {1, 3}
    assert matched("size<=10", *events) == {1, 2}


def test_string_comparison():
    events = [{"id": 1, "name": "beta"}, {"id": 2, "name": "alpha"}]

    assert matched("name>b", *events) == {1}


def test_in_list():
    events = [
        {"id": 1, "Image": "C:\\py\\python.exe"},
        {"id": 2, "Image": "C:\\rb\\RUBY.exe"},
        {"id": 3, "Image": "C:\\x\\node.exe"},
    ]

    assert matched(r'Image IN ("*\\python.exe", *\\ruby.exe)', *events) == {1, 2}


def test_multivalue_any_value():
    events = [{"id": 1, "tags": ["a", "b"]}, {"id": 2, "tags": ["c"]}]

    assert matched("tags{}=b", *events) == {1}
    assert matched("tags{}!=a", *events) == {2}


def test_default_index_only():
    rows = [stored({"id": 1, "a": "1"}), stored({"id": 2, "a": "1"}, index="portal_validation")]

    assert ids(spl.parse("a=1").run(rows)) == [1]
    assert ids(spl.parse("index=PORTAL_VALIDATION a=1").run(rows)) == [2]
    assert sorted(ids(spl.parse("index=* a=1").run(rows))) == [1, 2]


def test_indexed_field_colons():
    rows = [
        stored({"id": 1}, indexed_fields={"portal_scope": "run-1"}),
        stored({"id": 2}, position=1, indexed_fields={"portal_scope": "run-2"}),
    ]

    assert ids(spl.parse("portal_scope::run-1").run(rows)) == [1]
    assert ids(spl.parse('portal_scope::"run-2"').run(rows)) == [2]
    assert ids(spl.parse("portal_scope::RUN-*").run(rows)) == [2, 1]


def test_indexed_field_equals_needs_raw():
    rows = [
        stored({"id": 1}, indexed_fields={"portal_scope": "run-1"}),
        stored({"id": 2, "note": "run-1"}, position=1, indexed_fields={"portal_scope": "run-1"}),
    ]

    assert ids(spl.parse('portal_scope="run-1"').run(rows)) == [2]
    assert ids(spl.parse("portal_scope IN (run-1)").run(rows)) == [2]


def test_colons_only_indexed_fields():
    rows = [stored({"id": 1, "kind": "x"})]

    assert ids(spl.parse("kind::x").run(rows)) == []
    assert ids(spl.parse("index::main sourcetype::json").run(rows)) == [1]


def test_search_command_filters():
    events = [{"id": 1, "a": "1"}, {"id": 2, "a": "2"}]

    assert ids(run("* | search a=2", *events)) == [2]


def test_leading_search_keyword():
    assert ids(run("search a=2", {"id": 1, "a": "1"}, {"id": 2, "a": "2"})) == [2]


def test_events_newest_first():
    assert ids(run("*", {"id": 1}, {"id": 2}, {"id": 3})) == [3, 2, 1]


# Time modifiers


def test_earliest_relative_to_now():
    events = [{"id": i} for i in range(5)]

    rows = run("* earliest=-2s", *events, now=FIRST_EVENT_TIME + 4)

    assert ids(rows) == [4, 3, 2]


def test_latest_exclusive():
    events = [{"id": i} for i in range(5)]

    rows = run(f"* earliest=1 latest={FIRST_EVENT_TIME + 2:.0f}", *events)

    assert ids(rows) == [1, 0]


def test_time_range_with_other_terms():
    events = [{"id": 1, "kind": "a"}, {"id": 2, "kind": "b"}, {"id": 3, "kind": "a"}]

    rows = run("kind=a earliest=-1s latest=now", *events, now=FIRST_EVENT_TIME + 2.5)

    assert ids(rows) == [3]


def test_time_modifier_in_top_parentheses():
    events = [{"id": 1, "kind": "a"}, {"id": 2, "kind": "a"}]

    rows = run("(kind=a earliest=-1s)", *events, now=FIRST_EVENT_TIME + 1.5)

    assert ids(rows) == [2]


def test_without_time_modifier_all_time():
    assert ids(run("*", {"id": 1}, now=0.0)) == [1]


NOW = 1_796_049_123.5  # 2026-11-30 14:32:03.5 UTC


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("now", NOW),
        ("0", 0.0),
        ("1700000000", 1_700_000_000.0),
        ("-24h", NOW - 86400),
        ("-7d", NOW - 7 * 86400),
        ("-30d", NOW - 30 * 86400),
        ("-2w", NOW - 14 * 86400),
        ("-h", NOW - 3600),
        ("+30m", NOW + 1800),
        ("-90seconds", NOW - 90),
        ("@d", 1_795_996_800.0),  # 2026-11-30 00:00:00 UTC
        ("-1d@d", 1_795_996_800.0 - 86400),
        ("@h", 1_796_047_200.0),  # 14:00:00
        ("-15m@m", 1_796_048_220.0),  # 14:17:00
        ("11/30/2026:14:00:00", 1_796_047_200.0),
    ],
)
def test_time_spec_values(value, expected):
    assert parse_time_spec("earliest", value).resolve(NOW) == expected


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("x=1 earliest=-3x", "'x' is not a time unit"),
        ("x=1 earliest=-1mon", "calendar unit 'mon'"),
        ("x=1 earliest=-1d@w0", "snaps only to s, m, h and d"),
        ("x=1 earliest=11/31/2026:00:00:00", "%m/%d/%Y:%H:%M:%S"),
        ("x=1 earliest=yesterday", "Invalid value"),
        ("(x=1 earliest=-1h) OR y=2", "not in a group joined by OR"),
        ("x=1 OR earliest=-1h", "not in a group joined by OR"),
        ("x=1 NOT earliest=-1h", "not in a group joined by OR"),
        ("x=1 earliest=-1h earliest=-2h", "given twice"),
        ("x=1 | search earliest=-1h", "only as earliest=<time> in the base search"),
        ("x=1 earliest!=-1h", "only as earliest=<time> in the base search"),
    ],
)
def test_time_modifier_rejects(query, message):
    with pytest.raises(SPLSyntaxError) as error:
        spl.parse(query)

    assert message in str(error.value)


def test_standin_clock_sets_now():
    standin = SplunkStandIn(clock=lambda: FIRST_EVENT_TIME + 3600)
    standin.index_event({"id": 1}, time_=FIRST_EVENT_TIME)
    standin.index_event({"id": 2}, time_=FIRST_EVENT_TIME + 1800)

    rows = standin.run_search("index=main earliest=-1h")
    later = standin.run_search("index=main earliest=-45m")

    assert ids(rows) == [2, 1]
    assert ids(later) == [2]


# eval and where


def evaluated(expression: str, **fields) -> dict:
    rows = run(f"* | eval out={expression}", fields)
    return rows[0]


def test_eval_arithmetic_precedence():
    assert evaluated("1+2*3")["out"] == 7
    assert evaluated("(1+2)*3")["out"] == 9
    assert evaluated("-2*3")["out"] == -6
    assert evaluated("7/2")["out"] == 3.5
    assert evaluated("8/2")["out"] == 4
    assert evaluated("7%4")["out"] == 3


def test_eval_concatenation():
    assert evaluated('first." ".last', first="Ada", last="Lovelace")["out"] == "Ada Lovelace"
    assert evaluated('"n=" . 5')["out"] == "n=5"
    assert evaluated('"a"+"b"')["out"] == "ab"


def test_eval_string_escapes():
    assert evaluated(r'"C:\\Temp\\x"')["out"] == "C:\\Temp\\x"
    assert evaluated(r'"say \"hi\""')["out"] == 'say "hi"'


def test_eval_numeric_field_compare():
    row = run("* | where code=7", {"id": 1, "code": 7}, {"id": 2, "code": "07.0"}, {"id": 3, "code": 70})

    assert sorted(ids(row)) == [1, 2]


def test_eval_string_compare_case_sensitive():
    assert ids(run('* | where name="Admin"', {"id": 1, "name": "admin"}, {"id": 2, "name": "Admin"})) == [2]


def test_case_first_true():
    expression = 'case(code=1, "one", code>0, "positive", true(), "other")'

    assert evaluated(expression, code=1)["out"] == "one"
    assert evaluated(expression, code=5)["out"] == "positive"
    assert evaluated(expression, code=-1)["out"] == "other"


def test_case_no_match_null():
    assert "out" not in evaluated('case(code=1, "one")', code=2)


def test_match_case_sensitive():
    events = [{"id": 1, "Image": "C:\\PowerShell.exe"}, {"id": 2, "Image": "C:\\powershell.exe"}]

    assert ids(run('* | where match(Image, "powershell")', *events)) == [2]
    assert matched("Image=*powershell*", *events) == {1, 2}


def test_match_regex():
    assert evaluated(r'if(match(cmd, "^python\d?\.exe -c"), "y", "n")', cmd="python3.exe -c x")["out"] == "y"
    assert evaluated(r'if(match(cmd, "zlib$"), "y", "n")', cmd="zlib.dll")["out"] == "n"


def test_like_wildcards():
    expression = 'if(like(name, "py%on_.exe"), "y", "n")'

    assert evaluated(expression, name="python3.exe")["out"] == "y"
    assert evaluated(expression, name="python.exe")["out"] == "n"
    assert evaluated(expression, name="PYthon3.exe")["out"] == "n"


def test_like_operator():
    assert ids(run('* | where name LIKE "a%"', {"id": 1, "name": "abc"}, {"id": 2, "name": "bc"})) == [1]


def test_coalesce():
    assert evaluated('coalesce(missing, empty, "x")', empty="")["out"] == ""
    assert evaluated('coalesce(missing, other, "x")')["out"] == "x"


def test_if_null_condition():
    assert evaluated('if(missing=1, "y", "n")')["out"] == "n"


def test_string_functions():
    assert evaluated("lower(name)", name="AbC")["out"] == "abc"
    assert evaluated("upper(name)", name="AbC")["out"] == "ABC"
    assert evaluated("len(name)", name="AbC")["out"] == 3
    assert evaluated("substr(name, 2, 2)", name="AbCd")["out"] == "bC"
    assert evaluated("substr(name, -2)", name="AbCd")["out"] == "Cd"
    assert evaluated(r'replace(name, "(\w)b", "\1-")', name="AbCd")["out"] == "A-Cd"
    assert "out" not in evaluated('tonumber("0x1F")')
    assert "out" not in evaluated('tonumber("abc")')
    assert evaluated('tonumber("1F", 16)')["out"] == 31


def test_round():
    assert evaluated("round(x)", x="2.5")["out"] == 3
    assert evaluated("round(x)", x="-2.5")["out"] == -3
    assert evaluated("round(x, 2)", x="2.675")["out"] == 2.68
    assert evaluated("round(100 * 1 / 3, 2)")["out"] == 33.33
    assert evaluated("round(x, 1)", x="7")["out"] == 7.0
    assert "out" not in evaluated("round(x)", x="abc")
    assert "out" not in evaluated("round(x, -1)", x="15")
    assert "out" not in evaluated("round(missing)")


def test_isnull_isnotnull():
    assert evaluated('if(isnull(missing), "null", "set")')["out"] == "null"
    assert evaluated('if(isnotnull(name), "set", "null")', name="")["out"] == "set"


def test_null_removes_field():
    rows = run("* | eval name=null()", {"id": 1, "name": "x"})

    assert "name" not in rows[0]


def test_where_null_excluded():
    events = [{"id": 1, "a": "1"}, {"id": 2}]

    assert ids(run("* | where a=1", *events)) == [1]
    assert ids(run("* | where NOT a=1", *events)) == []


def test_three_valued_logic():
    events = [{"id": 1}]

    assert ids(run("* | where missing=1 OR true()", *events)) == [1]
    assert ids(run("* | where missing=1 AND false()", *events)) == []
    assert ids(run("* | where isnull(missing=1 AND true())", *events)) == [1]


def test_eval_sequential_assignments():
    rows = run("* | eval a=2, b=a*10", {"id": 1})

    assert rows[0]["a"] == 2
    assert rows[0]["b"] == 20


def test_division_by_zero_null():
    assert "out" not in evaluated("1/0")


def test_quoted_field_name():
    assert evaluated("'data.size'*2", data={"size": 4})["out"] == 8


def test_arithmetic_on_text_null():
    assert "out" not in evaluated("name*2", name="abc")


def test_logic_on_text_fails():
    with pytest.raises(SPLRuntimeError, match="boolean arguments"):
        run('* | where name AND true()', {"id": 1, "name": "x"})


# Commands


def test_table_order_and_missing():
    rows = run("* | table b, a missing", {"id": 1, "a": "1", "b": "2"})

    assert list(rows[0]) == ["b", "a"]


def test_table_wildcard():
    rows = run("* | table user*", {"id": 1, "user": "a", "user_id": "7", "other": "x"})

    assert rows[0] == {"user": "a", "user_id": "7"}


def test_fields_keep_internal():
    rows = run("* | fields id", {"id": 1, "a": "1"})

    assert set(rows[0]) == {"id", "_raw", "_time"}


def test_fields_remove():
    rows = run("* | fields - a, _raw", {"id": 1, "a": "1"})

    assert "a" not in rows[0]
    assert "_raw" not in rows[0]
    assert rows[0]["id"] == "1"


def test_sort_numeric():
    assert ids(run("* | sort size", *({"id": i, "size": s} for i, s in enumerate(["10", "9", "100"])))) == [1, 0, 2]


def test_sort_string_code_points():
    events = [{"id": 1, "name": "b"}, {"id": 2, "name": "a"}, {"id": 3, "name": "C"}]

    assert ids(run("* | sort name", *events)) == [3, 2, 1]
    assert ids(run("* | sort str(name)", *events)) == [3, 2, 1]


def test_sort_numbers_before_text():
    events = [{"id": 1, "v": "x"}, {"id": 2, "v": "5"}, {"id": 3, "v": "40"}]

    assert ids(run("* | sort v", *events)) == [2, 3, 1]


def test_sort_multiple_keys():
    events = [
        {"id": 1, "host": "b", "n": 1},
        {"id": 2, "host": "a", "n": 1},
        {"id": 3, "host": "a", "n": 2},
    ]

    assert ids(run("* | sort host, -n", *events)) == [3, 2, 1]
    assert ids(run("* | sort - n + host", *events)) == [3, 2, 1]


def test_sort_descending_time():
    rows = run("* | sort - _time", {"id": 1}, {"id": 2})
    ascending = run("* | sort _time", {"id": 1}, {"id": 2})

    assert ids(rows) == [2, 1]
    assert ids(ascending) == [1, 2]


def test_sort_missing_last():
    events = [{"id": 1}, {"id": 2, "n": 2}, {"id": 3, "n": 3}]

    assert ids(run("* | sort n", *events)) == [2, 3, 1]
    assert ids(run("* | sort -n", *events)) == [3, 2, 1]


def test_sort_limits():
    events = [{"id": i, "n": i} for i in range(5)]

    assert ids(run("* | sort 2 n", *events)) == [0, 1]
    assert ids(run("* | sort limit=3 -n", *events)) == [4, 3, 2]
    assert len(run("* | sort 0 n", *events)) == 5


def test_head_default_ten():
    assert len(run("* | head", *({"id": i} for i in range(12)))) == 10


def test_head_count():
    assert ids(run("* | head 2", {"id": 1}, {"id": 2}, {"id": 3})) == [3, 2]
    assert ids(run("* | head limit=1", {"id": 1}, {"id": 2})) == [2]


def test_stats_count():
    assert run("* | stats count", {"id": 1}, {"id": 2}) == [{"count": 2}]
    assert run("* | stats count as total", {"id": 1}) == [{"total": 1}]


def test_stats_count_empty():
    assert run("nothing=here | stats count") == [{"count": 0}]
    assert run("nothing=here | stats count by user") == []


def test_stats_by_fields():
    events = [
        {"user": "b", "kind": "x"},
        {"user": "a", "kind": "x"},
        {"user": "a", "kind": "x"},
        {"user": "a", "kind": "y"},
        {"kind": "x"},
    ]

    rows = run("* | stats count by user, kind", *events)

    assert rows == [
        {"user": "a", "kind": "x", "count": 2},
        {"user": "a", "kind": "y", "count": 1},
        {"user": "b", "kind": "x", "count": 1},
    ]


def test_stats_count_of_field():
    rows = run("* | stats count(user) as users, count", {"user": "a"}, {"user": "b"}, {"x": 1})

    assert rows == [{"users": 2, "count": 3}]


def test_stats_functions():
    events = [
        {"user": "b", "n": 3, "path": "C:/b"},
        {"user": "a", "n": 10, "path": "C:/a"},
        {"user": "a", "n": "x", "path": "C:/a"},
        {"user": "c"},
    ]

    rows = run(
        "* | stats dc(user) as users, sum(n), avg(n) as mean, min(n), max(n), "
        "min(path) as first, values(user) as names, values(path) as paths, count(n)",
        *events,
    )

    assert rows == [
        {
            "users": 3,
            "sum(n)": 13,
            "mean": 6.5,
            "min(n)": 3,
            "max(n)": 10,
            "first": "C:/a",
            "names": ["a", "b", "c"],
            "paths": ["C:/a", "C:/b"],
            "count(n)": 3,
        }
    ]


def test_stats_function_aliases():
    rows = run("* | stats c, distinct_count(u), mean(n)", {"u": "a", "n": 1}, {"u": "a", "n": 2})

    assert rows == [{"c": 2, "distinct_count(u)": 1, "mean(n)": 1.5}]


def test_stats_values_single_value():
    rows = run("* | stats values(u) as u by k", {"u": "a", "k": 1}, {"u": "a", "k": 1})

    assert rows == [{"k": "1", "u": "a"}]


def test_stats_without_values_omitted():
    rows = run("* | stats sum(n), max(n), values(n), dc(n)", {"n": "x"}, {"m": 1})

    assert rows == [{"max(n)": "x", "values(n)": "x", "dc(n)": 1}]
    assert run("* | stats sum(n) as total", {"m": 1}) == [{}]


def test_stats_min_max_time():
    rows = run("* | stats min(_time) as first, max(_time) as last", {"id": 1}, {"id": 2})

    assert rows == [{"first": FIRST_EVENT_TIME, "last": FIRST_EVENT_TIME + 1}]


def test_stats_multivalue_values_counted():
    events = [{"tags": ["a", "b"]}, {"tags": ["b"]}]

    rows = run("* | stats dc(tags{}) as tags, count(tags{}) as n", *events)

    assert rows == [{"tags": 2, "n": 3}]


def test_eventstats_by_group():
    events = [
        {"id": 1, "g": "a", "n": 1},
        {"id": 2, "g": "b", "n": 5},
        {"id": 3, "g": "a", "n": 3},
        {"id": 4, "n": 9},
    ]

    rows = run("* | eventstats max(n) as top, count by g", *events)

    assert ids(rows) == [4, 3, 2, 1]
    assert [row.get("top") for row in rows] == [None, 3, 5, 3]
    assert [row.get("count") for row in rows] == [None, 2, 1, 2]
    assert rows[1]["n"] == "3"


def test_eventstats_without_by():
    query = "* | eventstats sum(n) as total | eval share=round(100 * n / total)"

    rows = run(query, {"n": 1}, {"n": 3})

    assert [row["total"] for row in rows] == [4, 4]
    assert [row["share"] for row in rows] == [75, 25]


def test_eventstats_then_where():
    events = [
        {"id": 1, "guid": "p", "mark": 1},
        {"id": 2, "guid": "p", "mark": 0},
        {"id": 3, "guid": "q", "mark": 0},
    ]

    rows = run("* | eventstats max(mark) as member by guid | where member=1", *events)

    assert ids(rows) == [2, 1]


def test_eventstats_multivalue_group_fails():
    with pytest.raises(SPLRuntimeError, match="grouping by a multivalue field"):
        run("* | eventstats count by tags{}", {"tags": ["a", "b"]})


def test_convert_ctime():
    rows = run(
        "* | eval last=_time | convert ctime(_time) ctime(last) as shown",
        {"id": 1},
    )

    assert rows[0]["_time"] == "11/14/2023 22:13:20"
    assert rows[0]["shown"] == "11/14/2023 22:13:20"
    assert rows[0]["last"] == FIRST_EVENT_TIME


def test_convert_time_format():
    rows = run('* | eval t=_time | convert timeformat="%Y-%m-%d" ctime(t)', {"id": 1})

    assert rows[0]["t"] == "2023-11-14"


def test_convert_leaves_text():
    rows = run("* | convert ctime(name) ctime(missing)", {"name": "abc"})

    assert rows[0]["name"] == "abc"
    assert "missing" not in rows[0]


def test_rename():
    rows = run('* | rename user as "Account Name", id AS ident', {"id": 1, "user": "a"})

    assert rows[0]["Account Name"] == "a"
    assert rows[0]["ident"] == "1"
    assert "user" not in rows[0]


def test_dedup_keeps_first():
    events = [{"id": 1, "u": "a"}, {"id": 2, "u": "a"}, {"id": 3, "u": "b"}, {"id": 4}]

    assert ids(run("* | dedup u", *events)) == [3, 2]
    assert ids(run("* | dedup 2 u", *events)) == [3, 2, 1]
    assert ids(run("* | dedup u keepempty=true", *events)) == [4, 3, 2]


# Search-time JSON extraction and results


def test_extract_nested_objects():
    fields = extract_json_fields(json.dumps({"a": {"b": {"c": "x"}}, "d": "y"}))

    assert fields == {"a.b.c": "x", "d": "y"}


def test_extract_arrays():
    fields = extract_json_fields(json.dumps({"tags": ["a", "b"], "items": [{"n": 1}, {"n": 2}]}))

    assert fields == {"tags{}": ["a", "b"], "items{}.n": ["1", "2"]}


def test_extract_scalars_as_text():
    fields = extract_json_fields(json.dumps({"n": 7, "f": 1.5, "t": True, "none": None}))

    assert fields == {"n": "7", "f": "1.5", "t": "true"}


def test_extract_non_json_raw():
    assert extract_json_fields("plain text event") == {}


def test_render_row_strings():
    row = render_row({"_time": 0.0, "n": 2.0, "mv": ["a", 1], "gone": None})

    assert row == {"_time": "1970-01-01T00:00:00.000+00:00", "n": "2", "mv": ["a", "1"]}


# The shipped detection query


def shipped_query() -> str:
    path = CONTENT_DIR / "detections" / SEED_SLUG / "detection.yml"
    return yaml.safe_load(path.read_text(encoding="utf-8"))["queries"][0]["text"]


def sysmon(position: int, **fields) -> dict:
    return stored(fields, position=position, index="wineventlog", sourcetype=SYSMON, host="ws01")


def test_shipped_query_detections():
    events = [
        sysmon(0, EventCode=1, Image="C:\\Python311\\python.exe", CommandLine="python.exe -c \"import zlib; zlib.compress(b'x')\""),
        sysmon(1, EventCode=1, Image="C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe", CommandLine="powershell -c New-Object IO.Compression.GZipStream"),
        sysmon(2, EventCode=7, Image="C:\\Tools\\app.exe", ImageLoaded="C:\\Tools\\zlib1.dll"),
        sysmon(3, EventCode=7, Image="C:\\Tools\\app.exe", ImageLoaded="C:\\Windows\\System32\\zlib1.dll"),
        sysmon(4, EventCode=7, Image="C:\\Program Files\\7-Zip\\7z.exe", ImageLoaded="C:\\Program Files\\7-Zip\\zlib.dll"),
        sysmon(5, EventCode=11, Image="C:\\Python311\\python.exe", TargetFilename="C:\\Users\\a\\AppData\\Local\\Temp\\stage_df00.zlib"),
        sysmon(6, EventCode=1, Image="C:\\Windows\\notepad.exe", CommandLine="notepad.exe import zlib"),
        stored({"EventCode": 1, "Image": "C:\\python.exe", "CommandLine": "import zlib"}, position=7, index="wineventlog", sourcetype="other"),
    ]

    rows = spl.parse(shipped_query()).run(events)

    assert [row["DetectionSource"] for row in rows] == [
        "StagedCompressedFileCreation",
        "CompressionDllLoad",
        "PowerShellLibraryCompression",
        "PythonLibraryCompression",
    ]
    assert list(rows[0]) == ["_time", "host", "DetectionSource", "ProcessPath", "CmdLine", "Artifact"]
    assert rows[0]["Artifact"].endswith("stage_df00.zlib")
    assert rows[0]["CmdLine"] == ""
    assert rows[1]["Artifact"] == "C:\\Tools\\zlib1.dll"


# Tuning filter macros, expanded in place


def test_expanded_filter_macro_exact_values():
    from detections.pysigma.tuning import splunk_expression

    condition = {
        "Image|endswith": "\\pip.exe",
        "User": "CORP\\svc_build",
        "CommandLine|contains": 'a "b"',
    }
    expression = splunk_expression(condition)
    query = f'index=main | eval Kind="x" | search NOT ((Kind="x" {expression})) | table id'
    suppressed = {
        "id": 1,
        "Image": "C:\\Py\\Scripts\\PIP.EXE",
        "User": "corp\\svc_build",
        "CommandLine": 'pip a "b" c',
    }
    other_user = suppressed | {"id": 2, "User": "CORP\\alice"}
    literal_star = suppressed | {"id": 3, "Image": "C:\\Py\\pip*exe"}
    no_command_line = {"id": 4, "Image": "C:\\Py\\pip.exe", "User": "CORP\\svc_build"}

    assert matched(query, suppressed, other_user, literal_star, no_command_line) == {2, 3, 4}
