"""Shared fixtures: every environment is synthesized once per test session."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.terraform_env import OfflineTerraform, offline_terraform

PROJECT_DIR = Path(__file__).resolve().parent.parent
ENVIRONMENTS = ("dev", "staging", "prod")


def run_main(*args: str, cwd: Path = PROJECT_DIR) -> subprocess.CompletedProcess[str]:
    """Run the CLI as users do, in its own process."""
    return subprocess.run([sys.executable, str(PROJECT_DIR / "main.py"), *args], cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """cdktf.out of one `python main.py` run over every environment file."""
    outdir = tmp_path_factory.mktemp("synth") / "cdktf.out"
    result = run_main("--outdir", str(outdir))
    assert result.returncode == 0, result.stderr
    return outdir


@pytest.fixture(scope="session")
def stacks(synth_dir: Path) -> dict[str, dict]:
    """Parsed cdk.tf.json per environment name."""
    return {env: json.loads((synth_dir / "stacks" / f"dynamo-{env}" / "cdk.tf.json").read_text()) for env in ENVIRONMENTS}


# Time per environment for the Terraform and emulator layers, shown at the end of every
# run (make test does not pass -s, so a print from a test would be swallowed).
LAYER_TIMINGS = pytest.StashKey[list[str]]()


@pytest.fixture(scope="session")
def layer_timings(pytestconfig: pytest.Config) -> list[str]:
    return pytestconfig.stash.setdefault(LAYER_TIMINGS, [])


# The twin's report per stack (tests/test_twin.py): flows, drops and drill timings.
TWIN_REPORTS = pytest.StashKey[list]()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    lines = config.stash.get(LAYER_TIMINGS, [])
    if lines:
        terminalreporter.section("Terraform and emulator layers: time per environment")
        for line in lines:
            terminalreporter.write_line(line)
    reports = config.stash.get(TWIN_REPORTS, [])
    if reports:
        terminalreporter.section("The twin: what each stack did when it ran")
        for report in reports:
            for line in report.lines():
                terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def terraform(tmp_path_factory: pytest.TempPathFactory) -> OfflineTerraform:
    """terraform and a CLI config for the local provider mirror (skips loudly where there is none)."""
    return offline_terraform(tmp_path_factory.mktemp("terraform"))


@pytest.fixture(scope="session", autouse=True)
def provider_seam_runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """Starts the slow synths of tests/test_provider_seam.py (~15 s of one core) when the
    session begins, so they run alongside the other tests; None when none of those tests run."""
    if not any(item.nodeid.startswith("tests/test_provider_seam.py") for item in request.session.items):
        yield None
        return
    from tests.test_provider_seam import start_background_runs

    runs = start_background_runs(tmp_path_factory)
    yield runs
    for _, run in runs.values():
        run.stop()
