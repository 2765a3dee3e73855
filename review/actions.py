"""What a plan does to one resource, in one word, and which resources must not lose their objects.

Shared by the review and by the upgrade table (tests/upgrade_table.py), which plans routine
changes in the emulator against the same words.

Actions, from `terraform show -json` (resource_changes[].change.actions):
  create, update, delete;
  replace      = ["delete", "create"]: the old object goes first (a gap on the serving path);
  replace_cbd  = ["create", "delete"]: create_before_destroy, the new object exists first.
"""

from __future__ import annotations

CREATE, UPDATE, DELETE, REPLACE, REPLACE_CBD = "create", "update", "delete", "replace", "replace_cbd"
UNCHANGED = frozenset({"no-op", "read"})

# What serves requests or holds state. Never `replace` (destroy first) in a routine change;
# `delete` and `replace_cbd` only where a reviewer has said why.
SERVING_PATH_AND_STATE = frozenset(
    {
        "aws_vpc",
        "aws_subnet",
        "aws_internet_gateway",
        "aws_nat_gateway",
        "aws_eip",
        "aws_route_table",
        "aws_route",
        "aws_vpc_endpoint",
        "aws_lb",
        "aws_lb_listener",
        "aws_lb_target_group",
        "aws_security_group",
        "aws_cloudwatch_log_group",
        "aws_kms_key",
        "aws_ecs_cluster",
        "aws_ecs_capacity_provider",
        "aws_ecs_cluster_capacity_providers",
        "aws_autoscaling_group",
        "aws_launch_template",
        "aws_ecs_service",
        "aws_service_discovery_private_dns_namespace",
        "aws_service_discovery_service",
        "aws_iam_role",
        "aws_s3_bucket",
    }
)


def classify(actions: list[str]) -> str:
    """One word for a resource_changes[].change.actions list."""
    if actions == ["delete", "create"]:
        return REPLACE
    if actions == ["create", "delete"]:
        return REPLACE_CBD
    (action,) = actions
    return action
