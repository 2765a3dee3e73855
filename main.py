"""dynamo-ecs: environment files in, Terraform JSON for NVIDIA Dynamo on AWS ECS out.

    python main.py                       # every environments/*.toml
    python main.py --env dev --env prod  # some of them
    python main.py --config path/to/team.toml --outdir /tmp/out
    python main.py --list                # the environments, one line each
    python main.py --show-config --env dev   # dev with every default filled in, as TOML
    python main.py --version
    python main.py review --base-ref origin/main   # a pull request's review, as markdown (review/cli.py)
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
from typing import Any

from environments.loader import ENVIRONMENTS_DIR, ConfigError, environment_files, load, load_all
from environments.schema import Environment, did_you_mean

PROJECT_DIR = Path(__file__).resolve().parent
DEFAULT_OUTDIR = "cdktf.out"
MANIFEST = "manifest.json"  # cdktf's list of the stacks in an output directory


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="main.py",
        description=__doc__.split("\n\n")[0],
        epilog="python main.py review --help: a pull request's review (what changes, what it risks, what it costs)",
    )
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
    actions = parser.add_mutually_exclusive_group()
    actions.add_argument("--list", action="store_true", help="list the environments, one line each, and exit")
    actions.add_argument(
        "--show-config",
        action="store_true",
        help="print one environment (--env or --config) with every default filled in, as TOML, and exit",
    )
    # Not argparse's "version" action: it wraps the line to the terminal's width.
    parser.add_argument("--version", action="store_true", help="print the versions and exit")
    return parser.parse_args(argv)


def version() -> str:
    """Ours and the versions that decide what the JSON looks like, without starting jsii."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    from environments.schema import ImageConfig

    def of(package: str) -> str:
        try:
            return installed(package)
        except PackageNotFoundError:
            return "not installed"

    image = ImageConfig()
    return (
        f"dynamo-ecs {of('dynamo-ecs')} (cdktf {of('cdktf')}, cdktf-cdktf-provider-aws "
        f"{of('cdktf-cdktf-provider-aws')}, default image {image.reference})"
    )


def unselected_files(files: list[Path]) -> list[Path]:
    """The rest of environments/ when a run picks some of it: the picked ones must not clash with them.

    A file from elsewhere on its own (``--config``) is not one of the project's environments."""
    chosen = {path.resolve() for path in files}
    if not any(path.parent == ENVIRONMENTS_DIR for path in chosen):
        return []
    return [path for path in environment_files() if path.resolve() not in chosen]


def selected_files(args: argparse.Namespace, warnings: list[str] | None = None) -> list[Path]:
    """The files a run names, each once: a repeated --env or --config is said, not an error."""
    if not args.env and not args.config:
        return environment_files()
    named: list[tuple[str, Path]] = []
    available = sorted(path.stem for path in environment_files())
    for name in args.env:
        path = ENVIRONMENTS_DIR / f"{name}.toml"
        if not path.is_file():
            close = did_you_mean(name, available)
            raise ConfigError([f"--env {name}: no environments/{name}.toml{close}; available: {', '.join(available)}"])
        named.append((f"--env {name}", path))
    named += [(f"--config {path}", path) for path in args.config]
    unique: dict[Path, Path] = {}
    for flag, path in named:
        key = path.resolve()
        if key in unique and warnings is not None:
            warnings.append(f"{flag}: given more than once; used once")
        unique.setdefault(key, path)
    return list(unique.values())


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


def merged_manifest(generated: dict[str, Any], outdir: Path) -> str:
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
        f"{environment.rollout_summary()}  {cold_start_summary(environment)}  {display_path(path)}"
    )


def cold_start_summary(environment: Environment) -> str:
    """A worker's first start on a fresh instance, and the health check's budget for it."""
    from environments import fit

    facts = environment.model.model_facts
    if facts is None:  # the schema rejects this; kept total for a model built by hand
        return "cold start unknown"
    estimate = fit.cold_start(environment, facts)
    check = fit.health_check(estimate)
    budget = f"health check allows {fit.minutes(check.budget)}" if check else "beyond any health check"
    return (
        f"cold start ~{fit.minutes(estimate.total)} (pull {fit.minutes(estimate.pull)}, weights "
        f"{fit.minutes(estimate.download + estimate.load)} at {estimate.disk_mibps:.0f} MiB/s, engine "
        f"{fit.minutes(estimate.engine)}; {budget})"
    )


def first_comment(path: Path) -> str:
    """An environment file's one-line summary: its first comment, without a leading "name:"."""
    try:
        first = path.read_text(encoding="utf-8").splitlines()[0]
    except (OSError, UnicodeDecodeError, IndexError):
        return ""
    if not first.startswith("#"):
        return ""
    text = first.lstrip("#").strip()
    name, colon, rest = text.partition(":")
    return rest.strip() if colon and name.strip() == path.stem else text


def list_environments(files: list[Path]) -> list[str]:
    lines = []
    for path in files:
        try:
            env = load(path, display_path(path))
        except ConfigError as error:
            lines.append(
                f"{path.stem:<12} does not load ({len(error.lines)} problem{'s' if len(error.lines) > 1 else ''}: "
                f"python main.py --config {display_path(path)})  {first_comment(path)}"
            )
            continue
        fleet = env.gpu_fleet
        lines.append(
            f"{env.name:<12} {env.region:<14} {env.mode:<14} {fleet.instance_type} x {fleet.min_instances}.."
            f"{fleet.max_instances}  {env.model.name} TP{env.model.tensor_parallel_size}  {first_comment(path)}"
        )
    return lines


def show_config(files: list[Path], shown_as: dict[Path, str], others: list[Path]) -> str:
    from environments.effective import effective_toml

    if len(files) != 1:
        raise ConfigError(
            [f"--show-config: name exactly one environment (--env NAME or --config PATH), got {len(files)}"]
        )
    (environment,) = load_all(files, shown_as=shown_as, others=others)
    header = (
        f"{shown_as[files[0]]} with every default filled in (python main.py --show-config). Loads back to the "
        "same environment."
    )
    return effective_toml(environment, header)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["review"]:
        from review.cli import main as review

        return review(argv[1:])
    args = parse_args(argv)
    if args.version:
        print(version())
        return 0
    warnings: list[str] = []
    try:
        repeated: list[str] = []
        files = selected_files(args, repeated)
        for line in repeated:
            print(line, file=sys.stderr)
        if args.list:
            print("\n".join(list_environments(files)))
            return 0
        others = unselected_files(files)
        shown_as = {path: display_path(path) for path in [*files, *others]}
        if args.show_config:
            sys.stdout.write(show_config(files, shown_as, others))
            return 0
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
