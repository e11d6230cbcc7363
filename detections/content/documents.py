"""Turning stored detections back into content documents, in the field order of the format.

`load_content` and `export_content` share these documents. A loaded detection,
exported, gives the same document, and the fingerprint of that document shows
whether a detection was edited in the portal since it was loaded.
"""

import hashlib
import re

from detections.models import (
    DataComponent,
    Detection,
    DetectionBranch,
    DetectionTest,
    Tactic,
    Technique,
)

from detections.validation.events import encode_events

from .yamlio import FORMAT_VERSION, dump_document

# Recorded events are exported as JSON lines beside detection.yml, one file per test.
EVENTS_DIR = "events"

# Optional nested fields are left out of a document while they hold these values.
TEST_DEFAULTS = {
    "description": "",
    "atomic_guid": None,
    "executor": "",
    "executor_summary": "",
    "min_matches": 1,
    "known_false_positive": False,
    "events": None,
    "telemetry": [],
}
TELEMETRY_DEFAULTS = {
    "event_id": None,
    "event_name": "",
    "key_fields": {},
    "artifact_path": "",
    "description": "",
}
BRANCH_DEFAULTS = {"description": "", "sigma_rule": None} | {
    name: [] for name in DetectionBranch.LIST_FIELDS
}
TUNING_DEFAULTS = {"rules": [], "branches": [], "expires": None, "ticket": "", "enabled": True}
QUERY_DEFAULTS = {
    "required_sourcetypes": [],
    "output_fields": [],
    "branch_field": "",
    "branches": [],
}


def detection_document(detection: Detection) -> dict:
    """Build the detection.yml document of a stored detection."""
    return {
        "format_version": FORMAT_VERSION,
        "id": str(detection.uuid),
        "slug": detection.slug,
        "title": detection.title,
        "platform": detection.platform,
        "query_language": detection.query_language,
        "status": detection.status,
        "version": detection.version,
        "severity": detection.severity,
        "confidence": detection.confidence,
        "date_created": detection.date_created,
        "date_modified": detection.date_modified,
        "authors": detection.authors,
        "canonical_reference": detection.canonical_reference,
        "references": detection.references,
        "attack": [_mapping_entry(mapping) for mapping in detection.mappings.all()],
        "description": detection.description,
        "libraries": [_library_entry(entry) for entry in detection.libraries],
        "evaded_tools": detection.evaded_tools,
        "malware_families": detection.malware_families,
        "summary": detection.summary,
        "data_sources": [_data_source_entry(source) for source in detection.data_sources.all()],
        "queries": [_query_entry(query) for query in detection.queries.all()],
        "sigma_rules": [rule.filename for rule in detection.sigma_rules.all()],
        "false_positives": [item.description for item in detection.false_positives.all()],
        "tuning_notes": detection.tuning_notes,
        "tuning": [_tuning_entry(entry) for entry in detection.tuning_entries.all()],
        "tests": [_test_entry(test) for test in authored_tests(detection)],
        "related": sorted(other.slug for other in detection.related.all()),
        "other_platforms": sorted(other.slug for other in detection.other_platforms.all()),
    }


def detection_files(detection: Detection) -> dict[str, str]:
    """Return every file of a detection's folder, by path relative to that folder."""
    files = {"detection.yml": dump_document(detection_document(detection))}
    for rule in detection.sigma_rules.all():
        files[rule.filename] = rule.yaml_text
    for test in authored_tests(detection):
        if test.recorded_events:
            files[events_file_name(test)] = encode_events(test.recorded_events)
    return files


def authored_tests(detection: Detection) -> list[DetectionTest]:
    """Return the tests that content files own; those import_atomics added are left out.

    Filtered in Python so that a prefetched `tests` relation is used.
    """
    return [test for test in detection.tests.all() if test.origin == DetectionTest.Origin.AUTHORED]


def events_file_name(test) -> str:
    """Return the path, relative to the detection folder, of a test's events file.

    The position keeps the names of tests that share a name apart.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", test.name.lower()).strip("-")[:80].strip("-") or "test"
    return f"{EVENTS_DIR}/{test.position + 1:02d}-{slug}.ndjson"


def detection_fingerprint(detection: Detection) -> str:
    """Hash of the detection's exported files: changes whenever any stored fact changes."""
    digest = hashlib.sha256()
    for name, text in sorted(detection_files(detection).items()):
        digest.update(name.encode("utf-8") + b"\0" + text.encode("utf-8") + b"\0")
    return digest.hexdigest()


def catalogue_document() -> dict:
    """Build the attack.yml document from the stored ATT&CK catalogue."""
    techniques = Technique.objects.select_related("parent").prefetch_related("tactics")
    return {
        "format_version": FORMAT_VERSION,
        "tactics": [
            {"id": t.attack_id, "name": t.name, "shortname": t.shortname, "url": t.url}
            for t in Tactic.objects.all()
        ],
        "techniques": [_technique_entry(technique) for technique in techniques],
        "data_components": [
            {
                "id": c.attack_id,
                "name": c.name,
                "data_source": c.data_source,
                "data_source_id": c.data_source_id,
                "url": c.url,
            }
            for c in DataComponent.objects.order_by("attack_id")
        ],
    }


def _technique_entry(technique: Technique) -> dict:
    entry = {"id": technique.attack_id, "name": technique.name, "url": technique.url}
    if technique.parent:
        entry["parent"] = technique.parent.attack_id
    entry["tactics"] = [tactic.attack_id for tactic in technique.tactics.all()]
    return entry


def _mapping_entry(mapping) -> dict:
    entry = {"tactic": mapping.tactic.attack_id, "technique": mapping.technique.attack_id}
    if mapping.subtechnique:
        entry["subtechnique"] = mapping.subtechnique.attack_id
    return entry


def _data_source_entry(source) -> dict:
    entry = {"component": source.component.attack_id, "log_source": source.log_source}
    if source.event_id is not None:
        entry["event_id"] = source.event_id
    if source.event_name:
        entry["event_name"] = source.event_name
    return entry


def _query_entry(query) -> dict:
    entry = {
        "platform": query.platform,
        "language": query.language,
        "required_sourcetypes": query.required_sourcetypes,
        "output_fields": query.output_fields,
        "branch_field": query.branch_field,
        "text": query.text,
        "branches": [_branch_entry(branch) for branch in query.branches.all()],
    }
    return _without_defaults(entry, QUERY_DEFAULTS)


def _branch_entry(branch: DetectionBranch) -> dict:
    entry = {
        "name": branch.name,
        "log_source": branch.log_source,
        "event_id": branch.event_id,
        "sigma_rule": str(branch.sigma_rule.rule_id) if branch.sigma_rule else None,
        "description": branch.description,
    }
    entry.update({name: getattr(branch, name) for name in DetectionBranch.LIST_FIELDS})
    return _without_defaults(entry, BRANCH_DEFAULTS)


def _tuning_entry(entry) -> dict:
    result = {
        "id": str(entry.uuid),
        "condition": _sorted_keys(entry.condition),
        "rules": entry.rules,
        "branches": entry.branches,
        "reason": entry.reason,
        "owner": entry.owner,
        "expires": entry.expires,
        "ticket": entry.ticket,
        "enabled": entry.enabled,
    }
    return _without_defaults(result, TUNING_DEFAULTS)


def _test_entry(test) -> dict:
    entry = {
        "name": test.name,
        "description": test.description,
        "atomic_guid": str(test.atomic_guid) if test.atomic_guid else None,
        "platform": test.platform,
        "executor": test.executor,
        "executor_summary": test.executor_summary,
        "expected_signal": test.expected_signal,
        "expect": test.expect,
        "min_matches": test.min_matches,
        "known_false_positive": test.known_false_positive,
        "events": events_file_name(test) if test.recorded_events else None,
        "telemetry": [_telemetry_entry(item) for item in test.telemetry.all()],
    }
    return _without_defaults(entry, TEST_DEFAULTS)


def _telemetry_entry(item) -> dict:
    entry = {
        "source": item.source,
        "event_id": item.event_id,
        "event_name": item.event_name,
        "key_fields": _sorted_keys(item.key_fields),
        "artifact_path": item.artifact_path,
        "description": item.description,
    }
    return _without_defaults(entry, TELEMETRY_DEFAULTS)


def _library_entry(entry: dict) -> dict:
    ordered = {"ecosystem": entry["ecosystem"], "names": entry["names"]}
    if "classes" in entry:
        ordered["classes"] = entry["classes"]
    return ordered


def _sorted_keys(value):
    """Sort the keys of free-form mappings, at every level.

    PostgreSQL's jsonb does not keep key order, so the order a file was written in
    cannot survive a load. Sorted keys make the export the same on every database.
    """
    if isinstance(value, dict):
        return {key: _sorted_keys(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted_keys(item) for item in value]
    return value


def _without_defaults(entry: dict, defaults: dict) -> dict:
    return {
        key: value for key, value in entry.items() if key not in defaults or value != defaults[key]
    }
