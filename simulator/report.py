"""What a run means: time to scale out, SLO-minutes lost, GPU-hours; the table and the plot."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from simulator.fleet import ROLES, TICK_S, Fleet, Sample


@dataclass(frozen=True)
class Outcome:
    # First SLO breach -> first worker added after it serving. None: no breach; inf: no worker
    # was added after the breach (the fleet was at its maximum, or never scaled).
    scale_out_s: float | None
    at_max_when_breached: bool
    slo_minutes_lost: float
    gpu_hours: float
    peak: dict[str, int]


def breached(sample: Sample, fleet: Fleet) -> bool:
    return sample.ttft_ms > fleet.ttft_slo_ms or sample.itl_ms > fleet.itl_slo_ms


def outcome(fleet: Fleet, samples: list[Sample]) -> Outcome:
    breaches = [index for index, sample in enumerate(samples) if breached(sample, fleet)]
    scale_out_s: float | None = None
    at_max = False
    if breaches:
        first = samples[breaches[0]]
        serving_then = sum(first.ready.values())
        at_max = all(first.desired[role] == fleet.max_count(role) for role in ROLES)
        added = next((s for s in samples[breaches[0] :] if sum(s.ready.values()) > serving_then), None)
        scale_out_s = float("inf") if added is None else float(added.time_s - first.time_s)
    # Billed from the scaling decision: a starting worker holds its GPUs.
    gpu_ticks = sum(sample.desired[role] * fleet.gpus(role) for sample in samples for role in ROLES)
    return Outcome(
        scale_out_s=scale_out_s,
        at_max_when_breached=at_max,
        slo_minutes_lost=len(breaches) * TICK_S / 60,
        gpu_hours=gpu_ticks * TICK_S / 3600,
        peak={role: max(sample.desired[role] for sample in samples) for role in ROLES},
    )


def table(rows: list[tuple[str, str, Outcome]]) -> str:
    header = ("trace", "policy", "scale-out", "SLO-min lost", "GPU-hours", "peak prefill/decode")
    lines = [header]
    for trace, policy, result in rows:
        if result.scale_out_s is None:
            scale_out = "no breach"
        elif result.scale_out_s == float("inf"):
            scale_out = "was at max" if result.at_max_when_breached else "never"
        else:
            scale_out = f"{result.scale_out_s / 60:.1f} min"
        peak = f"{result.peak['prefill']}/{result.peak['decode']}"
        lines.append((trace, policy, scale_out, f"{result.slo_minutes_lost:.1f}", f"{result.gpu_hours:.1f}", peak))
    widths = [max(len(line[column]) for line in lines) for column in range(len(header))]
    rendered = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() for line in lines
    ]
    rendered.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(rendered)


def plot(path: Path, title: str, fleet: Fleet, samples: list[Sample]) -> None:
    """Demand, workers and TTFT over time, in one PNG with no timestamp in it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [sample.time_s / 60 for sample in samples]
    figure, (demand, workers, ttft) = plt.subplots(3, 1, sharex=True, figsize=(9, 7), dpi=100)
    demand.plot(minutes, [sample.demand_rps for sample in samples], color="black")
    demand.set_ylabel("demand (req/s)")
    demand.set_title(title)
    for role, color in zip(ROLES, ("tab:blue", "tab:orange"), strict=True):
        workers.step(minutes, [s.desired[role] for s in samples], where="post", color=color, linestyle="--")
        workers.step(minutes, [s.ready[role] for s in samples], where="post", color=color, label=f"{role} serving")
    workers.set_ylabel("workers (-- desired)")
    workers.legend(loc="upper right")
    ttft.plot(minutes, [min(sample.ttft_ms, 10 * fleet.ttft_slo_ms) for sample in samples], color="tab:red")
    ttft.axhline(fleet.ttft_slo_ms, color="grey", linestyle=":", label=f"target {fleet.ttft_slo_ms:.0f} ms")
    ttft.set_yscale("log")
    ttft.set_ylabel(f"TTFT (ms, cut at {10 * fleet.ttft_slo_ms / 1000:.0f} s)")
    ttft.set_xlabel("minutes")
    ttft.legend(loc="upper right")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", metadata={"Software": None})
    plt.close(figure)
