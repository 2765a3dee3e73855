"""The speed-ups (components/_speedups.py) against the plain import, switched by DYNAMO_ECS_PLAIN_IMPORT.

The speed-ups are only worth having if they change nothing but speed: every stack must be
byte-identical to what `DYNAMO_ECS_PLAIN_IMPORT=1 python main.py` writes, where
components/aws.py imports the whole provider package and jsii runs as shipped. Both sides
synthesize every shipped environment and the variant file in one `python main.py` each; the
plain side takes ~15 s of one core (it loads all ~2,100 generated modules, which is the point
of the speed-ups), so both start in the background at the beginning of the session (see
start_background_runs).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from components._speedups import PLAIN_IMPORT, TRACE_PROVIDER_LOADS
from tests.conftest import ENVIRONMENTS, PROJECT_DIR
from tests.test_variants import VARIANT_FILE

PACKAGE = "cdktf_cdktf_provider_aws"
PINNED = "20.1.0"
# Every shipped environment and the variant stack, in one run of main.py per side.
STACKS = (*ENVIRONMENTS, "variant")
MAIN_ARGS = [arg for env in ENVIRONMENTS for arg in ("--env", env)] + ["--config", str(VARIANT_FILE)]

# Runs a script as __main__ and, as the very last thing before the process exits, names
# on stderr the submodules of the provider package it imported (one per resource or data
# source, not counting the `._private` halves that publication.publish() registers).
COUNTING_RUNNER = f"""
import atexit, runpy, sys
script, *args = sys.argv[1:]
def imported():
    return sorted(name.split(".")[1] for name in sys.modules if name.startswith("{PACKAGE}.") and name.count(".") == 1)
atexit.register(lambda: print("provider modules:", *imported(), file=sys.stderr))
sys.argv = [script, *args]
runpy.run_path(script, run_name="__main__")
"""


def environment(*, plain_import: bool, trace_node_loads: bool = False) -> dict[str, str]:
    """This process's environment with the switch set (plain import) or unset (speed-ups), whatever it was."""
    env = {key: value for key, value in os.environ.items() if key not in (PLAIN_IMPORT, TRACE_PROVIDER_LOADS)}
    if plain_import:
        env[PLAIN_IMPORT] = "1"
    if trace_node_loads:
        env[TRACE_PROVIDER_LOADS] = "1"
    return env


class CountingRun:
    """main.py run as __main__ in its own process, started now, awaited later."""

    def __init__(self, *args: str, plain_import: bool, niceness: int = 0) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", COUNTING_RUNNER, str(PROJECT_DIR / "main.py"), *args],
            cwd=PROJECT_DIR,
            env=environment(plain_import=plain_import, trace_node_loads=True),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=(lambda: os.nice(niceness)) if niceness else None,
        )
        self._stderr: str | None = None

    def stderr(self) -> str:
        """Waits for the process to succeed; what it wrote on stderr."""
        if self._stderr is None:
            _, self._stderr = self.process.communicate(timeout=600)
            assert self.process.returncode == 0, self._stderr
        return self._stderr

    def provider_modules(self) -> list[str]:
        """The provider submodules the Python side imported (``ecs_service``)."""
        last = self.stderr().strip().splitlines()[-1]
        assert last.startswith("provider modules:"), self.stderr()
        return last.split()[2:]

    def node_provider_modules(self) -> list[str]:
        """The provider submodules the jsii kernel's node process loaded through the preload,
        named as in Python (node's index says ``ecsService``)."""
        prefix = "provider submodule loaded: "
        loaded = [line.removeprefix(prefix) for line in self.stderr().splitlines() if line.startswith(prefix)]
        return [re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower() for name in loaded]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


def start_background_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, CountingRun]]:
    """The two synths this module compares, started at once: same arguments, the switch set or not.

    The plain import alone takes ~15 s of one core; conftest.py starts these at the
    beginning of the session (when tests of this module are selected), so they run on
    whatever CPU the rest of the suite leaves idle: at a lower priority (nice 10), so
    that they never slow down the tests in front of them.
    """
    runs = {}
    for name, plain_import in [("plain", True), ("speedups", False)]:
        outdir = tmp_path_factory.mktemp(f"{name}-synth") / "cdktf.out"
        runs[name] = (outdir, CountingRun(*MAIN_ARGS, "--outdir", str(outdir), plain_import=plain_import, niceness=10))
    return runs


@pytest.fixture(scope="module")
def background_runs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[Path, CountingRun]]:
    started = request.getfixturevalue("provider_seam_runs")  # conftest.py; None if it did not start them
    return started if started is not None else start_background_runs(tmp_path_factory)


@pytest.fixture(scope="module")
def written(background_runs: dict[str, tuple[Path, CountingRun]]) -> dict[str, dict[Path, bytes]]:
    """Every file each side wrote into its cdktf.out, by path inside it."""
    files = {}
    for name, (outdir, run) in background_runs.items():
        run.stderr()  # waits for it to succeed
        files[name] = {path.relative_to(outdir): path.read_bytes() for path in outdir.rglob("*") if path.is_file()}
    return files


@pytest.mark.parametrize("stack", STACKS)
def test_speedups_synthesize_byte_identical_json(stack: str, written: dict[str, dict[Path, bytes]]) -> None:
    relative = Path("stacks") / f"dynamo-{stack}" / "cdk.tf.json"
    assert written["speedups"][relative] == written["plain"][relative], (
        f"{relative} differs between the speed-ups and DYNAMO_ECS_PLAIN_IMPORT=1"
    )


def test_speedups_and_plain_import_write_the_same_files(written: dict[str, dict[Path, bytes]]) -> None:
    speedups, plain = written["speedups"], written["plain"]
    assert sorted(speedups) == sorted(plain)
    assert speedups == plain  # manifest.json included
    assert {Path("stacks") / f"dynamo-{stack}" / "cdk.tf.json" for stack in STACKS} <= set(speedups)


def test_speedups_import_only_the_modules_they_use(background_runs: dict[str, tuple[Path, CountingRun]]) -> None:
    speedups = len(background_runs["speedups"][1].provider_modules())
    plain = len(background_runs["plain"][1].provider_modules())
    assert speedups < 60, f"the speed-ups imported {speedups} provider submodules"
    assert plain > 1000, f"DYNAMO_ECS_PLAIN_IMPORT=1 imported only {plain} provider submodules"


def test_node_loads_only_the_provider_modules_the_speedups_use(
    background_runs: dict[str, tuple[Path, CountingRun]],
) -> None:
    _, run = background_runs["speedups"]
    loaded = run.node_provider_modules()
    assert "not shaped as expected" not in run.stderr()
    assert "provider" in loaded and "ecs_service" in loaded, loaded
    assert len(loaded) == len(set(loaded)), "a provider module was loaded twice"
    never_imported = set(loaded) - set(run.provider_modules())
    assert not never_imported, f"node loaded modules the Python side never imported: {sorted(never_imported)}"


def test_plain_import_keeps_the_eager_node_load(background_runs: dict[str, tuple[Path, CountingRun]]) -> None:
    """The reference side must be jsii as shipped: the preload is not in its node process."""
    _, run = background_runs["plain"]
    assert run.node_provider_modules() == []


# Imports what a construct-level test or a script imports, then reports what changed outside them.
IMPORT_PROBE = f"""
import json, os, sys
import jsii
from jsii._kernel.providers import process
start, load, environ = process._NodeProcess.start, jsii.JSIIAssembly.__dict__["load"], dict(os.environ)
import components, components.aws, components._speedups
print(json.dumps({{
    "jsii node start replaced": process._NodeProcess.start is not start,
    "jsii assembly load replaced": jsii.JSIIAssembly.__dict__["load"] is not load,
    "{PACKAGE} in sys.modules": "{PACKAGE}" in sys.modules,
    "environment variables changed": sorted(set(os.environ.items()) ^ set(environ.items())),
}}))
"""


def test_importing_the_components_changes_nothing_global() -> None:
    env = {**environment(plain_import=False), "NODE_OPTIONS": "--max-old-space-size=3000"}
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE], cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "jsii node start replaced": False,
        "jsii assembly load replaced": False,
        f"{PACKAGE} in sys.modules": False,
        "environment variables changed": [],
    }


ENABLE_PROBE = """
import json
from jsii._kernel.providers import process
start = process._NodeProcess.start
from components import _speedups
_speedups.enable()
after_first = process._NodeProcess.start
_speedups.enable()
print(json.dumps({
    "enabled": _speedups.is_enabled(),
    "node start wraps jsii's own": getattr(after_first, "__wrapped__", None) is start,
    "second call changed nothing": process._NodeProcess.start is after_first,
}))
"""


@pytest.mark.parametrize("plain_import", [False, True], ids=["speedups", "plain-import"])
def test_enable_is_idempotent_and_the_switch_turns_it_off(plain_import: bool) -> None:
    result = subprocess.run(
        [sys.executable, "-c", ENABLE_PROBE],
        cwd=PROJECT_DIR,
        env=environment(plain_import=plain_import),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "enabled": not plain_import,
        "node start wraps jsii's own": not plain_import,
        "second call changed nothing": True,
    }


# importlib.metadata.version is what components/aws.py asks; the fake answers for the provider only.
FAKE_VERSION = """
import importlib.metadata, runpy, sys
real = importlib.metadata.version
installed, *sys.argv = sys.argv[1:]
def version(distribution):
    if distribution != "cdktf-cdktf-provider-aws":
        return real(distribution)
    if installed == "missing":
        raise importlib.metadata.PackageNotFoundError(distribution)
    return installed
importlib.metadata.version = version
runpy.run_path(sys.argv[0], run_name="__main__")
"""


ANOTHER_RELEASE = f"cdktf-cdktf-provider-aws 19.0.0 is installed but this project is built on {PINNED}"
NOT_INSTALLED = (
    f"cdktf-cdktf-provider-aws is not installed; run `make synth` (it installs cdktf-cdktf-provider-aws=={PINNED})"
)


# The check is the same code with the speed-ups or without; the plain import is run once, to show it is reached.
@pytest.mark.parametrize(
    ("installed", "plain_import", "expected"),
    [
        pytest.param("19.0.0", False, ANOTHER_RELEASE, id="another-release"),
        pytest.param("missing", False, NOT_INSTALLED, id="missing"),
        pytest.param("19.0.0", True, ANOTHER_RELEASE, id="another-release-plain-import"),
    ],
)
def test_another_provider_release_stops_the_cli_in_one_line(
    installed: str, plain_import: bool, expected: str, tmp_path: Path
) -> None:
    outdir = tmp_path / "cdktf.out"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            FAKE_VERSION,
            installed,
            str(PROJECT_DIR / "main.py"),
            "--env",
            "dev",
            "--outdir",
            str(outdir),
        ],
        cwd=PROJECT_DIR,
        env=environment(plain_import=plain_import),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    assert expected in lines[0]
    assert "Traceback" not in result.stderr
    assert not outdir.exists()
