"""What a change risks: one line per flag, saying what happens, why it matters and what to do."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from review.actions import CREATE, DELETE, REPLACE, REPLACE_CBD, SERVING_PATH_AND_STATE, UPDATE
from review.capacity import Capacity
from review.changes import ResourceChange
from review.containers import containers
from review.flows import RECORD_FILE, RULE_TYPES, ObservedFlow, admitted, carries_observed_flow
from review.stack import Stack, block

# State the upgrade table does not list because no routine change touches it: etcd's data.
STATE = SERVING_PATH_AND_STATE | {"aws_efs_file_system", "aws_efs_access_point"}
RECORD = f"{RECORD_FILE.parent.parent.name}/{RECORD_FILE.parent.name}/{RECORD_FILE.name}"
# A Dynamo image tag: the release is its first two numbers (1.2.1-cuda13 is release 1.2).
RELEASE = re.compile(r"^(\d+)\.(\d+)")


@dataclass(frozen=True)
class Flag:
    severity: str  # "high" (a gap in service or lost state) or "check" (review it knowingly)
    text: str


def flags(
    changes: list[ResourceChange], *, after: Capacity, stack: Stack, observed: list[ObservedFlow] | None
) -> list[Flag]:
    """``stack``: the stack as the change leaves it; ``observed``: the twin's record of its flows, if any."""
    stack_name = stack.name
    if changes and all(change.action == DELETE for change in changes) and not after.roles:
        return [
            Flag(
                "high",
                f"every resource of {stack_name} is destroyed ({len(changes)}), the ALB, the services and etcd's data "
                "with them. Do: destroy an environment deliberately (`terraform destroy` after a backup), not as a "
                "side effect of a merge; restore the environment file if it was not meant to go.",
            )
        ]
    found: list[Flag] = []
    for change in changes:
        found += _replacements(change)
        found += _load_balancer(change)
        found += _ingress(change)
        found += _iam(change)
        found += _image(change, stack_name)
    found += _rollouts_to_zero(changes, after, stack_name)
    found += _security_groups(changes, stack, observed)
    return sorted(set(found), key=lambda flag: (flag.severity != "high", flag.text))  # high first


def _replacements(change: ResourceChange) -> list[Flag]:
    if change.type not in STATE:
        return []
    what = f"`{change.address}`"
    if change.action == REPLACE:
        return [
            Flag(
                "high",
                f"{what} is destroyed before its replacement exists: a gap in service or lost state. "
                "Do: make it create-before-destroy, or apply in a maintenance window.",
            )
        ]
    if change.action == REPLACE_CBD:
        return [
            Flag(
                "check",
                f"{what} is replaced (the new one is created first): a new object and id; anything outside this "
                "stack that names the old one breaks. Do: confirm the cutover in the plan and watch the rollout.",
            )
        ]
    if change.action == DELETE:
        return [
            Flag(
                "high",
                f"{what} is deleted: it serves traffic or holds state. Do: confirm it is meant to go, "
                "and that nothing still uses it.",
            )
        ]
    return []


def _load_balancer(change: ResourceChange) -> list[Flag]:
    if change.type != "aws_lb" or change.before is None:
        return []
    after = change.after or {}
    found = []
    if change.before.get("enable_deletion_protection") in (True, "true") and after.get(
        "enable_deletion_protection"
    ) not in (True, "true"):
        found.append(
            Flag(
                "high",
                f"`{change.address}`: deletion protection turned off: the ALB can now be deleted by any apply. "
                "Do: keep `load_balancer.deletion_protection = true` unless the ALB is meant to go.",
            )
        )
    logs_before = block(change.before.get("access_logs")).get("enabled") in (True, "true")
    if logs_before and block(after.get("access_logs")).get("enabled") not in (True, "true"):
        found.append(
            Flag(
                "high",
                f"`{change.address}`: ALB access logs turned off: requests stop being recorded. "
                "Do: keep `load_balancer.access_logs = true` where they were on.",
            )
        )
    return found


def _ingress(change: ResourceChange) -> list[Flag]:
    if change.type != "aws_vpc_security_group_ingress_rule" or change.action not in (CREATE, UPDATE, REPLACE_CBD):
        return []
    after = change.after or {}
    before = change.before or {}
    found = []
    for key in ("cidr_ipv4", "cidr_ipv6"):
        cidr = after.get(key)
        if cidr and cidr != before.get(key):
            ports = f"{after.get('from_port')}-{after.get('to_port')}/{after.get('ip_protocol')}"
            world = " (the whole internet)" if cidr in ("0.0.0.0/0", "::/0") else ""
            found.append(
                Flag(
                    "check",
                    f"`{change.address}`: new ingress from {cidr}{world} on {ports}: more clients can reach this "
                    "group. Do: confirm it is a listener port meant for them (`load_balancer.allowed_cidrs`).",
                )
            )
    return found


def _statements(policy: Any) -> list[dict[str, Any]]:
    if not isinstance(policy, str):
        return []
    try:
        statements = json.loads(policy).get("Statement", [])
    except ValueError:
        return []
    return [statements] if isinstance(statements, dict) else list(statements)


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else [str(item) for item in value or []]


def _grants(policy: Any) -> set[tuple[str, str]]:
    """(action, resource) pairs a policy allows."""
    return {
        (action, resource)
        for statement in _statements(policy)
        if statement.get("Effect") == "Allow"
        for action in _as_list(statement.get("Action"))
        for resource in _as_list(statement.get("Resource"))
    }


def _iam(change: ResourceChange) -> list[Flag]:
    if change.type == "aws_iam_role_policy_attachment" and change.action in (CREATE, REPLACE, REPLACE_CBD):
        arn = (change.after or {}).get("policy_arn")
        return [
            Flag(
                "check",
                f"`{change.address}`: managed policy `{arn}` attached: a role gains every permission in it. "
                "Do: confirm the role needs them.",
            )
        ]
    if change.type != "aws_iam_role_policy" or change.after is None:
        return []
    old, new = _grants((change.before or {}).get("policy")), _grants(change.after.get("policy"))
    old_actions = {action for action, _ in old}
    added_actions = sorted({action for action, _ in new} - old_actions)
    wildcards = sorted({resource for _, resource in new - old if resource.endswith("*")})
    if not added_actions and not wildcards:
        return []
    parts = []
    if added_actions:
        parts.append(f"new actions {', '.join(f'`{action}`' for action in added_actions)}")
    if wildcards:
        parts.append(f"wildcard resources {', '.join(f'`{resource}`' for resource in wildcards)}")
    return [
        Flag(
            "check",
            f"`{change.address}`: IAM widens ({'; '.join(parts)}): a role may do more than before. "
            "Do: confirm each is needed, on the narrowest resource.",
        )
    ]


def _release(image: Any) -> tuple[str, tuple[int, int] | None]:
    repository, _, tag = str(image).rpartition(":")
    match = RELEASE.match(tag)
    return repository, (int(match[1]), int(match[2])) if match else None


def _image(change: ResourceChange, stack_name: str) -> list[Flag]:
    if change.type != "aws_ecs_task_definition" or change.before is None or change.after is None:
        return []
    old, new = containers(change.before), containers(change.after)
    found = []
    for name in sorted(set(old) & set(new)):
        before_image, after_image = old[name].get("image"), new[name].get("image")
        repository, release = _release(after_image)
        _, earlier = _release(before_image)
        if "ai-dynamo" in repository and release and earlier and release != earlier:
            found.append(
                Flag(
                    "check",
                    f"Dynamo {earlier[0]}.{earlier[1]} -> {release[0]}.{release[1]} (`{before_image}` -> "
                    f"`{after_image}`): a new release may change flags, ports and health behaviour. Do: re-check "
                    f"the runtime contract (DESIGN.md) and run the twin on this stack "
                    f"(`make twin ENV={stack_name.removeprefix('dynamo-')}`).",
                )
            )
    return found


def _rollouts_to_zero(changes: list[ResourceChange], after: Capacity, stack_name: str) -> list[Flag]:
    tasks = {role.name: role.min_tasks for role in after.roles}
    found = []
    for change in changes:
        if change.type != "aws_ecs_service" or change.after is None:
            continue
        now = str(change.after.get("deployment_minimum_healthy_percent", ""))
        was = str((change.before or {}).get("deployment_minimum_healthy_percent", ""))
        role = str(change.after.get("name", "")).removeprefix(f"{stack_name}-")
        if now == "0" and was != "0" and tasks.get(role, 0) <= 1:
            found.append(
                Flag(
                    "high",
                    f"`{change.address}`: a rollout may stop the only {role} task first "
                    "(deployment_minimum_healthy_percent 0, one task): the role serves nothing for a whole model "
                    f'load. Do: `rollout = "surge"` or `min_count >= 2` in [{role}].',
                )
            )
    return found


def _security_groups(changes: list[ResourceChange], stack: Stack, observed: list[ObservedFlow] | None) -> list[Flag]:
    touched = [change for change in changes if change.type in RULE_TYPES or change.type == "aws_security_group"]
    twin = f"`make twin ENV={stack.name.removeprefix('dynamo-')}`"
    if observed is None:
        if not touched:
            return []
        return [
            Flag(
                "check",
                f"security groups change ({_count(len(touched), 'rule or group', 'rules or groups')}), and the twin "
                f"has no record of {stack.name}'s flows ({RECORD}): a rule that blocks one of Dynamo's flows "
                "(README: Security, Private) stops serving as surely as an open one leaks. "
                f"Do: run the twin on this stack ({twin}), which enforces the rules and counts drops.",
            )
        ]
    dropped: dict[tuple[str, ...], list[str]] = {}  # by the rules that admitted them when recorded
    unknown = []
    for flow in observed:
        verdict = admitted(stack, flow)
        if verdict is False:
            dropped.setdefault(flow.rules, []).append(f"`{flow.label}`")
        elif verdict is None:
            unknown.append(f"`{flow.label}`")
    found = [_dropped(labels, rules, stack.name, twin) for rules, labels in dropped.items()]
    if unknown:
        found.append(
            Flag(
                "check",
                f"whether {_count(len(unknown), 'connection', 'connections')} the twin observed while {stack.name} "
                f"served ({', '.join(unknown)}) stay admitted is known only after apply: the groups or rules they "
                f"need are created or replaced. Do: run the twin on the synthesized stack ({twin}) before applying.",
            )
        )
    # Between the stack's own parts only: a CIDR rule is a client's way in (flagged as new ingress) or the
    # way out to AWS's APIs, neither of which the recorded flows describe.
    widening = sorted(
        change.address
        for change in touched
        if change.type in RULE_TYPES
        and change.action != DELETE
        and "referenced_security_group_id" in stack.resources[change.address].values
        and not carries_observed_flow(stack, stack.resources[change.address], observed)
    )
    if widening:
        found.append(
            Flag(
                "check",
                f"{_count(len(widening), 'rule admits', 'rules admit')} connections between {stack.name}'s parts "
                f"that the twin never observed while it served: {', '.join(f'`{address}`' for address in widening)}. "
                "Each lets more of the stack reach more of it than serving needs (unless it serves what the twin "
                "cannot exercise, such as EFS). Do: confirm each is needed.",
            )
        )
    if touched and not found:
        found.append(
            Flag(
                "check",
                f"security groups change ({_count(len(touched), 'rule or group', 'rules or groups')}): every one "
                f"of the {len(observed)} connections the twin observed while {stack.name} served stays admitted "
                f"({RECORD}). Do: nothing for serving; review the change for what it opens.",
            )
        )
    return found


def _dropped(labels: list[str], rules: tuple[str, ...], stack_name: str, twin: str) -> Flag:
    what, them = ("a connection", "it") if len(labels) == 1 else (f"{len(labels)} connections", "them")
    return Flag(
        "high",
        f"after this change the security groups drop {', '.join(labels)}: {what} the twin observed while "
        f"{stack_name} served, admitted by {', '.join(rules)} when recorded. Dynamo cannot serve without {them}. "
        f"Do: keep a rule pair that admits {them}, then run the twin ({twin}).",
    )


def _count(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"
