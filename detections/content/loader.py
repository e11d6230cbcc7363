"""Loading a checked content folder into the database, in one transaction."""

import logging
from dataclasses import dataclass, field
from pathlib import Path

from django.core.exceptions import ValidationError
from django.db import transaction

from detections.models import (
    AttackMapping,
    DataComponent,
    Detection,
    DetectionBranch,
    DetectionDataSource,
    DetectionTest,
    ExpectedTelemetry,
    FalsePositive,
    Query,
    SigmaRule,
    Tactic,
    Technique,
    TuningEntry,
)
from detections.editing import revision_record
from detections.rendering import renders_schedule
from playbooks.content.loader import PlaybookLoadReport, playbooks_load
from playbooks.content.reader import read_playbooks

from .documents import detection_fingerprint
from .reader import ContentError, ContentIssue, DetectionFile, read_content
from .references import check_references

logger = logging.getLogger(__name__)


@dataclass
class LoadReport:
    """Outcome of one load: detection slugs by what happened to them."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    renders_queued: int = 0
    playbooks: PlaybookLoadReport = field(default_factory=PlaybookLoadReport)


def content_load(*, root: Path, force: bool = False) -> LoadReport:
    """Load a content folder; a detection edited in the portal is kept unless `force`.

    Every file is read and checked before the first write, and all writes happen in
    one transaction, so a bad file leaves the database exactly as it was.
    """
    bundle = read_content(root)
    playbook_bundle = read_playbooks(root)
    report = LoadReport()
    with transaction.atomic():
        if bundle.catalogue:
            _catalogue_upsert(bundle.catalogue)
        check_references(bundle)
        loaded = {}
        for item in bundle.detections:
            detection = _detection_load(item, force=force, report=report)
            if detection is not None:
                loaded[item.document["slug"]] = (detection, item)
        for detection, item in loaded.values():
            _links_set(detection, item)
        for detection, item in loaded.values():
            detection.loaded_fingerprint = detection_fingerprint(detection)
            detection.save(update_fields=["loaded_fingerprint"])
            created = detection.slug in report.created
            revision_record(detection, comment=f"load_content: {item.path}", bump=not created)
        report.playbooks = playbooks_load(playbook_bundle, force=force)
        rule_ids = SigmaRule.objects.filter(
            detection__in=[detection for detection, _ in loaded.values()]
        ).values_list("pk", flat=True)
        report.renders_queued = len(renders_schedule(rule_ids=list(rule_ids)))
    logger.info(
        "content loaded from %s: %d created, %d updated, %d unchanged, %d conflicts",
        root,
        len(report.created),
        len(report.updated),
        len(report.unchanged),
        len(report.conflicts),
    )
    return report


def _catalogue_upsert(catalogue: dict) -> None:
    for entry in catalogue["tactics"]:
        Tactic.objects.update_or_create(
            attack_id=entry["id"],
            defaults={"name": entry["name"], "shortname": entry["shortname"], "url": entry["url"]},
        )
    techniques = sorted(catalogue["techniques"], key=lambda entry: entry["id"])
    for entry in techniques:
        parent = Technique.objects.get(attack_id=entry["parent"]) if entry.get("parent") else None
        technique, _ = Technique.objects.update_or_create(
            attack_id=entry["id"],
            defaults={"name": entry["name"], "url": entry["url"], "parent": parent},
        )
        technique.tactics.set(Tactic.objects.filter(attack_id__in=entry.get("tactics") or []))
    for entry in catalogue.get("data_components") or []:
        DataComponent.objects.update_or_create(
            attack_id=entry["id"],
            defaults={
                "name": entry["name"],
                "data_source": entry["data_source"],
                "data_source_id": entry["data_source_id"],
                "url": entry["url"],
            },
        )


def _detection_load(item: DetectionFile, *, force: bool, report: LoadReport) -> Detection | None:
    document = item.document
    slug = document["slug"]
    detection = Detection.objects.filter(uuid=document["id"]).first()
    if detection is None:
        detection = Detection(uuid=document["id"])
        report.created.append(slug)
    elif detection.loaded_fingerprint != detection_fingerprint(detection) and not force:
        logger.warning("detection %s was changed in the portal; not overwritten", slug)
        report.conflicts.append(slug)
        return None
    elif detection.source_hash == item.source_hash and not force:
        report.unchanged.append(slug)
        return None
    else:
        report.updated.append(slug)
    _detection_write(detection, item)
    return detection


def _detection_write(detection: Detection, item: DetectionFile) -> None:
    document = item.document
    for name in (
        "slug",
        "title",
        "platform",
        "query_language",
        "status",
        "severity",
        "confidence",
        "date_created",
        "date_modified",
        "description",
    ):
        setattr(detection, name, document.get(name))
    for name in ("authors", "references", "libraries", "evaded_tools", "malware_families"):
        setattr(detection, name, document.get(name) or [])
    for name in ("summary", "tuning_notes", "canonical_reference"):
        setattr(detection, name, document.get(name) or "")
    detection.version = document.get("version") or 1
    detection.source_path = item.path
    detection.source_hash = item.source_hash
    detection.save()

    # Child rows are replaced as a whole: content files own them, and ids of
    # children are not referenced from outside the detection. Tests that
    # import_atomics added belong to that import and are kept.
    for manager in (
        detection.mappings,
        detection.data_sources,
        detection.queries,
        detection.false_positives,
    ):
        manager.all().delete()
    detection.tests.filter(origin=DetectionTest.Origin.AUTHORED).delete()
    rules = _rules_write(detection, item)
    _mappings_write(detection, document)
    _queries_write(detection, document, rules)
    _tests_write(detection, document)
    _tuning_write(detection, document, item.path)
    FalsePositive.objects.bulk_create(
        FalsePositive(detection=detection, position=index, description=text)
        for index, text in enumerate(document.get("false_positives") or [])
    )


def _rules_write(detection: Detection, item: DetectionFile) -> dict[str, SigmaRule]:
    """Update the detection's Sigma rules in place, keyed by rule id.

    Rows are kept rather than replaced so their renders survive a reload; a render
    whose rule text did not change is then not rendered again.
    """
    rules = {}
    for index, sigma in enumerate(item.sigma_files):
        parsed = sigma.parsed
        rules[parsed.rule_id], _ = SigmaRule.objects.update_or_create(
            rule_id=parsed.rule_id,
            defaults={
                "detection": detection,
                "position": index,
                "filename": sigma.relative_path,
                "yaml_text": sigma.text,
                "title": parsed.title,
                "status": parsed.status,
                "level": parsed.level,
                "logsource": parsed.logsource,
                "tags": parsed.tags,
                "falsepositives": parsed.falsepositives,
                "messages": parsed.messages,
            },
        )
    detection.sigma_rules.exclude(rule_id__in=list(rules)).delete()
    return rules


def _mappings_write(detection: Detection, document: dict) -> None:
    for index, mapping in enumerate(document["attack"]):
        sub = mapping.get("subtechnique")
        AttackMapping.objects.create(
            detection=detection,
            position=index,
            tactic=Tactic.objects.get(attack_id=mapping["tactic"]),
            technique=Technique.objects.get(attack_id=mapping["technique"]),
            subtechnique=Technique.objects.get(attack_id=sub) if sub else None,
        )
    for index, source in enumerate(document.get("data_sources") or []):
        DetectionDataSource.objects.create(
            detection=detection,
            position=index,
            component=DataComponent.objects.get(attack_id=source["component"]),
            log_source=source["log_source"],
            event_id=source.get("event_id"),
            event_name=source.get("event_name") or "",
        )


def _queries_write(detection: Detection, document: dict, rules: dict[str, SigmaRule]) -> None:
    for index, entry in enumerate(document.get("queries") or []):
        query = Query.objects.create(
            detection=detection,
            position=index,
            platform=entry["platform"],
            language=entry["language"],
            text=entry["text"],
            output_fields=entry.get("output_fields") or [],
            required_sourcetypes=entry.get("required_sourcetypes") or [],
            branch_field=entry.get("branch_field") or "",
        )
        for b_index, branch in enumerate(entry.get("branches") or []):
            DetectionBranch.objects.create(
                query=query,
                position=b_index,
                name=branch["name"],
                description=branch.get("description") or "",
                log_source=branch["log_source"],
                event_id=branch["event_id"],
                sigma_rule=rules.get(branch.get("sigma_rule") or ""),
                **{name: branch.get(name) or [] for name in DetectionBranch.LIST_FIELDS},
            )


def _tests_write(detection: Detection, document: dict) -> None:
    for index, entry in enumerate(document.get("tests") or []):
        test = DetectionTest.objects.create(
            detection=detection,
            position=index,
            name=entry["name"],
            description=entry.get("description") or "",
            atomic_guid=entry.get("atomic_guid"),
            platform=entry["platform"],
            executor=entry.get("executor") or "",
            executor_summary=entry.get("executor_summary") or "",
            expected_signal=entry["expected_signal"],
            expect=entry.get("expect") or DetectionTest.Expectation.FIRES,
            min_matches=entry.get("min_matches", 1),
            known_false_positive=entry.get("known_false_positive", False),
            recorded_events=entry.get("recorded_events") or [],
        )
        ExpectedTelemetry.objects.bulk_create(
            ExpectedTelemetry(
                test=test,
                position=t_index,
                source=signal["source"],
                event_id=signal.get("event_id"),
                event_name=signal.get("event_name") or "",
                key_fields=signal.get("key_fields") or {},
                artifact_path=signal.get("artifact_path") or "",
                description=signal.get("description") or "",
            )
            for t_index, signal in enumerate(entry.get("telemetry") or [])
        )


def _tuning_write(detection: Detection, document: dict, path: str) -> None:
    """Update the detection's tuning entries in place, keyed by id, and delete the rest.

    Rows are kept rather than replaced so that `created_by` and `created_at` survive a
    reload. Each save checks the entry with pySigma again, now against the stored rules.
    """
    entries = document.get("tuning") or []
    ids = [entry["id"] for entry in entries]
    detection.tuning_entries.exclude(uuid__in=ids).delete()
    for index, entry in enumerate(entries):
        row = TuningEntry.objects.filter(uuid=entry["id"]).first()
        if row is not None and row.detection_id != detection.pk:
            raise ContentError(
                [
                    ContentIssue(
                        path,
                        f"tuning[{index}].id",
                        f"{entry['id']} is the id of a tuning entry of detection "
                        f"{row.detection.slug}; give this entry its own id",
                    )
                ]
            )
        row = row or TuningEntry(uuid=entry["id"], detection=detection)
        row.position = index
        row.condition = entry["condition"]
        row.rules = entry.get("rules") or []
        row.branches = entry.get("branches") or []
        row.reason = entry["reason"]
        row.owner = entry["owner"]
        row.expires = entry.get("expires")
        row.ticket = entry.get("ticket") or ""
        row.enabled = entry.get("enabled", True)
        try:
            row.save()
        except ValidationError as exc:
            raise ContentError(
                [ContentIssue(path, f"tuning[{index}]", message) for message in exc.messages]
            ) from exc


def _links_set(detection: Detection, item: DetectionFile) -> None:
    for key in ("related", "other_platforms"):
        slugs = item.document.get(key) or []
        getattr(detection, key).set(Detection.objects.filter(slug__in=slugs))
