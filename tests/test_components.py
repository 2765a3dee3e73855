"""Construct-level tests: one component in a bare stack, fed handles and config objects.

The end-to-end tests synthesize the shipped files; these build a single component with a
variant of dev's configuration (``model_copy``) and stand-ins for the handles it is given,
so each path (spot or on-demand, a certificate or none, Fargate or the GPU fleet) is
checked where it is decided, without the rest of the stack.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cdktf
import pytest
from cdktf import App, TerraformStack
from constructs import Construct

import components
from components.account import Account
from components.aws import provider
from components.container import Container
from components.gpu_cluster import GpuCluster
from components.iam import Iam
from components.load_balancer import LoadBalancer
from components.logs import LogGroups
from components.metrics import Metrics
from components.security_groups import SecurityGroups
from components.service import Deployment, Placement, TaskService, TaskSize
from components.workers import DynamoRuntime, Frontend
from environments.loader import ENVIRONMENTS_DIR, load
from environments.schema import Environment
from tests.stack_json import one, reference_to, resources

CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/01234567-89ab-cdef-0123-456789abcdef"
HF_TOKEN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:hf-token-AbCdEf"
PULL_CREDENTIALS = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ngc-AbCdEf"
KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/01234567-89ab-cdef-0123-456789abcdef"


@dataclass
class FakeNetwork:
    """What components read from components.network.Network."""

    vpc_id: str = "vpc-0123"
    public_subnet_ids: list[str] = field(default_factory=lambda: ["subnet-public-a", "subnet-public-b"])
    private_subnet_ids: list[str] = field(default_factory=lambda: ["subnet-private-a", "subnet-private-b"])


@dataclass
class FakeCluster:
    cluster_name: str
    cluster_arn: str
    capacity_provider_name: str | None


FARGATE = FakeCluster("dynamo-test-fargate", "arn:aws:ecs:us-east-1:123456789012:cluster/dynamo-test-fargate", None)
GPU_FLEET = FakeCluster("dynamo-test-gpu", "arn:aws:ecs:us-east-1:123456789012:cluster/dynamo-test-gpu", "gpu-capacity")


@pytest.fixture(scope="module")
def dev() -> Environment:
    return load(ENVIRONMENTS_DIR / "dev.toml")


def synth(build: Callable[[TerraformStack], object]) -> dict[str, Any]:
    """The cdk.tf.json of a bare stack (provider only) after ``build(stack)``, construct paths included."""
    # An app without an outdir, and full_synth, each leave a directory under /tmp.
    with tempfile.TemporaryDirectory(prefix="dynamo-ecs-component-") as app_outdir:
        app: App = cdktf.Testing.app(outdir=app_outdir)
        stack = TerraformStack(app, "test")
        provider.AwsProvider(stack, "aws", region="us-east-1")
        build(stack)
        outdir = Path(cdktf.Testing.full_synth(stack))
        try:
            return json.loads((outdir / "stacks" / "test" / "cdk.tf.json").read_text())
        finally:
            shutil.rmtree(outdir)


def with_gpu_fleet(env: Environment, **update: Any) -> Environment:
    return env.model_copy(update={"gpu_fleet": env.gpu_fleet.model_copy(update=update)})


# --- GpuCluster: spot or on-demand ----------------------------------------------------


def gpu_cluster(env: Environment) -> dict[str, Any]:
    def build(stack: TerraformStack) -> None:
        security = SecurityGroups(stack, "sg", name="dynamo-test", vpc_id="vpc-0123", load_balancer=env.load_balancer)
        GpuCluster(
            stack,
            "gpu-cluster",
            name="dynamo-test",
            config=env.gpu_fleet,
            network=FakeNetwork(),
            security_group=security.gpu_instances,
            instance_profile_arn="arn:aws:iam::123456789012:instance-profile/gpu",
        )

    return synth(build)


def test_an_on_demand_fleet_names_its_instance_type_in_the_launch_template(dev):
    env = with_gpu_fleet(dev, capacity="on_demand")
    stack = gpu_cluster(env)
    template = one(stack, "aws_launch_template", "gpu-cluster/launch-template")
    group = one(stack, "aws_autoscaling_group", "gpu-cluster/asg")
    assert template["instance_type"] == env.gpu_fleet.instance_type
    assert "mixed_instances_policy" not in group
    assert group["launch_template"]["id"] == reference_to(stack, "aws_launch_template", "launch-template", "id")
    assert group["vpc_zone_identifier"] == FakeNetwork().private_subnet_ids


def test_a_spot_fleet_buys_its_instance_type_through_a_mixed_instances_policy(dev):
    env = with_gpu_fleet(dev, capacity="spot")
    stack = gpu_cluster(env)
    template = one(stack, "aws_launch_template", "gpu-cluster/launch-template")
    group = one(stack, "aws_autoscaling_group", "gpu-cluster/asg")
    assert "instance_type" not in template
    assert "launch_template" not in group
    policy = group["mixed_instances_policy"]
    assert policy["instances_distribution"]["on_demand_percentage_above_base_capacity"] == 0
    assert policy["launch_template"]["override"] == [{"instance_type": env.gpu_fleet.instance_type}]
    assert group["capacity_rebalance"] is True


# --- LoadBalancer: a certificate or none ------------------------------------------------


def load_balancer(env: Environment) -> dict[str, Any]:
    def build(stack: TerraformStack) -> None:
        security = SecurityGroups(stack, "sg", name="dynamo-test", vpc_id="vpc-0123", load_balancer=env.load_balancer)
        LoadBalancer(
            stack,
            "load-balancer",
            name="dynamo-test",
            account=Account(stack, "account"),
            config=env.load_balancer,
            network=FakeNetwork(),
            security_group=security.alb,
            log_retention_days=env.logging.retention_days,
        )

    return synth(build)


def listeners(stack: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {body["port"]: body for body in resources(stack, "aws_lb_listener").values()}


def alb_ingress_ports(stack: dict[str, Any]) -> list[int]:
    alb = reference_to(stack, "aws_security_group", "sg/alb", "id")
    rules = resources(stack, "aws_vpc_security_group_ingress_rule").values()
    return sorted(rule["from_port"] for rule in rules if rule["security_group_id"] == alb)


def test_without_a_certificate_port_80_forwards_and_nothing_listens_on_443(dev):
    env = dev.model_copy(update={"load_balancer": dev.load_balancer.model_copy(update={"certificate_arn": None})})
    stack = load_balancer(env)
    by_port = listeners(stack)
    assert sorted(by_port) == [80]
    assert by_port[80]["default_action"][0]["type"] == "forward"
    assert "moved" not in stack
    assert alb_ingress_ports(stack) == [80] * len(env.load_balancer.allowed_cidrs)


def test_with_a_certificate_port_80_redirects_to_443_which_forwards(dev):
    update = {"certificate_arn": CERTIFICATE, "internal": True}
    env = dev.model_copy(update={"load_balancer": dev.load_balancer.model_copy(update=update)})
    stack = load_balancer(env)
    by_port = listeners(stack)
    assert sorted(by_port) == [80, 443]
    assert by_port[443]["certificate_arn"] == CERTIFICATE
    assert by_port[443]["default_action"][0]["type"] == "forward"
    assert by_port[80]["default_action"][0]["redirect"]["port"] == "443"
    # A stack that had the certificate before the single port-80 listener keeps its listener.
    (moved,) = stack["moved"]
    assert moved["from"].startswith("aws_lb_listener.load-balancer_http-redirect_")
    assert alb_ingress_ports(stack) == sorted([80, 443] * len(env.load_balancer.allowed_cidrs))
    balancer = one(stack, "aws_lb", "load-balancer/alb")
    assert balancer["internal"] is True and balancer["subnets"] == FakeNetwork().private_subnet_ids


# --- Frontend: on Fargate or on the GPU fleet -----------------------------------------


def frontend(env: Environment, cluster: FakeCluster) -> dict[str, Any]:
    def build(stack: TerraformStack) -> None:
        account = Account(stack, "account")
        security = SecurityGroups(stack, "sg", name="dynamo-test", vpc_id="vpc-0123", load_balancer=env.load_balancer)
        balancer = LoadBalancer(
            stack,
            "load-balancer",
            name="dynamo-test",
            account=account,
            config=env.load_balancer,
            network=FakeNetwork(),
            security_group=security.alb,
            log_retention_days=7,
        )
        iam = Iam(stack, "iam", name="dynamo-test", account=account, secrets_kms_key_arn=None)
        runtime = DynamoRuntime(
            image=env.image.reference, pull_credentials_arn=None, environment={"ETCD_ENDPOINTS": "x"}, secrets={}
        )
        logs = LogGroups(stack, "logs", name="dynamo-test", region="us-east-1", account=account, retention_days=7)
        Frontend(
            stack,
            "frontend",
            name="dynamo-test",
            config=env.frontend,
            runtime=runtime,
            placement=Placement.on(cluster, subnet_ids=["subnet-private-a"], security_groups=[security.frontend]),
            roles=iam.roles_for("frontend"),
            target=balancer.target,
            logs=logs,
            metrics=Metrics(
                stack, "metrics", name="dynamo-test", environment="test", model="m", config=env.metrics, logs=logs
            ),
        )

    return synth(build)


@pytest.mark.parametrize("cluster", [FARGATE, GPU_FLEET], ids=["fargate", "gpu_fleet"])
def test_the_frontend_runs_where_it_is_placed_and_the_alb_reaches_it(dev, cluster):
    stack = frontend(dev, cluster)
    service = one(stack, "aws_ecs_service", "frontend/frontend/service")
    task = one(stack, "aws_ecs_task_definition", "frontend/frontend/task")
    assert service["cluster"] == cluster.cluster_arn
    if cluster.capacity_provider_name is None:
        assert service["launch_type"] == "FARGATE" and "capacity_provider_strategy" not in service
        assert task["requires_compatibilities"] == ["FARGATE"]
        assert task["ephemeral_storage"] == {"size_in_gib": dev.frontend.ephemeral_storage_gib}
    else:
        assert "launch_type" not in service
        assert service["capacity_provider_strategy"][0]["capacity_provider"] == cluster.capacity_provider_name
        assert task["requires_compatibilities"] == ["EC2"] and "ephemeral_storage" not in task
    (registration,) = service["load_balancer"]
    assert registration["target_group_arn"] == reference_to(stack, "aws_lb_target_group", "frontend", "arn")
    # Registering as the ALB's target opened the ALB -> frontend pair of rules, and only that.
    frontend_group = reference_to(stack, "aws_security_group", "sg/frontend", "id")
    alb_group = reference_to(stack, "aws_security_group", "sg/alb", "id")
    ingress = one(stack, "aws_vpc_security_group_ingress_rule", "sg/in-frontend-from-alb")
    egress = one(stack, "aws_vpc_security_group_egress_rule", "sg/out-alb-to-frontend")
    assert (ingress["security_group_id"], ingress["referenced_security_group_id"]) == (frontend_group, alb_group)
    assert (egress["security_group_id"], egress["referenced_security_group_id"]) == (alb_group, frontend_group)
    assert ingress["from_port"] == registration["container_port"] == 8000


# --- Grant where used: the execution role reads exactly the secrets it is given ---------


def services_with_secrets(secrets_per_service: list[dict[str, str]], *, kms_key: str | None = None) -> dict[str, Any]:
    def build(stack: TerraformStack) -> None:
        account = Account(stack, "account")
        iam = Iam(stack, "iam", name="dynamo-test", account=account, secrets_kms_key_arn=kms_key)
        security = SecurityGroups(
            stack,
            "sg",
            name="dynamo-test",
            vpc_id="vpc-0123",
            load_balancer=load(ENVIRONMENTS_DIR / "dev.toml").load_balancer,
        )
        logs = LogGroups(stack, "logs", name="dynamo-test", region="us-east-1", account=account, retention_days=7)
        for index, secrets in enumerate(secrets_per_service):
            pull = secrets.pop("pull", None)
            TaskService(
                stack,
                f"service-{index}",
                name=f"dynamo-test-{index}",
                placement=Placement.on(FARGATE, subnet_ids=["subnet-a"], security_groups=[security.frontend]),
                roles=iam.roles_for("frontend"),
                containers=[
                    Container(
                        name="app",
                        image="example/app:1",
                        command=["app"],
                        logs=logs.group(f"service-{index}"),
                        secrets=secrets,
                        repository_credentials_arn=pull,
                    )
                ],
                size=TaskSize(256, 512),
                deployment=Deployment(desired_count=1),
            )

    return synth(build)


def secrets_policy(stack: dict[str, Any]) -> dict[str, Any]:
    return json.loads(one(stack, "aws_iam_role_policy", "iam/execution-secrets")["policy"])


def depends_on(stack: dict[str, Any], index: int) -> list[str]:
    return one(stack, "aws_ecs_service", f"service-{index}/service")["depends_on"]


def test_services_without_secrets_grant_nothing_and_wait_only_for_the_managed_policy():
    stack = services_with_secrets([{}, {}])
    assert resources(stack, "aws_iam_role_policy") == {}
    managed = "aws_iam_role_policy_attachment." + next(
        logical
        for logical, body in resources(stack, "aws_iam_role_policy_attachment").items()
        if body["//"]["metadata"]["path"].endswith("iam/execution-managed")
    )
    assert depends_on(stack, 0) == depends_on(stack, 1) == [managed]


def test_the_execution_role_reads_exactly_the_secrets_its_services_were_given():
    stack = services_with_secrets([{"HF_TOKEN": HF_TOKEN}, {}, {"pull": PULL_CREDENTIALS}])
    (statement,) = secrets_policy(stack)["Statement"]
    assert statement["Action"] == "secretsmanager:GetSecretValue"
    assert statement["Resource"] == sorted([HF_TOKEN, PULL_CREDENTIALS])
    # A service that reads a secret waits for the grant; one that reads none does not.
    policy_address = "aws_iam_role_policy." + next(iter(resources(stack, "aws_iam_role_policy")))
    assert policy_address in depends_on(stack, 0) and policy_address in depends_on(stack, 2)
    assert policy_address not in depends_on(stack, 1)


def test_secrets_under_a_customer_managed_key_may_be_decrypted_only_through_secrets_manager():
    stack = services_with_secrets([{"HF_TOKEN": HF_TOKEN}], kms_key=KMS_KEY)
    read, decrypt = secrets_policy(stack)["Statement"]
    assert read["Resource"] == [HF_TOKEN]
    assert (decrypt["Action"], decrypt["Resource"]) == ("kms:Decrypt", KMS_KEY)
    assert decrypt["Condition"]["StringEquals"]["kms:ViaService"].startswith("secretsmanager.")


# --- the shape the components keep ---------------------------------------------------

MAX_CONSTRUCTOR_INPUTS = 8


# The construct's place in the tree is not an input: scope and id.
TREE_POSITION = ("self", "scope", "id_")


def component_classes() -> dict[str, type[Construct]]:
    found = {}
    for module_info in pkgutil.iter_modules(components.__path__):
        module = importlib.import_module(f"components.{module_info.name}")
        for name, value in vars(module).items():
            if inspect.isclass(value) and issubclass(value, Construct) and value.__module__ == module.__name__:
                found[f"{module.__name__}.{name}"] = value
    return found


def test_no_component_takes_more_than_eight_inputs():
    """Past eight, a component is taking its neighbours' fields one by one instead of their handles."""
    classes = component_classes()
    assert {"components.service.TaskService", "components.stack.DynamoStack"} <= set(classes)
    inputs = {
        name: [parameter for parameter in inspect.signature(cls.__init__).parameters if parameter not in TREE_POSITION]
        for name, cls in classes.items()
    }
    too_many = {name: given for name, given in inputs.items() if len(given) > MAX_CONSTRUCTOR_INPUTS}
    assert not too_many, too_many
