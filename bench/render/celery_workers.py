"""Starting and stopping a Celery worker on the `render` queue as a subprocess."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class WorkerError(Exception):
    """A worker that exited or did not respond to a ping in time."""


class RenderWorker:
    """`celery -A portal worker -Q render -c N` in its own session, with a log file."""

    def __init__(self, *, concurrency: int, env: dict[str, str], project_dir: Path, log_dir: Path):
        self.concurrency = concurrency
        self.env = env
        self.project_dir = project_dir
        self.nodename = f"bench-render-c{concurrency}@{socket.gethostname()}"
        self.log_path = log_dir / f"worker-c{concurrency}.log"
        self.process: subprocess.Popen | None = None

    @property
    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal",
            "worker",
            "-Q",
            "render",
            "-c",
            str(self.concurrency),
            "-n",
            self.nodename,
            "--loglevel",
            "INFO",
        ]

    def start(self, app, timeout: float = 60.0) -> None:
        """Start the worker and wait until it responds to a ping through the broker."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=self.project_dir,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise WorkerError(
                    f"worker -c {self.concurrency} exited with code {self.process.returncode} "
                    f"during start; see {self.log_path}:\n{self.log_tail()}"
                )
            if app.control.ping(destination=[self.nodename], timeout=0.5):
                return
        raise WorkerError(
            f"worker -c {self.concurrency} did not respond to a ping within {timeout:.0f} s; "
            f"see {self.log_path}:\n{self.log_tail()}"
        )

    def stop(self, timeout: float = 30.0) -> None:
        """Send SIGTERM (warm shutdown) to the worker's process group, SIGKILL if it stays."""
        if self.process is None or self.process.poll() is not None:
            return
        group = self.process.pid
        os.killpg(group, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(group, signal.SIGKILL)
            self.process.wait(timeout=10)
        # Pool children exit with the main process. Any left in the group are killed.
        try:
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def pool_pids(self) -> list[int]:
        """Return the ids of the prefork pool processes (children of the main process)."""
        if self.process is None:
            return []
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return [int(pid) for pid in children.read_text().split()]
        except OSError:
            return []

    def peak_rss_kib(self) -> dict[str, int]:
        """Return VmHWM (peak resident set size, KiB) of the main and each pool process."""
        peaks = {}
        if self.process is not None:
            peaks["main"] = _status_kib(self.process.pid, "VmHWM")
        for index, pid in enumerate(self.pool_pids()):
            peaks[f"pool-{index + 1}"] = _status_kib(pid, "VmHWM")
        return {name: value for name, value in peaks.items() if value is not None}

    def cpu_seconds(self) -> float:
        """Return the CPU time (user + system) of the main and pool processes so far."""
        pids = ([self.process.pid] if self.process else []) + self.pool_pids()
        return sum(_cpu_seconds(pid) for pid in pids)

    def received_tasks(self) -> int:
        """Count the render_batch tasks this worker logged as received (INFO level)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return 0
        return sum(
            1
            for line in text.splitlines()
            if "Task detections.render_batch[" in line and line.endswith(" received")
        )

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _status_kib(pid: int, key: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _cpu_seconds(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    # Fields after the command name, which is in parentheses and may contain spaces.
    fields = stat.rsplit(")", 1)[1].split()
    user_ticks, system_ticks = int(fields[11]), int(fields[12])
    return (user_ticks + system_ticks) / CLOCK_TICKS


def machine_busy_seconds() -> float:
    """Return the CPU time all processes on the machine used since boot, from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, idle, iowait, irq, softirq, steal = (int(value) for value in fields[:8])
    return (user + nice + system + irq + softirq) / CLOCK_TICKS
