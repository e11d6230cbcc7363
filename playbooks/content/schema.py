"""The playbook.yml format, as field specifications for `detections.content.schema`.

Lengths follow the model columns the values are stored in, as in the detection
format. Cross-field rules (phase order, input names, `$name$` tokens, Sigma paths)
are in `checks`.
"""

from detections.content.schema import MAX_ROWS, STATUSES, STRINGS, Field, list_of, text
from playbooks.models import PlaybookInput, ResponseStep

PLAYBOOK_FILE = "playbook.yml"
PHASES = tuple(ResponseStep.Phase.values)
INPUT_SOURCES = tuple(PlaybookInput.Source.values)

QUERY_FIELDS = {
    "platform": text(100, required=True),
    "language": text(50, required=True),
    "description": text(),
    # A Sigma file relative to the playbook folder; checks.sigma_path_problem applies.
    "sigma": text(200),
    "text": text(required=True),
}

QUERIES = Field("list", fields=QUERY_FIELDS, max_items=MAX_ROWS)

INPUT_FIELDS = {
    "name": text(50, required=True),
    "source": Field("choice", required=True, choices=INPUT_SOURCES),
    "description": text(required=True),
    "example": text(300),
}

REFERENCE_FIELDS = {
    "name": text(300, required=True),
    "url": Field("url", required=True),
    "description": text(),
}

STEP_FIELDS = {
    "phase": Field("choice", required=True, choices=PHASES),
    "title": text(300, required=True),
    "role": text(100, required=True),
    "automatable": Field("bool", required=True),
    "action": text(required=True),
    "rationale": text(required=True),
    "automation": text(),
    "records": list_of(text(50), unique=True, max_items=MAX_ROWS),
    "queries": QUERIES,
}

QUESTION_FIELDS = {
    "question": text(300, required=True),
    "role": text(100, required=True),
    "artifacts": list_of(text(), max_items=MAX_ROWS),
    "benign_answer": text(required=True),
    "malicious_answer": text(),
    "queries": QUERIES,
}

HUNT_FIELDS = {
    "name": text(300, required=True),
    "role": text(100, required=True),
    "hypothesis": text(required=True),
    "expected_noise": text(required=True),
    "data_sources": STRINGS,
    "queries": Field(
        "list", required=True, non_empty=True, fields=QUERY_FIELDS, max_items=MAX_ROWS
    ),
}

PLAYBOOK_FIELDS = {
    "format_version": Field("int", required=True),
    "id": Field("uuid", required=True),
    "slug": Field("slug", required=True, max_length=200),
    "title": text(300, required=True),
    "status": Field("choice", required=True, choices=STATUSES),
    # Playbook.version defaults to 1, so 0 would load as 1 and export differently.
    "version": Field("int", minimum=1),
    "date_created": Field("date", required=True),
    "date_modified": Field("date", required=True),
    "authors": STRINGS,
    "detections": list_of(
        Field("uuid"), required=True, non_empty=True, unique=True, max_items=MAX_ROWS
    ),
    "summary": text(required=True),
    "inputs": Field("list", fields=INPUT_FIELDS, max_items=MAX_ROWS),
    "references": Field("list", fields=REFERENCE_FIELDS, max_items=MAX_ROWS),
    "response": Field(
        "list", required=True, non_empty=True, fields=STEP_FIELDS, max_items=MAX_ROWS
    ),
    "investigation": Field("list", fields=QUESTION_FIELDS, max_items=MAX_ROWS),
    "hunting": Field("list", fields=HUNT_FIELDS, max_items=MAX_ROWS),
}
