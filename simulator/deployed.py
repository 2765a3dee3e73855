"""An environment as the simulator sees it: its bounds, GPUs, cold start and SLOs, and the
policies it deploys (environments/policies.py) as the simulator's Policy."""

from __future__ import annotations

from environments import fit
from environments.policies import (
    PERIOD_SECONDS,
    TARGET_TRACKING_SCALE_IN_MINUTES,
    TARGET_TRACKING_SCALE_IN_RATIO,
    WorkerPolicy,
    worker_policies,
)
from environments.schema import Environment
from simulator.fleet import Fleet
from simulator.policy import Policy, Step


def bounds(env: Environment) -> dict[str, tuple[int, int]]:
    """(min_count, max_count) per role; a problem a user can cause is a one-line ValueError."""
    if env.prefill is None:
        raise ValueError(f"{env.name}: no [prefill]; the simulator models disaggregated prefill/decode only")
    return {
        "prefill": (env.prefill.min_count, env.prefill.max_count),
        "decode": (env.decode.min_count, env.decode.max_count),
    }


def fleet_of(env: Environment, policies: dict[str, tuple[Policy, ...]]) -> Fleet:
    """This environment's fleet under these policies; its SLOs are its [scaling] latency targets."""
    facts = env.model.model_facts
    if facts is None:
        raise ValueError(f"{env.name}: the model has no facts, so no cold-start estimate (environments/fit.py)")
    assert env.prefill is not None  # bounds() has refused it
    return Fleet(
        prefill=policies["prefill"],
        decode=policies["decode"],
        cold_start_s=fit.cold_start(env, facts).total,
        prefill_gpus=env.prefill.gpus,
        decode_gpus=env.decode.gpus,
        ttft_slo_ms=env.scaling.ttft_target_ms,
        itl_slo_ms=env.scaling.itl_target_ms,
    )


def deployed_name(env: Environment) -> str:
    return f"deployed ([scaling] of {env.name})"


def policy_of(worker: WorkerPolicy, min_count: int, max_count: int) -> Policy:
    """One Terraform policy as the simulator replays it: one-minute periods; target tracking
    with Application Auto Scaling's own alarms (out after 3 periods over, in after 15 under
    90 %); a step policy after `scale_out_minutes` periods over, with environments/policies.py's
    steps, all of which add workers, so it never scales in."""
    return Policy(
        metric=worker.signal,
        target=float(worker.target),
        min_count=min_count,
        max_count=max_count,
        period_s=PERIOD_SECONDS,
        scale_out_evaluations=worker.scale_out_minutes,
        scale_in_evaluations=TARGET_TRACKING_SCALE_IN_MINUTES,
        scale_in_ratio=TARGET_TRACKING_SCALE_IN_RATIO,
        scale_out_cooldown_s=worker.scale_out_cooldown_seconds,
        scale_in_cooldown_s=worker.scale_in_cooldown_seconds,
        steps=tuple(Step(ratio, adjustment) for ratio, adjustment in worker.steps),
        scales_in=worker.kind == "target_tracking",
    )


def deployed(env: Environment) -> Fleet:
    """The fleet under the policies `make synth` deploys for this environment."""
    limits = bounds(env)
    policies = {
        role: tuple(policy_of(worker, *limits[role]) for worker in workers)
        for role, workers in worker_policies(env).items()
    }
    return fleet_of(env, policies)
