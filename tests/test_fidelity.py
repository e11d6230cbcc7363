"""Fidelity warnings: each known loss is rendered with the real backends and, where an engine
runs here (SQLite through sqlite3, DuckDB through duckdb, regular expressions through
Python's re), the rendered query is run to show the loss the warning describes.
"""

import ipaddress
import re
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from detections.pysigma.convert import Conversion, TargetConverter, load_rule, render_targets
from detections.pysigma.fidelity import DUCKDB_RESERVED_WORDS, fidelity_warnings

from .conftest import CONTENT_DIR, SEED_SLUG

PROCESS_CREATION = "category: process_creation\n    product: windows"
NETWORK_CONNECTION = "category: network_connection\n    product: windows"
IMAGE_LOAD = "category: image_load\n    product: windows"
AUDITD = "product: linux\n    service: auditd"

RULE_TEMPLATE = """\
title: Fidelity probe
id: 5f0e8a55-1b1e-4d3e-9a43-0d3b3f8f6d11
status: test
logsource:
    {logsource}
detection:
{detection}
level: low
"""

ALL_TARGETS = list(render_targets())


def rule_text(detection: str, logsource: str = PROCESS_CREATION) -> str:
    """Return a rule whose detection section is `detection` (YAML, without indentation)."""
    body = textwrap.indent(textwrap.dedent(detection).strip("\n"), "    ")
    return RULE_TEMPLATE.format(logsource=logsource, detection=body)


def render(target_key: str, detection: str, logsource: str = PROCESS_CREATION) -> Conversion:
    """Convert a rule for one target with a fresh converter, as one render batch does."""
    converter = TargetConverter(render_targets()[target_key])
    return converter.convert(load_rule(rule_text(detection, logsource)))


def codes(conversion: Conversion) -> set[str]:
    return {warning.code for warning in conversion.warnings}


def messages(conversion: Conversion, code: str) -> list[str]:
    return [warning.message for warning in conversion.warnings if warning.code == code]


def sqlite_matches(query: str, columns: list[str], events: dict[str, dict]) -> list[str]:
    """Run a rendered SQLite query on a `logs` table of `events` and return the matched names.

    Each event is a row with the rule's fields as columns (missing ones NULL) and its name
    in an extra `event` column. REGEXP is Python's re.search, as SQLite has none built in.
    """
    connection = sqlite3.connect(":memory:")
    connection.create_function(
        "regexp", 2, lambda pattern, value: value is not None and bool(re.search(pattern, value))
    )
    names = ", ".join(f'"{column}"' for column in ["event", *columns])
    connection.execute(f"CREATE TABLE logs ({names})")
    for name, event in events.items():
        row = [name, *(event.get(column) for column in columns)]
        connection.execute(f"INSERT INTO logs VALUES ({', '.join('?' * len(row))})", row)
    return sorted(row[0] for row in connection.execute(query).fetchall())


def duckdb_matches(query: str, columns: list[str], events: dict[str, dict]) -> list[str]:
    """Run a rendered DuckDB query on a `logs` table of `events`, like sqlite_matches."""
    connection = duckdb.connect()
    names = ", ".join(f'"{column}" VARCHAR' for column in ["event", *columns])
    connection.execute(f"CREATE TABLE logs ({names})")
    for name, event in events.items():
        row = [name, *(event.get(column) for column in columns)]
        connection.execute(f"INSERT INTO logs VALUES ({', '.join('?' * len(row))})", row)
    return sorted(row[0] for row in connection.execute(query).fetchall())


# --- wildcard_widened ---------------------------------------------------------------------

SINGLE_WILDCARD = "sel:\n    CommandLine: 'a?c'\ncondition: sel"


@pytest.mark.parametrize("target_key", ["splunk", "splunk_savedsearches", "sentinelone_pq"])
def test_wildcard_widened_for_star_targets(target_key):
    conversion = render(target_key, SINGLE_WILDCARD)

    assert '"a*c"' in conversion.query
    assert "wildcard_widened" in codes(conversion)


@pytest.mark.parametrize(
    "target_key",
    [key for key in ALL_TARGETS if key not in {"splunk", "splunk_savedsearches", "sentinelone_pq"}],
)
def test_wildcard_widened_absent_elsewhere(target_key):
    conversion = render(target_key, SINGLE_WILDCARD)

    assert conversion.succeeded
    assert "wildcard_widened" not in codes(conversion)


def test_wildcard_widened_absent_for_star():
    conversion = render("splunk", "sel:\n    CommandLine: 'a*c'\ncondition: sel")

    assert "wildcard_widened" not in codes(conversion)


def test_wildcard_widened_message_names_value():
    conversion = render("splunk", SINGLE_WILDCARD)

    assert messages(conversion, "wildcard_widened")[0].startswith("CommandLine 'a?c': ")


@pytest.mark.parametrize("target_key", ["sentinel_kql", "defender_kql"])
def test_wildcard_widened_for_kusto_value_list(target_key):
    conversion = render(target_key, "sel:\n    CommandLine|contains: ['a?b', 'cd']\ncondition: sel")

    assert 'contains "a" and' in conversion.query
    assert "wildcard_widened" in codes(conversion)


def test_wildcard_widened_absent_for_kusto_single_value():
    conversion = render("defender_kql", "sel:\n    CommandLine|contains: 'a?b'\ncondition: sel")

    assert 'matches regex ".*a.b.*"' in conversion.query
    assert "wildcard_widened" not in codes(conversion)


# --- anchor_widened -----------------------------------------------------------------------


def test_anchor_widened_for_sentinelone_endswith():
    conversion = render("sentinelone_pq", "sel:\n    Image|endswith: '\\Foo.exe'\ncondition: sel")

    assert 'contains "\\\\Foo.exe"' in conversion.query
    assert "anchor_widened" in codes(conversion)


def test_anchor_widened_absent_for_sentinelone_contains():
    conversion = render("sentinelone_pq", "sel:\n    Image|contains: '\\Foo'\ncondition: sel")

    assert "anchor_widened" not in codes(conversion)


@pytest.mark.parametrize("target_key", ["splunk", "defender_kql", "sqlite", "grafana_loki"])
def test_anchor_widened_absent_elsewhere(target_key):
    conversion = render(target_key, "sel:\n    Image|endswith: '\\Foo.exe'\ncondition: sel")

    assert "anchor_widened" not in codes(conversion)


def test_anchor_widened_for_sentinelone_cidr():
    conversion = render(
        "sentinelone_pq",
        "sel:\n    DestinationIp|cidr: '10.0.0.0/8'\ncondition: sel",
        NETWORK_CONNECTION,
    )

    assert 'contains "10."' in conversion.query
    assert "'10.'" in messages(conversion, "anchor_widened")[0]


def test_anchor_widened_for_kusto_has_all():
    conversion = render("defender_kql", "sel:\n    CommandLine|all: ['a', 'b']\ncondition: sel")

    assert 'has_all ("a", "b")' in conversion.query
    assert "anchor_widened" in codes(conversion)


def test_anchor_widened_absent_for_kusto_in():
    conversion = render("defender_kql", "sel:\n    CommandLine: ['a', 'b']\ncondition: sel")

    assert 'in~ ("a", "b")' in conversion.query
    assert "anchor_widened" not in codes(conversion)


# --- case_sensitive_match -----------------------------------------------------------------

CASE_EVENTS = {"same_case": {"CommandLine": "AbC"}, "other_case": {"CommandLine": "abc"}}


def test_case_sensitive_match_for_sqlite_equality():
    conversion = render("sqlite", "sel:\n    CommandLine: 'AbC'\ncondition: sel")

    matched = sqlite_matches(conversion.query, ["CommandLine"], CASE_EVENTS)

    assert "CommandLine='AbC'" in conversion.query
    assert matched == ["same_case"]
    assert "case_sensitive_match" in codes(conversion)


def test_case_sensitive_match_absent_for_sqlite_like():
    conversion = render("sqlite", "sel:\n    CommandLine|contains: 'AbC'\ncondition: sel")

    matched = sqlite_matches(conversion.query, ["CommandLine"], CASE_EVENTS)

    assert matched == ["other_case", "same_case"]
    assert "case_sensitive_match" not in codes(conversion)


def test_case_sensitive_match_for_sqlite_like_non_ascii():
    conversion = render("sqlite", "sel:\n    CommandLine|contains: 'CAFÉ'\ncondition: sel")
    events = {"same_case": {"CommandLine": "x CAFÉ y"}, "other_case": {"CommandLine": "x café y"}}

    matched = sqlite_matches(conversion.query, ["CommandLine"], events)

    assert matched == ["same_case"]
    assert "non-ASCII" in " ".join(messages(conversion, "case_sensitive_match"))


def test_case_sensitive_match_for_duckdb_equality():
    conversion = render("duckdb", "sel:\n    CommandLine: 'AbC'\ncondition: sel")

    matched = duckdb_matches(conversion.query, ["CommandLine"], CASE_EVENTS)

    assert matched == ["same_case"]
    assert "case_sensitive_match" in codes(conversion)


def test_case_sensitive_match_absent_for_duckdb_ilike():
    conversion = render("duckdb", "sel:\n    CommandLine|contains: 'AbC'\ncondition: sel")

    matched = duckdb_matches(conversion.query, ["CommandLine"], CASE_EVENTS)

    assert matched == ["other_case", "same_case"]
    assert "case_sensitive_match" not in codes(conversion)


def test_case_sensitive_match_for_qradar_equality():
    conversion = render("qradar_aql", "sel:\n    CommandLine: 'AbC'\ncondition: sel")

    assert "Command='AbC'" in conversion.query
    assert "case_sensitive_match" in codes(conversion)


def test_case_sensitive_match_absent_for_qradar_like():
    conversion = render("qradar_aql", "sel:\n    CommandLine|contains: 'AbC'\ncondition: sel")

    assert "LOWER(Command) LIKE '%abc%'" in conversion.query
    assert "case_sensitive_match" not in codes(conversion)


def test_case_sensitive_match_for_esql():
    conversion = render("elasticsearch_esql", "sel:\n    CommandLine: 'AbC'\ncondition: sel")

    assert 'process.command_line=="AbC"' in conversion.query
    assert "case_sensitive_match" in codes(conversion)


def test_case_sensitive_match_absent_for_digits():
    conversion = render("elasticsearch_esql", "sel:\n    CommandLine: '1234'\ncondition: sel")

    assert "case_sensitive_match" not in codes(conversion)


@pytest.mark.parametrize("target_key", ["elasticsearch_lucene", "opensearch_lucene"])
def test_case_sensitive_match_for_lucene(target_key):
    conversion = render(target_key, "sel:\n    CommandLine: 'AbC'\ncondition: sel")

    assert "process.command_line:AbC" in conversion.query
    assert "process.command_line" in messages(conversion, "case_sensitive_match")[0]


@pytest.mark.parametrize("target_key", ["elasticsearch_lucene", "opensearch_lucene"])
def test_case_sensitive_match_absent_for_caseless(target_key):
    conversion = render(target_key, "sel:\n    Image|endswith: '\\Foo.exe'\ncondition: sel")

    assert "process.executable.caseless:" in conversion.query
    assert "case_sensitive_match" not in codes(conversion)


@pytest.mark.parametrize("target_key", ["sentinel_kql", "defender_kql"])
def test_case_sensitive_match_for_kusto_regex(target_key):
    conversion = render(target_key, SINGLE_WILDCARD)

    assert 'matches regex "a.c"' in conversion.query
    assert "case_sensitive_match" in codes(conversion)


def test_case_sensitive_match_absent_for_kusto_contains():
    conversion = render("defender_kql", "sel:\n    CommandLine|contains: 'AbC'\ncondition: sel")

    assert 'contains "AbC"' in conversion.query
    assert "case_sensitive_match" not in codes(conversion)


@pytest.mark.parametrize(
    "target_key", ["splunk", "elasticsearch_eql", "crowdstrike_logscale", "grafana_loki"]
)
def test_case_sensitive_match_absent_elsewhere(target_key):
    conversion = render(target_key, "sel:\n    CommandLine: 'AbC'\ncondition: sel")

    assert "case_sensitive_match" not in codes(conversion)


# --- python_repr_in_output ----------------------------------------------------------------


class ReprBackend:
    """A stand-in backend that formats a pySigma object instead of its value."""

    def __init__(self, output: str):
        self.output = output

    def convert(self, collection, output_format):
        return [self.output]


@pytest.mark.parametrize(
    "output",
    [
        'CommandLine="<sigma.types.SigmaNull object at 0x7f67429e5cd0>"',
        "CommandLine=SigmaString(['evil'])",
        "CommandLine=SpecialChars.WILDCARD_MULTI",
    ],
)
def test_python_repr_in_output_from_backend(output):
    converter = TargetConverter(render_targets()["splunk"])
    converter.backend = ReprBackend(output)

    conversion = converter.convert(load_rule(rule_text(SINGLE_WILDCARD)))

    assert conversion.query == output
    assert "python_repr_in_output" in codes(conversion)


@pytest.mark.parametrize("target_key", ALL_TARGETS)
def test_python_repr_in_output_absent(target_key):
    conversion = render(target_key, "sel:\n    CommandLine|contains: 'evil'\ncondition: sel")

    assert "python_repr_in_output" not in codes(conversion)


# --- non_generating_start -----------------------------------------------------------------

ORED_REGEXES = """\
sel_a:
    a2|re: 'import\\s+zlib'
sel_b:
    a3|re: 'zlib'
condition: sel_a or sel_b
"""


@pytest.mark.parametrize("target_key", ["splunk", "splunk_savedsearches"])
def test_non_generating_start_for_ored_regexes(target_key):
    conversion = render(target_key, ORED_REGEXES, AUDITD)

    assert "\n| rex field=a2" in conversion.query
    assert "non_generating_start" in codes(conversion)


@pytest.mark.parametrize("target_key", ["splunk", "splunk_savedsearches"])
def test_non_generating_start_absent_for_single_regex(target_key):
    conversion = render(target_key, "sel:\n    a2|re: 'zlib'\ncondition: sel", AUDITD)

    assert "*" in conversion.query
    assert "non_generating_start" not in codes(conversion)


def test_non_generating_start_absent_for_tstats():
    rule = load_rule(rule_text(SINGLE_WILDCARD)).rule

    warnings = fidelity_warnings(rule, "splunk", "| tstats count where index=main")

    assert "non_generating_start" not in {warning.code for warning in warnings}


# --- like_wildcard_unescaped --------------------------------------------------------------

PERCENT_UNDERSCORE = "sel:\n    CommandLine|contains: '50%_off'\ncondition: sel"
PERCENT_EVENTS = {
    "literal": {"CommandLine": "get 50%_off now"},
    "other": {"CommandLine": "50x-off"},
}


def test_like_wildcard_unescaped_for_duckdb():
    conversion = render("duckdb", PERCENT_UNDERSCORE)

    matched = duckdb_matches(conversion.query, ["CommandLine"], PERCENT_EVENTS)

    assert matched == ["literal", "other"]
    assert "like_wildcard_unescaped" in codes(conversion)


def test_like_wildcard_unescaped_absent_for_sqlite():
    conversion = render("sqlite", PERCENT_UNDERSCORE)

    matched = sqlite_matches(conversion.query, ["CommandLine"], PERCENT_EVENTS)

    assert matched == ["literal"]
    assert "like_wildcard_unescaped" not in codes(conversion)


def test_like_wildcard_unescaped_for_qradar():
    conversion = render("qradar_aql", PERCENT_UNDERSCORE)

    assert "LIKE '%50%_off%'" in conversion.query
    assert "like_wildcard_unescaped" in codes(conversion)


def test_like_wildcard_unescaped_absent_for_plain():
    conversion = render("duckdb", "sel:\n    CommandLine|contains: '50off'\ncondition: sel")

    assert "like_wildcard_unescaped" not in codes(conversion)


# --- null_field_dropped -------------------------------------------------------------------

NEGATED_FILTER = """\
sel:
    CommandLine|contains: 'zlib'
filter:
    Image|endswith: '\\good.exe'
condition: sel and not filter
"""
NULL_EVENTS = {
    "no_image": {"CommandLine": "import zlib"},
    "bad_image": {"CommandLine": "import zlib", "Image": "C:\\bad.exe"},
    "good_image": {"CommandLine": "import zlib", "Image": "C:\\good.exe"},
}


def test_null_field_dropped_for_duckdb():
    conversion = render("duckdb", NEGATED_FILTER)

    matched = duckdb_matches(conversion.query, ["CommandLine", "Image"], NULL_EVENTS)

    assert matched == ["bad_image"]
    assert "Image" in messages(conversion, "null_field_dropped")[0]


def test_null_field_dropped_absent_for_sqlite():
    conversion = render("sqlite", NEGATED_FILTER)

    matched = sqlite_matches(conversion.query, ["CommandLine", "Image"], NULL_EVENTS)

    assert matched == ["bad_image", "no_image"]
    assert "null_field_dropped" not in codes(conversion)


def test_null_field_dropped_for_esql():
    conversion = render("elasticsearch_esql", NEGATED_FILTER)

    assert "and not ends_with(" in conversion.query
    assert "null_field_dropped" in codes(conversion)


def test_null_field_dropped_absent_without_negation():
    conversion = render("duckdb", "sel:\n    CommandLine|contains: 'zlib'\ncondition: sel")

    assert "null_field_dropped" not in codes(conversion)


def test_null_field_dropped_for_neq_modifier():
    conversion = render("duckdb", "sel:\n    CommandLine|neq: 'zlib'\ncondition: sel")

    assert "NOT CommandLine='zlib'" in conversion.query
    assert "null_field_dropped" in codes(conversion)


def test_null_field_dropped_absent_for_negated_null_test():
    conversion = render("duckdb", "sel:\n    Image: null\ncondition: not sel")

    assert "null_field_dropped" not in codes(conversion)


# --- reserved_word_field and unescaped_quote ----------------------------------------------


def test_reserved_word_field_for_duckdb():
    conversion = render("duckdb", "sel:\n    Order: 'first'\ncondition: sel", AUDITD)

    with pytest.raises(duckdb.ParserException):
        duckdb_matches(conversion.query, ["Order"], {"first": {"Order": "first"}})
    assert "reserved_word_field" in codes(conversion)


def test_reserved_word_field_absent_for_unreserved_name():
    conversion = render("duckdb", "sel:\n    type: 'EXECVE'\ncondition: sel", AUDITD)

    matched = duckdb_matches(conversion.query, ["type"], {"execve": {"type": "EXECVE"}})

    assert matched == ["execve"]
    assert "reserved_word_field" not in codes(conversion)


def test_reserved_word_list_matches_installed_duckdb():
    connection = duckdb.connect()
    rows = connection.execute(
        "SELECT keyword_name FROM duckdb_keywords() WHERE keyword_category = 'reserved'"
    ).fetchall()

    assert DUCKDB_RESERVED_WORDS == {row[0] for row in rows}


def test_unescaped_quote_for_duckdb_regex():
    conversion = render("duckdb", 'sel:\n    User|re: "it\'s"\ncondition: sel')

    with pytest.raises(duckdb.ParserException):
        duckdb_matches(conversion.query, ["User"], {"quote": {"User": "it's"}})
    assert "unescaped_quote" in codes(conversion)


def test_unescaped_quote_absent_for_hex_escape():
    conversion = render("duckdb", "sel:\n    User|re: 'it\\x27s'\ncondition: sel")

    matched = duckdb_matches(conversion.query, ["User"], {"quote": {"User": "it's"}})

    assert matched == ["quote"]
    assert "unescaped_quote" not in codes(conversion)


def test_unescaped_quote_absent_without_quote():
    conversion = render("duckdb", "sel:\n    User|re: 'its'\ncondition: sel")

    matched = duckdb_matches(conversion.query, ["User"], {"plain": {"User": "its"}})

    assert matched == ["plain"]
    assert "unescaped_quote" not in codes(conversion)


# --- regular-expression flags -------------------------------------------------------------

REGEX_IGNORECASE = "sel:\n    CommandLine|re|i: 'evil'\ncondition: sel"
REGEX_PLAIN = "sel:\n    CommandLine|re: 'evil'\ncondition: sel"


def test_regex_flags_dropped_for_sentinelone():
    conversion = render("sentinelone_pq", REGEX_IGNORECASE)

    assert 'matches "evil"' in conversion.query
    assert "regex_flags_dropped" in codes(conversion)


def test_regex_flags_dropped_absent_without_flags():
    conversion = render("sentinelone_pq", REGEX_PLAIN)

    assert "regex_flags_dropped" not in codes(conversion)


@pytest.mark.parametrize(
    "target_key",
    ["elasticsearch_lucene", "opensearch_lucene", "elasticsearch_esql", "elasticsearch_eql"],
)
def test_regex_flags_unsupported_for_lucene(target_key):
    conversion = render(target_key, REGEX_IGNORECASE)

    assert "(?i)evil" in conversion.query
    assert "regex_flags_unsupported" in codes(conversion)


@pytest.mark.parametrize(
    "target_key", ["splunk", "defender_kql", "crowdstrike_logscale", "grafana_loki", "duckdb"]
)
def test_regex_flags_unsupported_absent_elsewhere(target_key):
    conversion = render(target_key, REGEX_IGNORECASE)

    assert "regex_flags_unsupported" not in codes(conversion)
    assert "regex_flags_dropped" not in codes(conversion)


def test_regex_case_insensitive_for_eql():
    conversion = render("elasticsearch_eql", REGEX_PLAIN)

    assert 'regex~ "evil"' in conversion.query
    assert "regex_case_insensitive" in codes(conversion)


def test_regex_case_insensitive_absent_with_i():
    conversion = render("elasticsearch_eql", REGEX_IGNORECASE)

    assert "regex_case_insensitive" not in codes(conversion)


# --- escaped wildcards and cased wildcards ------------------------------------------------

ESCAPED_STAR = "sel:\n    CommandLine|contains: 'lit\\*star'\ncondition: sel"


def test_escaped_wildcard_lost_for_loki():
    conversion = render("grafana_loki", ESCAPED_STAR)
    pattern = re.search(r"CommandLine=~`(.*)`", conversion.query).group(1)

    assert re.search(pattern, "run lit*star now") is None
    assert re.search(pattern, "run lit\\xstar now") is not None
    assert "escaped_wildcard_lost" in codes(conversion)


def test_escaped_wildcard_lost_absent_for_loki():
    conversion = render("grafana_loki", "sel:\n    CommandLine|contains: 'litstar'\ncondition: sel")

    assert "escaped_wildcard_lost" not in codes(conversion)


def test_escaped_wildcard_lost_for_splunk():
    conversion = render("splunk", ESCAPED_STAR)

    assert 'CommandLine="*lit\\*star*"' in conversion.query
    assert "escaped_wildcard_lost" in codes(conversion)


def test_escaped_wildcard_lost_absent_for_question_mark():
    conversion = render("splunk", "sel:\n    CommandLine|contains: 'lit\\?star'\ncondition: sel")

    assert "escaped_wildcard_lost" not in codes(conversion)


def test_wildcard_literal_for_eql_cased():
    conversion = render("elasticsearch_eql", "sel:\n    CommandLine|cased: 'Evil*'\ncondition: sel")

    assert 'process.command_line == "Evil*"' in conversion.query
    assert "wildcard_literal" in codes(conversion)


def test_wildcard_literal_absent_for_exact_value():
    conversion = render("elasticsearch_eql", "sel:\n    CommandLine|cased: 'Evil'\ncondition: sel")

    assert "wildcard_literal" not in codes(conversion)


# --- CIDR networks ------------------------------------------------------------------------


@pytest.mark.parametrize("target_key", ["sentinel_kql", "defender_kql"])
def test_cidr_ipv6_unsupported_for_kusto(target_key):
    conversion = render(
        target_key,
        "sel:\n    DestinationIp|cidr: '2001:db8::/64'\ncondition: sel",
        NETWORK_CONNECTION,
    )

    assert "ipv4_is_in_range(" in conversion.query
    assert "cidr_ipv6_unsupported" in codes(conversion)


def test_cidr_ipv6_unsupported_absent_for_kusto_ipv4():
    conversion = render(
        "defender_kql",
        "sel:\n    DestinationIp|cidr: '10.0.0.0/8'\ncondition: sel",
        NETWORK_CONNECTION,
    )

    assert "cidr_ipv6_unsupported" not in codes(conversion)


def test_cidr_matched_as_text_for_sqlite_ipv6():
    network = "2001:db8::/112"
    outside = "2001:db8::1:5"
    conversion = render(
        "sqlite", f"sel:\n    DestinationIp|cidr: '{network}'\ncondition: sel", NETWORK_CONNECTION
    )

    matched = sqlite_matches(
        conversion.query, ["DestinationIp"], {"outside": {"DestinationIp": outside}}
    )

    assert ipaddress.ip_address(outside) not in ipaddress.ip_network(network)
    assert matched == ["outside"]
    assert "cidr_matched_as_text" in codes(conversion)


def test_cidr_matched_as_text_for_duckdb_ipv6():
    conversion = render(
        "duckdb",
        "sel:\n    DestinationIp|cidr: '2001:db8::/112'\ncondition: sel",
        NETWORK_CONNECTION,
    )

    assert "cidr_matched_as_text" in codes(conversion)


def test_cidr_matched_as_text_absent_for_sqlite_ipv4():
    conversion = render(
        "sqlite", "sel:\n    DestinationIp|cidr: '10.0.0.0/8'\ncondition: sel", NETWORK_CONNECTION
    )
    events = {"inside": {"DestinationIp": "10.1.2.3"}, "outside": {"DestinationIp": "110.1.2.3"}}

    matched = sqlite_matches(conversion.query, ["DestinationIp"], events)

    assert matched == ["inside"]
    assert "cidr_matched_as_text" not in codes(conversion)


# --- keywords -----------------------------------------------------------------------------

KEYWORD = "keywords:\n    - 'EvilTool'\ncondition: keywords"


@pytest.mark.parametrize("target_key", ["sentinel_kql", "defender_kql", "elasticsearch_eql"])
def test_keyword_search_invalid_for_bare_string(target_key):
    conversion = render(target_key, KEYWORD)

    assert re.search(r'(?:where|and|or) "EvilTool"', conversion.query)
    assert "keyword_search_invalid" in codes(conversion)


@pytest.mark.parametrize("target_key", ["splunk", "elasticsearch_lucene", "grafana_loki"])
def test_keyword_search_invalid_absent_elsewhere(target_key):
    conversion = render(target_key, KEYWORD)

    assert "keyword_search_invalid" not in codes(conversion)


def test_literal_quotes_added_for_logscale_keyword():
    conversion = render("crowdstrike_logscale", KEYWORD)
    pattern = re.search(r"/(.*)/i$", conversion.query).group(1)

    assert re.search(pattern, "run EvilTool now", re.IGNORECASE) is None
    assert "literal_quotes_added" in codes(conversion)


def test_literal_quotes_added_for_logscale_cased_wildcard():
    conversion = render(
        "crowdstrike_logscale", "sel:\n    CommandLine|cased: 'Evil*'\ncondition: sel"
    )

    assert 'CommandLine=/^"Evil"/' in conversion.query
    assert "literal_quotes_added" in codes(conversion)


@pytest.mark.parametrize(
    "detection",
    [
        "sel:\n    CommandLine|contains: 'evil'\ncondition: sel",
        "sel:\n    CommandLine|cased: 'Evil'\ncondition: sel",
    ],
)
def test_literal_quotes_added_absent_for_fields(detection):
    conversion = render("crowdstrike_logscale", detection)

    assert "literal_quotes_added" not in codes(conversion)


# --- field_mapped_to_literal and conf_line_break ------------------------------------------


def test_field_mapped_to_literal_for_qradar():
    conversion = render(
        "qradar_aql", "sel:\n    ImageLoaded|endswith: '\\zlib.dll'\ncondition: sel", IMAGE_LOAD
    )

    assert "CONCAT('file directory', '/', filename)" in conversion.query
    assert "field_mapped_to_literal" in codes(conversion)


def test_field_mapped_to_literal_absent_for_property():
    conversion = render("qradar_aql", "sel:\n    CommandLine|contains: 'zlib'\ncondition: sel")

    assert "field_mapped_to_literal" not in codes(conversion)


def test_conf_line_break_for_carriage_return():
    conversion = render("splunk_savedsearches", 'sel:\n    CommandLine: "a\\rb"\ncondition: sel')

    assert "\r" in conversion.query
    assert "conf_line_break" in codes(conversion)


def test_conf_line_break_absent_for_plain_value():
    conversion = render("splunk_savedsearches", "sel:\n    CommandLine: 'ab'\ncondition: sel")

    assert "conf_line_break" not in codes(conversion)


# --- The stored query and the original rule -----------------------------------------------


@pytest.mark.parametrize("target_key", ["splunk", "sentinelone_pq", "sqlite"])
def test_warnings_leave_query_as_sigma_cli(target_key, tmp_path):
    target = render_targets()[target_key]
    text = rule_text("sel:\n    CommandLine|contains: '5?%_off'\n    Image: 'AbC'\ncondition: sel")
    (tmp_path / "rule.yml").write_text(text)
    command = [str(Path(sys.executable).parent / "sigma"), "convert", "-t", target.cli[0]]
    for pipeline in target.cli[1]:
        command += ["-p", pipeline]
    if not target.cli[1]:
        command.append("--without-pipeline")

    conversion = TargetConverter(target).convert(load_rule(text))
    cli = subprocess.run(
        [*command, str(tmp_path / "rule.yml")], capture_output=True, text=True, check=True
    )

    assert conversion.warnings
    assert cli.stdout == conversion.query + "\n"


def test_warnings_leave_rule_unchanged():
    loaded = load_rule(rule_text(NEGATED_FILTER))
    before = loaded.rule.to_dict()

    fidelity_warnings(loaded.rule, "duckdb", "SELECT * FROM logs")

    assert loaded.rule.to_dict() == before


# --- The shipped T1560.002 rules ----------------------------------------------------------

SHIPPED_RULES = sorted((CONTENT_DIR / "detections" / SEED_SLUG / "sigma").glob("*.yml"))

ESQL_CASE = {"case_sensitive_match"}
LUCENE_CASE = {"case_sensitive_match"}
# The backend rejects the rule, so the render has an error and no warnings.
UNAVAILABLE = None

# Warning codes per shipped rule and target, as reviewed against the rendered queries.
SHIPPED_WARNINGS: dict[str, dict[str, set[str] | None]] = {
    "compression_dll_load.yml": {
        "splunk": set(),
        "splunk_savedsearches": set(),
        "elasticsearch_lucene": LUCENE_CASE,
        "elasticsearch_esql": ESQL_CASE | {"null_field_dropped"},
        "elasticsearch_eql": set(),
        "opensearch_lucene": LUCENE_CASE,
        "sentinel_kql": UNAVAILABLE,
        "defender_kql": set(),
        "qradar_aql": {"field_mapped_to_literal"},
        "crowdstrike_logscale": set(),
        "sentinelone_pq": {"anchor_widened"},
        "grafana_loki": set(),
        "sqlite": set(),
        "duckdb": {"null_field_dropped"},
    },
    "interpreter_staged_archive.yml": {
        "splunk": set(),
        "splunk_savedsearches": set(),
        "elasticsearch_lucene": LUCENE_CASE,
        "elasticsearch_esql": ESQL_CASE,
        "elasticsearch_eql": set(),
        "opensearch_lucene": LUCENE_CASE,
        "sentinel_kql": set(),
        "defender_kql": set(),
        "qradar_aql": set(),
        "crowdstrike_logscale": set(),
        "sentinelone_pq": {"anchor_widened"},
        "grafana_loki": set(),
        "sqlite": set(),
        "duckdb": set(),
    },
    "linux_python_compression_auditd.yml": {
        "splunk": set(),
        "splunk_savedsearches": set(),
        "elasticsearch_lucene": LUCENE_CASE,
        "elasticsearch_esql": ESQL_CASE,
        "elasticsearch_eql": set(),
        "opensearch_lucene": LUCENE_CASE,
        "sentinel_kql": UNAVAILABLE,
        "defender_kql": UNAVAILABLE,
        "qradar_aql": UNAVAILABLE,
        "crowdstrike_logscale": set(),
        "sentinelone_pq": UNAVAILABLE,
        "grafana_loki": set(),
        "sqlite": {"case_sensitive_match"},
        "duckdb": {"case_sensitive_match"},
    },
    "powershell_dotnet_compression.yml": {
        "splunk": set(),
        "splunk_savedsearches": set(),
        "elasticsearch_lucene": LUCENE_CASE,
        "elasticsearch_esql": ESQL_CASE,
        "elasticsearch_eql": set(),
        "opensearch_lucene": LUCENE_CASE,
        "sentinel_kql": set(),
        "defender_kql": set(),
        "qradar_aql": set(),
        "crowdstrike_logscale": set(),
        "sentinelone_pq": {"anchor_widened"},
        "grafana_loki": set(),
        "sqlite": set(),
        "duckdb": set(),
    },
    "python_compression_import.yml": {
        "splunk": set(),
        "splunk_savedsearches": set(),
        "elasticsearch_lucene": LUCENE_CASE,
        "elasticsearch_esql": ESQL_CASE,
        "elasticsearch_eql": set(),
        "opensearch_lucene": LUCENE_CASE,
        "sentinel_kql": set(),
        "defender_kql": set(),
        "qradar_aql": set(),
        "crowdstrike_logscale": set(),
        "sentinelone_pq": {"anchor_widened"},
        "grafana_loki": set(),
        "sqlite": set(),
        "duckdb": set(),
    },
}


def test_shipped_rule_list_complete():
    assert sorted(SHIPPED_WARNINGS) == [path.name for path in SHIPPED_RULES]


@pytest.mark.parametrize("path", SHIPPED_RULES, ids=lambda path: path.name)
def test_shipped_rule_warnings_per_target(path):
    loaded = load_rule(path.read_text())
    found: dict[str, set[str] | None] = {}
    for key, target in render_targets().items():
        conversion = TargetConverter(target).convert(loaded)
        found[key] = codes(conversion) if conversion.succeeded else UNAVAILABLE

    assert found == SHIPPED_WARNINGS[path.name]
