"""The Celery application: `celery -A portal worker -Q render,validate`."""

import logging
import os

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

logger = logging.getLogger(__name__)


@worker_ready.connect
def recover_renders(**kwargs) -> None:
    """Send renders left queued or abandoned by a dead worker to the queues again."""
    from detections.rendering import renders_recover

    try:
        renders_recover()
    except Exception:
        # A worker that cannot reach the database still serves other tasks; the next
        # worker start or render_queries run recovers the renders.
        logger.exception("recovering queued renders failed at worker start")
