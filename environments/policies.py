"""The GPU workers' scaling policies as plain data: what components/autoscaling.py deploys and
what the simulator replays, from one environment's `[scaling]` section.

Per worker role:
- a step policy on the role's latency (TTFT for prefill, ITL for decode; an aggregated decode
  worker does both, so it has both). It only scales out. Latency does not fall in proportion
  to added workers (it stays near its floor until a worker saturates, then climbs steeply), so
  target tracking, which sizes the fleet by metric / target, would misjudge how many to add
  ("the metric value must increase or decrease proportionally to the number of capacity
  units": Application Auto Scaling User Guide, target tracking). A step policy adds a fixed
  number of workers per breach, more the further over target.
- target tracking on requests in flight per worker, the early signal: it rises with demand
  before latency does, falls in proportion as workers are added, and is the only policy that
  scales in.

Application Auto Scaling scales out when any policy asks for more and scales in only when every
target tracking policy agrees (User Guide, "multiple scaling policies").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from environments.schema import Environment

# (how far over target, as a ratio of the target; workers added). At the target a breach adds
# one worker; at 1.5x target two: by then a worker is saturated and its queue grows.
LATENCY_STEPS: tuple[tuple[float, int], ...] = ((1.0, 1), (1.5, 2))
# Application Auto Scaling's own alarms for a target tracking policy: scale out after 3
# one-minute data points over target, scale in after 15 under 90 % of it (User Guide,
# "Target tracking scaling policies", and the alarms it creates: AlarmHigh 3 of 3, AlarmLow 15 of 15).
TARGET_TRACKING_SCALE_OUT_MINUTES = 3
TARGET_TRACKING_SCALE_IN_MINUTES = 15
TARGET_TRACKING_SCALE_IN_RATIO = 0.9
PERIOD_SECONDS = 60

Signal = Literal["ttft_ms", "itl_ms", "inflight"]


@dataclass(frozen=True)
class WorkerPolicy:
    """One policy on one role's desired count.

    ``signal``: mean TTFT or ITL over a minute at the frontends (ms), or requests in flight
    per worker of the role. ``steps`` is empty for target tracking."""

    role: str
    signal: Signal
    target: float
    scale_out_minutes: int
    scale_out_cooldown_seconds: int
    scale_in_cooldown_seconds: int
    steps: tuple[tuple[float, int], ...] = ()

    @property
    def kind(self) -> Literal["step", "target_tracking"]:
        return "step" if self.steps else "target_tracking"

    @property
    def name(self) -> str:
        return f"{self.role}-{self.signal.removesuffix('_ms')}"


def worker_policies(env: Environment) -> dict[str, list[WorkerPolicy]]:
    """Every worker role's policies, latency first."""
    scaling = env.scaling
    cooldowns = (scaling.scale_out_cooldown_seconds, scaling.scale_in_cooldown_seconds)
    latency_signals: dict[str, list[tuple[Signal, int]]] = {
        "prefill": [("ttft_ms", scaling.ttft_target_ms)],
        "decode": [("itl_ms", scaling.itl_target_ms)],
    }
    if env.mode == "aggregated":
        latency_signals["decode"].insert(0, ("ttft_ms", scaling.ttft_target_ms))
    inflight = {"prefill": scaling.prefill_inflight_target, "decode": scaling.decode_inflight_target}
    policies: dict[str, list[WorkerPolicy]] = {}
    for role in env.gpu_workers():
        policies[role] = [
            WorkerPolicy(role, signal, target, scaling.latency_breach_minutes, *cooldowns, steps=LATENCY_STEPS)
            for signal, target in latency_signals[role]
        ]
        policies[role].append(
            WorkerPolicy(role, "inflight", inflight[role], TARGET_TRACKING_SCALE_OUT_MINUTES, *cooldowns)
        )
    return policies
