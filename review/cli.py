"""`python main.py review`: the working tree against a base, or a plan, as one markdown comment.

    python main.py review --base-ref origin/main            # synthesize both sides
    python main.py review --base cdktf.out.old --env prod    # an earlier synth output as the base
    python main.py review --env staging --plan-json plan.json [--base-ref origin/main]

Exit codes: 0 written; 2 a mistake on the command line or in an environment file; 1 anything else.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from environments.loader import ENVIRONMENTS_DIR, ConfigError, environment_files, load
from environments.schema import Environment
from review.changes import plan_changes, synth_changes
from review.cost import Prices, load_prices
from review.flows import recorded_flows
from review.render import EnvironmentReview, review
from review.settings import setting_changes
from review.stack import Stack, from_plan, from_synth

PROJECT_DIR = Path(__file__).resolve().parent.parent
TITLE = "# Infrastructure review"


class ReviewError(Exception):
    """Something the review cannot do that is not the user's input (a base that does not synthesize)."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="main.py review", description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", action="append", default=[], metavar="NAME", help="environment (repeatable)")
    base = parser.add_mutually_exclusive_group()
    base.add_argument("--base-ref", metavar="GITREF", help="synthesize this commit (a temporary git worktree)")
    base.add_argument("--base", type=Path, metavar="DIR", help="an earlier synth output directory (cdktf.out)")
    parser.add_argument("--plan-json", type=Path, metavar="FILE", help="`terraform show -json` of one env's plan")
    parser.add_argument("--output", type=Path, metavar="FILE", help="write the markdown here instead of stdout")
    return parser.parse_args(argv)


def _names(args: argparse.Namespace) -> list[str]:
    available = sorted(path.stem for path in environment_files())
    for name in args.env:
        if name not in available:
            raise ConfigError([f"--env {name}: no environments/{name}.toml; available: {', '.join(available)}"])
    names = sorted(set(args.env)) or available
    if args.plan_json and len(names) != 1:
        raise ConfigError(["--plan-json: name the plan's environment with exactly one --env NAME"])
    if not args.plan_json and not args.base_ref and not args.base:
        raise ConfigError(["main.py review: give a base: --base-ref GITREF, --base DIR or --plan-json FILE"])
    if args.base and not (args.base / "stacks").is_dir():
        raise ConfigError([f"--base {args.base}: not a synth output directory (no stacks/ in it)"])
    if args.plan_json and not args.plan_json.is_file():
        raise ConfigError([f"--plan-json {args.plan_json}: no such file"])
    return names


def synthesize(project: Path, outdir: Path, names: list[str]) -> None:
    """The project's own main.py (the base's code for a base), in its own process."""
    result = subprocess.run(
        [sys.executable, str(project / "main.py"), "--outdir", str(outdir), *[f"--env={name}" for name in names]],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if result.returncode != 0:
        raise ReviewError(f"synth of {project.name} failed: {result.stderr.strip()[-2000:]}")


def synth_stack(outdir: Path, name: str) -> Stack | None:
    path = outdir / "stacks" / f"dynamo-{name}" / "cdk.tf.json"
    return from_synth(json.loads(path.read_text()), name=f"dynamo-{name}") if path.is_file() else None


def _stack_names(outdir: Path | None) -> list[str]:
    stacks = outdir / "stacks" if outdir else None
    return [path.name.removeprefix("dynamo-") for path in stacks.glob("dynamo-*")] if stacks and stacks.is_dir() else []


def environment_file(directory: Path, name: str) -> Environment | None:
    """The file as this version's schema reads it; None where there is none or it does not load."""
    path = directory / f"{name}.toml"
    try:
        return load(path, f"environments/{name}.toml") if path.is_file() else None
    except ConfigError:
        return None


def _base_ref(ref: str, workdir: Path, names: list[str] | None, *, synth: bool) -> tuple[Path, Path]:
    """(its synth output, its environments/) from a temporary worktree; removed by the caller.
    ``names`` None: every environment the ref has, so that one the working tree removed is reviewed too.
    With a plan, only its environment files are read: the plan has the stacks."""
    checkout = workdir / "base"
    added = subprocess.run(
        ["git", "-C", str(PROJECT_DIR), "worktree", "add", "--detach", "--quiet", str(checkout), ref],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if added.returncode != 0:
        raise ConfigError([f"--base-ref {ref}: not a commit git can check out here ({added.stderr.strip()})"])
    files = sorted(path.stem for path in (checkout / "environments").glob("*.toml"))
    present = [name for name in files if names is None or name in names]
    if present and synth:
        synthesize(checkout, workdir / "base-out", present)
    return workdir / "base-out", checkout / "environments"


def _remove_worktree(workdir: Path) -> None:
    if (workdir / "base").exists():
        subprocess.run(
            ["git", "-C", str(PROJECT_DIR), "worktree", "remove", "--force", str(workdir / "base")],
            capture_output=True,
            timeout=300,
        )


def _read_plan(path: Path) -> dict[str, Any]:
    try:
        plan = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ConfigError([f"--plan-json {path}: not JSON from `terraform show -json` ({error})"]) from None
    if not isinstance(plan, dict) or "resource_changes" not in plan and "planned_values" not in plan:
        raise ConfigError([f"--plan-json {path}: no resource_changes: not `terraform show -json PLANFILE` output"])
    return plan


def synth_review(
    *,
    before: Stack | None,
    after: Stack,
    before_file: Environment | None,
    after_file: Environment | None,
    prices: Prices,
    today: datetime.date,
) -> EnvironmentReview:
    """Two synthesized stacks of one environment (``before`` None: a new one; ``after`` empty: one removed)."""
    return review(
        before=before,
        after=after,
        changes=synth_changes(before or Stack(after.name, after.region, {}), after),
        settings=setting_changes(before_file, after_file),
        from_plan=False,
        prices=prices,
        today=today,
        observed=recorded_flows(after.name),
        note=(
            "A new environment: everything is created."
            if before is None
            else "The environment file is gone: every resource of this stack is destroyed."
            if not after.resources
            else ""
        ),
    )


def reviews(args: argparse.Namespace, names: list[str], today: datetime.date) -> list[EnvironmentReview]:
    prices = load_prices()
    with tempfile.TemporaryDirectory(prefix="dynamo-review-") as temporary:
        workdir = Path(temporary)
        try:
            base_out, base_files = args.base, None
            if args.base_ref:
                base_out, base_files = _base_ref(
                    args.base_ref, workdir, names if args.env else None, synth=not args.plan_json
                )
            if args.plan_json:
                (name,) = names
                return [_plan_review(_read_plan(args.plan_json), name, base_files, prices, today)]
            synthesize(PROJECT_DIR, workdir / "head-out", names)
            # Without --env, an environment the base has and the working tree does not is destroyed.
            removed = [] if args.env else sorted(set(_stack_names(base_out)) - set(names))
            found = []
            for name in sorted({*names, *removed}):
                before = synth_stack(base_out, name)
                after = synth_stack(workdir / "head-out", name)
                if after is None and before is None:
                    continue
                found.append(
                    synth_review(
                        before=before,
                        after=after or Stack(f"dynamo-{name}", before.region if before else "", {}),
                        before_file=environment_file(base_files, name) if base_files else None,
                        after_file=environment_file(ENVIRONMENTS_DIR, name),
                        prices=prices,
                        today=today,
                    )
                )
            return found
        finally:
            _remove_worktree(workdir)


def _plan_review(
    plan: dict[str, Any], name: str, base_files: Path | None, prices: Prices, today: datetime.date
) -> EnvironmentReview:
    return review(
        before=from_plan(plan, name=f"dynamo-{name}", side="before"),
        after=from_plan(plan, name=f"dynamo-{name}", side="after"),
        changes=plan_changes(plan),
        settings=setting_changes(
            environment_file(base_files, name) if base_files else None, environment_file(ENVIRONMENTS_DIR, name)
        ),
        from_plan=True,
        prices=prices,
        today=today,
        observed=recorded_flows(f"dynamo-{name}"),
    )


def document(found: list[EnvironmentReview]) -> str:
    return "\n".join([TITLE, "", *[environment.markdown for environment in found]]).rstrip("\n") + "\n"


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        names = _names(args)
        found = reviews(args, names, datetime.date.today())
    except ConfigError as error:
        for line in error.lines:
            print(line, file=sys.stderr)
        return 2
    except ReviewError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    text = document(found)
    if args.output:
        args.output.write_text(text)
    else:
        sys.stdout.write(text)
    return 0
