"""Writing imported Sigma rules to the database in bulk, one transaction per chunk of files.

An imported detection owns the fields that come from its rule: title, description,
severity, confidence, Sigma status, dates, authors, references, ATT&CK mappings, data
sources, false positives and the Sigma rule row. A re-import replaces those and raises
`version` by one when the rule's text changed. Fields kept in the portal (workflow
status, slug, tuning notes, summary, tests, queries, links) are never touched.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from django.db import DatabaseError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.text import slugify

from detections.models import (
    AttackMapping,
    Detection,
    DetectionDataSource,
    FalsePositive,
    SigmaRule,
)
from detections.versioning import revisions_bulk_record
from detections.pysigma.importing import CORRELATION, FILTER, RULE, ImportedRule
from detections.rendering import renders_schedule

from .catalogue import Catalogue
from .progress import Progress
from .report import ImportSummary
from .yamlread import YAMLDocument

logger = logging.getLogger(__name__)

CREATE = "create"
UPDATE = "update"
UNCHANGED = "unchanged"

IMPORTED_PLATFORM = "Sigma"
# Sigma's status records how far a rule was tested, which is what `confidence` stores.
CONFIDENCE_BY_SIGMA_STATUS = {
    "stable": Detection.Level.HIGH,
    "test": Detection.Level.MEDIUM,
    "experimental": Detection.Level.LOW,
    "deprecated": Detection.Level.LOW,
    "unsupported": Detection.Level.LOW,
}
# Sigma's `level` is optional; a rule without one is stored as informational.
DEFAULT_SEVERITY = Detection.Level.INFORMATIONAL
RETIRED_SIGMA_STATUSES = {"deprecated", "unsupported"}

MAX_SLUG_BASE = 80
MAX_FILENAME = 200  # SigmaRule.filename
MAX_SOURCE_PATH = 500  # Detection.source_path
# Rows read per query, well under SQLite's limit on query parameters.
QUERY_CHUNK = 500

DETECTION_UPDATE_FIELDS = [
    "title",
    "description",
    "severity",
    "confidence",
    "sigma_status",
    "authors",
    "references",
    "date_created",
    "date_modified",
    "source_path",
    "source_hash",
    "version",
    "updated_at",
]
RULE_UPDATE_FIELDS = [
    "kind",
    "name",
    "filename",
    "yaml_text",
    "title",
    "status",
    "level",
    "logsource",
    "tags",
    "falsepositives",
    "is_valid",
    "messages",
    "rule_references",
]


@dataclass
class StoredRule:
    """The rows stored under a rule id before the import."""

    rule_pk: int
    detection_pk: int
    detection_uuid: str
    origin: str
    slug: str
    version: int
    yaml_text: str


@dataclass
class RuleWrite:
    """One rule of a file and what the import does with it."""

    document: YAMLDocument
    rule: ImportedRule
    action: str
    # Position of the document in its file, from 0.
    index: int = 0
    stored: StoredRule | None = None


@dataclass
class FileWrite:
    """The rules of one file, written together or not at all."""

    label: str
    path: str
    digest: str
    rules: list[RuleWrite] = field(default_factory=list)


@dataclass
class ChunkOutcome:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    changed_rule_pks: list[int] = field(default_factory=list)
    notices: list[tuple[str, str, int | None]] = field(default_factory=list)


class SigmaStore:
    """Plans and writes the rules of one import."""

    def __init__(self, *, status: str, force: bool, summary: ImportSummary):
        self.status = status
        self.force = force
        self.summary = summary
        self.catalogue = Catalogue.load()
        self.changed_rule_pks: list[int] = []
        # Every rule row this import wrote, to warn only about its own unresolved names.
        self.written_rule_pks: set[int] = set()
        self._taken_slugs: set[str] | None = None

    # --- Planning -----------------------------------------------------------------

    def plan(self, parsed_files) -> list[FileWrite]:
        """Decide per rule: create, update or unchanged; fail files that may not be written."""
        rule_ids = [rule_id for item in parsed_files for rule_id in item.rule_ids]
        stored = self._stored_rules(rule_ids)
        uuid_owners = self._detection_owners(rule_ids)
        writes = []
        for item in parsed_files:
            file_write = FileWrite(item.source.label, item.source.path, item.digest)
            reason = None
            for index, (document, rule) in enumerate(item.rules):
                reason = self._conflict(rule.rule_id, stored, uuid_owners)
                if reason:
                    self.summary.fail(item.source.label, reason, document.line_of(("id",)))
                    break
                existing = stored.get(rule.rule_id)
                if existing is None:
                    action = CREATE
                elif existing.yaml_text != document.text:
                    action = UPDATE
                else:
                    action = UNCHANGED
                file_write.rules.append(RuleWrite(document, rule, action, index, existing))
            if reason is None:
                writes.append(file_write)
        return writes

    def _stored_rules(self, rule_ids: list[str]) -> dict[str, StoredRule]:
        stored = {}
        for chunk in _chunks(rule_ids, QUERY_CHUNK):
            rows = SigmaRule.objects.filter(rule_id__in=chunk).values_list(
                "pk",
                "rule_id",
                "detection_id",
                "detection__uuid",
                "detection__origin",
                "detection__slug",
                "detection__version",
                "yaml_text",
            )
            for pk, rule_id, detection_pk, detection_uuid, origin, slug, version, text in rows:
                stored[str(rule_id)] = StoredRule(
                    pk, detection_pk, str(detection_uuid), origin, slug, version, text
                )
        return stored

    def _detection_owners(self, rule_ids: list[str]) -> dict[str, tuple[str, str]]:
        """Return (origin, slug) of detections whose UUID is one of the rule ids."""
        owners = {}
        for chunk in _chunks(rule_ids, QUERY_CHUNK):
            rows = Detection.objects.filter(uuid__in=chunk).values_list("uuid", "origin", "slug")
            for detection_uuid, origin, slug in rows:
                owners[str(detection_uuid)] = (origin, slug)
        return owners

    def _conflict(
        self, rule_id: str, stored: dict[str, StoredRule], owners: dict[str, tuple[str, str]]
    ) -> str | None:
        existing = stored.get(rule_id)
        if existing is not None:
            if existing.origin != Detection.Origin.SIGMA or existing.detection_uuid != rule_id:
                return (
                    f"rule id {rule_id} belongs to a Sigma rule of the detection "
                    f"{existing.slug!r}, which was not imported; give the rule a new id"
                )
            return None
        owner = owners.get(rule_id)
        if owner is not None:
            origin, slug = owner
            return (
                f"rule id {rule_id} is the UUID of the detection {slug!r}, which "
                f"{'has no Sigma rule' if origin == Detection.Origin.SIGMA else 'was not imported'}"
                "; give the rule a new id"
            )
        return None

    # --- Writing ------------------------------------------------------------------

    def write(self, writes: list[FileWrite], *, chunk_size: int, progress: Progress) -> None:
        """Write the planned files, one transaction per chunk; isolate a failing file."""
        progress.start("writing", len(writes))
        for start in range(0, len(writes), chunk_size):
            chunk = writes[start : start + chunk_size]
            try:
                outcome = self._write_atomic(chunk)
            except DatabaseError:
                logger.warning(
                    "a chunk of %d files failed in the database; writing them one by one",
                    len(chunk),
                )
                outcome = ChunkOutcome()
                for file_write in chunk:
                    try:
                        self._merge(outcome, self._write_atomic([file_write]))
                    except DatabaseError as exc:
                        logger.warning(
                            "Sigma file %s failed in the database: %s", file_write.label, exc
                        )
                        self.summary.fail(
                            file_write.label, f"the database rejected the rule: {exc}"
                        )
            self._merge(self.summary, outcome)
            progress.advance(len(chunk))
        progress.finish()

    def _merge(self, target, outcome: ChunkOutcome) -> None:
        target.created += outcome.created
        target.updated += outcome.updated
        target.unchanged += outcome.unchanged
        if isinstance(target, ChunkOutcome):
            target.changed_rule_pks += outcome.changed_rule_pks
            target.notices += outcome.notices
            return
        self.changed_rule_pks += outcome.changed_rule_pks
        for label, message, line in outcome.notices:
            self.summary.warn(label, message, line)

    def _write_atomic(self, chunk: list[FileWrite]) -> ChunkOutcome:
        outcome = ChunkOutcome()
        with transaction.atomic():
            self._write_chunk(chunk, outcome)
        return outcome

    def _write_chunk(self, chunk: list[FileWrite], outcome: ChunkOutcome) -> None:
        now = timezone.now()
        creates: list[tuple[FileWrite, RuleWrite, Detection]] = []
        updates: list[tuple[FileWrite, RuleWrite, Detection]] = []
        moved: list[Detection] = []
        for file_write in chunk:
            for item in file_write.rules:
                if item.action == CREATE:
                    detection = self._new_detection(file_write, item)
                    creates.append((file_write, item, detection))
                elif item.action == UPDATE or self.force:
                    detection = self._changed_detection(file_write, item, now)
                    updates.append((file_write, item, detection))
                else:
                    moved.append(self._moved_detection(file_write, item))
        Detection.objects.bulk_create([detection for _, _, detection in creates])
        Detection.objects.bulk_update(
            [detection for _, _, detection in updates],
            DETECTION_UPDATE_FIELDS,
            batch_size=QUERY_CHUNK,
        )
        Detection.objects.bulk_update(moved, ["source_path", "source_hash"], batch_size=QUERY_CHUNK)

        updated_pks = [detection.pk for _, _, detection in updates]
        for model in (AttackMapping, DetectionDataSource, FalsePositive):
            for pks in _chunks(updated_pks, QUERY_CHUNK):
                model.objects.filter(detection_id__in=pks).delete()

        mappings, sources, false_positives, new_rules, changed_rules = [], [], [], [], []
        for file_write, item, detection in creates + updates:
            notes = self._children(detection, item, mappings, sources, false_positives)
            for message, line in notes:
                outcome.notices.append((file_write.label, message, line))
            messages = [message for message, _ in notes]
            rule_row = self._rule_row(detection, file_write, item, messages)
            if item.stored is None:
                new_rules.append(rule_row)
            else:
                changed_rules.append(rule_row)
        AttackMapping.objects.bulk_create(mappings, batch_size=QUERY_CHUNK)
        DetectionDataSource.objects.bulk_create(sources, batch_size=QUERY_CHUNK)
        FalsePositive.objects.bulk_create(false_positives, batch_size=QUERY_CHUNK)
        SigmaRule.objects.bulk_create(new_rules, batch_size=QUERY_CHUNK)
        SigmaRule.objects.bulk_update(changed_rules, RULE_UPDATE_FIELDS, batch_size=QUERY_CHUNK)

        self.written_rule_pks.update(row.pk for row in new_rules + changed_rules)
        text_changed = {
            item.stored.rule_pk for _, item, _ in updates if item.action == UPDATE
        }
        outcome.changed_rule_pks += [row.pk for row in new_rules if row.kind == RULE]
        outcome.changed_rule_pks += [
            row.pk for row in changed_rules if row.kind == RULE and row.pk in text_changed
        ]
        self._revisions_record(
            creates, updates, [*mappings, *sources, *false_positives, *new_rules]
        )
        outcome.created += len(creates)
        outcome.updated += sum(1 for _, item, _ in updates if item.action == UPDATE)
        outcome.unchanged += len(moved) + sum(1 for _, item, _ in updates if item.action != UPDATE)

    def _revisions_record(self, creates: list, updates: list, children: list) -> None:
        """Raise the revision of rewritten detections and store each written one in history."""
        updated_pks = [detection.pk for _, _, detection in updates]
        for pks in _chunks(updated_pks, QUERY_CHUNK):
            Detection.objects.filter(pk__in=pks).update(revision=F("revision") + 1)
        comments = {
            detection.pk: f"import_sigma: {file_write.path}"
            for file_write, _, detection in creates + updates
        }
        # A new detection's rows are all in memory, so they are not read back.
        created = {detection.pk: [detection] for _, _, detection in creates}
        for row in children:
            if row.detection_id in created:
                created[row.detection_id].append(row)
        for pks in _chunks(list(comments), QUERY_CHUNK):
            revisions_bulk_record(
                Detection,
                {pk: comments[pk] for pk in pks},
                created={pk: created[pk] for pk in pks if pk in created},
            )

    def _new_detection(self, file_write: FileWrite, item: RuleWrite) -> Detection:
        rule = item.rule
        status = self.status
        if rule.status in RETIRED_SIGMA_STATUSES:
            status = Detection.Status.DEPRECATED
        detection = Detection(
            uuid=uuid.UUID(rule.rule_id),
            slug=self._unique_slug(rule),
            platform=IMPORTED_PLATFORM,
            query_language=IMPORTED_PLATFORM,
            status=status,
            origin=Detection.Origin.SIGMA,
            version=1,
        )
        self._set_rule_fields(detection, file_write, item)
        return detection

    def _changed_detection(self, file_write: FileWrite, item: RuleWrite, now) -> Detection:
        stored = item.stored
        detection = Detection(pk=stored.detection_pk, uuid=uuid.UUID(stored.detection_uuid))
        detection.slug = stored.slug
        detection.version = stored.version + 1 if item.action == UPDATE else stored.version
        detection.updated_at = now
        self._set_rule_fields(detection, file_write, item)
        return detection

    def _moved_detection(self, file_write: FileWrite, item: RuleWrite) -> Detection:
        """Build the update of an unchanged rule: only the file's path and hash are written."""
        detection = Detection(pk=item.stored.detection_pk)
        detection.source_path = file_write.path[:MAX_SOURCE_PATH]
        detection.source_hash = file_write.digest
        return detection

    def _set_rule_fields(
        self, detection: Detection, file_write: FileWrite, item: RuleWrite
    ) -> None:
        rule = item.rule
        detection.title = rule.title
        detection.description = rule.description
        detection.severity = rule.level or DEFAULT_SEVERITY
        detection.confidence = CONFIDENCE_BY_SIGMA_STATUS.get(rule.status, Detection.Level.LOW)
        detection.sigma_status = rule.status
        detection.authors = split_authors(rule.author)
        detection.references = rule.references
        detection.date_created = rule.date
        detection.date_modified = rule.modified
        # NOTE: paths longer than the column are cut. The path only shows where the rule
        # came from, and a re-import compares the hash.
        detection.source_path = file_write.path[:MAX_SOURCE_PATH]
        detection.source_hash = file_write.digest

    def _children(self, detection, item: RuleWrite, mappings, sources, false_positives):
        """Build the detection's ATT&CK mappings, data sources and false positives.

        Returns (message, line) notes about tags and log sources that were not mapped.
        """
        rule, document = item.rule, item.document
        notes = []
        tag_outcome = self.catalogue.mappings(rule.tags)
        for position, row in enumerate(tag_outcome.rows):
            mappings.append(
                AttackMapping(
                    detection=detection,
                    position=position,
                    tactic_id=row.tactic_id,
                    technique_id=row.technique_id,
                    subtechnique_id=row.subtechnique_id,
                )
            )
        for index, message in tag_outcome.notes:
            notes.append((message, document.line_of(("tags", index))))
        rows, source_notes = self.catalogue.data_sources(rule.logsource)
        for position, (component_pk, label) in enumerate(rows):
            sources.append(
                DetectionDataSource(
                    detection=detection,
                    component_id=component_pk,
                    position=position,
                    log_source=label,
                )
            )
        notes += [(message, document.line_of(("logsource",))) for message in source_notes]
        for position, text in enumerate(rule.falsepositives):
            false_positives.append(
                FalsePositive(detection=detection, position=position, description=text)
            )
        return notes

    def _rule_row(
        self, detection: Detection, file_write: FileWrite, item: RuleWrite, messages: list[str]
    ) -> SigmaRule:
        rule = item.rule
        row = SigmaRule(
            detection=detection,
            position=0,
            rule_id=uuid.UUID(rule.rule_id),
            kind=rule.kind,
            name=rule.name,
            filename=rule_filename(file_write.path, item.index),
            yaml_text=item.document.text,
            title=rule.title,
            status=rule.status,
            level=rule.level,
            logsource=rule.logsource,
            tags=rule.tags,
            falsepositives=rule.falsepositives,
            is_valid=True,
            messages=messages,
            rule_references=rule.rule_references,
        )
        if item.stored is not None:
            row.pk = item.stored.rule_pk
        return row

    # --- Slugs --------------------------------------------------------------------

    def _unique_slug(self, rule: ImportedRule) -> str:
        """Return a slug from the title that no detection has; kept when upstream retitles."""
        if self._taken_slugs is None:
            self._taken_slugs = set(Detection.objects.values_list("slug", flat=True))
        base = slug_from_title(rule.title)
        candidate = base
        hex_id = rule.rule_id.replace("-", "")
        length = 8
        while candidate in self._taken_slugs:
            candidate = f"{base}-{hex_id[:length]}"
            length += 4
            if length > len(hex_id):
                candidate = f"{base}-{hex_id}-{len(self._taken_slugs)}"
        self._taken_slugs.add(candidate)
        return candidate

    # --- After the writes ---------------------------------------------------------

    def link_references(self) -> None:
        """Link every stored correlation rule and filter to the stored rules it names.

        Runs over all of them, not only this import's, so a correlation imported
        before the rules it names is linked once they arrive.
        """
        referring = list(
            SigmaRule.objects.filter(kind__in=[CORRELATION, FILTER]).values_list(
                "pk", "rule_references", "detection__source_path"
            )
        )
        if not referring:
            return
        names = {reference for _, references, _ in referring for reference in references}
        ids = [name for name in names if _is_uuid(name)]
        targets: dict[str, int] = {}
        for chunk in _chunks(sorted(names), QUERY_CHUNK):
            for pk, name in SigmaRule.objects.filter(name__in=chunk).values_list("pk", "name"):
                targets.setdefault(name, pk)
        for chunk in _chunks(ids, QUERY_CHUNK):
            rows = SigmaRule.objects.filter(rule_id__in=chunk).values_list("pk", "rule_id")
            for pk, rule_id in rows:
                targets[str(rule_id)] = pk
                targets[str(rule_id).upper()] = pk
        through = SigmaRule.referenced_rules.through
        links = []
        for pk, references, source_path in referring:
            for reference in references:
                target = targets.get(reference)
                if target is not None:
                    links.append(through(from_sigmarule_id=pk, to_sigmarule_id=target))
                elif reference != "any" and pk in self.written_rule_pks:
                    self.summary.warn(
                        source_path,
                        f"the rule {reference!r} named in the correlation or filter is not "
                        "imported yet; it is linked when a later import adds it",
                    )
        with transaction.atomic():
            through.objects.filter(from_sigmarule_id__in=[pk for pk, _, _ in referring]).delete()
            through.objects.bulk_create(links, batch_size=QUERY_CHUNK, ignore_conflicts=True)

    def schedule_renders(self) -> int:
        """Queue renders of the new and changed rules; correlations and filters are not rendered.

        TODO: render correlation rules and filters together with the rules they name;
        the renderer converts one rule at a time.
        """
        if not self.changed_rule_pks:
            return 0
        return len(renders_schedule(rule_ids=self.changed_rule_pks))


def split_authors(author: str) -> list[str]:
    """Split Sigma's `author` string into names; SigmaHQ separates names with commas."""
    return [name.strip() for name in author.split(",") if name.strip()]


def slug_from_title(title: str) -> str:
    """Return lowercase ASCII words of the title joined by single hyphens."""
    slug = slugify(title).replace("_", "-")
    slug = re.sub(r"-{2,}", "-", slug)[:MAX_SLUG_BASE].strip("-")
    return slug or "sigma-rule"


def rule_filename(path: str, index: int) -> str:
    """Name the stored Sigma file after the imported one: `sigma/<name>.yml`.

    Characters outside letters, digits, ".", "_" and "-" become "_", as the content
    format requires, and the second and later rules of one file get "-2", "-3".
    """
    name = PurePosixPath(path).name
    stem = name.rsplit(".", 1)[0] if "." in name else name
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", stem).strip(".") or "rule"
    if index:
        stem = f"{stem}-{index + 1}"
    stem = stem[: MAX_FILENAME - len("sigma/") - len(".yml")]
    return f"sigma/{stem}.yml"


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _chunks(values: list, size: int) -> Iterator[list]:
    for start in range(0, len(values), size):
        yield values[start : start + size]

