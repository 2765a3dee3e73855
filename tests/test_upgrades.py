"""Upgrade plans are tests: routine changes planned against an applied stack in the emulator.

staging is applied once; every row of tests/upgrade_table.py is synthesized as a variant of
environments/staging.toml and planned against a copy of that state (tests/emulator/upgrades.py).
Each plan may take exactly the actions its row allows; nothing on the serving path or
holding state is destroyed first. Rows marked `apply` are applied too, and what the
emulator can show of them is checked: the order Terraform applied them in, the instance
refresh the GPU group started, the services and listeners that result.
"""

from __future__ import annotations

import time
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.emulator.harness import PROJECT_DIR, Emulator
from tests.emulator.upgrades import PARALLEL_PLANS, Planned, UpgradePlans, emulator_client
from tests.terraform_env import OfflineTerraform
from tests.upgrade_table import BY_NAME, CHANGES, REPLACE_CBD, violations

pytestmark = pytest.mark.emulator

ENVIRONMENT = "staging"


class Upgrades:
    def __init__(self, runner: UpgradePlans, results: dict[str, Planned], emulator: Emulator, region: str) -> None:
        self.runner = runner
        self.results = results
        self.emulator = emulator
        self.region = region

    def client(self, service: str) -> Any:
        return emulator_client(self.emulator, service, self.region)


@pytest.fixture(scope="module")
def upgrades(
    terraform: OfflineTerraform, tmp_path_factory: pytest.TempPathFactory, layer_timings: list[str]
) -> Iterator[Upgrades]:
    """The applied base and every planned row; the emulator stays up while this module's tests read it."""
    workdir = tmp_path_factory.mktemp("upgrades")
    region = tomllib.loads((PROJECT_DIR / "environments" / f"{ENVIRONMENT}.toml").read_text())["region"]
    start = time.monotonic()
    with Emulator(workdir / "moto", [region]) as emulator:
        runner = UpgradePlans(ENVIRONMENT, workdir / "plans", terraform, emulator, region)
        applied = runner.apply_base()
        if applied.returncode != 0:
            pytest.fail(
                f"applying dynamo-{ENVIRONMENT} failed: {applied.report()}"
                f"\n--- emulator errors ---\n{emulator.errors()}"
            )
        with ThreadPoolExecutor(max_workers=1) as side:
            replan = side.submit(runner.replan_base)
            results = runner.plan_all()
            replan.result()
        base = ", ".join(f"{step.name} {step.seconds:.0f}s" for step in runner.steps)
        layer_timings.append(f"dynamo-{ENVIRONMENT} upgrade plans: base {base}")
        for name, planned in results.items():
            layer_timings.append(f"  {name:<22} {planned.timing()}")
        layer_timings.append(
            f"upgrade layer, {len(results)} changes ({PARALLEL_PLANS} at a time): {time.monotonic() - start:.0f}s "
            "wall clock"
        )
        yield Upgrades(runner, results, emulator, region)


def test_the_unchanged_file_replans_empty(upgrades: Upgrades) -> None:
    """The base the other plans start from matches the emulator (they plan with -refresh=false)."""
    step = next(step for step in upgrades.runner.steps if step.name == "re-plan")
    assert step.returncode == 0, f"the re-plan of the unchanged file is not empty:\n{step.report()}"


@pytest.mark.parametrize("name", [change.name for change in CHANGES])
def test_plan_takes_only_the_actions_the_table_allows(name: str, upgrades: Upgrades) -> None:
    planned = upgrades.results[name]
    assert planned.error is None, planned.error
    problems = violations(planned.change, planned.observed)
    details = "\n".join(
        f"  {resource.action:<12} {resource.path or resource.address}" for resource in planned.resources
    )
    assert not problems, f"{name} ({planned.change.what}): " + "; ".join(problems) + f"\nplanned:\n{details}"


def planned_after(planned: Planned, resource_type: str) -> list[dict[str, Any]]:
    """The planned values of every changed resource of a type."""
    found = []
    for change in planned.plan["resource_changes"]:
        if change["type"] == resource_type and change["change"]["actions"] not in (["no-op"], ["read"], ["delete"]):
            found.append(change["change"]["after"])
    return found


def test_replaced_task_definitions_keep_their_old_revision(upgrades: Upgrades) -> None:
    """Every new revision in any plan leaves the old one registered, so a service can roll back to it."""
    checked = 0
    for planned in upgrades.results.values():
        for after in planned_after(planned, "aws_ecs_task_definition"):
            assert after["skip_destroy"] is True, (
                f"{planned.change.name}: {after['family']} would deregister its old revision"
            )
            checked += 1
    assert checked >= 3


def configured(planned: Planned, address: str) -> dict[str, Any]:
    """A resource's configuration as Terraform read it (depends_on, lifecycle)."""
    for resource in planned.plan["configuration"]["root_module"]["resources"]:
        if resource["address"] == address:
            return resource
    raise AssertionError(f"{address} not in the configuration")


def test_services_wait_for_the_policies_their_tasks_need(upgrades: Upgrades) -> None:
    planned = upgrades.results["hf_token_added"]
    (policy,) = [resource.address for resource in planned.resources if resource.type == "aws_iam_role_policy"]
    services = [resource.address for resource in planned.resources if resource.type == "aws_ecs_service"]
    assert services
    for service in services:
        assert policy in configured(planned, service).get("depends_on", []), (
            f"{service} may start tasks before {policy} exists"
        )


def events(planned: Planned, kind: str, action: str) -> dict[str, int]:
    """Address -> index of the first `terraform apply -json` event of this kind and action."""
    found: dict[str, int] = {}
    for index, event in enumerate(planned.applied or []):
        hook = event.get("hook", {})
        if event.get("type") == kind and hook.get("action") == action:
            found.setdefault(hook["resource"]["addr"], index)
    return found


def test_moving_the_frontend_creates_the_new_service_before_the_old_one_goes(upgrades: Upgrades) -> None:
    planned = upgrades.results["frontend_on_gpu_fleet"]
    assert planned.applied is not None and planned.error is None, planned.error
    (service,) = [resource.address for resource in planned.resources if resource.type == "aws_ecs_service"]
    created = events(planned, "apply_complete", "create")
    deleting = events(planned, "apply_start", "delete")
    assert service in created and service in deleting, f"{service}: no create and delete in the apply"
    assert created[service] < deleting[service], "the old frontend service was deleted before the new one existed"
    for resource in planned.resources:
        if resource.action == REPLACE_CBD and resource.type.startswith("aws_appautoscaling"):
            assert created[resource.address] < deleting[resource.address], f"{resource.address}: old one deleted first"
    after = planned_after(planned, "aws_ecs_service")[0]
    assert after["wait_for_steady_state"] is True, "without waiting, the old service is deleted before the new one runs"

    ecs = upgrades.client("ecs")
    gpu_cluster, fargate_cluster = f"dynamo-{ENVIRONMENT}-gpu", f"dynamo-{ENVIRONMENT}-fargate"
    name = after["name"]
    (moved,) = ecs.describe_services(cluster=gpu_cluster, services=[name])["services"]
    assert moved["status"] == "ACTIVE"
    assert moved["loadBalancers"][0]["targetGroupArn"] == after["load_balancer"][0]["target_group_arn"]
    old = ecs.describe_services(cluster=fargate_cluster, services=[name])["services"]
    assert [service["status"] for service in old] in ([], ["INACTIVE"]), "the Fargate frontend is still there"
    targets = upgrades.client("application-autoscaling").describe_scalable_targets(ServiceNamespace="ecs")[
        "ScalableTargets"
    ]
    frontend_targets = [target["ResourceId"] for target in targets if target["ResourceId"].endswith(f"/{name}")]
    assert frontend_targets == [f"service/{gpu_cluster}/{name}"]


def test_a_certificate_switches_port_80_in_place_after_https_exists(upgrades: Upgrades) -> None:
    """Adding a certificate: port 80 redirects only once 443 listens. Removing it: no order is
    asserted; Terraform does not order an update after the delete of what the old
    configuration depended on (measured: it deletes HTTPS first, so for the seconds
    between, port 80 redirects to a closed 443; HTTPS clients lose service anyway)."""
    on, off = upgrades.results["certificate_on"], upgrades.results["certificate_off"]
    for planned in (on, off):
        assert planned.applied is not None and planned.error is None, planned.error
    (port_80,) = [
        resource.address
        for resource in on.resources
        if resource.type == "aws_lb_listener" and resource.action == "update"
    ]
    (https,) = [
        resource.address
        for resource in on.resources
        if resource.type == "aws_lb_listener" and resource.action == "create"
    ]
    assert events(on, "apply_complete", "create")[https] < events(on, "apply_start", "update")[port_80], (
        "port 80 redirected before HTTPS existed"
    )
    assert [
        resource.address
        for resource in off.resources
        if resource.type == "aws_lb_listener" and resource.action == "update"
    ] == [port_80]

    elbv2 = upgrades.client("elbv2")
    (balancer,) = [
        lb
        for lb in elbv2.describe_load_balancers()["LoadBalancers"]
        if lb["LoadBalancerName"] == f"dynamo-{ENVIRONMENT}"
    ]
    listeners = elbv2.describe_listeners(LoadBalancerArn=balancer["LoadBalancerArn"])["Listeners"]
    assert [(listener["Port"], listener["DefaultActions"][0]["Type"]) for listener in listeners] == [(80, "forward")]


def test_a_new_instance_type_refreshes_the_gpu_fleet_through_ecs(upgrades: Upgrades) -> None:
    planned = upgrades.results["instance_type"]
    assert planned.applied is not None and planned.error is None, planned.error
    (group,) = planned_after(planned, "aws_autoscaling_group")
    autoscaling = upgrades.client("autoscaling")
    refreshes = autoscaling.describe_instance_refreshes(AutoScalingGroupName=group["name"])["InstanceRefreshes"]
    assert len(refreshes) == 1, f"expected one instance refresh started by the apply, got {refreshes}"
    (refresh,) = refreshes
    preferences = refresh["Preferences"]
    # Protected instances are replaced, not skipped: managed termination protection protects every busy one.
    assert preferences["ScaleInProtectedInstances"] == "Refresh"
    # Launch before terminating: the GPU capacity never drops below the group's desired count.
    assert (preferences["MinHealthyPercentage"], preferences["MaxHealthyPercentage"]) == (100, 200)
    # The refresh rolls to the group's launch template, which the same apply has just set to
    # the new version (provider 5.100 updates the group first and starts the refresh without
    # a DesiredConfiguration; a later provider may name the version there too).
    ec2 = upgrades.client("ec2")
    (template,) = ec2.describe_launch_templates(LaunchTemplateNames=[f"dynamo-{ENVIRONMENT}-gpu"])["LaunchTemplates"]
    latest = {"LaunchTemplateId": template["LaunchTemplateId"], "Version": str(template["LatestVersionNumber"])}
    assert latest["Version"] != "1", "the instance type change made no new template version"
    (described,) = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group["name"]])["AutoScalingGroups"]
    assert {key: described["LaunchTemplate"][key] for key in latest} == latest, (
        "the group does not launch the new version"
    )
    assert refresh.get("DesiredConfiguration", {}).get("LaunchTemplate", latest) == latest
    (version,) = ec2.describe_launch_template_versions(
        LaunchTemplateId=latest["LaunchTemplateId"], Versions=[latest["Version"]]
    )["LaunchTemplateVersions"]
    assert version["LaunchTemplateData"]["InstanceType"] == BY_NAME["instance_type"].edits["gpu_fleet.instance_type"]

    # ECS keeps draining and protecting: the capacity provider and the group's protection are untouched.
    (provider,) = upgrades.client("ecs").describe_capacity_providers(capacityProviders=[f"dynamo-{ENVIRONMENT}-gpu"])[
        "capacityProviders"
    ]
    asg_provider = provider["autoScalingGroupProvider"]
    assert (asg_provider["managedTerminationProtection"], asg_provider["managedDraining"]) == ("ENABLED", "ENABLED")
    assert described["NewInstancesProtectedFromScaleIn"] is True
