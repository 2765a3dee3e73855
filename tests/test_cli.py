"""The CLI as users meet it: one summary line per stack, the next command, clean errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from environments.loader import ENVIRONMENTS_DIR, environment_files, load
from tests.conftest import PROJECT_DIR, run_main


def test_summary_names_each_stack_with_its_resources_fleet_and_output_path(tmp_path):
    outdir = tmp_path / "out"
    result = run_main("--env", "dev", "--env", "prod", "--outdir", str(outdir))
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


def test_summary_says_when_a_rollout_leaves_a_role_serving_nothing(tmp_path):
    result = run_main("--env", "dev", "--env", "prod", "--outdir", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    # The last line says what to run next.
    for line, name in zip(result.stdout.splitlines()[:2], ("dev", "prod"), strict=True):
        env = load(ENVIRONMENTS_DIR / f"{name}.toml")
        for role, worker in env.gpu_workers().items():
            if worker.rollout_serves_nothing:
                assert f"{role} in_place (min_count {worker.min_count}: DOWN while a new {role} worker loads)" in line
            else:
                assert f"{role} {worker.rollout}" in line and f"DOWN while a new {role}" not in line
