"""The fleet over time: two roles (prefill, decode), each with its own policy, a shared trace.

A fluid model, ticked every TICK_S seconds:
- a role's ready workers serve up to ready * capacity_rps; demand above that joins the role's
  queue, and the queue drains when there is spare capacity;
- TTFT = the prefill curve at the per-worker rate served + the time to drain both queues
  (a queued request has no first token yet); ITL = the decode curve at the rate served per
  decode worker (a worker's batch is capped, so overload queues instead of slowing tokens);
- both roles see the arriving demand (decode is not shielded by a saturated prefill), so the
  queues are upper bounds;
- a worker the policy adds is billed from the decision and serves after `cold_start_s`
  (environments/fit.py's estimate); a worker removed stops at once (drained, not billed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from simulator.latency import LatencyModel
from simulator.policy import Policy, PolicyState, decide

TICK_S = 10
ROLES = ("prefill", "decode")


@dataclass(frozen=True)
class Fleet:
    prefill: Policy
    decode: Policy
    cold_start_s: float
    prefill_gpus: int
    decode_gpus: int
    ttft_slo_ms: float
    itl_slo_ms: float

    def policy(self, role: str) -> Policy:
        return self.prefill if role == "prefill" else self.decode

    def gpus(self, role: str) -> int:
        return self.prefill_gpus if role == "prefill" else self.decode_gpus


@dataclass
class Sample:
    time_s: int
    demand_rps: float
    ready: dict[str, int]
    desired: dict[str, int]
    ttft_ms: float
    itl_ms: float


@dataclass
class RoleState:
    desired: int
    starting: list[float] = field(default_factory=list)  # when each added worker turns ready
    ready: int = 0
    queue: float = 0.0  # requests waiting
    policy_state: PolicyState = field(default_factory=lambda: PolicyState(history=[]))
    period_metrics: list[float] = field(default_factory=list)


def _metric(policy: Policy, ttft_ms: float, itl_ms: float, arriving_per_worker: float, capacity: float) -> float:
    if policy.metric == "ttft_ms":
        return ttft_ms
    if policy.metric == "itl_ms":
        return itl_ms
    # Arriving, not served: served is capped at capacity, so it could never show an overload.
    return arriving_per_worker / capacity


def simulate(fleet: Fleet, model: LatencyModel, demand: list[float]) -> list[Sample]:
    """One sample per tick; demand[i] is the request rate during tick i."""
    policies = {role: fleet.policy(role) for role in ROLES}
    states = {role: RoleState(desired=policies[role].min_count, ready=policies[role].min_count) for role in ROLES}
    samples = []
    for index, rate in enumerate(demand):
        now = index * TICK_S
        served: dict[str, float] = {}
        for role in ROLES:
            state = states[role]
            state.ready += sum(1 for ready_at in state.starting if ready_at <= now)
            state.starting = [ready_at for ready_at in state.starting if ready_at > now]
            capacity = state.ready * model.capacity_rps
            served[role] = min(rate + state.queue / TICK_S, capacity)
            state.queue = max(0.0, state.queue + (rate - capacity) * TICK_S)
        wait_ms = sum(_drain_ms(states[role], model.capacity_rps) for role in ROLES)
        per_worker = {role: served[role] / states[role].ready if states[role].ready else 0.0 for role in ROLES}
        ttft = model.ttft(per_worker["prefill"]) + wait_ms
        itl = model.itl(per_worker["decode"])
        samples.append(
            Sample(
                now,
                rate,
                {role: states[role].ready for role in ROLES},
                {role: states[role].desired for role in ROLES},
                ttft,
                itl,
            )
        )
        end = now + TICK_S
        for role in ROLES:
            policy, state = policies[role], states[role]
            # A role with nothing ready reports no latency: its metric reads as far over target.
            metric = _metric(policy, ttft, itl, rate / state.ready, model.capacity_rps) if state.ready else math.inf
            state.period_metrics.append(min(metric, 1e9))
            if end % policy.period_s:
                continue
            mean = sum(state.period_metrics) / len(state.period_metrics)
            state.period_metrics = []
            new = decide(policy, state.policy_state, end, state.desired, mean)
            if new > state.desired:
                state.starting += [end + fleet.cold_start_s] * (new - state.desired)
            elif new < state.desired:
                _remove(state, state.desired - new)
            state.desired = new
    return samples


def _drain_ms(state: RoleState, capacity_rps: float) -> float:
    """How long the role's queue takes to drain at full capacity."""
    if not state.queue:
        return 0.0
    return 1000 * state.queue / (state.ready * capacity_rps) if state.ready else math.inf


def _remove(state: RoleState, count: int) -> None:
    """Assumed: workers still starting are stopped before ready ones (the cheapest choice)."""
    cancelled = min(count, len(state.starting))
    state.starting = sorted(state.starting)[: len(state.starting) - cancelled]
    state.ready -= count - cancelled
