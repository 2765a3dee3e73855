"""What changes, per resource: the action (review/actions.py's words) and the attribute paths that differ.

From a plan, Terraform says the action. From two synthesized stacks it is inferred the way Terraform
would decide it: an attribute the provider cannot update in place forces a replacement (created first
where the resource has create_before_destroy), and a resource that refers to a value the change makes
unknown (the ARN of a replaced task definition, the latest version of an updated launch template)
is updated, or replaced when that reference is in such an attribute; so is one that refers to a value the
change edits (a scaling policy's resource_id, read from its scalable target's). The plan remains the authority:
a review from synthesized output says it is an inference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from review.actions import CREATE, DELETE, REPLACE, REPLACE_CBD, UNCHANGED, UPDATE, classify
from review.stack import REFERENCE, Stack, managed_changes

# Top-level attributes that force a new object (ForceNew in hashicorp/aws 5.100's schema), for the
# resource types the stacks create. Nested ForceNew attributes are named by their top-level block.
FORCES_REPLACEMENT: dict[str, frozenset[str]] = {
    resource_type: frozenset(attributes.split())
    for resource_type, attributes in {
        "aws_appautoscaling_policy": "name resource_id scalable_dimension service_namespace",
        "aws_appautoscaling_scheduled_action": "name resource_id scalable_dimension service_namespace",
        "aws_appautoscaling_target": "resource_id scalable_dimension service_namespace",
        "aws_autoscaling_group": "name name_prefix",
        "aws_cloudwatch_log_group": "name name_prefix",
        "aws_cloudwatch_metric_alarm": "alarm_name",
        "aws_ecs_capacity_provider": "name",
        "aws_ecs_cluster": "name",
        "aws_ecs_cluster_capacity_providers": "cluster_name",
        "aws_ecs_service": "cluster name launch_type scheduling_strategy deployment_controller iam_role",
        "aws_ecs_task_definition": (
            "container_definitions cpu memory family execution_role_arn task_role_arn network_mode volume "
            "requires_compatibilities runtime_platform ephemeral_storage placement_constraints ipc_mode pid_mode"
        ),
        "aws_efs_access_point": "file_system_id posix_user root_directory",
        "aws_efs_file_system": "creation_token encrypted kms_key_id performance_mode",
        "aws_efs_mount_target": "file_system_id subnet_id",
        "aws_eip": "domain",
        "aws_flow_log": "log_destination log_destination_type traffic_type vpc_id iam_role_arn",
        "aws_iam_instance_profile": "name name_prefix",
        "aws_iam_role": "name name_prefix path",
        "aws_iam_role_policy": "name role",
        "aws_iam_role_policy_attachment": "role policy_arn",
        "aws_kms_alias": "name",
        "aws_kms_key": "customer_master_key_spec key_usage",
        "aws_launch_template": "name",
        "aws_lb": "name name_prefix internal load_balancer_type",
        "aws_lb_listener": "load_balancer_arn",
        "aws_lb_target_group": "name name_prefix port protocol protocol_version target_type vpc_id",
        "aws_nat_gateway": "allocation_id connectivity_type subnet_id",
        "aws_route": "route_table_id destination_cidr_block",
        "aws_route_table": "vpc_id",
        "aws_route_table_association": "subnet_id",
        "aws_s3_bucket": "bucket",
        "aws_security_group": "name name_prefix description vpc_id",
        "aws_service_discovery_private_dns_namespace": "name vpc",
        "aws_service_discovery_service": "name namespace_id",
        "aws_sns_topic": "name fifo_topic",
        "aws_subnet": "availability_zone cidr_block vpc_id",
        "aws_vpc": "cidr_block instance_tenancy",
        "aws_vpc_endpoint": "service_name vpc_endpoint_type vpc_id",
        "aws_vpc_security_group_egress_rule": "security_group_id",
        "aws_vpc_security_group_ingress_rule": "security_group_id",
        "aws_wafv2_web_acl_association": "resource_arn web_acl_arn",
    }.items()
}

# Computed attributes an in-place update gives a new value.
CHANGED_BY_UPDATE: dict[str, frozenset[str]] = {"aws_launch_template": frozenset({"latest_version"})}


@dataclass(frozen=True)
class ResourceChange:
    address: str
    type: str
    action: str
    paths: tuple[str, ...]  # attribute paths that differ; "x (known after apply)" for a reference
    before: dict[str, Any] | None
    after: dict[str, Any] | None


def same(before: Any, after: Any) -> bool:
    """Equal, or both unset: a plan's prior state writes a default ("", [], false) where the new
    configuration leaves the attribute out (null), and neither is a change."""
    return (
        before == after
        or (before in (None, "", False) or before == [] or before == {})
        and (after in (None, "", False) or after == [] or after == {})
    )


def changed_paths(before: Any, after: Any, prefix: str = "") -> list[str]:
    """Leaf paths where two values differ: `a.b[0].c`."""
    if isinstance(before, dict) and isinstance(after, dict):
        found = []
        for key in sorted(set(before) | set(after)):
            found += changed_paths(before.get(key), after.get(key), f"{prefix}.{key}" if prefix else key)
        return found
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        found = []
        for index, (old, new) in enumerate(zip(before, after, strict=True)):
            found += changed_paths(old, new, f"{prefix}[{index}]")
        return found
    return [] if same(before, after) else [prefix]


def _top(path: str) -> str:
    return path.split(".")[0].split("[")[0]


def _references(value: Any, attribute: str = "") -> list[tuple[str, str, str]]:
    """(top-level attribute, referenced address, referenced attribute) for every reference in a value."""
    if isinstance(value, dict):
        return [ref for key, item in value.items() for ref in _references(item, attribute or key)]
    if isinstance(value, list):
        return [ref for item in value for ref in _references(item, attribute)]
    if isinstance(value, str):
        return [(attribute, f"{m['type']}.{m['name']}", m["attribute"]) for m in REFERENCE.finditer(value)]
    return []


def synth_changes(before: Stack, after: Stack) -> list[ResourceChange]:
    actions: dict[str, str] = {}
    paths: dict[str, list[str]] = {}
    for address in sorted(set(before.resources) | set(after.resources)):
        old, new = before.resources.get(address), after.resources.get(address)
        if old is None or new is None:
            actions[address] = CREATE if old is None else DELETE
            paths[address] = []
            continue
        differ = [path for path in changed_paths(old.values, new.values) if _top(path) not in new.ignored]
        if differ:
            paths[address] = differ
            actions[address] = _action(new.type, differ, new.create_before_destroy)
    _follow_references(after, actions, paths)
    return [
        ResourceChange(
            address,
            (before.resources.get(address) or after.resources[address]).type,
            action,
            tuple(paths[address]),
            before.resources[address].values if address in before.resources else None,
            after.resources[address].values if address in after.resources else None,
        )
        for address, action in sorted(actions.items())
    ]


def _action(resource_type: str, differ: list[str], create_before_destroy: bool) -> str:
    if {_top(path) for path in differ} & FORCES_REPLACEMENT.get(resource_type, frozenset()):
        return REPLACE_CBD if create_before_destroy else REPLACE
    return UPDATE


def _follow_references(after: Stack, actions: dict[str, str], paths: dict[str, list[str]]) -> None:
    """Until nothing more changes: resources that refer to a value the change gives another value, or one the
    plan will only know after apply."""
    settled = False
    while not settled:
        settled = True
        for address, resource in after.resources.items():
            if actions.get(address) in (CREATE, REPLACE, REPLACE_CBD):
                continue
            for attribute, target, target_attribute in _references(resource.values):
                if attribute in resource.ignored:
                    continue
                if target_attribute in {_top(path) for path in paths.get(target, [])}:
                    path = f"{attribute} (from {target}.{target_attribute})"
                elif _unknown_after(after, actions, target, target_attribute):
                    path = f"{attribute} (known after apply)"
                else:
                    continue
                if path in paths.get(address, []):
                    continue
                paths.setdefault(address, []).append(path)
                forced = _action(resource.type, [attribute], resource.create_before_destroy)
                actions[address] = forced if forced != UPDATE else actions.get(address, UPDATE)
                settled = False


def _unknown_after(after: Stack, actions: dict[str, str], target: str, attribute: str) -> bool:
    action = actions.get(target)
    resource = after.resources.get(target)
    if action in (CREATE, REPLACE, REPLACE_CBD):
        # A new object: what its configuration sets is known, everything computed is not.
        return resource is None or attribute not in resource.values
    return action == UPDATE and resource is not None and attribute in CHANGED_BY_UPDATE.get(resource.type, frozenset())


def plan_changes(plan: dict[str, Any]) -> list[ResourceChange]:
    """Terraform's own actions; paths where the known values differ, and what forces a replacement."""
    found = []
    for change in managed_changes(plan):
        body = change["change"]
        action = classify(body["actions"])
        if action in UNCHANGED:
            continue
        before, after = body.get("before"), body.get("after")
        differ = changed_paths(before, after) if before is not None and after is not None else []
        unknown = sorted(key for key, value in (body.get("after_unknown") or {}).items() if value is True)
        if before is not None and after is not None:
            differ = [path for path in differ if _top(path) not in unknown or _top(path) in after]
            if action == UPDATE:  # a new object's computed ids and ARNs are all unknown: no news
                differ += [f"{key} (known after apply)" for key in unknown if key in before and key not in after]
        found.append(ResourceChange(change["address"], change["type"], action, tuple(differ), before, after))
    return sorted(found, key=lambda change: change.address)
