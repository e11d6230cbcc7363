"""A converter reused across rules gives each rule the query a fresh converter gives."""

import pytest

from detections.pysigma.convert import TargetConverter, load_rule, render_targets
from tests.conftest import CONTENT_DIR, SEED_SLUG

# Rules that fail on some targets come first, so leftover error state would show in
# the rules after them.
FAILING_RULES = [
    """
title: Web request with an unusual query field
id: 0b8a3f8e-7d3c-4f7e-9d3f-3b1f0e6a2c01
logsource:
    category: webserver
detection:
    selection:
        cs-uri-query|contains: '/etc/passwd'
    condition: selection
""",
    """
title: Security event with a field no mapping knows
id: 0b8a3f8e-7d3c-4f7e-9d3f-3b1f0e6a2c02
logsource:
    product: windows
    service: security
detection:
    selection:
        EventID: 5157
        SubStatus: '0xc0000064'
    condition: selection
""",
]


def rule_texts() -> list[str]:
    folder = CONTENT_DIR / "detections" / SEED_SLUG / "sigma"
    shipped = [path.read_text(encoding="utf-8") for path in sorted(folder.glob("*.yml"))]
    return FAILING_RULES + shipped + FAILING_RULES[::-1] + shipped


@pytest.mark.parametrize("key", sorted(render_targets()))
def test_reused_converter_matches_fresh(key):
    target = render_targets()[key]
    reused = TargetConverter(target)

    for text in rule_texts():
        rule = load_rule(text)
        fresh = TargetConverter(target).convert(rule)
        again = reused.convert(rule)
        assert again.query == fresh.query
        assert again.error == fresh.error


@pytest.mark.parametrize("key", sorted(render_targets()))
def test_kept_pipeline_matches_per_call_pipeline(key):
    target = render_targets()[key]
    kept = TargetConverter(target)
    per_call = TargetConverter(target)
    # Without the instance attribute, pySigma's own method joins the pipelines per call.
    vars(per_call.backend).pop("init_processing_pipeline", None)

    for text in rule_texts():
        rule = load_rule(text)
        expected = per_call.convert(rule)
        actual = kept.convert(rule)
        assert actual.query == expected.query
        assert actual.error == expected.error
        assert actual.warnings == expected.warnings


def test_loaded_rule_copy_is_independent():
    loaded = load_rule(rule_texts()[2])

    first = loaded.copy()
    first.title = "changed"
    first.detection.detections.clear()
    second = loaded.copy()

    assert first is not loaded.rule
    assert loaded.rule.title != "changed"
    assert second.title == loaded.rule.title
    assert second.detection.detections.keys() == loaded.rule.detection.detections.keys()
    assert second.to_dict() == loaded.rule.to_dict()
