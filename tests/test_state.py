"""State never lives in generated output, and synth replaces only what it generates.

The local backend's state goes to state/ beside the output directory, through a path
relative to the stack's directory (no host path in the JSON). A synth moves in its own
stacks' files and leaves everything else: other stacks' output, and what Terraform keeps in
a stack's directory. The emulator test walks the README's plain-Terraform path on a copy
of the project: apply from cdktf.out/stacks/dynamo-dev, synth everything, synth staging, re-plan.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import time
from pathlib import Path

import pytest

from environments.loader import ENVIRONMENTS_DIR, ConfigError, load
from tests.conftest import ENVIRONMENTS, copy_project, run_main
from tests.emulator.harness import Emulator, Step, once_more_after_emulator_artefact, run_step, stack_region
from tests.terraform_env import OfflineTerraform

# What Terraform leaves in the directory it runs in; none of it is synth's to touch.
TERRAFORM_FILES = {
    ".terraform/terraform.tfstate": b'{"version": 3, "backend": {"type": "local"}}\n',
    ".terraform/providers/registry.terraform.io/hashicorp/aws/5.100.0/linux_amd64/terraform-provider-aws": b"\x7fELF",
    ".terraform.lock.hcl": b"# lock file\n",
    "plan.tfplan": bytes(range(256)),
    "terraform.dynamo-dev.tfstate": b'{"version": 4, "serial": 7}\n',
}


def tree(directory: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(directory)): path.read_bytes() for path in sorted(directory.rglob("*")) if path.is_file()
    }


def listing(directory: Path) -> dict[str, tuple[bool, int, int]]:
    """Every entry's kind, size and modification time, links not followed: the provider
    binaries Terraform links into .terraform/ are hundreds of MB, not worth reading."""
    return {
        str(path.relative_to(directory)): (path.is_symlink(), path.lstat().st_size, path.lstat().st_mtime_ns)
        for path in sorted(directory.rglob("*"))
        if not path.is_dir() or path.is_symlink()
    }


def local_state_files(stacks: dict[str, dict], outdir: Path) -> dict[str, Path]:
    """Where each stack with a local backend keeps its state, resolved as Terraform does: from the stack's directory."""
    return {
        env: Path(
            os.path.normpath(outdir / "stacks" / f"dynamo-{env}" / stack["terraform"]["backend"]["local"]["path"])
        )
        for env, stack in stacks.items()
        if "local" in stack["terraform"]["backend"]
    }


def test_local_state_lives_beside_the_output_directory(stacks: dict[str, dict], synth_dir: Path) -> None:
    found = local_state_files(stacks, synth_dir)
    assert found, "no environment uses the local backend: nothing here is checked"
    for env, state in found.items():
        path = stacks[env]["terraform"]["backend"]["local"]["path"]
        assert not Path(path).is_absolute(), f"dynamo-{env}: a host path in the JSON: {path}"
        assert synth_dir not in state.parents, f"dynamo-{env}: state inside the output directory: {state}"
        if load(ENVIRONMENTS_DIR / f"{env}.toml").backend.path is None:
            assert state == synth_dir.parent / "state" / f"terraform.dynamo-{env}.tfstate"


@pytest.mark.parametrize(
    ("path", "inside"),
    [
        ("terraform.tfstate", True),
        ("../dynamo-prod/terraform.tfstate", True),  # another stack's directory
        ("../../state/terraform.tfstate", True),  # cdktf.out/state/
        ("../../../state/terraform.tfstate", False),
        ("/var/lib/terraform/dynamo.tfstate", False),  # absolute: used as given
    ],
)
def test_a_relative_state_path_must_leave_the_output_directory(path: str, inside: bool, tmp_path: Path) -> None:
    document = (ENVIRONMENTS_DIR / "dev.toml").read_text().replace('type = "local"', f'type = "local"\npath = "{path}"')
    assert path in document
    (tmp_path / "dev.toml").write_text(document)
    try:
        load(tmp_path / "dev.toml")
        problems = []
    except ConfigError as error:
        problems = error.lines
    assert [line for line in problems if ": backend.path: " in line] == (problems if inside else [])
    assert len(problems) == (1 if inside else 0), problems


def test_synth_replaces_only_the_stacks_it_generates(synth_dir: Path, tmp_path: Path) -> None:
    outdir = tmp_path / "cdktf.out"
    result = run_main("--outdir", str(outdir))
    assert result.returncode == 0, result.stderr
    others = [env for env in ENVIRONMENTS if env != "staging"]
    for env in others:
        for relative, content in TERRAFORM_FILES.items():
            (outdir / "stacks" / f"dynamo-{env}" / relative).parent.mkdir(parents=True, exist_ok=True)
            (outdir / "stacks" / f"dynamo-{env}" / relative).write_bytes(content)
    (outdir / "stacks" / "dynamo-staging" / "plan.tfplan").write_bytes(b"staging's plan")
    before = tree(outdir)

    result = run_main("--env", "staging", "--outdir", str(outdir))
    assert result.returncode == 0, result.stderr
    after = tree(outdir)
    assert {name for name in after if not name.startswith("stacks/dynamo-staging/")} == {
        name for name in before if not name.startswith("stacks/dynamo-staging/")
    }
    changed = [name for name in before if after.get(name) != before[name] and name != "manifest.json"]
    assert changed == [], "synth --env staging changed files it did not generate"
    assert after["stacks/dynamo-staging/cdk.tf.json"] == (synth_dir / "stacks/dynamo-staging/cdk.tf.json").read_bytes()
    # Every stack is still listed, so the cdktf CLI keeps (and can deploy) each: the same
    # manifest a full synth writes.
    assert after["manifest.json"] == (synth_dir / "manifest.json").read_bytes()

    # A stack whose output is gone is no longer listed; the others stay.
    shutil.rmtree(outdir / "stacks" / "dynamo-staging")
    result = run_main("--env", "dev", "--outdir", str(outdir))
    assert result.returncode == 0, result.stderr
    manifest = json.loads((outdir / "manifest.json").read_text())
    assert sorted(manifest["stacks"]) == sorted(f"dynamo-{env}" for env in others)
    for entry in manifest["stacks"].values():
        assert (outdir / entry["synthesizedStackPath"]).is_file() and (outdir / entry["workingDirectory"]).is_dir()
    for env in others:
        for relative, content in TERRAFORM_FILES.items():
            assert (outdir / "stacks" / f"dynamo-{env}" / relative).read_bytes() == content


def test_an_output_directory_with_a_foreign_manifest_is_taken_over(tmp_path: Path) -> None:
    """A manifest.json cdktf did not write (or a broken one) lists nothing worth keeping."""
    outdir = tmp_path / "cdktf.out"
    outdir.mkdir()
    (outdir / "manifest.json").write_text("not json")
    (outdir / "notes.txt").write_text("kept")
    result = run_main("--env", "dev", "--outdir", str(outdir))
    assert result.returncode == 0, result.stderr
    assert sorted(json.loads((outdir / "manifest.json").read_text())["stacks"]) == ["dynamo-dev"]
    assert (outdir / "notes.txt").read_text() == "kept"


# --------------------------------------------------------------------------- the emulator


def terraform_step(tf: OfflineTerraform, env: dict[str, str], cwd: Path, *args: str, timeout: int = 900) -> Step:
    """terraform with the emulator's environment; an apply runs once more after a known emulator artefact."""
    run = functools.partial(run_step, args[0], [tf.terraform, *args, "-no-color", "-input=false"], cwd, env, timeout)
    return once_more_after_emulator_artefact(run)[0] if args[0] == "apply" else run()


@pytest.mark.emulator
def test_state_survives_synth_after_a_plain_terraform_apply(
    terraform: OfflineTerraform, tmp_path: Path, layer_timings: list[str]
) -> None:
    project = copy_project(tmp_path / "project")
    result = run_main(cwd=project, project=project)  # make synth
    assert result.returncode == 0, result.stderr
    outdir, stack = project / "cdktf.out", "dynamo-dev"
    stack_dir = outdir / "stacks" / stack
    state = project / "state" / f"terraform.{stack}.tfstate"
    start = time.monotonic()
    with Emulator(tmp_path / "moto", [stack_region(outdir, stack)]) as emulator:
        env = emulator.env(terraform.env(), stack_region(outdir, stack))
        for args in (["init"], ["apply", "-auto-approve"]):
            step = terraform_step(terraform, env, stack_dir, *args)
            assert step.returncode == 0, f"{stack_dir}: {step.report()}\n--- emulator ---\n{emulator.errors()}"
        assert state.is_file() and json.loads(state.read_text())["resources"], f"no state with resources at {state}"
        applied = state.read_bytes()
        terraform_kept = {name: entry for name, entry in listing(stack_dir).items() if name != "cdk.tf.json"}
        assert ".terraform.lock.hcl" in terraform_kept and any(
            name.startswith(".terraform/") for name in terraform_kept
        )

        for args in ([], ["--env", "staging"]):  # make synth, then one other environment
            result = run_main(*args, cwd=project, project=project)
            assert result.returncode == 0, result.stderr

        assert state.read_bytes() == applied, "the state file changed"
        assert {name: entry for name, entry in listing(stack_dir).items() if name != "cdk.tf.json"} == terraform_kept
        assert not [path for path in outdir.rglob("*.tfstate*") if ".terraform" not in path.parts], (
            "state inside the output directory"
        )
        # No second init: the providers and backend settings Terraform kept are what it runs with.
        plan = terraform_step(terraform, env, stack_dir, "plan", "-detailed-exitcode")
        assert plan.returncode == 0, (
            f"the re-plan after two synths is not empty (2: changes, 1: error): {plan.report()}"
        )
    # Nothing to destroy: the emulator and everything it holds end with this test.
    layer_timings.append(
        f"{stack}: plain terraform apply, two synths, re-plan: {time.monotonic() - start:.0f}s (emulator, "
        "tests/test_state.py)"
    )
