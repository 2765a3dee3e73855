"""Behaviour of the synthesized stacks, read from the JSON and checked against each environment file."""

from __future__ import annotations

import json
import shlex

import pytest

from environments import fit
from environments.loader import ENVIRONMENTS_DIR, load
from environments.schema import Environment, HcpBackendConfig, S3BackendConfig
from tests.conftest import ENVIRONMENTS
from tests.stack_json import construct_path, environment_of, main_container, one, reference_to, resources

FRONTEND_PORT = 8000
# The user the vllm-runtime image runs as (container/templates/vllm_runtime.Dockerfile in
# ai-dynamo/dynamo): what the workers write the Hugging Face cache as.
IMAGE_UID, IMAGE_GID = 1000, 0


@pytest.fixture(scope="module", params=ENVIRONMENTS)
def case(request: pytest.FixtureRequest, stacks: dict[str, dict]) -> tuple[Environment, dict]:
    environment = load(ENVIRONMENTS_DIR / f"{request.param}.toml")
    return environment, stacks[request.param]


def replica_services(stack: dict) -> list[dict]:
    """Every awsvpc service: all but the GPU metrics daemon (test_metrics.py has its own tests)."""
    return [
        body for body in resources(stack, "aws_ecs_service").values() if body.get("scheduling_strategy") != "DAEMON"
    ]


def gpu_roles(env: Environment) -> list[str]:
    return list(env.gpu_workers())


def security_groups(stack: dict) -> dict[str, str]:
    return {
        name: reference_to(stack, "aws_security_group", f"security-groups/{name}", "id")
        for name in ("alb", "frontend", "workers", "control-plane")
    }


def rules_between(stack: dict, direction: str, group: str, peer: str) -> list[dict]:
    """``direction`` "ingress": rules of ``group`` admitting ``peer``; "egress": rules of ``group`` reaching "
    "``peer``."""
    return [
        rule
        for rule in resources(stack, f"aws_vpc_security_group_{direction}_rule").values()
        if rule["security_group_id"] == group and rule.get("referenced_security_group_id") == peer
    ]


def frontend_container(stack: dict) -> dict:
    container = main_container(one(stack, "aws_ecs_task_definition", "frontend/frontend/task"))
    return container


def worker_containers(env: Environment, stack: dict) -> dict[str, dict]:
    return {
        role: main_container(one(stack, "aws_ecs_task_definition", f"{role}/{role}/task")) for role in gpu_roles(env)
    }


# --- naming, tags, backend ---------------------------------------------------------


def test_every_named_resource_starts_with_the_stack_name(case):
    env, stack = case
    prefix = env.stack_name
    checked = 0
    for resource_type, instances in stack["resource"].items():
        for body in instances.values():
            for attribute in ("name", "family", "alarm_name", "bucket"):
                value = body.get(attribute)
                if isinstance(value, str) and not value.startswith("${"):
                    checked += 1
                    allowed = (prefix, f"/ecs/{prefix}/", f"alias/{prefix}-")
                    in_namespace = resource_type.startswith(
                        "aws_service_discovery_service"
                    )  # "etcd" inside dynamo-<env>.local
                    assert value.startswith(allowed) or in_namespace, (
                        f"{resource_type} {construct_path(body)}: {attribute}={value}"
                    )
    assert checked > 40


def test_provider_tags_every_resource_by_default(case):
    env, stack = case
    (provider,) = stack["provider"]["aws"]
    assert provider["region"] == env.region
    assert provider["default_tags"] == [
        {"tags": {"Project": "dynamo-ecs", "Environment": env.name, "ManagedBy": "cdktf"}}
    ]


def test_backend_follows_the_environment_file(case):
    env, stack = case
    backend = stack["terraform"]["backend"]
    if isinstance(env.backend, S3BackendConfig):
        assert backend["s3"]["bucket"] == env.backend.bucket
        assert backend["s3"]["key"] == env.backend.key
        assert backend["s3"]["use_lockfile"] is True
        assert backend["s3"]["encrypt"] is True
    elif isinstance(env.backend, HcpBackendConfig):
        assert backend["cloud"]["organization"] == env.backend.organization
    else:
        # Relative to the stack's directory: state/ beside cdktf.out/ (tests/test_state.py resolves it).
        assert backend["local"]["path"] == (env.backend.path or f"../../../state/terraform.{env.stack_name}.tfstate")


def test_required_environments_have_their_promised_shape(stacks):
    dev, staging, prod = (load(ENVIRONMENTS_DIR / f"{name}.toml") for name in ("dev", "staging", "prod"))
    assert dev.mode == "aggregated" and dev.prefill is None and dev.gpu_fleet.min_instances == 0
    assert dev.network.nat == "single" and dev.backend.type == "local" and dev.schedule is not None
    assert staging.mode == "disaggregated" and staging.prefill.count == 1 and staging.decode.count == 1
    assert staging.backend.type == "s3"
    assert prod.network.az_count == 3 and prod.network.nat == "per_az" and prod.model.tensor_parallel_size == 2
    assert (
        prod.gpu_fleet.instance.gpus > 1
        and prod.load_balancer.certificate_arn
        and prod.load_balancer.deletion_protection
    )
    assert prod.load_balancer.access_logs and prod.backend.type in ("s3", "hcp")
    assert prod.model.hf_token_secret_arn and not dev.model.hf_token_secret_arn
    assert prod.logging.retention_days > staging.logging.retention_days > dev.logging.retention_days


# --- network -----------------------------------------------------------------------


def test_subnets_nat_endpoint_and_flow_logs(case):
    env, stack = case
    subnets = resources(stack, "aws_subnet").values()
    public = [s for s in subnets if s["tags"]["Tier"] == "public"]
    private = [s for s in subnets if s["tags"]["Tier"] == "private"]
    expected_public, expected_private = env.network.subnet_cidrs()
    assert sorted(s["cidr_block"] for s in public) == sorted(expected_public)
    assert sorted(s["cidr_block"] for s in private) == sorted(expected_private)
    assert all(s["map_public_ip_on_launch"] is False for s in public)
    nat_count = env.network.az_count if env.network.nat == "per_az" else 1
    assert len(resources(stack, "aws_nat_gateway")) == nat_count
    (endpoint,) = resources(stack, "aws_vpc_endpoint").values()
    assert endpoint["vpc_endpoint_type"] == "Gateway" and endpoint["service_name"] == f"com.amazonaws.{env.region}.s3"
    assert len(endpoint["route_table_ids"]) == env.network.az_count
    (flow_log,) = resources(stack, "aws_flow_log").values()
    assert flow_log["traffic_type"] == "ALL"
    assert flow_log["log_destination"] == reference_to(stack, "aws_cloudwatch_log_group", "logs/vpc-flow-logs", "arn")


def test_only_the_alb_reaches_the_frontend_and_only_dynamo_reaches_etcd_and_nats(case):
    env, stack = case
    group = {
        name: reference_to(stack, "aws_security_group", f"security-groups/{name}", "id")
        for name in ("alb", "frontend", "workers", "control-plane")
    }
    ingress = [rule for rule in resources(stack, "aws_vpc_security_group_ingress_rule").values()]

    def sources(target: str, port: int) -> set[str]:
        return {
            rule.get("referenced_security_group_id") or rule.get("cidr_ipv4")
            for rule in ingress
            if rule["security_group_id"] == group[target] and rule["from_port"] <= port <= rule["to_port"]
        }

    assert sources("frontend", FRONTEND_PORT) == {group["alb"]}
    assert sources("control-plane", 2379) == {group["frontend"], group["workers"]}
    assert sources("control-plane", 4222) == {group["frontend"], group["workers"]}
    assert group["workers"] in sources("workers", 5600), "workers must reach each other for NIXL KV transfer"
    response_stream = int(environment_of(frontend_container(stack))["DYN_TCP_RESPONSE_STREAM_PORT"])
    assert sources("frontend", response_stream) == {group["workers"]}
    listener_ports = {80, 443} if env.load_balancer.certificate_arn else {80}
    alb_rules = [rule for rule in ingress if rule["security_group_id"] == group["alb"]]
    assert {rule["from_port"] for rule in alb_rules} == listener_ports
    assert {rule["cidr_ipv4"] for rule in alb_rules} == set(env.load_balancer.allowed_cidrs)
    open_to_world = [
        rule for rule in ingress if rule.get("cidr_ipv4") == "0.0.0.0/0" and rule["security_group_id"] != group["alb"]
    ]
    assert open_to_world == []


def test_workers_stream_tokens_back_to_the_frontend_on_its_response_stream_port(case):
    """Dynamo's workers connect back to the frontend to stream tokens; both sides of that flow
    must allow exactly the port the frontend is told to listen on."""
    _, stack = case
    group = security_groups(stack)
    port = int(environment_of(frontend_container(stack))["DYN_TCP_RESPONSE_STREAM_PORT"])
    (inbound,) = rules_between(stack, "ingress", group["frontend"], group["workers"])
    (outbound,) = rules_between(stack, "egress", group["workers"], group["frontend"])
    for rule in (inbound, outbound):
        assert (rule["ip_protocol"], rule["from_port"], rule["to_port"]) == ("tcp", port, port)
        assert "response stream" in rule["description"]
    assert port != FRONTEND_PORT and port >= 1024


def test_the_frontend_reaches_the_workers_only_on_their_request_plane_port(case):
    env, stack = case
    group = security_groups(stack)
    ports = {environment_of(container)["DYN_TCP_RPC_PORT"] for container in worker_containers(env, stack).values()}
    (port,) = {int(value) for value in ports}  # one security group for every worker: one port
    (inbound,) = rules_between(stack, "ingress", group["workers"], group["frontend"])
    (outbound,) = rules_between(stack, "egress", group["frontend"], group["workers"])
    for rule in (inbound, outbound):
        assert (rule["ip_protocol"], rule["from_port"], rule["to_port"]) == ("tcp", port, port)
        assert "request plane" in rule["description"]
    assert "DYN_TCP_RPC_PORT" not in environment_of(frontend_container(stack)), (
        "on the frontend it breaks model discovery"
    )


def test_every_new_dynamo_flow_rule_has_its_own_description(case):
    _, stack = case
    group = security_groups(stack)
    pairs = [("frontend", "workers"), ("workers", "frontend")]
    descriptions = [
        rule["description"]
        for first, second in pairs
        for direction in ("ingress", "egress")
        for rule in rules_between(stack, direction, group[first], group[second])
    ]
    assert len(descriptions) == 4 and len(set(descriptions)) == 4, descriptions


# --- IAM ---------------------------------------------------------------------------


def test_execution_role_reads_exactly_the_configured_secrets(case):
    env, stack = case
    configured = sorted(arn for arn in (env.image.pull_credentials_secret_arn, env.model.hf_token_secret_arn) if arn)
    policies = [
        p
        for p in resources(stack, "aws_iam_role_policy").values()
        if construct_path(p).endswith("iam/execution-secrets")
    ]
    if not configured:
        assert policies == []
        return
    (policy,) = policies
    read, *decrypt = json.loads(policy["policy"])["Statement"]
    assert read["Action"] == "secretsmanager:GetSecretValue"
    assert read["Resource"] == configured
    if env.secrets_kms_key_arn:
        (statement,) = decrypt
        assert (statement["Action"], statement["Resource"]) == ("kms:Decrypt", env.secrets_kms_key_arn)
        assert statement["Condition"]["StringEquals"]["kms:ViaService"].startswith("secretsmanager.")
    else:
        assert decrypt == []


def test_no_wildcard_actions_and_instance_role_has_ecs_and_ssm(case):
    _, stack = case
    for policy in resources(stack, "aws_iam_role_policy").values():
        for statement in json.loads(policy["policy"])["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert not any(action == "*" or action.endswith(":*") for action in actions), policy
    attached = {
        a["policy_arn"].rsplit("/", 1)[-1]
        for a in resources(stack, "aws_iam_role_policy_attachment").values()
        if "instance" in construct_path(a)
    }
    assert attached == {"AmazonEC2ContainerServiceforEC2Role", "AmazonSSMManagedInstanceCore"}


# --- GPU cluster -------------------------------------------------------------------


def test_launch_template_uses_the_gpu_ami_parameter_imdsv2_and_an_encrypted_root(case):
    env, stack = case
    template = one(stack, "aws_launch_template", "gpu-cluster/launch-template")
    (ami,) = stack["data"]["aws_ssm_parameter"].values()
    assert ami["name"] == "/aws/service/ecs/optimized-ami/amazon-linux-2023/gpu/recommended/image_id"
    assert template["image_id"].startswith("${data.aws_ssm_parameter.")
    assert template["metadata_options"]["http_tokens"] == "required"
    (disk,) = template["block_device_mappings"]
    assert disk["ebs"]["volume_type"] == "gp3" and disk["ebs"]["encrypted"] == "true"
    assert disk["ebs"]["volume_size"] == env.gpu_fleet.root_volume_gib
    assert "network_interfaces" not in template, "instances get no public IP"
    script = template["user_data"]
    assert script.startswith("${base64encode(") and f"ECS_CLUSTER={env.stack_name}-gpu" in script
    assert "ECS_ENABLE_GPU_SUPPORT=true" in script and "ECS_AWSVPC_BLOCK_IMDS=true" in script


def test_the_model_cache_is_writable_for_the_image_user(case):
    env, stack = case
    script = one(stack, "aws_launch_template", "gpu-cluster/launch-template")["user_data"]
    lines = script.removeprefix('${base64encode("').removesuffix('")}').split("\\n")
    (line,) = [line for line in lines if env.gpu_fleet.model_cache_path in line]
    command = shlex.split(line)
    assert command[:2] == ["install", "-d"] and command[-1] == env.gpu_fleet.model_cache_path
    options = dict(zip(command[2:-1:2], command[3:-1:2], strict=True))
    assert (options["-o"], options["-g"]) == (str(IMAGE_UID), str(IMAGE_GID))
    assert int(options["-m"], 8) & 0o070 == 0o070, "the group (gid 0, the image's group) writes too"
    for container in worker_containers(env, stack).values():
        assert "user" not in container, "the workers run as the image's own user"


def test_autoscaling_group_and_capacity_provider(case):
    env, stack = case
    group = one(stack, "aws_autoscaling_group", "gpu-cluster/asg")
    fleet = env.gpu_fleet
    assert (group["min_size"], group["max_size"], group["desired_capacity"]) == (
        fleet.min_instances,
        fleet.max_instances,
        fleet.initial_instances,
    )
    assert group["protect_from_scale_in"] is True
    assert len(group["vpc_zone_identifier"]) == env.network.az_count
    assert all("private" in ref for ref in group["vpc_zone_identifier"])
    assert group["lifecycle"]["ignore_changes"] == ["desired_capacity"]
    if fleet.capacity == "spot":
        assert (
            group["mixed_instances_policy"]["instances_distribution"]["on_demand_percentage_above_base_capacity"] == 0
        )
    else:
        assert "mixed_instances_policy" not in group
        assert one(stack, "aws_launch_template", "gpu-cluster/launch-template")["instance_type"] == fleet.instance_type
    provider = one(stack, "aws_ecs_capacity_provider", "gpu-cluster/capacity-provider")["auto_scaling_group_provider"]
    assert provider["managed_scaling"]["status"] == "ENABLED"
    assert provider["managed_termination_protection"] == "ENABLED"
    cluster_providers = one(stack, "aws_ecs_cluster_capacity_providers", "gpu-cluster/capacity-providers")
    assert cluster_providers["capacity_providers"] == [
        reference_to(stack, "aws_ecs_capacity_provider", "gpu-cluster/capacity-provider", "name")
    ]


def test_both_clusters_have_container_insights(case):
    _, stack = case
    for cluster in resources(stack, "aws_ecs_cluster").values():
        assert cluster["setting"] == [{"name": "containerInsights", "value": "enabled"}]


# --- control plane -----------------------------------------------------------------


def etcd_members(env: Environment) -> list[str]:
    return [f"etcd-{index}" for index in range(env.control_plane.etcd_members)]


def etcd_container(stack: dict, member: str) -> dict:
    container = main_container(one(stack, "aws_ecs_task_definition", f"control-plane/{member}/task"))
    return container


def flags(command: list[str]) -> dict[str, str]:
    """``--name=value`` arguments of a command, by name."""
    return dict(
        argument.removeprefix("--").split("=", 1)
        for argument in command
        if argument.startswith("--") and "=" in argument
    )


def control_plane_services(stack: dict) -> dict[str, dict]:
    """The control plane's ECS services by short name (etcd-0, ..., nats)."""
    return {
        construct_path(body).split("/")[-2]: body
        for body in resources(stack, "aws_ecs_service").values()
        if "/control-plane/" in construct_path(body)
    }


def test_etcd_and_nats_run_on_fargate_and_are_found_through_cloud_map(case):
    env, stack = case
    (namespace,) = resources(stack, "aws_service_discovery_private_dns_namespace").values()
    assert namespace["name"] == f"{env.stack_name}.local"
    registries = {body["name"]: body for body in resources(stack, "aws_service_discovery_service").values()}
    assert set(registries) == {*etcd_members(env), "nats"}, (
        "one Cloud Map name per etcd member, and NATS; no shared etcd name"
    )
    services = control_plane_services(stack)
    assert set(services) == {*etcd_members(env), "nats"}
    for short_name, service in services.items():
        assert service["name"] == f"{env.stack_name}-{short_name}"
        assert service["launch_type"] == "FARGATE" and service["network_configuration"]["assign_public_ip"] is False
        assert service["service_registries"]["registry_arn"] == reference_to(
            stack, "aws_service_discovery_service", f"discovery/{short_name}", "arn"
        )
        container = main_container(one(stack, "aws_ecs_task_definition", f"control-plane/{short_name}/task"))
        image, port = (
            (env.control_plane.nats.image, 4222) if short_name == "nats" else (env.control_plane.etcd.image, 2379)
        )
        assert container["image"] == image
        assert container["portMappings"] == [{"containerPort": port, "protocol": "tcp"}]
        assert container["healthCheck"]["command"][0] in ("CMD", "CMD-SHELL")
    nats = main_container(one(stack, "aws_ecs_task_definition", "control-plane/nats/task"))
    assert "-js" in nats["command"]


def test_the_environment_files_choose_the_etcd_cluster_size():
    """The shipped files: dev stays cheap with one member; staging and prod take the default
    three. (A file someone adds chooses for itself.)"""
    shipped = {"dev": 1, "staging": 3, "prod": 3}
    sizes = {name: load(ENVIRONMENTS_DIR / f"{name}.toml").control_plane.etcd_members for name in shipped}
    assert sizes == shipped
    assert Environment.model_fields["control_plane"].default_factory().etcd_members == 3


def test_each_etcd_member_names_itself_and_lists_every_member(case):
    env, stack = case
    namespace = f"{env.stack_name}.local"
    members = etcd_members(env)
    expected_cluster = ",".join(f"{member}=http://{member}.{namespace}:2380" for member in members)
    for member in members:
        container = etcd_container(stack, member)
        assert container["name"] == "etcd"
        command = container["command"]
        assert command[0] == "/usr/local/bin/etcd"
        given = flags(command)
        assert given["name"] == member
        assert given["data-dir"] == "/data/etcd"
        assert (
            given["listen-client-urls"] == "http://0.0.0.0:2379" and given["listen-peer-urls"] == "http://0.0.0.0:2380"
        )
        assert given["advertise-client-urls"] == f"http://{member}.{namespace}:2379"
        assert given["initial-advertise-peer-urls"] == f"http://{member}.{namespace}:2380"
        assert given["initial-cluster"] == expected_cluster
        assert given["initial-cluster-state"] == "new" and given["initial-cluster-token"] == env.stack_name
        assert container["mountPoints"] == [{"sourceVolume": "data", "containerPath": "/data", "readOnly": False}]
        assert container["readonlyRootFilesystem"] is True
        probe = container["healthCheck"]
        assert probe["command"] == [
            "CMD",
            "/usr/local/bin/etcdctl",
            "--endpoints=http://127.0.0.1:2379",
            "endpoint",
            "health",
        ]
        assert probe["startPeriod"] >= 120, "at the first deploy a member is healthy only once the next one has started"
        options = container["logConfiguration"]["options"]
        assert options["awslogs-group"] == reference_to(stack, "aws_cloudwatch_log_group", "logs/etcd", "name")
        assert options["awslogs-stream-prefix"] == member


def test_etcd_members_spread_over_the_azs_and_never_run_twice(case):
    env, stack = case
    private = [
        reference_to(stack, "aws_subnet", f"network/private-{index}", "id") for index in range(env.network.az_count)
    ]
    services = control_plane_services(stack)
    for index, member in enumerate(etcd_members(env)):
        service = services[member]
        assert service["network_configuration"]["subnets"] == [private[index % env.network.az_count]]
        assert service["desired_count"] == 1
        assert (service["deployment_minimum_healthy_percent"], service["deployment_maximum_percent"]) == (0, 100), (
            "two tasks on one data directory"
        )
        assert "lifecycle" not in service, "nothing else may change a member's count"
    zones = {tuple(services[member]["network_configuration"]["subnets"]) for member in etcd_members(env)}
    assert len(zones) == min(env.control_plane.etcd_members, env.network.az_count)


def test_etcd_members_roll_one_at_a_time(case):
    env, stack = case
    services = control_plane_services(stack)
    members = etcd_members(env)
    for index, member in enumerate(members):
        service = services[member]
        assert service["wait_for_steady_state"] is True
        if index == 0:
            # The first member waits for its data to be mountable: every mount target, the file
            # system policy and the task role's grant (nothing in its task definition refers to them).
            mountable = [
                f"{kind}.{logical_id}"
                for kind in ("aws_efs_mount_target", "aws_efs_file_system_policy")
                for logical_id in resources(stack, kind)
            ]
            mountable += [
                f"aws_iam_role_policy.{logical_id}"
                for logical_id, body in resources(stack, "aws_iam_role_policy").items()
                if construct_path(body).endswith("etcd-data/task-role")
            ]
            assert sorted(_ordering(service["depends_on"])) == sorted(mountable)
            assert len(resources(stack, "aws_efs_mount_target")) == env.network.az_count
        else:
            (dependency,) = _ordering(service["depends_on"])
            previous = reference_to(stack, "aws_ecs_service", f"control-plane/{members[index - 1]}/service", "name")
            assert f"${{{dependency}.name}}" == previous
    others = [body for short_name, body in services.items() if short_name == "nats"]
    others += [
        body
        for body in resources(stack, "aws_ecs_service").values()
        if "/control-plane/" not in construct_path(body) and "/frontend/" not in construct_path(body)
    ]
    assert all("wait_for_steady_state" not in body and not _ordering(body.get("depends_on", [])) for body in others), (
        "only the etcd members (and a moving frontend) wait"
    )


def _ordering(depends_on: list[str]) -> list[str]:
    """A service's dependencies besides the execution role's policies (tested on their own)."""
    return [
        dependency
        for dependency in depends_on
        if not dependency.startswith(
            ("aws_iam_role_policy_attachment.iam_execution", "aws_iam_role_policy.iam_execution")
        )
    ]


def test_etcd_data_is_encrypted_on_efs_with_an_access_point_per_member(case):
    env, stack = case
    (file_system,) = resources(stack, "aws_efs_file_system").values()
    assert file_system["encrypted"] is True
    assert file_system["kms_key_id"] == reference_to(stack, "aws_kms_key", "logs/key", "arn"), (
        "the stack's own customer-managed key"
    )
    file_system_id = reference_to(stack, "aws_efs_file_system", "etcd-data/file-system", "id")
    efs_group = reference_to(stack, "aws_security_group", "security-groups/efs", "id")
    targets = resources(stack, "aws_efs_mount_target").values()
    private = {
        reference_to(stack, "aws_subnet", f"network/private-{index}", "id") for index in range(env.network.az_count)
    }
    assert sorted(target["subnet_id"] for target in targets) == sorted(private), (
        "a mount target in every private subnet"
    )
    assert all(
        target["file_system_id"] == file_system_id and target["security_groups"] == [efs_group] for target in targets
    )
    access_points = {
        construct_path(body).split("/")[-1]: body for body in resources(stack, "aws_efs_access_point").values()
    }
    assert set(access_points) == set(etcd_members(env))
    for member, access_point in access_points.items():
        assert access_point["file_system_id"] == file_system_id
        assert access_point["root_directory"] == {
            "path": f"/{member}",
            "creation_info": {"owner_uid": 0, "owner_gid": 0, "permissions": "0700"},
        }
        assert access_point["posix_user"] == {"uid": 0, "gid": 0}
        (volume,) = one(stack, "aws_ecs_task_definition", f"control-plane/{member}/task")["volume"]
        assert volume["name"] == "data"
        assert volume["efs_volume_configuration"] == {
            "file_system_id": file_system_id,
            "transit_encryption": "ENABLED",
            "authorization_config": {
                "access_point_id": reference_to(stack, "aws_efs_access_point", f"etcd-data/{member}", "id"),
                "iam": "ENABLED",
            },
        }
    (policy,) = resources(stack, "aws_efs_file_system_policy").values()
    (statement,) = json.loads(policy["policy"])["Statement"]
    assert statement["Effect"] == "Deny" and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_the_control_plane_task_role_mounts_the_data_only_through_the_access_points(case):
    env, stack = case
    policy = one(stack, "aws_iam_role_policy", "etcd-data/task-role")
    assert policy["role"] == reference_to(stack, "aws_iam_role", "iam/task-control-plane", "name")
    (statement,) = json.loads(policy["policy"])["Statement"]
    assert statement["Effect"] == "Allow"
    # ClientRootAccess: the access points write as root (uid 0), which EFS allows only with it.
    assert sorted(statement["Action"]) == [
        "elasticfilesystem:ClientMount",
        "elasticfilesystem:ClientRootAccess",
        "elasticfilesystem:ClientWrite",
    ]
    assert statement["Resource"] == reference_to(stack, "aws_efs_file_system", "etcd-data/file-system", "arn")
    access_points = [
        reference_to(stack, "aws_efs_access_point", f"etcd-data/{member}", "arn") for member in etcd_members(env)
    ]
    assert statement["Condition"] == {"StringEquals": {"elasticfilesystem:AccessPointArn": access_points}}
    for member in etcd_members(env):
        task = one(stack, "aws_ecs_task_definition", f"control-plane/{member}/task")
        assert task["task_role_arn"] == reference_to(stack, "aws_iam_role", "iam/task-control-plane", "arn")


def test_etcd_peers_talk_only_to_each_other_and_nfs_only_from_the_members(case):
    env, stack = case
    group = {
        name: reference_to(stack, "aws_security_group", f"security-groups/{name}", "id")
        for name in ("control-plane", "etcd-peers", "efs")
    }
    for name in ("etcd-peers", "efs"):
        assert one(stack, "aws_security_group", f"security-groups/{name}")["name"] == f"{env.stack_name}-{name}"

    def rules(direction: str, of: str) -> set[tuple[int, int, str | None]]:
        return {
            (rule["from_port"], rule["to_port"], rule.get("referenced_security_group_id") or rule.get("cidr_ipv4"))
            for rule in resources(stack, f"aws_vpc_security_group_{direction}_rule").values()
            if rule["security_group_id"] == group[of]
        }

    assert rules("ingress", "etcd-peers") == {(2380, 2380, group["etcd-peers"])}
    assert rules("egress", "etcd-peers") == {(2380, 2380, group["etcd-peers"]), (2049, 2049, group["efs"])}
    assert rules("ingress", "efs") == {(2049, 2049, group["etcd-peers"])}
    assert rules("egress", "efs") == set()
    admitting_2380 = {
        rule["security_group_id"]
        for rule in resources(stack, "aws_vpc_security_group_ingress_rule").values()
        if rule["from_port"] <= 2380 <= rule["to_port"] and rule["security_group_id"] in group.values()
    }
    assert admitting_2380 == {group["etcd-peers"]}, "the peer port is open between members only"
    services = control_plane_services(stack)
    for member in etcd_members(env):
        assert services[member]["network_configuration"]["security_groups"] == [
            group["control-plane"],
            group["etcd-peers"],
        ]
    assert services["nats"]["network_configuration"]["security_groups"] == [group["control-plane"]]
    carrying_peers = [
        construct_path(body)
        for body in replica_services(stack)
        if group["etcd-peers"] in body["network_configuration"]["security_groups"]
    ]
    assert len(carrying_peers) == env.control_plane.etcd_members
    descriptions = [
        rule["description"]
        for direction in ("ingress", "egress")
        for rule in resources(stack, f"aws_vpc_security_group_{direction}_rule").values()
        if rule["security_group_id"] in (group["etcd-peers"], group["efs"])
    ]
    assert len(descriptions) == 4 and len(set(descriptions)) == 4, descriptions


# --- Dynamo workers and frontend ---------------------------------------------------


def test_gpu_workers_request_gpus_and_run_dynamo_vllm(case):
    env, stack = case
    for role in gpu_roles(env):
        worker = env.gpu_workers()[role]
        task = one(stack, "aws_ecs_task_definition", f"{role}/{role}/task")
        assert task["network_mode"] == "awsvpc" and task["requires_compatibilities"] == ["EC2"]
        assert (task["cpu"], task["memory"]) == (str(worker.cpu), str(worker.memory))
        container = main_container(task)
        assert container["resourceRequirements"] == [{"type": "GPU", "value": str(env.model.tensor_parallel_size)}]
        assert container["image"] == env.image.reference
        command = container["command"]
        assert command[:5] == ["python3", "-m", "dynamo.vllm", "--model", env.model.name]
        assert command[command.index("--tensor-parallel-size") + 1] == str(worker.gpus)
        if env.mode == "disaggregated":
            assert command[command.index("--disaggregation-mode") + 1] == role
            assert "NixlConnector" in command[command.index("--kv-transfer-config") + 1]
        else:
            assert "--disaggregation-mode" not in command
        assert (
            command[len(command) - len(env.model.extra_vllm_args) :] == list(env.model.extra_vllm_args)
            or not env.model.extra_vllm_args
        )
        if env.model.served_model_name:
            assert command[command.index("--served-model-name") + 1] == env.model.served_model_name
        else:
            assert "--served-model-name" not in command
        assert container["linuxParameters"]["sharedMemorySize"] == worker.shared_memory_mib
        assert {"name": "memlock", "softLimit": -1, "hardLimit": -1} in container["ulimits"]
        assert container["privileged"] is False
        assert container["stopTimeout"] == 120
        (volume,) = task["volume"]
        assert volume["host_path"] == env.gpu_fleet.model_cache_path
        assert container["mountPoints"][0]["sourceVolume"] == volume["name"]


def test_workers_serve_health_on_the_system_port_with_a_long_start_up_grace(case):
    env, stack = case
    for role in gpu_roles(env):
        container = main_container(one(stack, "aws_ecs_task_definition", f"{role}/{role}/task"))
        variables = environment_of(container)
        port = variables["DYN_SYSTEM_PORT"]
        probe = container["healthCheck"]
        assert f"127.0.0.1:{port}/health" in " ".join(probe["command"])
        assert probe["startPeriod"] == 300  # ECS's maximum
        assert probe["startPeriod"] + probe["retries"] * probe["interval"] >= 600
        # ... and covers the environment's cold-start estimate with its margin, within ECS's limits.
        estimate = fit.cold_start(env, env.model.model_facts)
        budget = probe["startPeriod"] + probe["retries"] * probe["interval"]
        assert budget >= estimate.after_container_start * fit.HEALTH_MARGIN
        assert probe["retries"] <= 10 and 5 <= probe["interval"] <= 300


def test_workers_report_ready_once_their_generate_endpoint_is_registered(case):
    """Without DYN_SYSTEM_USE_ENDPOINT_HEALTH_STATUS a 1.2.1 worker's /health stays 503."""
    env, stack = case
    for container in worker_containers(env, stack).values():
        endpoints = json.loads(environment_of(container)["DYN_SYSTEM_USE_ENDPOINT_HEALTH_STATUS"])
        assert isinstance(endpoints, list) and "generate" in endpoints


def test_every_dynamo_process_finds_every_etcd_member_and_nats_by_name(case):
    env, stack = case
    namespace = f"{env.stack_name}.local"
    # Comma-separated: what Dynamo 1.2.1 reads (measured in the twin with three members).
    endpoints = ",".join(f"http://{member}.{namespace}:2379" for member in etcd_members(env))
    for path in ["frontend/frontend/task", *(f"{role}/{role}/task" for role in gpu_roles(env))]:
        container = main_container(one(stack, "aws_ecs_task_definition", path))
        variables = environment_of(container)
        assert variables["ETCD_ENDPOINTS"] == endpoints
        assert variables["NATS_SERVER"] == f"nats://nats.{namespace}:4222"
    assert stack["output"]["etcd_endpoint"]["value"] == endpoints


def test_hf_token_arrives_as_a_secret_never_as_plain_environment(case):
    """The workers download weights, the frontend a gated model's config and tokenizer:
    both get HF_TOKEN when one is configured, and nothing else."""
    env, stack = case
    for container in [frontend_container(stack), *worker_containers(env, stack).values()]:
        assert "HF_TOKEN" not in environment_of(container)
        secrets = {item["name"]: item["valueFrom"] for item in container["secrets"]}
        expected = {"HF_TOKEN": env.model.hf_token_secret_arn} if env.model.hf_token_secret_arn else {}
        assert secrets == expected


def test_frontend_runs_the_kv_router_behind_the_alb(case):
    env, stack = case
    task = one(stack, "aws_ecs_task_definition", "frontend/frontend/task")
    container = main_container(task)
    assert container["command"][:3] == ["python3", "-m", "dynamo.frontend"]
    assert container["command"][container["command"].index("--router-mode") + 1] == env.frontend.router_mode
    assert container["portMappings"] == [{"containerPort": FRONTEND_PORT, "protocol": "tcp"}]
    assert f"127.0.0.1:{FRONTEND_PORT}/live" in " ".join(container["healthCheck"]["command"])
    assert "resourceRequirements" not in container
    if env.frontend.placement == "fargate":
        assert task["requires_compatibilities"] == ["FARGATE"]
        assert task["ephemeral_storage"]["size_in_gib"] == env.frontend.ephemeral_storage_gib
    service = one(stack, "aws_ecs_service", "frontend/frontend/service")
    (attachment,) = service["load_balancer"]
    assert attachment["container_port"] == FRONTEND_PORT
    assert attachment["target_group_arn"] == reference_to(stack, "aws_lb_target_group", "load-balancer/frontend", "arn")
    # The frontend serves /health within seconds of starting, with or without workers; the
    # grace covers that and the ALB's healthy threshold, not a model load.
    health = one(stack, "aws_lb_target_group", "load-balancer/frontend")["health_check"]
    assert service["health_check_grace_period_seconds"] == 120
    assert service["health_check_grace_period_seconds"] > health["healthy_threshold"] * health["interval"]


def test_several_kv_routers_share_their_state(case):
    env, stack = case
    command = frontend_container(stack)["command"]
    expected = env.frontend.router_mode == "kv" and env.frontend.max_count > 1
    assert ("--router-replica-sync" in command) is expected


def test_requests_move_to_another_worker_when_theirs_goes_away(case):
    env, stack = case
    command = frontend_container(stack)["command"]
    if env.frontend.migration_limit > 0:
        assert command[command.index("--migration-limit") + 1] == str(env.frontend.migration_limit)
    else:
        assert "--migration-limit" not in command


def test_services_roll_safely(case):
    env, stack = case
    for body in replica_services(stack):
        assert body["deployment_circuit_breaker"] == {"enable": True, "rollback": True}
        assert body["network_configuration"]["assign_public_ip"] is False
    for role, worker in env.gpu_workers().items():
        service = one(stack, "aws_ecs_service", f"{role}/{role}/service")
        assert service["ordered_placement_strategy"][0] == {
            "type": "spread",
            "field": "attribute:ecs.availability-zone",
        }
        assert service["capacity_provider_strategy"][0]["capacity_provider"].startswith("${aws_ecs_capacity_provider.")
        assert service["lifecycle"]["ignore_changes"] == ["desired_count"]
        assert "create_before_destroy" not in service["lifecycle"], (
            "a second worker service of the same name cannot exist in one cluster"
        )
        assert service["desired_count"] == worker.count


@pytest.mark.parametrize("desired", [1, 2, 3, 4])
def test_worker_rollouts_do_what_their_setting_promises(case, desired):
    """ECS rounds maximumPercent down and minimumHealthyPercent up (DeploymentConfiguration)."""
    env, stack = case
    for role, worker in env.gpu_workers().items():
        if not worker.min_count <= desired <= worker.max_count:
            continue
        service = one(stack, "aws_ecs_service", f"{role}/{role}/service")
        most = desired * service["deployment_maximum_percent"] // 100
        least = -(-desired * service["deployment_minimum_healthy_percent"] // 100)
        assert most > desired or least < desired, (
            f"{role} with {desired} workers could neither start nor stop a task: stuck"
        )
        if worker.rollout == "surge":
            assert least == desired and most > desired, (
                f"{role}: every worker must keep serving while a replacement starts"
            )
        else:
            assert most == desired, f"{role}: an in-place rollout must not need a spare GPU"
            assert (least == 0) is worker.rollout_serves_nothing, (
                f"{role} with {desired} workers: serving nothing must be announced"
            )


def test_shipped_staging_and_prod_keep_every_worker_serving_during_a_rollout(stacks):
    for name in ("staging", "prod"):
        environment = load(ENVIRONMENTS_DIR / f"{name}.toml")
        assert {worker.rollout for worker in environment.gpu_workers().values()} == {"surge"}, name


# --- upgrades ----------------------------------------------------------------------


def test_task_definitions_keep_old_revisions_and_register_new_ones_first(case):
    _, stack = case
    for body in resources(stack, "aws_ecs_task_definition").values():
        assert body["skip_destroy"] is True, construct_path(body)
        assert body["lifecycle"] == {"create_before_destroy": True}, construct_path(body)


def test_services_wait_for_the_execution_role_policies(case):
    env, stack = case
    policies = {
        f"aws_iam_role_policy_attachment.{name}"
        for name, body in resources(stack, "aws_iam_role_policy_attachment").items()
        if construct_path(body).endswith("iam/execution-managed")
    }
    policies |= {
        f"aws_iam_role_policy.{name}"
        for name, body in resources(stack, "aws_iam_role_policy").items()
        if construct_path(body).endswith("iam/execution-secrets")
    }
    managed = {policy for policy in policies if policy.startswith("aws_iam_role_policy_attachment.")}
    assert len(policies) == (2 if env.model.hf_token_secret_arn or env.image.pull_credentials_secret_arn else 1)
    for body in resources(stack, "aws_ecs_service").values():
        # etcd, NATS and the GPU metrics daemon read no secret; everything Dynamo runs may.
        path = construct_path(body)
        expected = managed if "/control-plane/" in path or "/gpu-metrics/" in path else policies
        policies_waited_for = set(body["depends_on"]) - set(_ordering(body["depends_on"]))
        assert policies_waited_for == expected, construct_path(body)


def test_the_frontend_moves_cluster_by_creating_the_new_service_first(case):
    _, stack = case
    service = one(stack, "aws_ecs_service", "frontend/frontend/service")
    assert service["lifecycle"]["create_before_destroy"] is True
    assert service["wait_for_steady_state"] is True, "the old service would be deleted before the new one runs"
    assert service["timeouts"] == {"create": "30m", "update": "30m"}, "a cold pull of the image takes minutes"
    for kind in ("aws_appautoscaling_target", "aws_appautoscaling_policy", "aws_appautoscaling_scheduled_action"):
        for body in resources(stack, kind).values():
            assert body["lifecycle"] == {"create_before_destroy": True}, construct_path(body)


def test_a_new_launch_template_version_refreshes_the_instances_through_ecs(case):
    env, stack = case
    group = one(stack, "aws_autoscaling_group", "gpu-cluster/asg")
    latest = reference_to(stack, "aws_launch_template", "gpu-cluster/launch-template", "latest_version")
    if env.gpu_fleet.capacity == "spot":
        version = group["mixed_instances_policy"]["launch_template"]["launch_template_specification"]["version"]
    else:
        version = group["launch_template"]["version"]
    assert version == latest, "with $Latest a new template version would never reach the running instances"
    refresh = group["instance_refresh"]
    assert refresh["strategy"] == "Rolling"
    preferences = refresh["preferences"]
    assert preferences["scale_in_protected_instances"] == "Refresh", (
        "managed termination protection protects every busy instance"
    )
    assert (preferences["min_healthy_percentage"], preferences["max_healthy_percentage"]) == (100, 200)
    provider = one(stack, "aws_ecs_capacity_provider", "gpu-cluster/capacity-provider")["auto_scaling_group_provider"]
    assert provider["managed_draining"] == "ENABLED", "the refresh relies on ECS draining each instance first"
    assert provider["managed_termination_protection"] == "ENABLED" and group["protect_from_scale_in"] is True


# --- load balancer -----------------------------------------------------------------


def test_alb_keeps_streams_open_and_checks_health_on_health(case):
    env, stack = case
    balancer = one(stack, "aws_lb", "load-balancer/alb")
    assert balancer["drop_invalid_header_fields"] is True
    assert balancer["idle_timeout"] == env.load_balancer.idle_timeout_seconds >= 600
    assert balancer["internal"] is env.load_balancer.internal
    assert balancer["enable_deletion_protection"] is env.load_balancer.deletion_protection
    assert ("access_logs" in balancer) is env.load_balancer.access_logs
    group = one(stack, "aws_lb_target_group", "load-balancer/frontend")
    assert group["target_type"] == "ip" and group["port"] == FRONTEND_PORT
    assert group["health_check"]["path"] == "/health" and group["health_check"]["matcher"] == "200"
    assert group["deregistration_delay"] == str(env.load_balancer.deregistration_delay_seconds)


def test_listeners_https_with_redirect_when_a_certificate_is_configured(case):
    env, stack = case
    listeners = {body["port"]: body for body in resources(stack, "aws_lb_listener").values()}
    # The same resource on port 80 either way: a certificate changes its action in place.
    assert construct_path(listeners[80]).endswith("load-balancer/http")
    if env.load_balancer.certificate_arn:
        assert set(listeners) == {80, 443}
        assert listeners[443]["certificate_arn"] == env.load_balancer.certificate_arn
        assert listeners[443]["ssl_policy"] == env.load_balancer.ssl_policy
        assert listeners[80]["default_action"][0]["redirect"]["protocol"] == "HTTPS"
        assert listeners[80]["depends_on"] == [
            reference_to(stack, "aws_lb_listener", "load-balancer/https", "arn")
            .removeprefix("${")
            .removesuffix(".arn}")
        ]
        # Stacks applied before the single port-80 listener had it at another address.
        (moved,) = stack["moved"]
        assert moved["to"] == reference_to(stack, "aws_lb_listener", "load-balancer/http", "arn").removeprefix(
            "${"
        ).removesuffix(".arn}")
        assert moved["from"].startswith("aws_lb_listener.load-balancer_http-redirect_")
    else:
        assert set(listeners) == {80}
        assert listeners[80]["default_action"][0]["type"] == "forward"
        assert "moved" not in stack


# --- autoscaling, alarms, outputs --------------------------------------------------


def test_scalable_targets_follow_the_configured_bounds(case):
    env, stack = case
    configured = {"frontend": env.frontend, **env.gpu_workers()}
    targets = {
        construct_path(t).split("/")[-1].removesuffix("-target"): t
        for t in resources(stack, "aws_appautoscaling_target").values()
    }
    assert set(targets) == set(configured)
    for name, target in targets.items():
        assert (target["min_capacity"], target["max_capacity"]) == (
            configured[name].min_count,
            configured[name].max_count,
        )
        assert target["scalable_dimension"] == "ecs:service:DesiredCount"


def test_only_the_frontend_scales_on_cpu_and_requests(case):
    """The GPU workers scale on Dynamo's metrics instead (tests/test_metrics.py)."""
    env, stack = case
    policies = list(resources(stack, "aws_appautoscaling_policy").values())
    predefined = {
        p["target_tracking_scaling_policy_configuration"]["predefined_metric_specification"]["predefined_metric_type"]
        for p in policies
        if "predefined_metric_specification" in (p.get("target_tracking_scaling_policy_configuration") or {})
    }
    assert predefined == {"ECSServiceAverageCPUUtilization", "ALBRequestCountPerTarget"}
    frontend_target = reference_to(stack, "aws_appautoscaling_target", "autoscaling/frontend-target", "resource_id")
    frontend_policies = [p for p in policies if p["resource_id"] == frontend_target]
    assert len(frontend_policies) == 2
    assert all(
        "predefined_metric_specification" in p["target_tracking_scaling_policy_configuration"]
        for p in frontend_policies
    )


def test_working_hours_scale_everything_to_zero_only_where_configured(case):
    env, stack = case
    actions = list(resources(stack, "aws_appautoscaling_scheduled_action").values())
    if env.schedule is None:
        assert actions == []
        return
    services = 1 + len(env.gpu_workers())
    downs = [a for a in actions if a["schedule"] == env.schedule.scale_down]
    assert len(downs) == services and len(actions) == 2 * services
    assert all(a["scalable_target_action"] == {"min_capacity": "0", "max_capacity": "0"} for a in downs)
    assert all(a["timezone"] == env.schedule.timezone for a in actions)


def test_alarms_cover_5xx_unhealthy_targets_and_every_service(case):
    env, stack = case
    # The alarms that notify; autoscaling's own alarms act on its policies (test_metrics.py).
    alarms = [
        alarm
        for alarm in resources(stack, "aws_cloudwatch_metric_alarm").values()
        if "/autoscaling/" not in construct_path(alarm)
    ]
    names = {alarm["alarm_name"] for alarm in alarms}
    # nats-below-desired is "NATS down": one task, desired 1.
    services = ["frontend", *gpu_roles(env), *etcd_members(env), "nats"]
    expected = {
        f"{env.stack_name}-alb-5xx",
        f"{env.stack_name}-unhealthy-targets",
        f"{env.stack_name}-etcd-below-quorum-plus-one",
        f"{env.stack_name}-ttft-over-target",
        f"{env.stack_name}-itl-over-target",
        f"{env.stack_name}-no-ready-decode-worker",
        f"{env.stack_name}-gpu-memory-near-full",
    }
    expected |= {
        f"{env.stack_name}-{role}-at-maximum"
        for role, worker in env.gpu_workers().items()
        if worker.min_count < worker.max_count
    }
    assert names == expected | {f"{env.stack_name}-{s}-below-desired" for s in services}
    topic = stack["output"]["alarm_topic_arn"]["value"]
    for alarm in alarms:
        assert alarm["alarm_actions"] == [topic] and alarm["ok_actions"] == [topic]


def test_an_alarm_fires_when_etcd_is_one_member_from_losing_quorum(case):
    env, stack = case
    members = env.control_plane.etcd_members
    alarm = one(stack, "aws_cloudwatch_metric_alarm", "alarms/etcd-below-quorum-plus-one")
    quorum = members // 2 + 1
    # Below quorum + 1 (capped at the cluster size): three members alarm when one is missing, one when it is.
    assert alarm["comparison_operator"] == "LessThanThreshold"
    assert alarm["threshold"] == min(members, quorum + 1) == (3 if members == 3 else 1)
    (total,) = [query for query in alarm["metric_query"] if query.get("return_data")]
    metrics = {query["id"]: query["metric"] for query in alarm["metric_query"] if "metric" in query}
    assert total["expression"] == " + ".join(f"FILL({query_id}, 0)" for query_id in metrics)
    cluster = reference_to(stack, "aws_ecs_cluster", "fargate-cluster/cluster", "name")
    services = sorted(metric["dimensions"]["ServiceName"] for metric in metrics.values())
    assert services == sorted(
        reference_to(stack, "aws_ecs_service", f"control-plane/{member}/service", "name")
        for member in etcd_members(env)
    )
    for metric in metrics.values():
        assert (metric["namespace"], metric["metric_name"]) == ("ECS/ContainerInsights", "RunningTaskCount")
        assert metric["dimensions"]["ClusterName"] == cluster
    assert alarm["evaluation_periods"] * next(iter(metrics.values()))["period"] <= 600, (
        "alarm within minutes, not a quarter hour"
    )


def test_log_groups_have_the_configured_retention(case):
    env, stack = case
    groups = resources(stack, "aws_cloudwatch_log_group").values()
    assert {g["name"] for g in groups} == {
        f"/ecs/{env.stack_name}/{s}"
        for s in ["vpc-flow-logs", "metrics", "gpu-metrics", "etcd", "nats", "frontend", *gpu_roles(env)]
    }
    assert all(g["retention_in_days"] == env.logging.retention_days for g in groups)


def test_outputs_tell_users_what_they_need_next(case):
    _, stack = case
    outputs = stack["output"]
    for name in (
        "endpoint_url",
        "gpu_cluster_name",
        "fargate_cluster_name",
        "service_discovery_namespace",
        "alarm_topic_arn",
    ):
        assert outputs[name]["description"], name
    assert "aws_lb." in outputs["endpoint_url"]["value"]
