"""Reading and checking a content folder before anything touches the database.

Layout of a content folder:

    attack.yml                         ATT&CK catalogue subset
    attack-stix.json                   the same subset as STIX, for pySigma
    detections/<slug>/detection.yml    one detection
    detections/<slug>/sigma/*.yml      its Sigma rules, named in detection.yml
    detections/<slug>/events/*.ndjson  recorded events of its tests, named in detection.yml
"""

import hashlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import yaml

from detections.pysigma import ParsedRule, SigmaRuleError, parse_rule
from detections.validation.events import (
    MAX_EVENTS_FILE_BYTES,
    EventFileError,
    check_event,
    read_events,
)

from .checks import (
    DETECTION_FILE,
    catalogue_problems,
    detection_problems,
    sigma_path_problem,
    sigma_storage_problems,
)
from .files import UnreadableFile, read_inside
from .schema import CATALOGUE_FIELDS, DETECTION_FIELDS, check_mapping
from .yamlio import FORMAT_VERSION, load_document

CATALOGUE_FILE = "attack.yml"
# The catalogue as a STIX bundle, written by export_content; pySigma reads it.
CATALOGUE_STIX_FILE = "attack-stix.json"
DETECTIONS_DIR = "detections"
MAX_FILE_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class ContentIssue:
    """One problem in a content file: the file, the field path and what is wrong."""

    path: str
    field: str
    message: str

    def __str__(self) -> str:
        location = f"{self.path}: {self.field}" if self.field else self.path
        return f"{location}: {self.message}"


class ContentError(Exception):
    """Content that cannot be loaded; `issues` lists every problem found."""

    def __init__(self, issues: list[ContentIssue]):
        self.issues = issues
        super().__init__("\n".join(str(issue) for issue in issues))


@dataclass
class SigmaFile:
    """A Sigma rule file of a detection, as bytes on disk and as parsed fields."""

    relative_path: str
    text: str
    parsed: ParsedRule


@dataclass
class DetectionFile:
    """A detection.yml with its Sigma files, checked against the format."""

    path: str
    document: dict
    sigma_files: list[SigmaFile] = field(default_factory=list)
    source_hash: str = ""


@dataclass
class ContentBundle:
    """Everything read from one content folder."""

    root: Path
    catalogue: dict | None
    detections: list[DetectionFile]


def read_content(root: Path) -> ContentBundle:
    """Read and check a content folder; raise ContentError listing every problem."""
    root = Path(root)
    issues: list[ContentIssue] = []
    if not root.is_dir():
        raise ContentError([ContentIssue(str(root), "", "content folder not found")])
    resolved_root = root.resolve()

    catalogue = None
    catalogue_path = root / CATALOGUE_FILE
    if catalogue_path.is_symlink() or catalogue_path.exists():
        text = _read_text(catalogue_path, resolved_root, CATALOGUE_FILE, issues)
        catalogue = _parse_checked(text, CATALOGUE_FILE, CATALOGUE_FIELDS, issues)
        if catalogue is not None:
            _add_issues(issues, CATALOGUE_FILE, catalogue_problems(catalogue))

    detections = []
    for path in sorted((root / DETECTIONS_DIR).glob(f"*/{DETECTION_FILE}")):
        relative = path.relative_to(root).as_posix()
        text = _read_text(path, resolved_root, relative, issues)
        document = _parse_checked(text, relative, DETECTION_FIELDS, issues)
        if document is None:
            continue
        problems = detection_problems(document, folder_name=path.parent.name)
        _add_issues(issues, relative, problems)
        if not problems:
            detection = DetectionFile(relative, document)
            _read_sigma_files(detection, text, path.parent, issues)
            _read_events_files(detection, path.parent, issues)
            detections.append(detection)

    _check_unique(detections, issues)
    if issues:
        raise ContentError(issues)
    return ContentBundle(root=root, catalogue=catalogue, detections=detections)


def _add_issues(issues: list[ContentIssue], relative: str, problems) -> None:
    issues.extend(ContentIssue(relative, where, message) for where, message in problems)


def _read_text(path: Path, folder: Path, relative: str, issues: list[ContentIssue]) -> str | None:
    """Read a UTF-8 file that resolves inside `folder`, or add an issue and return None."""
    try:
        data = read_inside(path, folder, MAX_FILE_BYTES)
    except UnreadableFile as exc:
        issues.append(ContentIssue(relative, "", str(exc)))
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        issues.append(ContentIssue(relative, "", f"not UTF-8 text: {exc}"))
        return None


def _parse_checked(
    text: str | None, relative: str, spec: dict, issues: list[ContentIssue]
) -> dict | None:
    if text is None:
        return None
    try:
        document = load_document(text)
    except yaml.YAMLError as exc:
        issues.append(ContentIssue(relative, "", f"invalid YAML: {exc}"))
        return None
    problems = check_mapping(document, spec)
    _add_issues(issues, relative, problems)
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
    detection: DetectionFile, text: str, folder: Path, issues: list[ContentIssue]
) -> None:
    """Read and parse the detection's Sigma files, and hash them with its detection.yml."""
    digest = hashlib.sha256(text.encode("utf-8"))
    first_index: dict[str, int] = {}
    for index, name in enumerate(detection.document.get("sigma_rules") or []):
        where = f"sigma_rules[{index}]"
        sigma = _read_sigma(folder, name, detection.path, where, issues)
        if sigma is None:
            continue
        first = first_index.setdefault(sigma.parsed.rule_id, index)
        if first != index:
            issues.append(
                ContentIssue(
                    detection.path,
                    where,
                    f"Sigma rule id {sigma.parsed.rule_id} is also the id of "
                    f"sigma_rules[{first}]; each file needs its own rule id",
                )
            )
            continue
        detection.sigma_files.append(sigma)
        digest.update(sigma.text.encode("utf-8"))
    detection.source_hash = digest.hexdigest()
    _check_branch_rules(detection, issues)
    _check_tuning_rules(detection, issues)


def _read_sigma(
    folder: Path, name: str, relative: str, where: str, issues: list[ContentIssue]
) -> SigmaFile | None:
    # `name` has passed checks.sigma_path_problem: relative, with no ".." segments.
    rule_relative = f"{PurePosixPath(relative).parent}/{name}"
    # The detection folder resolves inside `root`, because its detection.yml did.
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


def _read_events_files(detection: DetectionFile, folder: Path, issues: list[ContentIssue]) -> None:
    """Read each test's `events` file into its `recorded_events`, and hash the files too."""
    digest = hashlib.sha256(detection.source_hash.encode("ascii"))
    for index, test in enumerate(detection.document.get("tests") or []):
        name = test.get("events")
        if not name:
            _check_inline_events(detection.path, index, test.get("recorded_events") or [], issues)
            continue
        where = f"tests[{index}].events"
        if test.get("recorded_events"):
            issues.append(
                ContentIssue(
                    detection.path,
                    where,
                    "give the events either inline in recorded_events or in a file, not both",
                )
            )
            continue
        problem = events_path_problem(name)
        if problem:
            issues.append(ContentIssue(detection.path, where, problem))
            continue
        events_relative = f"{PurePosixPath(detection.path).parent}/{name}"
        try:
            data = read_inside(folder / name, folder.resolve(), MAX_EVENTS_FILE_BYTES)
        except UnreadableFile as exc:
            issues.append(ContentIssue(detection.path, where, f"events file {events_relative}: {exc}"))
            continue
        try:
            test["recorded_events"] = read_events(data, name=events_relative)
        except EventFileError as exc:
            issues.append(ContentIssue(detection.path, where, str(exc)))
            continue
        digest.update(name.encode("utf-8") + b"\0" + data + b"\0")
    detection.source_hash = digest.hexdigest()


def _check_inline_events(
    relative: str, index: int, events: list[dict], issues: list[ContentIssue]
) -> None:
    for position, event in enumerate(events):
        try:
            check_event(event, name=f"recorded_events[{position}]")
        except EventFileError as exc:
            issues.append(ContentIssue(relative, f"tests[{index}]", str(exc)))


def events_path_problem(name: str) -> str | None:
    """Describe why `name` is not a safe events file path, or return None."""
    problem = sigma_path_problem(name)
    if problem:
        return problem.replace("Sigma file path", "events file path")
    if not name.startswith("events/"):
        return f"{name!r} is outside the events/ folder; keep events files in events/"
    return None


def _check_branch_rules(detection: DetectionFile, issues: list[ContentIssue]) -> None:
    rule_ids = {sigma.parsed.rule_id for sigma in detection.sigma_files}
    for q_index, query in enumerate(detection.document.get("queries") or []):
        for b_index, branch in enumerate(query.get("branches") or []):
            rule_id = branch.get("sigma_rule")
            if rule_id and rule_id not in rule_ids:
                issues.append(
                    ContentIssue(
                        detection.path,
                        f"queries[{q_index}].branches[{b_index}].sigma_rule",
                        f"{rule_id} is not the id of any rule in sigma_rules",
                    )
                )


def _check_tuning_rules(detection: DetectionFile, issues: list[ContentIssue]) -> None:
    rule_ids = {sigma.parsed.rule_id for sigma in detection.sigma_files}
    for index, entry in enumerate(detection.document.get("tuning") or []):
        for r_index, rule_id in enumerate(entry.get("rules") or []):
            if rule_id not in rule_ids:
                issues.append(
                    ContentIssue(
                        detection.path,
                        f"tuning[{index}].rules[{r_index}]",
                        f"{rule_id} is not the id of any rule in sigma_rules",
                    )
                )


def _check_unique(detections: list[DetectionFile], issues: list[ContentIssue]) -> None:
    seen: dict[tuple[str, str], str] = {}
    for detection in detections:
        keys = [("id", detection.document["id"]), ("slug", detection.document["slug"])]
        keys += [("Sigma rule id", sigma.parsed.rule_id) for sigma in detection.sigma_files]
        entries = detection.document.get("tuning") or []
        keys += [("tuning entry id", entry["id"]) for entry in entries]
        for kind, value in keys:
            other = seen.setdefault((kind, str(value)), detection.path)
            if other != detection.path:
                issues.append(
                    ContentIssue(detection.path, kind, f"{value} is also used by {other}")
                )
