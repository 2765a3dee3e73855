"""Terraform accepts every stack: `terraform init` from the local mirror, then `terraform validate`.
And the offline setup survives the layers' concurrent `terraform init`s."""

from __future__ import annotations

import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import ENVIRONMENTS
from tests.terraform_env import PROVIDER, OfflineTerraform, failure, mirror_versions, offline_terraform, run_terraform

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


def test_concurrent_inits_share_one_plugin_cache(tmp_path: Path) -> None:
    """16 inits, 4 at a time, on a fresh setup."""
    # The emulator and upgrade layers run several `terraform init`s at once on one cache; a CI run
    # was lost to it ("mkdir ...: file exists", or "still not detected in .terraform/providers").
    # Measured: on an empty cache 4 inits at once failed in 5 of 10 trials; on a filled cache
    # without plugin_cache_may_break_dependency_lock_file, 1 of 8 failed in 4 of 11 runs.
    terraform = offline_terraform(tmp_path / "offline")
    for version in mirror_versions(terraform.mirror):
        assert (terraform.plugin_cache / PROVIDER / version).is_dir(), f"the cache holds no hashicorp/aws {version}"

    def init(index: int) -> tuple[int, str]:
        workdir = tmp_path / f"stack-{index}"
        workdir.mkdir()
        (workdir / "main.tf.json").write_text(
            '{"terraform": {"required_providers": {"aws": {"source": "hashicorp/aws"}}}}'
        )
        result = run_terraform(terraform, ["init", "-backend=false", "-input=false", "-no-color"], workdir)
        return result.returncode, result.stderr

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(init, range(16)))
    failed = [stderr for returncode, stderr in results if returncode != 0]
    assert not failed, f"{len(failed)} of {len(results)} concurrent inits failed; the first:\n{failed[0]}"
