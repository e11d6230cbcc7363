import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from detections.importers.atomics import import_atomics
from detections.importers.progress import Progress


class Command(BaseCommand):
    # The system checks load every URL pattern and view, which doubles the start-up time
    # of an import; `manage.py check` and the server still run them.
    requires_system_checks = []
    help = (
        "Import Atomic Red Team tests from the atomics folder, or from one technique's YAML "
        "file, as tests of every detection mapped to the test's technique or sub-technique. "
        "The tests' commands are never stored or run. Exit status 0 when every file "
        "imported, 1 otherwise."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "paths", nargs="+", type=Path, help="The atomics folder, or technique YAML files."
        )
        parser.add_argument(
            "--format",
            choices=["text", "json"],
            default="text",
            help="Summary on stdout: text (default) or JSON.",
        )

    def handle(self, *args, paths: list[Path], format: str, **options):
        summary = import_atomics(paths, progress=Progress(self.stderr._out))
        if format == "json":
            data = summary.as_dict() | {
                "tests_read": summary.tests_read,
                "tests_unmatched": summary.tests_unmatched,
                "links_removed": summary.links_removed,
            }
            self.stdout.write(json.dumps(data, ensure_ascii=False))
        else:
            for line in summary.text_lines():
                self.stdout.write(line)
        if not summary.succeeded:
            raise CommandError(f"{len(summary.failed)} file(s) failed to import", returncode=1)
