"""The review of a real plan says what the review of synthesized output says.

staging is applied in the emulator (tests/emulator/upgrades.py), the issue's change (a Dynamo minor
release and more decode workers) is planned against it and shown with `terraform show -json`,
and `main.py review --plan-json` of that plan is compared with the synth-only review of the same edit:
the same resources with the same actions, the same flags, capacity and cost."""

from __future__ import annotations

import copy
import json
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from review.changes import plan_changes
from review.cli import synth_review
from review.cost import load_prices
from review.flows import INGRESS, recorded_flows
from review.render import EnvironmentReview, review
from review.stack import from_plan
from tests.conftest import run_main
from tests.emulator.harness import PROJECT_DIR, Emulator
from tests.emulator.upgrades import Planned, UpgradePlans
from tests.terraform_env import OfflineTerraform
from tests.test_review import STAGING_BUMP, TODAY, shipped, synthesize, variant
from tests.upgrade_table import Change

pytestmark = pytest.mark.emulator

ENVIRONMENT = "staging"
PLAN_SOURCE = "From `terraform show -json` of the plan: Terraform's own actions."
SYNTH_SOURCE = (
    "From synthesized output: actions inferred from the provider's schema; `terraform plan` is the authority."
)


@pytest.fixture(scope="module")
def planned(terraform: OfflineTerraform, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Planned]:
    workdir = tmp_path_factory.mktemp("review-plan")
    region = tomllib.loads((PROJECT_DIR / "environments" / f"{ENVIRONMENT}.toml").read_text())["region"]
    with Emulator(workdir / "moto", [region]) as emulator:
        runner = UpgradePlans(ENVIRONMENT, workdir / "plans", terraform, emulator, region)
        applied = runner.apply_base()
        if applied.returncode != 0:
            pytest.fail(f"applying dynamo-{ENVIRONMENT} failed: {applied.report()}\n{emulator.errors()}")
        result = runner.plan(Change("review_bump", "the issue's staging change", STAGING_BUMP, {}), runner.base)
        assert result.error is None, result.error
        yield result


@pytest.fixture(scope="module")
def both(planned: Planned, tmp_path_factory: pytest.TempPathFactory) -> tuple[EnvironmentReview, EnvironmentReview]:
    prices = load_prices()
    changed = variant(ENVIRONMENT, STAGING_BUMP, tmp_path_factory.mktemp("review-variant"))
    from_synth = synth_review(
        before=synthesize(shipped(ENVIRONMENT)),
        after=synthesize(changed),
        before_file=shipped(ENVIRONMENT),
        after_file=changed,
        prices=prices,
        today=TODAY,
    )
    return from_synth, plan_review(planned.plan, from_synth.settings)


def plan_review(plan: dict[str, Any], settings: list[str]) -> EnvironmentReview:
    name = f"dynamo-{ENVIRONMENT}"
    return review(
        before=from_plan(plan, name=name, side="before"),
        after=from_plan(plan, name=name, side="after"),
        changes=plan_changes(plan),
        settings=settings,
        from_plan=True,
        prices=load_prices(),
        today=TODAY,
        observed=recorded_flows(name),
    )


def test_the_plan_changes_the_resources_the_synth_review_names(both) -> None:
    synth, plan = both
    assert {(c.address, c.action) for c in plan.changes} == {(c.address, c.action) for c in synth.changes}


def test_the_plan_review_has_the_same_flags_capacity_and_cost(both) -> None:
    synth, plan = both
    assert plan.flags == synth.flags
    assert (plan.before, plan.after) == (synth.before, synth.after)
    assert (plan.cost_before, plan.cost_after) == (synth.cost_before, synth.cost_after)


def test_the_plan_review_reads_as_the_synth_review_but_for_its_source(both) -> None:
    """Every section, changed attribute paths and container fields included."""
    synth, plan = both
    assert plan.markdown.replace(PLAN_SOURCE, SYNTH_SOURCE) == synth.markdown
    assert (
        PLAN_SOURCE in plan.markdown and len([line for line in plan.markdown.splitlines() if "image: `" in line]) == 3
    )


def test_main_py_review_reads_the_plan_json(planned: Planned, tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(planned.plan))
    result = run_main("review", "--env", ENVIRONMENT, "--plan-json", str(path))
    assert result.returncode == 0, result.stderr
    assert PLAN_SOURCE in result.stdout
    assert "Dynamo 1.2 -> 1.3" in result.stdout


def test_a_rule_the_plan_deletes_is_checked_against_the_recorded_connections(planned: Planned) -> None:
    """The plan's values are AWS's ids (sg-...), not synth's references: the same connections are found."""
    plan = copy.deepcopy(planned.plan)
    (rule,) = [
        change
        for change in plan["resource_changes"]
        if change["type"] == INGRESS and "_in-frontend-from-workers_" in change["address"]
    ]
    assert str(rule["change"]["before"]["referenced_security_group_id"]).startswith("sg-")
    rule["change"].update(actions=["delete"], after=None)
    (flagged,) = [flag.text for flag in plan_review(plan, []).flags if flag.severity == "high"]
    assert flagged.startswith(
        "after this change the security groups drop `decode -> frontend:9101`, `prefill -> frontend:9101`: "
    ), flagged
