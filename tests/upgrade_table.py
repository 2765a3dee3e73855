"""Routine changes to an environment file and what each may do to a running stack.

The one place that says, per change: the edit to the environment file, and per resource
type the actions its `terraform plan` may take against the applied stack. The emulator
layer (tests/test_upgrades.py) plans every row and fails on anything else.

The action words (`classify`) and the serving-path set live in review/actions.py: the
pull-request review (`main.py review`) labels plans with the same ones.
Every resource type a row lists must change in its plan, with no action outside its set,
and every resource type it does not list must stay untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from review.actions import (  # noqa: F401  (re-exported: the emulator layer imports them from here)
    CREATE,
    DELETE,
    REPLACE,
    REPLACE_CBD,
    SERVING_PATH_AND_STATE,
    UNCHANGED,
    UPDATE,
    classify,
)

SHIPPED_BASE = "staging"
HF_TOKEN_SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:dynamo/staging/hf-token-AbCdEf"
CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/01234567-89ab-cdef-0123-456789abcdef"


@dataclass(frozen=True)
class Change:
    name: str
    what: str
    # Dotted path in the environment file -> new value.
    edits: dict[str, Any]
    # Resource type -> the actions its plan may take (at least one of them must happen).
    allowed: dict[str, frozenset[str]]
    # Planned against the state after applying this row (default: the shipped file's apply).
    after: str | None = None
    # Why a listed action is acceptable, where that is not obvious.
    why: str = ""
    # Applied in the emulator too, not only planned, to prove the apply goes through.
    apply: bool = False


def _allowed(**types: str | tuple[str, ...]) -> dict[str, frozenset[str]]:
    return {
        f"aws_{name}": frozenset((actions,) if isinstance(actions, str) else actions) for name, actions in types.items()
    }


# Task definitions are immutable: every change to one is a new revision. skip_destroy keeps
# the old revision registered (so a service can roll back to it) and create_before_destroy
# registers the new one first; the service then rolls to it in place.
NEW_REVISION = REPLACE_CBD

CHANGES: tuple[Change, ...] = (
    Change(
        "image_tag",
        "a new Dynamo image tag",
        {"image.tag": "1.2.2"},
        _allowed(ecs_task_definition=NEW_REVISION, ecs_service=UPDATE),
    ),
    Change(
        "model",
        "another model",
        {"model.name": "Qwen/Qwen3-1.7B"},
        _allowed(
            ecs_task_definition=NEW_REVISION,
            ecs_service=UPDATE,
            appautoscaling_policy=UPDATE,
            cloudwatch_metric_alarm=UPDATE,
            cloudwatch_dashboard=UPDATE,
        ),
        why=(
            "Dynamo's metrics carry the served model as their Model dimension: the collectors (the GPU metrics "
            "daemon's too) get new revisions, and the policies, alarms and dashboard that read them follow in place"
        ),
    ),
    Change(
        "frontend_size",
        "a larger frontend task",
        {"frontend.cpu": 4096, "frontend.memory": 16384},
        _allowed(ecs_task_definition=NEW_REVISION, ecs_service=UPDATE),
    ),
    Change(
        "worker_counts",
        "two decode workers at least",
        {"decode.count": 2, "decode.min_count": 2},
        _allowed(appautoscaling_target=UPDATE, cloudwatch_metric_alarm=DELETE),
        why=(
            "the running count belongs to Application Auto Scaling (desired_count is ignored after creation): the new "
            "minimum raises it; decode is now fixed at 2..2, so its at-maximum alarm (which would always fire) goes"
        ),
    ),
    Change(
        "frontend_max_count",
        "more frontends allowed",
        {"frontend.max_count": 4},
        _allowed(appautoscaling_target=UPDATE),
    ),
    Change(
        "worker_rollout",
        "decode workers back to rolling in place",
        {"decode.rollout": "in_place"},
        _allowed(ecs_service=UPDATE),
    ),
    Change(
        "certificate_on",
        "HTTPS: a certificate added",
        {"load_balancer.certificate_arn": CERTIFICATE},
        _allowed(lb_listener=(CREATE, UPDATE), vpc_security_group_ingress_rule=CREATE, lb=UPDATE),
        why=(
            "port 80's listener switches from forward to redirect in place; the HTTPS listener and its ingress rule "
            "are new"
        ),
        apply=True,
    ),
    Change(
        "certificate_off",
        "HTTPS: the certificate removed again",
        {},
        _allowed(lb_listener=(UPDATE, DELETE), vpc_security_group_ingress_rule=DELETE, lb=UPDATE),
        after="certificate_on",
        why="the HTTPS listener and its ingress rule go, as asked; port 80 switches back to forward in place",
        apply=True,
    ),
    Change(
        "frontend_on_gpu_fleet",
        "the frontend moved from Fargate to the GPU fleet",
        {"frontend.placement": "gpu_fleet"},
        _allowed(
            ecs_task_definition=NEW_REVISION,
            ecs_service=REPLACE_CBD,
            appautoscaling_target=REPLACE_CBD,
            appautoscaling_policy=REPLACE_CBD,
            cloudwatch_metric_alarm=UPDATE,
            cloudwatch_dashboard=UPDATE,
        ),
        why=(
            "a service cannot change cluster: the new one is created and steady before the old one is deleted; the "
            "alarms and the dashboard name the new cluster"
        ),
        apply=True,
    ),
    Change(
        "instance_type",
        "another GPU instance type",
        {"gpu_fleet.instance_type": "g6e.4xlarge"},
        _allowed(launch_template=UPDATE, autoscaling_group=UPDATE),
        why="a new launch template version; the group's instance refresh replaces the instances, ECS drains them first",
        apply=True,
    ),
    Change(
        "hf_token_added",
        "a Hugging Face token for a gated model",
        {"model.hf_token_secret_arn": HF_TOKEN_SECRET},
        _allowed(iam_role_policy=CREATE, ecs_task_definition=NEW_REVISION, ecs_service=UPDATE),
    ),
    Change(
        "log_retention",
        "longer log retention",
        {"logging.retention_days": 60},
        _allowed(cloudwatch_log_group=UPDATE),
    ),
    Change(
        "nat_per_az",
        "a NAT gateway per AZ",
        {"network.nat": "per_az"},
        _allowed(eip=CREATE, nat_gateway=CREATE, route=UPDATE),
    ),
)

BY_NAME: dict[str, Change] = {change.name: change for change in CHANGES}


def violations(change: Change, observed: dict[str, set[str]]) -> list[str]:
    """What in a plan (resource type -> actions) the row does not allow; empty when it matches."""
    problems = []
    for resource_type, actions in sorted(observed.items()):
        allowed = change.allowed.get(resource_type, frozenset())
        for action in sorted(actions - allowed):
            if resource_type in SERVING_PATH_AND_STATE and action in (REPLACE, DELETE, REPLACE_CBD):
                problems.append(f"{resource_type}: {action} on the serving path or of state, not named in the table")
            else:
                problems.append(
                    f"{resource_type}: {action} not allowed (allowed: {', '.join(sorted(allowed)) or 'no change'})"
                )
        if resource_type in SERVING_PATH_AND_STATE and REPLACE in actions:
            problems.append(f"{resource_type}: destroyed before its replacement exists")
    for resource_type in sorted(set(change.allowed) - set(observed)):
        problems.append(
            f"{resource_type}: expected {' or '.join(sorted(change.allowed[resource_type]))}, the plan leaves it alone"
        )
    return problems
