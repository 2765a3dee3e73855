"""The in-flight targets the schema ships ([scaling] prefill_inflight_target and
decode_inflight_target), chosen by replaying the deployed policies with each candidate pair on
every shipped trace.

The rule: among the candidates whose SLO-minutes lost on each trace are within
SLO_TOLERANCE_MINUTES of the best candidate's on that trace, the fewest GPU-hours over all
traces (ties: the higher targets, the less eager fleet). Latency first, because holding it is
what the policies are for; then cost, because a difference under the tolerance is within what
the calibration's own noise moves (README: another run's data moves a figure by up to 1 SLO-minute).
"""

from __future__ import annotations

from dataclasses import dataclass

from environments.schema import Environment
from simulator.deployed import deployed
from simulator.fleet import simulate
from simulator.latency import LatencyModel
from simulator.report import Outcome, outcome

PREFILL_CANDIDATES = (2, 3, 4, 5, 6)
DECODE_CANDIDATES = (12, 16, 20, 24, 28, 32)
SLO_TOLERANCE_MINUTES = 1.0


@dataclass(frozen=True)
class Candidate:
    prefill: int
    decode: int
    outcomes: dict[str, Outcome]  # per trace

    @property
    def gpu_hours(self) -> float:
        return sum(result.gpu_hours for result in self.outcomes.values())


def with_inflight(env: Environment, prefill: int, decode: int) -> Environment:
    scaling = env.scaling.model_copy(update={"prefill_inflight_target": prefill, "decode_inflight_target": decode})
    return env.model_copy(update={"scaling": scaling})


def sweep(
    env: Environment,
    model: LatencyModel,
    traces: dict[str, list[float]],
    prefill: tuple[int, ...] = PREFILL_CANDIDATES,
    decode: tuple[int, ...] = DECODE_CANDIDATES,
) -> list[Candidate]:
    """Every (prefill, decode) pair under the environment's deployed policies."""
    candidates = []
    for prefill_target in prefill:
        for decode_target in decode:
            fleet = deployed(with_inflight(env, prefill_target, decode_target))
            outcomes = {name: outcome(fleet, simulate(fleet, model, demand)) for name, demand in traces.items()}
            candidates.append(Candidate(prefill_target, decode_target, outcomes))
    return candidates


def admissible(candidates: list[Candidate]) -> list[Candidate]:
    """The candidates within SLO_TOLERANCE_MINUTES of the best on every trace."""
    best = {
        trace: min(candidate.outcomes[trace].slo_minutes_lost for candidate in candidates)
        for trace in candidates[0].outcomes
    }
    return [
        candidate
        for candidate in candidates
        if all(
            result.slo_minutes_lost <= best[trace] + SLO_TOLERANCE_MINUTES
            for trace, result in candidate.outcomes.items()
        )
    ]


def choose(candidates: list[Candidate]) -> Candidate:
    # GPU-hours rounded as printed, so that a tie on the table is a tie here.
    return min(admissible(candidates), key=lambda c: (round(c.gpu_hours, 1), -c.prefill, -c.decode))


def sweep_table(candidates: list[Candidate], chosen: Candidate) -> str:
    """One line per candidate: SLO-minutes lost and GPU-hours per trace; the chosen one marked."""
    traces = list(chosen.outcomes)
    within = admissible(candidates)
    header = ["prefill", "decode", *(f"{trace} SLO-min/GPU-h" for trace in traces), "GPU-h total", ""]
    lines = [header]
    for candidate in candidates:
        mark = "chosen" if candidate == chosen else ("" if candidate in within else "over tolerance")
        cells = [f"{r.slo_minutes_lost:.1f} / {r.gpu_hours:.1f}" for r in candidate.outcomes.values()]
        lines.append([str(candidate.prefill), str(candidate.decode), *cells, f"{candidate.gpu_hours:.1f}", mark])
    widths = [max(len(line[column]) for line in lines) for column in range(len(header))]
    rendered = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in lines]
    rendered.insert(1, "  ".join("-" * w for w in widths).rstrip())
    return "\n".join(rendered)
