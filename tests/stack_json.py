"""Reading synthesized cdk.tf.json: find resources by construct path, follow references."""

from __future__ import annotations

import json
import re
from typing import Any

REFERENCE = re.compile(r"^\$\{(?P<type>[a-z0-9_]+)\.(?P<id>[A-Za-z0-9_-]+)\.(?P<attribute>[a-z0-9_]+)\}$")


def resources(stack: dict, resource_type: str) -> dict[str, dict]:
    return stack.get("resource", {}).get(resource_type, {})


def construct_path(resource: dict) -> str:
    return resource["//"]["metadata"]["path"]


def one(stack: dict, resource_type: str, path_suffix: str) -> dict:
    """The single resource of this type whose construct path ends with ``path_suffix``."""
    found = [body for body in resources(stack, resource_type).values() if construct_path(body).endswith(path_suffix)]
    assert len(found) == 1, (
        f"{len(found)} {resource_type} at */{path_suffix}: "
        f"{[construct_path(b) for b in resources(stack, resource_type).values()]}"
    )
    return found[0]


def reference_to(stack: dict, resource_type: str, path_suffix: str, attribute: str) -> str:
    """The ``${type.id.attribute}`` string another resource uses to point at this one."""
    for logical_id, body in resources(stack, resource_type).items():
        if construct_path(body).endswith(path_suffix):
            return f"${{{resource_type}.{logical_id}.{attribute}}}"
    raise AssertionError(f"no {resource_type} at */{path_suffix}")


def containers(task_definition: dict) -> list[dict[str, Any]]:
    return json.loads(task_definition["container_definitions"])


def environment_of(container: dict) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container.get("environment", [])}


def main_container(task_definition: dict) -> dict[str, Any]:
    """The task's one essential container (Dynamo, etcd or NATS); its sidecars are not essential."""
    (container,) = [each for each in containers(task_definition) if each["essential"]]
    return container
