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


@shared_task(
    bind=True,
    name="detections.validate_run",
    acks_late=True,
    reject_on_worker_lost=True,
    acks_on_timeout=False,
    soft_time_limit=settings.VALIDATION_SOFT_TIME_LIMIT,
    time_limit=settings.VALIDATION_HARD_TIME_LIMIT,
    autoretry_for=RETRY_ON,
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=5,
)
def validate_run(self, run_id: int) -> None:
    """Execute one validation run; see validation.runs.validation_execute."""
    from .validation.runs import validation_execute

    validation_execute(run_id, task_id=self.request.id, timeout_errors=(SoftTimeLimitExceeded,))


@shared_task(name="detections.validate_published")
def validate_published() -> int:
    """Queue a run for every published detection that has tests; return how many.

    Also schedules the renders of every detection with tuning entries, because an
    entry that expired since the last render must drop out of the rendered queries.
    Renders whose filters did not change stay as they are.
    """
    from .models import Detection, DetectionTest, SigmaRule, ValidationRun
    from .validation.runs import validation_request

    tuned_rules = SigmaRule.objects.filter(
        detection__tuning_entries__isnull=False, kind=SigmaRule.Kind.RULE
    ).values_list("pk", flat=True).distinct()
    rendering.renders_schedule(rule_ids=list(tuned_rules))

    # Only authored tests run; see validation.runs._execute.
    detections = Detection.objects.filter(
        status=Detection.Status.PUBLISHED, tests__origin=DetectionTest.Origin.AUTHORED
    ).distinct()
    count = 0
    for detection in detections:
        validation_request(detection, trigger=ValidationRun.Trigger.SCHEDULE)
        count += 1
    return count


@shared_task(name="detections.validate_recover")
def validate_recover() -> None:
    """Fail runs abandoned by dead workers and resend runs that were never picked up."""
    from .validation.runs import validations_recover

    validations_recover(requeue=True)


@shared_task(
    bind=True,
    name="detections.render_preview",
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.RENDER_SOFT_TIME_LIMIT,
    time_limit=settings.RENDER_HARD_TIME_LIMIT,
    autoretry_for=RETRY_ON,
    retry_backoff=True,
    retry_backoff_max=10,
    max_retries=3,
)
def render_preview(self, preview_id: str) -> None:
    """Convert the rule text of one edit-form preview; see previews.preview_run."""
    from .previews import preview_run

    preview_run(preview_id, timeout_errors=(SoftTimeLimitExceeded,))
