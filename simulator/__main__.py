"""make simulate: every shipped trace against each policy setting; a table, and the spike's plot.

python -m simulator [--env prod] [--plot docs/simulator-spike.png] [--settings simulator/settings.toml]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from environments import fit
from environments.loader import ENVIRONMENTS_DIR, ConfigError, load
from environments.schema import Environment
from simulator.fleet import Fleet, simulate
from simulator.latency import CALIBRATION_FILE, load_measurements
from simulator.latency import fit as fit_latency
from simulator.policy import PLANNER_ITL_MS, PLANNER_TTFT_MS
from simulator.report import outcome, plot, table
from simulator.settings import SETTINGS_FILE, read_settings
from simulator.traces import TRACE_NAMES, load_trace

PLOTTED_TRACE = "spike"  # under the settings file's first setting


def fleets(env: Environment, settings_file: Path) -> dict[str, Fleet]:
    """One fleet per setting of the file, with this environment's bounds, GPUs and cold start.
    A problem a user can cause is a one-line ValueError."""
    facts = env.model.model_facts
    if facts is None:
        raise ValueError(f"{env.name}: the model has no facts, so no cold-start estimate (environments/fit.py)")
    if env.prefill is None:
        raise ValueError(f"{env.name}: no [prefill]; the simulator models disaggregated prefill/decode only")
    bounds = {
        "prefill": (env.prefill.min_count, env.prefill.max_count),
        "decode": (env.decode.min_count, env.decode.max_count),
    }
    settings = read_settings(settings_file, bounds)
    return {
        name: Fleet(
            prefill=policies["prefill"],
            decode=policies["decode"],
            cold_start_s=fit.cold_start(env, facts).total,
            prefill_gpus=env.prefill.gpus,
            decode_gpus=env.decode.gpus,
            ttft_slo_ms=PLANNER_TTFT_MS,
            itl_slo_ms=PLANNER_ITL_MS,
        )
        for name, policies in settings.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Replay the shipped traces against scaling policies.")
    parser.add_argument("--env", default="prod", help="environment whose bounds and cold start are used")
    parser.add_argument("--plot", type=Path, default=Path("docs/simulator-spike.png"))
    parser.add_argument("--settings", type=Path, default=SETTINGS_FILE, help="policy settings (TOML)")
    parser.add_argument(
        "--calibration", type=Path, default=CALIBRATION_FILE, help="latency measurements (scripts/calibrate_latency.py)"
    )
    args = parser.parse_args()
    try:
        env = load(ENVIRONMENTS_DIR / f"{args.env}.toml", shown_as=f"environments/{args.env}.toml")
        compared = fleets(env, args.settings)
    except (ConfigError, ValueError) as error:
        # As main.py does for a user's mistake: one line, exit code 2, no traceback.
        print(error, file=sys.stderr)
        raise SystemExit(2) from None
    assert env.prefill is not None  # fleets() has checked
    model = fit_latency(load_measurements(args.calibration))
    any_fleet = next(iter(compared.values()))
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
        for name, fleet in compared.items():
            samples = simulate(fleet, model, demand)
            rows.append((trace, name, outcome(fleet, samples)))
            if trace == PLOTTED_TRACE and name == next(iter(compared)):
                plot(args.plot, f"{trace} trace, {name} ({env.name})", fleet, samples)
    print(table(rows))
    print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
