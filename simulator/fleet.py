"""The fleet over time: two roles (prefill, decode), each with its own policies, a shared trace.

A fluid model, ticked every TICK_S seconds:
- a role's ready workers serve up to ready * capacity_rps; demand above that joins the role's
  queue, and the queue drains when there is spare capacity;
- TTFT = the prefill curve at the per-worker rate served + the time to drain both queues
  (a queued request has no first token yet); ITL = the decode curve at the rate served per
  decode worker (a worker's batch is capped, so overload queues instead of slowing tokens);
- both roles see the arriving demand (decode is not shielded by a saturated prefill), so the
  queues are upper bounds;
- requests in flight per ready worker (the `inflight` metric), by Little's law on the same
  model: prefill: the rate served per worker x the prefill curve's time + the prefill queue per
  ready worker; decode: the rate served per worker x output tokens x ITL + the decode queue per
  ready worker (a request holds its decode slot while it streams its output tokens);
- a worker the policies add is billed from the decision and serves after `cold_start_s`
  (environments/fit.py's estimate); a worker removed stops at once (drained, not billed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from simulator.latency import LatencyModel
from simulator.policy import Policy, ScalingState, decide

TICK_S = 10
ROLES = ("prefill", "decode")


@dataclass(frozen=True)
class Fleet:
    prefill: tuple[Policy, ...]
    decode: tuple[Policy, ...]
    cold_start_s: float
    prefill_gpus: int
    decode_gpus: int
    ttft_slo_ms: float
    itl_slo_ms: float

    def __post_init__(self) -> None:
        # One scalable target per role: its bounds and its decision times are the policies' own.
        for role in ROLES:
            policies = self.policies(role)
            if not policies:
                raise ValueError(f"{role}: no policy")
            if len({(p.min_count, p.max_count, p.period_s) for p in policies}) > 1:
                raise ValueError(f"{role}: the policies of a role need the same min_count, max_count and period_s")

    def policies(self, role: str) -> tuple[Policy, ...]:
        return self.prefill if role == "prefill" else self.decode

    def min_count(self, role: str) -> int:
        return self.policies(role)[0].min_count

    def max_count(self, role: str) -> int:
        return self.policies(role)[0].max_count

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
    scaling: ScalingState = field(default_factory=ScalingState)
    period_metrics: list[list[float]] = field(default_factory=list)  # per tick, one per policy


@dataclass(frozen=True)
class Reading:
    """What a role's policies can see in one tick."""

    ttft_ms: float
    itl_ms: float
    utilization: float
    inflight: float

    def metric(self, policy: Policy) -> float:
        return float(getattr(self, policy.metric))  # a field per simulator.policy.Metric


def read_role(
    role: str, state: RoleState, model: LatencyModel, rate: float, served: float, ttft: float, itl: float
) -> Reading:
    """The role's metrics this tick; in flight per worker by Little's law (the module's docstring)."""
    if not state.ready:
        # A role with nothing ready reports no latency: every metric reads as far over target.
        return Reading(math.inf, math.inf, math.inf, math.inf)
    per_worker = served / state.ready
    ms_in_service = model.ttft(per_worker) if role == "prefill" else model.output_tokens * model.itl(per_worker)
    return Reading(
        ttft,
        itl,
        # Arriving, not served: served is capped at capacity, so it could never show an overload.
        utilization=rate / state.ready / model.capacity_rps,
        inflight=per_worker * ms_in_service / 1000 + state.queue / state.ready,
    )


def simulate(fleet: Fleet, model: LatencyModel, demand: list[float]) -> list[Sample]:
    """One sample per tick; demand[i] is the request rate during tick i."""
    states = {role: RoleState(desired=fleet.min_count(role), ready=fleet.min_count(role)) for role in ROLES}
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
            policies, state = fleet.policies(role), states[role]
            seen = read_role(role, state, model, rate, served[role], ttft, itl)
            state.period_metrics.append([min(seen.metric(policy), 1e9) for policy in policies])
            if end % policies[0].period_s:
                continue
            means = [sum(column) / len(column) for column in zip(*state.period_metrics, strict=True)]
            state.period_metrics = []
            new = decide(policies, state.scaling, end, state.desired, means)
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
