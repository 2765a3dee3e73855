"""What a stack runs and may scale to, read from its resources only (never from the environment file), so
that a synthesized stack and a plan give the same figures."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from environments.catalog import GPU_INSTANCE_TYPES
from review.containers import containers
from review.stack import Stack, block, blocks, number


@dataclass(frozen=True)
class Role:
    """One ECS service's tasks."""

    name: str  # the service name without the stack's prefix: frontend, decode, etcd-0, ...
    min_tasks: int
    max_tasks: int
    cpu: int  # CPU units per task
    memory_mib: int
    gpus: int  # per task
    fargate: bool
    ephemeral_gib: int  # Fargate ephemeral storage per task (20 GiB are included)
    daemon: bool = False  # one task per GPU instance (the GPU metrics exporter), counted with the fleet


@dataclass(frozen=True)
class Capacity:
    instance_type: str
    gpus_per_instance: int
    fleet_min: int
    fleet_max: int
    spot: bool
    root_volume_gib: int
    root_volume_mibps: int
    root_volume_iops: int
    roles: tuple[Role, ...]
    nat_gateways: int
    load_balancers: int
    alarms: int
    log_groups: int
    custom_metrics: int

    def gpu_demand(self, *, at_max: bool) -> int:
        return sum(role.gpus * (role.max_tasks if at_max else role.min_tasks) for role in self.roles)

    def fleet_gpus(self, *, at_max: bool) -> int:
        return self.gpus_per_instance * (self.fleet_max if at_max else self.fleet_min)


def _scaling_bounds(stack: Stack) -> dict[str, tuple[int, int]]:
    """Service name -> (min, max) of its Application Auto Scaling target."""
    bounds = {}
    for target in stack.of_type("aws_appautoscaling_target"):
        resource_id = stack.resolve(target.values.get("resource_id", ""))
        service = resource_id.rsplit("/", 1)[-1]
        bounds[service] = (number(target.values.get("min_capacity")), number(target.values.get("max_capacity")))
    return bounds


def _task_definitions(stack: Stack) -> dict[str, dict[str, Any]]:
    return {str(task.values.get("family")): task.values for task in stack.of_type("aws_ecs_task_definition")}


def _roles(stack: Stack, fleet: tuple[int, int]) -> tuple[Role, ...]:
    bounds = _scaling_bounds(stack)
    tasks = _task_definitions(stack)
    roles = []
    for service in stack.of_type("aws_ecs_service"):
        name = str(service.values.get("name", ""))
        # Each service runs the task family of its own name (components/service.py).
        task = tasks.get(name, {})
        desired = number(service.values.get("desired_count"))
        daemon = service.values.get("scheduling_strategy") == "DAEMON"
        low, high = fleet if daemon else bounds.get(name, (desired, desired))
        gpus = sum(
            number(requirement.get("value"))
            for container in containers(task).values()
            for requirement in container.get("resourceRequirements", [])
            if requirement.get("type") == "GPU"
        )
        roles.append(
            Role(
                name=name.removeprefix(f"{stack.name}-"),
                min_tasks=low,
                max_tasks=high,
                cpu=number(task.get("cpu")),
                memory_mib=number(task.get("memory")),
                gpus=gpus,
                fargate="FARGATE" in (task.get("requires_compatibilities") or []),
                ephemeral_gib=number(block(task.get("ephemeral_storage")).get("size_in_gib"), 20),
                daemon=daemon,
            )
        )
    return tuple(sorted(roles, key=lambda role: role.name))


def _published_metrics(stack: Stack) -> int:
    """CloudWatch custom metrics the collectors publish (components/metrics.py): one per
    metric name selector and Service, read from each collector's own configuration."""
    published: set[tuple[str, str]] = set()
    for task in stack.of_type("aws_ecs_task_definition"):
        collector = containers(task.values).get("metrics", {})
        environment = {item["name"]: item["value"] for item in collector.get("environment", [])}
        if "AOT_CONFIG_CONTENT" in environment:
            config = json.loads(environment["AOT_CONFIG_CONTENT"])
            (scrape,) = config["receivers"]["prometheus"]["config"]["scrape_configs"]
            service = scrape["static_configs"][0]["labels"]["Service"]
            for declaration in config["exporters"]["awsemf"]["metric_declarations"]:
                published.update((service, selector) for selector in declaration["metric_name_selectors"])
    return len(published)


def capacity(stack: Stack) -> Capacity:
    # One of each in a stack (components/gpu_cluster.py).
    template_values = next((resource.values for resource in stack.of_type("aws_launch_template")), {})
    group_values = next((resource.values for resource in stack.of_type("aws_autoscaling_group")), {})
    instance_type = str(template_values.get("instance_type", ""))
    facts = GPU_INSTANCE_TYPES.get(instance_type)
    distribution = block(block(group_values.get("mixed_instances_policy")).get("instances_distribution"))
    root = next(
        (block(device.get("ebs")) for device in blocks(template_values.get("block_device_mappings"))),
        {},
    )
    metric_filters = stack.of_type("aws_cloudwatch_log_metric_filter")
    return Capacity(
        instance_type=instance_type,
        gpus_per_instance=facts.gpus if facts else 0,
        fleet_min=number(group_values.get("min_size")),
        fleet_max=number(group_values.get("max_size")),
        spot=bool(distribution) and number(distribution.get("on_demand_percentage_above_base_capacity"), 100) < 100,
        root_volume_gib=number(root.get("volume_size")),
        root_volume_mibps=number(root.get("throughput")),
        root_volume_iops=number(root.get("iops")),
        roles=_roles(stack, (number(group_values.get("min_size")), number(group_values.get("max_size")))),
        nat_gateways=len(stack.of_type("aws_nat_gateway")),
        load_balancers=len(stack.of_type("aws_lb")),
        alarms=len(stack.of_type("aws_cloudwatch_metric_alarm")),
        log_groups=len(stack.of_type("aws_cloudwatch_log_group")),
        custom_metrics=sum(len(blocks(f.values.get("metric_transformation"))) for f in metric_filters)
        + _published_metrics(stack),
    )
