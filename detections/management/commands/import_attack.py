import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from detections.importers.attack import import_attack
from detections.importers.progress import Progress


class Command(BaseCommand):
    # The system checks load every URL pattern and view, which doubles the start-up time
    # of an import; `manage.py check` and the server still run them.
    requires_system_checks = []
    help = (
        "Import MITRE ATT&CK from a STIX 2.x bundle file (such as enterprise-attack.json) or "
        "a folder of STIX JSON files (MITRE's cti repository layout): tactics, techniques, "
        "sub-techniques, data components, detection strategies and analytics, with revoked "
        "and deprecated objects marked. Bad objects are reported and left out; the rest is "
        "written in one transaction. Exit status 0 when nothing failed, 1 otherwise."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path, help="A STIX bundle file or a folder of STIX files.")
        parser.add_argument(
            "--format",
            choices=["text", "json"],
            default="text",
            help="Summary on stdout: text (default) or JSON.",
        )

    def handle(self, *args, path: Path, format: str, **options):
        if not path.exists():
            raise CommandError(f"{path} does not exist; give a STIX bundle file or folder")
        summary = import_attack(path, progress=Progress(self.stderr._out))
        if format == "json":
            self.stdout.write(json.dumps(summary.as_dict(), ensure_ascii=False))
        else:
            for line in summary.text_lines():
                self.stdout.write(line)
        if not summary.succeeded:
            raise CommandError(f"{len(summary.failed)} object(s) or file(s) failed", returncode=1)
