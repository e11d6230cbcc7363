"""Private PostgreSQL and Redis servers and portal processes for the production tests.

Each server runs on a free loopback port from a temporary folder and is stopped by
the test that started it, so a test may stop and restart it without touching the
machine's shared servers.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
# Seconds to wait for a server or process to start or stop.
START_TIMEOUT = 60


def production_environment(**values: str) -> dict[str, str]:
    """Return the environment of a production process: this one's basics, PORTAL_ENV and values."""
    keep = {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR"}
    env = {key: value for key, value in os.environ.items() if key in keep}
    env.update(
        DJANGO_SETTINGS_MODULE="portal.settings",
        PORTAL_ENV="production",
        PYTHONUNBUFFERED="1",
    )
    env.update(values)
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition: Callable[[], object], timeout: float, what: str, interval: float = 0.2):
    """Poll condition until it returns a true value, and return that value."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
        except Exception as exc:  # noqa: BLE001 - the condition may fail until ready
            last_error = exc
        else:
            if value:
                return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last error: {last_error})")


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class RedisServer:
    """A redis-server of our own on a free port, without persistence."""

    def __init__(self, root: Path):
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            pytest.fail("redis-server is missing; install Debian's redis-server package.")
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.root)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_until(lambda: port_open(self.port), START_TIMEOUT, f"redis-server on {self.port}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=START_TIMEOUT)
        self.process = None


def _postgres_bin(name: str) -> str:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if not found:
        pytest.fail(f"PostgreSQL's {name} is missing; install Debian's postgresql package.")
    return str(found[-1])


def _as_postgres(args: list[str]) -> list[str]:
    # initdb and the server refuse to run as root.
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


class PostgresCluster:
    """A PostgreSQL cluster of our own: initdb in a temporary folder, pg_ctl on a free port."""

    def __init__(self):
        # Not under pytest's tmp_path: its parents are private to root, and the server
        # runs as the postgres user.
        self.root = Path(tempfile.mkdtemp(prefix="portal-postgres-"))
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = free_port()
        result = subprocess.run(
            _as_postgres([_postgres_bin("initdb"), "-D", str(self.data), "-A", "trust",
                          "-U", "postgres", "--no-sync"]),
            capture_output=True, text=True, timeout=120, check=False,
        )
        assert result.returncode == 0, f"initdb failed:\n{result.stderr}"

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        result = subprocess.run(
            _as_postgres([_postgres_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                          "-o", options, "-w", "start"]),
            capture_output=True, text=True, timeout=120, check=False,
        )
        assert result.returncode == 0, f"pg_ctl start failed:\n{result.stdout}{result.stderr}"

    def stop(self) -> None:
        subprocess.run(
            _as_postgres([_postgres_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"]),
            capture_output=True, text=True, timeout=120, check=False,
        )

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
        if self.root.exists():
            # The stopping server may still have been removing its own files.
            time.sleep(1)
            shutil.rmtree(self.root)

    def create_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')


class PortalProcesses:
    """Portal processes (gunicorn, Celery worker and beat, manage.py) with one environment."""

    def __init__(self, root: Path, env: dict[str, str]):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.env = env
        self.processes: dict[str, subprocess.Popen] = {}

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=self.env,
            capture_output=True, text=True, timeout=300, check=False,
        )
        if check:
            assert result.returncode == 0, f"manage.py {' '.join(args)} failed:\n{result.stderr}"
        return result

    def start(self, name: str, args: list[str]) -> subprocess.Popen:
        log = (self.root / f"{name}.log").open("ab")
        process = subprocess.Popen(
            args, cwd=REPO_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.processes[name] = process
        return process

    def start_web(self, port: int, workers: int = 2) -> subprocess.Popen:
        return self.start("web", [
            sys.executable, "-m", "gunicorn", "portal.wsgi:application",
            f"--bind=127.0.0.1:{port}", f"--workers={workers}", "--timeout=60",
        ])

    def start_worker(self, name: str = "worker") -> subprocess.Popen:
        return self.start(name, [
            sys.executable, "-m", "celery", "-A", "portal", "worker", "-Q", "render,validate",
            "--concurrency=2", "--loglevel=INFO", f"--hostname={name}@%h",
            "--without-mingle", "--without-gossip",
        ])

    def start_beat(self) -> subprocess.Popen:
        return self.start("beat", [
            sys.executable, "-m", "celery", "-A", "portal", "beat", "--loglevel=INFO",
            f"--schedule={self.root / 'celerybeat-schedule'}",
        ])

    def log(self, name: str) -> str:
        path = self.root / f"{name}.log"
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        process = self.processes.pop(name, None)
        if process is None:
            return
        if process.poll() is None:
            try:
                os.killpg(process.pid, sig)
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=10)

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.stop(name)
