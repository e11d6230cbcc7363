import pytest

from detections.pysigma import SigmaRuleError, convert_to_splunk, parse_rule
from detections.pysigma.convert import load_rule

from .conftest import CONTENT_DIR, SEED_SLUG
from .seed_facts import BRANCHES

SIGMA_FILES = sorted((CONTENT_DIR / "detections" / SEED_SLUG / "sigma").glob("*.yml"))


def test_seed_rule_count():
    assert len(SIGMA_FILES) == len(BRANCHES) + 1


@pytest.mark.parametrize("path", SIGMA_FILES, ids=lambda path: path.name)
def test_sigma_rule_parses_without_errors(path):
    parsed = parse_rule(path.read_text(), source=path.name)

    assert parsed.level == "medium"
    assert "attack.t1560.002" in parsed.tags
    assert "attack.collection" in parsed.tags
    assert parsed.falsepositives


@pytest.mark.parametrize("path", SIGMA_FILES, ids=lambda path: path.name)
def test_sigma_rule_converts_with_splunk_backend(path):
    queries = convert_to_splunk(path.read_text(), source=path.name)

    assert len(queries) == 1
    assert queries[0].strip()


def test_windows_rules_convert_to_sysmon_event_codes():
    codes = set()
    for path in SIGMA_FILES:
        query = convert_to_splunk(path.read_text(), source=path.name)[0]
        codes |= {code for code in (1, 7, 11) if f"EventCode={code} " in query}

    assert codes == {1, 7, 11}


def test_parse_rule_rejects_rule_without_detection():
    text = (
        "title: Broken\nid: 5f0e8a55-1b1e-4d3e-9a43-0d3b3f8f6d11\nlogsource:\n  product: windows\n"
    )

    with pytest.raises(SigmaRuleError, match="broken.yml: invalid Sigma rule"):
        parse_rule(text, source="broken.yml")


def test_parse_rule_rejects_multiple_documents():
    with pytest.raises(SigmaRuleError, match="invalid YAML"):
        parse_rule("title: a\n---\ntitle: b\n", source="two.yml")


RULE_TEXT = (
    CONTENT_DIR / "detections" / SEED_SLUG / "sigma" / "compression_dll_load.yml"
).read_text()


def replaced(old: str, new: str) -> str:
    assert old in RULE_TEXT
    return RULE_TEXT.replace(old, new, 1)


CONDITION = "condition: selection and not 1 of filter_main_*"

# Each case is a rule text that parse_rule must reject, and the message it must give.
INVALID_RULE_CASES = {
    "one_of_pattern_matches_nothing": (
        replaced(CONDITION, "condition: selection and not 1 of filter_mian_*"),
        "rule.yml: invalid condition: '1 of filter_mian_*' matches no detection identifier "
        "(identifiers: selection, filter_main_archivers, filter_main_system_folders)",
    ),
    "all_of_pattern_matches_nothing": (
        replaced(CONDITION, "condition: all of selections* and not 1 of filter_main_*"),
        "rule.yml: invalid condition: 'all of selections*' matches no detection identifier",
    ),
    "pattern_in_second_condition": (
        replaced(CONDITION, "condition:\n        - selection\n        - 1 of nothing_*"),
        "rule.yml: invalid condition: '1 of nothing_*' matches no detection identifier",
    ),
    "date_out_of_range": (
        replaced("date: 2026-12-04", "date: 2026-99-99"),
        "rule.yml: invalid YAML: invalid value '2026-99-99': month must be in 1..12",
    ),
    "condition_not_string": (
        replaced(CONDITION, "condition: 5"),
        "rule.yml: invalid condition: argument of type 'int' is not iterable",
    ),
    "id_not_string": (
        replaced("id: 760a8c60-5f71-4805-ada6-afde0a1bd1af", "id: 5"),
        "rule.yml: invalid Sigma rule: 'int' object has no attribute 'replace'",
    ),
    "condition_nested_too_deeply": (
        replaced(CONDITION, "condition: " + "not " * 10_000 + "selection"),
        "rule.yml: invalid condition: the condition is nested too deeply",
    ),
    "yaml_nested_too_deeply": (
        RULE_TEXT + "extra: " + "[" * 10_000 + "]" * 10_000 + "\n",
        "rule.yml: invalid YAML: the document is nested too deeply",
    ),
    "alias": (
        replaced("    selection:\n", "    selection: &selection\n") + "extra: *selection\n",
        "rule.yml: invalid YAML: YAML anchors are not allowed (found &selection)",
    ),
    "alias_without_anchor": (
        RULE_TEXT + "extra: *selection\n",
        "rule.yml: invalid YAML: YAML aliases are not allowed (found *selection)",
    ),
    "duplicate_key": (
        RULE_TEXT + "level: high\n",
        "rule.yml: invalid YAML: while constructing a mapping",
    ),
}


@pytest.mark.parametrize("case", sorted(INVALID_RULE_CASES))
def test_parse_rule_rejects_invalid_rule(case):
    text, expected = INVALID_RULE_CASES[case]

    with pytest.raises(SigmaRuleError) as error:
        parse_rule(text, source="rule.yml")

    assert expected in str(error.value)


def test_parse_rule_names_duplicate_key():
    with pytest.raises(SigmaRuleError, match="duplicate key 'level'"):
        parse_rule(RULE_TEXT + "level: high\n", source="rule.yml")


def test_parse_rule_accepts_matching_patterns():
    text = replaced(CONDITION, "condition: all of sel* and not 1 of filter_main_*")

    parsed = parse_rule(text, source="rule.yml")

    assert parsed.rule_id == "760a8c60-5f71-4805-ada6-afde0a1bd1af"


def test_render_load_rule_rejects_alias():
    text = replaced("    selection:\n", "    selection: &selection\n") + "extra: *selection\n"

    with pytest.raises(ValueError, match="YAML anchors are not allowed"):
        load_rule(text)
