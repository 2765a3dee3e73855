"""One ECS service with its task definition: the shape every part of Dynamo runs in."""
from __future__ import annotations

import json
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
        depends_on: list[ITerraformDependable] | None = None,
    ) -> None:
        """``capacity_provider`` None means Fargate; otherwise the EC2 capacity provider to place on."""
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
        )
        placement: dict[str, Any]
        if on_fargate:
            placement = {"launch_type": "FARGATE", "platform_version": "LATEST"}
        else:
            placement = {
                "capacity_provider_strategy": [
                    ecs_service.EcsServiceCapacityProviderStrategy(capacity_provider=capacity_provider, weight=1, base=0)
                ],
                "ordered_placement_strategy": [
                    ecs_service.EcsServiceOrderedPlacementStrategy(type="spread", field="attribute:ecs.availability-zone"),
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
            network_configuration={"subnets": subnet_ids, "security_groups": security_group_ids, "assign_public_ip": False},
            deployment_circuit_breaker={"enable": True, "rollback": True},
            deployment_minimum_healthy_percent=minimum_healthy_percent,
            deployment_maximum_percent=maximum_percent,
            availability_zone_rebalancing="ENABLED",
            enable_ecs_managed_tags=True,
            propagate_tags="SERVICE",
            wait_for_steady_state=wait_for_steady_state or None,
            depends_on=depends_on,
            load_balancer=[ecs_service.EcsServiceLoadBalancer(**load_balancer)] if load_balancer else None,
            health_check_grace_period_seconds=health_check_grace_seconds,
            service_registries={"registry_arn": service_registry_arn} if service_registry_arn else None,
            # Application Auto Scaling owns the count of an autoscaled service after creation.
            lifecycle=TerraformResourceLifecycle(ignore_changes=["desired_count"]) if autoscaled else None,
            **placement,
        )
        self.service: ecs_service.EcsService = service
        self.service_name: str = service.name
        self.task_definition_arn: str = task.arn
        self.task_family: str = task.family
