"""Checking a Sigma rule edited in the browser before it replaces the stored one.

An edited rule goes through the same checks as an imported file. The YAML is read
safely with the IMPORT_MAX_* limits and the line of every key. The document checks
reject values that are harmful later, such as field names a backend writes unquoted
into a query. Then pySigma parses the document. Each problem names the line of the
value concerned where it is known, so the edit form can show it there.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.conf import settings

from detections.importers.sigma_checks import document_problem
from detections.importers.yamlread import YAMLDocument, YAMLReadError, read_documents
from detections.models import SigmaRule
from detections.pysigma.rules import MAX_RULE_BYTES

# Maximum lengths of the SigmaRule title and name columns.
MAX_TITLE_LENGTH = SigmaRule._meta.get_field("title").max_length
MAX_NAME_LENGTH = SigmaRule._meta.get_field("name").max_length


class RuleTextError(ValueError):
    """An edited rule that cannot be stored; `line` counts from 1 and is None when unknown."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.line = line

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


@dataclass(frozen=True)
class CheckedRule:
    """An edited rule that passed every check, with the fields the portal stores."""

    text: str
    kind: str
    rule_id: str
    name: str
    title: str
    status: str
    level: str
    logsource: dict[str, str]
    tags: list[str]
    falsepositives: list[str]
    rule_references: list[str]


def rule_text_check(text: str, *, stored: SigmaRule | None = None) -> CheckedRule:
    """Check an edited rule; raise RuleTextError naming the line of the first problem.

    With `stored`, the rule must keep the stored rule's id and kind, because renders,
    correlations and filters refer to the rule by its id.
    """
    # Imported here: pySigma takes about 0.4 s to import, which pages without an
    # edit form do not need.
    from detections.pysigma.importing import ImportRuleError, parse_rule_document

    document = _single_document(text)
    problem = document_problem(document.value, settings.IMPORT_MAX_NESTING)
    if problem is not None:
        raise RuleTextError(problem.message, document.line_of(problem.path))
    try:
        parsed = parse_rule_document(document.value)
    except ImportRuleError as exc:
        raise RuleTextError(str(exc), document.line_of(exc.path)) from exc
    if len(parsed.title) > MAX_TITLE_LENGTH:
        raise RuleTextError(
            f"the title is {len(parsed.title)} characters long; the maximum is {MAX_TITLE_LENGTH}",
            document.line_of(("title",)),
        )
    if len(parsed.name) > MAX_NAME_LENGTH:
        raise RuleTextError(
            f"the name is {len(parsed.name)} characters long; the maximum is {MAX_NAME_LENGTH}",
            document.line_of(("name",)),
        )
    if stored is not None:
        _identity_check(parsed, stored, document)
    return CheckedRule(
        text=text,
        kind=parsed.kind,
        rule_id=parsed.rule_id,
        name=parsed.name,
        title=parsed.title,
        status=parsed.status,
        level=parsed.level,
        logsource=parsed.logsource,
        tags=parsed.tags,
        falsepositives=parsed.falsepositives,
        rule_references=parsed.rule_references,
    )


def rule_apply(rule: SigmaRule, checked: CheckedRule) -> None:
    """Copy a checked rule's text and parsed fields onto the row, and save it."""
    rule.yaml_text = checked.text
    rule.name = checked.name
    rule.title = checked.title
    rule.status = checked.status
    rule.level = checked.level
    rule.logsource = checked.logsource
    rule.tags = checked.tags
    rule.falsepositives = checked.falsepositives
    rule.rule_references = checked.rule_references
    rule.is_valid = True
    rule.messages = []
    rule.save()


def _single_document(text: str) -> YAMLDocument:
    size = len(text.encode("utf-8"))
    if size > MAX_RULE_BYTES:
        raise RuleTextError(
            f"the rule is {size} bytes long; the maximum is {MAX_RULE_BYTES} bytes. "
            "Split it or remove embedded data."
        )
    if "\0" in text:
        line = text.count("\n", 0, text.index("\0")) + 1
        raise RuleTextError("the rule contains a NUL character; remove it", line)
    try:
        documents = read_documents(
            text, max_depth=settings.IMPORT_MAX_NESTING, max_items=settings.IMPORT_MAX_VALUES
        )
    except YAMLReadError as exc:
        raise RuleTextError(exc.message, exc.line) from exc
    documents = [document for document in documents if document.value is not None]
    if not documents:
        raise RuleTextError("the rule is empty; a Sigma rule is a YAML mapping", 1)
    if len(documents) > 1:
        raise RuleTextError(
            f"the text has {len(documents)} YAML documents; a rule form takes one rule. "
            "Remove the `---` separators and the other rules.",
            documents[1].line,
        )
    return documents[0]


def _identity_check(parsed, stored: SigmaRule, document: YAMLDocument) -> None:
    if uuid.UUID(parsed.rule_id) != stored.rule_id:
        raise RuleTextError(
            f"the id changed from {stored.rule_id} to {parsed.rule_id}; keep the rule's id, "
            "because renders, correlations and filters refer to it",
            document.line_of(("id",)),
        )
    if parsed.kind != stored.kind:
        raise RuleTextError(
            f"the document is a Sigma {parsed.kind}, but this is a {stored.kind}; "
            f"edit it as a {stored.kind}",
            document.line,
        )
