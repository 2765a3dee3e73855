"""Per-worker latency as a function of load, fitted to the calibration measurements.

Load is requests per second per worker: what the calibration measured at each concurrency
step (closed loop, so rate and latency come from the same step) and what a trace gives. The
fitted curve is latency_ms = base + slope * rate ** exponent (least squares on a grid of
exponents: deterministic, no numeric library). The highest measured rate is the worker's
capacity: demand above it queues (simulator/fleet.py). Steps at SATURATED_FRACTION of that
capacity or more are left out of the curve: more concurrency there raised the rate hardly at
all, so their latency is mostly waiting in the worker's queue, which the fleet models apart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

CALIBRATION_FILE = Path(__file__).parent / "data" / "calibration.json"
EXPONENTS = tuple(step / 100 for step in range(10, 301))
SATURATED_FRACTION = 0.95


@dataclass(frozen=True)
class Curve:
    """latency_ms(rate) = base + slope * rate ** exponent, for rate in [0, capacity]."""

    base: float
    slope: float
    exponent: float

    def __call__(self, rate: float) -> float:
        return self.base + self.slope * float(max(rate, 0.0) ** self.exponent)


@dataclass(frozen=True)
class Measurement:
    concurrency: int
    requests_per_second: float
    ttft_ms: float
    itl_ms: float


@dataclass(frozen=True)
class Calibration:
    measurements: list[Measurement]
    output_tokens: int  # per request, as the calibration's load generator asked


@dataclass(frozen=True)
class LatencyModel:
    """TTFT is the prefill worker's, ITL the decode worker's (disaggregated serving)."""

    ttft: Curve
    itl: Curve
    capacity_rps: float  # per worker: the highest rate measured
    output_tokens: int  # per request: how long a request holds a decode worker is this x ITL


def fit_curve(points: list[tuple[float, float]]) -> Curve:
    """The least-squares curve through (rate, latency_ms) points."""
    best: tuple[float, Curve] | None = None
    for exponent in EXPONENTS:
        xs = [rate**exponent for rate, _ in points]
        ys = [latency for _, latency in points]
        mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
        spread = sum((x - mean_x) ** 2 for x in xs)
        slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread if spread else 0.0
        # Latency never falls as load rises, and never starts below zero.
        slope = max(slope, 0.0)
        base = max(mean_y - slope * mean_x, 0.0)
        curve = Curve(base, slope, exponent)
        error = sum((curve(rate) - latency) ** 2 for rate, latency in points)
        if best is None or error < best[0]:
            best = (error, curve)
    assert best is not None, "fit_curve needs at least one point"
    return best[1]


def load_calibration(path: Path = CALIBRATION_FILE) -> Calibration:
    document = json.loads(path.read_text())
    measurements = [
        Measurement(step["concurrency"], step["requests_per_second"], step["ttft_mean_ms"], step["itl_mean_ms"])
        for step in document["steps"]
    ]
    return Calibration(measurements, int(document["output_tokens"]))


def unsaturated(measurements: list[Measurement]) -> list[Measurement]:
    capacity = max(m.requests_per_second for m in measurements)
    return [m for m in measurements if m.requests_per_second < SATURATED_FRACTION * capacity]


def fit(calibration: Calibration) -> LatencyModel:
    measurements = calibration.measurements
    below = unsaturated(measurements)
    return LatencyModel(
        ttft=fit_curve([(m.requests_per_second, m.ttft_ms) for m in below]),
        itl=fit_curve([(m.requests_per_second, m.itl_ms) for m in below]),
        capacity_rps=max(m.requests_per_second for m in measurements),
        output_tokens=calibration.output_tokens,
    )
