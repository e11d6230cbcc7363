"""/healthz and /readyz in the test process: heartbeat ages, broker, cache and queue depths."""

import sqlite3
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from kombu import Connection

from portal.celery import app as celery_app
from portal.health.heartbeat import record_heartbeat
from portal.health.models import WorkerHeartbeat

from .services import RedisServer, free_port, wait_until
from .test_render_worker import portal_factory, template_db  # noqa: F401 - fixtures


@pytest.fixture
def broker_url():
    """Point the Celery app at another broker for one test."""
    saved = celery_app.conf.broker_url

    def use(url: str) -> None:
        celery_app.conf.broker_url = url

    yield use
    celery_app.conf.broker_url = saved


@pytest.fixture
def private_redis(tmp_path):
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


def test_healthz_answers_any_host(client):
    response = client.get("/healthz", HTTP_HOST="unlisted.example")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_without_heartbeat_names_workers(client):
    response = client.get("/readyz")
    body = response.json()

    assert response.status_code == 503
    assert body["status"] == "unavailable"
    assert body["failed"] == ["workers"]
    assert "no worker heartbeat stored" in body["checks"]["workers"]["error"]
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["broker"]["ok"] is True


@pytest.mark.django_db
def test_readyz_with_fresh_heartbeat(client):
    record_heartbeat("celery@web1", ["validate", "render"], timezone.now())

    response = client.get("/readyz")
    body = response.json()

    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert body["failed"] == []
    alive = body["checks"]["workers"]["alive"]
    assert [worker["hostname"] for worker in alive] == ["celery@web1"]
    assert alive[0]["queues"] == ["render", "validate"]
    assert set(body["checks"]["broker"]["queues"]) == {"render", "validate"}


@pytest.mark.django_db
@override_settings(WORKER_HEARTBEAT_MAX_AGE=30)
def test_readyz_stale_heartbeat_names_age(client):
    record_heartbeat("celery@old", ["render"], timezone.now())
    WorkerHeartbeat.objects.update(last_seen=timezone.now() - timedelta(seconds=95))

    body = client.get("/readyz").json()

    assert body["failed"] == ["workers"]
    error = body["checks"]["workers"]["error"]
    assert "celery@old" in error
    assert "limit of 30 s (WORKER_HEARTBEAT_MAX_AGE)" in error


@pytest.mark.django_db
def test_readyz_broker_unreachable(client, broker_url):
    record_heartbeat("celery@web1", ["render"], timezone.now())
    broker_url(f"redis://:brokerpassword@127.0.0.1:{free_port()}/3")

    response = client.get("/readyz")
    body = response.json()

    assert response.status_code == 503
    assert body["failed"] == ["broker"]
    assert "Error 111" in body["checks"]["broker"]["error"] or "refused" in body["checks"]["broker"]["error"]
    assert "brokerpassword" not in response.content.decode()


@pytest.mark.django_db
def test_readyz_counts_queue_depths(client, broker_url, private_redis):
    record_heartbeat("celery@web1", ["render"], timezone.now())
    url = private_redis.url(2)
    broker_url(url)
    with Connection(url) as connection:
        queue = connection.SimpleQueue("render")
        for number in range(3):
            queue.put({"render": number})
        queue.close()

    body = client.get("/readyz").json()

    assert body["checks"]["broker"]["queues"] == {"render": 3, "validate": 0}
    assert body["status"] == "ok"


@pytest.mark.django_db
def test_readyz_cache_unreachable(client):
    record_heartbeat("celery@web1", ["render"], timezone.now())

    with override_settings(REDIS_URL=f"redis://127.0.0.1:{free_port()}/1"):
        body = client.get("/readyz").json()

    assert body["failed"] == ["cache"]
    assert "ConnectionError" in body["checks"]["cache"]["error"]


@pytest.mark.django_db
def test_heartbeat_updates_one_row_per_worker():
    started = timezone.now()
    record_heartbeat("celery@a", ["render"], started)
    record_heartbeat("celery@a", ["render"], started)
    record_heartbeat("celery@b", ["validate"], started)

    assert WorkerHeartbeat.objects.count() == 2


def test_worker_heartbeat_on_filesystem_broker(portal_factory):
    """A worker on kombu's filesystem transport, which has no broker events, still beats."""
    portal = portal_factory()
    portal.env.update(WORKER_HEARTBEAT_INTERVAL="1")
    portal.start_worker()

    def beats() -> list[tuple]:
        connection = sqlite3.connect(f"file:{portal.db_path}?mode=ro", uri=True, timeout=10)
        try:
            return connection.execute(
                "SELECT hostname, queues, last_seen FROM health_workerheartbeat"
            ).fetchall()
        finally:
            connection.close()

    first = wait_until(beats, 60, "a heartbeat row")
    later = wait_until(lambda: [row for row in beats() if row[2] > first[0][2]], 30, "a newer beat")

    assert first[0][0].startswith("test1@")
    assert first[0][1] == "render,validate"
    assert len(later) == 1
