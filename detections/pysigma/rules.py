"""Parsing Sigma rules and the Splunk conversion used to check content."""

import copy
from dataclasses import dataclass, field
from importlib import metadata

import yaml
from sigma.collection import SigmaCollection
from sigma.conditions import ConditionItem, ConditionSelector
from sigma.exceptions import SigmaError
from sigma.rule import SigmaDetections, SigmaRule

from detections.content.yamlio import load_yaml

# Sigma rules are small; anything this large is a mistake or an attack on the parser.
MAX_RULE_BYTES = 256 * 1024


class SigmaRuleError(ValueError):
    """A Sigma rule that cannot be parsed or converted, with the reason."""


@dataclass(frozen=True)
class ParsedRule:
    """The fields of one Sigma rule that the portal stores beside its YAML."""

    rule_id: str
    title: str
    status: str
    level: str
    logsource: dict[str, str]
    tags: list[str]
    falsepositives: list[str]
    messages: list[str] = field(default_factory=list)


def parse_rule(text: str, *, source: str) -> ParsedRule:
    """Parse one Sigma rule document and raise SigmaRuleError if pySigma rejects it."""
    rule = _load_rule(text, source=source)
    if rule.errors:
        reasons = "; ".join(str(error) for error in rule.errors)
        raise SigmaRuleError(f"{source}: invalid Sigma rule: {reasons}")
    _check_conditions(rule, source=source)
    if rule.id is None:
        raise SigmaRuleError(f"{source}: the Sigma rule has no 'id'; add a UUID as its id.")
    logsource = {
        key: value
        for key, value in (
            ("category", rule.logsource.category),
            ("product", rule.logsource.product),
            ("service", rule.logsource.service),
        )
        if value
    }
    return ParsedRule(
        rule_id=str(rule.id),
        title=rule.title,
        status=rule.status.name.lower() if rule.status else "",
        level=rule.level.name.lower() if rule.level else "",
        logsource=logsource,
        tags=[str(tag) for tag in rule.tags],
        falsepositives=[str(item) for item in rule.falsepositives or []],
    )


def convert_to_splunk(text: str, *, source: str, filters: list[dict] | None = None) -> list[str]:
    """Convert a rule to SPL with the Splunk backend, after applying Sigma `filters`.

    Windows rules go through the Sysmon and Splunk Windows pipelines, which add the
    event code and source. Other rules use the backend's field names as written.
    """
    # Imported here: the backend and its pipelines add about 0.2 s to the start of every
    # process that parses rules, such as the import commands, which never convert.
    from sigma.backends.splunk import SplunkBackend
    from sigma.pipelines.splunk import splunk_windows_pipeline
    from sigma.pipelines.sysmon import sysmon_pipeline

    rule = _load_rule(text, source=source)
    if filters:
        from .tuning import apply_filters

        rule = apply_filters(rule, filters)
    pipeline = None
    if rule.logsource.product == "windows":
        pipeline = sysmon_pipeline() + splunk_windows_pipeline()
    collection = SigmaCollection([copy.deepcopy(rule)])
    try:
        return list(SplunkBackend(pipeline).convert(collection))
    except SigmaError as exc:
        raise SigmaRuleError(f"{source}: conversion to Splunk SPL failed: {exc}") from exc


def pysigma_version() -> str:
    return metadata.version("pySigma")


def _check_conditions(rule: SigmaRule, *, source: str) -> None:
    """Parse each condition now; pySigma otherwise defers it to the first conversion."""
    problem = condition_problem(rule.detection)
    if problem:
        raise SigmaRuleError(f"{source}: {problem}")


def condition_problem(detections: SigmaDetections) -> str | None:
    """Parse each condition of a rule's (or filter's) detections and describe the first
    problem, or return None."""
    for condition in detections.parsed_condition:
        try:
            _ = condition.parsed
            tree = condition.parse(postprocess=False)
        except (SigmaError, ValueError, TypeError, AttributeError) as exc:
            # A condition that is not a string, such as `condition: 5`, raises TypeError.
            return f"invalid condition: {exc}"
        except RecursionError:
            return "invalid condition: the condition is nested too deeply"
        problem = _selector_problem(tree, detections)
        if problem:
            return problem
    return None


def _selector_problem(tree: object, detections: SigmaDetections) -> str | None:
    """Describe a `1 of x*` or `all of x*` where no detection identifier matches `x*`.

    pySigma turns such a selector into an empty clause that backends drop, so a typo
    in a filter name would silently remove the filter from the query.
    """
    pending = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, ConditionSelector):
            if not node.resolve_referenced_detections(detections):
                names = ", ".join(detections.detections) or "none"
                return (
                    f"invalid condition: '{node.args[0]} of {node.pattern}' "
                    f"matches no detection identifier (identifiers: {names})"
                )
        elif isinstance(node, ConditionItem):
            pending.extend(node.args)
    return None


def _load_rule(text: str, *, source: str) -> SigmaRule:
    if len(text.encode("utf-8")) > MAX_RULE_BYTES:
        raise SigmaRuleError(
            f"{source}: the rule is larger than {MAX_RULE_BYTES // 1024} KiB; "
            "split it or remove embedded data."
        )
    try:
        document = load_yaml(text)
    except yaml.YAMLError as exc:
        raise SigmaRuleError(f"{source}: invalid YAML: {exc}") from exc
    if not isinstance(document, dict):
        raise SigmaRuleError(f"{source}: a Sigma rule must be a YAML mapping.")
    try:
        return SigmaRule.from_dict(document, collect_errors=True)
    except (SigmaError, ValueError, TypeError, AttributeError) as exc:
        # pySigma 1.5 raises AttributeError for some values of the wrong type, such as
        # `id: 5` or a field name that is not a string. ValueError and TypeError are
        # caught as well, so any other such failure also becomes a message.
        raise SigmaRuleError(f"{source}: invalid Sigma rule: {exc}") from exc
    except RecursionError as exc:
        raise SigmaRuleError(f"{source}: invalid Sigma rule: nested too deeply") from exc
