"""Timing `sigma convert` for each render target that names a sigma-cli equivalent."""

import os
import re
import resource
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

# pySigma 1.5 downloads MITRE ATT&CK data on first use. Of the installed backends only
# the Elasticsearch rule formats read it, and the default formats do not. This dead
# proxy on loopback makes any such download fail at once instead of leaving the machine.
OFFLINE_PROXY = "http://127.0.0.1:9"
IGNORED_ERROR_LINE = re.compile(r"^\S+\.ya?ml: ")


@dataclass
class CliRun:
    """One `sigma convert` run over the whole rule folder for one target."""

    target: str
    command: list[str]
    wall_seconds: float
    cpu_seconds: float
    returncode: int | None
    timed_out: bool
    output_bytes: int
    ignored_errors: int
    stderr_tail: str

    @property
    def succeeded(self) -> bool:
        return self.returncode == 0 and not self.timed_out


def build_command(sigma: Path, target, rules_dir: Path, output: Path) -> list[str]:
    """Build the sigma-cli command line from the target's `cli` setting.

    sigma-cli 3.1 rejects ecs_windows with the esql and opensearch_lucene targets
    unless its pipeline check is off. The check changes no output, so it is off for
    every target and each one runs the pipelines the portal uses.
    """
    cli_target, cli_pipelines = target.cli
    command = [str(sigma), "convert", "-t", cli_target]
    for pipeline in cli_pipelines:
        command += ["-p", pipeline]
    if target.output_format != "default":
        command += ["-f", target.output_format]
    command += ["--disable-pipeline-check", "-s", "-o", str(output), str(rules_dir)]
    return command


def time_sigma_cli(
    *, sigma: Path, target, rules_dir: Path, output_dir: Path, timeout: float
) -> CliRun:
    """Run sigma-cli for one target, killing it after `timeout` seconds."""
    output = output_dir / f"{target.key}.out"
    stderr_path = output_dir / f"{target.key}.stderr"
    command = build_command(sigma, target, rules_dir, output)
    env = dict(os.environ)
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        env[name] = OFFLINE_PROXY
    env.pop("NO_PROXY", None)
    env.pop("no_proxy", None)
    cpu_before = _children_cpu_seconds()
    started = time.perf_counter()
    # stderr goes to a file because it can be large. With -s sigma-cli lists every
    # skipped rule there, and some backends repeat earlier rules' messages in each error.
    with stderr_path.open("wb") as stderr:
        try:
            completed = subprocess.run(
                command,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                timeout=timeout,
                check=False,
            )
            returncode, timed_out = completed.returncode, False
        except subprocess.TimeoutExpired:
            returncode, timed_out = None, True
    wall_seconds = time.perf_counter() - started
    return CliRun(
        target=target.key,
        command=command,
        wall_seconds=wall_seconds,
        cpu_seconds=_children_cpu_seconds() - cpu_before,
        returncode=returncode,
        timed_out=timed_out,
        output_bytes=output.stat().st_size if output.exists() else 0,
        ignored_errors=_count_ignored_errors(stderr_path),
        stderr_tail=_tail(stderr_path),
    )


def _count_ignored_errors(stderr_path: Path) -> int:
    """Count the rules sigma-cli 3.1 lists under "Ignored errors:" with -s.

    Each entry starts with the rule file's resolved path and a colon, so a message
    that spans lines is counted once.
    """
    count = 0
    listing = False
    with stderr_path.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if line.rstrip("\n") == "Ignored errors:":
                listing = True
            elif listing and IGNORED_ERROR_LINE.match(line):
                count += 1
    return count


def _tail(path: Path, lines: int = 5, max_bytes: int = 4096) -> str:
    """Return the last lines of a file, reading at most its last `max_bytes` bytes."""
    with path.open("rb") as file:
        file.seek(max(0, path.stat().st_size - max_bytes))
        text = file.read().decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def _children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
