"""Shared fixtures: every environment is synthesized once per test session."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

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
