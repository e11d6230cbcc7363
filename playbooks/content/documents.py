"""Turning a stored playbook back into its playbook.yml, in the field order of the format.

Top-level keys are always written. Optional keys of list entries are left out while
they are empty, as in detection.yml, so load then export gives the same bytes.
"""

import hashlib

from detections.content.yamlio import FORMAT_VERSION, dump_document
from playbooks.models import Playbook, PlaybookQuery

from .schema import PLAYBOOK_FILE


def playbook_document(playbook: Playbook) -> dict:
    """Build the playbook.yml document of a stored playbook."""
    return {
        "format_version": FORMAT_VERSION,
        "id": str(playbook.uuid),
        "slug": playbook.slug,
        "title": playbook.title,
        "status": playbook.status,
        "version": playbook.version,
        "date_created": playbook.date_created,
        "date_modified": playbook.date_modified,
        "authors": playbook.authors,
        "detections": [str(link.detection.uuid) for link in playbook.links.all()],
        "summary": playbook.summary,
        "inputs": [_input_entry(item) for item in playbook.inputs.all()],
        "references": [_reference_entry(item) for item in playbook.references],
        "response": [_step_entry(step) for step in playbook.steps.all()],
        "investigation": [_question_entry(item) for item in playbook.questions.all()],
        "hunting": [_hunt_entry(hunt) for hunt in playbook.hunts.all()],
    }


def playbook_files(playbook: Playbook) -> dict[str, str]:
    """Return every file of a playbook's folder, by path relative to that folder."""
    files = {PLAYBOOK_FILE: dump_document(playbook_document(playbook))}
    for rule in playbook.sigma_rules.all():
        files[rule.filename] = rule.yaml_text
    return files


def playbook_fingerprint(playbook: Playbook) -> str:
    """Hash of the playbook's exported files: changes whenever any stored fact changes."""
    digest = hashlib.sha256()
    for name, text in sorted(playbook_files(playbook).items()):
        digest.update(name.encode("utf-8") + b"\0" + text.encode("utf-8") + b"\0")
    return digest.hexdigest()


def _input_entry(item) -> dict:
    entry = {"name": item.name, "source": item.source, "description": item.description}
    if item.example:
        entry["example"] = item.example
    return entry


def _reference_entry(item: dict) -> dict:
    entry = {"name": item["name"], "url": item["url"]}
    if item.get("description"):
        entry["description"] = item["description"]
    return entry


def _step_entry(step) -> dict:
    entry = {
        "phase": step.phase,
        "title": step.title,
        "role": step.role,
        "automatable": step.automatable,
        "action": step.action,
        "rationale": step.rationale,
    }
    if step.automation:
        entry["automation"] = step.automation
    if step.records:
        entry["records"] = step.records
    return _with_queries(entry, step.queries.all())


def _question_entry(question) -> dict:
    entry = {"question": question.question, "role": question.role}
    if question.artifacts:
        entry["artifacts"] = question.artifacts
    entry["benign_answer"] = question.benign_answer
    if question.malicious_answer:
        entry["malicious_answer"] = question.malicious_answer
    return _with_queries(entry, question.queries.all())


def _hunt_entry(hunt) -> dict:
    entry = {
        "name": hunt.name,
        "role": hunt.role,
        "hypothesis": hunt.hypothesis,
        "expected_noise": hunt.expected_noise,
    }
    if hunt.data_sources:
        entry["data_sources"] = hunt.data_sources
    entry["queries"] = [_query_entry(query) for query in hunt.queries.all()]
    return entry


def _with_queries(entry: dict, queries) -> dict:
    items = [_query_entry(query) for query in queries]
    if items:
        entry["queries"] = items
    return entry


def _query_entry(query: PlaybookQuery) -> dict:
    entry = {"platform": query.platform, "language": query.language}
    if query.description:
        entry["description"] = query.description
    if query.sigma_rule:
        entry["sigma"] = query.sigma_rule.filename
    entry["text"] = query.text
    return entry
