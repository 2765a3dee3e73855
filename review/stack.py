"""One side of a review: a stack's managed resources, read alike from synthesized cdk.tf.json and from a
`terraform show -json` plan, so that everything after this file works the same from either."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

# `${aws_ecs_service.frontend_service_6FCB81F0.name}` in synthesized JSON.
REFERENCE = re.compile(r"\$\{(?P<type>[a-z0-9_]+)\.(?P<name>[A-Za-z0-9_-]+)\.(?P<attribute>[a-z0-9_]+)\}")
# Terraform meta-arguments: not attributes of the object a plan compares.
META_ARGUMENTS = ("//", "lifecycle", "depends_on", "provider", "count", "for_each")


@dataclass(frozen=True)
class Resource:
    address: str
    type: str
    values: dict[str, Any]
    create_before_destroy: bool = False
    # lifecycle.ignore_changes: attributes a plan leaves as they are (desired_count, owned by autoscaling).
    ignored: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Stack:
    name: str
    region: str
    resources: dict[str, Resource]

    def of_type(self, resource_type: str) -> list[Resource]:
        return [
            self.resources[address] for address in sorted(self.resources) if address.startswith(f"{resource_type}.")
        ]

    def resolve(self, value: Any) -> Any:
        """A string with every reference to another resource's plain string attribute filled in (synth side);
        references to values only known after apply stay as they are."""
        if not isinstance(value, str):
            return value

        def known(match: re.Match[str]) -> str:
            target = self.resources.get(f"{match['type']}.{match['name']}")
            found = target.values.get(match["attribute"]) if target else None
            return found if isinstance(found, str) and "${" not in found else match[0]

        return REFERENCE.sub(known, value)


def from_synth(document: dict[str, Any], *, name: str) -> Stack:
    resources = {}
    for resource_type, instances in sorted(document.get("resource", {}).items()):
        for resource_name, body in sorted(instances.items()):
            address = f"{resource_type}.{resource_name}"
            values = {key: value for key, value in body.items() if key not in META_ARGUMENTS}
            lifecycle = body.get("lifecycle", {})
            resources[address] = Resource(
                address,
                resource_type,
                values,
                bool(lifecycle.get("create_before_destroy")),
                frozenset(lifecycle.get("ignore_changes", [])),
            )
    (provider,) = document["provider"]["aws"]
    return Stack(name, str(provider.get("region", "")), resources)


def managed_changes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for change in plan.get("resource_changes", []):
        if change.get("mode") == "managed" and not change.get("module_address"):
            yield change


def from_plan(plan: dict[str, Any], *, name: str, side: str) -> Stack:
    """``side``: "before" (the state the plan starts from) or "after" (what it plans; unknown values absent)."""
    resources = {}
    for change in managed_changes(plan):
        values = change["change"].get(side)
        if values is None:
            continue
        cbd = change["change"]["actions"] == ["create", "delete"]
        resources[change["address"]] = Resource(change["address"], change["type"], values, cbd)
    expressions = plan.get("configuration", {}).get("provider_config", {}).get("aws", {}).get("expressions", {})
    region = expressions.get("region", {}).get("constant_value", "")
    return Stack(name, str(region), resources)


def block(value: Any) -> dict[str, Any]:
    """A nested block: synthesized JSON writes a single block as an object, a plan as a one-element list."""
    if isinstance(value, list):
        return block(value[0]) if value else {}
    return value if isinstance(value, dict) else {}


def blocks(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        return [value]
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def number(value: Any, default: int = 0) -> int:
    """Synthesized JSON writes some numbers as strings ("6144"); unknown or absent -> ``default``."""
    try:
        return int(str(value))
    except ValueError:
        return default
