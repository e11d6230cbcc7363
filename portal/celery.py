"""The Celery application: `celery -A portal worker -Q render,validate`."""

import logging
import os

from celery import Celery
from celery.signals import worker_init, worker_process_init, worker_ready
from django.utils import timezone

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Keep Django's LOGGING handlers (JSON lines in production) in the worker and beat,
# instead of the handlers Celery installs on the root logger by default.
app.conf.worker_hijack_root_logger = False

from portal import task_logging  # noqa: E402,F401 - connects the task log signals

logger = logging.getLogger(__name__)


@worker_init.connect
@worker_process_init.connect
def use_asynchronous_commit(**kwargs) -> None:
    """Let worker transactions on PostgreSQL commit without waiting for the WAL flush.

    Every render and validation run commits its claim and its result, and waiting
    for the disk on each commit costs more than the conversion itself. A database
    crash can lose the last few hundred milliseconds of these commits, which leaves
    the rows queued or running, and the recovery sweep sends them again. The
    `WORKER_SYNCHRONOUS_COMMIT` setting (default `off`) sets the mode.
    """
    from django.conf import settings
    from django.db import connections

    mode = settings.WORKER_SYNCHRONOUS_COMMIT
    for connection in connections.all():
        if connection.vendor != "postgresql" or not mode:
            continue
        connection.close()
        options = connection.settings_dict.setdefault("OPTIONS", {})
        existing = options.get("options", "")
        options["options"] = f"{existing} -c synchronous_commit={mode}".strip()


@worker_ready.connect
def recover_renders(sender=None, **kwargs) -> None:
    """Requeue renders and fail validation runs left behind by a dead worker.

    Runs when the worker starts and then periodically on the worker's timer: a render
    abandoned by a worker that was killed and restarted at once only counts as
    abandoned after the cutoff, which may be after this start.
    """
    from detections.rendering import abandoned_after_seconds

    _recover(sweep=False)
    timer = getattr(sender, "timer", None)
    if timer is not None:
        timer.call_repeatedly(abandoned_after_seconds(), _recover, kwargs={"sweep": True})


@worker_ready.connect
def start_heartbeat(sender=None, **kwargs) -> None:
    """Store a heartbeat now and every WORKER_HEARTBEAT_INTERVAL seconds; /readyz reads it.

    The worker's timer runs in its main process, with any transport (the filesystem
    transport has no broker-side events), and keeps beating while the pool works.
    """
    from django.conf import settings

    from portal.health.heartbeat import beat_and_disconnect

    hostname = getattr(sender, "hostname", None) or app.conf.get("worker_name") or "celery"
    queues = list(app.amqp.queues.consume_from or {})
    started_at = timezone.now()
    beat_and_disconnect(hostname, queues, started_at)
    timer = getattr(sender, "timer", None)
    if timer is not None:
        timer.call_repeatedly(
            settings.WORKER_HEARTBEAT_INTERVAL,
            beat_and_disconnect,
            args=(hostname, queues, started_at),
        )


def _recover(*, sweep: bool) -> None:
    from django.db import connections

    from detections.rendering import renders_recover
    from detections.validation.runs import validations_recover

    try:
        renders_recover(sweep=sweep)
        # Runs left `running` by a dead worker are failed here, so they are found
        # even where no beat process runs.
        validations_recover(requeue=True, requeue_all=not sweep)
    except Exception:
        # A worker that cannot reach the database still serves other tasks; the next
        # sweep, worker start or render_queries run recovers the renders and runs.
        logger.exception("recovering queued renders and validation runs failed (sweep=%s)", sweep)
    finally:
        # The worker's main process renders nothing, so it keeps no connection open.
        connections.close_all()
