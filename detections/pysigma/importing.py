"""Parsing the documents of imported Sigma files: rules, correlation rules and filters.

The importer has already read the YAML with its own limits and checks. Here pySigma
checks the document against the Sigma specification, and the fields the portal
stores are taken from pySigma's objects, so dates, tags and levels are normalised
the same way as when the renderer later parses the rule.
"""

import datetime
from dataclasses import dataclass, field

from sigma import exceptions as sigma_exceptions
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError
from sigma.filters import SigmaFilter
from sigma.rule import SigmaRule

from .rules import SigmaRuleError, condition_problem

RULE = "rule"
CORRELATION = "correlation"
FILTER = "filter"

# The value each pySigma error class is about, as a path of keys from the top of the
# document, so the importer can name the line of the problem.
ERROR_PATHS = {
    sigma_exceptions.SigmaTitleError: ("title",),
    sigma_exceptions.SigmaIdentifierError: ("id",),
    sigma_exceptions.SigmaNameError: ("name",),
    sigma_exceptions.SigmaStatusError: ("status",),
    sigma_exceptions.SigmaLevelError: ("level",),
    sigma_exceptions.SigmaDateError: ("date",),
    sigma_exceptions.SigmaModifiedError: ("modified",),
    sigma_exceptions.SigmaAuthorError: ("author",),
    sigma_exceptions.SigmaDescriptionError: ("description",),
    sigma_exceptions.SigmaReferencesError: ("references",),
    sigma_exceptions.SigmaFalsePositivesError: ("falsepositives",),
    sigma_exceptions.SigmaFieldsError: ("fields",),
    sigma_exceptions.SigmaTagError: ("tags",),
    sigma_exceptions.SigmaRelatedError: ("related",),
    sigma_exceptions.SigmaLogsourceError: ("logsource",),
    sigma_exceptions.SigmaDetectionError: ("detection",),
    sigma_exceptions.SigmaConditionError: ("detection", "condition"),
    sigma_exceptions.SigmaModifierError: ("detection",),
    sigma_exceptions.SigmaValueError: ("detection",),
    sigma_exceptions.SigmaCorrelationRuleError: ("correlation",),
    sigma_exceptions.SigmaFilterError: ("filter",),
}


class ImportRuleError(SigmaRuleError):
    """A Sigma document that pySigma rejects; `path` leads to the value concerned, if known."""

    def __init__(self, message: str, path: tuple[str, ...] = ()):
        super().__init__(message)
        self.path = path


@dataclass(frozen=True)
class ImportedRule:
    """The fields the portal stores of one Sigma rule, correlation rule or filter."""

    kind: str
    rule_id: str
    name: str
    title: str
    status: str
    level: str
    description: str
    references: list[str]
    author: str
    date: datetime.date | None
    modified: datetime.date | None
    tags: list[str]
    falsepositives: list[str]
    logsource: dict[str, str]
    # A correlation's `rules` or a filter's `filter.rules`: ids or names as written.
    rule_references: list[str] = field(default_factory=list)


def document_kind(document: dict) -> str:
    """Tell a correlation rule or a filter from a rule by its keys, as pySigma does."""
    if "correlation" in document:
        return CORRELATION
    if "filter" in document:
        return FILTER
    return RULE


def parse_rule_document(document: dict) -> ImportedRule:
    """Parse one Sigma document with pySigma; raise ImportRuleError with the reason."""
    kind = document_kind(document)
    parser = {RULE: SigmaRule, CORRELATION: SigmaCorrelationRule, FILTER: SigmaFilter}[kind]
    try:
        parsed = parser.from_dict(document, collect_errors=True)
    except SigmaError as exc:
        raise ImportRuleError(f"invalid Sigma {kind}: {exc}", _error_path(exc)) from exc
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        # pySigma 1.5 raises AttributeError and TypeError for some values of the wrong
        # type, such as `id: 5` or a detection that is a list.
        raise ImportRuleError(f"invalid Sigma {kind}: {type(exc).__name__}: {exc}") from exc
    except RecursionError as exc:
        raise ImportRuleError(f"invalid Sigma {kind}: nested too deeply", ("detection",)) from exc
    if parsed.errors:
        first = parsed.errors[0]
        reasons = "; ".join(str(error) for error in parsed.errors)
        raise ImportRuleError(f"invalid Sigma {kind}: {reasons}", _error_path(first))
    if parsed.id is None:
        raise ImportRuleError(f"the Sigma {kind} has no 'id'; add a UUID as its id")
    problem = _conditions_problem(parsed, kind)
    if problem:
        raise ImportRuleError(problem, ("filter" if kind == FILTER else "detection", "condition"))
    return ImportedRule(
        kind=kind,
        rule_id=str(parsed.id),
        name=parsed.name or "",
        title=parsed.title,
        status=parsed.status.name.lower() if parsed.status else "",
        level=parsed.level.name.lower() if parsed.level else "",
        description=parsed.description or "",
        references=[str(reference) for reference in parsed.references or []],
        author=parsed.author or "",
        date=_plain_date(parsed.date),
        modified=_plain_date(parsed.modified),
        tags=[str(tag) for tag in parsed.tags],
        falsepositives=[str(item) for item in parsed.falsepositives or []],
        logsource=_logsource(parsed, kind),
        rule_references=_rule_references(parsed, kind),
    )


def _conditions_problem(parsed, kind: str) -> str | None:
    if kind == RULE:
        return condition_problem(parsed.detection)
    if kind == FILTER:
        return condition_problem(parsed.filter)
    return None


def _logsource(parsed, kind: str) -> dict[str, str]:
    if kind == CORRELATION:
        return {}
    source = parsed.logsource
    values = (
        ("category", source.category),
        ("product", source.product),
        ("service", source.service),
    )
    return {key: value for key, value in values if value}


def _rule_references(parsed, kind: str) -> list[str]:
    if kind == CORRELATION:
        if parsed.rules is not None:
            return [reference.reference for reference in parsed.rules]
        return list(parsed.condition.get_referenced_rules())
    if kind == FILTER:
        rules = parsed.filter.rules
        # `rules: any` applies the filter to every rule of its log source.
        return [rules] if isinstance(rules, str) else [reference.reference for reference in rules]
    return []


def _plain_date(value) -> datetime.date | None:
    if isinstance(value, datetime.datetime):
        return value.date()
    return value if isinstance(value, datetime.date) else None


def _error_path(error: BaseException) -> tuple[str, ...]:
    for error_class in type(error).__mro__:
        if error_class in ERROR_PATHS:
            return ERROR_PATHS[error_class]
    return ()
