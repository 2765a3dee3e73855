"""Container definitions, field by field: they are one JSON string inside aws_ecs_task_definition, so a plan
shows only that the whole string changed. Secrets are compared by name only: their values (ARNs) never
appear in a review."""

from __future__ import annotations

import json
from typing import Any

from review.changes import ResourceChange, same

# What a reviewer reads first, in this order; any other field that changed follows by its name.
FIELDS = ("image", "command", "environment", "secrets", "cpu", "memory", "resourceRequirements")


def containers(task_definition: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    text = (task_definition or {}).get("container_definitions")
    if not isinstance(text, str):
        return {}
    return {str(container.get("name")): container for container in json.loads(text)}


def _pairs(items: Any, value_key: str) -> dict[str, str]:
    return {str(item["name"]): str(item.get(value_key, "")) for item in items or [] if "name" in item}


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."


def field_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    lines = []
    for field in [*FIELDS, *sorted((set(old) | set(new)) - set(FIELDS))]:
        before, after = old.get(field), new.get(field)
        if same(before, after):
            continue
        if field == "environment":
            lines += _keyed("environment", _pairs(before, "value"), _pairs(after, "value"), show_values=True)
        elif field == "secrets":
            lines += _keyed("secret", _pairs(before, "valueFrom"), _pairs(after, "valueFrom"), show_values=False)
        elif field == "command":
            lines.append(f"command: `{_short(' '.join(before or []))}` -> `{_short(' '.join(after or []))}`")
        elif field == "repositoryCredentials":
            lines.append("repositoryCredentials: changed (secret not shown)")
        else:
            lines.append(f"{field}: `{_short(before)}` -> `{_short(after)}`")
    return lines


def _keyed(kind: str, before: dict[str, str], after: dict[str, str], *, show_values: bool) -> list[str]:
    lines = []
    for name in sorted(set(before) | set(after)):
        if name not in before:
            lines.append(f"{kind} {name} added" + (f": `{_short(after[name])}`" if show_values else ""))
        elif name not in after:
            lines.append(f"{kind} {name} removed")
        elif before[name] != after[name]:
            shown = (
                f": `{_short(before[name])}` -> `{_short(after[name])}`" if show_values else " now from another secret"
            )
            lines.append(f"{kind} {name} changed{shown}")
    return lines


def container_changes(change: ResourceChange) -> list[str]:
    """`container: what changed` lines for one task definition change."""
    old, new = containers(change.before), containers(change.after)
    lines = []
    for name in sorted(set(old) | set(new)):
        if name not in old:
            lines.append(f"container {name} added (image `{new[name].get('image')}`)")
        elif name not in new:
            lines.append(f"container {name} removed")
        else:
            lines += [f"{name}: {line}" for line in field_changes(old[name], new[name])]
    return lines
