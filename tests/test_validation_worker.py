"""Validation on real Celery worker processes, with the filesystem broker and with Redis."""

import json
import sqlite3
import subprocess
import sys
import time

from tests.test_render_worker import (  # noqa: F401 - pytest fixtures used by name
    REPO_ROOT,
    Portal,
    portal_factory,
    redis_broker_url,
    template_db,
)

RUN_TIMEOUT = 90
SYSMON = "Microsoft-Windows-Sysmon/Operational"


def validation_runs(portal: Portal) -> list[dict]:
    connection = sqlite3.connect(f"file:{portal.db_path}?mode=ro", uri=True, timeout=10)
    connection.row_factory = sqlite3.Row
    try:
        rows = connection.execute(
            "SELECT id, status, trigger, error, tests_total, tests_passed "
            "FROM detections_validationrun ORDER BY id"
        ).fetchall()
    finally:
        connection.close()
    return [dict(row) for row in rows]


def wait_for_runs(portal: Portal, expected: int) -> list[dict]:
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        runs = validation_runs(portal)
        if len(runs) >= expected and all(run["status"] not in ("queued", "running") for run in runs):
            return runs
        time.sleep(0.5)
    raise AssertionError(
        f"validation runs not finished after {RUN_TIMEOUT} s: {validation_runs(portal)}\n"
        f"{portal.worker_log_tail()}"
    )


def validate_on_worker(portal: Portal, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "validate_detection", *args, "--format", "json", "--wait", "90"],
        cwd=REPO_ROOT,
        env=portal.env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def seed_with_one_test(portal: Portal, tmp_path) -> None:
    """Load the shipped content, then give the seed detection a test that must fire."""
    portal.manage("load_content")
    wait_for_runs(portal, expected=1)
    event = {
        "Channel": SYSMON,
        "EventID": 1,
        "Computer": "ws01.corp.example",
        "Image": "C:\\Python312\\python.exe",
        "CommandLine": 'python.exe -c "import zlib"',
    }
    path = tmp_path / "python-zlib.ndjson"
    path.write_text(json.dumps(event) + "\n")
    portal.manage("add_test", "archive-via-library-splunk", "--events", str(path), "--expect", "fires")


def test_worker_validates_on_filesystem_broker(portal_factory, tmp_path):
    portal = portal_factory()
    portal.start_worker()
    seed_with_one_test(portal, tmp_path)

    result = validate_on_worker(portal, "archive-via-library-splunk")

    output = json.loads(result.stdout)
    report = output["detections"][0]
    added = report["tests"][-1]
    assert added["name"] == "python-zlib.ndjson"
    assert added["matches"] == 1
    assert added["passed"] is True
    runs = wait_for_runs(portal, expected=1)
    assert runs[-1]["trigger"] == "command"
    assert runs[-1]["status"] in ("passed", "failed", "error")


def test_worker_validates_on_redis(redis_broker_url, portal_factory, tmp_path):
    portal = portal_factory(broker_url=redis_broker_url)
    portal.start_worker()
    seed_with_one_test(portal, tmp_path)

    result = validate_on_worker(portal, "archive-via-library-splunk")

    added = json.loads(result.stdout)["detections"][0]["tests"][-1]
    assert added["matches"] == 1
    assert added["passed"] is True


def test_load_content_run_finished_by_worker(portal_factory):
    portal = portal_factory()
    portal.start_worker()

    portal.manage("load_content")

    runs = wait_for_runs(portal, expected=1)
    assert runs[0]["trigger"] == "content"
    assert runs[0]["tests_total"] >= 4


def test_abandoned_run_failed_at_worker_start(portal_factory):
    portal = portal_factory()
    portal.manage("load_content")
    connection = sqlite3.connect(portal.db_path, timeout=10)
    with connection:
        connection.execute(
            "UPDATE detections_validationrun SET status = 'running', task_id = 'dead', "
            "started_at = '2000-01-01 00:00:00'"
        )
    connection.close()

    portal.start_worker()

    runs = wait_for_runs(portal, expected=1)
    assert runs[0]["status"] == "error"
    assert "worker running this validation stopped" in runs[0]["error"]
