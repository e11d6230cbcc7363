"""Checking and storing a Sigma rule text edited in the portal or the API.

The text goes through the same checks as an imported file: size, strict YAML,
the portal's own document checks, then pySigma. The stored rule is changed only
when every check passed.
"""

from dataclasses import dataclass

from django.conf import settings

from .importers.sigma_checks import document_problem
from .importers.yamlread import YAMLReadError, read_documents
from .models import SigmaRule
from .pysigma.importing import ImportedRule, ImportRuleError, parse_rule_document


class RuleTextError(ValueError):
    """An edited rule text that cannot be stored; `line` counts from 1 when known."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message if line is None else f"line {line}: {message}")
        self.message = message
        self.line = line


@dataclass(frozen=True)
class CheckedRule:
    text: str
    rule: ImportedRule


def rule_text_check(text: str, *, rule_id: str | None) -> CheckedRule:
    """Check `text` as the new YAML of the rule `rule_id`; raise RuleTextError if it fails.

    With `rule_id` None the id is not compared, as for the preview of a rule that is
    not stored yet.
    """
    size = len(text.encode("utf-8"))
    if size > settings.IMPORT_MAX_FILE_BYTES:
        raise RuleTextError(
            f"the rule has {size} bytes, more than IMPORT_MAX_FILE_BYTES "
            f"({settings.IMPORT_MAX_FILE_BYTES}); shorten it"
        )
    if "\0" in text:
        raise RuleTextError("the rule contains a NUL character; a Sigma rule is text")
    try:
        documents = read_documents(
            text, max_depth=settings.IMPORT_MAX_NESTING, max_items=settings.IMPORT_MAX_VALUES
        )
    except YAMLReadError as exc:
        raise RuleTextError(exc.message, exc.line) from exc
    documents = [document for document in documents if document.value is not None]
    if len(documents) != 1:
        raise RuleTextError(
            f"expected one YAML document, found {len(documents)}; store one rule per text",
            documents[1].line if len(documents) > 1 else None,
        )
    document = documents[0]
    problem = document_problem(document.value, settings.IMPORT_MAX_NESTING)
    if problem is not None:
        raise RuleTextError(problem.message, document.line_of(problem.path))
    try:
        rule = parse_rule_document(document.value)
    except ImportRuleError as exc:
        raise RuleTextError(str(exc), document.line_of(exc.path)) from exc
    _lengths_check(rule, document)
    if rule_id is not None and rule.rule_id != rule_id:
        raise RuleTextError(
            f"the rule's id is {rule.rule_id}, but this is rule {rule_id}; keep the id, "
            "because other rules and renders refer to it",
            document.line_of(("id",)),
        )
    return CheckedRule(text=text, rule=rule)


# Maximum lengths of the SigmaRule title and name columns.
MAX_TITLE_LENGTH = SigmaRule._meta.get_field("title").max_length
MAX_NAME_LENGTH = SigmaRule._meta.get_field("name").max_length


def _lengths_check(rule: ImportedRule, document) -> None:
    """Reject a title or name longer than its column, which the database would refuse."""
    for key, value, maximum in (
        ("title", rule.title, MAX_TITLE_LENGTH),
        ("name", rule.name, MAX_NAME_LENGTH),
    ):
        if len(value) > maximum:
            raise RuleTextError(
                f"the {key} is {len(value)} characters long; the maximum is {maximum}",
                document.line_of((key,)),
            )


def rule_text_store(row: SigmaRule, checked: CheckedRule) -> None:
    """Write a checked text and the fields parsed from it to `row`.

    NOTE: a correlation rule's or filter's `referenced_rules` links are not recomputed
    from the new `rule_references`; the next import_sigma run links them.
    """
    rule = checked.rule
    row.yaml_text = checked.text
    row.kind = rule.kind
    row.name = rule.name
    row.title = rule.title
    row.status = rule.status
    row.level = rule.level
    row.logsource = rule.logsource
    row.tags = rule.tags
    row.falsepositives = rule.falsepositives
    row.rule_references = rule.rule_references
    row.is_valid = True
    row.messages = []
    row.save()
