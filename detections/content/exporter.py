"""Writing stored detections and the ATT&CK catalogue back out as a content folder."""

from pathlib import Path

from detections.models import Detection
from detections.pysigma.attack_data import stix_bundle_text

from .checks import PATH_SEGMENT_PATTERN, sigma_path_problem
from .documents import catalogue_document, detection_files
from .reader import CATALOGUE_FILE, CATALOGUE_STIX_FILE, DETECTION_FILE, DETECTIONS_DIR
from .yamlio import dump_document


class ExportError(Exception):
    """A stored detection whose files cannot be written safely; nothing was written."""


def content_export(*, root: Path) -> list[Path]:
    """Write every detection, playbook and the catalogue under `root`; return the files written.

    Every path is checked before the first file is written, so a stored Sigma file
    name or a symbolic link that would put a file outside its detection's folder
    raises ExportError and leaves `root` untouched.
    """
    root = root.resolve()
    catalogue = catalogue_document()
    files = {
        _path_inside(root, CATALOGUE_FILE): dump_document(catalogue),
        _path_inside(root, CATALOGUE_STIX_FILE): stix_bundle_text(catalogue),
    }
    detections = Detection.objects.prefetch_related(
        "mappings__tactic",
        "mappings__technique",
        "mappings__subtechnique",
        "data_sources__component",
        "queries__branches__sigma_rule",
        "sigma_rules",
        "false_positives",
        "tests__telemetry",
        "tuning_entries",
        "related",
        "other_platforms",
    )
    for detection in detections:
        for name, text in detection_files(detection).items():
            files[_detection_path(root, detection, name)] = text
    # Imported here because playbooks.content.exporter imports ExportError from this module.
    from playbooks.content.exporter import playbook_export_files

    files.update(playbook_export_files(root))
    return [_write(path, text) for path, text in files.items()]


def _detection_path(root: Path, detection: Detection, name: str) -> Path:
    """Return where to write file `name` of a detection, or raise ExportError."""
    slug = detection.slug
    if not PATH_SEGMENT_PATTERN.fullmatch(slug) or slug in {".", ".."}:
        raise ExportError(f"detection {slug!r}: the slug cannot be used as a folder name")
    problem = None if name == DETECTION_FILE else sigma_path_problem(name)
    if problem:
        raise ExportError(f"detection {slug!r}: Sigma file not exported: {problem}")
    return _path_inside(root / DETECTIONS_DIR / slug, name)


def _path_inside(folder: Path, name: str) -> Path:
    """Return `folder / name`, or raise ExportError if a symbolic link takes it elsewhere."""
    path = folder / name
    if not path.resolve().is_relative_to(folder):
        raise ExportError(
            f"{path} resolves to {path.resolve()}, outside {folder}; "
            "remove the symbolic link or export to an empty folder"
        )
    return path


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))
    return path
