"""Environment-file changes in the file's own terms (`decode.max_count: 2 -> 4`), every default filled in,
so a changed default shows up as well as an edited line."""

from __future__ import annotations

import json
from typing import Any

from environments.schema import Environment

# Settings whose values are secret references: named, never shown.
SECRET_SETTINGS = ("hf_token_secret_arn", "pull_credentials_secret_arn")


def dotted(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            flat.update(dotted(value, path))
        else:
            flat[path] = value
    return flat


def _shown(path: str, value: Any) -> str:
    if value is None:
        return "not set"
    if path.endswith(SECRET_SETTINGS):
        return "set"
    return json.dumps(value) if isinstance(value, (str, list, bool)) else str(value)


def setting_changes(before: Environment | None, after: Environment | None) -> list[str]:
    if before is None or after is None:
        return []
    # The same dump `main.py --show-config` writes as TOML (environments/effective.py).
    old, new = dotted(before.model_dump(mode="python")), dotted(after.model_dump(mode="python"))
    lines = []
    for path in sorted(set(old) | set(new)):
        if old.get(path) == new.get(path):
            continue
        if path.endswith(SECRET_SETTINGS) and old.get(path) is not None and new.get(path) is not None:
            lines.append(f"`{path}`: another secret (ARN not shown)")
        else:
            lines.append(f"`{path}`: {_shown(path, old.get(path))} -> {_shown(path, new.get(path))}")
    return lines
