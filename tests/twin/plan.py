"""What the twin runs, read from one synthesized stack (its cdk.tf.json), never from the
environment file: services and their containers, security groups and their rules, Cloud
Map names, the ALB's target group, and what the GPU instances' user data does to the
model-cache directory."""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REFERENCE = re.compile(r"^\$\{(?P<type>[a-z0-9_]+)\.(?P<id>[A-Za-z0-9_-]+)\.(?P<attribute>[a-z0-9_]+)\}$")
BASE64_USER_DATA = re.compile(r'^\$\{base64encode\("(?P<body>.*)"\)\}$', re.DOTALL)


@dataclass(frozen=True)
class Rule:
    """One aws_vpc_security_group_{ingress,egress}_rule (TCP only: the stacks have no other)."""

    name: str  # construct path below the stack, e.g. security-groups/in-frontend-from-alb
    direction: str  # "ingress" or "egress"
    group: str  # security group logical id the rule belongs to
    from_port: int
    to_port: int
    peer_group: str | None
    cidr: str | None

    def admits(self, port: int, peer_groups: set[str], peer_address: str) -> bool:
        if not self.from_port <= port <= self.to_port:
            return False
        if self.peer_group is not None:
            return self.peer_group in peer_groups
        return ipaddress.ip_address(peer_address) in ipaddress.ip_network(self.cidr)

    @property
    def ports(self) -> str:
        return str(self.from_port) if self.from_port == self.to_port else f"{self.from_port}-{self.to_port}"


@dataclass(frozen=True)
class Volume:
    """Where a task's volume lives: on the instance (host_path), on EFS (persistent: the
    file system and access point, the same data for every task that mounts it), or on the
    task's own storage (neither: new and empty for every task)."""

    name: str
    host_path: str | None = None
    persistent: str | None = None


@dataclass(frozen=True)
class Service:
    name: str  # ECS service name, dynamo-<env>-<role>
    role: str  # frontend, decode, prefill, etcd, nats
    desired_count: int
    container: dict[str, Any]
    volumes: tuple[Volume, ...]
    security_groups: tuple[str, ...]
    cloud_map_name: str | None  # e.g. etcd.dynamo-staging.local
    target_port: int | None  # container port registered in the ALB target group
    # The metrics collector beside the main container, if any (components/metrics.py). The twin
    # does not run its image; it reads /metrics where the collector's configuration says to.
    collector: dict[str, Any] | None = None


@dataclass(frozen=True)
class Balancer:
    security_groups: tuple[str, ...]
    health_check: dict[str, Any]  # the target group's health_check block


@dataclass(frozen=True)
class StackPlan:
    stack_name: str
    services: dict[str, Service]  # by role
    group_names: dict[str, str]  # security group logical id -> its name
    rules: tuple[Rule, ...]
    balancer: Balancer
    instance_user_data: str  # the GPU launch template's user data script, decoded
    not_run: dict[str, str]  # service name -> why the twin does not run it


def _referenced(value: str, resource_type: str) -> str:
    match = REFERENCE.match(value)
    assert match and match["type"] == resource_type, f"expected a reference to {resource_type}, got {value!r}"
    return match["id"]


def _path(body: dict) -> str:
    return body["//"]["metadata"]["path"].split("/", 1)[1]


def _volume(volume: dict) -> Volume:
    efs = volume.get("efs_volume_configuration")
    if efs:
        access_point = (efs.get("authorization_config") or {}).get("access_point_id", "")
        file_system = _referenced(efs["file_system_id"], "aws_efs_file_system")
        access = _referenced(access_point, "aws_efs_access_point") if access_point else "root"
        return Volume(volume["name"], persistent=f"{file_system}/{access}")
    return Volume(volume["name"], host_path=volume.get("host_path"))


def read_plan(stack_file: Path) -> StackPlan:
    stack = json.loads(Path(stack_file).read_text())
    resources = stack["resource"]
    stack_name = next(iter(resources["aws_vpc"].values()))["//"]["metadata"]["path"].split("/", 1)[0]

    namespaces = {
        logical: body["name"] for logical, body in resources["aws_service_discovery_private_dns_namespace"].items()
    }
    namespace_type = "aws_service_discovery_private_dns_namespace"
    cloud_map = {
        logical: f"{body['name']}.{namespaces[_referenced(body['dns_config']['namespace_id'], namespace_type)]}"
        for logical, body in resources["aws_service_discovery_service"].items()
    }
    task_definitions = resources["aws_ecs_task_definition"]
    services = {}
    not_run = {}
    for body in resources["aws_ecs_service"].values():
        if body.get("scheduling_strategy") == "DAEMON":
            not_run[body["name"]] = "a daemon on the GPU instances (the DCGM exporter needs GPUs; there are none here)"
            continue
        definition = task_definitions[_referenced(body["task_definition"], "aws_ecs_task_definition")]
        definitions = json.loads(definition["container_definitions"])
        (container,) = [each for each in definitions if each["essential"]]
        sidecars = {each["name"]: each for each in definitions if not each["essential"]}
        assert set(sidecars) <= {"metrics"}, f"{body['name']}: the twin knows no sidecar but the metrics collector"
        registry = body.get("service_registries")
        balancers = body.get("load_balancer") or []
        role = body["name"].removeprefix(f"{stack_name}-")
        services[role] = Service(
            name=body["name"],
            role=role,
            desired_count=body["desired_count"],
            container=container,
            volumes=tuple(_volume(volume) for volume in definition.get("volume") or []),
            security_groups=tuple(
                _referenced(group, "aws_security_group") for group in body["network_configuration"]["security_groups"]
            ),
            cloud_map_name=cloud_map[_referenced(registry["registry_arn"], "aws_service_discovery_service")]
            if registry
            else None,
            target_port=balancers[0]["container_port"] if balancers else None,
            collector=sidecars.get("metrics"),
        )

    rules = []
    for direction in ("ingress", "egress"):
        for body in resources.get(f"aws_vpc_security_group_{direction}_rule", {}).values():
            assert body["ip_protocol"] == "tcp", f"{_path(body)}: the twin enforces TCP rules only"
            peer = body.get("referenced_security_group_id")
            rules.append(
                Rule(
                    name=_path(body),
                    direction=direction,
                    group=_referenced(body["security_group_id"], "aws_security_group"),
                    from_port=body["from_port"],
                    to_port=body["to_port"],
                    peer_group=_referenced(peer, "aws_security_group") if peer else None,
                    cidr=body.get("cidr_ipv4"),
                )
            )
    (alb,) = resources["aws_lb"].values()
    (target_group,) = resources["aws_lb_target_group"].values()
    (template,) = resources["aws_launch_template"].values()
    user_data = BASE64_USER_DATA.match(template["user_data"])
    assert user_data, 'the launch template\'s user data is not base64encode("...")'
    return StackPlan(
        stack_name=stack_name,
        services=services,
        group_names={logical: body["name"] for logical, body in resources["aws_security_group"].items()},
        rules=tuple(rules),
        balancer=Balancer(
            security_groups=tuple(_referenced(group, "aws_security_group") for group in alb["security_groups"]),
            health_check=target_group["health_check"],
        ),
        # An HCL string literal escapes like JSON; "$${" would be a literal "${" (none here).
        instance_user_data=json.loads(f'"{user_data["body"]}"').replace("$${", "${"),
        not_run=not_run,
    )
