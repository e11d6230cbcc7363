from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from detections.content.loader import content_load
from detections.content.reader import ContentError
from detections.models import Detection, DetectionTest, ValidationRun
from detections.validation.runs import validation_request


class Command(BaseCommand):
    help = (
        "Load detections and playbooks from a content folder (default: the repository's "
        "content/). "
        "All files are checked first and written in one transaction. A detection "
        "changed in the portal since its last load is reported and kept, unless --force."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", nargs="?", type=Path, help="Content folder to load.")
        parser.add_argument(
            "--force",
            action="store_true",
            help="Overwrite detections changed in the portal and reload unchanged ones.",
        )

    def handle(self, *args, path: Path | None, force: bool, **options):
        root = path or settings.CONTENT_DIR
        try:
            report = content_load(root=root, force=force)
        except ContentError as exc:
            count = len(exc.issues)
            raise CommandError(
                f"content in {root} was not loaded ({count} problem(s)); nothing was changed:\n"
                f"{exc}"
            ) from exc
        for label, slugs in (
            ("created", report.created),
            ("updated", report.updated),
            ("unchanged", report.unchanged),
        ):
            for slug in slugs:
                self.stdout.write(f"{label}: {slug}")
        playbooks = report.playbooks
        for label, slugs in (
            ("playbook created", playbooks.created),
            ("playbook updated", playbooks.updated),
            ("playbook unchanged", playbooks.unchanged),
        ):
            for slug in slugs:
                self.stdout.write(f"{label}: {slug}")
        for slug in report.conflicts + playbooks.conflicts:
            self.stderr.write(
                f"kept: {slug} was changed in the portal since it was loaded; "
                "export it to keep the edits, or load with --force to overwrite them"
            )
        # New and changed detections with tests are validated by the workers too.
        changed = Detection.objects.filter(
            slug__in=report.created + report.updated, tests__origin=DetectionTest.Origin.AUTHORED
        ).distinct()
        validations = [
            validation_request(detection, trigger=ValidationRun.Trigger.CONTENT)
            for detection in changed
        ]
        self.stdout.write(
            self.style.SUCCESS(
                f"{len(report.created)} created, {len(report.updated)} updated, "
                f"{len(report.unchanged)} unchanged, {len(report.conflicts)} kept; "
                f"{report.renders_queued} renders and {len(validations)} validation runs "
                "queued for the workers; playbooks: "
                f"{len(playbooks.created)} created, {len(playbooks.updated)} updated, "
                f"{len(playbooks.unchanged)} unchanged, {len(playbooks.conflicts)} kept"
            )
        )
