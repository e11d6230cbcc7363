"""Reading and checking a content folder before anything touches the database.

Layout of a content folder:

    attack.yml                         ATT&CK catalogue subset
    attack-stix.json                   the same subset as STIX, for pySigma
    detections/<slug>/detection.yml    one detection
    detections/<slug>/sigma/*.yml      its Sigma rules, named in detection.yml
"""

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from detections.pysigma import ParsedRule, SigmaRuleError, parse_rule

from .schema import CATALOGUE_FIELDS, DETECTION_FIELDS, check_mapping
from .yamlio import FORMAT_VERSION, load_document

CATALOGUE_FILE = "attack.yml"
# The catalogue as a STIX bundle, written by export_content; pySigma reads it.
CATALOGUE_STIX_FILE = "attack-stix.json"
DETECTIONS_DIR = "detections"
DETECTION_FILE = "detection.yml"
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

    catalogue = None
    catalogue_path = root / CATALOGUE_FILE
    if catalogue_path.exists():
        catalogue = _read_checked(catalogue_path, root, CATALOGUE_FIELDS, issues)

    detections = []
    for path in sorted((root / DETECTIONS_DIR).glob(f"*/{DETECTION_FILE}")):
        document = _read_checked(path, root, DETECTION_FIELDS, issues)
        if document is not None:
            detections.append(_read_detection(path, root, document, issues))

    _check_unique(detections, issues)
    if issues:
        raise ContentError(issues)
    return ContentBundle(root=root, catalogue=catalogue, detections=detections)


def _read_checked(path: Path, root: Path, spec: dict, issues: list[ContentIssue]) -> dict | None:
    relative = path.relative_to(root).as_posix()
    text = _read_text(path, relative, issues)
    if text is None:
        return None
    try:
        document = load_document(text)
    except yaml.YAMLError as exc:
        issues.append(ContentIssue(relative, "", f"invalid YAML: {exc}"))
        return None
    problems = check_mapping(document, spec)
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


def _read_text(path: Path, relative: str, issues: list[ContentIssue]) -> str | None:
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        issues.append(
            ContentIssue(relative, "", f"file is {size} bytes; the limit is {MAX_FILE_BYTES}")
        )
        return None
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        issues.append(ContentIssue(relative, "", f"not UTF-8 text: {exc}"))
        return None


def _read_detection(
    path: Path, root: Path, document: dict, issues: list[ContentIssue]
) -> DetectionFile:
    relative = path.relative_to(root).as_posix()
    digest = hashlib.sha256(path.read_bytes())
    sigma_files = []
    for index, name in enumerate(document.get("sigma_rules") or []):
        where = f"sigma_rules[{index}]"
        sigma = _read_sigma(path.parent, root, name, relative, where, issues)
        if sigma is not None:
            sigma_files.append(sigma)
            digest.update(sigma.text.encode("utf-8"))
    detection = DetectionFile(relative, document, sigma_files, digest.hexdigest())
    _check_branch_rules(detection, issues)
    return detection


def _read_sigma(
    folder: Path, root: Path, name: str, relative: str, where: str, issues: list[ContentIssue]
) -> SigmaFile | None:
    rule_path = (folder / name).resolve()
    if not rule_path.is_relative_to(folder.resolve()):
        issues.append(ContentIssue(relative, where, f"{name!r} is outside the detection folder"))
        return None
    if not rule_path.is_file():
        issues.append(ContentIssue(relative, where, f"Sigma file {name!r} not found"))
        return None
    rule_relative = rule_path.relative_to(root.resolve()).as_posix()
    text = _read_text(rule_path, rule_relative, issues)
    if text is None:
        return None
    try:
        parsed = parse_rule(text, source=rule_relative)
    except SigmaRuleError as exc:
        issues.append(ContentIssue(relative, where, str(exc)))
        return None
    return SigmaFile(name, text, parsed)


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


def _check_unique(detections: list[DetectionFile], issues: list[ContentIssue]) -> None:
    seen: dict[tuple[str, str], str] = {}
    for detection in detections:
        keys = [("id", detection.document["id"]), ("slug", detection.document["slug"])]
        keys += [("Sigma rule id", sigma.parsed.rule_id) for sigma in detection.sigma_files]
        for kind, value in keys:
            other = seen.setdefault((kind, str(value)), detection.path)
            if other != detection.path:
                issues.append(
                    ContentIssue(detection.path, kind, f"{value} is also used by {other}")
                )
