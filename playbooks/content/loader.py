"""Writing checked playbooks into the database.

`detections.content.loader.content_load` calls `playbooks_load` inside its
transaction, after the detections are written, so a playbook can name a detection
loaded in the same run and a bad reference rolls back the whole load.
"""

import logging
from dataclasses import dataclass, field

from detections.content.reader import ContentError, ContentIssue
from detections.editing import revision_record
from detections.models import Detection, SigmaRule
from playbooks.models import (
    HuntingQuery,
    InvestigationQuestion,
    Playbook,
    PlaybookDetection,
    PlaybookInput,
    PlaybookQuery,
    PlaybookSigmaRule,
    ResponseStep,
)

from .documents import playbook_fingerprint
from .reader import PlaybookBundle, PlaybookFile

logger = logging.getLogger(__name__)


@dataclass
class PlaybookLoadReport:
    """Outcome of one load: playbook slugs by what happened to them."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)


def playbooks_load(bundle: PlaybookBundle, *, force: bool = False) -> PlaybookLoadReport:
    """Write the bundle's playbooks; one edited in the portal is kept unless `force`.

    Must run inside a transaction: it raises ContentError for a detection id, slug
    or Sigma rule id that the database contradicts, after earlier rows were written.
    """
    check_playbook_references(bundle)
    report = PlaybookLoadReport()
    for item in bundle.playbooks:
        _playbook_load(item, force=force, report=report)
    if bundle.playbooks:
        logger.info(
            "playbooks loaded: %d created, %d updated, %d unchanged, %d conflicts",
            len(report.created),
            len(report.updated),
            len(report.unchanged),
            len(report.conflicts),
        )
    return report


def check_playbook_references(bundle: PlaybookBundle) -> None:
    """Raise ContentError for unknown detections and ids owned by other rows."""
    detection_ids = {str(value) for value in Detection.objects.values_list("uuid", flat=True)}
    slug_owners = {slug: str(owner) for slug, owner in Playbook.objects.values_list("slug", "uuid")}
    issues = []
    for item in bundle.playbooks:
        document = item.document
        for index, detection_id in enumerate(document["detections"]):
            if detection_id not in detection_ids:
                issues.append(
                    ContentIssue(
                        item.path,
                        f"detections[{index}]",
                        f"no detection has the id {detection_id}; use the `id` of a "
                        "detection.yml",
                    )
                )
        owner = slug_owners.get(document["slug"])
        if owner is not None and owner != document["id"]:
            issues.append(
                ContentIssue(
                    item.path,
                    "slug",
                    f"{document['slug']!r} is the slug of playbook {owner} in the database, "
                    f"not of {document['id']}; choose another slug",
                )
            )
        issues += _rule_owner_issues(item)
    if issues:
        raise ContentError(issues)


def _rule_owner_issues(item: PlaybookFile) -> list[ContentIssue]:
    """Report Sigma rule ids that a rule of another playbook or of a detection already has."""
    issues = []
    for name, sigma in item.sigma_files.items():
        rule_id = sigma.parsed.rule_id
        owner = None
        other_playbook = (
            PlaybookSigmaRule.objects.filter(rule_id=rule_id)
            .exclude(playbook__uuid=item.document["id"])
            .values_list("playbook__slug", flat=True)
            .first()
        )
        if other_playbook:
            owner = f"playbook {other_playbook!r}"
        detection = (
            SigmaRule.objects.filter(rule_id=rule_id)
            .values_list("detection__slug", flat=True)
            .first()
        )
        if detection:
            owner = f"detection {detection!r}"
        if owner:
            issues.append(
                ContentIssue(
                    item.path,
                    item.sigma_fields[name],
                    f"Sigma rule id {rule_id} already belongs to {owner}; give the rule a new id",
                )
            )
    return issues


def _playbook_load(item: PlaybookFile, *, force: bool, report: PlaybookLoadReport) -> None:
    document = item.document
    slug = document["slug"]
    playbook = Playbook.objects.filter(uuid=document["id"]).first()
    created = playbook is None
    if playbook is None:
        playbook = Playbook(uuid=document["id"])
        report.created.append(slug)
    elif playbook.loaded_fingerprint != playbook_fingerprint(playbook) and not force:
        logger.warning("playbook %s was changed in the portal; not overwritten", slug)
        report.conflicts.append(slug)
        return
    elif playbook.source_hash == item.source_hash and not force:
        report.unchanged.append(slug)
        return
    else:
        report.updated.append(slug)
    _playbook_write(playbook, item)
    playbook.loaded_fingerprint = playbook_fingerprint(playbook)
    playbook.save(update_fields=["loaded_fingerprint"])
    revision_record(playbook, comment=f"load_content: {item.path}", bump=not created)


def _playbook_write(playbook: Playbook, item: PlaybookFile) -> None:
    document = item.document
    for name in ("slug", "title", "status", "date_created", "date_modified", "summary"):
        setattr(playbook, name, document[name])
    playbook.version = document.get("version") or 1
    playbook.authors = document.get("authors") or []
    playbook.references = document.get("references") or []
    playbook.source_path = item.path
    playbook.source_hash = item.source_hash
    playbook.save()

    # Child rows are replaced as a whole: the content file owns them, and nothing
    # outside the playbook refers to them.
    for manager in (
        playbook.links,
        playbook.inputs,
        playbook.steps,
        playbook.questions,
        playbook.hunts,
        playbook.sigma_rules,
    ):
        manager.all().delete()
    detections = {
        str(detection.uuid): detection
        for detection in Detection.objects.filter(uuid__in=document["detections"])
    }
    PlaybookDetection.objects.bulk_create(
        PlaybookDetection(playbook=playbook, detection=detections[value], position=index)
        for index, value in enumerate(document["detections"])
    )
    PlaybookInput.objects.bulk_create(
        PlaybookInput(
            playbook=playbook,
            position=index,
            name=entry["name"],
            source=entry["source"],
            description=entry["description"],
            example=entry.get("example") or "",
        )
        for index, entry in enumerate(document.get("inputs") or [])
    )
    rules = _rules_write(playbook, item)
    _steps_write(playbook, document, rules)
    _questions_write(playbook, document, rules)
    _hunts_write(playbook, document, rules)


def _rules_write(playbook: Playbook, item: PlaybookFile) -> dict[str, PlaybookSigmaRule]:
    """Store the playbook's Sigma files; return the rows by file name."""
    rules = {}
    for index, (name, sigma) in enumerate(item.sigma_files.items()):
        parsed = sigma.parsed
        rules[name] = PlaybookSigmaRule.objects.create(
            playbook=playbook,
            position=index,
            rule_id=parsed.rule_id,
            filename=name,
            yaml_text=sigma.text,
            title=parsed.title,
            level=parsed.level,
            logsource=parsed.logsource,
            tags=parsed.tags,
        )
    return rules


def _steps_write(playbook: Playbook, document: dict, rules: dict) -> None:
    for index, entry in enumerate(document["response"]):
        step = ResponseStep.objects.create(
            playbook=playbook,
            position=index,
            phase=entry["phase"],
            title=entry["title"],
            role=entry["role"],
            automatable=entry["automatable"],
            action=entry["action"],
            rationale=entry["rationale"],
            automation=entry.get("automation") or "",
            records=entry.get("records") or [],
        )
        _queries_write(entry, rules, step=step)


def _questions_write(playbook: Playbook, document: dict, rules: dict) -> None:
    for index, entry in enumerate(document.get("investigation") or []):
        question = InvestigationQuestion.objects.create(
            playbook=playbook,
            position=index,
            question=entry["question"],
            role=entry["role"],
            artifacts=entry.get("artifacts") or [],
            benign_answer=entry["benign_answer"],
            malicious_answer=entry.get("malicious_answer") or "",
        )
        _queries_write(entry, rules, question=question)


def _hunts_write(playbook: Playbook, document: dict, rules: dict) -> None:
    for index, entry in enumerate(document.get("hunting") or []):
        hunt = HuntingQuery.objects.create(
            playbook=playbook,
            position=index,
            name=entry["name"],
            role=entry["role"],
            hypothesis=entry["hypothesis"],
            expected_noise=entry["expected_noise"],
            data_sources=entry.get("data_sources") or [],
        )
        _queries_write(entry, rules, hunt=hunt)


def _queries_write(entry: dict, rules: dict, **owner) -> None:
    PlaybookQuery.objects.bulk_create(
        PlaybookQuery(
            position=index,
            platform=query["platform"],
            language=query["language"],
            description=query.get("description") or "",
            text=query["text"],
            sigma_rule=rules.get(query.get("sigma") or ""),
            **owner,
        )
        for index, query in enumerate(entry.get("queries") or [])
    )
