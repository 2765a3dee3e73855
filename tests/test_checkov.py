"""Checkov over every synthesized stack: zero unexplained findings.

Checkov runs offline (no API key, no guideline download), once per stack per session,
with nothing skipped on its command line; every accepted finding is listed, with its
reason and environments, in tests/checkov_skips.toml, and nowhere else.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import subprocess
import sys
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ENVIRONMENTS, early_result, unreviewed

SKIPS_FILE = Path(__file__).resolve().parent / "checkov_skips.toml"
CHECKOV = Path(sys.executable).parent / "checkov"
# Every stack has well over this many passing checks; far fewer means Checkov parsed
# little or nothing (a vacuous pass), not that the stack got simpler.
MIN_PASSED = 150
# cdktf's unique ids end in an 8-hex-digit hash of the construct path.
CDKTF_HASH = re.compile(r"_[0-9A-F]{8}$")


@dataclass(frozen=True)
class Skip:
    check: str
    resources: tuple[str, ...]
    environments: tuple[str, ...]
    reason: str

    def matches(self, environment: str, finding: dict[str, Any]) -> bool:
        return environment in self.environments and self.matches_elsewhere(finding)

    def matches_elsewhere(self, finding: dict[str, Any]) -> bool:
        """The same check on the same resource, whatever the environment."""
        return finding["check_id"] == self.check and any(
            fnmatch.fnmatchcase(resource_name(finding), pattern) for pattern in self.resources
        )


def load_skips() -> tuple[list[Skip], dict[str, str]]:
    document = tomllib.loads(SKIPS_FILE.read_text())
    skips = [
        Skip(entry["check"], tuple(entry["resources"]), tuple(entry["environments"]), " ".join(entry["reason"].split()))
        for entry in document.get("skip", [])
    ]
    containers = {entry["name"]: " ".join(entry["reason"].split()) for entry in document.get("container", [])}
    return skips, containers


def resource_name(finding: dict[str, Any]) -> str:
    """``resource.security-groups_in-alb-80-0_BA6A4AE5`` -> ``security-groups_in-alb-80-0``."""
    return CDKTF_HASH.sub("", finding["resource"].split(".", 1)[-1])


def scannable_copy(stack_dir: Path, workdir: Path) -> Path:
    """The stack without its top-level `moved` blocks, which checkov 3.3.30's terraform_json
    parser cannot read (it takes every top-level block as labelled: "this method receives
    only dicts", and the whole file then counts as a parsing error). A moved block only
    renames a resource in the state; it configures nothing checkov checks."""
    document = json.loads((stack_dir / "cdk.tf.json").read_text())
    if "moved" not in document:
        return stack_dir
    copy = workdir / "scanned" / stack_dir.name
    copy.mkdir(parents=True)
    document.pop("moved")
    (copy / "cdk.tf.json").write_text(json.dumps(document, indent=2))
    return copy


def run_checkov(stack_dir: Path, workdir: Path) -> dict[str, Any]:
    stack_dir = scannable_copy(stack_dir, workdir)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("BC_", "PRISMA_", "CKV_"))}
    # Offline: no platform metadata or guideline download, no PyPI update check (the
    # banner module asks PyPI on import otherwise), nothing uploaded (no API key).
    env.update({"BC_SKIP_MAPPING": "TRUE", "CKV_SKIP_PACKAGE_UPDATE_CHECK": "TRUE", "LOG_LEVEL": "WARNING"})
    result = subprocess.run(
        [
            str(CHECKOV),
            "--directory",
            str(stack_dir),
            "--framework",
            "terraform_json",
            "--output",
            "json",
            "--skip-download",
            "--no-fail-on-crash",
        ],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode in (0, 1), f"checkov crashed on {stack_dir}:\n{result.stderr[-3000:]}"
    report = json.loads(result.stdout)
    assert isinstance(report, dict) and report.get("check_type") == "terraform_json", (
        f"unexpected checkov output for {stack_dir}: {result.stdout[:500]}"
    )
    return report


def scan_all(synth_dir: Path, workdir: Path) -> dict[str, dict[str, Any]]:
    """Checkov's JSON report per environment; the three scans run side by side."""
    with ThreadPoolExecutor(max_workers=len(ENVIRONMENTS)) as pool:
        futures = {
            env: pool.submit(run_checkov, synth_dir / "stacks" / f"dynamo-{env}", workdir) for env in ENVIRONMENTS
        }
        return {env: future.result() for env, future in futures.items()}


@pytest.fixture(scope="session")
def checkov_reports(
    request: pytest.FixtureRequest, synth_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, Any]]:
    """Started with the session (conftest.py, early_work) when this module's tests are selected."""
    return early_result(request.config, "checkov") or scan_all(synth_dir, tmp_path_factory.mktemp("checkov"))


def describe(finding: dict[str, Any]) -> str:
    lines = finding.get("file_line_range") or ["?", "?"]
    guideline = finding.get("guideline") or f"(offline: no link) {finding.get('check_class', '')}"
    return (
        f"{finding['check_id']} {finding['check_name']}\n"
        f"    resource:  {finding['resource']}  ({finding['file_path']}:{lines[0]}-{lines[1]})\n"
        f"    guideline: {guideline}"
    )


def test_skips_file_is_specific() -> None:
    skips, containers = load_skips()
    assert skips, "tests/checkov_skips.toml lists no suppressions: the other tests would not notice it being unread"
    seen = set()
    for skip in skips:
        assert re.fullmatch(r"CKV2?_AWS_\d+", skip.check), f"{skip.check}: name one Checkov check id"
        assert skip.resources and all(pattern.strip("*?") for pattern in skip.resources), (
            f"{skip.check}: name the resources, not all of them"
        )
        assert skip.environments and set(skip.environments) <= set(ENVIRONMENTS), (
            f"{skip.check}: environments must be among {ENVIRONMENTS}"
        )
        assert len(skip.reason) >= 80, f"{skip.check}: give a reason specific to this project"
        key = (skip.check, skip.resources)
        assert key not in seen, f"{skip.check} {skip.resources} is listed twice"
        seen.add(key)
    for name, reason in containers.items():
        assert len(reason) >= 40, f"container {name}: give a reason"


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_checkov_has_no_unexplained_findings(
    environment: str, checkov_reports: dict[str, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    report = checkov_reports[environment]
    summary = report["summary"]
    failed = report["results"]["failed_checks"]
    skips, _ = load_skips()
    suppressed = [(finding, skip) for finding in failed for skip in skips if skip.matches(environment, finding)]
    suppressed_ids = {id(finding) for finding, _ in suppressed}
    unexplained = [finding for finding in failed if id(finding) not in suppressed_ids]
    if not any(environment in skip.environments for skip in skips):
        # A new environment file that no entry names yet: a finding that an entry explains for
        # another environment (same check, same resource) is accepted for that reason, and
        # said to be unreviewed; one that no entry explains still fails.
        explained_elsewhere = {
            id(finding): next((skip for skip in skips if skip.matches_elsewhere(finding)), None)
            for finding in unexplained
        }
        borrowed = [
            (finding, explained_elsewhere[id(finding)]) for finding in unexplained if explained_elsewhere[id(finding)]
        ]
        unexplained = [finding for finding in unexplained if not explained_elsewhere[id(finding)]]
        suppressed += borrowed
    else:
        borrowed = []

    with capsys.disabled():
        print(
            f"\ncheckov dynamo-{environment}: {summary['passed']} passed, {len(unexplained)} failed, "
            f"{len(suppressed)} suppressed (tests/checkov_skips.toml), checkov {summary.get('checkov_version')}"
        )
        for finding, skip in sorted(suppressed, key=lambda pair: (pair[0]["check_id"], pair[0]["resource"])):
            print(f"  skipped {finding['check_id']:<12} {resource_name(finding):<48} {skip.reason[:110]}…")

    assert summary["parsing_errors"] == 0, f"checkov could not parse dynamo-{environment}"
    assert summary["passed"] >= MIN_PASSED, (
        f"only {summary['passed']} checks passed on dynamo-{environment}: did Checkov read the stack?"
    )
    assert not unexplained, (
        f"{len(unexplained)} Checkov finding(s) in dynamo-{environment}; "
        "fix them or explain them in tests/checkov_skips.toml:\n"
        + "\n".join(describe(finding) for finding in unexplained)
    )
    if borrowed:
        sources = sorted({env for _, skip in borrowed for env in skip.environments})
        unreviewed(
            f"dynamo-{environment} is in no entry of tests/checkov_skips.toml: {len(borrowed)} findings are accepted "
            "for the "
            f'reasons given for {", ".join(sources)}; review them and add "{environment}" to those entries'
        )


def test_every_suppression_still_matches(checkov_reports: dict[str, dict[str, Any]]) -> None:
    """A suppression that matches nothing in one of its environments is stale or too broad."""
    skips, _ = load_skips()
    stale = [
        f"{skip.check} {list(skip.resources)} in {environment}"
        for skip in skips
        for environment in skip.environments
        if not any(
            skip.matches(environment, finding) for finding in checkov_reports[environment]["results"]["failed_checks"]
        )
    ]
    assert not stale, (
        "suppressions in tests/checkov_skips.toml that match no finding (remove them or narrow `environments`):\n"
        + "\n".join(stale)
    )


def test_skip_matching_is_not_vacuous() -> None:
    """The matcher itself: a listed resource in a listed environment matches, anything else does not."""
    skip = Skip("CKV_AWS_150", ("load-balancer_alb",), ("dev",), "x")
    finding = {"check_id": "CKV_AWS_150", "resource": "resource.load-balancer_alb_15AADC07"}
    assert skip.matches("dev", finding)
    assert not skip.matches("prod", finding)
    assert not skip.matches("dev", {**finding, "check_id": "CKV_AWS_91"})
    assert not skip.matches("dev", {**finding, "resource": "aws_lb.load-balancer_alb-other_15AADC07"})
    assert skip.matches_elsewhere(finding) and not skip.matches_elsewhere({**finding, "check_id": "CKV_AWS_91"})


def container_definitions(stack: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (address, container)
        for address, task in stack["resource"].get("aws_ecs_task_definition", {}).items()
        for container in json.loads(task["container_definitions"])
    ]


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_containers_are_hardened(environment: str, stacks: dict[str, dict]) -> None:
    """What Checkov cannot see: cdktf writes container_definitions as a JSON string."""
    _, writable_allowed = load_skips()
    problems = []
    containers = container_definitions(stacks[environment])
    assert containers, f"no container definitions in dynamo-{environment}"
    for address, container in containers:
        name = container["name"]
        if container.get("privileged") is not False:
            problems.append(f"{address}/{name}: privileged must be false (no config flag asks for it)")
        if container.get("readonlyRootFilesystem") is not True and name not in writable_allowed:
            problems.append(
                f"{address}/{name}: writable root filesystem; make it read-only or explain it under [[container]] in "
                f"{SKIPS_FILE.name}"
            )
        if container.get("readonlyRootFilesystem") is True and name in writable_allowed:
            problems.append(f"{address}/{name}: now read-only; remove its [[container]] entry from {SKIPS_FILE.name}")
        if (container.get("linuxParameters") or {}).get("capabilities", {}).get("add"):
            problems.append(f"{address}/{name}: adds Linux capabilities")
        if container.get("user") in ("0", "root"):
            problems.append(f"{address}/{name}: runs explicitly as root")
        if container.get("logConfiguration", {}).get("logDriver") != "awslogs":
            problems.append(f"{address}/{name}: logs must go to CloudWatch (awslogs)")
    assert not problems, "\n".join(problems)
