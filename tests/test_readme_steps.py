"""The README's "Adding an environment", done on a copy of the project, leaves make test-fast green.

Steps 1-2 copy staging.toml to qa.toml with its own name, CIDR and backend key; step 3
synthesizes it; step 4 runs the tests. The copy runs make test-fast's own selection (read
from the Makefile, which leaves this test out, so it never runs itself) with this project's
interpreter; nothing is installed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from tests.conftest import PROJECT_DIR, copy_project, run_main

pytestmark = pytest.mark.project_copy

SNAPSHOTS = Path("tests/__snapshots__/test_snapshots")


def fast_selection() -> str:
    match = re.search(
        r"^test-fast:.*\n(?:#.*\n)*\t\$\(PY\) -m pytest -m '([^']+)'$",
        (PROJECT_DIR / "Makefile").read_text(),
        re.MULTILINE,
    )
    assert match, "no `$(PY) -m pytest -m '...'` line under test-fast: in the Makefile"
    assert "not project_copy" in match.group(1), (
        "make test-fast must leave out the project_copy marker, or this test runs itself"
    )
    return match.group(1)


def add_qa(project: Path) -> None:
    """Steps 1 and 2, as the README words them: copy the closest file, then its own name, CIDR and key."""
    staging = (project / "environments" / "staging.toml").read_text()
    qa = staging
    for old, new in (
        ('name = "staging"', 'name = "qa"'),
        ('cidr = "10.20.0.0/16"', 'cidr = "10.40.0.0/16"'),
        ('key = "dynamo/staging.tfstate"', 'key = "dynamo/qa.tfstate"'),
    ):
        assert staging.count(old) == 1, (
            f"environments/staging.toml no longer has {old!r}: update this test and the README's steps"
        )
        qa = qa.replace(old, new)
    (project / "environments" / "qa.toml").write_text(qa)


def test_adding_an_environment_as_the_readme_says_keeps_the_tests_green(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    add_qa(project)

    synth = run_main("--env", "qa", cwd=project, project=project)
    assert synth.returncode == 0, synth.stderr
    assert synth.stderr == "", f"step 3 warned:\n{synth.stderr}"
    assert synth.stdout.startswith("dynamo-qa ")

    report = tmp_path / "report.xml"
    # The copy stands for a developer's machine: with CI=true, a first snapshot fails (it must be committed).
    env = {key: value for key, value in os.environ.items() if key not in ("CI", "PYTEST_ADDOPTS")}
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-m",
        fast_selection(),
        "-p",
        "no:cacheprovider",
        "-q",
        f"--junitxml={report}",
    ]
    result = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=1200)
    output = result.stdout + result.stderr
    assert result.returncode == 0, (
        f"make test-fast's selection failed in the copy with qa.toml added:\n{output[-8000:]}"
    )

    cases = ElementTree.parse(report).getroot().iter("testcase")
    qa_cases = [case for case in cases if "[qa]" in case.get("name", "")]
    assert len(qa_cases) >= 10, f"only {len(qa_cases)} tests ran for qa: does the test list follow environments/*.toml?"
    assert all(case.find("skipped") is None for case in qa_cases)

    new_snapshot = SNAPSHOTS / "test_synthesized_stack_matches_the_reviewed_snapshot[qa].json"
    assert (project / new_snapshot).is_file(), "the first run did not write qa's snapshot"
    assert f"dynamo-qa had no snapshot: wrote {new_snapshot}; review it and commit it" in output
    assert "dynamo-qa is in no entry of tests/checkov_skips.toml" in output
    assert "twin-flows.json has no connections of dynamo-qa" in output
    for reviewed in (PROJECT_DIR / SNAPSHOTS).glob("*.json"):
        assert (project / SNAPSHOTS / reviewed.name).read_bytes() == reviewed.read_bytes(), (
            f"{reviewed.name} was rewritten"
        )
