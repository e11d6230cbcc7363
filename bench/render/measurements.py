"""The timed phases: a full render on the workers, a re-render of unchanged rules and
per-rule render latency. Each uses the portal's own scheduling functions."""

import re
import statistics
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Max, Sum
from django.db.models.functions import Length, Substr

from detections.models import Render, SigmaRule
from detections.rendering import renders_schedule

ERROR_CLASS_CHARS = 60
# Characters of an error read to classify it, enough for the longest prefix plus the class text.
ERROR_HEAD_CHARS = 300

# Prefixes that detections.pysigma.convert.describe_error puts before the backend's text.
_REJECTED = re.compile(r"^pySigma rejected the rule for this target \((\w+)\): (.*)", re.S)
_FAILED = re.compile(r"^The backend failed with (\w+): (.*)", re.S)
_UNSUPPORTED = "The backend does not support a feature this rule uses: "


@dataclass
class FullRender:
    """One full render of every rule for every selected target."""

    workers: int
    renders: int
    schedule_seconds: float
    enqueue_seconds: float
    wall_seconds: float
    status_counts: dict[str, int]
    conversion_ms_by_target: dict[str, float]
    batches_sent: int = 0
    tasks_received: int = 0
    worker_cpu_seconds: float = 0.0
    other_cpu_seconds: float = 0.0
    peak_rss_kib: dict[str, int] = field(default_factory=dict)

    @property
    def renders_per_second(self) -> float:
        return self.renders / self.wall_seconds if self.wall_seconds else 0.0


@dataclass
class Latency:
    """Per-rule render latencies, seconds from commit to a terminal render row."""

    samples: list[float]
    commit_and_publish: list[float]
    statuses: Counter


def reset_renders() -> int:
    """Delete every Render row so the next schedule queues all of them."""
    deleted, _ = Render.objects.all().delete()
    return deleted


def run_full_render(
    *, rule_ids: list[int], targets: list[str], workers: int, timeout: float, poll: float
) -> FullRender:
    """Schedule every render, commit (which enqueues them) and wait until all are terminal.

    The wall time runs from just before the commit that triggers renders_enqueue to
    the latest finished_at the workers stored, so polling adds no error to it.
    """
    with transaction.atomic():
        started = time.perf_counter()
        queued = renders_schedule(rule_ids=rule_ids, targets=targets)
        schedule_seconds = time.perf_counter() - started
        commit_wall = time.time()
        commit_started = time.perf_counter()
    enqueue_seconds = time.perf_counter() - commit_started

    deadline = time.monotonic() + timeout
    pending = Render.objects.exclude(status__in=Render.TERMINAL)
    while pending.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{pending.count()} of {len(queued)} renders were not finished after "
                f"{timeout:.0f} s with {workers} worker process(es); raise --render-timeout "
                "or check the worker log."
            )
        time.sleep(poll)

    last_finished: datetime = Render.objects.aggregate(last=Max("finished_at"))["last"]
    status_counts = dict(
        Render.objects.values_list("status").annotate(count=Count("pk")).order_by("status")
    )
    conversion_ms = dict(
        Render.objects.values_list("target").annotate(total=Sum("duration_ms")).order_by("target")
    )
    return FullRender(
        workers=workers,
        renders=len(queued),
        batches_sent=-(-len(queued) // max(1, settings.RENDER_BATCH_SIZE)),
        schedule_seconds=schedule_seconds,
        enqueue_seconds=enqueue_seconds,
        wall_seconds=last_finished.timestamp() - commit_wall,
        status_counts=status_counts,
        conversion_ms_by_target={key: value or 0.0 for key, value in conversion_ms.items()},
    )


def failures_by_target() -> dict[str, Counter]:
    """Count the failed and unavailable renders of each target by error class."""
    groups: dict[str, Counter] = defaultdict(Counter)
    # The class needs only the start of an error, and some errors are many kilobytes long.
    failed = (
        Render.objects.exclude(status=Render.Status.RENDERED)
        .annotate(head=Substr("error", 1, ERROR_HEAD_CHARS))
        .values_list("target", "head")
    )
    for target, head in failed.iterator():
        groups[target][error_class(head)] += 1
    return groups


def longest_error_by_target() -> dict[str, int]:
    """Return the length in characters of each target's longest render error."""
    lengths = (
        Render.objects.exclude(error="")
        .values_list("target")
        .annotate(longest=Max(Length("error")))
        .order_by("target")
    )
    return dict(lengths)


def error_class(error: str) -> str:
    """Shorten a render error to its exception class and the first characters of its text.

    Messages that name a field or value near their start, such as QRadar's "field 'X'
    is not supported", form one class per field.
    """
    match = _REJECTED.match(error) or _FAILED.match(error)
    if match:
        name, text = match.groups()
    elif error.startswith(_UNSUPPORTED):
        name, text = "NotImplementedError", error[len(_UNSUPPORTED) :]
    else:
        name, text = "", error
    text = " ".join(text.split())[:ERROR_CLASS_CHARS]
    return f"{name}: {text}" if name else text


def time_unchanged_schedule(*, rule_ids: list[int], targets: list[str]) -> tuple[float, int]:
    """Call renders_schedule with nothing changed and return its seconds and renders queued."""
    started = time.perf_counter()
    with transaction.atomic():
        queued = renders_schedule(rule_ids=rule_ids, targets=targets)
    return time.perf_counter() - started, len(queued)


def measure_latency(
    *, rule_ids: list[int], target: str, poll: float, timeout: float = 30.0
) -> Latency:
    """Edit each rule, schedule it for one target and time the render from commit to finish.

    The edit appends a YAML comment, which changes the input hash but not the rule.
    """
    samples, commit_and_publish = [], []
    statuses: Counter = Counter()
    for index, rule_id in enumerate(rule_ids):
        text = SigmaRule.objects.values_list("yaml_text", flat=True).get(pk=rule_id)
        with transaction.atomic():
            SigmaRule.objects.filter(pk=rule_id).update(
                yaml_text=f"{text.rstrip()}\n# benchmark edit {index}\n"
            )
            queued = renders_schedule(rule_ids=[rule_id], targets=[target])
            committed = time.perf_counter()
        published = time.perf_counter()
        if len(queued) != 1:
            raise RuntimeError(f"expected one queued render for rule {rule_id}, got {queued}")
        status = _wait_terminal(queued[0], poll=poll, timeout=timeout)
        finished = time.perf_counter()
        statuses[status] += 1
        samples.append(finished - committed)
        commit_and_publish.append(published - committed)
    return Latency(samples=samples, commit_and_publish=commit_and_publish, statuses=statuses)


def _wait_terminal(render_id: int, *, poll: float, timeout: float) -> str:
    status_query = Render.objects.filter(pk=render_id).values_list("status", flat=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = status_query.first()
        if status in Render.TERMINAL:
            return status
        time.sleep(poll)
    raise TimeoutError(f"render {render_id} was not finished {timeout:.0f} s after its commit.")


def summarize(values: list[float]) -> dict[str, float]:
    """Return p50, p95, p99, max and mean of `values` in milliseconds.

    The percentiles are nearest-rank: the smallest value with at least that share of
    values at or below it.
    """
    ordered = sorted(values)

    def rank(percent: float) -> float:
        index = max(0, min(len(ordered) - 1, -(-len(ordered) * percent // 100) - 1))
        return ordered[int(index)] * 1000

    return {
        "p50": rank(50),
        "p95": rank(95),
        "p99": rank(99),
        "max": ordered[-1] * 1000,
        "mean": statistics.fmean(ordered) * 1000,
    }
