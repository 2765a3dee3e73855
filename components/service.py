"""One ECS service with its task definition: the shape every part of Dynamo runs in."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from cdktf import ITerraformDependable, TerraformResourceLifecycle
from constructs import Construct

from components.aws import ecs_service, ecs_task_definition


class TaskService(Construct):
    """An awsvpc task definition and its service, on Fargate or on an EC2 capacity provider.

    Attributes:
        service_name, task_definition_arn, task_family.
        service: the aws_ecs_service resource, for another resource's ``depends_on``.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        cluster_arn: str,
        container: dict[str, Any],
        cpu: int,
        memory: int,
        execution_role_arn: str,
        task_role_arn: str,
        subnet_ids: list[str],
        security_group_ids: list[str],
        desired_count: int,
        capacity_provider: str | None = None,
        ephemeral_storage_gib: int | None = None,
        volumes: list[ecs_task_definition.EcsTaskDefinitionVolume] | None = None,
        minimum_healthy_percent: int = 100,
        maximum_percent: int = 200,
        autoscaled: bool = False,
        load_balancer: dict[str, Any] | None = None,
        health_check_grace_seconds: int | None = None,
        service_registry_arn: str | None = None,
        wait_for_steady_state: bool = False,
        needs: Sequence[ITerraformDependable] = (),
        replace_before_destroy: bool = False,
    ) -> None:
        """``capacity_provider`` None means Fargate; otherwise the EC2 capacity provider to place on.

        ``needs``: what the tasks need before any of them starts (the execution role's
        policies, an etcd member's data, the member before it); the service is created or
        updated only after them.
        ``wait_for_steady_state``: Terraform waits, after creating or updating the service,
        until it runs its desired count with one deployment left.
        ``replace_before_destroy``: when the service must be replaced (it moves to another
        cluster), the new one is created and steady before the old one is deleted. Only
        safe where a replacement never keeps both name and cluster: ECS service names are
        unique per cluster.
        """
        super().__init__(scope, id_)
        on_fargate = capacity_provider is None
        task = ecs_task_definition.EcsTaskDefinition(
            self,
            "task",
            family=name,
            network_mode="awsvpc",
            requires_compatibilities=["FARGATE" if on_fargate else "EC2"],
            cpu=str(cpu),
            memory=str(memory),
            execution_role_arn=execution_role_arn,
            task_role_arn=task_role_arn,
            container_definitions=json.dumps([container]),
            runtime_platform={"operating_system_family": "LINUX", "cpu_architecture": "X86_64"},
            ephemeral_storage={"size_in_gib": ephemeral_storage_gib} if on_fargate and ephemeral_storage_gib else None,
            volume=volumes,
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
        placement: dict[str, Any]
        if on_fargate:
            placement = {"launch_type": "FARGATE", "platform_version": "LATEST"}
        else:
            placement = {
                "capacity_provider_strategy": [
                    ecs_service.EcsServiceCapacityProviderStrategy(
                        capacity_provider=capacity_provider, weight=1, base=0
                    )
                ],
                "ordered_placement_strategy": [
                    ecs_service.EcsServiceOrderedPlacementStrategy(
                        type="spread", field="attribute:ecs.availability-zone"
                    ),
                    ecs_service.EcsServiceOrderedPlacementStrategy(type="binpack", field="memory"),
                ],
            }
        service = ecs_service.EcsService(
            self,
            "service",
            name=name,
            cluster=cluster_arn,
            task_definition=task.arn,
            desired_count=desired_count,
            network_configuration={
                "subnets": subnet_ids,
                "security_groups": security_group_ids,
                "assign_public_ip": False,
            },
            deployment_circuit_breaker={"enable": True, "rollback": True},
            deployment_minimum_healthy_percent=minimum_healthy_percent,
            deployment_maximum_percent=maximum_percent,
            availability_zone_rebalancing="ENABLED",
            enable_ecs_managed_tags=True,
            propagate_tags="SERVICE",
            load_balancer=[ecs_service.EcsServiceLoadBalancer(**load_balancer)] if load_balancer else None,
            health_check_grace_period_seconds=health_check_grace_seconds,
            service_registries={"registry_arn": service_registry_arn} if service_registry_arn else None,
            lifecycle=TerraformResourceLifecycle(
                # Application Auto Scaling owns the count of an autoscaled service after creation.
                ignore_changes=["desired_count"] if autoscaled else None,
                create_before_destroy=True if replace_before_destroy else None,
            )
            if autoscaled or replace_before_destroy
            else None,
            # With create_before_destroy, Terraform deletes the old service as soon as the
            # new one is created; waiting for the new one to run its desired count ("like
            # aws ecs wait services-stable": aws_ecs_service, AWS provider docs) keeps the
            # old one serving until then. ECS counts a task as running before the ALB has
            # seen it pass its health checks, so that much of a gap remains. Every other
            # update of the service waits for its rollout too, within the resource's
            # timeouts (provider default 20 minutes; the provider honours them since
            # v4.22.0, hashicorp/terraform-provider-aws#16012): a cold pull of the ~12 GB
            # image on Fargate, or a GPU instance to launch first, needs more.
            wait_for_steady_state=True if wait_for_steady_state or replace_before_destroy else None,
            timeouts=ecs_service.EcsServiceTimeouts(create="30m", update="30m") if replace_before_destroy else None,
            depends_on=list(needs) or None,
            **placement,
        )
        self.service: ecs_service.EcsService = service
        self.service_name: str = service.name
        self.task_definition_arn: str = task.arn
        self.task_family: str = task.family
