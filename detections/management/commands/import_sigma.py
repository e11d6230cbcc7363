import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from detections.importers.progress import Progress
from detections.importers.sigma import import_sigma
from detections.importers.sources import ImportLimits, sources_from_paths
from detections.models import Detection


class Command(BaseCommand):
    # The system checks load every URL pattern and view, which doubles the start-up time
    # of an import; `manage.py check` and the server still run them.
    requires_system_checks = []
    help = (
        "Import Sigma rules from folders, single .yml files and .zip archives. Each rule, "
        "correlation rule and filter becomes a detection whose UUID is the rule's id; a "
        "re-import updates changed rules and skips unchanged files. One bad file never "
        "stops the import. Exit status 0 when every file imported, 1 otherwise."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "paths", nargs="+", type=Path, help="Folders, .yml files or .zip archives."
        )
        parser.add_argument(
            "--format",
            choices=["text", "json"],
            default="text",
            help="Summary on stdout: text (default) or JSON.",
        )
        parser.add_argument(
            "--status",
            choices=[
                Detection.Status.DRAFT,
                Detection.Status.REVIEW,
                Detection.Status.PUBLISHED,
            ],
            help=(
                "Workflow status of new detections (default: the IMPORT_SIGMA_STATUS setting, "
                "draft). Rules whose Sigma status is deprecated or unsupported start as "
                "deprecated. Detections imported before keep their status."
            ),
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help=(
                "Also parse files that did not change since the last import and write their "
                "ATT&CK mappings and data sources again, for example after import_attack."
            ),
        )

    def handle(
        self, *args, paths: list[Path], format: str, status: str | None, force: bool, **options
    ):
        limits = ImportLimits.from_settings()
        summary = import_sigma(
            sources_from_paths(paths, limits),
            status=status,
            force=force,
            progress=Progress(self.stderr._out),
        )
        if format == "json":
            self.stdout.write(json.dumps(summary.as_dict(), ensure_ascii=False))
        else:
            for line in summary.text_lines():
                self.stdout.write(line)
            self.stdout.write(f"renders queued: {summary.renders_queued}")
        if not summary.succeeded:
            raise CommandError(f"{len(summary.failed)} file(s) failed to import", returncode=1)
