"""Benchmark import_sigma against pySigma alone parsing the same files.

    .venv/bin/python bench/import/run.py --rules PATH [PATH ...] [--attack PATH]

Creates a throwaway database, then runs three timed commands, each in its own
process: pySigma alone parsing every file (bench/import/pysigma_only.py), the full
`manage.py import_sigma`, and the same import again with nothing changed. Renders are
only queued: no worker runs. bench/README.md describes each figure.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT_DIR / "bench" / "render"))

from bench_database import BenchDatabase, BenchDatabaseError  # noqa: E402

GOAL_IMPORT_RATIO = 2.0
GOAL_UNCHANGED_PERCENT = 10.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# The importer's log lines, in the format of portal.settings.LOGGING.
LOG_TIME = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO \S+ Sigma import (started|finished)"
)


class BenchmarkError(Exception):
    """A benchmark step that failed, with the command's output."""


@dataclass
class Timing:
    """One timed command: wall time from start to exit, its CPU time and peak memory."""

    label: str
    wall_seconds: float
    cpu_seconds: float
    other_cpu_seconds: float
    peak_rss_mib: float
    stdout: str
    stderr: str

    def logged_import_seconds(self) -> float | None:
        """Return the time between the importer's start and finish log lines, if logged."""
        times = {}
        for line in self.stderr.splitlines():
            match = LOG_TIME.match(line)
            if match:
                times[match.group(2)] = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f")
        if {"started", "finished"} <= times.keys():
            return (times["finished"] - times["started"]).total_seconds()
        return None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Time import_sigma on a rule set, a re-import of the unchanged set, and pySigma "
            "alone parsing the same files, on a throwaway database."
        )
    )
    parser.add_argument(
        "--rules", type=Path, nargs="+", required=True, help="Folders of Sigma rules (*.yml)."
    )
    parser.add_argument(
        "--attack",
        type=Path,
        help=(
            "ATT&CK STIX bundle or folder to import before the timed steps, so tags map to "
            "the full catalogue (default: only the shipped content/attack.yml)."
        ),
    )
    parser.add_argument(
        "--database-url",
        help=(
            "PostgreSQL URL of a database to create and drop, e.g. "
            "postgres://postgres@127.0.0.1:5432/bench_import (default: a temporary SQLite file)."
        ),
    )
    parser.add_argument(
        "--replace-database",
        action="store_true",
        help="Drop the --database-url database first if it exists (default: stop with an error).",
    )
    parser.add_argument("--json", type=Path, help="Also write the figures to this JSON file.")
    args = parser.parse_args(argv)
    for path in args.rules:
        if not path.is_dir():
            parser.error(f"--rules {path} is not a folder")
    return args


def machine_busy_seconds() -> float:
    """Return the CPU time all processes on the machine used since boot, from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq = (int(value) for value in fields[:7])
    return (user + nice + system + irq + softirq) / CLOCK_TICKS


def run_timed(label: str, command: list[str], env: dict[str, str]) -> Timing:
    """Run a command to its exit and measure it with wait4, which reports its own rusage."""
    busy_before = machine_busy_seconds()
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(command, cwd=PROJECT_DIR, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    cpu = usage.ru_utime + usage.ru_stime
    other = max(0.0, machine_busy_seconds() - busy_before - cpu)
    if process.returncode not in (0, 1):
        raise BenchmarkError(f"{label} exited with {process.returncode}:\n{stderr[-2000:]}")
    return Timing(label, wall, cpu, other, usage.ru_maxrss / 1024, stdout, stderr)


def manage(*arguments: str) -> list[str]:
    return [sys.executable, "manage.py", *arguments]


def run_benchmark(args: argparse.Namespace, env: dict[str, str]) -> dict:
    rules = [str(path.resolve()) for path in args.rules]
    for step in (manage("migrate", "--noinput"), manage("load_content")):
        subprocess.run(step, cwd=PROJECT_DIR, env=env, check=True, capture_output=True)
    attack = None
    if args.attack:
        attack = run_timed("import_attack", manage("import_attack", str(args.attack)), env)
        print(f"import_attack: {attack.stdout.splitlines()[0]} in {attack.wall_seconds:.1f} s")

    baseline = run_timed(
        "pySigma only", [sys.executable, "bench/import/pysigma_only.py", *rules], env
    )
    parsed = json.loads(baseline.stdout)
    full = run_timed("full import", manage("import_sigma", "--format", "json", *rules), env)
    unchanged = run_timed(
        "unchanged re-import", manage("import_sigma", "--format", "json", *rules), env
    )
    full_summary = json.loads(full.stdout)
    unchanged_summary = json.loads(unchanged.stdout)
    renders = _count_renders(env)

    ratio = full.wall_seconds / baseline.wall_seconds
    unchanged_percent = 100 * unchanged.wall_seconds / full.wall_seconds
    figures = {
        "rules": rules,
        "database": env["DATABASE_URL"].split("@")[-1],
        "files": parsed["files"],
        "pysigma_rules": parsed["rules"],
        "pysigma_files_with_errors": parsed["files_with_errors"],
        "full_summary": _counts(full_summary),
        "unchanged_summary": _counts(unchanged_summary),
        "renders_queued": renders,
        "timings": [asdict(_without_output(item)) for item in (baseline, full, unchanged)],
        "import_log_seconds": {
            "full": full.logged_import_seconds(),
            "unchanged": unchanged.logged_import_seconds(),
        },
        "attack_import_seconds": attack.wall_seconds if attack else None,
        "ratio_full_to_pysigma": ratio,
        "ratio_full_to_pysigma_cpu": full.cpu_seconds / baseline.cpu_seconds,
        "unchanged_percent_of_full": unchanged_percent,
    }
    _print_figures(figures, baseline, full, unchanged)
    return figures


def _count_renders(env: dict[str, str]) -> int:
    code = "from detections.models import Render; print(Render.objects.count())"
    result = subprocess.run(
        manage("shell", "-c", code), cwd=PROJECT_DIR, env=env, check=True, capture_output=True
    )
    return int(result.stdout.decode().split()[-1])


def _counts(summary: dict) -> dict:
    return {
        "created": summary["created"],
        "updated": summary["updated"],
        "unchanged": summary["unchanged"],
        "failed": len(summary["failed"]),
        "warnings": len(summary["warnings"]),
    }


def _without_output(timing: Timing) -> Timing:
    return Timing(
        timing.label, timing.wall_seconds, timing.cpu_seconds, timing.other_cpu_seconds,
        timing.peak_rss_mib, "", "",
    )


def _print_figures(figures: dict, *timings: Timing) -> None:
    print(f"files: {figures['files']}, rules parsed by pySigma: {figures['pysigma_rules']}")
    print(f"full import: {figures['full_summary']}, renders queued: {figures['renders_queued']}")
    print(f"re-import: {figures['unchanged_summary']}")
    print()
    header = f"{'wall (s)':>10}{'CPU (s)':>10}{'other CPU (s)':>15}{'peak RSS (MiB)':>16}"
    print(f"{'step':<22}{header}")
    for timing in timings:
        print(
            f"{timing.label:<22}{timing.wall_seconds:>10.2f}{timing.cpu_seconds:>10.2f}"
            f"{timing.other_cpu_seconds:>15.2f}{timing.peak_rss_mib:>16.0f}"
        )
    logged = figures["import_log_seconds"]
    print(
        f"\nimport time between the importer's log lines: full {logged['full']:.2f} s, "
        f"unchanged {logged['unchanged']:.2f} s"
    )
    ratio = figures["ratio_full_to_pysigma"]
    print(
        f"full import / pySigma only: {ratio:.2f} by wall time, "
        f"{figures['ratio_full_to_pysigma_cpu']:.2f} by CPU time "
        f"(goal: at most {GOAL_IMPORT_RATIO:.0f}); "
        f"{'met' if ratio <= GOAL_IMPORT_RATIO else 'not met'}"
    )
    percent = figures["unchanged_percent_of_full"]
    print(
        f"unchanged re-import: {percent:.1f} % of the full import "
        f"(goal: below {GOAL_UNCHANGED_PERCENT:.0f} %); "
        f"{'met' if percent < GOAL_UNCHANGED_PERCENT else 'not met'}"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bench-import-"))
    if args.database_url:
        database = BenchDatabase(args.database_url, replace_existing=args.replace_database)
    else:
        database = BenchDatabase.temporary_sqlite(workdir)
    try:
        database.create()
        env = dict(os.environ)
        env.update(
            {
                "DATABASE_URL": database.url,
                # Production runs without DEBUG, which would keep every SQL query in memory.
                "DEBUG": "false",
                # Renders are queued into a folder that is deleted afterwards; no worker runs.
                "CELERY_BROKER_URL": "filesystem://",
                "CELERY_BROKER_FOLDER": str(workdir / "broker"),
                "SIGMA_CACHE_DIR": str(workdir / "pysigma-cache"),
            }
        )
        figures = run_benchmark(args, env)
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2) + "\n")
            print(f"\nfigures written to {args.json}")
        return 0
    except (BenchmarkError, BenchDatabaseError, subprocess.CalledProcessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        database.drop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
