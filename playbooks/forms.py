"""Edit forms of the playbook page: steps, investigation questions and hunts, with their queries."""

from django import forms

from detections.forms import RevisionForm, TextField

from .models import PlaybookQuery

MARKDOWN_HELP = "Markdown."


def _markdown_field(label: str, *, required: bool = True) -> TextField:
    return TextField(label=label, required=required, help_text=MARKDOWN_HELP)


class QueryTextsForm(RevisionForm):
    """A form with one text field per query of the edited item, named `query_<pk>`."""

    FIELDS: tuple[str, ...] = ()

    def __init__(self, *args, queries: list[PlaybookQuery], **kwargs):
        super().__init__(*args, **kwargs)
        self.queries = queries
        for query in queries:
            self.fields[self.query_field_name(query)] = TextField(
                label=f"{query.platform} query ({query.language})",
                help_text=query.description,
                widget=forms.Textarea(
                    attrs={"rows": 6, "spellcheck": "false", "class": "code-input"}
                ),
            )

    @staticmethod
    def query_field_name(query: PlaybookQuery) -> str:
        return f"query_{query.pk}"

    def query_fields(self) -> list:
        return [self[self.query_field_name(query)] for query in self.queries]

    def initial_values(self, item) -> dict:
        values = {name: getattr(item, name) for name in self.FIELDS}
        for query in self.queries:
            values[self.query_field_name(query)] = query.text
        return values


class StepForm(QueryTextsForm):
    title = forms.CharField(max_length=300)
    action = _markdown_field("What to do")
    rationale = _markdown_field("Why it matters")
    automation = TextField(rows=3, required=False, label="How a SOAR platform can do the step")

    FIELDS = ("title", "action", "rationale", "automation")


class QuestionForm(QueryTextsForm):
    question = forms.CharField(max_length=300)
    benign_answer = _markdown_field("What a benign answer looks like")
    malicious_answer = _markdown_field("What points to an intrusion", required=False)

    FIELDS = ("question", "benign_answer", "malicious_answer")


class HuntForm(QueryTextsForm):
    hypothesis = _markdown_field("Hypothesis")
    expected_noise = _markdown_field("Benign activity the hunt also returns")

    FIELDS = ("hypothesis", "expected_noise")
