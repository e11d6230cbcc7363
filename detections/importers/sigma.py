"""Importing Sigma rule files: each rule, correlation rule or filter becomes a detection.

An import runs in three steps:

1. Read. Each file is hashed first. A file whose SHA-256 matches the stored hash of an
   imported detection is unchanged and is not parsed at all. Other files are decoded,
   read with the limits of `yamlread`, checked by `sigma_checks` and parsed by pySigma.
   A file with any problem fails as a whole: nothing of it is stored.
2. Plan. Rule ids used by two files fail both files. Each remaining rule is created,
   updated (its text changed) or left unchanged, by its Sigma id, which is also the
   detection's UUID. A rule id that belongs to an authored detection fails the file.
3. Write, one transaction per IMPORT_CHUNK_SIZE files. When a chunk fails in the
   database, its files are written again one by one so only the failing file is lost.
   Then correlation rules and filters are linked to the rules they name, and renders
   are queued for the new and changed rules in one `renders_schedule` call.
"""

from __future__ import annotations

import codecs
import hashlib
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.conf import settings

from detections.models import Detection

from .progress import Progress
from .report import ImportSummary
from .sigma_checks import document_problem
from .sources import ImportLimits, SourceFile
from .yamlread import YAMLDocument, YAMLReadError, read_documents

if TYPE_CHECKING:
    from detections.pysigma.importing import ImportedRule

logger = logging.getLogger(__name__)

# Columns of SigmaRule: `title` and `name` are CharField(max_length=300). pySigma 1.5
# already rejects titles over 256 characters.
MAX_TITLE_LENGTH = 300
MAX_NAME_LENGTH = 300


@dataclass
class ParsedFile:
    """A file read and parsed without a problem, with one entry per Sigma document."""

    source: SourceFile
    digest: str
    rules: list[tuple[YAMLDocument, ImportedRule]] = field(default_factory=list)

    @property
    def rule_ids(self) -> list[str]:
        return [rule.rule_id for _, rule in self.rules]


@dataclass
class SkippedFile:
    """A file whose bytes match an earlier import, with the rule ids it gave then."""

    source: SourceFile
    rule_ids: list[str]


def import_sigma(
    sources: Iterable[SourceFile],
    *,
    status: str | None = None,
    force: bool = False,
    progress: Progress | None = None,
) -> ImportSummary:
    """Import Sigma files; return the summary. One file's failure never stops the others.

    `status` is the workflow status of new detections (default IMPORT_SIGMA_STATUS).
    With `force`, files whose bytes did not change are parsed and their ATT&CK mappings
    and data sources written again, for example after `import_attack` added techniques.
    """
    progress = progress or Progress(None)
    limits = ImportLimits.from_settings()
    summary = ImportSummary()
    files = list(sources)
    logger.info("Sigma import started: %d files", len(files))

    stored = _stored_hashes()
    parsed: list[ParsedFile] = []
    skipped: list[SkippedFile] = []
    progress.start("reading", len(files))
    for source in files:
        progress.advance()
        if source.error is not None:
            summary.fail(source.label, source.error)
            continue
        digest = hashlib.sha256(source.data).hexdigest()
        if digest in stored and not force:
            skipped.append(SkippedFile(source, stored[digest]))
            continue
        item = _parse_file(source, digest, limits, summary)
        if item is not None:
            parsed.append(item)
    progress.finish()

    parsed, skipped = _without_duplicate_ids(parsed, skipped, summary)
    summary.unchanged += sum(len(item.rule_ids) for item in skipped)

    if parsed:
        _store(
            parsed,
            summary,
            status=status or settings.IMPORT_SIGMA_STATUS,
            force=force,
            progress=progress,
        )
    logger.info(
        "Sigma import finished: %d created, %d updated, %d unchanged, %d files failed, "
        "%d renders queued",
        summary.created,
        summary.updated,
        summary.unchanged,
        len(summary.failed),
        summary.renders_queued,
    )
    return summary


def _store(
    parsed: list[ParsedFile],
    summary: ImportSummary,
    *,
    status: str,
    force: bool,
    progress: Progress,
) -> None:
    """Write the parsed files, link correlations and filters, and queue renders."""
    from .sigma_store import SigmaStore

    store = SigmaStore(status=status, force=force, summary=summary)
    writes = store.plan(parsed)
    store.write(writes, chunk_size=max(1, settings.IMPORT_CHUNK_SIZE), progress=progress)
    store.link_references()
    summary.renders_queued = store.schedule_renders()


def _stored_hashes() -> dict[str, list[str]]:
    """Return the rule ids of every imported file by the SHA-256 of its bytes."""
    hashes: dict[str, list[str]] = defaultdict(list)
    rows = Detection.objects.filter(origin=Detection.Origin.SIGMA).values_list(
        "source_hash", "uuid"
    )
    for digest, rule_id in rows:
        if digest:
            hashes[digest].append(str(rule_id))
    return hashes


def _parse_file(
    source: SourceFile, digest: str, limits: ImportLimits, summary: ImportSummary
) -> ParsedFile | None:
    """Read and parse one file; on the first problem record the failure and return None."""
    # pySigma and the renderer take about 0.4 s to import (2 cores, August 2026), which
    # a re-import of unchanged files, parsing nothing, does without.
    from detections.pysigma.importing import ImportRuleError, parse_rule_document

    label = source.label
    documents = _read_yaml(source, limits, summary)
    if documents is None:
        return None

    item = ParsedFile(source, digest)
    for document in documents:
        problem = document_problem(document.value, limits.max_nesting)
        if problem is not None:
            summary.fail(label, problem.message, document.line_of(problem.path))
            return None
        try:
            rule = parse_rule_document(document.value)
        except ImportRuleError as exc:
            summary.fail(label, str(exc), document.line_of(exc.path))
            return None
        problem_text = _storage_problem(rule)
        if problem_text:
            summary.fail(label, problem_text, document.line)
            return None
        item.rules.append((document, rule))

    repeated = _repeated(item.rule_ids)
    if repeated:
        summary.fail(label, f"two documents of the file have the rule id {repeated}")
        return None
    return item


def _read_yaml(
    source: SourceFile, limits: ImportLimits, summary: ImportSummary
) -> list[YAMLDocument] | None:
    """Decode a file and read its YAML documents; on a problem record it and return None."""
    try:
        text = decode_text(source.data)
        documents = read_documents(
            text, max_depth=limits.max_nesting, max_items=limits.max_values
        )
    except YAMLReadError as exc:
        summary.fail(source.label, exc.message, exc.line)
        return None
    if len(documents) > 1:
        # pySigma skips empty documents, such as the one after a trailing `---`.
        documents = [document for document in documents if document.value is not None]
    if not documents:
        summary.fail(source.label, "the file is empty; a Sigma rule is a YAML mapping")
        return None
    if len(documents) == 1:
        # A file of one rule is stored exactly as written, comments included.
        documents[0].text = text
    return documents


def decode_text(data: bytes) -> str:
    """Decode a file as UTF-8; raise YAMLReadError for other encodings and for NUL bytes."""
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        raise YAMLReadError("the file is UTF-32 text; save it as UTF-8")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise YAMLReadError("the file is UTF-16 text; save it as UTF-8")
    nul = data.find(b"\0")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        if _looks_like_utf16(data):
            raise YAMLReadError(
                "the file looks like UTF-16 text without a byte order mark; save it as UTF-8"
            )
        raise YAMLReadError("the file contains a NUL byte; a Sigma rule is text", line)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise YAMLReadError(
            f"the file is not valid UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start}; "
            "save it as UTF-8",
            line,
        ) from exc


def _looks_like_utf16(data: bytes) -> bool:
    """Tell UTF-16 text from a stray NUL: ASCII in UTF-16 has a NUL in every second byte."""
    sample = data[:200]
    if len(sample) < 4:
        return False
    even = sample[0::2].count(0)
    odd = sample[1::2].count(0)
    return max(even, odd) >= len(sample) // 2 * 0.9


def _storage_problem(rule: ImportedRule) -> str | None:
    if len(rule.title) > MAX_TITLE_LENGTH:
        return f"the title is {len(rule.title)} characters long; the maximum is {MAX_TITLE_LENGTH}"
    if len(rule.name) > MAX_NAME_LENGTH:
        return f"the name is {len(rule.name)} characters long; the maximum is {MAX_NAME_LENGTH}"
    return None


def _repeated(values: list[str]) -> str | None:
    seen = set()
    for value in values:
        if value in seen:
            return value
        seen.add(value)
    return None


def _without_duplicate_ids(
    parsed: list[ParsedFile], skipped: list[SkippedFile], summary: ImportSummary
) -> tuple[list[ParsedFile], list[SkippedFile]]:
    """Fail every file whose rule id another file of this import also uses.

    Neither file is imported, because the import cannot know which of them is meant.
    What an earlier import stored under that id stays as it was.
    """
    owners: dict[str, list[str]] = defaultdict(list)
    for item in parsed:
        for rule_id in item.rule_ids:
            owners[rule_id].append(item.source.label)
    for item in skipped:
        for rule_id in item.rule_ids:
            owners[rule_id].append(item.source.label)
    failing: dict[str, str] = {}
    for rule_id, labels in owners.items():
        if len(labels) < 2:
            continue
        for label in labels:
            others = [other for other in labels if other != label][:3]
            failing.setdefault(
                label,
                f"rule id {rule_id} is also the id of a rule in {', '.join(others)}; "
                "each rule needs its own id, so none of these files was imported",
            )
    for label, reason in failing.items():
        summary.fail(label, reason)
    return (
        [item for item in parsed if item.source.label not in failing],
        [item for item in skipped if item.source.label not in failing],
    )

