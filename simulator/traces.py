"""Request-rate traces: CSV files of time_s,requests_per_second, linear between rows."""

from __future__ import annotations

import csv
from pathlib import Path

from simulator.fleet import TICK_S

TRACES_DIR = Path(__file__).parent / "traces"
TRACE_NAMES = ("ramp", "spike", "day")


def read_trace(path: Path) -> list[tuple[float, float]]:
    with path.open() as handle:
        rows = csv.DictReader(line for line in handle if not line.startswith("#"))
        points = [(float(row["time_s"]), float(row["requests_per_second"])) for row in rows]
    if len(points) < 2 or any(later[0] <= earlier[0] for earlier, later in zip(points, points[1:], strict=False)):
        raise ValueError(f"{path}: need at least two rows with increasing time_s")
    return points


def per_tick(points: list[tuple[float, float]]) -> list[float]:
    """The rate at the start of each tick, from the first row's time to the last's."""
    start, end = points[0][0], points[-1][0]
    rates, segment = [], 0
    for index in range(int((end - start) // TICK_S)):
        now = start + index * TICK_S
        while points[segment + 1][0] < now:
            segment += 1
        (t0, r0), (t1, r1) = points[segment], points[segment + 1]
        rates.append(r0 + (r1 - r0) * (now - t0) / (t1 - t0))
    return rates


def load_trace(name: str) -> list[float]:
    return per_tick(read_trace(TRACES_DIR / f"{name}.csv"))
