"""The CLI as users meet it: one summary line per stack, the next command, clean errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from environments import fit
from environments.loader import ENVIRONMENTS_DIR, environment_files, load
from tests.conftest import PROJECT_DIR, run_main


@pytest.fixture(scope="module")
def dev_and_prod(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    """`main.py --env dev --env prod --outdir OUT` once, for the tests that read its summary."""
    outdir = tmp_path_factory.mktemp("cli") / "out"
    return run_main("--env", "dev", "--env", "prod", "--outdir", str(outdir)), outdir


def test_summary_names_each_stack_with_its_resources_fleet_and_output_path(dev_and_prod):
    result, outdir = dev_and_prod
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    for line, name in zip(lines[:2], ("dev", "prod"), strict=True):
        env = load(ENVIRONMENTS_DIR / f"{name}.toml")
        stack_file = outdir / "stacks" / env.stack_name / "cdk.tf.json"
        resources = sum(len(v) for v in json.loads(stack_file.read_text())["resource"].values())
        fleet = env.gpu_fleet
        assert line.startswith(env.stack_name)
        assert f"{resources} resources" in line
        assert f"{fleet.instance_type} x {fleet.min_instances}..{fleet.max_instances}" in line
        assert f"{env.decode.gpus} GPU" in line
        assert str(stack_file) in line
        # The cold-start estimate and the worker health check's budget for it.
        estimate = fit.cold_start(env, env.model.model_facts)
        check = fit.health_check(estimate)
        assert check is not None
        assert f"cold start ~{fit.minutes(estimate.total)}" in line
        assert f"health check allows {fit.minutes(check.budget)}" in line
    assert lines[-1].startswith("next: cdktf diff dynamo-dev")
    assert not (outdir / "stacks" / "dynamo-staging").exists()


def test_unknown_env_name_is_one_line_exit_2_and_lists_what_exists(tmp_path):
    # Not a valid environment name (no underscores), so no environment file is ever called that.
    result = run_main("--env", "no_such_env", "--outdir", str(tmp_path / "out"))
    assert result.returncode == 2
    available = ", ".join(sorted(path.stem for path in environment_files()))
    assert result.stderr.splitlines() == [
        f"--env no_such_env: no environments/no_such_env.toml; available: {available}"
    ]
    assert not (tmp_path / "out").exists()


def test_cdktf_outdir_is_honoured_when_no_outdir_is_given(tmp_path):
    """`cdktf synth|diff|deploy` run main.py with CDKTF_OUTDIR set to their output directory."""
    outdir = tmp_path / "from-env"
    result = subprocess.run(
        [sys.executable, str(PROJECT_DIR / "main.py"), "--env", "dev"],
        cwd=PROJECT_DIR,
        env={**os.environ, "CDKTF_OUTDIR": str(outdir)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert (outdir / "stacks" / "dynamo-dev" / "cdk.tf.json").is_file()


def test_summary_says_when_a_rollout_leaves_a_role_serving_nothing(dev_and_prod):
    result, _ = dev_and_prod
    assert result.returncode == 0, result.stderr
    # The last line says what to run next.
    for line, name in zip(result.stdout.splitlines()[:2], ("dev", "prod"), strict=True):
        env = load(ENVIRONMENTS_DIR / f"{name}.toml")
        for role, worker in env.gpu_workers().items():
            if worker.rollout_serves_nothing:
                assert f"{role} in_place (min_count {worker.min_count}: DOWN while a new {role} worker loads)" in line
            else:
                assert f"{role} {worker.rollout}" in line and f"DOWN while a new {role}" not in line


def test_version_names_ours_and_what_decides_the_json():
    result = run_main("--version")
    assert result.returncode == 0 and result.stderr == ""
    (line,) = result.stdout.splitlines()
    assert line.startswith("dynamo-ecs ") and "cdktf 0.21.0" in line and "cdktf-cdktf-provider-aws 20.1.0" in line


def test_list_gives_each_environment_one_line_with_its_summary_comment(tmp_path):
    result = run_main("--list")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    files = environment_files()
    assert [line.split()[0] for line in lines] == [path.stem for path in files]
    for line, path in zip(lines, files, strict=True):
        env = load(path)
        summary = path.read_text().splitlines()[0].lstrip("# ").split(": ", 1)[-1]
        assert env.gpu_fleet.instance_type in line and env.model.name in line and line.endswith(summary)
    broken = tmp_path / "broken.toml"
    broken.write_text("# broken: a file with a mistake\nname = 1\n")
    (line,) = run_main("--list", "--config", str(broken)).stdout.splitlines()
    assert line.startswith("broken") and "does not load" in line and line.endswith("a file with a mistake")


def test_show_config_prints_toml_that_loads_back_to_the_same_environment(tmp_path):
    for path in environment_files():
        result = run_main("--show-config", "--env", path.stem)
        assert result.returncode == 0, result.stderr
        copy = tmp_path / path.name
        copy.write_text(result.stdout)
        assert load(copy) == load(path)
        assert "root_volume_throughput_mibps = " in result.stdout  # defaults are filled in


def test_show_config_needs_exactly_one_environment():
    result = run_main("--show-config")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"--show-config: name exactly one environment (--env NAME or --config PATH), got {len(environment_files())}"
    ]


def test_a_repeated_env_is_used_once_and_said_so():
    # --show-config takes exactly one environment: a second, repeated --env would be refused.
    result = run_main("--show-config", "--env", "dev", "--env", "dev")
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == ["--env dev: given more than once; used once"]
    assert result.stdout.count('name = "dev"') == 1


def test_an_unknown_env_says_what_is_close(tmp_path):
    result = run_main("--env", "prd", "--outdir", str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stderr.startswith("--env prd: no environments/prd.toml (did you mean prod?); available: ")
