"""The runtime layer: each shipped stack runs as the twin (tests/twin) with the real Dynamo
frontend, mocker workers, etcd and NATS, its security groups enforced. Needs Linux and root;
elsewhere it skips with one line, and with CI=true a skip is a failure."""

from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path

import pytest

from environments.schema import ImageConfig
from review.flows import RECORD_FILE, recorded_flows
from tests.conftest import ENVIRONMENTS, TWIN_REPORTS, unreviewed
from tests.metrics_usage import uses
from tests.twin.containers import translate_command
from tests.twin.install import dynamo_python, missing, unsupported
from tests.twin.network import PREFIX, remove_leftovers
from tests.twin.plan import read_plan
from tests.twin.record_flows import observed_flows, pinned_dynamo
from tests.twin.runtime import Twin
from tests.twin.scenario import Report, drill, finish, serve

pytestmark = pytest.mark.twin

# Bounds on the drills, in the twin (where ECS's own start-up time is zero): see the README.
WORKER_KILL_RECOVERY_SECONDS = 30
ETCD_RECOVERY_SECONDS = 60


def _require_twin() -> None:
    reason = unsupported() or missing()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"twin: {reason} (with CI=true a skip is a failure)")
    pytest.skip(f"twin: {reason}")


def _stack_file(synth_dir: Path, env: str) -> Path:
    return synth_dir / "stacks" / f"dynamo-{env}" / "cdk.tf.json"


@pytest.fixture(scope="module", params=ENVIRONMENTS)
def report(request: pytest.FixtureRequest, synth_dir: Path) -> Report:
    """The whole scenario for one stack, once: start, serve, drills."""
    _require_twin()
    env = request.param
    plan = read_plan(_stack_file(synth_dir, env))
    twin = Twin(plan, dynamo_python(), run_name=env, log=lambda line: None)
    result = Report(plan.stack_name)
    try:
        serve(twin, result)
        # A lost quorum restarts everything the same way in every stack; measured once.
        drill(twin, result, quorum_drill=env == "staging")
        finish(twin, result)
    except Exception:
        print(twin.describe_tasks())
        raise
    finally:
        twin.close()
    request.config.stash.setdefault(TWIN_REPORTS, []).append(result)
    return result


def test_every_service_starts_its_desired_count(report: Report, stacks: dict[str, dict]) -> None:
    env = report.stack_name.removeprefix("dynamo-")
    services = stacks[env]["resource"]["aws_ecs_service"].values()
    desired = {
        body["name"].removeprefix(f"{report.stack_name}-"): body["desired_count"]
        for body in services
        if body.get("scheduling_strategy") != "DAEMON"
    }
    assert report.started_counts == desired
    # The one service the twin does not run, and says so in its report.
    assert set(report.not_run) == {body["name"] for body in services if body.get("scheduling_strategy") == "DAEMON"}


def test_every_dynamo_metric_the_stack_uses_is_in_the_real_metrics_of_the_pinned_dynamo(
    report: Report, stacks: dict[str, dict]
) -> None:
    """Each metric of Dynamo/<env> that a scaling policy, an alarm or the dashboard reads is one
    the collector of that service publishes, applied to the /metrics of the running Dynamo
    process (its keep rule and the exporter's selectors: tests/twin/collector.py). The GPU
    metrics come from the DCGM exporter, which needs GPUs (tests/test_metrics.py checks their
    names against the exporter's counters file)."""
    env = report.stack_name.removeprefix("dynamo-")
    used = {(use.service, use.metric_name) for use in uses(stacks[env], f"Dynamo/{env}") if use.service != "gpu"}
    assert {service for service, _ in used} == {"frontend", *(role for role in report.served_by_role)}
    missing = sorted(
        (service, name) for service, name in used if name not in report.published_metrics.get(service, set())
    )
    assert not missing, f"used by the stack, not published from the real /metrics: {missing}"


def test_every_task_passes_its_health_check_within_its_start_period_and_retries(report: Report) -> None:
    late = {task: took for task, (took, allowed) in report.health_budget.items() if took > allowed}
    assert report.health_budget and not late


def test_target_group_health_check_behaves_as_the_stack_assumes(report: Report) -> None:
    """The stack's frontend grace period assumes /health passes as soon as the frontend runs,
    workers or not (Dynamo 1.2.1, lib/llm/src/http/service/health.rs); clients get 404
    until a worker registers."""
    matcher = int(report.health_check["matcher"])
    without = report.health_without_workers
    assert without["health"].status == matcher, without["health"]
    assert json.loads(without["models"].body)["data"] == []
    assert without["completion"].status == 404
    assert report.health_with_model.status == matcher


def test_streamed_chat_and_plain_completion_succeed_through_the_alb(report: Report) -> None:
    assert report.streamed_chat.ok and report.streamed_chat.done and report.streamed_chat.chunks >= 32, (
        report.streamed_chat
    )
    assert report.plain_completion.ok, report.plain_completion
    assert all(count > 0 for count in report.served_by_role.values()), report.served_by_role


def test_disaggregated_stacks_serve_through_prefill_and_decode(report: Report, stacks: dict[str, dict]) -> None:
    env = report.stack_name.removeprefix("dynamo-")
    roles = {
        body["name"].removeprefix(f"{report.stack_name}-")
        for body in stacks[env]["resource"]["aws_ecs_service"].values()
    }
    assert set(report.served_by_role) == roles & {"decode", "prefill"}
    assert ("prefill" in roles) == ("prefill" in report.served_by_role)


def test_no_connection_is_dropped_while_serving(report: Report) -> None:
    assert report.serving_drops == {}
    unexplained = {flow: row for flow, row in report.flows.items() if len(row["rules"]) < 2}
    assert report.flows and not unexplained, "every flow needs an egress and an ingress rule"


def test_the_flows_the_review_checks_changes_against_are_the_flows_the_twin_observes(report: Report) -> None:
    observed = observed_flows(report.serving_flows)
    recorded = recorded_flows(report.stack_name)
    if recorded is None:  # a new environment (README: Adding an environment)
        unreviewed(f"{RECORD_FILE.name} has no connections of {report.stack_name}: run `make twin-flows`, commit it")
        return
    stale = sorted({flow.label for flow in set(observed) ^ set(recorded)})
    assert recorded == observed, (
        f"{RECORD_FILE.name} does not hold what {report.stack_name} does while serving (differs: {', '.join(stale)}); "
        "re-record with `make twin-flows` and commit it"
    )
    assert json.loads(RECORD_FILE.read_text())["dynamo"] == pinned_dynamo()


def test_drills_recover_within_their_bounds(report: Report) -> None:
    nats, worker = report.drills["nats"], report.drills["worker"]
    # NATS carries events only: nothing stops serving while it is replaced.
    assert nats.failures == 0 and nats.exited == [nats.killed], nats
    # A crashed worker stays in discovery until its lease runs out; then the router avoids it.
    assert (
        worker.exited == [worker.killed]
        and worker.recovered_after is not None
        and worker.recovered_after <= WORKER_KILL_RECOVERY_SECONDS
    ), worker
    stream = report.stream_across_kill
    assert stream.done or stream.error, (
        "the stream on the killed worker must end with [DONE] or an error, never silently"
    )
    assert report.migration_attempted, "the frontend never tried to migrate the stream (--migration-limit)"


def test_etcd_drills(report: Report) -> None:
    """A lone etcd: everything restarts, and serving comes back. Three members: losing one,
    or rolling all of them one at a time, stops no Dynamo process and fails no completion,
    and every member rejoins with its data. A lost quorum is measured and printed only."""
    if "etcd" in report.drills:
        etcd = report.drills["etcd"]
        assert etcd.recovered_after is not None and etcd.recovered_after <= ETCD_RECOVERY_SECONDS, etcd
        return
    for name in ("etcd-member", "etcd-roll"):
        drill = report.drills[name]
        assert drill.failures == 0, drill
        assert all(key.startswith("etcd-") for key in drill.exited), drill
        assert drill.rejoined, drill


def test_twin_fails_when_workers_cannot_reach_the_frontend(synth_dir: Path, tmp_path: Path) -> None:
    """The twin can fail: without the workers -> frontend response-stream rule, a worker's
    connection back is dropped and the request fails."""
    _require_twin()
    stack = json.loads(_stack_file(synth_dir, "dev").read_text())
    groups = stack["resource"]["aws_security_group"]
    frontend = next(logical for logical, body in groups.items() if body["name"] == "dynamo-dev-frontend")
    workers = next(logical for logical, body in groups.items() if body["name"] == "dynamo-dev-workers")
    ingress = stack["resource"]["aws_vpc_security_group_ingress_rule"]
    removed = [
        logical
        for logical, body in ingress.items()
        if body["security_group_id"] == f"${{aws_security_group.{frontend}.id}}"
        and body.get("referenced_security_group_id") == f"${{aws_security_group.{workers}.id}}"
    ]
    assert len(removed) == 1
    broken = copy.deepcopy(stack)
    del broken["resource"]["aws_vpc_security_group_ingress_rule"][removed[0]]
    stack_file = tmp_path / "cdk.tf.json"
    stack_file.write_text(json.dumps(broken))
    twin = Twin(read_plan(stack_file), dynamo_python(), run_name="broken", log=lambda line: None)
    try:
        twin.start(wait_for_completions=False)
        served = twin.wait_for_model(complete=False)
        response = twin.completion(stream=False, model=served, timeout=30)
        drops = twin.drops()
    finally:
        twin.close()
    assert not response.ok, response
    assert any(
        source.startswith("decode-") and destination.startswith("frontend-") and count
        for (source, destination), count in drops.items()
    ), drops


def test_leftovers_of_a_killed_run_are_removed_at_the_next_start() -> None:
    _require_twin()
    dead = subprocess.Popen(["true"])
    dead.wait()
    leftover = f"{PREFIX}-{dead.pid}-killed-run"
    subprocess.run(["ip", "netns", "add", leftover], check=True)
    removed = remove_leftovers()
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert leftover in removed and leftover not in listed


def test_twin_runs_the_dynamo_release_of_the_default_image_tag() -> None:
    assert pinned_dynamo() == ImageConfig.model_fields["tag"].default


def test_vllm_arguments_are_translated_for_the_mocker_or_listed_as_dropped() -> None:
    command = [
        "python3",
        "-m",
        "dynamo.vllm",
        "--model",
        "org/m",
        "--served-model-name",
        "m",
        "--tensor-parallel-size",
        "2",
        "--disaggregation-mode",
        "prefill",
        "--enforce-eager",
    ]
    translation = translate_command(command, Path("/venv/bin/python"))
    assert translation.argv == [
        "/venv/bin/python",
        "-m",
        "dynamo.mocker",
        "--model-path",
        "org/m",
        "--model-name",
        "m",
        "--disaggregation-mode",
        "prefill",
    ]
    assert translation.dropped == ["--tensor-parallel-size 2", "--enforce-eager"]
