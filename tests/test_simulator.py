"""The autoscaling simulator on hand-checkable traces, and its fit to the calibration data.

The hand-checked fleet: TTFT = 100 + 10 * r ms at r requests/s per worker (500 ms, the target,
at 40 req/s), a flat ITL of 10 ms, 100 req/s of capacity per worker, 100 output tokens per
request, a 300 s cold start. In flight per worker at r: prefill r * (0.1 + 0.01 * r), decode
r * 100 * 0.01 = r.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import sys
from dataclasses import replace

import pytest

from environments.loader import ENVIRONMENTS_DIR, load
from environments.policies import LATENCY_STEPS, TARGET_TRACKING_SCALE_OUT_MINUTES
from environments.schema import ScalingConfig
from simulator import __main__ as cli
from simulator.choose import SLO_TOLERANCE_MINUTES, Candidate, choose
from simulator.deployed import deployed
from simulator.fleet import TICK_S, Fleet, RoleState, Sample, read_role, simulate
from simulator.latency import Curve, LatencyModel, fit, fit_curve, load_calibration, unsaturated
from simulator.policy import PLANNER_ITL_MS, PLANNER_TTFT_MS, Policy, ScalingState, Step, decide
from simulator.report import Outcome, outcome, plot, table
from simulator.settings import SETTINGS_FILE, read_settings
from simulator.traces import TRACE_NAMES, load_trace, per_tick
from tests.conftest import PROJECT_DIR

MODEL = LatencyModel(ttft=Curve(100.0, 10.0, 1.0), itl=Curve(10.0, 0.0, 1.0), capacity_rps=100.0, output_tokens=100)
COLD_START_S = 300.0


def fleet(min_count: int = 2, max_count: int = 6, **policy: object) -> Fleet:
    prefill = Policy("ttft_ms", 500.0, min_count, max_count, **policy)  # type: ignore[arg-type]
    # Decode's flat 10 ms ITL never reaches 50 ms: it holds still, so prefill is what is checked.
    decode = Policy("itl_ms", 50.0, min_count, max_count)
    return with_policies((prefill,), (decode,))


def with_policies(prefill: tuple[Policy, ...], decode: tuple[Policy, ...]) -> Fleet:
    return Fleet(prefill, decode, COLD_START_S, prefill_gpus=1, decode_gpus=2, ttft_slo_ms=500.0, itl_slo_ms=50.0)


def steps(*segments: tuple[float, int]) -> list[float]:
    """(rate, seconds) segments as one rate per tick."""
    return [rate for rate, seconds in segments for _ in range(seconds // TICK_S)]


def changes(samples: list[Sample], role: str = "prefill") -> list[tuple[int, int]]:
    """(time, new desired count) whenever the desired count changed."""
    return [(b.time_s, b.desired[role]) for a, b in zip(samples, samples[1:], strict=False) if b.desired != a.desired]


def test_constant_load_below_target_never_scales():
    # 50 req/s on two workers: 25 each, TTFT 350 ms < 500.
    samples = simulate(fleet(), MODEL, steps((50, 7200)))
    assert {(s.desired["prefill"], s.ready["prefill"], s.desired["decode"]) for s in samples} == {(2, 2, 2)}
    assert {s.ttft_ms for s in samples} == {350.0}
    assert outcome(fleet(), samples).scale_out_s is None


def test_a_step_above_target_scales_out_within_period_times_evaluations_plus_cooldown_plus_cold_start():
    # At 600 s the rate steps to 120 req/s: 60 per worker, TTFT 700 ms. Proportional sizing
    # wants ceil(2 * 700 / 500) = 3 workers; with 3, 40 each, TTFT is exactly 500: not above.
    # A cooldown longer than the cold start: no second decision before the first worker serves.
    policy = {"period_s": 60, "scale_out_evaluations": 3, "scale_out_cooldown_s": 600}
    samples = simulate(fleet(**policy), MODEL, steps((50, 600), (120, 3000)))
    assert changes(samples) == [(780, 3)]  # the end of the 3rd period above target
    first_serving = next(s.time_s for s in samples if s.ready["prefill"] == 3)
    stated = 600 + 60 * 3 + 600 + COLD_START_S
    assert 600 + COLD_START_S <= first_serving <= stated
    assert first_serving == 780 + COLD_START_S
    assert samples[-1].ttft_ms == 500.0
    result = outcome(fleet(**policy), samples)
    assert result.scale_out_s == first_serving - 600
    assert result.slo_minutes_lost == (first_serving - 600) / 60


def test_a_scale_out_cooldown_shorter_than_the_cold_start_overshoots():
    # The metric is still 700 ms in the period after the first decision (the new worker is
    # starting), so one cooldown of 60 s later target tracking sizes again: ceil(3 * 1.4) = 5.
    policy = {"period_s": 60, "scale_out_evaluations": 3, "scale_out_cooldown_s": 60}
    samples = simulate(fleet(**policy), MODEL, steps((50, 600), (120, 3000)))
    assert changes(samples)[:2] == [(780, 3), (840, 5)]


@pytest.mark.parametrize(
    ("kind", "scaling_steps", "scale_ins"), [("target tracking", (), 1), ("step scaling", (Step(1.0, 1),), 4)]
)
def test_scale_in_waits_its_cooldown_and_never_goes_below_min(kind, scaling_steps, scale_ins):
    # Target tracking sizes in one proportional move (6 -> ceil(6 * 0.22) = 2); step scaling
    # removes one worker at a time, each a cooldown after the last.
    policy = {"scale_in_evaluations": 15, "scale_in_cooldown_s": 300, "steps": scaling_steps}
    samples = simulate(fleet(**policy), MODEL, steps((250, 1800), (10, 5400)))
    made = changes(samples)
    counts = [2] + [count for _, count in made]
    downs = [time for (time, count), previous in zip(made, counts, strict=False) if count < previous]
    assert max(counts) == 6 and len(downs) == scale_ins, kind
    # Scale-in begins only after 15 periods (15 min) of low load following the drop at 1800 s,
    # and each scale-in comes at least the cooldown after the previous activity.
    assert downs[0] >= 1800 + 15 * 60
    activity = [time for time, _ in made]
    for earlier, later in zip(activity, activity[1:], strict=False):
        if later in downs:
            assert later - earlier >= 300
    assert min(s.desired["prefill"] for s in samples) == 2
    assert samples[-1].desired["prefill"] == 2


def test_max_bounds_hold_under_any_demand():
    samples = simulate(fleet(max_count=4), MODEL, steps((5000, 3600)))
    assert max(s.desired["prefill"] for s in samples) == 4
    assert max(s.ready["prefill"] for s in samples) == 4
    assert outcome(fleet(max_count=4), samples).slo_minutes_lost == 60.0  # over capacity all along


def test_gpu_hours_count_every_worker_from_its_scaling_decision():
    # Two prefill workers of one GPU and two decode workers of two GPUs for an hour.
    assert outcome(fleet(), simulate(fleet(), MODEL, steps((50, 3600)))).gpu_hours == pytest.approx(6.0)
    # The step test's third prefill worker is billed from 780 s (its decision), not 1080 s (serving).
    slow = fleet(scale_out_cooldown_s=600)
    stepped = simulate(slow, MODEL, steps((50, 600), (120, 3000)))
    assert outcome(slow, stepped).gpu_hours == pytest.approx(6.0 + (3600 - 780) / 3600)


def test_step_scaling_takes_the_largest_step_reached():
    policy = Policy("ttft_ms", 500.0, 1, 10, scale_out_evaluations=1, steps=(Step(1.0, 1), Step(2.0, 3)))
    assert decide((policy,), ScalingState(), 60, 2, (1100.0,)) == 5
    assert decide((policy,), ScalingState(), 60, 2, (600.0,)) == 3
    assert decide((policy,), ScalingState(), 60, 2, (400.0,)) == 2


def test_scale_out_respects_its_cooldown():
    policy = Policy("ttft_ms", 500.0, 1, 10, scale_out_evaluations=1, scale_out_cooldown_s=300)
    state = ScalingState()
    assert decide((policy,), state, 60, 2, (600.0,)) == 3
    assert decide((policy,), state, 120, 3, (600.0,)) == 3
    assert decide((policy,), state, 360, 3, (600.0,)) == 4


def test_policy_bounds_are_checked():
    with pytest.raises(ValueError, match="min_count <= max_count"):
        Policy("ttft_ms", 500.0, 3, 2)


def test_fit_recovers_a_known_curve():
    curve = fit_curve([(rate, 5.0 + 2.0 * rate**1.5) for rate in (1.0, 2.0, 4.0, 8.0, 16.0)])
    assert (curve.base, curve.slope, curve.exponent) == pytest.approx((5.0, 2.0, 1.5), rel=1e-6)


def test_fit_reproduces_the_calibration_data_below_saturation():
    # The tolerances the README states, below saturation: TTFT within 15 % (two runs of the same
    # script differed by up to 17 % at one step), ITL within 1 %.
    calibration = load_calibration()
    measurements = calibration.measurements
    below = unsaturated(measurements)
    assert len(below) >= 5
    model = fit(calibration)
    assert model.output_tokens == 100
    for m in below:
        assert model.ttft(m.requests_per_second) == pytest.approx(m.ttft_ms, rel=0.15), m
        assert model.itl(m.requests_per_second) == pytest.approx(m.itl_ms, rel=0.01), m
    assert model.capacity_rps == max(m.requests_per_second for m in measurements)
    # At saturation the curve alone says less than was measured: the rest is the queue.
    for m in measurements:
        if m not in below:
            assert model.ttft(m.requests_per_second) < m.ttft_ms


def test_planner_defaults_are_dynamos():
    assert (PLANNER_TTFT_MS, PLANNER_ITL_MS) == (500.0, 50.0)


def test_traces_are_linear_between_rows():
    assert per_tick([(0.0, 0.0), (100.0, 10.0)]) == [float(i) for i in range(10)]
    spike = load_trace("spike")
    assert spike[0] == 40.0 and spike[1210 // TICK_S] == 140.0 and spike[-1] == 40.0
    assert all(load_trace(name) for name in TRACE_NAMES)


def test_same_input_gives_byte_identical_plot(tmp_path):
    samples = simulate(fleet(), MODEL, steps((50, 600), (120, 1200)))
    for name in ("a.png", "b.png"):
        plot(tmp_path / name, "check", fleet(), samples)
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


@pytest.fixture(scope="module")
def make_simulate(tmp_path_factory):
    """`make simulate`'s output and plot, run once for the tests that read them (about 6 s)."""
    plot_path = tmp_path_factory.mktemp("simulate") / "spike.png"
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(printed):
        patch.setattr(sys, "argv", ["simulator", "--plot", str(plot_path)])
        cli.main()
    return printed.getvalue(), plot_path


@pytest.mark.simulate_run
def test_make_simulate_prints_the_tables_the_readme_shows(make_simulate):
    printed, plot_path = make_simulate
    readme = (PROJECT_DIR / "README.md").read_text()
    # The policy table, then the in-flight sweep: each as one block of the README.
    policies, sweep = "\n".join(printed.splitlines()[1:-1]).split("\n\n")
    assert "deployed ([scaling] of prod)" in policies.splitlines()[2]  # first, under the header
    assert policies in readme
    assert sweep in readme
    assert plot_path.read_bytes() == (PROJECT_DIR / "docs" / "simulator-spike.png").read_bytes()


@pytest.mark.simulate_run
def test_the_schema_ships_the_in_flight_targets_the_sweep_chooses(make_simulate):
    printed, _ = make_simulate
    chosen = next(line for line in printed.splitlines() if line.startswith("In-flight targets"))
    defaults = ScalingConfig()
    assert chosen.endswith(f"prefill {defaults.prefill_inflight_target}, decode {defaults.decode_inflight_target}"), (
        "set environments/schema.py's [scaling] in-flight defaults to what `make simulate` chooses"
    )


def candidate(prefill: int, decode: int, *results: tuple[float, float]) -> Candidate:
    """(SLO-minutes lost, GPU-hours) per trace."""
    outcomes = {f"trace{index}": Outcome(None, False, lost, hours, {}) for index, (lost, hours) in enumerate(results)}
    return Candidate(prefill, decode, outcomes)


def test_the_chooser_takes_the_fewest_gpu_hours_within_the_tolerance_of_the_best_on_every_trace():
    assert SLO_TOLERANCE_MINUTES == 1.0
    best = candidate(2, 8, (0.0, 40.0), (20.0, 20.0))
    within = candidate(3, 16, (1.0, 30.0), (20.5, 19.0))
    over_on_one_trace = candidate(4, 24, (0.0, 20.0), (21.5, 10.0))
    assert choose([best, within, over_on_one_trace]) == within
    # A tie in GPU-hours as printed (one decimal) goes to the higher targets.
    tied = candidate(3, 20, (1.0, 29.96), (20.5, 19.0))
    assert choose([best, within, tied, over_on_one_trace]) == tied


def test_in_flight_per_worker_is_littles_law_plus_the_queue_per_worker():
    # 25 req/s per worker: prefill 25 * (100 + 10 * 25) ms = 8.75; decode 25 * 100 tokens * 10 ms = 25.
    two_ready = RoleState(desired=2, ready=2)
    assert read_role("prefill", two_ready, MODEL, 50.0, 50.0, 350.0, 10.0).inflight == pytest.approx(8.75)
    assert read_role("decode", two_ready, MODEL, 50.0, 50.0, 350.0, 10.0).inflight == pytest.approx(25.0)
    queued = RoleState(desired=2, ready=2, queue=30.0)
    assert read_role("decode", queued, MODEL, 250.0, 200.0, 350.0, 10.0).inflight == pytest.approx(100.0 + 15.0)


def inflight_fleet(prefill_target: float, decode_target: float) -> Fleet:
    """Target tracking on in flight per worker, with the deployed policies' alarms."""
    return with_policies(
        (Policy("inflight", prefill_target, 2, 6, scale_in_cooldown_s=600),),
        (Policy("inflight", decode_target, 2, 6, scale_in_cooldown_s=600),),
    )


def test_constant_load_below_the_in_flight_target_never_scales():
    # 50 req/s on two workers: prefill 8.75 in flight per worker, decode 25; under 90 % of 10 and 30
    # too, but the fleet is at its minimum.
    samples = simulate(inflight_fleet(10, 30), MODEL, steps((50, 7200)))
    assert {(s.desired["prefill"], s.desired["decode"]) for s in samples} == {(2, 2)}


def test_a_step_above_the_in_flight_target_scales_out_after_three_periods_and_the_cold_start():
    # At 600 s, 80 req/s: 40 per worker, prefill 40 * 0.5 = 20 in flight (twice 10); decode 40 (over 30).
    # Prefill sizes ceil(2 * 20 / 10) = 4 at the end of the 3rd minute over target.
    samples = simulate(inflight_fleet(10, 30), MODEL, steps((50, 600), (80, 3000)))
    assert changes(samples, "prefill")[0] == (600 + 3 * 60, 4)
    assert changes(samples, "decode")[0] == (600 + 3 * 60, 3)
    assert next(s.time_s for s in samples if s.ready["prefill"] == 4) == 780 + COLD_START_S


IN_FLIGHT = Policy("inflight", 10.0, 1, 10, scale_out_evaluations=1, scale_in_evaluations=1, scale_in_cooldown_s=0)
TTFT_STEP = Policy(
    "ttft_ms", 500.0, 1, 10, scale_out_evaluations=1, steps=(Step(1.0, 1), Step(1.5, 2)), scales_in=False
)


def test_a_scale_out_only_step_policy_has_no_say_in_scale_in():
    # In flight 2 per worker of a target of 10: target tracking sizes 4 -> ceil(4 * 0.2) = 1. TTFT at
    # 460 ms is neither a breach nor far under its target: the step policy neither adds nor holds.
    assert decide((TTFT_STEP, IN_FLIGHT), ScalingState(), 60, 4, (460.0, 2.0)) == 1
    # The same step policy allowed to scale in would hold the count (460 ms is above 90 % of 500).
    blocking = replace(TTFT_STEP, scales_in=True, scale_in_evaluations=1)
    assert decide((blocking, IN_FLIGHT), ScalingState(), 60, 4, (460.0, 2.0)) == 4


def test_target_tracking_policies_scale_in_only_together_and_to_the_larger_count():
    other = replace(IN_FLIGHT, metric="utilization", target=0.5)
    # One of the two is not under 90 % of its target: no scale-in.
    assert decide((IN_FLIGHT, other), ScalingState(), 60, 4, (2.0, 0.46)) == 4
    # Both under: 4 * 0.2 -> 1, and 4 * 0.4 / 0.5 -> ceil(3.2) = 4, at least one fewer: 3. The larger, 3.
    assert decide((IN_FLIGHT, other), ScalingState(), 60, 4, (2.0, 0.4)) == 3


def test_the_policy_asking_for_the_most_workers_wins_scale_out():
    # TTFT at 1.6x its target: the step policy adds 2 (6); in flight at 2x: target tracking asks 8.
    assert decide((TTFT_STEP, IN_FLIGHT), ScalingState(), 60, 4, (800.0, 20.0)) == 8
    assert decide((TTFT_STEP, IN_FLIGHT), ScalingState(), 60, 4, (800.0, 11.0)) == 6


def test_the_deployed_setting_replays_environments_policies():
    env = load(ENVIRONMENTS_DIR / "prod.toml")
    replayed = deployed(env)
    assert env.prefill is not None
    [ttft, prefill_inflight] = replayed.prefill
    assert (ttft.metric, ttft.target, ttft.scales_in) == ("ttft_ms", env.scaling.ttft_target_ms, False)
    assert ttft.steps == tuple(Step(ratio, adjustment) for ratio, adjustment in LATENCY_STEPS)
    assert ttft.scale_out_evaluations == env.scaling.latency_breach_minutes
    assert (prefill_inflight.metric, prefill_inflight.target, prefill_inflight.scales_in) == (
        "inflight",
        env.scaling.prefill_inflight_target,
        True,
    )
    assert (prefill_inflight.scale_out_evaluations, prefill_inflight.scale_in_evaluations) == (
        TARGET_TRACKING_SCALE_OUT_MINUTES,
        15,
    )
    assert (prefill_inflight.scale_in_ratio, prefill_inflight.period_s) == (0.9, 60)
    assert (prefill_inflight.scale_out_cooldown_s, prefill_inflight.scale_in_cooldown_s) == (
        env.scaling.scale_out_cooldown_seconds,
        env.scaling.scale_in_cooldown_seconds,
    )
    assert [(p.metric, p.target) for p in replayed.decode] == [
        ("itl_ms", env.scaling.itl_target_ms),
        ("inflight", env.scaling.decode_inflight_target),
    ]
    assert {(p.min_count, p.max_count) for p in replayed.prefill} == {(env.prefill.min_count, env.prefill.max_count)}
    assert (replayed.ttft_slo_ms, replayed.itl_slo_ms) == (env.scaling.ttft_target_ms, env.scaling.itl_target_ms)


def test_a_roles_policies_share_its_bounds():
    with pytest.raises(ValueError, match="prefill: the policies of a role need the same min_count"):
        with_policies((IN_FLIGHT, replace(IN_FLIGHT, max_count=4)), (IN_FLIGHT,))


def test_load_per_worker_shows_an_overload_beyond_capacity():
    # 300 req/s arriving at two workers of 100: 1.5 of capacity, so ceil(2 * 1.5 / 0.7) = 5.
    policy = Policy("utilization", 0.7, 2, 10, scale_out_evaluations=1)
    load_fleet = replace(fleet(), prefill=(policy,))
    assert changes(simulate(load_fleet, MODEL, steps((300, 120))))[:1] == [(60, 5)]


def test_an_environment_without_prefill_is_refused_in_one_line():
    env = load(ENVIRONMENTS_DIR / "dev.toml")
    assert env.prefill is None
    with pytest.raises(ValueError, match="dev: no \\[prefill\\]; the simulator models disaggregated"):
        cli.fleets(env, SETTINGS_FILE)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ("dev", "dev: no [prefill]; the simulator models disaggregated prefill/decode only"),
        ("nowhere", "environments/nowhere.toml: file not found"),
    ],
)
def test_the_cli_reports_a_users_mistake_in_one_line_with_exit_code_2(tmp_path, monkeypatch, capsys, env, message):
    monkeypatch.setattr(sys, "argv", ["simulator", "--env", env, "--plot", str(tmp_path / "x.png")])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 2
    assert capsys.readouterr().err == message + "\n"
    assert not (tmp_path / "x.png").exists()


def test_the_shipped_settings_take_dynamos_targets_and_the_environments_bounds():
    settings = read_settings(SETTINGS_FILE, {"prefill": (2, 4), "decode": (1, 3)})
    [prefill], [decode] = settings["planner targets"]["prefill"], settings["planner targets"]["decode"]
    assert (prefill.metric, prefill.target, prefill.kind, prefill.scales_in) == ("ttft_ms", 500.0, "target", True)
    assert (decode.metric, decode.target) == ("itl_ms", 50.0)
    assert (prefill.min_count, prefill.max_count) == (2, 4)
    assert (decode.min_count, decode.max_count) == (1, 3)
    assert settings["load 70%, steps"]["decode"][0].steps == (Step(1.0, 1), Step(1.3, 2))


@pytest.mark.parametrize(
    ("prefill", "message"),
    [
        ('{ metric = "ttft_ms", cooldown = 60 }', "one: unknown cooldown \\(allowed: metric, target,"),
        ('{ metric = "utilization" }', "one: metric 'utilization' has no default target: give target"),
        ('{ metric = "p99", target = 1.0 }', "one: metric 'p99' is not one of ttft_ms, itl_ms, utilization, inflight"),
        ('{ metric = "ttft_ms", min_count = 5 }', "one: need 0 <= min_count <= max_count, got 5, 4"),
    ],
)
def test_a_bad_setting_is_one_line_naming_the_file_and_setting(tmp_path, prefill, message):
    path = tmp_path / "settings.toml"
    path.write_text(f'[[setting]]\nname = "one"\nprefill = {prefill}\ndecode = {{ metric = "itl_ms" }}\n')
    with pytest.raises(ValueError, match=f"^{path}: {message}"):
        read_settings(path, {"prefill": (2, 4), "decode": (2, 4)})


def test_a_role_takes_several_policies_as_an_array_of_tables(tmp_path):
    path = tmp_path / "settings.toml"
    path.write_text(
        '[[setting]]\nname = "two"\ndecode = { metric = "itl_ms" }\n'
        'prefill = [{ metric = "ttft_ms", steps = [[1.0, 1]], scales_in = false },'
        ' { metric = "inflight", target = 4 }]\n'
    )
    prefill = read_settings(path, {"prefill": (2, 4), "decode": (2, 4)})["two"]["prefill"]
    assert [(p.metric, p.target, p.scales_in) for p in prefill] == [("ttft_ms", 500.0, False), ("inflight", 4, True)]


def test_a_roles_policies_on_different_periods_are_one_line_naming_the_file_and_setting(tmp_path):
    path = tmp_path / "settings.toml"
    path.write_text(
        '[[setting]]\nname = "two"\ndecode = { metric = "itl_ms" }\n'
        'prefill = [{ metric = "ttft_ms" }, { metric = "inflight", target = 4, period_s = 120 }]\n'
    )
    with pytest.raises(ValueError, match=f"^{path}: two: prefill: the policies of a role need the same"):
        cli.fleets(load(ENVIRONMENTS_DIR / "prod.toml"), path)


def test_calibration_reads_histogram_sums_and_counts_over_label_sets():
    spec = importlib.util.spec_from_file_location("calibrate_latency", PROJECT_DIR / "scripts" / "calibrate_latency.py")
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    metrics = (
        "# TYPE dynamo_frontend_time_to_first_token_seconds histogram\n"
        'dynamo_frontend_time_to_first_token_seconds_bucket{model="m",le="0.1"} 3\n'
        'dynamo_frontend_time_to_first_token_seconds_sum{model="m"} 0.25\n'
        'dynamo_frontend_time_to_first_token_seconds_count{model="m"} 4\n'
        'dynamo_frontend_time_to_first_token_seconds_sum{model="n"} 1.5e-1\n'
        'dynamo_frontend_time_to_first_token_seconds_count{model="n"} 2\n'
        "dynamo_frontend_inter_token_latency_seconds_sum 9\n"
    )
    assert script.histogram_totals(metrics, script.TTFT_METRIC) == pytest.approx((0.4, 6.0))
    assert script.histogram_totals(metrics, script.ITL_METRIC) == (9.0, 0.0)
    # 10 observations between two scrapes: 4 up to 0.1 s, 6 more up to 0.2 s; the 90th is the 9th,
    # 5/6 of the way into the (0.1, 0.2] bucket.
    before = {0.1: 1.0, 0.2: 1.0, float("inf"): 1.0}
    after = {0.1: 5.0, 0.2: 11.0, float("inf"): 11.0}
    assert script.quantile(0.9, before, after) == pytest.approx(0.1 + 0.1 * 5 / 6)
    assert script.quantile(0.9, after, after) is None
    text = "\n".join(f'x_bucket{{le="{le}"}} {n}' for le, n in (("0.1", 4), ("0.2", 10), ("+Inf", 10)))
    assert script.histogram_buckets(text, "x") == {0.1: 4.0, 0.2: 10.0, float("inf"): 10.0}


def test_a_breach_with_the_fleet_at_its_maximum_reads_was_at_max():
    pinned = fleet(min_count=2, max_count=2)
    result = outcome(pinned, simulate(pinned, MODEL, steps((50, 600), (300, 600))))
    assert (result.scale_out_s, result.at_max_when_breached) == (float("inf"), True)
    assert "was at max" in table([("t", "p", result)])
