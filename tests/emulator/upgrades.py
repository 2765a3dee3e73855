"""Upgrade plans: apply a shipped stack in the emulator once, then plan routine changes against it.

    python -m tests.emulator.upgrades [--env staging] [--only NAME ...]

Every row of tests/upgrade_table.py becomes a variant of the environment file, synthesized
with `main.py --config FILE --outdir DIR`. Each variant is planned (`terraform plan -out`,
then `terraform show -json`) in its own copy of the applied stack directory: the state is a
local file after the apply, so copies plan side by side without touching each other. Plans
run with -refresh=false: the state is what the apply just wrote, and a refreshed plan of the
unchanged file (which must be empty) proves that it matches the emulator. Rows marked
`apply` are applied from their saved plan too, and rows with `after` are planned against
that result. The command prints the classified plans; tests/test_upgrades.py asserts them.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from environments.effective import toml_document
from tests.emulator.harness import PROJECT_DIR, Emulator, Step, run_step, terraform_errors
from tests.terraform_env import OfflineTerraform
from tests.upgrade_table import CHANGES, UNCHANGED, Change, classify, violations

# Terraform plans are mostly CPU (the provider's start and the graph walk); with two
# cores, three at a time keeps both busy while one waits on the emulator.
PARALLEL_PLANS = 3


def emulator_client(emulator: Emulator, service: str, region: str) -> Any:
    """A boto3 client for the emulator, never through a proxy."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        service,
        endpoint_url=emulator.endpoint,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(proxies={"http": "", "https": ""}, retries={"max_attempts": 2}),
    )


# --------------------------------------------------------------------------- environment files


def edited(document: dict[str, Any], edits: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of a parsed environment file with dotted-path edits applied."""
    result = json.loads(json.dumps(document))
    for path, value in edits.items():
        *tables, key = path.split(".")
        node = result
        for table in tables:
            node = node.setdefault(table, {})
        node[key] = value
    return result


# --------------------------------------------------------------------------- plans


@dataclass
class ResourceChange:
    address: str
    type: str
    path: str
    action: str


@dataclass
class Planned:
    change: Change
    seconds: dict[str, float] = field(default_factory=dict)
    resources: list[ResourceChange] = field(default_factory=list)
    plan: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    applied: list[dict[str, Any]] | None = None
    directory: Path | None = None

    @property
    def observed(self) -> dict[str, set[str]]:
        found: dict[str, set[str]] = defaultdict(set)
        for resource in self.resources:
            found[resource.type].add(resource.action)
        return dict(found)

    def summary(self) -> str:
        """`type action xN` per changed resource type, sorted."""
        if self.error:
            return f"not planned: {self.error.splitlines()[0]}"
        counts = Counter((resource.type, resource.action) for resource in self.resources)
        return (
            "; ".join(
                f"{kind} {action}{f' x{count}' if count > 1 else ''}"
                for (kind, action), count in sorted(counts.items())
            )
            or "no changes"
        )

    def timing(self) -> str:
        return ", ".join(f"{step} {seconds:.1f}s" for step, seconds in self.seconds.items())


def construct_paths(stack: dict[str, Any]) -> dict[str, str]:
    """Terraform address -> cdktf construct path, from the synthesized JSON's metadata."""
    return {
        f"{kind}.{name}": body.get("//", {}).get("metadata", {}).get("path", "")
        for kind, instances in stack.get("resource", {}).items()
        for name, body in instances.items()
    }


def resource_changes(plan: dict[str, Any], paths: dict[str, str]) -> list[ResourceChange]:
    changes = []
    for change in plan.get("resource_changes", []):
        if change.get("mode") != "managed":
            continue
        action = classify(change["change"]["actions"])
        if action in UNCHANGED:
            continue
        changes.append(ResourceChange(change["address"], change["type"], paths.get(change["address"], ""), action))
    return changes


def local_backend(stack_file: Path) -> dict[str, Any]:
    """The stack's JSON with its backend switched to a state file next to it (relative, so copies of the directory "
    "work)."""
    document = json.loads(stack_file.read_text())
    document["terraform"]["backend"] = {"local": {"path": "terraform.tfstate"}}
    stack_file.write_text(json.dumps(document, indent=2))
    return document


class UpgradePlans:
    """The applied base stack and its planned (and partly applied) variants, for one environment."""

    def __init__(self, env: str, workdir: Path, terraform: OfflineTerraform, emulator: Emulator, region: str) -> None:
        self.env = env
        self.stack = f"dynamo-{env}"
        self.workdir = workdir
        self.terraform = terraform
        self.emulator = emulator
        self.tf_env = emulator.env(terraform.env(), region)
        self.source = PROJECT_DIR / "environments" / f"{env}.toml"
        self.document = tomllib.loads(self.source.read_text())
        self.steps: list[Step] = []
        self.base: Path = workdir / "base" / "stack"

    # ---- commands

    def terraform_step(self, name: str, args: list[str], cwd: Path, timeout: int = 900) -> Step:
        return run_step(name, [self.terraform.terraform, *args], cwd, self.tf_env, timeout)

    def synthesize(self, name: str, document: dict[str, Any]) -> tuple[Path | None, str | None]:
        """The variant's stack directory (backend switched to local), or main.py's error."""
        directory = self.workdir / name
        directory.mkdir(parents=True, exist_ok=True)
        config = directory / f"{self.env}.toml"
        config.write_text(toml_document(document))
        outdir = directory / "out"
        result = subprocess.run(
            [sys.executable, str(PROJECT_DIR / "main.py"), "--config", str(config), "--outdir", str(outdir)],
            cwd=PROJECT_DIR,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if result.returncode != 0:
            return None, result.stderr.strip() or result.stdout.strip()
        stack_dir = outdir / "stacks" / self.stack
        local_backend(stack_dir / "cdk.tf.json")
        return stack_dir, None

    # ---- the base

    def apply_base(self) -> Step:
        """Synthesize and apply the shipped file; every later plan starts from this state."""
        start = time.monotonic()
        stack_dir, error = self.synthesize("base-synth", self.document)
        synth = Step("synth", ["main.py"], 0 if stack_dir else 2, time.monotonic() - start, error or "")
        self.steps.append(synth)
        if stack_dir is None:
            return synth
        shutil.copytree(stack_dir, self.base)
        init = self.terraform_step("init", ["init", "-input=false", "-no-color"], self.base)
        self.steps.append(init)
        if init.returncode != 0:
            return init
        apply = self.terraform_step("apply", ["apply", "-auto-approve", "-input=false", "-no-color"], self.base)
        self.steps.append(apply)
        return apply

    def replan_base(self) -> Step:
        """The unchanged file, refreshed against the emulator: must be empty (exit 0)."""
        step = self.terraform_step(
            "re-plan", ["plan", "-detailed-exitcode", "-lock=false", "-input=false", "-no-color"], self.base
        )
        self.steps.append(step)
        return step

    # ---- the variants

    def plan(self, change: Change, start_from: Path) -> Planned:
        planned = Planned(change)
        began = time.monotonic()
        stack_dir, error = self.synthesize(change.name, edited(self.document, change.edits))
        planned.seconds["synth"] = time.monotonic() - began
        if stack_dir is None:
            planned.error = error
            return planned
        directory = self.workdir / change.name / "stack"
        # The applied directory: provider lock, .terraform (symlinks into the plugin cache) and
        # the state; only the configuration is the variant's.
        shutil.copytree(
            start_from, directory, symlinks=True, ignore=shutil.ignore_patterns("plan.tfplan", "*.lock.info")
        )
        shutil.copyfile(stack_dir / "cdk.tf.json", directory / "cdk.tf.json")
        planned.directory = directory
        plan = self.terraform_step(
            "plan",
            ["plan", "-refresh=false", "-lock=false", "-input=false", "-no-color", "-out=plan.tfplan"],
            directory,
        )
        planned.seconds["plan"] = plan.seconds
        if plan.returncode != 0:
            errors = terraform_errors(plan.output.splitlines()) or plan.output[-2000:]
            planned.error = f"terraform plan exited {plan.returncode}: {errors}"
            return planned
        show = self.terraform_step("show", ["show", "-json", "plan.tfplan"], directory)
        planned.seconds["show"] = show.seconds
        if show.returncode != 0:
            planned.error = f"terraform show exited {show.returncode}: {show.output[-2000:]}"
            return planned
        planned.plan = json.loads(show.output)
        planned.resources = resource_changes(
            planned.plan, construct_paths(json.loads((directory / "cdk.tf.json").read_text()))
        )
        if change.apply:
            apply = self.terraform_step(
                "apply", ["apply", "-json", "-input=false", "-no-color", "plan.tfplan"], directory
            )
            planned.seconds["apply"] = apply.seconds
            events = [json.loads(line) for line in apply.output.splitlines() if line.startswith("{")]
            planned.applied = events
            if apply.returncode != 0:
                errors = [event.get("@message", "") for event in events if event.get("@level") == "error"]
                planned.error = (
                    f"terraform apply exited {apply.returncode}: {'; '.join(errors) or apply.output[-2000:]}"
                )
        return planned

    def plan_all(self, changes: tuple[Change, ...] = CHANGES) -> dict[str, Planned]:
        """Every row; rows planned after another row's apply follow it in the same worker."""
        followers: dict[str, list[Change]] = defaultdict(list)
        for change in changes:
            if change.after:
                followers[change.after].append(change)
        results: dict[str, Planned] = {}

        def run(change: Change, start_from: Path) -> None:
            planned = self.plan(change, start_from)
            results[change.name] = planned
            for follower in followers.get(change.name, []):
                if planned.error or planned.applied is None or planned.directory is None:
                    results[follower.name] = Planned(follower, error=f"{change.name} was not applied")
                else:
                    run(follower, planned.directory)

        # Rows that apply (and the rows planned after them) take longest: they start first.
        roots = sorted(
            (change for change in changes if not change.after),
            key=lambda change: (not followers.get(change.name), not change.apply),
        )
        with ThreadPoolExecutor(max_workers=PARALLEL_PLANS) as pool:
            for future in [pool.submit(run, change, self.base) for change in roots]:
                future.result()
        return {change.name: results[change.name] for change in changes if change.name in results}


def report(results: dict[str, Planned]) -> list[str]:
    lines = []
    for name, planned in results.items():
        problems = [] if planned.error else violations(planned.change, planned.observed)
        verdict = "ok" if not planned.error and not problems else "DIFFERS FROM THE TABLE"
        lines.append(f"{name:<22} {planned.summary()}")
        lines.append(f"{'':<22} [{verdict}; {planned.timing()}]")
        lines += [f"{'':<24}- {problem}" for problem in problems]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.emulator.upgrades", description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="staging", help="shipped environment to apply and change (default: staging)")
    parser.add_argument(
        "--only", action="append", default=[], metavar="NAME", help="only these rows (and what they need)"
    )
    args = parser.parse_args(argv)

    import pytest

    from tests.terraform_env import offline_terraform

    with tempfile.TemporaryDirectory(prefix="dynamo-upgrades-") as temporary:
        workdir = Path(temporary)
        try:
            terraform = offline_terraform(workdir / "terraform")
        except pytest.skip.Exception as skipped:
            print(skipped, file=sys.stderr)
            return 1
        region = tomllib.loads((PROJECT_DIR / "environments" / f"{args.env}.toml").read_text())["region"]
        with Emulator(workdir / "moto", [region]) as emulator:
            runner = UpgradePlans(args.env, workdir / "plans", terraform, emulator, region)
            applied = runner.apply_base()
            for step in runner.steps:
                print(f"{step.name}: exit {step.returncode}, {step.seconds:.1f}s", flush=True)
            if applied.returncode != 0:
                print(applied.report(), file=sys.stderr)
                return 1
            # A row planned after another needs that one too.
            wanted = set(args.only) | {change.after for change in CHANGES if change.name in args.only and change.after}
            chosen = tuple(change for change in CHANGES if not args.only or change.name in wanted)
            with ThreadPoolExecutor(max_workers=1) as side:
                replan = side.submit(runner.replan_base)
                results = runner.plan_all(chosen)
                step = replan.result()
            print(
                f"re-plan of the unchanged file: exit {step.returncode} "
                f"({'empty' if step.returncode == 0 else 'NOT EMPTY'}), {step.seconds:.1f}s"
            )
            for line in report(results):
                print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
