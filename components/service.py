"""One ECS service with its task definition: the shape every part of Dynamo runs in."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from cdktf import ITerraformDependable, TerraformResourceLifecycle
from constructs import Construct

from components.aws import ecs_service, ecs_task_definition
from components.container import Container
from components.iam import TaskRoles
from components.security_groups import SecurityGroup

if TYPE_CHECKING:
    from components.load_balancer import LoadBalancerTarget


class Cluster(Protocol):
    cluster_name: str
    cluster_arn: str
    capacity_provider_name: str | None


@dataclass(frozen=True)
class Placement:
    """Where a service's tasks run: a cluster (on Fargate when ``capacity_provider`` is None,
    else on that EC2 capacity provider), the subnets and the tasks' security groups."""

    cluster_name: str
    cluster_arn: str
    capacity_provider: str | None
    subnet_ids: list[str]
    security_groups: list[SecurityGroup]

    @classmethod
    def on(cls, cluster: Cluster, *, subnet_ids: list[str], security_groups: list[SecurityGroup]) -> Placement:
        return cls(
            cluster.cluster_name, cluster.cluster_arn, cluster.capacity_provider_name, subnet_ids, security_groups
        )

    @property
    def on_fargate(self) -> bool:
        return self.capacity_provider is None


@dataclass(frozen=True)
class TaskSize:
    cpu: int
    memory: int
    ephemeral_storage_gib: int | None = None  # Fargate only


@dataclass(frozen=True)
class Deployment:
    """How ECS and Terraform roll the service.

    ``after``: what the tasks need before any of them starts (an etcd member's data, the
    member before it); the service is created or updated only after them, and after the
    execution role's policies for the container's secrets.
    ``wait_for_steady_state``: Terraform waits, after creating or updating the service,
    until it runs its desired count with one deployment left.
    ``replace_before_destroy``: when the service must be replaced (it moves to another
    cluster), the new one is created and steady before the old one is deleted. Only safe
    where a replacement never keeps both name and cluster: ECS service names are unique
    per cluster.
    """

    desired_count: int
    minimum_healthy_percent: int = 100
    maximum_percent: int = 200
    autoscaled: bool = False
    health_check_grace_seconds: int | None = None
    wait_for_steady_state: bool = False
    replace_before_destroy: bool = False
    after: Sequence[ITerraformDependable] = ()


class TaskService(Construct):
    """An awsvpc task definition with one Dynamo (or etcd, NATS) container and its sidecars, and its service.

    Given the container, it grants the execution role read on the container's secrets;
    given a load balancer target, it registers there and lets the ALB reach the tasks.

    Attributes:
        service_name, cluster_name, task_definition_arn, task_family.
        service: the aws_ecs_service resource, for another resource's ``depends_on``.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        placement: Placement,
        roles: TaskRoles,
        containers: Sequence[Container],
        size: TaskSize,
        deployment: Deployment,
        target: LoadBalancerTarget | None = None,
        registry_arn: str | None = None,
    ) -> None:
        """``containers``: the main one (Dynamo, etcd or NATS: the load balancer's target, its
        volumes the task's) first, then its sidecars (the metrics collector);
        ``registry_arn``: the Cloud Map service the tasks register in."""
        super().__init__(scope, id_)
        container = containers[0]
        task = ecs_task_definition.EcsTaskDefinition(
            self,
            "task",
            family=name,
            network_mode="awsvpc",
            requires_compatibilities=["FARGATE" if placement.on_fargate else "EC2"],
            cpu=str(size.cpu),
            memory=str(size.memory),
            execution_role_arn=roles.execution.arn,
            task_role_arn=roles.task_role_arn,
            container_definitions=json.dumps([each.definition() for each in containers]),
            runtime_platform={"operating_system_family": "LINUX", "cpu_architecture": "X86_64"},
            ephemeral_storage=(
                {"size_in_gib": size.ephemeral_storage_gib}
                if placement.on_fargate and size.ephemeral_storage_gib
                else None
            ),
            volume=container.volumes or None,
            # A task definition revision is immutable: every change is a new revision
            # (a replacement in the plan). skip_destroy keeps the old revision registered
            # instead of deregistering it, so a service can still be rolled back to it
            # ("Whether to retain the old revision when the resource is destroyed or
            # replacement is necessary": aws_ecs_task_definition, AWS provider docs), and
            # the new revision is registered before the old one leaves the state.
            # `terraform destroy` leaves the revisions too; they cost nothing.
            skip_destroy=True,
            lifecycle=TerraformResourceLifecycle(create_before_destroy=True),
        )
        load_balancer = None
        if target is not None:
            load_balancer = [target.register(container.name, placement.security_groups[0])]
        secret_arns = [arn for each in containers for arn in each.secret_arns]
        needs = [*roles.execution.grant_read_secrets(secret_arns), *deployment.after]
        service = ecs_service.EcsService(
            self,
            "service",
            name=name,
            cluster=placement.cluster_arn,
            task_definition=task.arn,
            desired_count=deployment.desired_count,
            network_configuration={
                "subnets": placement.subnet_ids,
                "security_groups": [group.id for group in placement.security_groups],
                "assign_public_ip": False,
            },
            deployment_circuit_breaker={"enable": True, "rollback": True},
            deployment_minimum_healthy_percent=deployment.minimum_healthy_percent,
            deployment_maximum_percent=deployment.maximum_percent,
            availability_zone_rebalancing="ENABLED",
            enable_ecs_managed_tags=True,
            propagate_tags="SERVICE",
            load_balancer=load_balancer,
            health_check_grace_period_seconds=deployment.health_check_grace_seconds,
            service_registries={"registry_arn": registry_arn} if registry_arn else None,
            lifecycle=_lifecycle(deployment),
            # With create_before_destroy, Terraform deletes the old service as soon as the
            # new one is created; waiting for the new one to run its desired count ("like
            # aws ecs wait services-stable": aws_ecs_service, AWS provider docs) keeps the
            # old one serving until then. ECS counts a task as running before the ALB has
            # seen it pass its health checks, so that much of a gap remains. Every other
            # update of the service waits for its rollout too, within the resource's
            # timeouts (provider default 20 minutes; the provider honours them since
            # v4.22.0, hashicorp/terraform-provider-aws#16012): a cold pull of the ~12 GB
            # image on Fargate, or a GPU instance to launch first, needs more.
            wait_for_steady_state=(
                True if deployment.wait_for_steady_state or deployment.replace_before_destroy else None
            ),
            timeouts=(
                ecs_service.EcsServiceTimeouts(create="30m", update="30m")
                if deployment.replace_before_destroy
                else None
            ),
            depends_on=needs,
            **_capacity(placement),
        )
        self.service: ecs_service.EcsService = service
        self.service_name: str = service.name
        self.cluster_name: str = placement.cluster_name
        self.task_definition_arn: str = task.arn
        self.task_family: str = task.family


def _lifecycle(deployment: Deployment) -> TerraformResourceLifecycle | None:
    if not (deployment.autoscaled or deployment.replace_before_destroy):
        return None
    return TerraformResourceLifecycle(
        # Application Auto Scaling owns the count of an autoscaled service after creation.
        ignore_changes=["desired_count"] if deployment.autoscaled else None,
        create_before_destroy=True if deployment.replace_before_destroy else None,
    )


def _capacity(placement: Placement) -> dict[str, Any]:
    if placement.on_fargate:
        return {"launch_type": "FARGATE", "platform_version": "LATEST"}
    return {
        "capacity_provider_strategy": [
            ecs_service.EcsServiceCapacityProviderStrategy(
                capacity_provider=placement.capacity_provider, weight=1, base=0
            )
        ],
        "ordered_placement_strategy": [
            ecs_service.EcsServiceOrderedPlacementStrategy(type="spread", field="attribute:ecs.availability-zone"),
            ecs_service.EcsServiceOrderedPlacementStrategy(type="binpack", field="memory"),
        ],
    }
