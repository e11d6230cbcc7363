import time
import uuid

from django.core.management.base import BaseCommand, CommandError

from detections.models import Detection, Render, SigmaRule
from detections.pysigma.convert import render_targets
from detections.rendering import renders_recover, renders_run, renders_schedule


class Command(BaseCommand):
    help = (
        "Render the Sigma rules of the given detections (default: all) for every target. "
        "Renders whose rule text, target and package versions are unchanged are skipped "
        "unless --force. Runs on the workers, or in this process with --inline. Exits 0 "
        "when it ran, even if some renders failed; the summary lists them."
    )

    def add_arguments(self, parser):
        parser.add_argument("slugs", nargs="*", help="Detection slugs; all detections if none.")
        parser.add_argument(
            "--inline",
            action="store_true",
            help="Render in this process instead of on the workers.",
        )
        parser.add_argument(
            "--force", action="store_true", help="Render again even when nothing changed."
        )
        parser.add_argument(
            "--target",
            action="append",
            dest="targets",
            help="Render only this target key; repeat for several.",
        )
        parser.add_argument(
            "--wait",
            type=float,
            default=600,
            help="Seconds to wait for the workers (default 600; 0: don't wait).",
        )

    def handle(self, *args, slugs, inline, force, targets, wait, **options):
        self._check_targets(targets)
        self._last_tenth = None
        rule_ids = self._rule_ids(slugs)
        if not inline:
            renders_recover()
        queued = renders_schedule(
            rule_ids=rule_ids, targets=targets, force=force, enqueue=not inline
        )
        # Renders queued earlier, by load_content or a run whose broker was down, are
        # part of this run too.
        pending = sorted(set(queued) | set(self._queued_ids(rule_ids, targets)))
        self.stderr.write(f"{len(queued)} renders queued for {len(rule_ids)} Sigma rules")
        if inline:
            self._run_inline(pending)
        elif wait > 0 and pending:
            self._wait(pending, wait)
        self._summary(rule_ids, targets)

    def _check_targets(self, targets: list[str] | None) -> None:
        configured = render_targets()
        unknown = sorted(set(targets or []) - set(configured))
        if unknown:
            raise CommandError(
                f"unknown render target: {', '.join(unknown)}; "
                f"configured targets: {', '.join(configured)}"
            )

    def _queued_ids(self, rule_ids: list[int], targets: list[str] | None) -> list[int]:
        renders = Render.objects.filter(sigma_rule_id__in=rule_ids, status=Render.Status.QUEUED)
        if targets:
            renders = renders.filter(target__in=targets)
        return list(renders.values_list("pk", flat=True))

    def _rule_ids(self, slugs: list[str]) -> list[int]:
        detections = Detection.objects.all()
        if slugs:
            missing = sorted(
                set(slugs) - set(detections.filter(slug__in=slugs).values_list("slug", flat=True))
            )
            if missing:
                raise CommandError(f"no detection with slug: {', '.join(missing)}")
            detections = detections.filter(slug__in=slugs)
        return list(SigmaRule.objects.filter(detection__in=detections).values_list("pk", flat=True))

    def _run_inline(self, render_ids: list[int]) -> None:
        done = 0

        def progress(render) -> None:
            nonlocal done
            done += 1
            self._progress(done, len(render_ids))

        renders_run(render_ids=render_ids, task_id=f"inline-{uuid.uuid4()}", progress=progress)
        self._progress_end()

    def _wait(self, render_ids: list[int], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pending = Render.objects.filter(pk__in=render_ids).exclude(status__in=Render.TERMINAL)
        remaining = pending.count()
        while remaining and time.monotonic() < deadline:
            self._progress(len(render_ids) - remaining, len(render_ids))
            time.sleep(0.5)
            remaining = pending.count()
        self._progress(len(render_ids) - remaining, len(render_ids))
        self._progress_end()
        if remaining:
            self.stderr.write(
                f"{remaining} renders still waiting after {timeout:.0f} s; is a worker "
                "running? Start one with: celery -A portal worker -Q render,validate"
            )

    def _progress(self, done: int, total: int) -> None:
        """Redraw a progress bar on a terminal; elsewhere write a line every tenth."""
        if self.stderr.isatty():
            width = 30
            filled = width * done // total if total else width
            bar = f"[{'#' * filled}{'.' * (width - filled)}]"
            self.stderr.write(f"\r{bar} {done}/{total} renders", ending="")
            self.stderr.flush()
            return
        tenth = 10 * done // total if total else 10
        if tenth != self._last_tenth:
            self._last_tenth = tenth
            self.stderr.write(f"{done}/{total} renders")

    def _progress_end(self) -> None:
        if self.stderr.isatty():
            self.stderr.write("")

    def _summary(self, rule_ids: list[int], targets: list[str] | None) -> None:
        renders = Render.objects.filter(sigma_rule_id__in=rule_ids)
        if targets:
            renders = renders.filter(target__in=targets)
        counts = {status: renders.filter(status=status).count() for status in Render.Status}
        self.stdout.write(", ".join(f"{count} {status}" for status, count in counts.items()))
        for render in renders.exclude(error="").select_related("sigma_rule"):
            self.stdout.write(
                f"{render.status}: {render.sigma_rule.filename} for {render.target}: {render.error}"
            )
