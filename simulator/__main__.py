"""make simulate: every shipped trace against each policy setting; a table, and the spike's plot.

python -m simulator [--env prod] [--plot docs/simulator-spike.png]
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from environments import fit
from environments.loader import ENVIRONMENTS_DIR, load
from environments.schema import Environment
from simulator.fleet import Fleet, simulate
from simulator.latency import fit as fit_latency
from simulator.latency import load_measurements
from simulator.policy import PLANNER_ITL_MS, PLANNER_TTFT_MS, Policy, Step
from simulator.report import outcome, plot, table
from simulator.traces import TRACE_NAMES, load_trace

PLOTTED = ("spike", "planner targets")


def settings(env: Environment) -> dict[str, Fleet]:
    """The policy settings compared: Dynamo's planner targets as target tracking, the same
    reacting after one period, and an early-signal variant (load per worker, step scaling)."""
    facts = env.model.model_facts
    if facts is None:
        raise SystemExit(f"{env.name}: the model has no facts, so no cold-start estimate (environments/fit.py)")
    if env.prefill is None:
        raise SystemExit(f"{env.name}: no [prefill]; the simulator models disaggregated prefill/decode only")
    prefill = Policy("ttft_ms", PLANNER_TTFT_MS, env.prefill.min_count, env.prefill.max_count)
    decode = Policy("itl_ms", PLANNER_ITL_MS, env.decode.min_count, env.decode.max_count)
    base = Fleet(
        prefill=prefill,
        decode=decode,
        cold_start_s=fit.cold_start(env, facts).total,
        prefill_gpus=env.prefill.gpus,
        decode_gpus=env.decode.gpus,
        ttft_slo_ms=PLANNER_TTFT_MS,
        itl_slo_ms=PLANNER_ITL_MS,
    )
    early_steps = (Step(1.0, 1), Step(1.3, 2))
    return {
        "planner targets": base,
        "planner targets, 1 period": replace(
            base,
            prefill=replace(prefill, scale_out_evaluations=1),
            decode=replace(decode, scale_out_evaluations=1),
        ),
        "load 70%, steps": replace(
            base,
            prefill=replace(prefill, metric="utilization", target=0.7, steps=early_steps, scale_out_evaluations=1),
            decode=replace(decode, metric="utilization", target=0.7, steps=early_steps, scale_out_evaluations=1),
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Replay the shipped traces against scaling policies.")
    parser.add_argument("--env", default="prod", help="environment whose bounds and cold start are used")
    parser.add_argument("--plot", type=Path, default=Path("docs/simulator-spike.png"))
    args = parser.parse_args()
    env = load(ENVIRONMENTS_DIR / f"{args.env}.toml")
    fleets = settings(env)
    assert env.prefill is not None  # settings() has checked
    model = fit_latency(load_measurements())
    any_fleet = next(iter(fleets.values()))
    print(
        f"{env.name}: {env.model.name}, prefill {env.prefill.min_count}..{env.prefill.max_count}, "
        f"decode {env.decode.min_count}..{env.decode.max_count} workers of {env.prefill.gpus}/{env.decode.gpus} GPU, "
        f"cold start {fit.minutes(any_fleet.cold_start_s)} (environments/fit.py); "
        f"per worker: capacity {model.capacity_rps:.1f} req/s, "
        f"TTFT {model.ttft.base:.1f} + {model.ttft.slope:.3f}*r^{model.ttft.exponent:.2f} ms, "
        f"ITL {model.itl.base:.2f} + {model.itl.slope:.4f}*r^{model.itl.exponent:.2f} ms"
    )
    rows = []
    for trace in TRACE_NAMES:
        demand = load_trace(trace)
        for name, fleet in fleets.items():
            samples = simulate(fleet, model, demand)
            rows.append((trace, name, outcome(fleet, samples)))
            if (trace, name) == PLOTTED:
                plot(args.plot, f"{trace} trace, {name} ({env.name})", fleet, samples)
    print(table(rows))
    print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
