"""Adding, changing and deleting tuning entries from the edit pages and the API.

Both check an entry with `entry_field_problems` before `editing.edit` locks the
detection, so an invalid entry changes nothing. The writes run inside `editing.edit`,
which raises the detection's revision. Once committed, the TuningEntry signal queues
the renders and `entry_write` or `entry_delete` queues a validation run of the
authored tests.
"""

from __future__ import annotations

import yaml

from .importers.yamlread import YAMLDocument, YAMLReadError, read_documents
from .models import Detection, DetectionTest, TuningEntry
from .tuning import entry_problems
from .validation.runs import validation_request

# The fields an editor sets. `spl`, `position` and the bookkeeping fields are derived.
ENTRY_FIELDS = ("condition", "rules", "branches", "reason", "owner", "expires", "ticket", "enabled")


# Limits of a condition's YAML: a mapping of lists of values needs depth 2.
MAX_CONDITION_DEPTH = 3
MAX_CONDITION_ITEMS = 1000


class ConditionSyntaxError(ValueError):
    """A condition text that is not YAML; `line` counts from 1 when known."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message if line is None else f"line {line}: {message}")
        self.message = message
        self.line = line


def condition_document(text: str) -> YAMLDocument:
    """Parse the YAML text of a condition with PyYAML's safe loader and the importers' limits.

    Returns the document with the line of each key. Its value is whatever the text
    contains: `entry_field_problems` then rejects anything but a mapping of
    `Field|modifier` to values. Raises ConditionSyntaxError for text that is not YAML,
    that uses anchors or aliases, or that contains several documents.
    """
    try:
        documents = read_documents(
            text, max_depth=MAX_CONDITION_DEPTH, max_items=MAX_CONDITION_ITEMS
        )
    except YAMLReadError as exc:
        raise ConditionSyntaxError(exc.message, exc.line) from exc
    if len(documents) > 1:
        raise ConditionSyntaxError(
            "the condition contains several YAML documents; remove the '---' separators",
            documents[1].line,
        )
    if not documents:
        return YAMLDocument(value=None, text=text, line=1)
    return documents[0]


def condition_from_yaml(text: str):
    """Return the value of a condition's YAML text; see `condition_document`."""
    return condition_document(text).value


def condition_problem_line(document: YAMLDocument, message: str) -> int | None:
    """Return the line of the condition key that a pySigma or model message names."""
    if not isinstance(document.value, dict):
        return document.line
    for key in document.value:
        if message.startswith(f"{key}:") or repr(key) in message:
            return document.line_of((key,))
    return None


def condition_to_yaml(condition) -> str:
    """Write a stored condition as the YAML text the edit form shows."""
    return yaml.safe_dump(condition, sort_keys=False, allow_unicode=True, default_flow_style=False)


def entry_field_problems(detection: Detection, values: dict) -> dict[str, list[str]]:
    """Check an entry with `values` as the model would save it, by field name.

    Runs the model's checks (pySigma for the condition, the rule ids and branch names
    of `detection`, reason and owner). Returns an empty mapping for a valid entry.
    """
    candidate = TuningEntry(detection=detection, **values)
    problems: dict[str, list[str]] = {}
    for problem in entry_problems(candidate):
        name, _, message = problem.partition(": ")
        if name not in ENTRY_FIELDS:
            name, message = "condition", problem
        problems.setdefault(name, []).append(message)
    return problems


def entry_write(
    locked: Detection, entry: TuningEntry | None, values: dict, *, user, trigger: str
) -> TuningEntry:
    """Create an entry of `locked` (when `entry` is None) or change one, inside editing.edit.

    Raises TuningEntry.DoesNotExist when `entry` was deleted since it was read.
    """
    if entry is None:
        row = TuningEntry(detection=locked, created_by=_user_or_none(user))
    else:
        row = locked.tuning_entries.get(pk=entry.pk)
    for name, value in values.items():
        setattr(row, name, value)
    row.save()
    _validate_after_commit(locked, user, trigger)
    return row


def entry_delete(locked: Detection, entry: TuningEntry, *, user, trigger: str) -> None:
    """Delete an entry of `locked` inside editing.edit; the signal queues the renders."""
    locked.tuning_entries.get(pk=entry.pk).delete()
    _validate_after_commit(locked, user, trigger)


def entry_label(entry: TuningEntry) -> str:
    """Name an entry in history comments and messages: its owner and first condition key."""
    first_key = next(iter(entry.condition), "") if isinstance(entry.condition, dict) else ""
    return f"{first_key} ({entry.owner})" if first_key else f"owned by {entry.owner}"


def _validate_after_commit(detection: Detection, user, trigger: str) -> None:
    """Queue a validation run of the authored tests, sent to a worker once committed."""
    if detection.tests.filter(origin=DetectionTest.Origin.AUTHORED).exists():
        validation_request(detection, trigger=trigger, user=user)


def _user_or_none(user):
    return user if user is not None and user.is_authenticated else None
