"""Faults of a production deployment, on a private PostgreSQL cluster and redis-server.

Each test runs gunicorn and a Celery worker as separate processes against servers
that it starts itself on free loopback ports, then stops a server or kills a
process and checks what clients see and how the portal recovers.
"""

import signal
import uuid

import httpx
import psycopg
import pytest

from .conftest import SEED_SLUG
from .services import (
    PortalProcesses,
    PostgresCluster,
    RedisServer,
    free_port,
    production_environment,
    wait_until,
)

SECRET = "fault-test-secret-" + "f" * 40
HEADERS = {"X-Forwarded-Proto": "https"}
# Seconds for the worker to render and validate, or to recover.
WORK_TIMEOUT = 120
DETAIL = f"/api/v1/detections/{SEED_SLUG}/"


@pytest.fixture(scope="module")
def postgres():
    cluster = PostgresCluster()
    cluster.start()
    yield cluster
    cluster.remove()


class Deployment:
    """A database in the private cluster, a private Redis, and portal processes on them."""

    def __init__(self, root, postgres: PostgresCluster, **extra_env):
        self.postgres = postgres
        self.database = f"portal_{uuid.uuid4().hex[:10]}"
        postgres.create_database(self.database)
        self.redis = RedisServer(root / "redis")
        self.redis.start()
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = production_environment(
            DJANGO_SETTINGS_MODULE="tests.fault_settings",
            SECRET_KEY=SECRET,
            ALLOWED_HOSTS="127.0.0.1",
            DATABASE_URL=postgres.url(self.database),
            DATABASE_CONN_MAX_AGE="60",
            DATABASE_CONNECT_TIMEOUT="2",
            REDIS_URL=self.redis.url(1),
            CELERY_BROKER_URL=self.redis.url(0),
            STATIC_ROOT=str(root / "static"),
            SIGMA_CACHE_DIR=str(root / "pysigma-cache"),
            WORKER_HEARTBEAT_INTERVAL="1",
            WORKER_HEARTBEAT_MAX_AGE="5",
            **extra_env,
        )
        self.processes = PortalProcesses(root / "run", env)
        self.processes.manage("collectstatic", "--noinput", "-v", "0")
        self.processes.manage("migrate", "--noinput", "-v", "0")

    def get(self, path: str, **headers) -> httpx.Response:
        return httpx.get(self.base + path, headers=HEADERS | headers, timeout=15)

    def detail(self) -> dict:
        response = self.get(DETAIL)
        assert response.status_code == 200, response.text[:300]
        return response.json()

    def renders_finished(self) -> dict | None:
        summary = self.detail()["renders_summary"]
        done = summary["total"] > 0 and summary["queued"] == summary["running"] == 0
        return summary if done else None

    def ready(self) -> dict | None:
        response = self.get("/readyz")
        return response.json() if response.status_code == 200 else None

    def sql(self, query: str, params=()) -> list[tuple]:
        with psycopg.connect(self.postgres.url(self.database), autocommit=True) as connection:
            return connection.execute(query, params).fetchall()

    def close(self) -> None:
        self.processes.stop_all()
        self.redis.stop()
        with psycopg.connect(self.postgres.url("postgres"), autocommit=True) as connection:
            connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                [self.database],
            )
            connection.execute(f'DROP DATABASE IF EXISTS "{self.database}"')


@pytest.fixture
def deployment(tmp_path, postgres):
    created = []

    def create(**extra_env) -> Deployment:
        created.append(Deployment(tmp_path, postgres, **extra_env))
        return created[-1]

    yield create
    for item in created:
        item.close()


def test_postgres_restart_answers_503_then_recovers(deployment, postgres):
    stack = deployment()
    stack.processes.manage("load_content")
    web = stack.processes.start_web(stack.port)
    wait_until(lambda: stack.get(DETAIL).status_code == 200, 60, "the web process")
    assert stack.get("/").status_code == 200

    postgres.stop()
    try:
        api = stack.get(DETAIL)
        page = stack.get("/")
        readiness = stack.get("/readyz")
        liveness = stack.get("/healthz")
    finally:
        postgres.start()

    assert api.status_code == 503
    assert api.headers["Content-Type"] == "application/json"
    assert "database is unreachable" in api.json()["detail"]
    assert page.status_code == 503
    assert "Service unavailable" in page.text
    assert "Traceback" not in page.text
    assert readiness.status_code == 503
    assert "database" in readiness.json()["failed"]
    assert liveness.status_code == 200
    recovered = wait_until(lambda: stack.get(DETAIL).status_code == 200, 60, "API after restart")
    assert recovered
    assert stack.get("/").status_code == 200
    assert web.poll() is None, "the web process exited"
    assert stack.processes.processes["web"].pid == web.pid


def test_redis_down_serves_content_and_renders_later(deployment):
    stack = deployment()
    stack.processes.start_web(stack.port)
    stack.processes.start_worker()
    stack.processes.manage("load_content")
    wait_until(stack.ready, WORK_TIMEOUT, "/readyz ready")
    wait_until(stack.renders_finished, WORK_TIMEOUT, "the first renders")

    stack.redis.stop()
    try:
        page = stack.get(f"/detections/{SEED_SLUG}/")
        api = stack.get(DETAIL)
        api_list = stack.get("/api/v1/detections/?severity=high")
        readiness = stack.get("/readyz")
        forced = stack.processes.manage(
            "render_queries", SEED_SLUG, "--force", "--target", "splunk", "--wait", "0"
        )
        waiting = stack.detail()["renders_summary"]
    finally:
        stack.redis.start()

    assert page.status_code == 200
    assert api.status_code == 200
    assert api_list.status_code == 200
    assert readiness.status_code == 503
    assert set(readiness.json()["failed"]) >= {"broker", "cache"}
    assert forced.returncode == 0
    assert waiting["queued"] > 0, waiting
    summary = wait_until(stack.renders_finished, WORK_TIMEOUT, "renders after Redis returned")
    assert summary["rendered"] > 0
    assert wait_until(stack.ready, WORK_TIMEOUT, "/readyz ready again")


def test_validation_killing_its_worker_is_failed(deployment):
    stack = deployment(KILL_VALIDATION_POOL="1")
    stack.processes.start_worker()
    stack.processes.manage("load_content")

    def run_finished():
        rows = stack.sql("SELECT status, error FROM detections_validationrun")
        return rows if rows and all(row[0] not in ("queued", "running") for row in rows) else None

    rows = wait_until(run_finished, WORK_TIMEOUT, "the validation run to end")
    kills = stack.processes.log("worker").count("WorkerLostError")

    assert [row[0] for row in rows] == ["error"]
    assert "stopped on every attempt" in rows[0][1]
    assert kills >= 1, "the pool process was never killed"


def test_worker_killed_mid_render_is_recovered(deployment):
    # The other targets render a rule in about a millisecond, so the slow target keeps
    # renders running for a few seconds, long enough to be seen and killed.
    stack = deployment(SLOW_RENDER_TARGET="1", SLOW_BACKEND_SECONDS="0.5")
    stack.processes.start_worker("first")
    stack.processes.manage("load_content")
    wait_until(
        lambda: stack.sql("SELECT 1 FROM detections_render WHERE status = 'running'"),
        WORK_TIMEOUT,
        "a render in progress",
        interval=0.02,
    )

    stack.processes.stop("first", signal.SIGKILL)
    stack.processes.start_worker("second")

    summary = wait_until(lambda: stack_summary(stack), WORK_TIMEOUT, "renders after the kill")
    assert summary["running"] == 0
    assert summary["queued"] == 0


def stack_summary(stack: Deployment) -> dict | None:
    rows = dict(stack.sql("SELECT status, count(*) FROM detections_render GROUP BY status"))
    done = rows and not rows.get("queued") and not rows.get("running")
    return {"queued": 0, "running": 0, **rows} if done else None
