"""Scaling policies, as Application Auto Scaling runs them on an ECS service's desired count.

The parameters are the ones a Terraform policy carries (period, evaluation periods, cooldowns,
bounds, target or steps), so the policies environments/policies.py deploys can be replayed.
Semantics modelled (a simplification of the service's, stated in the README):
- the metric is averaged over each period; a decision is taken at the end of a period;
- a policy asks to scale out when its last `scale_out_evaluations` periods are all above the
  target (step scaling: above the lowest step), not within `scale_out_cooldown_s` of the
  role's last scale-out;
- a policy asks to scale in when its last `scale_in_evaluations` periods are all below
  target * scale_in_ratio, not within `scale_in_cooldown_s` of the role's last scaling activity
  of either kind; a policy with `scales_in = False` never asks;
- target tracking sizes proportionally: ceil(desired * metric / target); step scaling adds the
  step's adjustment (and scales in one worker at a time); counts are clamped to [min, max];
- a role with several policies scales out when any policy asks for more (the largest count
  wins) and scales in only when every policy that scales in asks for fewer (to the largest of
  their counts): Application Auto Scaling's rule for multiple policies.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args

# Dynamo's planner targets: SLAPlannerDefaults.ttft_ms = 500.0 and .itl_ms = 50.0 in
# dynamo/planner/config/defaults.py of ai-dynamo 1.2.1 (the version the twin pins).
PLANNER_TTFT_MS = 500.0
PLANNER_ITL_MS = 50.0

# ttft_ms and itl_ms are the mean latency over the period; utilization is the arriving requests
# per second per ready worker over the calibrated capacity; inflight is the requests in flight
# per ready worker of the role (simulator/fleet.py says how each is computed).
Metric = Literal["ttft_ms", "itl_ms", "utilization", "inflight"]


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
    # Empty: target tracking. Otherwise step scaling with these steps.
    steps: tuple[Step, ...] = ()
    # False: a policy that only scales out (environments/policies.py's latency step policies).
    scales_in: bool = True

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

    def clamp(self, count: int) -> int:
        return min(max(count, self.min_count), self.max_count)


@dataclass
class ScalingState:
    """One role's: each policy's metric per period, and the role's last scaling activities
    (cooldowns count from the scalable target's activity, whichever policy caused it)."""

    histories: list[list[float]] = field(default_factory=list)
    last_scale_out_s: float = -math.inf
    last_activity_s: float = -math.inf


def decide(
    policies: Sequence[Policy], state: ScalingState, now_s: float, desired: int, metrics: Sequence[float]
) -> int:
    """The role's desired count after this period's metrics (one per policy) are recorded."""
    if not state.histories:
        state.histories = [[] for _ in policies]
    for history, metric in zip(state.histories, metrics, strict=True):
        history.append(metric)
    asked_out = [_scale_out(p, h, state, now_s, desired) for p, h in zip(policies, state.histories, strict=True)]
    if max(asked_out) > desired:
        state.last_scale_out_s = state.last_activity_s = now_s
        return max(asked_out)
    asked_in = [
        _scale_in(p, h, state, now_s, desired) for p, h in zip(policies, state.histories, strict=True) if p.scales_in
    ]
    if asked_in and max(asked_in) < desired:
        state.last_activity_s = now_s
        return max(asked_in)
    return policies[0].clamp(desired)


def _scale_out(policy: Policy, history: list[float], state: ScalingState, now_s: float, desired: int) -> int:
    """The count this policy asks for, or `desired` when it does not ask to scale out."""
    recent = history[-policy.scale_out_evaluations :]
    breached = len(recent) == policy.scale_out_evaluations and min(recent) > policy.target
    if not breached or now_s - state.last_scale_out_s < policy.scale_out_cooldown_s:
        return desired
    ratio = history[-1] / policy.target
    if policy.steps:
        reached = [step.adjustment for step in policy.steps if ratio >= step.at_ratio]
        wanted = desired + max(reached, default=0)
    else:
        wanted = max(desired + 1, math.ceil(desired * ratio))
    return max(policy.clamp(wanted), desired)


def _scale_in(policy: Policy, history: list[float], state: ScalingState, now_s: float, desired: int) -> int:
    """The count this policy asks for, or `desired` when it does not ask to scale in."""
    recent = history[-policy.scale_in_evaluations :]
    quiet = (
        len(recent) == policy.scale_in_evaluations
        and max(recent) < policy.target * policy.scale_in_ratio
        and now_s - state.last_activity_s >= policy.scale_in_cooldown_s
    )
    if not quiet:
        return desired
    ratio = history[-1] / policy.target
    wanted = desired - 1 if policy.steps else min(desired - 1, math.ceil(desired * ratio))
    return min(max(wanted, policy.min_count), desired)
