"""`main.py review`: routine changes to the shipped files, reviewed from synthesized stacks.

Stacks are synthesized in the pytest process (a few hundred milliseconds each, after the first)."""

from __future__ import annotations

import datetime
import json
import subprocess
import tempfile
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from environments.catalog import GPU_INSTANCE_TYPES
from environments.effective import toml_document
from environments.loader import ENVIRONMENTS_DIR, load
from environments.schema import Environment
from review.actions import DELETE, REPLACE, REPLACE_CBD
from review.capacity import capacity
from review.cli import main as review_main
from review.cli import synth_review
from review.cost import Prices, gpu_instances, load_prices
from review.render import EnvironmentReview
from review.stack import Stack, from_synth
from tests.conftest import PROJECT_DIR, run_main
from tests.emulator.upgrades import edited
from tests.upgrade_table import CHANGES, HF_TOKEN_SECRET, violations

TODAY = datetime.date(2026, 11, 26)
# The staging change the issue names: a Dynamo minor release and room for more decode workers
# (the fleet grows with it: surge rollouts need max_count + 1 workers of every role to fit).
STAGING_BUMP = {"image.tag": "1.3.0", "decode.max_count": 4, "gpu_fleet.max_instances": 8}


def synthesize(environment: Environment) -> Stack:
    from cdktf import App

    from components.stack import DynamoStack

    with tempfile.TemporaryDirectory(prefix="dynamo-ecs-review-") as outdir:
        app = App(outdir=outdir, skip_validation=False)
        DynamoStack(app, environment=environment)
        app.synth()
        document = json.loads((Path(outdir) / "stacks" / environment.stack_name / "cdk.tf.json").read_text())
    return from_synth(document, name=environment.stack_name)


def shipped(name: str) -> Environment:
    return load(ENVIRONMENTS_DIR / f"{name}.toml")


def variant(name: str, edits: dict[str, Any], directory: Path) -> Environment:
    """The shipped file with dotted-path edits, written and loaded as a user's file would be."""
    document = tomllib.loads((ENVIRONMENTS_DIR / f"{name}.toml").read_text())
    path = directory / f"{name}.toml"
    directory.mkdir(parents=True, exist_ok=True)
    path.write_text(toml_document(edited(document, edits)))
    return load(path)


@pytest.fixture(scope="module")
def prices() -> Prices:
    return load_prices()


@pytest.fixture(scope="module")
def base_stacks(stacks: dict[str, dict[str, Any]]) -> dict[str, tuple[Environment, Stack]]:
    """The shipped files and the session's synth of them (tests/conftest.py)."""
    return {name: (shipped(name), from_synth(stacks[name], name=f"dynamo-{name}")) for name in stacks}


def reviewed(base: tuple[Environment, Stack], changed: Environment, prices: Prices) -> EnvironmentReview:
    before_file, before = base
    return synth_review(
        before=before,
        after=synthesize(changed),
        before_file=before_file,
        after_file=changed,
        prices=prices,
        today=TODAY,
    )


@pytest.fixture(scope="module")
def review_of(base_stacks, prices, tmp_path_factory) -> Callable[[str, dict[str, Any]], EnvironmentReview]:
    """A shipped file with edits against the file as shipped; each edit is synthesized once per module."""
    done: dict[str, EnvironmentReview] = {}

    def review_of(name: str, edits: dict[str, Any]) -> EnvironmentReview:
        key = f"{name} {json.dumps(edits, sort_keys=True)}"
        if key not in done:
            done[key] = reviewed(base_stacks[name], variant(name, edits, tmp_path_factory.mktemp(name)), prices)
        return done[key]

    return review_of


@pytest.fixture(scope="module")
def staging_bump(review_of) -> EnvironmentReview:
    return review_of("staging", STAGING_BUMP)


def test_staging_image_bump_and_decode_max_count_review(staging_bump: EnvironmentReview, snapshot) -> None:
    assert staging_bump.markdown == snapshot


def test_staging_bump_names_the_file_changes_in_the_files_own_terms(staging_bump: EnvironmentReview) -> None:
    assert "`decode.max_count`: 2 -> 4" in staging_bump.settings
    assert '`image.tag`: "1.2.1" -> "1.3.0"' in staging_bump.settings


def test_staging_bump_rolls_services_to_new_revisions_and_replaces_nothing_on_the_serving_path(
    staging_bump: EnvironmentReview,
) -> None:
    actions = {(change.type, change.action) for change in staging_bump.changes}
    assert actions == {
        ("aws_ecs_task_definition", REPLACE_CBD),
        ("aws_ecs_service", "update"),
        ("aws_appautoscaling_target", "update"),
        ("aws_autoscaling_group", "update"),
        # decode's at-maximum alarm follows its new max_count.
        ("aws_cloudwatch_metric_alarm", "update"),
    }
    images = [line for line in staging_bump.markdown.splitlines() if "image: `" in line]
    assert len(images) == 3 and all(line.endswith("vllm-runtime:1.3.0`") for line in images)


def test_staging_bump_flags_the_dynamo_release_only(staging_bump: EnvironmentReview) -> None:
    (flag,) = staging_bump.flags
    assert flag.text.startswith("Dynamo 1.2 -> 1.3") and "twin" in flag.text


def test_staging_bump_capacity_before_and_after(staging_bump: EnvironmentReview) -> None:
    before, after = staging_bump.before, staging_bump.after
    assert before is not None
    assert (before.fleet_min, before.fleet_max, after.fleet_min, after.fleet_max) == (2, 6, 2, 8)
    decode = {role.name: role for role in after.roles}["decode"]
    assert (decode.min_tasks, decode.max_tasks, decode.gpus) == (1, 4, 1)
    assert (before.gpu_demand(at_max=True), after.gpu_demand(at_max=True)) == (4, 6)
    assert "| decode tasks | 1..2 | **1..4** |" in staging_bump.markdown


def test_staging_bump_costs_two_more_instances_at_the_maximum_only(
    staging_bump: EnvironmentReview, prices: Prices
) -> None:
    assert staging_bump.cost_before is not None and staging_bump.cost_after is not None
    hourly = prices.regions["us-east-1"]["gpu_instance_hourly"]["g6e.2xlarge"]
    old_min, old_max = staging_bump.cost_before.items["GPU instances"]
    new_min, new_max = staging_bump.cost_after.items["GPU instances"]
    assert new_min == old_min
    assert new_max.low - old_max.low == pytest.approx(2 * hourly * prices.hours_per_month)
    # 8 instances of $2.24208 an hour for 730 hours: $13,094 (6 were $9,820).
    assert "| GPU instances | $3,273 | $9,820 | $3,273 | $13,094 | $0 | +$3,273 |" in staging_bump.markdown


def test_cost_of_shipped_staging_checked_by_hand(base_stacks, prices: Prices) -> None:
    """staging at its minimum: 2 g6e.2xlarge, 1 NAT gateway, 1 ALB, a 2 vCPU / 8 GiB frontend with
    100 GiB of ephemeral storage (20 included), 3 etcd members and 1 NATS of 0.5 vCPU / 1 GiB, 18 alarms
    (10 on the load balancer and the services, 2 of the latency step policies, 6 on Dynamo's metrics),
    8 custom metrics (frontend 4, decode 1, prefill 1, GPUs 2: components/metrics.py)."""
    environment, stack = base_stacks["staging"]
    review = synth_review(
        before=None, after=stack, before_file=None, after_file=environment, prices=prices, today=TODAY
    )
    table = prices.regions["us-east-1"]
    hours = prices.hours_per_month
    frontend, control = environment.frontend, environment.control_plane
    assert (frontend.cpu, frontend.memory, frontend.ephemeral_storage_gib) == (2048, 8192, 100)
    assert (control.etcd.cpu, control.etcd.memory, control.nats.cpu, control.nats.memory) == (512, 1024, 512, 1024)
    expected = {
        "GPU instances": 2 * 2.24208 * 730,
        "GPU root volumes (gp3)": 2 * (200 * 0.08 + (500 - 125) * 0.04),
        "NAT gateways (without data processed)": 1 * (0.045 + 0.005) * 730,
        "Load balancer": (0.0225 + 1 * 0.008) * 730,
        "Fargate tasks": (2 * 0.04048 + 8 * 0.004445 + 80 * 0.000111 + 4 * (0.5 * 0.04048 + 1 * 0.004445)) * 730,
        # frontend, decode, prefill, 3 etcd members, NATS, and the GPU metrics daemon on each of the
        # 2 instances: 9 tasks of 2 GB a month at $0.50 a GB.
        "CloudWatch logs ingested": 9 * 2.0 * 0.50,
        "CloudWatch alarms": 18 * 0.10,
        "CloudWatch custom metrics": 8 * 0.30,
    }
    # The written-out numbers are the table's: if the table changes, this test says so.
    assert (table["gpu_instance_hourly"]["g6e.2xlarge"], table["nat_gateway_hourly"], hours) == (2.24208, 0.045, 730)
    assert review.cost_after is not None
    at_min = {item: pair[0].low for item, pair in review.cost_after.items.items()}
    assert at_min == pytest.approx(expected)
    assert review.cost_after.total(at_max=False).low == pytest.approx(sum(expected.values()))
    # On spot, G instances cost 28..62 % of on-demand (SkyPilot's catalog, review/prices.toml).
    assert prices.spot_range("g6e.2xlarge") == (0.28, 0.62)
    spot = f"${expected['GPU instances'] * 0.28:,.0f}..${expected['GPU instances'] * 0.62:,.0f} at the minimum"
    assert f"On spot (28%..62% of on-demand for G instances) the GPU instances would cost {spot}" in review.markdown


def test_a_certificate_added_to_prod_deletes_no_listener(base_stacks, prices, tmp_path: Path) -> None:
    """prod as shipped against prod without its certificate: port 80 switches to a redirect in place."""
    without = variant("prod", {"load_balancer.certificate_arn": None}, tmp_path)
    assert without.load_balancer.certificate_arn is None
    environment, stack = base_stacks["prod"]
    review = synth_review(
        before=synthesize(without), after=stack, before_file=without, after_file=environment, prices=prices, today=TODAY
    )
    listeners = {change.action for change in review.changes if change.type == "aws_lb_listener"}
    assert listeners == {"create", "update"}, review.changes
    assert not [change for change in review.changes if change.action in (DELETE, REPLACE)], review.changes
    assert not [flag for flag in review.flags if flag.severity == "high"], review.flags
    assert any("new ingress from 0.0.0.0/0" in flag.text and "443-443" in flag.text for flag in review.flags)


def test_moving_the_frontend_to_the_gpu_fleet_is_flagged_as_a_replacement_of_its_service(review_of) -> None:
    review = review_of("staging", {"frontend.placement": "gpu_fleet"})
    (service,) = [change for change in review.changes if change.type == "aws_ecs_service"]
    assert service.action == REPLACE_CBD and "cluster" in service.paths
    assert [flag for flag in review.flags if service.address in flag.text and "replaced" in flag.text]


@pytest.mark.parametrize("row", [change for change in CHANGES if not change.after], ids=lambda change: change.name)
def test_the_synth_review_takes_the_actions_the_upgrade_table_measured(row, review_of) -> None:
    """Every routine change the emulator plans (tests/upgrade_table.py), inferred from synth alone."""
    review = review_of("staging", row.edits)
    observed: dict[str, set[str]] = {}
    for change in review.changes:
        observed.setdefault(change.type, set()).add(change.action)
    assert not violations(row, observed), violations(row, observed)


def test_secrets_are_named_never_shown(review_of) -> None:
    review = review_of("staging", {"model.hf_token_secret_arn": HF_TOKEN_SECRET})
    assert "secret HF_TOKEN added" in review.markdown
    assert "`model.hf_token_secret_arn`: not set -> set" in review.settings
    assert HF_TOKEN_SECRET not in review.markdown
    assert "hf-token" not in review.markdown


def test_the_review_names_no_host_path_and_no_date_but_the_price_tables(staging_bump: EnvironmentReview) -> None:
    """Byte-identical output across processes (each with its own hash seed) is the snapshot's job."""
    assert "/tmp" not in staging_bump.markdown and str(PROJECT_DIR) not in staging_bump.markdown
    dates = {line for line in staging_bump.markdown.splitlines() if "2026-" in line}
    assert all("review/prices.toml dated" in line for line in dates), dates


def test_every_catalog_instance_type_has_a_price_in_every_region_or_a_reason_it_has_none(prices: Prices) -> None:
    priced = set(GPU_INSTANCE_TYPES) - set(prices.unpriced)
    assert set(prices.unpriced) <= set(GPU_INSTANCE_TYPES) and all(prices.unpriced.values())
    for region, table in prices.regions.items():
        assert set(table["gpu_instance_hourly"]) == priced, region
        assert all(price > 0 for price in table["gpu_instance_hourly"].values()), region
    assert {instance_type[:1] for instance_type in GPU_INSTANCE_TYPES} <= set(prices.spot_fraction)
    assert all(0 < low < high <= 1 for low, high in prices.spot_fraction.values())


def test_an_instance_type_without_an_on_demand_price_gets_no_estimate_and_the_reason(
    base_stacks, prices: Prices, tmp_path: Path
) -> None:
    unpriced = next(iter(prices.unpriced))
    review = reviewed(base_stacks["prod"], variant("prod", {"gpu_fleet.instance_type": unpriced}, tmp_path), prices)
    assert review.cost_after is None
    assert f"No estimate: AWS publishes no on-demand price for {unpriced} ({prices.unpriced[unpriced]})." in (
        review.markdown
    )


def test_a_price_table_older_than_a_year_adds_a_warning(base_stacks, prices: Prices) -> None:
    environment, stack = base_stacks["staging"]
    late = TODAY.replace(year=TODAY.year + 2)
    fresh, stale = (
        synth_review(before=None, after=stack, before_file=None, after_file=environment, prices=prices, today=day)
        for day in (prices.date, late)
    )
    assert "older than a year" not in fresh.markdown
    assert f"older than a year ({prices.date.isoformat()})" in stale.markdown


def test_the_minimum_counts_the_instances_the_minimum_tasks_need(base_stacks) -> None:
    """dev's fleet may shrink to 0 instances, but its one decode worker needs one."""
    _, dev = base_stacks["dev"]
    assert dev.of_type("aws_autoscaling_group")[0].values["min_size"] == 0
    assert gpu_instances(capacity(dev), at_max=False) == 1


def test_review_without_a_base_is_a_one_line_error() -> None:
    result = run_main("review")
    assert result.returncode == 2
    assert result.stderr.strip() == "main.py review: give a base: --base-ref GITREF, --base DIR or --plan-json FILE"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--env", "nope", "--base-ref", "HEAD"], "--env nope: no environments/nope.toml"),
        (["--env", "dev", "--plan-json", "missing.json"], "--plan-json missing.json: no such file"),
        (["--plan-json", "missing.json"], "--plan-json: name the plan's environment with exactly one --env NAME"),
        (["--base", "nowhere"], "--base nowhere: not a synth output directory"),
        (["--env", "dev", "--base-ref", "no-such-ref-anywhere"], "--base-ref no-such-ref-anywhere: not a commit"),
    ],
)
def test_review_input_mistakes_exit_2_with_one_line(args: list[str], message: str, capsys) -> None:
    """In this process (the command without a base, above, runs as users run it)."""
    assert review_main(args) == 2
    stderr = capsys.readouterr().err
    assert len(stderr.strip().splitlines()) == 1 and stderr.startswith(message), stderr


def test_review_against_an_earlier_synth_directory(synth_dir: Path) -> None:
    """The working tree against the session's synth of the same files: nothing changes."""
    result = run_main("review", "--env", "dev", "--base", str(synth_dir))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("# Infrastructure review\n\n## dynamo-dev\n")
    assert "**No resource changes.**" in result.stdout


def test_a_rollout_that_takes_the_only_decode_worker_down_is_flagged(review_of) -> None:
    review = review_of("staging", {"decode.rollout": "in_place"})
    (flag,) = [flag for flag in review.flags if "only decode task" in flag.text]
    assert flag.severity == "high" and 'rollout = "surge"' in flag.text


def test_turning_off_prods_deletion_protection_and_access_logs_is_flagged(review_of) -> None:
    review = review_of("prod", {"load_balancer.deletion_protection": False, "load_balancer.access_logs": False})
    high = [flag.text for flag in review.flags if flag.severity == "high"]
    assert any("deletion protection turned off" in text for text in high), high
    assert any("access logs turned off" in text for text in high), high


def test_a_new_secret_widens_iam_by_its_action_only(review_of) -> None:
    review = review_of("staging", {"model.hf_token_secret_arn": HF_TOKEN_SECRET})
    (flag,) = [flag for flag in review.flags if "IAM widens" in flag.text]
    assert "`secretsmanager:GetSecretValue`" in flag.text and "wildcard" not in flag.text


def test_review_against_a_git_ref_removes_its_worktree(tmp_path: Path) -> None:
    """With a plan, the ref gives only its environment files (no synth): an empty plan keeps this quick."""
    if not (PROJECT_DIR / ".git").exists():
        pytest.skip("SKIPPED: not a git checkout (a copy of the project): --base-ref needs one")
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"resource_changes": []}))
    listed = ["git", "-C", str(PROJECT_DIR), "worktree", "list", "--porcelain"]
    before = subprocess.run(listed, capture_output=True, text=True, timeout=60).stdout
    result = run_main("review", "--env", "dev", "--base-ref", "HEAD", "--plan-json", str(plan))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("# Infrastructure review\n\n## dynamo-dev\n")
    assert subprocess.run(listed, capture_output=True, text=True, timeout=60).stdout == before


def test_an_environment_removed_is_one_high_flag_and_no_cost(base_stacks, prices: Prices) -> None:
    environment, stack = base_stacks["staging"]
    review = synth_review(
        before=stack,
        after=Stack(stack.name, stack.region, {}),
        before_file=environment,
        after_file=None,
        prices=prices,
        today=TODAY,
    )
    assert {change.action for change in review.changes} == {DELETE}
    (flag,) = review.flags
    assert flag.severity == "high" and flag.text.startswith("every resource of dynamo-staging is destroyed")
    assert review.cost_after is not None and review.cost_after.total(at_max=True).high == 0
    assert "The environment file is gone" in review.markdown
