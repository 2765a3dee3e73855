"""dynamo-ecs: environment files in, Terraform JSON for NVIDIA Dynamo on AWS ECS out.

    python main.py                       # every environments/*.toml
    python main.py --env dev --env prod  # some of them
    python main.py --config path/to/team.toml --outdir /tmp/out
    DYNAMO_ECS_PLAIN_IMPORT=1 python main.py   # without the speed-ups (components/_speedups.py)

Exit codes: 0 synthesized; 2 a mistake in an environment file or the command line
(one line per problem, the output directory untouched); 1 anything else.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from environments.loader import ENVIRONMENTS_DIR, ConfigError, environment_files, load_all
from environments.schema import Environment

PROJECT_DIR = Path(__file__).resolve().parent
DEFAULT_OUTDIR = "cdktf.out"
MANIFEST = "manifest.json"  # cdktf's list of the stacks in an output directory


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="main.py", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME", help="environment in environments/NAME.toml (repeatable)"
    )
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        type=Path,
        metavar="PATH",
        help="environment file from anywhere (repeatable)",
    )
    parser.add_argument(
        "--outdir",
        type=Path,
        default=Path(os.environ.get("CDKTF_OUTDIR", DEFAULT_OUTDIR)),
        help="output directory (default: $CDKTF_OUTDIR or cdktf.out)",
    )
    return parser.parse_args(argv)


def unselected_files(files: list[Path]) -> list[Path]:
    """The rest of environments/ when a run picks some of it: the picked ones must not clash with them.

    A file from elsewhere on its own (``--config``) is not one of the project's environments."""
    chosen = {path.resolve() for path in files}
    if not any(path.parent == ENVIRONMENTS_DIR for path in chosen):
        return []
    return [path for path in environment_files() if path.resolve() not in chosen]


def selected_files(args: argparse.Namespace) -> list[Path]:
    if not args.env and not args.config:
        return environment_files()
    files = []
    available = sorted(path.stem for path in environment_files())
    for name in args.env:
        path = ENVIRONMENTS_DIR / f"{name}.toml"
        if not path.is_file():
            raise ConfigError([f"--env {name}: no environments/{name}.toml; available: {', '.join(available)}"])
        files.append(path)
    return files + list(args.config)


def display_path(path: Path) -> str:
    """How a file is named in messages: relative to the project when it is inside it."""
    try:
        return str(path.resolve().relative_to(PROJECT_DIR))
    except ValueError:
        return str(path)


def synthesize(environments: list[Environment], outdir: Path) -> None:
    """Synthesize into a sibling temporary directory, then move in what synth generates, and only that.

    A failed synth leaves the output directory as it was. Then each generated file replaces
    its old version with one rename, so no file is ever half-written, and everything else
    stays: the other stacks' output, and what Terraform keeps in a stack's directory
    (.terraform/, the lock file, plan files, a state file from before). manifest.json goes
    last: the cdktf CLI finds stacks there and deletes the directory of any stack it does
    not list, so it lists the generated stacks and every earlier one that still has output.
    """
    # Imported here so a config mistake is reported without starting the jsii runtime.
    from cdktf import App

    from components.stack import DynamoStack

    outdir = outdir.resolve()
    outdir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.", dir=outdir.parent))
    try:
        app = App(outdir=str(staging), skip_validation=False)
        for environment in environments:
            DynamoStack(app, environment=environment)
        app.synth()
        manifest = staging / MANIFEST
        manifest.write_text(merged_manifest(json.loads(manifest.read_text()), outdir))
        if not outdir.exists():
            staging.rename(outdir)
            return
        generated = sorted(path for path in staging.rglob("*") if path.is_file() and path != manifest)
        for path in [*generated, manifest]:
            target = outdir / path.relative_to(staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def merged_manifest(generated: dict, outdir: Path) -> str:
    """cdktf's manifest of this synth plus the stacks an earlier one left with output in ``outdir``."""
    stacks = dict(generated["stacks"])
    try:
        earlier = json.loads((outdir / MANIFEST).read_text())["stacks"]
        earlier = earlier if isinstance(earlier, dict) else {}
    except (OSError, ValueError, TypeError, KeyError):
        earlier = {}  # no output yet, or not a manifest cdktf wrote: nothing to keep listed
    for name, entry in earlier.items():
        path = entry.get("synthesizedStackPath") if isinstance(entry, dict) else None
        if name not in stacks and isinstance(path, str) and (outdir / path).is_file():
            stacks[name] = entry
    return json.dumps({**generated, "stacks": stacks}, indent=2, sort_keys=True) + "\n"


def summary(environment: Environment, outdir: Path) -> str:
    stack = environment.stack_name
    path = outdir / "stacks" / stack / "cdk.tf.json"
    document = json.loads(path.read_text())
    resources = sum(len(instances) for instances in document.get("resource", {}).values())
    fleet = environment.gpu_fleet
    gpus = environment.decode.gpus
    return (
        f"{stack:<16} {resources:>4} resources  GPU fleet {fleet.instance_type} x "
        f"{fleet.min_instances}..{fleet.max_instances}"
        f" ({fleet.capacity.replace('_', '-')})  {gpus} GPU{'s' if gpus > 1 else ''}/worker  {environment.mode}  "
        f"{environment.rollout_summary()}  {display_path(path)}"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    warnings: list[str] = []
    try:
        files = selected_files(args)
        others = unselected_files(files)
        shown_as = {path: display_path(path) for path in [*files, *others]}
        environments = load_all(files, shown_as=shown_as, others=others, warnings=warnings)
    except ConfigError as error:
        for line in error.lines:
            print(line, file=sys.stderr)
        return 2
    for line in warnings:
        print(line, file=sys.stderr)
    if not environments:
        print(
            f"no environment files in {display_path(ENVIRONMENTS_DIR)}; add one (see README: Adding an environment)",
            file=sys.stderr,
        )
        return 2
    # Imported only now: a config mistake never needs the jsii runtime, nor what prepares it.
    from components import ProviderVersionError, _speedups

    # jsii 1.142 prints a ten-line banner on every synth when Node 20 runs it; Node 20
    # works for what we do, and the banner would bury the one-line-per-stack summary.
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    _speedups.enable()  # before synthesize() imports cdktf, which starts jsii's node process
    try:
        synthesize(environments, args.outdir)
    except ProviderVersionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for environment in environments:
        print(summary(environment, args.outdir))
    first = environments[0].stack_name
    print(
        f"next: cdktf diff {first}   (or: cd {display_path(args.outdir)}/stacks/{first} && terraform init && "
        "terraform plan)"
    )
    return 0


def exit_now(status: int) -> None:
    """Exit without the interpreter's teardown.

    Freeing the jsii object graph and ~700 modules one by one takes ~0.1 s on every
    synth and serves no purpose for a process that is about to end. Everything that
    matters is done explicitly: our output is flushed and the atexit hooks run (jsii's
    sends its node process the exit message and waits for it).
    """
    sys.stdout.flush()
    sys.stderr.flush()
    atexit._run_exitfuncs()
    # jsii's hook waits for node to exit and relays what node wrote last, so flush again.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


if __name__ == "__main__":
    exit_now(main())
