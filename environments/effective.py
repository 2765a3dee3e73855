"""An environment's effective configuration: every default filled in, as TOML that loads back
to the same model (tests/test_effective.py proves the round trip for every shipped file)."""

from __future__ import annotations

import json
from typing import Any

from environments.schema import Environment


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        # A JSON string is a TOML basic string: the same quotes and escapes.
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    raise TypeError(f"no TOML for {type(value).__name__}")


def _table(path: str, data: dict[str, Any], lines: list[str]) -> None:
    """Keys first, then sub-tables; an unset optional field (None) only as a comment, as TOML has no null."""
    scalars = {key: value for key, value in data.items() if not isinstance(value, dict)}
    tables = {key: value for key, value in data.items() if isinstance(value, dict)}
    if path and (scalars or not tables):
        lines += ["", f"[{path}]"]
    lines += [f"# {key}: not set" if value is None else f"{key} = {_value(value)}" for key, value in scalars.items()]
    for key, value in tables.items():
        _table(f"{path}.{key}" if path else key, value, lines)


def toml_document(data: dict[str, Any], header: str = "") -> str:
    """Enough TOML for environment files: scalars, lists of scalars and nested tables."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    _table("", data, lines)
    return "\n".join(lines).lstrip("\n") + "\n"


def effective_toml(environment: Environment, header: str = "") -> str:
    return toml_document(environment.model_dump(mode="python"), header)
