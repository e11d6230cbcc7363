"""Edit forms of the detection page.

Every edit form carries the revision of the detection it was loaded from and a
change comment. The view passes the revision to `editing.edit`, which rejects the
save with EditConflict when someone else stored a change in the meantime.
"""

from django import forms
from django.core.exceptions import ValidationError

from .models import Detection, DetectionTest, SigmaRule
from .rule_edit import CheckedRule, RuleTextError, rule_text_check

MAX_COMMENT_LENGTH = 500
# Lines shown before and after the line of a Sigma rule error.
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
        if not self.error_line:
            return []
        lines = self.data.get("yaml_text", "").replace("\r\n", "\n").split("\n")
        start = max(1, self.error_line - ERROR_CONTEXT_LINES)
        end = min(len(lines), self.error_line + ERROR_CONTEXT_LINES)
        return [
            (number, lines[number - 1], number == self.error_line)
            for number in range(start, end + 1)
        ]
