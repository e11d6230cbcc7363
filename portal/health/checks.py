"""Readiness checks: database, broker, shared cache, worker heartbeat and queue depths."""

import time
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone

from portal.logs import redact

QUEUES = ("render", "validate")
# Seconds the broker and the cache may take to respond to a probe.
PROBE_TIMEOUT = 2.0


class CheckFailed(Exception):
    """A dependency that is unreachable or unhealthy, with the reason as the message."""


def readiness() -> dict:
    """Run every check and return the report that /readyz sends.

    `status` is "ok" only when every check passed; `failed` names the others, and
    each failed check carries its `error`.
    """
    checks: dict[str, dict] = {}
    checks["database"] = _run(_check_database)
    checks["broker"] = _run(_check_broker)
    if settings.REDIS_URL:
        checks["cache"] = _run(_check_cache)
    if checks["database"]["ok"]:
        checks["workers"] = _run(_check_workers)
    else:
        checks["workers"] = {"ok": False, "error": "not checked: the database is unreachable"}
    failed = [name for name, result in checks.items() if not result["ok"]]
    return {"status": "unavailable" if failed else "ok", "failed": failed, "checks": checks}


def _run(check: Callable[[], dict]) -> dict:
    started = time.perf_counter()
    try:
        details = check()
    except CheckFailed as exc:
        result = {"ok": False, "error": redact(str(exc))}
    else:
        result = {"ok": True, **details}
    result["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


def _check_database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        # Drop the broken connection so the next request opens a new one.
        connection.close_if_unusable_or_obsolete()
        raise CheckFailed(f"{type(exc).__name__}: {exc}".strip()) from exc
    return {"vendor": connection.vendor}


def _check_broker() -> dict:
    from kombu.exceptions import ChannelError

    from portal.celery import app

    depths: dict[str, int] = {}
    try:
        with app.connection_for_read(connect_timeout=PROBE_TIMEOUT) as conn:
            conn.ensure_connection(
                max_retries=1, interval_start=0, interval_step=0, timeout=PROBE_TIMEOUT
            )
            for queue in QUEUES:
                # A fresh channel per queue: AMQP closes a channel whose passive
                # declare names a queue that does not exist yet.
                channel = conn.channel()
                try:
                    depths[queue] = channel.queue_declare(queue=queue, passive=True).message_count
                except ChannelError:
                    depths[queue] = 0  # never declared, so nothing is waiting
                finally:
                    channel.close()
    except Exception as exc:  # noqa: BLE001 - every transport raises its own errors
        raise CheckFailed(f"{type(exc).__name__}: {exc}".strip()) from exc
    return {"transport": app.conf.broker_url.split(":", 1)[0], "queues": depths}


def _check_cache() -> dict:
    import redis

    try:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=PROBE_TIMEOUT, socket_timeout=PROBE_TIMEOUT
        )
        try:
            client.ping()
        finally:
            client.close()
    except redis.RedisError as exc:
        raise CheckFailed(f"{type(exc).__name__}: {exc}") from exc
    return {}


def _check_workers() -> dict:
    from .models import WorkerHeartbeat

    now = timezone.now()
    limit = settings.WORKER_HEARTBEAT_MAX_AGE
    try:
        beats = list(WorkerHeartbeat.objects.filter(last_seen__gte=now - timedelta(seconds=limit)))
        newest = WorkerHeartbeat.objects.first()
    except DatabaseError as exc:
        raise CheckFailed(f"{type(exc).__name__}: {exc}") from exc
    if not beats:
        if newest is None:
            raise CheckFailed("no worker heartbeat stored; start `celery -A portal worker`")
        age = (now - newest.last_seen).total_seconds()
        raise CheckFailed(
            f"newest worker heartbeat ({newest.hostname}) is {age:.0f} s old, over the "
            f"limit of {limit} s (WORKER_HEARTBEAT_MAX_AGE)"
        )
    alive = [
        {
            "hostname": beat.hostname,
            "queues": beat.queues.split(","),
            "age_seconds": round((now - beat.last_seen).total_seconds(), 1),
        }
        for beat in beats
    ]
    return {"alive": alive}
