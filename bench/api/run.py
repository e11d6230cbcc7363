"""Load benchmark of the web process: gunicorn on PostgreSQL with 3,000 detections, driven by wrk.

`python -m bench.api.run` creates a PostgreSQL database, migrates it, loads the
shipped content, copies the shipped detection 3,000 times (bench/api/dataset.py),
starts a private redis-server for the shared cache, then runs gunicorn in
production mode and measures each endpoint with wrk on loopback. See
bench/README.md for what each figure means.
"""

import argparse
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

PROJECT_DIR = Path(__file__).resolve().parents[2]
SECRET = "bench-only-secret-key-" + "b" * 40
# Endpoints measured in the main run: label, path(s). Several paths are visited in turn.
DETAIL_SLUGS = [f"bench-{number:05d}" for number in range(0, 3000, 30)]


def _load_bench_database():
    spec = importlib.util.spec_from_file_location(
        "bench_database", PROJECT_DIR / "bench" / "render" / "bench_database.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Figure:
    label: str
    requests: int
    seconds: float
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    statuses: dict
    machine_busy_percent: int
    # CPU time of the gunicorn processes per request; 0 where not measured.
    server_cpu_ms: float = 0.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not respond with 200 within {timeout} s")


def manage(env: dict, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=PROJECT_DIR, env=env,
        capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def start_redis(folder: Path) -> tuple[subprocess.Popen, int]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is missing; install Debian's redis-server package.")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(folder)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    return process, port


class Gunicorn:
    def __init__(self, env: dict, workers: int, log: Path):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        with log.open("ab") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "portal.wsgi:application",
                 f"--bind=127.0.0.1:{self.port}", f"--workers={workers}", "--timeout=60"],
                cwd=PROJECT_DIR, env=env, stdout=output, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for(self.base + "/healthz", 60)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


LATENCY = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)
UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


WRK_SCRIPT = """
local paths = {%s}
local counter = 0
local threads = {}
statuses = {}

function setup(thread)
  table.insert(threads, thread)
end

-- Each request comes from one of 65,536 client addresses, as a proxy reports them,
-- so every client stays far below the production throttle rates.
local forwarded = {}

request = function()
  counter = counter + 1
  forwarded["X-Forwarded-For"] = string.format(
    "10.%%d.%%d.1", math.floor(counter / 256) %% 256, counter %% 256)
  return wrk.format(nil, paths[(counter %% #paths) + 1], forwarded)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      io.write(string.format("status %%d %%d\\n", status, count))
    end
  end
end
"""


def process_tree_cpu(pid: int) -> int:
    """Return the user and system CPU ticks of `pid` and its children, from /proc."""
    total = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        # utime and stime are fields 14 and 15 of stat, and fields[0] is field 3.
        total += int(fields[11]) + int(fields[12])
        pending.extend(int(child) for child in children)
    return total


def machine_cpu() -> tuple[int, int]:
    """Return busy and total CPU ticks of the whole machine, from /proc/stat."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def run_wrk(
    label: str, base: str, paths: list[str], args, folder: Path, headers=(), server_pid=None
) -> Figure:
    script = folder / "paths.lua"
    script.write_text(WRK_SCRIPT % ", ".join(json.dumps(path) for path in paths), encoding="utf-8")
    command = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s",
               "--timeout", "5s", "--latency", "-s", str(script)]
    for header in ("X-Forwarded-Proto: https", *headers):
        command += ["-H", header]
    busy_before, total_before = machine_cpu()
    server_before = process_tree_cpu(server_pid) if server_pid else 0
    output = subprocess.run(command + [base], capture_output=True, text=True, check=True).stdout
    server_after = process_tree_cpu(server_pid) if server_pid else 0
    busy_after, total_after = machine_cpu()
    # Requests still queued in gunicorn when wrk stops would slow the next measurement.
    httpx.get(base + "/healthz", timeout=120)
    latencies = {match[0]: float(match[1]) * UNIT_MS[match[2]] for match in LATENCY.findall(output)}
    status_lines = re.findall(r"^status (\d+) (\d+)$", output, re.MULTILINE)
    statuses = {int(code): int(count) for code, count in status_lines}
    socket_errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    requests = int(re.search(r"(\d+) requests in", output).group(1))
    return Figure(
        label=label,
        requests=requests,
        seconds=args.duration,
        requests_per_second=float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        p50_ms=latencies["50"],
        p99_ms=latencies["99"],
        errors=socket_errors + sum(count for code, count in statuses.items() if code >= 400),
        statuses=statuses,
        machine_busy_percent=round(
            100 * (busy_after - busy_before) / max(1, total_after - total_before)
        ),
        server_cpu_ms=1000 * (server_after - server_before) / CLOCK_TICKS / max(1, requests),
    )


def print_figure(figure: Figure, ceiling: float | None = None) -> None:
    share = f"{figure.requests_per_second / ceiling:6.0%}" if ceiling else "     -"
    print(
        f"  {figure.label:<28} {figure.requests_per_second:9.0f} req/s {share} of bare"
        f"   p50 {figure.p50_ms:7.2f} ms   p99 {figure.p99_ms:7.2f} ms"
        f"   errors {figure.errors}   machine CPU {figure.machine_busy_percent:3d} %"
        f"   server CPU {figure.server_cpu_ms:.2f} ms/request"
    )
    if figure.errors:
        print(f"      statuses: {figure.statuses}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/bench_api")
    parser.add_argument("--replace-database", action="store_true")
    parser.add_argument("--detections", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers of the main run")
    parser.add_argument("--compare-workers", type=int, nargs="*", default=[2, 3, 4])
    parser.add_argument("--compare-duration", type=int, default=5)
    parser.add_argument("--duration", type=int, default=10, help="seconds per endpoint")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds of the main run (default 3)"
    )
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--keep-database", action="store_true", help="leave the database for another run"
    )
    parser.add_argument(
        "--reuse-database",
        action="store_true",
        help="measure a database that an earlier --keep-database run filled",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing; install Debian's wrk package (apt-get install wrk).")

    bench_database = _load_bench_database()
    database = bench_database.BenchDatabase(
        args.database_url, replace_existing=args.replace_database
    )
    keep = args.keep_database or args.reuse_database
    folder = Path(tempfile.mkdtemp(prefix="bench-api-"))
    redis_process = None
    try:
        if not args.reuse_database:
            database.create()
        redis_process, redis_port = start_redis(folder)
        env = {key: value for key, value in os.environ.items() if key in {"PATH", "HOME", "LANG"}}
        env.update(
            DJANGO_SETTINGS_MODULE="portal.settings",
            PORTAL_ENV="production",
            SECRET_KEY=SECRET,
            ALLOWED_HOSTS="127.0.0.1",
            DATABASE_URL=args.database_url,
            REDIS_URL=f"redis://127.0.0.1:{redis_port}/1",
            # No worker runs: renders and validation runs queued by load_content
            # go to a folder that is deleted at the end.
            CELERY_BROKER_URL="filesystem://",
            CELERY_BROKER_FOLDER=str(folder / "broker"),
            STATIC_ROOT=str(folder / "static"),
            BENCH_ENDPOINTS="true",
            # Throttling stays on at the production rates, behind one proxy: wrk
            # sends each request from one of many client addresses (WRK_SCRIPT).
            NUM_PROXIES="1",
            LOG_FORMAT="json",
        )
        print(f"database: {database.label}; redis-server on port {redis_port}")
        manage(env, "collectstatic", "--noinput", "-v", "0")
        if not args.reuse_database:
            fill_database(env, args.detections)
        print("\none request to each endpoint, in one process (bench/api/profile.py):")
        print(python_module(env, "bench.api.profile").rstrip())
        report = measure(args, env, folder)
        if args.json:
            args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")
    finally:
        if redis_process is not None:
            redis_process.terminate()
            redis_process.wait()
        if not keep:
            database.drop()
        shutil.rmtree(folder, ignore_errors=True)


def python_module(env: dict, module: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=PROJECT_DIR, env=env,
        capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"{module} failed:\n{result.stderr}")
    return result.stdout


def fill_database(env: dict, count: int) -> None:
    started = time.perf_counter()
    manage(env, "migrate", "--noinput", "-v", "0")
    manage(env, "load_content", "-v", "0")
    print(f"setup: migrate and load_content in {time.perf_counter() - started:.1f} s")
    print(f"dataset: {python_module(env, 'bench.api.dataset', '--count', str(count)).strip()}")


def endpoints() -> list[tuple[str, list[str]]]:
    return [
        ("bare view /bench/ping/", ["/bench/ping/"]),
        ("HTML list /", ["/"]),
        (
            "HTML filtered list",
            ["/?severity=high&tactic=TA0009", "/?severity=medium&status=published"],
        ),
        ("API detail", [f"/api/v1/detections/{slug}/" for slug in DETAIL_SLUGS]),
        ("API list with filters", ["/api/v1/detections/?severity=high&tactic=TA0009",
                                   "/api/v1/detections/?severity=medium&status=published"]),
    ]


def main_runs(base: str, detail_paths: list[str]) -> list[tuple[str, list[str], tuple]]:
    """Return the endpoints after the bare view, with the 304 run: label, paths, headers."""
    runs = [(label, paths, ()) for label, paths in endpoints()[1:]]
    first = httpx.get(base + detail_paths[0], headers={"X-Forwarded-Proto": "https"})
    etag = first.headers.get("ETag")
    if etag is not None:
        runs.append(("304 Not Modified", [detail_paths[0]], (f"If-None-Match: {etag}",)))
    else:
        print("  304 Not Modified             not available: the API sends no ETag")
    return runs


def summarise(label: str, series: list[Figure], shares: list[float] | None) -> dict:
    return {
        "label": label,
        "runs": [asdict(figure) for figure in series],
        "requests_per_second": statistics.median(f.requests_per_second for f in series),
        "share_of_bare": statistics.median(shares) if shares else 1.0,
        "p50_ms": statistics.median(f.p50_ms for f in series),
        "p99_ms": max(f.p99_ms for f in series),
        "errors": sum(f.errors for f in series),
        "machine_busy_percent": round(statistics.mean(f.machine_busy_percent for f in series)),
        "server_cpu_ms": statistics.median(f.server_cpu_ms for f in series),
    }


def print_summary(summary: dict) -> None:
    print(
        f"  {summary['label']:<28} {summary['requests_per_second']:9.0f} req/s "
        f"{summary['share_of_bare']:6.0%} of bare   p50 {summary['p50_ms']:7.2f} ms"
        f"   p99 {summary['p99_ms']:7.2f} ms   errors {summary['errors']}"
        f"   machine CPU {summary['machine_busy_percent']:3d} %"
        f"   server CPU {summary['server_cpu_ms']:.2f} ms/request"
    )


def measure(args, env: dict, folder: Path) -> dict:
    log = folder / "gunicorn.log"
    report: dict = {"compare": {}, "endpoints": []}
    detail_paths = dict(endpoints())["API detail"]
    print(f"\nworkers compared on the API detail, {args.compare_duration} s each "
          f"({args.connections} connections):")
    compare_args = argparse.Namespace(**{**vars(args), "duration": args.compare_duration})
    for workers in args.compare_workers:
        server = Gunicorn(env, workers, log)
        try:
            run_wrk("warm-up", server.base, detail_paths, compare_args, folder)
            pid = server.process.pid
            bare = run_wrk(
                "bare", server.base, ["/bench/ping/"], compare_args, folder, server_pid=pid
            )
            figure = run_wrk(
                f"{workers} workers", server.base, detail_paths, compare_args, folder,
                server_pid=pid,
            )
        finally:
            server.stop()
        report["compare"][workers] = {"detail": asdict(figure), "bare": asdict(bare)}
        print_figure(figure, bare.requests_per_second)

    print(f"\nmain run: {args.workers} workers, {args.duration} s per endpoint, "
          f"{args.connections} connections, {args.threads} wrk thread(s), {args.rounds} rounds; "
          "the bare view runs before and after each endpoint:")
    server = Gunicorn(env, args.workers, log)
    try:
        for _label, paths in endpoints():
            run_wrk("warm-up", server.base, paths, compare_args, folder)
        runs = main_runs(server.base, detail_paths)
        bare_label, bare_paths = endpoints()[0]
        shares: dict[str, list[float]] = {}
        figures: dict[str, list[Figure]] = {}
        for number in range(1, args.rounds + 1):
            print(f"  round {number}:")
            pid = server.process.pid
            before = run_wrk(bare_label, server.base, bare_paths, args, folder, server_pid=pid)
            figures.setdefault(bare_label, []).append(before)
            for label, paths, headers in runs:
                figure = run_wrk(
                    label, server.base, paths, args, folder, headers=headers, server_pid=pid
                )
                after = run_wrk(bare_label, server.base, bare_paths, args, folder, server_pid=pid)
                ceiling = (before.requests_per_second + after.requests_per_second) / 2
                figures.setdefault(label, []).append(figure)
                figures[bare_label].append(after)
                shares.setdefault(label, []).append(figure.requests_per_second / ceiling)
                print_figure(figure, ceiling)
                before = after
        print("\nmedian over the rounds (share: of the bare runs just before and after; "
              "p99: the highest of the rounds):")
        for label, series in figures.items():
            summary = summarise(label, series, shares.get(label))
            report["endpoints"].append(summary)
            print_summary(summary)
    finally:
        server.stop()
    return report


if __name__ == "__main__":
    main()
