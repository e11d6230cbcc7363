"""Edit forms of the detection page.

Every edit form carries the revision of the detection it was loaded from and a
change comment. The view passes the revision to `editing.edit`, which rejects the
save with EditConflict when someone else stored a change in the meantime.
"""

from django import forms
from django.core.exceptions import ValidationError

from .models import Detection, DetectionTest, SigmaRule
from .rule_edit import CheckedRule, RuleTextError, rule_text_check
from .tuning_edit import (
    ConditionSyntaxError,
    condition_document,
    condition_problem_line,
    condition_to_yaml,
    entry_field_problems,
)

MAX_COMMENT_LENGTH = 500
# Lines shown before and after the line of a YAML error (Sigma rule or tuning condition).
ERROR_CONTEXT_LINES = 3


class TextField(forms.CharField):
    """A multi-line text field that stores line breaks as LF, as browsers send CRLF."""

    def __init__(self, *, rows: int = 6, **kwargs):
        kwargs.setdefault("strip", False)
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": rows}))
        super().__init__(**kwargs)

    def to_python(self, value):
        text = super().to_python(value)
        return text.replace("\r\n", "\n") if text else text


class RevisionForm(forms.Form):
    """The fields every edit form shares: the starting revision and the change comment."""

    revision = forms.IntegerField(min_value=0, widget=forms.HiddenInput)
    comment = forms.CharField(
        max_length=MAX_COMMENT_LENGTH,
        required=False,
        label="Change comment",
        help_text="Why you made the change; shown on the history page.",
    )


class OverviewForm(RevisionForm):
    description = TextField(rows=8, help_text="Markdown.")
    summary = TextField(rows=8, required=False, label="How it works", help_text="Markdown.")
    severity = forms.ChoiceField(choices=Detection.Level.choices)
    confidence = forms.ChoiceField(choices=Detection.Level.choices)

    FIELDS = ("description", "summary", "severity", "confidence")


class TuningForm(RevisionForm):
    tuning_notes = TextField(
        rows=10,
        required=False,
        label="Tuning notes",
        help_text="Markdown: what to exclude or adjust in each environment, and why.",
    )

    FIELDS = ("tuning_notes",)


class FalsePositiveForm(forms.Form):
    description = TextField(
        rows=3,
        required=False,
        label="False positive",
        help_text="Markdown. Leave empty to remove it.",
    )


FalsePositiveFormSet = forms.formset_factory(
    FalsePositiveForm, extra=1, max_num=200, validate_max=True
)


def false_positive_texts(formset) -> list[str]:
    """Return the non-empty false positives of a valid formset, in form order."""
    texts = []
    for form in formset.forms:
        text = form.cleaned_data.get("description", "")
        if text.strip():
            texts.append(text)
    return texts


class TestExpectationForm(RevisionForm):
    __test__ = False  # Not a pytest test class, despite the name.

    expect = forms.ChoiceField(
        choices=DetectionTest.Expectation.choices,
        label="Expectation",
        help_text="fires: the detection must match; silent: it must match nothing.",
    )
    min_matches = forms.IntegerField(
        min_value=1,
        max_value=1_000_000,
        label="Minimum matches",
        help_text="Events that must match for a `fires` test to pass.",
    )
    known_false_positive = forms.BooleanField(
        required=False,
        label="Known false positive",
        help_text="The events are benign activity that the detection is known to match.",
    )

    FIELDS = ("expect", "min_matches", "known_false_positive")


class SigmaRuleForm(RevisionForm):
    yaml_text = TextField(
        widget=forms.Textarea(attrs={"rows": 30, "spellcheck": "false", "class": "code-input"}),
        label="Sigma rule (YAML)",
    )

    FIELDS = ("yaml_text",)

    def __init__(self, *args, rule: SigmaRule, **kwargs):
        super().__init__(*args, **kwargs)
        self.rule = rule
        self.checked: CheckedRule | None = None
        self.error_line: int | None = None

    def clean_yaml_text(self) -> str:
        text = self.cleaned_data["yaml_text"]
        try:
            self.checked = rule_text_check(text, rule_id=str(self.rule.rule_id))
        except RuleTextError as exc:
            self.error_line = exc.line
            raise ValidationError(str(exc), code="invalid_sigma") from exc
        return text

    @property
    def error_lines(self) -> list[tuple[int, str, bool]]:
        """Return (number, text, is_error_line) for the lines around the error's line."""
        return error_context_lines(self.data.get("yaml_text", ""), self.error_line)


def error_context_lines(text: str, error_line: int | None) -> list[tuple[int, str, bool]]:
    """Return (number, text, is_error_line) for the lines of `text` around `error_line`."""
    if not error_line:
        return []
    lines = text.replace("\r\n", "\n").split("\n")
    start = max(1, error_line - ERROR_CONTEXT_LINES)
    end = min(len(lines), error_line + ERROR_CONTEXT_LINES)
    return [(number, lines[number - 1], number == error_line) for number in range(start, end + 1)]


class DefaultCommentForm(RevisionForm):
    """A revision form that stores `default_comment` in history when the comment is empty."""

    def __init__(self, *args, default_comment: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self.default_comment = default_comment

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("comment"):
            cleaned["comment"] = self.default_comment
        return cleaned


class ConditionField(TextField):
    """The YAML text of a tuning condition; a change of layout alone is no change."""

    def has_changed(self, initial, data) -> bool:
        try:
            before = condition_document(initial or "").value
            after = condition_document(self.to_python(data) or "").value
        except ConditionSyntaxError:
            return True
        return before != after


class TuningEntryForm(DefaultCommentForm):
    """A tuning entry of one detection, with its condition typed as YAML."""

    condition = ConditionField(
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false", "class": "code-input"}),
        label="Condition (YAML)",
        help_text=(
            "A Sigma selection: one Field|modifier: value per line, or a YAML list of "
            "values under the key. Events matching every line are excluded. Example: "
            "Image|endswith: '\\pip.exe'"
        ),
    )
    reason = TextField(rows=4, help_text="Markdown: why the excluded events are benign.")
    owner = forms.CharField(max_length=200, help_text="Team or person who owns the entry.")
    expires = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="From this day on the entry no longer applies. Empty: never expires.",
    )
    ticket = forms.CharField(
        max_length=300, required=False, help_text="Change reference, such as a URL or SOC-1234."
    )
    enabled = forms.BooleanField(
        required=False, help_text="Clear to keep the entry without applying it."
    )
    rules = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Limit to Sigma rules",
        help_text="Leave all unticked, with no branch ticked, to apply to every rule.",
    )
    branches = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Limit to query branches",
    )

    FIELDS = ("condition", "reason", "owner", "expires", "ticket", "enabled", "rules", "branches")

    def __init__(self, *args, detection: Detection, **kwargs):
        super().__init__(*args, **kwargs)
        self.detection = detection
        self.error_line: int | None = None
        self.fields["rules"].choices = [
            (str(rule.rule_id), f"{rule.filename} ({rule.rule_id})")
            for rule in detection.sigma_rules.filter(kind=SigmaRule.Kind.RULE)
        ]
        branch_names = sorted(
            {branch.name for query in detection.queries.all() for branch in query.branches.all()}
        )
        self.fields["branches"].choices = [(name, name) for name in branch_names]

    @staticmethod
    def initial_from(entry) -> dict:
        """Return the form's initial values for a stored entry."""
        return {
            "condition": condition_to_yaml(entry.condition),
            "reason": entry.reason,
            "owner": entry.owner,
            "expires": entry.expires,
            "ticket": entry.ticket,
            "enabled": entry.enabled,
            "rules": list(entry.rules),
            "branches": list(entry.branches),
        }

    def clean_condition(self):
        text = self.cleaned_data["condition"]
        try:
            self.condition_document = condition_document(text)
        except ConditionSyntaxError as exc:
            self.error_line = exc.line
            raise ValidationError(str(exc), code="invalid_yaml") from exc
        return self.condition_document.value

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        for name, messages in entry_field_problems(self.detection, self.values()).items():
            for message in messages:
                if name == "condition" and self.error_line is None:
                    self.error_line = condition_problem_line(self.condition_document, message)
                self.add_error(name, message)
        return cleaned

    def values(self) -> dict:
        """Return the entry's fields from the valid form, the condition as a mapping."""
        return {name: self.cleaned_data[name] for name in self.FIELDS}

    @property
    def error_lines(self) -> list[tuple[int, str, bool]]:
        return error_context_lines(self.data.get("condition", ""), self.error_line)


class TuningEntryEnabledForm(DefaultCommentForm):
    """Enable or disable one tuning entry; `enabled` is the requested state."""

    enabled = forms.BooleanField(required=False, widget=forms.HiddenInput)


class TuningEntryDeleteForm(DefaultCommentForm):
    """Confirm the deletion of one tuning entry."""

    confirm = forms.BooleanField(widget=forms.HiddenInput)
