"""Every stack deploys to the AWS emulator with the real cdktf CLI, re-plans empty and destroys cleanly.

The three environments run at the same time against one emulator (each stack's names
start with dynamo-<env>, so they never collide): most of a deploy is the AWS provider
waiting between polls, and in sequence the layer would not fit its time budget.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import ENVIRONMENTS
from tests.emulator.harness import Deployment, Emulator, stack_region, stage_stack
from tests.terraform_env import OfflineTerraform

pytestmark = pytest.mark.emulator


def selected_environments(session: pytest.Session) -> list[str]:
    """Only the environments whose emulator test this run collected (e.g. with -k dev)."""
    chosen = {
        item.callspec.params["env"]
        for item in session.items
        if item.get_closest_marker("emulator") and hasattr(item, "callspec") and "env" in item.callspec.params
    }
    return [env for env in ENVIRONMENTS if env in chosen]


@pytest.fixture(scope="session")
def deployments(
    request: pytest.FixtureRequest,
    synth_dir: Path,
    terraform: OfflineTerraform,
    tmp_path_factory: pytest.TempPathFactory,
    layer_timings: list[str],
) -> dict[str, tuple[Deployment, str]]:
    """Deployment (with every step's output) and the emulator's own errors, per environment."""
    environments = selected_environments(request.session)
    workdir = tmp_path_factory.mktemp("emulator")
    staged = {env: stage_stack(synth_dir, f"dynamo-{env}", workdir / env) for env in environments}
    regions = sorted({stack_region(outdir, f"dynamo-{env}") for env, outdir in staged.items()})
    start = time.monotonic()
    with Emulator(workdir / "moto", regions) as emulator:
        runs = {
            env: Deployment(
                outdir,
                f"dynamo-{env}",
                emulator.env(terraform.env(), stack_region(outdir, f"dynamo-{env}")),
                terraform=terraform.terraform,
            )
            for env, outdir in staged.items()
        }
        with ThreadPoolExecutor(max_workers=len(runs) or 1) as pool:
            for future in [pool.submit(run.run_all) for run in runs.values()]:
                future.result()
        errors = emulator.errors()
    for run in runs.values():
        layer_timings.append(f"{run.timing()} (emulator)")
    layer_timings.append(
        f"emulator layer, {len(runs)} environments in parallel: {time.monotonic() - start:.0f}s wall clock"
    )
    return {env: (run, errors) for env, run in runs.items()}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_deploy_replan_destroy(env: str, deployments: dict[str, tuple[Deployment, str]]) -> None:
    run, emulator_errors = deployments[env]
    hint = f"\n--- emulator errors ---\n{emulator_errors}" if emulator_errors else ""

    deploy = run.step("deploy")
    assert deploy is not None and deploy.returncode == 0, (
        f"cdktf deploy failed: {deploy.report() if deploy else 'did not run'}{hint}"
    )

    plan = run.step("plan")
    assert plan is not None and plan.returncode == 0, (
        "the plan after a deploy is not empty (exit 2: changes; 1: error); if the diff is an emulator "
        "artefact, patch tests/emulator/harness.py, else fix the product:\n"
        f"{plan.report() if plan else 'did not run'}{hint}"
    )

    destroy = run.step("destroy")
    assert destroy is not None and destroy.returncode == 0, (
        f"destroy failed: {destroy.report() if destroy else 'did not run'}{hint}"
    )

    state = run.step("state list")
    assert state is not None and state.returncode == 0, state.report() if state else "terraform state list did not run"
    assert state.output.strip() == "", f"resources left in the state after destroy:\n{state.output}"
