"""Writing stored detections and the ATT&CK catalogue back out as a content folder."""

from pathlib import Path

from detections.models import Detection
from detections.pysigma.attack_data import stix_bundle_text

from .documents import catalogue_document, detection_files
from .reader import CATALOGUE_FILE, CATALOGUE_STIX_FILE, DETECTIONS_DIR
from .yamlio import dump_document


def content_export(*, root: Path) -> list[Path]:
    """Write every detection and the catalogue under `root`; return the files written."""
    catalogue = catalogue_document()
    written = [
        _write(root / CATALOGUE_FILE, dump_document(catalogue)),
        _write(root / CATALOGUE_STIX_FILE, stix_bundle_text(catalogue)),
    ]
    detections = Detection.objects.prefetch_related(
        "mappings__tactic",
        "mappings__technique",
        "mappings__subtechnique",
        "data_sources__component",
        "queries__branches__sigma_rule",
        "sigma_rules",
        "false_positives",
        "tests__telemetry",
        "related",
        "other_platforms",
    )
    for detection in detections:
        folder = root / DETECTIONS_DIR / detection.slug
        for name, text in detection_files(detection).items():
            written.append(_write(folder / name, text))
    return written


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))
    return path
