"""The portal's conversions match sigma-cli's for every target that sigma-cli offers.

Each shipped T1560.002 Sigma rule is converted with TargetConverter and with
`sigma convert` as a subprocess, using the sigma-cli target and pipeline names from
the target's `cli` entry in settings.RENDER_TARGETS.
"""

import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from detections.pysigma.convert import TargetConverter, load_rule, render_targets

from .conftest import CONTENT_DIR, SEED_SLUG

RULE_FILES = sorted((CONTENT_DIR / "detections" / SEED_SLUG / "sigma").glob("*.yml"))
TARGETS = render_targets()
# duckdb has no parity check: pySigma-backend-duckdb registers no sigma-cli backend
# plugin, so `sigma list targets` does not offer it and its `cli` entry is None.
CLI_TARGETS = {key: target for key, target in TARGETS.items() if target.cli}
CASES = [(key, path) for key in CLI_TARGETS for path in RULE_FILES]


def _sigma_cli() -> str:
    executable = shutil.which("sigma", path=str(Path(sys.executable).parent))
    if executable is None:
        pytest.fail("sigma-cli is not installed next to this Python; run: make install-test")
    return executable


def _cli_command(executable: str, key: str, rule_path: Path) -> list[str]:
    cli_target, cli_pipelines = CLI_TARGETS[key].cli
    # The portal pairs the Sysmon pipeline with the Elasticsearch ones, which sigma-cli's
    # list of pipelines allowed per backend rejects. The check only gates that pairing
    # and does not change the output.
    command = [executable, "convert", "--disable-pipeline-check", "-t", cli_target]
    for pipeline in cli_pipelines:
        command += ["-p", pipeline]
    if CLI_TARGETS[key].output_format != "default":
        command += ["-f", CLI_TARGETS[key].output_format]
    command.append(str(rule_path))
    return command


@pytest.fixture(scope="module")
def cli_results() -> dict[tuple[str, Path], subprocess.CompletedProcess]:
    """Run every sigma-cli conversion once, in parallel, since each takes about 0.5 s."""
    executable = _sigma_cli()

    def run(case: tuple[str, Path]) -> subprocess.CompletedProcess:
        key, rule_path = case
        return subprocess.run(
            _cli_command(executable, key, rule_path),
            capture_output=True,
            text=True,
            timeout=120,
        )

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        results = list(pool.map(run, CASES))
    return dict(zip(CASES, results, strict=True))


@pytest.fixture(scope="module")
def converters() -> dict[str, TargetConverter]:
    """One converter per target for all rules, as a worker uses one for a whole batch.

    sigma-cli builds a fresh backend for each run, so a pipeline that kept state from
    one rule to the next would show up here as a difference.
    """
    return {}


def test_parity_shipped_rules_exist():
    assert len(RULE_FILES) == 5


def test_parity_only_duckdb_lacks_cli():
    assert set(TARGETS) - set(CLI_TARGETS) == {"duckdb"}


@pytest.mark.parametrize(
    ("key", "rule_path"), CASES, ids=[f"{key}-{path.stem}" for key, path in CASES]
)
def test_parity_with_sigma_cli(key, rule_path, cli_results, converters):
    if key not in converters:
        converters[key] = TargetConverter(TARGETS[key])
    cli = cli_results[(key, rule_path)]

    conversion = converters[key].convert(load_rule(rule_path.read_text(encoding="utf-8")))

    cli_succeeded = cli.returncode == 0
    assert conversion.succeeded == cli_succeeded, (
        f"portal error: {conversion.error!r}; sigma-cli stderr: {cli.stderr[-500:]!r}"
    )
    if cli_succeeded:
        assert cli.stdout.endswith("\n")
        assert conversion.query == cli.stdout[: -len("\n")]
