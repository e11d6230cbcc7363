"""The worker heartbeat: a row per worker, updated on the worker's timer."""

import logging
import os
from datetime import timedelta

from django.db import DatabaseError, connections
from django.utils import timezone

logger = logging.getLogger(__name__)

# Rows of workers silent for longer than this are deleted at the next heartbeat.
FORGET_AFTER = timedelta(days=1)


def record_heartbeat(hostname: str, queues: list[str], started_at) -> None:
    """Store that this worker is alive now; a database error is logged, not raised."""
    from .models import WorkerHeartbeat

    now = timezone.now()
    try:
        WorkerHeartbeat.objects.update_or_create(
            hostname=hostname,
            defaults={
                "pid": os.getpid(),
                "queues": ",".join(sorted(queues)),
                "started_at": started_at,
                "last_seen": now,
            },
        )
        WorkerHeartbeat.objects.filter(last_seen__lt=now - FORGET_AFTER).delete()
    except DatabaseError as exc:
        logger.warning("worker heartbeat of %s not stored, database unreachable: %s", hostname, exc)


def beat_and_disconnect(hostname: str, queues: list[str], started_at) -> None:
    """Store a heartbeat from the worker's main process, then close its connections.

    The main process runs no task, so it keeps no database connection open between
    beats.
    """
    try:
        record_heartbeat(hostname, queues, started_at)
    finally:
        connections.close_all()
