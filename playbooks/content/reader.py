"""Reading and checking the playbooks of a content folder before anything is written.

Layout:

    playbooks/<slug>/playbook.yml      one playbook
    playbooks/<slug>/sigma/*.yml       Sigma forms of its queries, named by `sigma:`

Files are read with the same rules as detection files: regular files inside the
content folder only, at most 4 MiB, UTF-8, parsed by the strict YAML loader.
"""

import hashlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import yaml

from detections.content.checks import sigma_storage_problems
from detections.content.files import UnreadableFile, read_inside
from detections.content.reader import MAX_FILE_BYTES, ContentError, ContentIssue, SigmaFile
from detections.content.schema import check_mapping
from detections.content.yamlio import FORMAT_VERSION, load_document
from detections.pysigma import SigmaRuleError, parse_rule

from .checks import playbook_problems, sigma_paths
from .schema import PLAYBOOK_FIELDS, PLAYBOOK_FILE

PLAYBOOKS_DIR = "playbooks"


@dataclass
class PlaybookFile:
    """A playbook.yml with the Sigma files its queries name, checked against the format."""

    path: str
    document: dict
    # Sigma files by their path relative to the playbook folder, in first-use order,
    # and the field path of the first query that names each.
    sigma_files: dict[str, SigmaFile] = field(default_factory=dict)
    sigma_fields: dict[str, str] = field(default_factory=dict)
    source_hash: str = ""


@dataclass
class PlaybookBundle:
    """Every playbook read from one content folder."""

    playbooks: list[PlaybookFile]


def read_playbooks(root: Path) -> PlaybookBundle:
    """Read and check `root/playbooks/`; raise ContentError listing every problem.

    A content folder without a playbooks folder has no playbooks.
    """
    root = Path(root)
    resolved_root = root.resolve()
    issues: list[ContentIssue] = []
    playbooks = []
    for path in sorted((root / PLAYBOOKS_DIR).glob(f"*/{PLAYBOOK_FILE}")):
        relative = path.relative_to(root).as_posix()
        text = _read_text(path, resolved_root, relative, "", issues)
        document = _parse_checked(text, relative, issues)
        if document is None:
            continue
        problems = playbook_problems(document, folder_name=path.parent.name)
        issues.extend(ContentIssue(relative, where, message) for where, message in problems)
        if problems:
            continue
        playbook = PlaybookFile(relative, document)
        _read_sigma_files(playbook, text, path.parent, issues)
        playbooks.append(playbook)
    _check_unique(playbooks, issues)
    if issues:
        raise ContentError(issues)
    return PlaybookBundle(playbooks)


def _read_text(
    path: Path, folder: Path, relative: str, where: str, issues: list[ContentIssue]
) -> str | None:
    """Read a UTF-8 file that resolves inside `folder`, or add an issue and return None."""
    try:
        data = read_inside(path, folder, MAX_FILE_BYTES)
    except UnreadableFile as exc:
        issues.append(ContentIssue(relative, where, str(exc)))
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        issues.append(ContentIssue(relative, where, f"not UTF-8 text: {exc}"))
        return None


def _parse_checked(text: str | None, relative: str, issues: list[ContentIssue]) -> dict | None:
    if text is None:
        return None
    try:
        document = load_document(text)
    except yaml.YAMLError as exc:
        issues.append(ContentIssue(relative, "", f"invalid YAML: {exc}"))
        return None
    problems = check_mapping(document, PLAYBOOK_FIELDS)
    issues.extend(ContentIssue(relative, where, message) for where, message in problems)
    if problems:
        return None
    if document["format_version"] != FORMAT_VERSION:
        issues.append(
            ContentIssue(
                relative,
                "format_version",
                f"version {document['format_version']} is not supported; "
                f"this portal reads version {FORMAT_VERSION}",
            )
        )
        return None
    return document


def _read_sigma_files(
    playbook: PlaybookFile, text: str, folder: Path, issues: list[ContentIssue]
) -> None:
    """Read and parse each Sigma file once, and hash them with the playbook.yml."""
    digest = hashlib.sha256(text.encode("utf-8"))
    for where, name in sigma_paths(playbook.document):
        if name in playbook.sigma_fields:
            continue
        playbook.sigma_fields[name] = f"{where}.sigma"
        sigma = _read_sigma(folder, name, playbook.path, f"{where}.sigma", issues)
        if sigma is None:
            continue
        rule_id = sigma.parsed.rule_id
        other = next(
            (path for path, item in playbook.sigma_files.items() if item.parsed.rule_id == rule_id),
            None,
        )
        if other is not None:
            issues.append(
                ContentIssue(
                    playbook.path,
                    f"{where}.sigma",
                    f"Sigma rule id {rule_id} is also the id of {other}; "
                    "each file needs its own rule id",
                )
            )
            continue
        playbook.sigma_files[name] = sigma
        digest.update(b"\0" + name.encode("utf-8") + b"\0" + sigma.text.encode("utf-8"))
    playbook.source_hash = digest.hexdigest()


def _read_sigma(
    folder: Path, name: str, relative: str, where: str, issues: list[ContentIssue]
) -> SigmaFile | None:
    # `name` has passed checks.sigma_path_problem: relative, with no ".." segments.
    rule_relative = f"{PurePosixPath(relative).parent}/{name}"
    try:
        data = read_inside(folder / name, folder.resolve(), MAX_FILE_BYTES)
    except UnreadableFile as exc:
        issues.append(ContentIssue(relative, where, f"Sigma file {rule_relative}: {exc}"))
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        issues.append(ContentIssue(relative, where, f"{rule_relative}: not UTF-8 text: {exc}"))
        return None
    try:
        parsed = parse_rule(text, source=rule_relative)
    except SigmaRuleError as exc:
        issues.append(ContentIssue(relative, where, str(exc)))
        return None
    problems = sigma_storage_problems(parsed)
    for message in problems:
        issues.append(ContentIssue(relative, where, f"{rule_relative}: {message}"))
    return None if problems else SigmaFile(name, text, parsed)


def _check_unique(playbooks: list[PlaybookFile], issues: list[ContentIssue]) -> None:
    seen: dict[tuple[str, str], str] = {}
    for playbook in playbooks:
        keys = [("id", playbook.document["id"]), ("slug", playbook.document["slug"])]
        keys += [("Sigma rule id", sigma.parsed.rule_id) for sigma in playbook.sigma_files.values()]
        for kind, value in keys:
            other = seen.setdefault((kind, str(value)), playbook.path)
            if other != playbook.path:
                issues.append(ContentIssue(playbook.path, kind, f"{value} is also used by {other}"))
