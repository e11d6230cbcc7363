"""The production processes started as in the README, driven over HTTP.

gunicorn, a Celery worker and Celery beat run as separate processes with
PORTAL_ENV=production against a database created on the machine's PostgreSQL
(the server of PORTAL_TEST_POSTGRES, by default postgres://postgres@127.0.0.1:5432)
and a private redis-server.
The shipped detection is loaded with migrate and load_content, rendered and
validated by the worker, and read back through the API.
"""

import json
import os
import uuid

import httpx
import psycopg
import pytest

from .conftest import SEED_SLUG
from .services import (
    PortalProcesses,
    RedisServer,
    free_port,
    production_environment,
    wait_until,
)

ADMIN_URL = os.environ.get("PORTAL_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres")
SECRET = "stack-test-secret-" + "s" * 40
# Seconds for the worker to render and validate the shipped detection.
WORK_TIMEOUT = 180
HEADERS = {"X-Forwarded-Proto": "https"}


def admin_connection() -> psycopg.Connection:
    try:
        return psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {ADMIN_URL} ({exc}); the stack test needs it.")


def production_env(root, database_url: str, redis: RedisServer) -> dict[str, str]:
    return production_environment(
        SECRET_KEY=SECRET,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        CSRF_TRUSTED_ORIGINS="https://127.0.0.1",
        DATABASE_URL=database_url,
        REDIS_URL=redis.url(1),
        CELERY_BROKER_URL=redis.url(0),
        STATIC_ROOT=str(root / "static"),
        SIGMA_CACHE_DIR=str(root / "pysigma-cache"),
        LOG_FORMAT="json",
        WORKER_HEARTBEAT_INTERVAL="2",
        WORKER_HEARTBEAT_MAX_AGE="10",
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("stack")
    database = f"portal_stack_{uuid.uuid4().hex[:12]}"
    with admin_connection() as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    database_url = ADMIN_URL.rsplit("/", 1)[0] + "/" + database
    redis = RedisServer(root / "redis")
    redis.start()
    processes = PortalProcesses(root / "run", production_env(root, database_url, redis))
    port = free_port()
    try:
        processes.manage("collectstatic", "--noinput", "-v", "0")
        processes.manage("migrate", "--noinput", "-v", "0")
        processes.start_web(port)
        processes.start_worker()
        processes.start_beat()
        processes.manage("load_content")
        yield processes, f"http://127.0.0.1:{port}"
    finally:
        processes.stop_all()
        redis.stop()
        with admin_connection() as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                [database],
            )
            admin.execute(f'DROP DATABASE IF EXISTS "{database}"')


def get_json(base: str, path: str) -> dict:
    response = httpx.get(base + path, headers=HEADERS, timeout=10)
    assert response.status_code == 200, f"{path}: {response.status_code} {response.text[:300]}"
    return response.json()


def rendered_detail(base: str) -> dict | None:
    detail = get_json(base, f"/api/v1/detections/{SEED_SLUG}/")
    summary = detail["renders_summary"]
    finished = summary["total"] > 0 and summary["queued"] == summary["running"] == 0
    validation = detail["validation"]
    validated = validation is not None and validation["status"] not in ("queued", "running")
    return detail if finished and validated else None


def test_stack_renders_and_validates_shipped_detection(stack):
    processes, base = stack

    def ready():
        response = httpx.get(base + "/readyz", timeout=10)
        return response.json() if response.status_code == 200 else None

    report = wait_until(ready, WORK_TIMEOUT, "/readyz to report ready")
    detail = wait_until(lambda: rendered_detail(base), WORK_TIMEOUT, "renders and a validation run")
    queries = get_json(base, f"/api/v1/detections/{SEED_SLUG}/queries/?target=splunk")
    run = get_json(base, httpx.URL(detail["validation"]["url"]).path)

    assert report["checks"]["database"]["vendor"] == "postgresql"
    assert report["checks"]["broker"]["transport"] == "redis"
    assert set(report["checks"]["broker"]["queues"]) == {"render", "validate"}
    assert report["checks"]["workers"]["alive"][0]["queues"] == ["render", "validate"]
    assert detail["renders_summary"]["rendered"] > 0
    assert queries, "no splunk render listed"
    assert all(row["status"] == "rendered" for row in queries)
    assert all(row["query"] for row in queries)
    # The shipped detection carries one test that is known to fail (see
    # tests/test_shipped_validation.py), so a finished run is `failed` with one miss.
    assert detail["validation"]["status"] == "failed"
    assert run["tests_total"] == detail["validation"]["tests_total"] > 0
    assert run["tests_passed"] == run["tests_total"] - 1
    assert run["results"], "the run has no per-test results"


def test_stack_logs_are_json_lines(stack):
    processes, base = stack
    httpx.get(base + "/api/v1/detections/", headers=HEADERS, timeout=10)

    def request_line():
        for line in processes.log("web").splitlines():
            if line.startswith("{") and '"portal.request"' in line:
                record = json.loads(line)
                if record["path"] == "/api/v1/detections/":
                    return record
        return None

    record = wait_until(request_line, 10, "the web request log line")
    task_lines = [
        json.loads(line)
        for line in processes.log("worker").splitlines()
        if line.startswith("{") and '"portal.tasks"' in line
    ]

    assert record["status"] == 200
    assert record["method"] == "GET"
    assert "duration_ms" in record
    assert {line["event"] for line in task_lines} >= {"started", "ended"}
    assert any(SEED_SLUG in line["detections"] for line in task_lines)
    assert SECRET not in processes.log("web") + processes.log("worker") + processes.log("beat")


def test_stack_security_headers_over_http(stack):
    _processes, base = stack

    response = httpx.get(base + "/", headers=HEADERS, timeout=10)
    plain = httpx.get(base + "/", timeout=10)
    health = httpx.get(base + "/healthz", headers={"Host": "unlisted.example"}, timeout=10)

    assert response.status_code == 200
    assert "Strict-Transport-Security" in response.headers
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert plain.status_code == 301
    assert health.status_code == 200
