"""Celery tasks of the detections app. Each takes ids and calls one service function."""

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError
from django.db import OperationalError as DatabaseError
from kombu.exceptions import OperationalError as BrokerError

from . import rendering

# Only lost connections are worth a retry; any other error is a result to store.
RETRY_ON = (DatabaseError, InterfaceError, BrokerError)


@shared_task(
    bind=True,
    name="detections.render_batch",
    acks_late=True,
    reject_on_worker_lost=True,
    # By default Celery acknowledges a task killed at the hard time limit, which would
    # leave its render `running`. Redelivered instead, the claim resumes the render and
    # counts the attempt.
    acks_on_timeout=False,
    soft_time_limit=settings.RENDER_SOFT_TIME_LIMIT,
    time_limit=settings.RENDER_HARD_TIME_LIMIT,
    autoretry_for=RETRY_ON,
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=5,
)
def render_batch(self, render_ids: list[int]) -> None:
    """Render the given render rows; see rendering.renders_run."""
    rendering.renders_run(
        render_ids=render_ids, task_id=self.request.id, timeout_errors=(SoftTimeLimitExceeded,)
    )
