from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from detections.content.exporter import ExportError, content_export


class Command(BaseCommand):
    help = (
        "Write every detection, every playbook and the ATT&CK catalogue as a content "
        "folder under DIR."
    )

    def add_arguments(self, parser):
        parser.add_argument("directory", type=Path, help="Folder to write; created if missing.")

    def handle(self, *args, directory: Path, **options):
        try:
            written = content_export(root=directory)
        except ExportError as exc:
            raise CommandError(f"nothing was exported to {directory}: {exc}") from exc
        self.stdout.write(self.style.SUCCESS(f"{len(written)} files written to {directory}"))
