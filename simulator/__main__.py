"""make simulate: every shipped trace against the deployed policies and each setting of the
settings file; a table, the spike's plot, and the sweep that chooses the in-flight targets.

python -m simulator [--env prod] [--plot docs/simulator-spike.png] [--settings simulator/settings.toml]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from environments import fit
from environments.loader import ENVIRONMENTS_DIR, ConfigError, load
from environments.schema import Environment
from simulator.choose import SLO_TOLERANCE_MINUTES, choose, sweep, sweep_table
from simulator.deployed import bounds, deployed, deployed_name, fleet_of
from simulator.fleet import Fleet, simulate
from simulator.latency import CALIBRATION_FILE, load_calibration
from simulator.latency import fit as fit_latency
from simulator.report import outcome, plot, table
from simulator.settings import SETTINGS_FILE, read_settings
from simulator.traces import TRACE_NAMES, load_trace

PLOTTED_TRACE = "spike"  # under the deployed policies


def fleets(env: Environment, settings_file: Path) -> dict[str, Fleet]:
    """The deployed policies first, then one fleet per setting of the file, all with this
    environment's bounds, GPUs, cold start and SLOs. A problem a user can cause is a one-line
    ValueError."""
    compared = {deployed_name(env): deployed(env)}
    for name, policies in read_settings(settings_file, bounds(env)).items():
        try:
            compared[name] = fleet_of(env, policies)
        except ValueError as error:
            raise ValueError(f"{settings_file}: {name}: {error}") from None
    return compared


def main() -> None:
    parser = argparse.ArgumentParser(description="Replay the shipped traces against scaling policies.")
    parser.add_argument("--env", default="prod", help="environment whose policies, bounds and cold start are used")
    parser.add_argument("--plot", type=Path, default=Path("docs/simulator-spike.png"))
    parser.add_argument("--settings", type=Path, default=SETTINGS_FILE, help="policy settings compared (TOML)")
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
    model = fit_latency(load_calibration(args.calibration))
    shown = compared[deployed_name(env)]
    print(
        f"{env.name}: {env.model.name}, prefill {env.prefill.min_count}..{env.prefill.max_count}, "
        f"decode {env.decode.min_count}..{env.decode.max_count} workers of {env.prefill.gpus}/{env.decode.gpus} GPU, "
        f"cold start {fit.minutes(shown.cold_start_s)} (environments/fit.py); "
        f"per worker: capacity {model.capacity_rps:.1f} req/s, "
        f"TTFT {model.ttft.base:.1f} + {model.ttft.slope:.3f}*r^{model.ttft.exponent:.2f} ms, "
        f"ITL {model.itl.base:.2f} + {model.itl.slope:.4f}*r^{model.itl.exponent:.2f} ms"
    )
    traces = {name: load_trace(name) for name in TRACE_NAMES}
    rows = []
    for trace, demand in traces.items():
        for name, fleet in compared.items():
            samples = simulate(fleet, model, demand)
            rows.append((trace, name, outcome(fleet, samples)))
            if trace == PLOTTED_TRACE and fleet is shown:
                plot(args.plot, f"{trace} trace, {name}", fleet, samples)
    print(table(rows))
    candidates = sweep(env, model, traces)
    chosen = choose(candidates)
    print(
        f"\nIn-flight targets (deployed policies, every trace): within {SLO_TOLERANCE_MINUTES:.0f} SLO-minute of the "
        f"best on each trace, fewest GPU-hours: prefill {chosen.prefill}, decode {chosen.decode}"
    )
    print(sweep_table(candidates, chosen))
    print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
