"""One measurement per fresh child process: generate the events, convert the rules, time the run.

Each engine runs in its own process, started with the `spawn` method, so that its peak
RSS (`ru_maxrss`) covers only its own events, rules and tables, and one engine's
memory cannot slow the other. Both processes generate the same events from the
seed, which is cheaper than sending a million events through a pipe.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Workload:
    """The rule files and generated events of one measurement."""

    name: str
    rules_dir: str
    rule_files: tuple[str, ...]
    events: int
    seed: int
    weights: dict[str, float]
    plant_fraction: float


@dataclass
class RuleVerdict:
    """One rule file's result on one engine."""

    key: str
    rule_id: str
    title: str
    logsource: dict[str, str]
    runnable: bool
    matched: list[int]
    errors: list[str] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)


@dataclass
class Measurement:
    """Timings, memory and verdicts of one engine on one workload."""

    engine: str
    rules_run: int
    events: int
    generate_seconds: float
    compile_seconds: float
    # None when the engine does not report its phases.
    load_seconds: float | None
    scan_seconds: float | None
    wall_seconds: float
    cpu_seconds: float
    other_cpu_seconds: float
    rss_before_kib: int
    peak_rss_kib: int
    verdicts: dict[str, RuleVerdict]
    # Notes on how load_seconds and scan_seconds were measured.
    notes: list[str] = field(default_factory=list)

    @property
    def events_per_second(self) -> float:
        return self.events / self.wall_seconds if self.wall_seconds else 0.0

    @property
    def pairs_per_second(self) -> float:
        """Rules run times events, per second of wall time."""
        return self.rules_run * self.events / self.wall_seconds if self.wall_seconds else 0.0


def read_rule_files(workload: Workload) -> list[tuple[str, str]]:
    """Return (key, YAML text) of each rule file; the key is the path below the rules folder."""
    root = Path(workload.rules_dir)
    return [(key, (root / key).read_text(encoding="utf-8")) for key in workload.rule_files]


def workload_events(workload: Workload, rule_files: list[tuple[str, str]]):
    """Generate the workload's events, with values planted from its rules."""
    from .planting import rule_plan
    from .synthetic import generate_events

    plans = [plan for plan in (rule_plan(key, text) for key, text in rule_files) if plan]
    return generate_events(
        workload.events,
        seed=workload.seed,
        weights=workload.weights,
        plans=plans,
        plant_fraction=workload.plant_fraction,
    )


def measure_in_child(engine: str, workload: Workload, options: dict) -> Measurement:
    """Run one measurement in a new process and return what it measured."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(engine, workload, options, sender), daemon=True)
    process.start()
    sender.close()
    try:
        outcome = receiver.recv()
    except EOFError:
        outcome = None
    process.join()
    if isinstance(outcome, Measurement):
        return outcome
    raise RuntimeError(
        f"the {engine} measurement of workload {workload.name} failed "
        f"(exit code {process.exitcode}): {outcome or 'no result'}"
    )


def _child(engine: str, workload: Workload, options: dict, sender) -> None:
    try:
        measurement = _measure(engine, workload, options)
    except Exception as exc:  # noqa: BLE001 - sent to the parent, which stops the run
        import traceback

        sender.send(f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
    else:
        sender.send(measurement)
    finally:
        sender.close()


def _measure(engine: str, workload: Workload, options: dict) -> Measurement:
    rule_files = read_rule_files(workload)
    started = time.perf_counter()
    events, _ = workload_events(workload, rule_files)
    generate_seconds = time.perf_counter() - started
    if engine == "engine":
        return _measure_engine(workload, rule_files, events, generate_seconds, options)
    return _measure_anchor(workload, rule_files, events, generate_seconds, options)


def _measure_engine(workload, rule_files, events, generate_seconds, options) -> Measurement:
    from detections.pysigma.embedded import compile_rule
    from detections.validation.embedded import run_rules

    started = time.perf_counter()
    rules = [compile_rule(text, source=key) for key, text in rule_files]
    compile_seconds = time.perf_counter() - started
    # Without --workers the call leaves the worker count to run_rules' default.
    keywords = {"workers": options["workers"]} if options.get("workers") else {}
    with _Timer() as timer:
        result = run_rules(rules, events, **keywords)
    verdicts = {}
    for (key, _), rule, outcome in zip(rule_files, rules, result.rules):
        verdicts[key] = RuleVerdict(
            key=key,
            rule_id=rule.rule_id,
            title=rule.title,
            logsource=dict(rule.logsource),
            runnable=rule.error is None,
            matched=sorted(outcome.matched),
            errors=list(outcome.errors),
            queries=list(rule.queries),
        )
    return timer.measurement(
        "engine",
        rules_run=sum(1 for rule in rules if rule.error is None),
        events=len(events),
        generate_seconds=generate_seconds,
        compile_seconds=compile_seconds,
        load_seconds=getattr(result, "load_seconds", None),
        scan_seconds=getattr(result, "scan_seconds", None),
        verdicts=verdicts,
        notes=["load and scan are summed over worker threads and overlap in time"],
    )


def _measure_anchor(workload, rule_files, events, generate_seconds, options) -> Measurement:
    from .anchor import convert_rules, run_anchor

    started = time.perf_counter()
    rules = convert_rules(rule_files, pipeline=options.get("anchor_pipeline", "sysmon"))
    compile_seconds = time.perf_counter() - started
    with _Timer() as timer:
        result = run_anchor(rules, events, index_event_id=options.get("anchor_index", True))
    verdicts = {}
    for rule in rules:
        errors = [f"cannot be converted: {rule.error}"] if rule.error else []
        if rule.key in result.errors:
            errors.append(f"the query failed in SQLite: {result.errors[rule.key]}")
        verdicts[rule.key] = RuleVerdict(
            key=rule.key,
            rule_id=rule.rule_id,
            title=rule.title,
            logsource=rule.logsource,
            runnable=rule.error is None,
            matched=result.matched.get(rule.key, []),
            errors=errors,
            queries=list(rule.queries),
        )
    return timer.measurement(
        "anchor",
        rules_run=sum(1 for rule in rules if rule.error is None),
        events=len(events),
        generate_seconds=generate_seconds,
        compile_seconds=compile_seconds,
        load_seconds=result.load_seconds,
        scan_seconds=result.run_seconds,
        verdicts=verdicts,
    )


class _Timer:
    """Wall time, CPU time of this process, CPU time of the rest of the machine, and RSS."""

    def __enter__(self):
        self.rss_before = _current_rss_kib()
        self.machine_before = machine_busy_seconds()
        self.cpu_before = time.process_time()
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc_info):
        self.wall = time.perf_counter() - self.started
        self.cpu = time.process_time() - self.cpu_before
        self.other = max(0.0, machine_busy_seconds() - self.machine_before - self.cpu)
        self.peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return False

    def measurement(self, engine: str, **values) -> Measurement:
        return Measurement(
            engine=engine,
            wall_seconds=self.wall,
            cpu_seconds=self.cpu,
            other_cpu_seconds=self.other,
            rss_before_kib=self.rss_before,
            peak_rss_kib=self.peak,
            **values,
        )


def machine_busy_seconds() -> float:
    """Return the CPU time all processes on the machine used since boot, from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq = (int(value) for value in fields[:7])
    return (user + nice + system + irq + softirq) / CLOCK_TICKS


def _current_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0
