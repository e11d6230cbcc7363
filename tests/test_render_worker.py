"""Rendering on real Celery worker processes, with Redis and with the filesystem broker.

pytest-django's test database cannot be shared with another process, so each test
runs migrate, a worker and load_content as subprocesses against a temporary SQLite
file, and reads the render rows from that file with sqlite3. Every subprocess is
started in its own session and its whole process group is killed at teardown.
"""

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from tests import render_settings

REPO_ROOT = Path(__file__).resolve().parent.parent
TERMINAL = {"rendered", "failed", "unavailable"}
REDIS_HOST = "127.0.0.1"
REDIS_PORT = 6379
# A Redis database number that the portal's defaults (0) do not use.
REDIS_DB = 11
REDIS_START = (
    'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" '
    "--appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log"
)
# Seconds after its claim at which tests.render_settings counts a running render as
# abandoned.
TEST_ABANDONED_AFTER = (
    render_settings.RENDER_HARD_TIME_LIMIT + render_settings.RENDER_ABANDONED_MARGIN
)
RENDER_TIMEOUT = 60


class Portal:
    """A portal installation in a temporary folder, driven through subprocesses."""

    def __init__(self, root: Path, template_db: Path, settings_module: str, broker_url: str):
        self.root = root
        root.mkdir(parents=True)
        self.db_path = root / "db.sqlite3"
        shutil.copyfile(template_db, self.db_path)
        self.pid_dir = root / "pids"
        self.pid_dir.mkdir()
        self.env = _subprocess_env(root, self.db_path, settings_module)
        if broker_url:
            self.env["CELERY_BROKER_URL"] = broker_url
        self.env["SLOW_BACKEND_PID_DIR"] = str(self.pid_dir)
        self.processes: list[subprocess.Popen] = []
        self.worker_logs: list[Path] = []

    def manage(self, *args: str) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO_ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, f"manage.py {' '.join(args)} failed:\n{result.stderr}"
        return result

    def start_worker(self) -> subprocess.Popen:
        log_path = self.root / f"worker-{len(self.worker_logs) + 1}.log"
        self.worker_logs.append(log_path)
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "portal",
                    "worker",
                    "-Q",
                    "render,validate",
                    "-c",
                    "2",
                    "-l",
                    "info",
                    "-n",
                    f"test{len(self.worker_logs)}@%h",
                    "--without-mingle",
                    "--without-gossip",
                    "--without-heartbeat",
                ],
                cwd=REPO_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append(process)
        return process

    def renders(self) -> list[dict]:
        connection = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=10)
        connection.row_factory = sqlite3.Row
        try:
            rows = connection.execute(
                "SELECT render.id, render.target, render.status, render.attempts, "
                "render.error, render.query, rule.title "
                "FROM detections_render AS render "
                "JOIN detections_sigmarule AS rule ON rule.id = render.sigma_rule_id "
                "ORDER BY render.id"
            ).fetchall()
        finally:
            connection.close()
        return [dict(row) for row in rows]

    def wait_for_terminal(self, expected: int) -> list[dict]:
        """Poll until `expected` renders exist and all are terminal; fail at RENDER_TIMEOUT."""
        deadline = time.monotonic() + RENDER_TIMEOUT
        renders = self.renders()
        while time.monotonic() < deadline:
            if len(renders) == expected and all(row["status"] in TERMINAL for row in renders):
                return renders
            time.sleep(0.3)
            renders = self.renders()
        statuses = sorted((row["id"], row["target"], row["status"]) for row in renders)
        pytest.fail(
            f"renders not finished after {RENDER_TIMEOUT} s: {statuses}\n{self.worker_log_tail()}"
        )

    def wait_for_slow_render_running(self) -> tuple[int, str]:
        """Poll until a slow render runs in a worker process; return that pid and rule title."""
        deadline = time.monotonic() + RENDER_TIMEOUT
        while time.monotonic() < deadline:
            running = [row for row in self.renders() if row["status"] == "running"]
            markers = list(self.pid_dir.iterdir())
            if running and markers:
                marker = markers[0]
                title = marker.read_text(encoding="utf-8")
                if title:
                    return int(marker.name), title
            time.sleep(0.1)
        pytest.fail(f"no slow render started within {RENDER_TIMEOUT} s\n{self.worker_log_tail()}")

    def worker_log_tail(self) -> str:
        parts = []
        for path in self.worker_logs:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
            parts.append(f"--- {path.name} ---\n" + "\n".join(lines[-40:]))
        return "\n".join(parts)

    def stop(self) -> None:
        """Stop every process started here, with SIGTERM and then SIGKILL per group."""
        for process in self.processes:
            _process_group_stop(process)


def _subprocess_env(root: Path, db_path: Path, settings_module: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("CELERY_BROKER_URL", None)
    env.update(
        DATABASE_URL=f"sqlite:///{db_path}",
        DJANGO_SETTINGS_MODULE=settings_module,
        CELERY_BROKER_FOLDER=str(root / "broker"),
        SIGMA_CACHE_DIR=str(root / "pysigma-cache"),
        PORTAL_LOG_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
    )
    return env


def _process_group_stop(process: subprocess.Popen) -> None:
    """Stop a process started with start_new_session and whatever is left of its group.

    A worker on the filesystem transport needs about 5 s for a warm shutdown, so after
    1 s the group is killed: the test has finished and its database is thrown away.
    """
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=1)
        except subprocess.TimeoutExpired:
            _process_group_signal(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    # Pool processes of a worker whose main process was killed keep the group id.
    _process_group_signal(process.pid, signal.SIGKILL)


def _process_group_signal(group_id: int, signal_number: int) -> None:
    try:
        os.killpg(group_id, signal_number)
    except ProcessLookupError:
        pass


def _child_pids(parent_pid: int) -> set[int]:
    output = subprocess.run(
        ["ps", "--ppid", str(parent_pid), "-o", "pid="],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return {int(line) for line in output.split()}


@pytest.fixture(scope="module")
def template_db(tmp_path_factory) -> Path:
    """A migrated SQLite database, copied for each test so migrate runs once."""
    root = tmp_path_factory.mktemp("render-worker-template")
    db_path = root / "db.sqlite3"
    env = _subprocess_env(root, db_path, "portal.settings")
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"migrate failed:\n{result.stderr}"
    return db_path


@pytest.fixture
def portal_factory(tmp_path, template_db):
    portals = []

    def create(settings_module: str = "portal.settings", broker_url: str = "") -> Portal:
        portal = Portal(
            tmp_path / f"portal-{len(portals)}", template_db, settings_module, broker_url
        )
        portals.append(portal)
        return portal

    yield create
    for portal in portals:
        portal.stop()


@pytest.fixture
def redis_broker_url():
    """A Redis database for the test; only the keys the test created are deleted after it."""
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        pytest.fail(
            f"Redis is not reachable at {REDIS_HOST}:{REDIS_PORT} ({exc}); the worker tests "
            f"need it. Start it with: {REDIS_START}"
        )
    existing = set(client.scan_iter())
    yield f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"
    created = [key for key in client.scan_iter() if key not in existing]
    if created:
        client.delete(*created)
    client.close()


def _shipped_renders_check(renders: list[dict]) -> None:
    # 5 shipped Sigma rules for each of the 14 targets of portal.settings.
    assert len(renders) == 70
    unfinished = [row for row in renders if row["status"] not in TERMINAL]
    assert unfinished == []
    empty_queries = [row for row in renders if row["status"] == "rendered" and not row["query"]]
    assert empty_queries == []
    failures_without_reason = [
        row for row in renders if row["status"] != "rendered" and not row["error"]
    ]
    assert failures_without_reason == []
    splunk_statuses = {row["status"] for row in renders if row["target"] == "splunk"}
    assert splunk_statuses == {"rendered"}


def test_worker_redis_broker_renders_content(redis_broker_url, portal_factory):
    # redis_broker_url comes first, so its key cleanup runs after the worker stopped.
    portal = portal_factory(broker_url=redis_broker_url)
    portal.start_worker()

    portal.manage("load_content")
    renders = portal.wait_for_terminal(expected=70)

    _shipped_renders_check(renders)


def test_worker_filesystem_broker_renders_content(portal_factory):
    portal = portal_factory()
    portal.start_worker()

    portal.manage("load_content")
    renders = portal.wait_for_terminal(expected=70)

    _shipped_renders_check(renders)
    assert (portal.root / "broker" / "queue").is_dir()


def test_worker_pool_process_killed_render_retried(portal_factory):
    portal = portal_factory(settings_module="tests.render_settings")
    worker = portal.start_worker()
    portal.manage("load_content")
    pid, title = portal.wait_for_slow_render_running()
    pool_pids = _child_pids(worker.pid)

    os.kill(pid, signal.SIGKILL)
    renders = portal.wait_for_terminal(expected=10)

    assert pid in pool_pids
    assert worker.poll() is None
    killed = next(row for row in renders if row["target"] == "slow" and row["title"] == title)
    assert killed["status"] == "rendered", killed["error"]
    assert killed["attempts"] == 2
    assert killed["query"] == f"slow title={title}"
    statuses = {row["status"] for row in renders}
    assert statuses == {"rendered"}


def test_worker_killed_whole_recovered_at_start(portal_factory):
    portal = portal_factory(settings_module="tests.render_settings")
    first_worker = portal.start_worker()
    portal.manage("load_content")
    portal.wait_for_slow_render_running()

    os.killpg(first_worker.pid, signal.SIGKILL)
    first_worker.wait(timeout=10)
    killed_at = time.monotonic()
    abandoned = [row for row in portal.renders() if row["status"] == "running"]
    for marker in portal.pid_dir.iterdir():
        marker.unlink()
    # Start the next worker once the abandoned cutoff has passed, so its start recovers
    # the renders rather than its periodic sweep.
    time.sleep(max(0.0, killed_at + TEST_ABANDONED_AFTER + 0.5 - time.monotonic()))
    portal.start_worker()
    renders = portal.wait_for_terminal(expected=10)

    assert abandoned != []
    by_id = {row["id"]: row for row in renders}
    for row in abandoned:
        recovered = by_id[row["id"]]
        assert recovered["status"] == "rendered", recovered["error"]
        assert recovered["attempts"] == 2
    statuses = {row["status"] for row in renders}
    assert statuses == {"rendered"}
    second_log = portal.worker_logs[1].read_text(encoding="utf-8")
    assert "were abandoned by a worker; queued again" in second_log


def test_worker_restarted_at_once_sweep_recovers(portal_factory):
    portal = portal_factory(settings_module="tests.render_settings")
    first_worker = portal.start_worker()
    portal.manage("load_content")
    portal.wait_for_slow_render_running()

    os.killpg(first_worker.pid, signal.SIGKILL)
    first_worker.wait(timeout=10)
    abandoned = [row for row in portal.renders() if row["status"] == "running"]
    for marker in portal.pid_dir.iterdir():
        marker.unlink()
    portal.start_worker()
    renders = portal.wait_for_terminal(expected=10)

    assert abandoned != []
    by_id = {row["id"]: row for row in renders}
    for row in abandoned:
        recovered = by_id[row["id"]]
        assert recovered["status"] == "rendered", recovered["error"]
    statuses = {row["status"] for row in renders}
    assert statuses == {"rendered"}
