"""One environment's review as markdown: risk first, then the environment file, resources, capacity, cost and
topology. Deterministic: the same stacks give the same bytes (no dates but the price table's, no paths)."""

from __future__ import annotations

import datetime
from collections import Counter
from dataclasses import dataclass

from review.actions import CREATE, DELETE, REPLACE, REPLACE_CBD, UPDATE
from review.capacity import Capacity, capacity
from review.changes import ResourceChange
from review.containers import container_changes
from review.cost import Amount, Estimate, Prices, estimate
from review.flows import ObservedFlow
from review.risk import Flag, flags
from review.stack import Stack
from review.topology import mermaid

# A PR comment stays readable: the rest of a resource's changed paths is counted, not listed.
PATHS_SHOWN = 6
ACTION_WORDS = {
    CREATE: "create",
    UPDATE: "update in place",
    REPLACE_CBD: "replace (create first)",
    REPLACE: "replace (destroy first)",
    DELETE: "destroy",
}


@dataclass(frozen=True)
class EnvironmentReview:
    """Everything one environment's section says, for tests to read without parsing markdown."""

    changes: list[ResourceChange]
    settings: list[str]
    flags: list[Flag]
    before: Capacity | None
    after: Capacity
    cost_before: Estimate | None
    cost_after: Estimate | None
    markdown: str


def review(
    *,
    before: Stack | None,
    after: Stack,
    changes: list[ResourceChange],
    settings: list[str],
    from_plan: bool,
    prices: Prices,
    today: datetime.date,
    observed: list[ObservedFlow] | None,
    note: str = "",
) -> EnvironmentReview:
    """``observed``: the flows the twin recorded for this stack (review/flows.py), None if it has none."""
    old = capacity(before) if before else None
    new = capacity(after)
    found = flags(changes, after=new, stack=after, observed=observed)
    cost_before = estimate(old, prices, before.region) if before and old else None
    cost_after = estimate(new, prices, after.region)
    lines = [f"## {after.name}", ""]
    source = (
        "From `terraform show -json` of the plan: Terraform's own actions."
        if from_plan
        else "From synthesized output: actions inferred from the provider's schema; `terraform plan` is the authority."
    )
    lines += [f"_{source}{' ' + note if note else ''}_", "", _headline(changes), ""]
    lines += ["### Risk", ""]
    lines += [f"- **{flag.severity}**: {flag.text}" for flag in found] or ["No flags."]
    lines += ["", "### Environment file", ""]
    lines += [f"- {line}" for line in settings] or ["No setting changes (or no base file to compare)."]
    lines += ["", "### Resources", ""] + _resources(changes)
    lines += ["", "### Capacity", ""] + _capacity(old, new)
    lines += ["", "### Cost", ""] + _cost(cost_before, cost_after, prices, after.region, today, new)
    lines += ["", "### Topology", "", mermaid(after, new) if after.resources else "Nothing is left.", ""]
    return EnvironmentReview(changes, settings, found, old, new, cost_before, cost_after, "\n".join(lines))


def _headline(changes: list[ResourceChange]) -> str:
    counts = Counter(change.action for change in changes)
    if not counts:
        return "**No resource changes.**"
    return (
        "**"
        + ", ".join(f"{counts[action]} {ACTION_WORDS[action]}" for action in ACTION_WORDS if counts[action])
        + ".**"
    )


def _resources(changes: list[ResourceChange]) -> list[str]:
    if not changes:
        return ["Nothing changes."]
    by_type = Counter((change.type, change.action) for change in changes)
    lines = ["| type | action | count |", "|---|---|---|"]
    lines += [f"| `{kind}` | {ACTION_WORDS[action]} | {count} |" for (kind, action), count in sorted(by_type.items())]
    lines += ["", "<details><summary>Every changed resource</summary>", ""]
    for change in changes:
        shown = ", ".join(f"`{path}`" for path in change.paths[:PATHS_SHOWN])
        more = len(change.paths) - PATHS_SHOWN
        shown += f" and {more} more" if more > 0 else ""
        lines.append(f"- {ACTION_WORDS[change.action]} `{change.address}`{': ' + shown if shown else ''}")
        if change.type == "aws_ecs_task_definition":
            lines += [f"  - {line}" for line in container_changes(change)]
    lines += ["", "</details>"]
    return lines


def _bounds(low: int, high: int) -> str:
    return str(low) if low == high else f"{low}..{high}"


def _gpus(count: int) -> str:
    return f"{count} GPU{'s' if count != 1 else ''}"


def _capacity_rows(value: Capacity | None) -> dict[str, str]:
    if value is None:
        return {}
    rows = {
        "GPU instance type": f"{value.instance_type} ({_gpus(value.gpus_per_instance)}){' spot' if value.spot else ''}",
        "GPU fleet, instances": _bounds(value.fleet_min, value.fleet_max),
        "GPU fleet, GPUs": _bounds(value.fleet_gpus(at_max=False), value.fleet_gpus(at_max=True)),
        "GPU demand of the tasks": _bounds(value.gpu_demand(at_max=False), value.gpu_demand(at_max=True)),
        "largest task, GPUs": str(max((role.gpus for role in value.roles), default=0)),
    }
    rows.update({f"{role.name} tasks": _bounds(role.min_tasks, role.max_tasks) for role in value.roles})
    rows["NAT gateways"] = str(value.nat_gateways)
    return rows


def _capacity(before: Capacity | None, after: Capacity) -> list[str]:
    old, new = _capacity_rows(before), _capacity_rows(after)
    lines = ["| | before | after |", "|---|---|---|"]
    for row in [*new, *(key for key in old if key not in new)]:
        was, now = old.get(row, "-"), new.get(row, "-")
        lines.append(f"| {row} | {was} | {'**' + now + '**' if was != now else now} |")
    return lines


def dollars(amount: Amount, *, signed: bool = False) -> str:
    def one(value: float) -> str:
        if round(value) < 0:
            return f"-${-value:,.0f}"
        return f"{'+' if signed and round(value) > 0 else ''}${value:,.0f}"

    return one(amount.low) if round(amount.low) == round(amount.high) else f"{one(amount.low)}..{one(amount.high)}"


def _cost(
    before: Estimate | None, after: Estimate | None, prices: Prices, region: str, today: datetime.date, new: Capacity
) -> list[str]:
    if after is None:
        why = prices.unpriced.get(new.instance_type)
        if why:
            return [f"No estimate: AWS publishes no on-demand price for {new.instance_type} ({why})."]
        return [f"No estimate: review/prices.toml has no price for {new.instance_type} in {region}."]
    lines = [
        f"Monthly estimate ({prices.hours_per_month} h), prices from review/prices.toml dated "
        f"{prices.date.isoformat()} (AWS's list prices on that date; the file names its sources), running "
        "around the clock, at the minimum and at the maximum scale.",
        "",
        "| item | before, min | before, max | after, min | after, max | change, min | change, max |",
        "|---|---|---|---|---|---|---|",
    ]
    zero = (Amount(0.0, 0.0), Amount(0.0, 0.0))
    rows = [(item, before.items[item] if before else zero, after.items[item]) for item in after.items]
    totals = (
        (before.total(at_max=False), before.total(at_max=True)) if before else zero,
        (after.total(at_max=False), after.total(at_max=True)),
    )
    for item, (old_min, old_max), (new_min, new_max) in [*rows, ("**total**", *totals)]:
        lines.append(
            f"| {item} | {dollars(old_min)} | {dollars(old_max)} | {dollars(new_min)} | {dollars(new_max)} | "
            f"{dollars(_delta(new_min, old_min), signed=True)} | {dollars(_delta(new_max, old_max), signed=True)} |"
        )
    if new.instance_type:  # none when the environment is removed
        low, high = prices.spot_range(new.instance_type)
        family = f"{new.instance_type[:1].upper()} instances"
        if new.spot:
            lines += [
                "",
                f"GPU instances are spot: {low:.0%}..{high:.0%} of on-demand for {family}, a range, not a price.",
            ]
        else:
            gpu_min, gpu_max = after.items["GPU instances"]
            lines += [
                "",
                f"On spot ({low:.0%}..{high:.0%} of on-demand for {family}) the GPU "
                f"instances would cost {dollars(Amount(gpu_min.low * low, gpu_min.high * high))} at the minimum "
                f"and {dollars(Amount(gpu_max.low * low, gpu_max.high * high))} at the maximum.",
            ]
    if prices.stale(today):
        lines += ["", f"**Warning: the price table is older than a year ({prices.date.isoformat()}): update it.**"]
    return lines


def _delta(new: Amount, old: Amount) -> Amount:
    return Amount(new.low - old.low, new.high - old.high)
