"""Validation runs on a connected Splunk: send each test's events, search, compare.

Each test's events go through HEC into the test index, marked with a scope made of
the run and test. The detection's authored SPL and the SPL rendered from each Sigma
rule then run with their base search narrowed to that scope. The embedded engine
runs over the same events, so every branch shows the authored SPL's count beside
the Sigma rule's.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from urllib.parse import urlsplit

from detections.models import DetectionTest, Query, ValidationRun
from detections.pysigma import SigmaRuleError, convert_to_splunk
from detections.pysigma.embedded import CompiledRule, engine_versions

from .events import splunk_event
from detections.tuning import detection_macro, tuned_spl

from .runs import TestOutcome, ValidationUnavailable, embedded_outcome
from .tuning import TuningPlan
from .splunk import SplunkClient, SplunkError, SplunkNotConfigured, scope_query

logger = logging.getLogger(__name__)

# Faults after which no other search of the run can succeed.
RUN_FAULTS = {"auth", "forbidden", "unreachable", "hec_rejected", "timeout", "server", "bad_response"}


def splunk_client() -> SplunkClient:
    """Return a client from the settings, or raise ValidationUnavailable naming the missing one."""
    try:
        return SplunkClient.from_settings()
    except SplunkNotConfigured as exc:
        raise ValidationUnavailable(str(exc)) from None


def splunk_target() -> str:
    """Return the host of the configured Splunk, the target recorded on its runs."""
    from django.conf import settings

    if not settings.SPLUNK_URL:
        splunk_client()  # raises with the name of the missing setting
    return f"splunk:{urlsplit(settings.SPLUNK_URL).netloc}"


@dataclass(frozen=True)
class AuthoredSearch:
    """An authored SPL query as it runs: raw, or tuned with the filter macro expanded."""

    query: Query
    name: str
    text: str
    raw: bool = False


def splunk_execute(
    run: ValidationRun,
    tests: list[DetectionTest],
    rules: list[CompiledRule],
    plan: TuningPlan | None = None,
) -> tuple[list[TestOutcome], list[dict], dict]:
    """Run every test of the run on Splunk; raise ValidationUnavailable on a run-wide fault.

    With active tuning entries, each authored query runs twice: as written, for the raw
    outcome, and with the filter macro's definition in place of the macro call, because
    the test Splunk need not have the macro. The SPL rendered from the Sigma rules
    has the entries' Sigma filters applied.
    """
    client = splunk_client()
    authored = _authored_searches(run, plan)
    rendered = _rendered_queries(run, plan)
    queries = [
        {"name": search.name, "language": "spl", "text": search.text, "tuned": not search.raw}
        for search in authored
    ] + [
        {"name": name, "rule_id": rule_id, "language": "spl", "text": text, "error": error}
        for name, rule_id, text, error in rendered
    ]
    outcomes = []
    try:
        for test in tests:
            outcomes.append(_test_outcome(client, run, test, authored, rendered, rules, plan))
    except SplunkError as exc:
        raise ValidationUnavailable(f"Splunk {exc.kind} error: {exc}") from None
    versions = engine_versions() | {"splunk": client.index}
    return outcomes, queries, versions


def _authored_searches(run: ValidationRun, plan: TuningPlan | None) -> list[AuthoredSearch]:
    queries = [query for query in run.detection.queries.all() if query.language.upper() == "SPL"]
    if plan is None:
        return [
            AuthoredSearch(query, f"Authored {query.platform} query", query.text)
            for query in queries
        ]
    macro = detection_macro(run.detection, plan.entries)
    searches = []
    for query in queries:
        name = f"Authored {query.platform} query"
        searches.append(AuthoredSearch(query, f"{name} without tuning", query.text, raw=True))
        tuned = tuned_spl(query, macro, expand=True)
        searches.append(AuthoredSearch(query, f"{name} with tuning", tuned))
    return searches


def _rendered_queries(
    run: ValidationRun, plan: TuningPlan | None
) -> list[tuple[str, str, str, str]]:
    rendered = []
    filters = plan.filters if plan is not None else {}
    for rule in run.detection.sigma_rules.all():
        try:
            texts = convert_to_splunk(
                rule.yaml_text, source=rule.filename, filters=filters.get(str(rule.rule_id))
            )
        except SigmaRuleError as exc:
            rendered.append((rule.title, str(rule.rule_id), "", str(exc)))
            continue
        rendered.append((rule.title, str(rule.rule_id), "\n".join(texts), ""))
    return rendered


def _test_outcome(
    client: SplunkClient,
    run: ValidationRun,
    test: DetectionTest,
    authored: list[AuthoredSearch],
    rendered: list[tuple[str, str, str, str]],
    rules: list[CompiledRule],
    plan: TuningPlan | None,
) -> TestOutcome:
    if not test.recorded_events:
        return TestOutcome(test, [], [], error="The test has no recorded events.")
    scope = f"run{run.pk}-test{test.position}"
    client.send_events([splunk_event(event) for event in test.recorded_events], scope)
    client.wait_until_searchable(scope, len(test.recorded_events))

    details: list[dict] = []
    errors: list[str] = []
    authored_rows = None
    raw_rows = None
    for search in authored:
        detail = _search(client, scope, search.name, search.text, errors)
        rows = detail.pop("rows", [])
        if search.query.branch_field:
            field_name = search.query.branch_field
            detail["branches"] = dict(Counter(str(row.get(field_name, "")) for row in rows))
        detail["tuned"] = not search.raw
        details.append(detail)
        if "error" in detail:
            continue
        if search.raw:
            raw_rows = (raw_rows or 0) + len(rows)
        else:
            authored_rows = (authored_rows or 0) + len(rows)

    raw_matches: set[str] = set()
    for name, rule_id, text, error in rendered:
        if error:
            details.append({"engine": "splunk", "name": name, "rule_id": rule_id, "error": error})
            continue
        detail = _search(client, scope, name, text, errors)
        rows = detail.pop("rows", [])
        detail["rule_id"] = rule_id
        raw_matches |= {str(row.get("_raw", index)) for index, row in enumerate(rows)}
        details.append(detail)

    embedded = embedded_outcome(test, rules, plan)
    details.extend(embedded.details)
    queries = list(dict.fromkeys(search.query for search in authored))
    details.append({"engine": "comparison", "branches": _comparison(details, queries)})
    # The authored SPL is the detection as it runs in Splunk; without one, the
    # rendered rules' distinct events count.
    count = authored_rows if authored_rows is not None else len(raw_matches)
    if plan is None:
        return TestOutcome(test, list(range(count)), details, error="\n".join(errors))
    raw_count = raw_rows if raw_rows is not None else count
    problem = embedded.tuning_problem
    if not problem and raw_count > count:
        problem = _splunk_tuning_problem(test, raw_count, count)
    return TestOutcome(
        test,
        list(range(count)),
        details,
        error="\n".join(errors + ([embedded.error] if embedded.error else [])),
        raw_matched_events=list(range(raw_count)),
        tuning=embedded.tuning,
        tuning_problem=problem,
    )


def _splunk_tuning_problem(test: DetectionTest, raw_count: int, count: int) -> str:
    """Describe rows that the filter macro removed from an attack test, or return ""."""
    if test.expect != DetectionTest.Expectation.FIRES or test.known_false_positive:
        return ""
    return (
        f"the filter macro removed {raw_count - count} of {raw_count} rows of this attack "
        "test in Splunk; narrow the tuning entries"
    )


def _search(client: SplunkClient, scope: str, name: str, text: str, errors: list[str]) -> dict:
    scoped = scope_query(text, index=client.index, scope=scope)
    detail = {"engine": "splunk", "name": name, "text": scoped}
    try:
        rows = client.search(scoped)
    except SplunkError as exc:
        if exc.kind in RUN_FAULTS:
            raise
        detail["error"] = f"Splunk {exc.kind} error: {exc}"
        errors.append(f"{name}: {detail['error']}")
        return detail
    detail["rows"] = rows
    detail["matches"] = len(rows)
    return detail


def _comparison(details: list[dict], authored: list[Query]) -> list[dict]:
    """Set the authored SPL's rows per branch beside the embedded Sigma rule's matches."""
    spl_counts: Counter = Counter()
    for detail in details:
        if detail.get("tuned", True):
            spl_counts.update(detail.get("branches") or {})
    rows = []
    for query in authored:
        for branch in query.branches.all():
            sigma_matches = None
            if branch.sigma_rule_id:
                for detail in details:
                    if detail.get("engine") == "embedded" and detail.get("rule_id") == str(
                        branch.sigma_rule.rule_id
                    ):
                        # With tuning, the tuned SPL is compared with the filtered rule.
                        events = detail.get("tuned_matched_events", detail.get("matched_events"))
                        sigma_matches = len(events or [])
            spl = spl_counts.get(branch.name, 0)
            rows.append(
                {
                    "branch": branch.name,
                    "spl": spl,
                    "sigma": sigma_matches,
                    "agree": sigma_matches is not None and sigma_matches == spl,
                }
            )
    return rows
