"""The paths no shipped environment takes: frontend on the GPU fleet, spot, internal ALB,
HCP Terraform backend, WAF, a served model name, a single frontend without request
migration. Synthesized once from tests/variants/variant.toml."""

from __future__ import annotations

import json

import pytest

from environments.loader import load
from tests.conftest import PROJECT_DIR, run_main
from tests.stack_json import containers, environment_of, main_container, one, reference_to, resources
from tests.terraform_env import OfflineTerraform, failure, run_terraform
from tests.twin import collector

VARIANT_FILE = PROJECT_DIR / "tests" / "variants" / "variant.toml"


@pytest.fixture(scope="module")
def variant(tmp_path_factory: pytest.TempPathFactory):
    directory = tmp_path_factory.mktemp("variant")
    path = VARIANT_FILE
    result = run_main("--config", str(path), "--outdir", str(directory / "out"))
    assert result.returncode == 0, result.stderr
    stack_dir = directory / "out" / "stacks" / "dynamo-variant"
    return load(path), json.loads((stack_dir / "cdk.tf.json").read_text()), stack_dir


def test_frontend_on_the_gpu_fleet_uses_the_capacity_provider_without_gpus(variant):
    env, stack, _ = variant
    assert env.frontend.placement == "gpu_fleet"
    task = one(stack, "aws_ecs_task_definition", "frontend/frontend/task")
    assert task["requires_compatibilities"] == ["EC2"] and "ephemeral_storage" not in task
    container = main_container(task)
    assert "resourceRequirements" not in container
    # NVIDIA's runtime is the GPU instances' default (for the GPU metrics daemon) and Dynamo's
    # image asks for every GPU: "void" gives the frontend none.
    assert environment_of(container)["NVIDIA_VISIBLE_DEVICES"] == "void"
    service = one(stack, "aws_ecs_service", "frontend/frontend/service")
    assert "launch_type" not in service
    assert service["capacity_provider_strategy"][0]["capacity_provider"] == reference_to(
        stack, "aws_ecs_capacity_provider", "gpu-cluster/capacity-provider", "name"
    )
    assert service["cluster"] == reference_to(stack, "aws_ecs_cluster", "gpu-cluster/cluster", "arn")
    target = one(stack, "aws_appautoscaling_target", "autoscaling/frontend-target")
    assert "gpu-cluster" in target["resource_id"]


def test_workers_serve_the_configured_model_name(variant):
    env, stack, _ = variant
    assert env.model.served_model_name
    for role in env.gpu_workers():
        container = main_container(one(stack, "aws_ecs_task_definition", f"{role}/{role}/task"))
        command = container["command"]
        assert command[command.index("--model") + 1] == env.model.name
        assert command[command.index("--served-model-name") + 1] == env.model.served_model_name


def test_one_frontend_without_migration_runs_neither_replica_sync_nor_migration(variant):
    env, stack, _ = variant
    assert (env.frontend.router_mode, env.frontend.max_count, env.frontend.migration_limit) == ("kv", 1, 0)
    container = main_container(one(stack, "aws_ecs_task_definition", "frontend/frontend/task"))
    assert "--router-replica-sync" not in container["command"]
    assert "--migration-limit" not in container["command"]


def test_spot_fleet_uses_a_mixed_instances_policy(variant):
    env, stack, _ = variant
    group = one(stack, "aws_autoscaling_group", "gpu-cluster/asg")
    policy = group["mixed_instances_policy"]
    assert policy["instances_distribution"]["spot_allocation_strategy"] == "price-capacity-optimized"
    assert policy["launch_template"]["override"] == [{"instance_type": env.gpu_fleet.instance_type}]
    assert "launch_template" not in group
    assert "instance_type" not in one(stack, "aws_launch_template", "gpu-cluster/launch-template")


def test_internal_alb_lives_in_private_subnets_and_admits_only_the_allowed_cidrs(variant):
    env, stack, _ = variant
    balancer = one(stack, "aws_lb", "load-balancer/alb")
    assert balancer["internal"] is True
    assert all("private" in subnet for subnet in balancer["subnets"])
    alb_group = reference_to(stack, "aws_security_group", "security-groups/alb", "id")
    cidrs = {
        rule["cidr_ipv4"]
        for rule in resources(stack, "aws_vpc_security_group_ingress_rule").values()
        if rule["security_group_id"] == alb_group
    }
    assert cidrs == set(env.load_balancer.allowed_cidrs)


def test_waf_is_associated_and_the_backend_is_an_hcp_workspace(variant):
    env, stack, _ = variant
    (association,) = resources(stack, "aws_wafv2_web_acl_association").values()
    assert association["web_acl_arn"] == env.load_balancer.waf_acl_arn
    assert association["resource_arn"] == reference_to(stack, "aws_lb", "load-balancer/alb", "arn")
    cloud = stack["terraform"]["cloud"]
    assert cloud["organization"] == "example-org"
    assert cloud["workspaces"]["name"] == env.backend.workspace


@pytest.mark.terraform
def test_variant_validates(variant, terraform: OfflineTerraform):
    _, _, stack_dir = variant
    init = run_terraform(terraform, ["init", "-backend=false", "-input=false", "-no-color"], stack_dir)
    assert init.returncode == 0, failure("terraform init -backend=false", init)
    validate = run_terraform(terraform, ["validate", "-no-color"], stack_dir)
    assert validate.returncode == 0, failure("terraform validate", validate)


def test_metrics_are_also_remote_written_to_the_configured_prometheus_workspace(variant):
    """A second pipeline per collector: cumulative (as remote write expects), SigV4-signed, and
    each task role may write to that workspace only."""
    env, stack, _ = variant
    workspace = env.metrics.amp_workspace_arn
    assert workspace is not None
    for body in resources(stack, "aws_ecs_task_definition").values():
        for container in containers(body):
            if container["name"] != "metrics":
                continue
            config = collector.config_of(container)
            remote = config["service"]["pipelines"]["metrics/prometheus"]
            assert remote["exporters"] == ["prometheusremotewrite"] and "cumulativetodelta" not in remote["processors"]
            exporter = config["exporters"]["prometheusremotewrite"]
            assert exporter["endpoint"] == (
                "https://aps-workspaces.us-east-1.amazonaws.com/workspaces/ws-01234567-89ab-cdef-0123-456789abcdef"
                "/api/v1/remote_write"
            )
            assert exporter["auth"] == {"authenticator": "sigv4auth"}
            assert config["extensions"]["sigv4auth"] == {"region": "us-east-1", "service": "aps"}
            assert "sigv4auth" in config["service"]["extensions"]
    writers = [
        statement
        for body in resources(stack, "aws_iam_role_policy").values()
        for statement in json.loads(body["policy"])["Statement"]
        if "aps:RemoteWrite" in statement["Action"]
    ]
    assert len(writers) == 3 and all(statement["Resource"] == workspace for statement in writers)
