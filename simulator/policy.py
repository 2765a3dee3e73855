"""Scaling policies, as Application Auto Scaling runs them on an ECS service's desired count.

The parameters are the ones a Terraform policy will carry (period, evaluation periods,
cooldowns, bounds, target or steps), so the policies issue 15 builds can be replayed here.
Semantics modelled (a simplification of the service's, stated in the README):
- the metric is averaged over each period; a decision is taken at the end of a period;
- scale out when the last `scale_out_evaluations` periods are all above the target (step
  scaling: above the lowest step), not within `scale_out_cooldown_s` of the last scale-out;
- scale in when the last `scale_in_evaluations` periods are all below target * scale_in_ratio,
  not within `scale_in_cooldown_s` of the last scaling activity of either kind;
- target tracking sizes proportionally: ceil(desired * metric / target); step scaling adds the
  step's adjustment; the result is clamped to [min_count, max_count].
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

# Dynamo's planner targets: SLAPlannerDefaults.ttft_ms = 500.0 and .itl_ms = 50.0 in
# dynamo/planner/config/defaults.py of ai-dynamo 1.2.1 (the version the twin pins).
PLANNER_TTFT_MS = 500.0
PLANNER_ITL_MS = 50.0

# ttft_ms and itl_ms are the role's mean latency over the period; utilization is the arriving
# requests per second per ready worker over the calibrated capacity (the early load signal).
Metric = Literal["ttft_ms", "itl_ms", "utilization"]


@dataclass(frozen=True)
class Step:
    """Add `adjustment` workers when metric / target is at least `at_ratio`."""

    at_ratio: float
    adjustment: int


@dataclass(frozen=True)
class Policy:
    metric: Metric
    target: float
    min_count: int
    max_count: int
    period_s: int = 60
    scale_out_evaluations: int = 3
    scale_in_evaluations: int = 15
    scale_in_ratio: float = 0.9
    scale_out_cooldown_s: int = 60
    scale_in_cooldown_s: int = 300
    # Empty: target tracking. Otherwise step scaling with these steps (scale-in is one at a time).
    steps: tuple[Step, ...] = ()

    def __post_init__(self) -> None:
        if self.metric not in get_args(Metric):
            raise ValueError(f"metric {self.metric!r} is not one of {', '.join(get_args(Metric))}")
        if self.target <= 0:
            raise ValueError(f"target must be positive, got {self.target}")
        if not 0 <= self.min_count <= self.max_count:
            raise ValueError(f"need 0 <= min_count <= max_count, got {self.min_count}, {self.max_count}")
        if self.period_s <= 0 or self.scale_out_evaluations < 1 or self.scale_in_evaluations < 1:
            raise ValueError("period_s and the evaluation counts must be positive")

    @property
    def kind(self) -> str:
        return "step" if self.steps else "target"


@dataclass
class PolicyState:
    history: list[float]
    last_scale_out_s: float = -math.inf
    last_activity_s: float = -math.inf


def decide(policy: Policy, state: PolicyState, now_s: float, desired: int, metric: float) -> int:
    """The desired count after this period's metric is recorded."""
    state.history.append(metric)
    ratio = metric / policy.target
    recent_out = state.history[-policy.scale_out_evaluations :]
    recent_in = state.history[-policy.scale_in_evaluations :]
    breached = len(recent_out) == policy.scale_out_evaluations and min(recent_out) > policy.target
    if breached and now_s - state.last_scale_out_s >= policy.scale_out_cooldown_s:
        if policy.steps:
            reached = [step for step in policy.steps if ratio >= step.at_ratio]
            wanted = desired + (max(step.adjustment for step in reached) if reached else 0)
        else:
            wanted = max(desired + 1, math.ceil(desired * ratio))
        new = min(max(wanted, policy.min_count), policy.max_count)
        if new > desired:
            state.last_scale_out_s = state.last_activity_s = now_s
            return new
    quiet = (
        len(recent_in) == policy.scale_in_evaluations
        and max(recent_in) < policy.target * policy.scale_in_ratio
        and now_s - state.last_activity_s >= policy.scale_in_cooldown_s
    )
    if quiet:
        wanted = desired - 1 if policy.steps else min(desired - 1, math.ceil(desired * ratio))
        new = max(wanted, policy.min_count)
        if new < desired:
            state.last_activity_s = now_s
            return new
    return min(max(desired, policy.min_count), policy.max_count)
