"""Benchmark the embedded validation engine against a Zircolite-style reference.

    python -m bench.validate.run --rules PATH [--workload a|b|all] [--events N]

PATH is the `rules/` folder of SigmaHQ/sigma. Workload A runs every Windows rule over
100,000 mixed Sysmon, PowerShell and Security events. Workload B runs the
process_creation rules over 1,000,000 Sysmon process creation events. For each, the
portal's engine and the reference ("anchor") run in separate child processes on the
same generated events, and every rule's matches are compared. bench/README.md
describes each figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import sys
import time
from collections import Counter
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

from detections.validation.events import event_source

from .compare import RIGHT_SIDE, Comparison, compare
from .measure import Measurement, Workload, measure_in_child, read_rule_files, workload_events
from .synthetic import MIXED_WEIGHTS, PROCESS_CREATION_WEIGHTS

GOAL_RATIO = 2.0
DEFAULT_SEED = 20261102
DEFAULT_PLANT_FRACTION = 0.03
WORKLOADS = {
    "a": ("windows", 100_000, MIXED_WEIGHTS),
    "b": ("windows/process_creation", 1_000_000, PROCESS_CREATION_WEIGHTS),
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(
            "Time the portal's embedded Sigma engine and a Zircolite-style single-table "
            "SQLite run on the same generated events, and compare their matches rule by rule."
        )
    )
    parser.add_argument("--rules", type=Path, required=True, help="SigmaHQ's rules/ folder.")

    parser.add_argument(
        "--workload",
        choices=("a", "b", "all"),
        default="all",
        help="a: every Windows rule over mixed events; b: process_creation rules over "
        "process creation events; all: both, one after the other (default).",
    )
    parser.add_argument(
        "--events",
        type=int,
        help="Events per workload (default: 100,000 for A and 1,000,000 for B).",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        help=f"Seed of the event generator (default {DEFAULT_SEED}).",
    )
    parser.add_argument(
        "--plant-fraction",
        type=float,
        default=DEFAULT_PLANT_FRACTION,
        help="Share of events built from a rule's values so that rules match "
        f"(default {DEFAULT_PLANT_FRACTION}).",
    )

    parser.add_argument(
        "--workers",
        type=int,
        help="Worker threads of the portal's engine (default: run_rules' default).",
    )
    parser.add_argument(
        "--anchor-pipeline",
        choices=("sysmon", "windows"),
        default="sysmon",
        help="Pipelines of the anchor's conversion: sysmon (default) or sysmon plus "
        "Sigma's Windows logsource pipeline, which adds Channel conditions.",
    )
    parser.add_argument(
        "--anchor-no-index",
        action="store_true",
        help="Do not create the EventID index that Zircolite creates.",
    )

    parser.add_argument(
        "--show-events",
        type=int,
        default=2,
        help="Events printed in full per disagreeing rule and cause (default 2).",
    )
    parser.add_argument(
        "--show-numbers",
        type=int,
        default=20,
        help="Event numbers printed per disagreeing rule and cause (default 20); "
        "the --json file has all of them.",
    )
    parser.add_argument(
        "--json", type=Path, help="Also write the figures and every disagreement to this file."
    )

    args = parser.parse_args(argv)
    if not (args.rules / "windows").is_dir():
        parser.error(
            f"--rules {args.rules} has no windows/ folder; point it at SigmaHQ's rules/ folder."
        )
    if args.events is not None and args.events < 1:
        parser.error("--events must be at least 1.")
    if not 0.0 <= args.plant_fraction <= 1.0:
        parser.error("--plant-fraction must be between 0 and 1.")
    if args.workers is not None and args.workers < 1:
        parser.error("--workers must be at least 1.")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print_environment(args)
    names = ["a", "b"] if args.workload == "all" else [args.workload]
    figures = {}
    try:
        for name in names:
            figures[name] = run_workload(args, build_workload(args, name))
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str) + "\n")
        print(f"\nfigures written to {args.json}")
    return 0


def build_workload(args, name: str) -> Workload:
    subfolder, default_events, weights = WORKLOADS[name]
    rules_dir = args.rules.resolve()
    files = sorted(path for path in (rules_dir / subfolder).rglob("*.yml") if path.is_file())
    return Workload(
        name=name.upper(),
        rules_dir=str(rules_dir),
        rule_files=tuple(str(path.relative_to(rules_dir)) for path in files),
        events=args.events or default_events,
        seed=args.seed,
        weights=weights,
        plant_fraction=args.plant_fraction,
    )


def run_workload(args, workload: Workload) -> dict:
    subfolder = WORKLOADS[workload.name.lower()][0]
    print(
        f"\n=== workload {workload.name}: {workload.events:,} events, "
        f"{len(workload.rule_files):,} rule files in {subfolder}/ ==="
    )
    options = {
        "workers": args.workers,
        "anchor_pipeline": args.anchor_pipeline,
        "anchor_index": not args.anchor_no_index,
    }
    engine = measure_in_child("engine", workload, options)
    print_measurement(engine, "engine (detections.validation.embedded.run_rules)")
    anchor = measure_in_child("anchor", workload, options)
    index = "no index" if args.anchor_no_index else "index on EventID"
    print_measurement(anchor, f"anchor (one table, {args.anchor_pipeline} pipeline, {index})")
    ratio = anchor.wall_seconds / engine.wall_seconds if engine.wall_seconds else float("nan")
    cpu_ratio = anchor.cpu_seconds / engine.cpu_seconds if engine.cpu_seconds else float("nan")
    print(
        f"\nthroughput engine / anchor: {ratio:.2f} on wall time (goal >= {GOAL_RATIO:g}: "
        f"{'met' if ratio >= GOAL_RATIO else 'not met'}), {cpu_ratio:.2f} on CPU time"
    )

    started = time.perf_counter()
    events, planted = workload_events(workload, read_rule_files(workload))
    sources = Counter(event_source(event).label for event in events)
    print(
        f"\nevents regenerated for the comparison in {time.perf_counter() - started:.1f} s: "
        f"{sum(1 for key in planted if key):,} planted from {len(set(planted) - {None}):,} rules"
    )
    by_source = ", ".join(f"{label} {count:,}" for label, count in sources.most_common())
    print(f"  by log source: {by_source}")
    comparison = compare(engine, anchor, events)
    print_comparison(comparison, events, args)
    return {
        "events": workload.events,
        "rule_files": len(workload.rule_files),
        "seed": workload.seed,
        "plant_fraction": workload.plant_fraction,
        "sources": dict(sources),
        "engine": _summary(engine),
        "anchor": _summary(anchor),
        "ratio_wall": ratio,
        "ratio_cpu": cpu_ratio,
        "comparison": {
            "rules": comparison.rules,
            "agreeing": comparison.agreeing,
            "agreeing_with_matches": comparison.agreeing_with_matches,
            "causes": dict(comparison.causes()),
            "disagreements": [asdict(item) for item in comparison.disagreements],
        },
    }


def print_environment(args) -> None:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    versions = ", ".join(
        f"{package} {metadata.version(package)}"
        for package in ("Django", "pySigma", "pySigma-backend-sqlite", "pysigma-pipeline-sysmon")
    )
    print(f"machine: {os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}")
    print(f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, {versions}")
    print(f"rules: {args.rules.resolve()}")
    print(f"seed {args.seed}, plant fraction {args.plant_fraction:g}")


def print_measurement(measurement: Measurement, label: str) -> None:
    print(f"\n{label}:")
    print(
        f"  rules run {measurement.rules_run:,}; events generated in "
        f"{measurement.generate_seconds:.1f} s; rules converted in "
        f"{measurement.compile_seconds:.1f} s (neither is part of the run time)"
    )
    phases = "phases not reported"
    notes = []
    if measurement.load_seconds is not None and measurement.scan_seconds is not None:
        phases = f"load {measurement.load_seconds:.1f} s, scan {measurement.scan_seconds:.1f} s"
        notes = measurement.notes
    print(
        f"  run: {measurement.wall_seconds:.1f} s wall, {measurement.cpu_seconds:.1f} s CPU "
        f"({phases}); other processes on the machine used "
        f"{measurement.other_cpu_seconds:.1f} s CPU meanwhile"
    )
    for note in notes:
        print(f"  ({note})")
    print(
        f"  {measurement.events_per_second:,.0f} events/s, "
        f"{measurement.pairs_per_second / 1e6:,.2f} M rule x event pairs/s"
    )
    print(
        f"  memory: peak RSS {measurement.peak_rss_kib / 1024:,.0f} MiB, of which "
        f"{measurement.rss_before_kib / 1024:,.0f} MiB before the run (Python, rules, events)"
    )


def print_comparison(comparison: Comparison, events: list[dict], args) -> None:
    print(
        f"\nverdicts: {comparison.rules:,} rules, {comparison.agreeing:,} agree "
        f"({comparison.agreeing_with_matches:,} of them with matches), "
        f"{len(comparison.disagreements):,} disagree"
    )
    for cause, count in comparison.causes().most_common():
        print(f"  {count:5d} rules: {cause} (right by Sigma: {RIGHT_SIDE[cause]})")
    for item in comparison.disagreements:
        print(f"\n- {item.key}")
        print(f"  id {item.rule_id or '?'}: {item.title}; logsource {item.logsource or '?'}")
        for side, groups in (("engine", item.engine_only), ("anchor", item.anchor_only)):
            for cause, numbers in groups.items():
                shown = ", ".join(str(number) for number in numbers[: args.show_numbers])
                hidden = len(numbers) - args.show_numbers
                more = f" and {hidden:,} more" if hidden > 0 else ""
                print(
                    f"  only the {side} matched {len(numbers):,} events ({cause}; right by Sigma: "
                    f"{RIGHT_SIDE[cause]}): {shown}{more}"
                )
                for number in numbers[: args.show_events]:
                    print(f"    event {number}: {json.dumps(events[number], sort_keys=True)}")
        for side, errors in (("engine", item.engine_errors), ("anchor", item.anchor_errors)):
            for error in errors:
                print(f"  {side} error: {error[:300]}")
        if "unexplained" in item.causes:
            for side, queries in (("engine", item.engine_queries), ("anchor", item.anchor_queries)):
                for query in queries:
                    print(f"  {side} query: {query[:600]}")


def _summary(measurement: Measurement) -> dict:
    summary = asdict(measurement)
    summary.pop("verdicts")
    summary["events_per_second"] = measurement.events_per_second
    summary["pairs_per_second"] = measurement.pairs_per_second
    return summary


if __name__ == "__main__":
    sys.exit(main())
