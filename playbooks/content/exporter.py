"""The files of every stored playbook, by the path `export_content` writes them to."""

from pathlib import Path

from detections.content.checks import PATH_SEGMENT_PATTERN, sigma_path_problem
from detections.content.exporter import ExportError
from playbooks.models import Playbook

from .documents import playbook_files
from .reader import PLAYBOOKS_DIR
from .schema import PLAYBOOK_FILE


def playbook_export_files(root: Path) -> dict[Path, str]:
    """Return the text of every playbook file under the resolved folder `root`.

    Raises ExportError, before anything is written, for a slug or Sigma file name
    that would put a file outside its playbook's folder.
    """
    files = {}
    playbooks = Playbook.objects.prefetch_related(
        "links__detection",
        "inputs",
        "steps__queries__sigma_rule",
        "questions__queries__sigma_rule",
        "hunts__queries__sigma_rule",
        "sigma_rules",
    )
    for playbook in playbooks:
        for name, text in playbook_files(playbook).items():
            files[_playbook_path(root, playbook, name)] = text
    return files


def _playbook_path(root: Path, playbook: Playbook, name: str) -> Path:
    slug = playbook.slug
    if not PATH_SEGMENT_PATTERN.fullmatch(slug) or slug in {".", ".."}:
        raise ExportError(f"playbook {slug!r}: the slug cannot be used as a folder name")
    problem = None if name == PLAYBOOK_FILE else sigma_path_problem(name)
    if problem:
        raise ExportError(f"playbook {slug!r}: Sigma file not exported: {problem}")
    folder = root / PLAYBOOKS_DIR / slug
    path = folder / name
    if not path.resolve().is_relative_to(folder):
        raise ExportError(
            f"{path} resolves to {path.resolve()}, outside {folder}; "
            "remove the symbolic link or export to an empty folder"
        )
    return path
