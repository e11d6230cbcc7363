"""Sigma forms of playbook queries, run over the recorded events of the linked tests.

A query's Sigma form should find the attack that its playbook responds to. Each form
runs with the embedded validation engine over the recorded events of every test of the
playbook's linked detections. A test counts as an attack test when it expects the
detection to fire and is not a known false positive. Known false positives and tests
that expect silence count as benign tests.

Checks are computed on request and not stored with validation runs. A check depends
only on the stored Sigma text and the stored recorded events, so computing it when a
page or the API reads it can never show a stale result. Stored results would need
invalidating whenever a playbook or a detection's tests are loaded. A playbook also
links several detections and changes independently of their validation runs. The cost
is small: for the shipped playbook (4 rules over the 286 events of 16 tests) a check
took about 20 ms, and about 45 ms on the first request, which compiles the rules. Those
figures were measured with pytest in the development container (2-core AMD EPYC).
Compiled rules are cached by their text.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache

from detections.models import Detection, DetectionTest
from detections.pysigma.embedded import CompiledRule, compile_rule
from detections.validation.embedded import run_rules
from detections.validation.events import event_source, logsource_matches

from .models import Playbook, PlaybookQuery, PlaybookSigmaRule


@dataclass(frozen=True)
class TestHit:
    """A test with at least one recorded event that a Sigma form matched."""

    __test__ = False  # Not a pytest test class, despite the name.

    detection: str
    number: int
    name: str
    matched_events: int


@dataclass
class TestGroup:
    """The attack or the benign tests, and which of them a Sigma form matched."""

    # Tests with recorded events.
    tests: int = 0
    # Tests with at least one event of the rule's log source.
    read: int = 0
    hits: list[TestHit] = field(default_factory=list)

    @property
    def hit(self) -> int:
        return len(self.hits)


@dataclass
class SigmaCheck:
    """The result of one Sigma form over the recorded events of the linked tests."""

    rule_id: str
    title: str
    # The rule's Sigma logsource: product, service and category where set.
    logsource: dict[str, str] = field(default_factory=dict)
    attack: TestGroup = field(default_factory=TestGroup)
    benign: TestGroup = field(default_factory=TestGroup)
    errors: list[str] = field(default_factory=list)
    # Linked tests without recorded events, which the check cannot use.
    without_events: int = 0

    @property
    def logsource_label(self) -> str:
        keys = ("product", "service", "category")
        parts = [self.logsource[key] for key in keys if key in self.logsource]
        return "/".join(parts) or "none"

    @property
    def status(self) -> str:
        if self.errors:
            return "error"
        if self.attack.tests == 0:
            return "no_attack_tests"
        if self.attack.hit == 0:
            return "misses_attack"
        return "finds_attack"

    @property
    def label(self) -> str:
        return STATUS_LABELS[self.status]


STATUS_LABELS = {
    "error": "Engine error",
    "no_attack_tests": "No attack test to check against",
    "misses_attack": "Finds nothing on the attack's own events",
    "finds_attack": "Finds the attack",
}


def is_attack_test(test: DetectionTest) -> bool:
    """Return whether a test records the attack: it expects a match and is no false positive."""
    return test.expect == DetectionTest.Expectation.FIRES and not test.known_false_positive


def playbook_sigma_checks(playbook: Playbook) -> dict[int, SigmaCheck]:
    """Run the Sigma form of each query of `playbook` over its linked detections' tests.

    The linked detections are those of `playbook.links.all()`, so a playbook fetched with
    the selectors is checked only against detections the requesting user may read.
    Returns the checks by PlaybookQuery id. Queries without a Sigma form are absent, and
    queries that share a Sigma file share one check.
    """
    rules = _sigma_rules(playbook)
    if not rules:
        return {}
    detections = [link.detection for link in playbook.links.all()]
    tests = _tests_of(detections)
    compiled = {
        rule.pk: _compiled(rule.yaml_text, f"{playbook.slug}/{rule.filename}")
        for rule in rules.values()
    }
    checks = _run_checks(compiled, tests)
    return {
        query.pk: checks[query.sigma_rule_id]
        for query in _queries_of(playbook)
        if query.sigma_rule_id is not None
    }


def _queries_of(playbook: Playbook) -> list[PlaybookQuery]:
    queries = []
    for owners in (playbook.steps.all(), playbook.questions.all(), playbook.hunts.all()):
        for owner in owners:
            queries.extend(owner.queries.all())
    return queries


def _sigma_rules(playbook: Playbook) -> dict[int, PlaybookSigmaRule]:
    return {
        query.sigma_rule_id: query.sigma_rule
        for query in _queries_of(playbook)
        if query.sigma_rule_id is not None
    }


def _tests_of(detections: list[Detection]) -> list[DetectionTest]:
    order = {detection.pk: position for position, detection in enumerate(detections)}
    tests = DetectionTest.objects.filter(detection__in=detections).select_related("detection")
    return sorted(tests, key=lambda test: (order[test.detection_id], test.position))


@lru_cache(maxsize=256)
def _compiled(text: str, source: str) -> CompiledRule:
    # CompiledRule is frozen, so one compiled rule can serve every request.
    return compile_rule(text, source=source)


def _run_checks(
    compiled: dict[int, CompiledRule], tests: list[DetectionTest]
) -> dict[int, SigmaCheck]:
    """Run every rule once over the events of all tests, then split the matches by test.

    Sigma rules match single events, so running them over the events of all tests at
    once gives the same matches as one run per test, with one table per log source.
    """
    checks = {
        key: SigmaCheck(rule.rule_id, rule.title, dict(rule.logsource))
        for key, rule in compiled.items()
    }
    recorded = [test for test in tests if test.recorded_events]
    events: list[dict] = []
    owners: list[int] = []
    for position, test in enumerate(recorded):
        events.extend(test.recorded_events)
        owners.extend([position] * len(test.recorded_events))
    sources = [{event_source(event) for event in test.recorded_events} for test in recorded]

    keys = list(compiled)
    result = run_rules([compiled[key] for key in keys], events)
    for key, outcome in zip(keys, result.rules, strict=True):
        check = checks[key]
        rule = compiled[key]
        check.errors = list(outcome.errors)
        check.without_events = len(tests) - len(recorded)
        matches = Counter(owners[index] for index in outcome.matched)
        for position, test in enumerate(recorded):
            group = check.attack if is_attack_test(test) else check.benign
            group.tests += 1
            if rule.error is None and any(
                logsource_matches(rule.logsource, source) for source in sources[position]
            ):
                group.read += 1
            if matches[position]:
                hit = TestHit(test.detection.slug, test.position + 1, test.name, matches[position])
                group.hits.append(hit)
    return checks
