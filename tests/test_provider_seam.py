"""components/aws.py, the seam that loads the AWS provider bindings module by module.

The seam is only worth having if it changes nothing but speed: every stack it
synthesizes must be byte-identical to what the plain `import cdktf_cdktf_provider_aws`
gives. The seam side is the session's own synth (conftest.synth_dir, `python main.py`);
the plain side is one more process per session, scripts/naive_main.py (~15 s: it loads
all ~2,100 generated modules, which is the point of the seam), started in the background
at the beginning of the session (see start_background_runs).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from components import TRACE_PROVIDER_LOADS
from tests.conftest import ENVIRONMENTS, PROJECT_DIR

PACKAGE = "cdktf_cdktf_provider_aws"
PINNED = "20.1.0"

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


class CountingRun:
    """A script of the project run as __main__ in its own process, started now, awaited later."""

    def __init__(self, script: str, *args: str, niceness: int = 0, trace_node_loads: bool = False) -> None:
        env = dict(os.environ)
        if trace_node_loads:
            env[TRACE_PROVIDER_LOADS] = "1"
        self.process = subprocess.Popen(
            [sys.executable, "-c", COUNTING_RUNNER, str(PROJECT_DIR / script), *args],
            cwd=PROJECT_DIR,
            env=env,
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
        """The provider submodules the jsii kernel's node process loaded, named as in
        Python (node's index says ``ecsService``); traced runs only."""
        prefix = "provider submodule loaded: "
        loaded = [line.removeprefix(prefix) for line in self.stderr().splitlines() if line.startswith(prefix)]
        return [re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower() for name in loaded]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


def start_background_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, CountingRun]]:
    """The two synths this module needs besides the session's own, started at once.

    The plain import alone takes ~15 s of one core; conftest.py starts these at the
    beginning of the session (when tests of this module are selected), so they run on
    whatever CPU the rest of the suite leaves idle: at a lower priority (nice 10), so
    that they never slow down the tests in front of them.
    """
    runs = {}
    for name, script, args in [
        ("plain", "scripts/naive_main.py", []),  # every environment
        ("seam", "main.py", ["--env", "prod"]),  # the largest environment, for the module counts
    ]:
        outdir = tmp_path_factory.mktemp(f"{name}-synth") / "cdktf.out"
        runs[name] = (outdir, CountingRun(script, *args, "--outdir", str(outdir), niceness=10, trace_node_loads=True))
    return runs


@pytest.fixture(scope="module")
def background_runs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[Path, CountingRun]]:
    started = request.getfixturevalue("provider_seam_runs")  # conftest.py; None if it did not start them
    return started if started is not None else start_background_runs(tmp_path_factory)


@pytest.fixture(scope="module")
def plain_import(background_runs: dict[str, tuple[Path, CountingRun]]) -> tuple[Path, int]:
    """(cdktf.out, provider submodules imported) of every environment through the plain import."""
    outdir, run = background_runs["plain"]
    return outdir, len(run.provider_modules())


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_seam_synthesizes_byte_identical_json(env: str, synth_dir: Path, plain_import: tuple[Path, int]) -> None:
    plain_dir, _ = plain_import
    relative = Path("stacks") / f"dynamo-{env}" / "cdk.tf.json"
    seam = (synth_dir / relative).read_bytes()
    plain = (plain_dir / relative).read_bytes()
    assert seam == plain, f"{relative} differs between the seam and the plain import"


def test_seam_and_plain_import_write_the_same_files(synth_dir: Path, plain_import: tuple[Path, int]) -> None:
    plain_dir, _ = plain_import
    seam_files = {path.relative_to(synth_dir): path.read_bytes() for path in synth_dir.rglob("*") if path.is_file()}
    plain_files = {path.relative_to(plain_dir): path.read_bytes() for path in plain_dir.rglob("*") if path.is_file()}
    assert sorted(seam_files) == sorted(plain_files)
    assert seam_files == plain_files  # manifest.json included
    assert {Path("stacks") / f"dynamo-{env}" / "cdk.tf.json" for env in ENVIRONMENTS} <= set(seam_files)


def test_seam_imports_only_the_modules_it_uses(
    background_runs: dict[str, tuple[Path, CountingRun]], plain_import: tuple[Path, int]
) -> None:
    _, plain_modules = plain_import
    seam_dir, seam_run = background_runs["seam"]
    seam_modules = len(seam_run.provider_modules())
    assert (seam_dir / "stacks" / "dynamo-prod" / "cdk.tf.json").is_file()
    assert seam_modules < 60, f"the seam imported {seam_modules} provider submodules"
    assert plain_modules > 1000, f"the plain import loaded only {plain_modules} provider submodules"


def test_node_loads_only_the_provider_modules_the_seam_uses(
    background_runs: dict[str, tuple[Path, CountingRun]],
) -> None:
    _, seam_run = background_runs["seam"]
    loaded = seam_run.node_provider_modules()
    assert "not shaped as expected" not in seam_run.stderr()
    assert "provider" in loaded and "ecs_service" in loaded, loaded
    assert len(loaded) == len(set(loaded)), "a provider module was loaded twice"
    never_imported = set(loaded) - set(seam_run.provider_modules())
    assert not never_imported, f"node loaded modules the Python side never imported: {sorted(never_imported)}"


def test_plain_import_keeps_the_eager_node_load(background_runs: dict[str, tuple[Path, CountingRun]]) -> None:
    """The reference side must be jsii as shipped: the preload is not in its node process."""
    _, plain_run = background_runs["plain"]
    assert plain_run.node_provider_modules() == []


# importlib.metadata.version is what the seam asks; the fake answers for the provider only.
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


@pytest.mark.parametrize(
    ("installed", "expected"),
    [
        ("19.0.0", f"cdktf-cdktf-provider-aws 19.0.0 is installed but this project is built on {PINNED}"),
        (
            "missing",
            "cdktf-cdktf-provider-aws is not installed; run `make synth` (it installs "
            f"cdktf-cdktf-provider-aws=={PINNED})",
        ),
    ],
)
def test_seam_refuses_another_provider_release_in_one_line(installed: str, expected: str, tmp_path: Path) -> None:
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
