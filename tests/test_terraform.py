"""Terraform accepts every stack: `terraform init` from the local mirror, then `terraform validate`."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from tests.conftest import ENVIRONMENTS
from tests.terraform_env import OfflineTerraform, failure, run_terraform

pytestmark = pytest.mark.terraform


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_stack_validates(
    env: str, synth_dir: Path, terraform: OfflineTerraform, tmp_path: Path, layer_timings: list[str]
) -> None:
    # A copy: init writes .terraform/ and a lock file next to the configuration.
    stack_dir = shutil.copytree(synth_dir / "stacks" / f"dynamo-{env}", tmp_path / f"dynamo-{env}")
    start = time.monotonic()
    # -backend=false: staging and prod keep state in S3, which validate does not need.
    init = run_terraform(terraform, ["init", "-backend=false", "-input=false", "-no-color"], stack_dir)
    assert init.returncode == 0, failure("terraform init -backend=false", init)
    validate = run_terraform(terraform, ["validate", "-no-color"], stack_dir)
    assert validate.returncode == 0, failure("terraform validate", validate)
    layer_timings.append(f"dynamo-{env}: terraform init + validate {time.monotonic() - start:.1f}s")
