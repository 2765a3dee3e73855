"""Policy settings from a TOML file (simulator/settings.toml): what `make simulate` compares.

Kept apart from the code so that the policies a stack deploys can be replayed by writing their
parameters here, without touching the simulator."""

from __future__ import annotations

import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any

from simulator.fleet import ROLES
from simulator.policy import PLANNER_ITL_MS, PLANNER_TTFT_MS, Policy, Step

SETTINGS_FILE = Path(__file__).parent / "settings.toml"
POLICY_FIELDS = tuple(field.name for field in fields(Policy))
PLANNER_TARGETS = {"ttft_ms": PLANNER_TTFT_MS, "itl_ms": PLANNER_ITL_MS}


def policy_from(table: dict[str, Any], min_count: int, max_count: int) -> Policy:
    unknown = sorted(set(table) - set(POLICY_FIELDS))
    if unknown:
        raise ValueError(f"unknown {', '.join(unknown)} (allowed: {', '.join(POLICY_FIELDS)})")
    values = {"min_count": min_count, "max_count": max_count, **table}
    if "target" not in values:
        if values.get("metric") not in PLANNER_TARGETS:
            raise ValueError(f"metric {values.get('metric')!r} has no default target: give target")
        values["target"] = PLANNER_TARGETS[values["metric"]]
    values["steps"] = tuple(Step(float(ratio), int(adjustment)) for ratio, adjustment in values.get("steps", ()))
    return Policy(**values)


def policies_from(value: Any, min_count: int, max_count: int) -> tuple[Policy, ...]:
    """A role's table, or an array of tables for several policies on the role."""
    tables = value if isinstance(value, list) else [value]
    return tuple(policy_from(dict(table), min_count, max_count) for table in tables)


def read_settings(path: Path, bounds: dict[str, tuple[int, int]]) -> dict[str, dict[str, tuple[Policy, ...]]]:
    """{setting name: {role: policies}}; every problem is a ValueError naming the file and setting."""
    try:
        document = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ValueError(f"{path}: {error}") from None
    settings: dict[str, dict[str, tuple[Policy, ...]]] = {}
    for index, entry in enumerate(document.get("setting", [])):
        name = str(entry.get("name", f"setting {index + 1}"))
        try:
            settings[name] = {role: policies_from(entry[role], *bounds[role]) for role in ROLES}
        except KeyError as missing:
            raise ValueError(f"{path}: {name}: no {missing.args[0]} table") from None
        except (TypeError, ValueError) as error:
            raise ValueError(f"{path}: {name}: {error}") from None
    if not settings:
        raise ValueError(f"{path}: no [[setting]]")
    return settings
