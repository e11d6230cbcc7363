"""Benchmark rendering a Sigma rule folder for every render target on Celery workers.

    .venv/bin/python bench/render/run.py --rules PATH [--targets KEY ...] [--limit N]

Creates a throwaway database, loads the rules as detections, renders them all with
one and with two worker processes, times a re-render of unchanged rules and the
per-rule latency of one edited rule, then times sigma-cli on the same rules.
bench/README.md describes each figure.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2]
if str(PROJECT_DIR) not in sys.path:
    sys.path.insert(0, str(PROJECT_DIR))

from bench_database import BenchDatabase, BenchDatabaseError  # noqa: E402
from celery_workers import RenderWorker, WorkerError, machine_busy_seconds  # noqa: E402

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"
GOAL_CLI_RATIO = 0.5
GOAL_LATENCY_P95_MS = 100.0
GOAL_UNCHANGED_PERCENT = 5.0
ERROR_GROUPS_SHOWN = 8


class BenchmarkError(Exception):
    """A benchmark run that cannot start or finish, with the reason."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Render a Sigma rule folder for every render target on Celery workers and "
            "compare with sigma-cli. Runs on a throwaway database and a Redis database "
            "that it flushes."
        )
    )
    parser.add_argument(
        "--rules", type=Path, required=True, help="Folder of Sigma rules (*.yml, recursive)."
    )
    parser.add_argument(
        "--targets",
        nargs="+",
        metavar="KEY",
        help="Render target keys from settings.RENDER_TARGETS (default: all).",
    )
    parser.add_argument(
        "--limit",
        type=int,
        help="Use only N rule files, spread evenly over the sorted paths (default: all).",
    )

    parser.add_argument(
        "--database-url",
        help=(
            "PostgreSQL URL of a database to create and drop, e.g. "
            "postgres://postgres@127.0.0.1:5432/bench_render (default: a temporary SQLite file)."
        ),
    )
    parser.add_argument(
        "--replace-database",
        action="store_true",
        help="Drop the --database-url database first if it exists (default: stop with an error).",
    )
    parser.add_argument(
        "--redis-url",
        default=DEFAULT_REDIS_URL,
        help=(
            f"Celery broker URL (default {DEFAULT_REDIS_URL}). The run flushes this Redis "
            "database before, between and after the worker runs."
        ),
    )

    parser.add_argument(
        "--latency-samples",
        type=int,
        default=200,
        help="Rules to edit and render one at a time for the latency figures (default 200).",
    )
    parser.add_argument(
        "--latency-target",
        default="splunk",
        help="Render target of the latency measurement (default splunk).",
    )
    parser.add_argument(
        "--poll-ms",
        type=float,
        default=2.0,
        help="Milliseconds between database checks while a latency sample runs (default 2).",
    )

    parser.add_argument(
        "--render-timeout",
        type=float,
        default=1200.0,
        help="Seconds a full render may take before the run stops (default 1200).",
    )
    parser.add_argument(
        "--cli-timeout",
        type=float,
        default=300.0,
        help="Seconds one sigma-cli target may take before it is killed (default 300).",
    )
    parser.add_argument("--skip-sigma-cli", action="store_true", help="Do not time sigma-cli.")

    parser.add_argument("--json", type=Path, help="Also write the figures to this JSON file.")
    parser.add_argument(
        "--keep-workdir",
        action="store_true",
        help="Keep the temporary folder with worker logs and sigma-cli output.",
    )
    args = parser.parse_args(argv)
    if not args.rules.is_dir():
        parser.error(f"--rules {args.rules} is not a folder; point it at SigmaHQ's rules/.")
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1.")
    return args


def configure_environment(database_url: str, redis_url: str, workdir: Path) -> dict[str, str]:
    """Set the variables portal.settings reads, here and for the worker subprocesses."""
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": redis_url,
            # Production runs without DEBUG, which would keep every SQL query in memory.
            "DEBUG": "false",
            # Production keeps connections for 60 s, and 0 would open one per task.
            "DATABASE_CONN_MAX_AGE": "60",
            "SIGMA_CACHE_DIR": str(workdir / "pysigma-cache"),
        }
    )
    return dict(os.environ)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bench-render-"))
    if args.database_url:
        database = BenchDatabase(args.database_url, replace_existing=args.replace_database)
    else:
        database = BenchDatabase.temporary_sqlite(workdir)
    broker = None
    workers: list[RenderWorker] = []
    try:
        database.create()
        env = configure_environment(database.url, args.redis_url, workdir)
        import django

        django.setup()
        import redis

        broker = redis.Redis.from_url(args.redis_url)
        figures = run_benchmark(
            args, env=env, workdir=workdir, database=database, broker=broker, workers=workers
        )
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2, default=str) + "\n")
            print(f"\nfigures written to {args.json}")
        return 0
    except (BenchmarkError, BenchDatabaseError, WorkerError, TimeoutError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        for worker in workers:
            worker.stop()
        if broker is not None:
            broker.flushdb()
        _close_django_connections()
        database.drop()
        if args.keep_workdir:
            print(f"worker logs and sigma-cli output kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def run_benchmark(args, *, env, workdir, database, broker, workers) -> dict:
    from django.core.management import call_command

    from detections.pysigma.convert import render_targets
    from portal.celery import app

    all_targets = render_targets()
    targets = args.targets or list(all_targets)
    unknown = sorted(set(targets) - set(all_targets))
    if unknown:
        raise BenchmarkError(
            f"unknown render target(s) {', '.join(unknown)}; configured: {', '.join(all_targets)}"
        )
    if args.latency_target not in all_targets:
        raise BenchmarkError(
            f"unknown --latency-target {args.latency_target}; configured: {', '.join(all_targets)}"
        )

    print_environment(args, database, targets)
    broker.flushdb()
    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    rule_set, rule_ids = load_rules(args)
    print(f"setup (migrate, parse, bulk insert): {time.perf_counter() - started:.1f} s")
    figures: dict = {
        "rules": rule_summary(rule_set),
        "targets": targets,
        "database": database.engine,
    }
    if not rule_ids:
        print("no parseable rules; nothing to render")
        return figures

    from measurements import failures_by_target, longest_error_by_target, reset_renders

    runs = {}
    for concurrency in (1, 2):
        reset_renders()
        broker.flushdb()
        worker = RenderWorker(
            concurrency=concurrency, env=env, project_dir=PROJECT_DIR, log_dir=workdir
        )
        workers.append(worker)
        print(f"\nworker: {' '.join(worker.command[1:])}")
        worker.start(app)
        runs[concurrency] = timed_full_render(args, worker, rule_ids, targets)
        print_full_render(runs[concurrency])
        if concurrency == 1:
            worker.stop()
    figures["full_render"] = {str(key): asdict(run) for key, run in runs.items()}

    failures = failures_by_target()
    print_failures(failures, longest_error_by_target(), targets, runs[2])
    figures["failures"] = {target: dict(groups) for target, groups in failures.items()}
    if runs[1].status_counts != runs[2].status_counts:
        print(
            "NOTE: status counts differ between the 1- and 2-worker runs: "
            f"{runs[1].status_counts} vs {runs[2].status_counts}"
        )

    figures["unchanged"] = unchanged_phase(rule_ids, targets, runs[2])
    figures["latency"] = latency_phase(args, rule_ids)
    workers[-1].stop()

    if not args.skip_sigma_cli:
        figures["sigma_cli"] = sigma_cli_phase(args, rule_set, targets, workdir, runs[2])
    return figures


def load_rules(args):
    from rule_set import insert_rule_set, read_rule_set, select_rule_files

    files = select_rule_files(args.rules, args.limit)
    rule_set = read_rule_set(args.rules, files)
    rule_ids = insert_rule_set(rule_set)
    summary = rule_summary(rule_set)
    by_error = summary["unparseable_by_error"]
    print(
        f"rule files: {summary['files']}, loaded: {summary['loaded']}, "
        f"unparseable: {summary['unparseable']}{f' {by_error}' if by_error else ''}, "
        f"correlation: {summary['correlation']}, filter: {summary['filter']}, "
        f"ids generated for missing or duplicate ids: {summary['generated_ids']}"
    )
    return rule_set, rule_ids


def rule_summary(rule_set) -> dict:
    return {
        "files": rule_set.files_found,
        "loaded": len(rule_set.rules),
        "unparseable": sum(rule_set.unparseable.values()),
        "unparseable_by_error": dict(rule_set.unparseable),
        "correlation": rule_set.correlation_rules,
        "filter": rule_set.filter_rules,
        "generated_ids": rule_set.generated_ids,
    }


def timed_full_render(args, worker: RenderWorker, rule_ids, targets):
    from measurements import run_full_render

    busy_before = machine_busy_seconds()
    worker_before = worker.cpu_seconds()
    own_before = time.process_time()
    run = run_full_render(
        rule_ids=rule_ids,
        targets=targets,
        workers=worker.concurrency,
        timeout=args.render_timeout,
        poll=0.25,
    )
    worker_cpu = worker.cpu_seconds() - worker_before
    own_cpu = time.process_time() - own_before
    run.worker_cpu_seconds = worker_cpu
    run.other_cpu_seconds = max(0.0, machine_busy_seconds() - busy_before - worker_cpu - own_cpu)
    run.peak_rss_kib = worker.peak_rss_kib()
    run.tasks_received = worker.received_tasks()
    return run


def unchanged_phase(rule_ids, targets, full_run) -> dict:
    from measurements import time_unchanged_schedule

    seconds, queued = time_unchanged_schedule(rule_ids=rule_ids, targets=targets)
    percent = 100 * seconds / full_run.wall_seconds
    print(
        f"\nre-render of unchanged rules: renders_schedule for {len(rule_ids)} rules took "
        f"{seconds:.2f} s and queued {queued} renders = {percent:.1f} % of the 2-worker "
        f"full render (goal < {GOAL_UNCHANGED_PERCENT:.0f} %)"
    )
    return {"seconds": seconds, "queued": queued, "percent_of_full_render": percent}


def latency_phase(args, rule_ids) -> dict:
    from measurements import measure_latency, summarize

    from detections.models import Render

    rendered = list(
        Render.objects.filter(target=args.latency_target, status=Render.Status.RENDERED)
        .order_by("sigma_rule_id")
        .values_list("sigma_rule_id", flat=True)
    )
    candidates = rendered or rule_ids
    count = min(args.latency_samples, len(candidates))
    if count == 0:
        return {}
    step = len(candidates) / count
    sample = [candidates[int(index * step)] for index in range(count)]
    latency = measure_latency(rule_ids=sample, target=args.latency_target, poll=args.poll_ms / 1000)
    total = summarize(latency.samples)
    publish = summarize(latency.commit_and_publish)
    print(
        f"\nper-rule latency, {count} rules edited one at a time, target {args.latency_target}, "
        f"2 idle workers, poll every {args.poll_ms:g} ms (commit -> render row terminal):"
    )
    print("  " + ", ".join(f"{key} {value:.1f} ms" for key, value in total.items()))
    print(
        "  of which commit + publish to Redis: "
        + ", ".join(f"{key} {value:.1f} ms" for key, value in publish.items())
    )
    print(
        f"  statuses: {dict(latency.statuses)}; goal p95 < {GOAL_LATENCY_P95_MS:.0f} ms: "
        f"{'met' if total['p95'] < GOAL_LATENCY_P95_MS else 'not met'}"
    )
    return {"ms": total, "commit_and_publish_ms": publish, "statuses": dict(latency.statuses)}


def sigma_cli_phase(args, rule_set, targets, workdir, full_run) -> dict:
    from cli_timing import time_sigma_cli

    from detections.pysigma.convert import render_targets

    link_dir = workdir / "rules"
    for item in rule_set.rules:
        link = link_dir / item.relative_path
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(args.rules.resolve() / item.relative_path)
    output_dir = workdir / "sigma-cli-output"
    output_dir.mkdir()
    sigma = Path(sys.executable).parent / "sigma"
    all_targets = render_targets()
    print(
        f"\nsigma-cli on the {len(rule_set.rules)} loaded rules (RULES_DIR = a folder of links "
        f"to them), one process per target, timeout {args.cli_timeout:.0f} s:"
    )
    runs = []
    for key in targets:
        target = all_targets[key]
        if target.cli is None:
            print(f"  {key:22} no sigma-cli equivalent configured; not timed")
            continue
        run = time_sigma_cli(
            sigma=sigma,
            target=target,
            rules_dir=link_dir,
            output_dir=output_dir,
            timeout=args.cli_timeout,
        )
        runs.append(run)
        command_text = " ".join(run.command[1:-1] + ["RULES_DIR"]).replace(str(output_dir), "OUT")
        outcome = "timed out" if run.timed_out else f"exit {run.returncode}"
        print(
            f"  {key:22} {run.wall_seconds:7.2f} s wall, {run.cpu_seconds:6.2f} s CPU, "
            f"{outcome}, {run.ignored_errors} rules skipped, {run.output_bytes} bytes "
            f"[{command_text}]"
        )
        if not run.succeeded:
            for line in run.stderr_tail.splitlines()[-3:]:
                print(f"    stderr: {line[:300]}")
    total = sum(run.wall_seconds for run in runs)
    incomplete = [run.target for run in runs if not run.succeeded]
    completed = [run.wall_seconds for run in runs if run.succeeded]
    # Estimate: a target sigma-cli did not finish counts as the mean completed target.
    estimated_total = (
        sum(completed) + len(incomplete) * sum(completed) / len(completed) if completed else total
    )
    ratio = full_run.wall_seconds / total if total else float("nan")
    with_schedule = (
        (full_run.wall_seconds + full_run.schedule_seconds) / total if total else float("nan")
    )
    print(f"  total sigma-cli wall time: {total:.1f} s over {len(runs)} targets")
    if incomplete:
        # A run that crashed or timed out stopped early, so its time is a lower bound.
        print(
            f"  NOTE: sigma-cli did not finish {', '.join(incomplete)}; the total counts the "
            "time until it stopped, so it is a lower bound and the ratio an upper bound."
        )
        print(
            f"  estimate with each of those counted as the mean completed target: "
            f"{estimated_total:.1f} s; ratio {full_run.wall_seconds / estimated_total:.2f}"
        )
    print(
        f"\nportal full render (2 workers) / summed sigma-cli: {full_run.wall_seconds:.1f} s / "
        f"{total:.1f} s = {ratio:.2f} (goal <= {GOAL_CLI_RATIO}: "
        f"{'met' if ratio <= GOAL_CLI_RATIO else 'not met'}); counting renders_schedule too: "
        f"{with_schedule:.2f}"
    )
    skipped = [key for key in targets if all_targets[key].cli is None]
    if skipped:
        print(f"  the portal figure includes targets sigma-cli does not run: {', '.join(skipped)}")
    return {
        "runs": [asdict(run) for run in runs],
        "total_seconds": total,
        "ratio": ratio,
        "ratio_with_schedule": with_schedule,
        "incomplete_targets": incomplete,
        "estimated_total_seconds": estimated_total,
    }


def print_environment(args, database, targets) -> None:
    from importlib import metadata

    import django

    print(
        f"cores: {os.cpu_count()}, database: {database.engine} ({database.label}), "
        f"broker: {args.redis_url}"
    )
    print(
        f"Python {sys.version.split()[0]}, Django {django.get_version()}, "
        f"pySigma {metadata.version('pySigma')}, Celery {metadata.version('celery')}, "
        f"sigma-cli {metadata.version('sigma-cli')}"
    )
    print(f"targets ({len(targets)}): {', '.join(targets)}")


def print_full_render(run) -> None:
    rss = ", ".join(f"{name} {kib / 1024:.0f} MiB" for name, kib in run.peak_rss_kib.items())
    print(
        f"full render with {run.workers} worker process(es): {run.renders} renders, "
        f"wall {run.wall_seconds:.1f} s (commit -> last render finished), "
        f"{run.renders_per_second:.0f} renders/s"
    )
    print(
        f"  renders_schedule (queue rows, not in wall): {run.schedule_seconds:.1f} s; "
        f"commit + enqueue: {run.enqueue_seconds:.2f} s; statuses: {run.status_counts}"
    )
    print(
        f"  render_batch tasks: {run.batches_sent} sent at enqueue, {run.tasks_received} "
        "received by the worker (more means messages were sent again, e.g. by its sweep)"
    )
    print(
        f"  CPU: workers {run.worker_cpu_seconds:.1f} s, other processes on the machine "
        f"{run.other_cpu_seconds:.1f} s; peak RSS (VmHWM): {rss}"
    )


def print_failures(failures, longest_errors, targets, run) -> None:
    conversion = run.conversion_ms_by_target
    print(
        "\nper target (2-worker run): conversion time summed over renders (Render.duration_ms), "
        "failures by error class"
    )
    for target in targets:
        groups = failures.get(target, {})
        longest = longest_errors.get(target)
        print(
            f"  {target}: {sum(groups.values())} not rendered, "
            f"conversion {conversion.get(target, 0.0) / 1000:.1f} s"
            + (f", longest error {longest} characters" if longest else "")
        )
        ranked = sorted(groups.items(), key=lambda item: -item[1])
        for error, count in ranked[:ERROR_GROUPS_SHOWN]:
            print(f"    {count:5d}  {error}")
        if len(ranked) > ERROR_GROUPS_SHOWN:
            rest = sum(count for _, count in ranked[ERROR_GROUPS_SHOWN:])
            print(f"    {rest:5d}  in {len(ranked) - ERROR_GROUPS_SHOWN} other error classes")


def _close_django_connections() -> None:
    if "django.db" in sys.modules:
        from django.db import connections

        connections.close_all()


if __name__ == "__main__":
    sys.exit(main())
