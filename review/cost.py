"""A monthly cost estimate at the minimum and at the maximum scale, from review/prices.toml and the counts in
review/capacity.py. An estimate: data transfer, NAT data processing and the control plane's EFS are not
in it, and the table's prices are as of its date (its header names the sources)."""

from __future__ import annotations

import datetime
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from review.capacity import Capacity

PRICES_FILE = Path(__file__).with_name("prices.toml")
STALE_AFTER_DAYS = 365
# What the launch template's gp3 volume gets without paying for more.
GP3_FREE_MIBPS, GP3_FREE_IOPS = 125, 3000


@dataclass(frozen=True)
class Prices:
    date: datetime.date
    hours_per_month: int
    spot_fraction: dict[str, tuple[float, float]]  # instance family (g, p) -> spot/on-demand, lowest..highest
    alb_lcus: float
    log_gb_per_task_month: float
    regions: dict[str, dict[str, Any]]
    unpriced: dict[str, str]  # instance type -> why AWS publishes no on-demand price for it

    def stale(self, today: datetime.date) -> bool:
        return (today - self.date).days > STALE_AFTER_DAYS

    def spot_range(self, instance_type: str) -> tuple[float, float]:
        """g6e.2xlarge -> the g family's range."""
        return self.spot_fraction[instance_type[:1]]


def load_prices(path: Path = PRICES_FILE) -> Prices:
    document = tomllib.loads(path.read_text())
    assumptions = document["assumptions"]
    return Prices(
        date=datetime.date.fromisoformat(document["date"]),
        hours_per_month=document["hours_per_month"],
        spot_fraction={family: (low, high) for family, (low, high) in assumptions["spot_fraction"].items()},
        alb_lcus=assumptions["alb_lcus"],
        log_gb_per_task_month=assumptions["log_gb_per_task_month"],
        regions=document["regions"],
        unpriced=document.get("unpriced", {}),
    )


@dataclass(frozen=True)
class Amount:
    """Monthly USD; a range where the price is one (spot)."""

    low: float
    high: float

    def __add__(self, other: Amount) -> Amount:
        return Amount(self.low + other.low, self.high + other.high)


def fixed(value: float) -> Amount:
    return Amount(value, value)


@dataclass(frozen=True)
class Estimate:
    """Cost item -> (at the minimum scale, at the maximum scale)."""

    items: dict[str, tuple[Amount, Amount]]

    def total(self, *, at_max: bool) -> Amount:
        return sum((pair[1] if at_max else pair[0] for pair in self.items.values()), fixed(0.0))


def gpu_instances(capacity: Capacity, *, at_max: bool) -> int:
    """The fleet's bound, or more at the minimum when the minimum tasks need more GPUs than that
    (the capacity provider launches them: dev's fleet minimum is 0 but it runs one worker)."""
    if at_max:
        return capacity.fleet_max
    per_instance = capacity.gpus_per_instance
    needed = math.ceil(capacity.gpu_demand(at_max=False) / per_instance) if per_instance else 0
    return max(capacity.fleet_min, needed)


def estimate(capacity: Capacity, prices: Prices, region: str) -> Estimate | None:
    """None where the table has no price for the region or the instance type."""
    table = prices.regions.get(region)
    if table is None:
        return None
    # No instance type: a stack without a GPU fleet (an environment removed), nothing to price.
    hourly = table["gpu_instance_hourly"].get(capacity.instance_type, 0.0 if not capacity.instance_type else None)
    if hourly is None:
        return None
    hours = prices.hours_per_month
    low, high = prices.spot_range(capacity.instance_type) if capacity.spot else (1.0, 1.0)

    def at(at_max: bool) -> dict[str, Amount]:
        instances = gpu_instances(capacity, at_max=at_max)
        tasks = sum(role.max_tasks if at_max else role.min_tasks for role in capacity.roles)
        fargate = sum(
            (role.max_tasks if at_max else role.min_tasks)
            * (
                role.cpu / 1024 * table["fargate_vcpu_hourly"]
                + role.memory_mib / 1024 * table["fargate_gb_hourly"]
                + max(0, role.ephemeral_gib - 20) * table["fargate_ephemeral_gb_hourly"]
            )
            for role in capacity.roles
            if role.fargate
        )
        return {
            "GPU instances": Amount(instances * hourly * hours * low, instances * hourly * hours * high),
            "GPU root volumes (gp3)": fixed(instances * _volume_month(capacity, table)),
            "NAT gateways (without data processed)": fixed(
                capacity.nat_gateways * (table["nat_gateway_hourly"] + table["public_ipv4_hourly"]) * hours
            ),
            "Load balancer": fixed(
                capacity.load_balancers * (table["alb_hourly"] + prices.alb_lcus * table["alb_lcu_hourly"]) * hours
            ),
            "Fargate tasks": fixed(fargate * hours),
            "CloudWatch logs ingested": fixed(tasks * prices.log_gb_per_task_month * table["logs_ingested_gb"]),
            "CloudWatch alarms": fixed(capacity.alarms * table["alarm_month"]),
            "CloudWatch custom metrics": fixed(capacity.custom_metrics * table["custom_metric_month"]),
        }

    at_min, at_max = at(False), at(True)
    return Estimate({item: (at_min[item], at_max[item]) for item in at_min})


def _volume_month(capacity: Capacity, table: dict[str, Any]) -> float:
    """The launch template's root volume; throughput and IOPS above gp3's baseline are paid for."""
    return float(
        capacity.root_volume_gib * table["gp3_gb_month"]
        + max(0, capacity.root_volume_mibps - GP3_FREE_MIBPS) * table["gp3_mibps_month"]
        + max(0, capacity.root_volume_iops - GP3_FREE_IOPS) * table["gp3_iops_month"]
    )
