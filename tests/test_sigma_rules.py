import pytest

from detections.pysigma import SigmaRuleError, convert_to_splunk, parse_rule

from .conftest import CONTENT_DIR, SEED_SLUG
from .seed_facts import BRANCHES

SIGMA_FILES = sorted((CONTENT_DIR / "detections" / SEED_SLUG / "sigma").glob("*.yml"))


def test_seed_has_one_rule_per_branch_and_linux_rule():
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
