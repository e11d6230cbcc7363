"""Log lines for each Celery task's start, retry, failure and end (Celery signals).

Each line carries the task id, the task name and the slugs of the detections the
task works on, which `task_detections` reads from the task's arguments.
"""

import logging
import time

from celery.signals import task_failure, task_postrun, task_prerun, task_retry
from django.db import DatabaseError

logger = logging.getLogger("portal.tasks")

# Detections and start time of the tasks running in this process, by task id.
_running: dict[str, tuple[list[str], float]] = {}


def task_detections(task_name: str, args) -> list[str]:
    """Return the slugs of the detections that a render or validation task concerns."""
    from detections.models import Render, ValidationRun

    if not args:
        return []
    try:
        if task_name == "detections.render_batch":
            # order_by() drops Render's default ordering, whose columns would
            # otherwise make DISTINCT return one slug per render.
            slugs = (
                Render.objects.filter(pk__in=list(args[0]))
                .order_by()
                .values_list("sigma_rule__detection__slug", flat=True)
                .distinct()
            )
            return sorted(slugs)
        if task_name == "detections.validate_run":
            return list(
                ValidationRun.objects.filter(pk=args[0]).values_list("detection__slug", flat=True)
            )
    except DatabaseError:
        # The task itself reports the database error; the log line goes without slugs.
        return []
    return []


def _fields(task_id: str, task_name: str, detections: list[str], **more) -> dict:
    return {"task_id": task_id, "task_name": task_name, "detections": detections, **more}


@task_prerun.connect
def log_task_start(task_id=None, task=None, args=None, **kwargs) -> None:
    detections = task_detections(task.name, args)
    _running[task_id] = (detections, time.perf_counter())
    logger.info(
        "task %s %s started for %s",
        task.name,
        task_id,
        ", ".join(detections) or "no detection",
        extra=_fields(task_id, task.name, detections, event="started"),
    )


@task_retry.connect
def log_task_retry(sender=None, request=None, reason=None, **kwargs) -> None:
    task_id = getattr(request, "id", "")
    detections, _started = _running.get(task_id, ([], 0.0))
    logger.warning(
        "task %s %s retried: %s",
        sender.name,
        task_id,
        reason,
        extra=_fields(task_id, sender.name, detections, event="retry", reason=str(reason)),
    )


@task_failure.connect
def log_task_failure(sender=None, task_id=None, exception=None, **kwargs) -> None:
    detections, _started = _running.get(task_id, ([], 0.0))
    logger.error(
        "task %s %s failed: %s: %s",
        sender.name,
        task_id,
        type(exception).__name__,
        exception,
        extra=_fields(
            task_id, sender.name, detections, event="failed", error=type(exception).__name__
        ),
    )


@task_postrun.connect
def log_task_end(task_id=None, task=None, state=None, **kwargs) -> None:
    detections, started = _running.pop(task_id, ([], time.perf_counter()))
    duration_ms = round((time.perf_counter() - started) * 1000, 1)
    logger.info(
        "task %s %s ended %s after %.1f ms",
        task.name,
        task_id,
        state,
        duration_ms,
        extra=_fields(
            task_id, task.name, detections, event="ended", state=state, duration_ms=duration_ms
        ),
    )
