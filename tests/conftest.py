"""Shared fixtures: every environment is synthesized once per test session."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from components import _speedups
from environments.loader import environment_files
from tests.terraform_env import OfflineTerraform, offline_terraform

# Stacks built in the pytest process (cdktf Testing) get the speed-ups main.py has, unless
# DYNAMO_ECS_PLAIN_IMPORT=1: enabled here, before a test module imports cdktf (which starts
# jsii's node), so that building one component does not cost the full provider import.
_speedups.enable()

PROJECT_DIR = Path(__file__).resolve().parent.parent
# Every environment file, by file name (each file's `name` is its file name; test_bad_input.py
# checks that): a new environments/qa.toml joins every per-environment test.
ENVIRONMENTS = tuple(path.stem for path in environment_files())


class Unreviewed(UserWarning):
    """Something a new environment file brought that nobody has reviewed yet."""


def unreviewed(message: str) -> None:
    """A warning in the test summary on a developer's machine; a failure in CI (CI=true),
    where whatever the tests accept must already be reviewed and committed."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI=true: this must be reviewed and committed first)")
    warnings.warn(Unreviewed(message), stacklevel=2)


def run_main(*args: str, cwd: Path = PROJECT_DIR, project: Path = PROJECT_DIR) -> subprocess.CompletedProcess[str]:
    """Run the CLI as users do, in its own process (``project``: a copy's main.py and environments/)."""
    return subprocess.run(
        [sys.executable, str(project / "main.py"), *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )


def copy_project(destination: Path) -> Path:
    """A copy of the project as a clone would have it, plus files not committed yet (not ignored).

    No .venv, node_modules or output: the copy runs with this interpreter, whose editable
    install comes after the script's own directory on sys.path, so the copy's code is what runs."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=PROJECT_DIR,
        capture_output=True,
        timeout=60,
    )
    if listed.returncode != 0:
        pytest.skip(
            f"SKIPPED LOUDLY: cannot list the project's files with git ({listed.stderr.decode().strip()}); this test "
            "needs a clone"
        )
    for name in filter(None, listed.stdout.decode().split("\0")):
        source = PROJECT_DIR / name
        if source.is_file():  # a tracked file deleted in the working tree is listed too
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


def synthesize_all(outdir: Path) -> Path:
    """cdktf.out of one `python main.py` run over every environment file."""
    result = run_main("--outdir", str(outdir))
    assert result.returncode == 0, result.stderr
    return outdir


# Work done in other processes that keeps both cores busy for seconds: the synth every layer reads,
# Checkov over its stacks, the bad inputs through main.py. It starts when the session begins, in
# threads, so that the tests run in this process meanwhile; the fixtures below wait for it.
EARLY = pytest.StashKey[dict[str, Future]]()
WAITS_FOR_EARLY_WORK = ("tests/test_bad_input.py", "tests/test_checkov.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests that wait for early work run last, so that it is done by then (stable: order kept otherwise)."""
    items.sort(key=lambda item: item.nodeid.startswith(WAITS_FOR_EARLY_WORK))


def _selected(session: pytest.Session, module: str) -> bool:
    return any(item.nodeid.startswith(f"tests/{module}.py") for item in session.items)


@pytest.fixture(scope="session", autouse=True)
def early_work(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    session = request.session
    needs_synth = any("synth_dir" in getattr(item, "fixturenames", ()) for item in session.items)
    if not needs_synth and not _selected(session, "test_bad_input"):
        yield
        return
    started: dict[str, Future] = {}
    # One thread each: Checkov's waits for the synth, and must not hold up the bad inputs meanwhile.
    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="early") as pool:
        if needs_synth:
            started["synth"] = pool.submit(synthesize_all, tmp_path_factory.mktemp("synth") / "cdktf.out")
            if _selected(session, "test_checkov"):
                from tests.test_checkov import scan_all

                workdir = tmp_path_factory.mktemp("checkov")
                started["checkov"] = pool.submit(lambda: scan_all(started["synth"].result(), workdir))
        if _selected(session, "test_bad_input"):
            from tests.test_bad_input import run_all_cases

            started["bad_input"] = pool.submit(run_all_cases, tmp_path_factory.mktemp("bad-input"))
        request.config.stash[EARLY] = started
        yield


def early_result(config: pytest.Config, name: str) -> Any:
    """What ``early_work`` started under ``name``, once done; None if it did not start it."""
    future = config.stash.get(EARLY, {}).get(name)
    return future.result() if future is not None else None


@pytest.fixture(scope="session")
def synth_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """cdktf.out of one `python main.py` run over every environment file."""
    return early_result(request.config, "synth") or synthesize_all(tmp_path_factory.mktemp("synth") / "cdktf.out")


@pytest.fixture(scope="session")
def stacks(synth_dir: Path) -> dict[str, dict]:
    """Parsed cdk.tf.json per environment name."""
    return {
        env: json.loads((synth_dir / "stacks" / f"dynamo-{env}" / "cdk.tf.json").read_text()) for env in ENVIRONMENTS
    }


# Time per environment for the Terraform and emulator layers, shown at the end of every
# run (make test does not pass -s, so a print from a test would be swallowed).
LAYER_TIMINGS = pytest.StashKey[list[str]]()


@pytest.fixture(scope="session")
def layer_timings(pytestconfig: pytest.Config) -> list[str]:
    return pytestconfig.stash.setdefault(LAYER_TIMINGS, [])


# The twin's report per stack (tests/test_twin.py): flows, drops and drill timings.
TWIN_REPORTS = pytest.StashKey[list]()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    lines = config.stash.get(LAYER_TIMINGS, [])
    if lines:
        terminalreporter.section("Terraform and emulator layers: time per environment")
        for line in lines:
            terminalreporter.write_line(line)
    reports = config.stash.get(TWIN_REPORTS, [])
    if reports:
        terminalreporter.section("The twin: what each stack did when it ran")
        for report in reports:
            for line in report.lines():
                terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def terraform(tmp_path_factory: pytest.TempPathFactory) -> OfflineTerraform:
    """terraform and a CLI config for the local provider mirror (skips loudly where there is none)."""
    return offline_terraform(tmp_path_factory.mktemp("terraform"))


@pytest.fixture(scope="session", autouse=True)
def provider_seam_runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """Starts the slow synths of tests/test_provider_seam.py (~15 s of one core) when the
    session begins, so they run alongside the other tests; None when none of those tests run."""
    if not any(item.nodeid.startswith("tests/test_provider_seam.py") for item in request.session.items):
        yield None
        return
    from tests.test_provider_seam import start_background_runs

    runs = start_background_runs(tmp_path_factory)
    yield runs
    for _, run in runs.values():
        run.stop()
