"""Parsing Sigma rules and the Splunk conversion used to check content."""

import copy
from dataclasses import dataclass, field
from importlib import metadata

import yaml
from sigma.backends.splunk import SplunkBackend
from sigma.collection import SigmaCollection
from sigma.exceptions import SigmaError
from sigma.pipelines.splunk import splunk_windows_pipeline
from sigma.pipelines.sysmon import sysmon_pipeline
from sigma.rule import SigmaRule

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


def convert_to_splunk(text: str, *, source: str) -> list[str]:
    """Convert a rule to SPL with the Splunk backend.

    Windows rules go through the Sysmon and Splunk Windows pipelines, which add the
    event code and source; other rules use the backend's field names as written.
    """
    rule = _load_rule(text, source=source)
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
    for condition in rule.detection.parsed_condition:
        try:
            _ = condition.parsed
        except SigmaError as exc:
            raise SigmaRuleError(f"{source}: invalid condition: {exc}") from exc


def _load_rule(text: str, *, source: str) -> SigmaRule:
    if len(text.encode("utf-8")) > MAX_RULE_BYTES:
        raise SigmaRuleError(
            f"{source}: the rule is larger than {MAX_RULE_BYTES // 1024} KiB; "
            "split it or remove embedded data."
        )
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SigmaRuleError(f"{source}: invalid YAML: {exc}") from exc
    if not isinstance(document, dict):
        raise SigmaRuleError(f"{source}: a Sigma rule must be a YAML mapping.")
    try:
        return SigmaRule.from_dict(document, collect_errors=True)
    except SigmaError as exc:
        raise SigmaRuleError(f"{source}: invalid Sigma rule: {exc}") from exc
