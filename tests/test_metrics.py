"""Dynamo's metrics into CloudWatch, read from the synthesized JSON: what each collector
publishes, what the policies, alarms and dashboard use, and that the two agree."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from components.gpu_cluster import INSTANCE_WARMUP_SECONDS
from components.metrics import PUBLISHED, WORKER_INFLIGHT, published_by
from environments.fit import cold_start
from environments.loader import ENVIRONMENTS_DIR, load
from environments.policies import LATENCY_STEPS, TARGET_TRACKING_SCALE_OUT_MINUTES, worker_policies
from environments.schema import DCGM_EXPORTER_CPU_UNITS, DCGM_EXPORTER_MEMORY_MIB, Environment
from tests.conftest import ENVIRONMENTS
from tests.metrics_usage import uses
from tests.stack_json import construct_path, containers, environment_of, one, reference_to, resources
from tests.twin import collector
from tests.twin.plan import read_plan

DCGM_COUNTERS = Path(__file__).parent / "data" / "dcgm-exporter-default-counters.csv"


@pytest.fixture(params=ENVIRONMENTS)
def case(request: pytest.FixtureRequest, stacks: dict[str, dict]) -> tuple[Environment, dict]:
    env = load(ENVIRONMENTS_DIR / f"{request.param}.toml")
    return env, stacks[request.param]


def collectors(stack: dict) -> dict[str, dict]:
    """Service (the Service dimension it publishes) -> its collector container definition."""
    found = {}
    for body in resources(stack, "aws_ecs_task_definition").values():
        for container in containers(body):
            if container["name"] == "metrics":
                config = collector.config_of(container)
                (static,) = config["receivers"]["prometheus"]["config"]["scrape_configs"][0]["static_configs"]
                assert static["labels"]["Service"] not in found
                found[static["labels"]["Service"]] = container
    return found


def series_kept(config: dict, name: str, labels: dict[str, str]) -> bool:
    (rule,) = config["receivers"]["prometheus"]["config"]["scrape_configs"][0]["metric_relabel_configs"]
    joined = rule["separator"].join({"__name__": name, **labels}.get(label, "") for label in rule["source_labels"])
    return re.fullmatch(rule["regex"], joined) is not None


def test_every_dynamo_task_and_every_gpu_instance_has_a_collector(case):
    env, stack = case
    assert set(collectors(stack)) == {"frontend", *env.gpu_workers(), "gpu"}
    for service, container in collectors(stack).items():
        # A collector that stops must not stop what it watches; it reserves its own share.
        assert container["essential"] is False
        assert container["readonlyRootFilesystem"] is True
        assert container["image"] == env.metrics.collector_image
        assert container["cpu"] == env.metrics.collector_cpu
        assert container["memory"] == env.metrics.collector_memory_mib
        assert container["memoryReservation"] == env.metrics.collector_memory_mib // 2
        # The image has no shell: its own probe binary, against the health_check extension.
        assert container["healthCheck"]["command"] == ["CMD", "/healthcheck"]
        assert collector.config_of(container)["extensions"]["health_check"]["endpoint"] == "127.0.0.1:13133"
        assert not container["secrets"] and not container["portMappings"], service
    frontend = containers(one(stack, "aws_ecs_task_definition", "frontend/frontend/task"))[0]
    # On Fargate there is no GPU runtime to tell (tests/test_variants.py: on the GPU fleet, "void").
    assert "NVIDIA_VISIBLE_DEVICES" not in environment_of(frontend)


def test_each_collector_reads_its_own_containers_metrics_port(case):
    env, stack = case
    expected = {"frontend": ("localhost", 8000), "gpu": ("dcgm-exporter", 9400)}
    expected.update({role: ("localhost", 9090) for role in env.gpu_workers()})
    for service, container in collectors(stack).items():
        scrape = collector.target(collector.config_of(container))
        assert (scrape.host, scrape.port, scrape.path) == (*expected[service], "/metrics"), service
        assert scrape.interval == f"{env.metrics.scrape_interval_seconds}s"
    for role in env.gpu_workers():
        main = containers(one(stack, "aws_ecs_task_definition", f"{role}/{role}/task"))[0]
        assert environment_of(main)["DYN_SYSTEM_PORT"] == "9090"


def test_collectors_publish_under_the_environments_namespace_with_three_dimensions_and_no_rollup(case):
    env, stack = case
    model = env.model.served_model_name or env.model.name
    for service, container in collectors(stack).items():
        config = collector.config_of(container)
        exporter = config["exporters"]["awsemf"]
        assert exporter["namespace"] == f"Dynamo/{env.name}"
        assert exporter["dimension_rollup_option"] == "NoDimensionRollup"
        (declaration,) = exporter["metric_declarations"]
        assert declaration["dimensions"] == [["Environment", "Service", "Model"]]
        (static,) = config["receivers"]["prometheus"]["config"]["scrape_configs"][0]["static_configs"]
        assert static["labels"] == {"Environment": env.name, "Service": service, "Model": model}
        assert exporter["log_group_name"] == reference_to(stack, "aws_cloudwatch_log_group", "logs/metrics", "name")


def test_histograms_reach_cloudwatch_as_deltas_so_average_is_the_periods_mean(case):
    _, stack = case
    for container in collectors(stack).values():
        config = collector.config_of(container)
        pipeline = config["service"]["pipelines"]["metrics/cloudwatch"]
        assert pipeline["processors"].index("cumulativetodelta") < pipeline["processors"].index("batch")
        assert config["processors"]["cumulativetodelta"] == {"include": {"metric_types": ["histogram"]}}
        assert pipeline["exporters"] == ["awsemf"]


def test_the_keep_rule_keeps_exactly_the_published_series(case):
    _, stack = case
    for service, container in collectors(stack).items():
        config = collector.config_of(container)
        for metric in PUBLISHED:
            for series in metric.series_names:
                labels = {"dynamo_endpoint": metric.endpoint} if metric.endpoint else {}
                assert series_kept(config, series, labels) == (service in metric.services), (service, series)
                if metric.endpoint:
                    assert not series_kept(config, series, {"dynamo_endpoint": "worker_kv_indexer_query_dp0"})
        # Not published, so not paid for as EMF log ingestion.
        assert not series_kept(config, "dynamo_frontend_requests_total", {})
        assert not series_kept(config, "dynamo_tokio_worker_busy_ratio", {})


def test_no_selector_takes_a_name_it_was_not_meant_for(case):
    """The exporter's selectors are anchored only at the start (a "$" would be read as a
    variable): after the keep rule, no kept name may start with another published name."""
    _, stack = case
    for service, container in collectors(stack).items():
        selectors = collector.selectors(collector.config_of(container))
        assert sorted(selectors) == sorted(f"^{metric.name}" for metric in published_by(service))
        names = [metric.name for metric in published_by(service)]
        assert not [(a, b) for a in names for b in names if a != b and b.startswith(a)]


def test_every_metric_used_is_published_by_that_service_and_every_published_metric_is_used(case):
    env, stack = case
    used = uses(stack, f"Dynamo/{env.name}")
    model = env.model.served_model_name or env.model.name
    published = {
        (service, metric.name)
        for service in collectors(stack)
        for metric in published_by(service)
        if service != "prefill" or "prefill" in env.gpu_workers()
    }
    for use in used:
        assert dict(use.dimensions) == {"Environment": env.name, "Service": use.service, "Model": model}, use
        assert (use.service, use.metric_name) in published, use
    assert published == {(use.service, use.metric_name) for use in used}, "a published metric nothing uses costs money"


def test_the_dcgm_metrics_are_ones_the_pinned_exporter_exports():
    """tests/data holds the lines of the exporter's etc/default-counters.csv for what is published."""
    rows = [row for row in csv.reader(DCGM_COUNTERS.read_text().splitlines()) if row and not row[0].startswith("#")]
    counters = {row[0].strip(): row[1].strip() for row in rows}
    for metric in published_by("gpu"):
        assert counters[metric.name] == metric.kind


def test_worker_roles_scale_on_latency_steps_and_inflight_tracking(case):
    env, stack = case
    policies = {
        construct_path(body).split("/")[-1]: body for body in resources(stack, "aws_appautoscaling_policy").values()
    }
    for role, expected in worker_policies(env).items():
        target = reference_to(stack, "aws_appautoscaling_target", f"autoscaling/{role}-target", "resource_id")
        for policy in expected:
            if policy.kind == "step":
                body = policies[f"{policy.name}-steps"]
                config = body["step_scaling_policy_configuration"]
                adjustments = [step["scaling_adjustment"] for step in config["step_adjustment"]]
                # Scale-out only: a latency under target says nothing about how many to remove.
                assert adjustments == [adjustment for _, adjustment in LATENCY_STEPS] and min(adjustments) > 0
                assert config["step_adjustment"][0]["metric_interval_lower_bound"] == "0"
                assert "metric_interval_upper_bound" not in config["step_adjustment"][-1]
                assert config["cooldown"] == env.scaling.scale_out_cooldown_seconds
                alarm = one(stack, "aws_cloudwatch_metric_alarm", f"autoscaling/{policy.name}-over-target")
                assert alarm["alarm_actions"] == [
                    reference_to(stack, "aws_appautoscaling_policy", f"autoscaling/{policy.name}-steps", "arn")
                ]
                assert alarm["threshold"] == policy.target / 1000 and alarm["statistic"] == "Average"
                assert alarm["evaluation_periods"] == env.scaling.latency_breach_minutes and alarm["period"] == 60
                assert alarm["treat_missing_data"] == "notBreaching"
            else:
                body = policies[f"{policy.name}-tracking"]
                config = body["target_tracking_scaling_policy_configuration"]
                assert config["customized_metric_specification"]["statistic"] == "Average"
                assert config["target_value"] == policy.target
                assert config["scale_in_cooldown"] == env.scaling.scale_in_cooldown_seconds
                assert config["scale_out_cooldown"] == env.scaling.scale_out_cooldown_seconds
                assert policy.scale_out_minutes == TARGET_TRACKING_SCALE_OUT_MINUTES
            assert body["resource_id"] == target


def test_the_policies_follow_the_environment_files_targets(case):
    env, stack = case
    inflight = {"decode": env.scaling.decode_inflight_target, "prefill": env.scaling.prefill_inflight_target}
    latency = {"ttft": env.scaling.ttft_target_ms, "itl": env.scaling.itl_target_ms}
    for body in resources(stack, "aws_cloudwatch_metric_alarm").values():
        path = construct_path(body)
        if path.split("/")[-2] == "autoscaling":
            signal = path.split("/")[-1].split("-")[1]
            assert body["threshold"] == latency[signal] / 1000
    for role, target in inflight.items():
        if role in env.gpu_workers():
            body = one(stack, "aws_appautoscaling_policy", f"autoscaling/{role}-inflight-tracking")
            assert body["target_tracking_scaling_policy_configuration"]["target_value"] == target
    # Aggregated decode workers prefill too: TTFT scales them as well.
    ttft_roles = {
        construct_path(body).split("/")[-1].split("-")[0]
        for body in resources(stack, "aws_appautoscaling_policy").values()
        if construct_path(body).endswith("-ttft-steps")
    }
    assert ttft_roles == ({"decode"} if env.mode == "aggregated" else {"prefill"})


def test_latency_alarms_notify_when_the_mean_stays_over_target(case):
    env, stack = case
    topic = stack["output"]["alarm_topic_arn"]["value"]
    for signal, target in (("ttft", env.scaling.ttft_target_ms), ("itl", env.scaling.itl_target_ms)):
        alarm = one(stack, "aws_cloudwatch_metric_alarm", f"dynamo-alarms/{signal}-over-target")
        assert alarm["threshold"] == target / 1000 and alarm["statistic"] == "Average"
        assert alarm["evaluation_periods"] == env.scaling.latency_alarm_minutes
        assert alarm["alarm_actions"] == [topic]


def test_no_ready_decode_worker_alarm_waits_for_a_replacement_and_ignores_a_scheduled_zero(case):
    env, stack = case
    alarm = one(stack, "aws_cloudwatch_metric_alarm", "dynamo-alarms/no-ready-decode-worker")
    (expression,) = [query["expression"] for query in alarm["metric_query"] if query.get("return_data")]
    assert expression == "IF(FILL(desired, 0) >= 1 AND FILL(ready, 0) < 1, 1, 0)"
    metrics = {query["id"]: query["metric"] for query in alarm["metric_query"] if "metric" in query}
    assert metrics["desired"]["metric_name"] == "DesiredTaskCount"
    assert metrics["desired"]["dimensions"]["ServiceName"] == reference_to(
        stack, "aws_ecs_service", "decode/decode/service", "name"
    )
    # Ready workers: each publishes its generate endpoint's gauge only once it serves.
    assert (metrics["ready"]["metric_name"], metrics["ready"]["stat"]) == (WORKER_INFLIGHT.name, "SampleCount")
    assert metrics["ready"]["dimensions"]["Service"] == "decode"
    facts = env.model.model_facts
    assert facts is not None
    replacement = cold_start(env, facts).total + INSTANCE_WARMUP_SECONDS
    assert alarm["evaluation_periods"] * 60 >= replacement > (alarm["evaluation_periods"] - 1) * 60


def test_gpu_memory_alarm_is_above_what_vllm_reserves(case):
    env, stack = case
    alarm = one(stack, "aws_cloudwatch_metric_alarm", "dynamo-alarms/gpu-memory-near-full")
    gpu_memory = env.gpu_fleet.instance.gpu_memory_mib
    assert alarm["threshold"] == gpu_memory * env.scaling.gpu_memory_alarm_percent // 100
    assert alarm["threshold"] > gpu_memory * 0.9
    assert alarm["statistic"] == "Maximum"


def test_roles_pinned_at_their_maximum_notify(case):
    env, stack = case
    for role, worker in env.gpu_workers().items():
        found = [
            body
            for body in resources(stack, "aws_cloudwatch_metric_alarm").values()
            if construct_path(body).endswith(f"dynamo-alarms/{role}-at-maximum")
        ]
        if worker.min_count == worker.max_count:
            assert not found, "a fixed-size role is always at its maximum"
            continue
        (alarm,) = found
        assert (
            alarm["threshold"] == worker.max_count and alarm["comparison_operator"] == "GreaterThanOrEqualToThreshold"
        )


def test_dashboard_shows_latency_against_the_targets_workers_gpus_and_the_fleet(case):
    env, stack = case
    (body,) = resources(stack, "aws_cloudwatch_dashboard").values()
    assert body["dashboard_name"] == env.stack_name
    widgets = {
        widget["properties"]["title"]: widget["properties"] for widget in json.loads(body["dashboard_body"])["widgets"]
    }
    annotations = {
        title: [item["value"] for item in properties.get("annotations", {}).get("horizontal", [])]
        for title, properties in widgets.items()
    }
    assert annotations["Time to first token, mean (s)"] == [env.scaling.ttft_target_ms / 1000]
    assert annotations["Inter-token latency, mean (s)"] == [env.scaling.itl_target_ms / 1000]
    for role in env.gpu_workers():
        target = getattr(env.scaling, f"{role}_inflight_target")
        assert annotations[f"{role}: requests in flight per worker"] == [target]
    tasks = widgets["Tasks per service: desired and running"]["metrics"]
    assert {row[1] for row in tasks} == {"DesiredTaskCount", "RunningTaskCount"}
    assert len(tasks) == 2 * (1 + len(env.gpu_workers()))
    assert {row[1] for row in widgets["GPU fleet"]["metrics"]} == {
        "ContainerInstanceCount",
        "CapacityProviderReservation",
    }
    assert all(widget["region"] == env.region for widget in widgets.values())


def test_task_roles_may_write_only_the_metrics_log_group(case):
    env, stack = case
    log_group = reference_to(stack, "aws_cloudwatch_log_group", "logs/metrics", "arn")
    publishers = [
        body
        for body in resources(stack, "aws_iam_role_policy").values()
        if construct_path(body).startswith(f"{env.stack_name}/metrics/")
    ]
    assert {construct_path(body).split("/")[-1] for body in publishers} == {
        "publish-frontend",
        "publish-workers",
        "publish-gpu-metrics",
    }
    for body in publishers:
        (statement,) = json.loads(body["policy"])["Statement"]
        assert statement["Resource"] == [log_group, f"{log_group}:log-stream:*"]
        assert not any(action.startswith("aps:") for action in statement["Action"])


def test_the_gpu_exporter_is_a_daemon_that_reserves_no_gpu(case):
    env, stack = case
    service = one(stack, "aws_ecs_service", "gpu-metrics/service")
    assert service["scheduling_strategy"] == "DAEMON" and service["launch_type"] == "EC2"
    assert service["cluster"] == reference_to(stack, "aws_ecs_cluster", "gpu-cluster/cluster", "arn")
    task = one(stack, "aws_ecs_task_definition", "gpu-metrics/task")
    # Bridge: no network interface of the instance's few (awsvpc would take one per instance).
    assert task["network_mode"] == "bridge"
    exporter, metrics = containers(task)
    assert exporter["image"] == env.metrics.dcgm_exporter_image
    assert "resourceRequirements" not in exporter
    assert environment_of(exporter)["NVIDIA_VISIBLE_DEVICES"] == "all"
    assert not exporter["portMappings"], "nothing listens on the instance's address"
    assert metrics["links"] == ["dcgm-exporter"]
    assert (exporter["cpu"], exporter["memoryReservation"]) == (DCGM_EXPORTER_CPU_UNITS, DCGM_EXPORTER_MEMORY_MIB)
    assert exporter["memory"] > exporter["memoryReservation"]


@pytest.mark.parametrize("existing", [None, {"log-driver": "json-file", "runtimes": {"custom": {"path": "/x"}}}])
def test_gpu_instances_make_nvidias_runtime_the_default_keeping_dockers_other_settings(synth_dir, tmp_path, existing):
    """Runs the user data's Python step on a stand-in for /etc/docker/daemon.json."""
    user_data = read_plan(synth_dir / "stacks" / "dynamo-prod" / "cdk.tf.json").instance_user_data
    (script,) = re.findall(r"python3 - <<'PYTHON'\n(.*?)\nPYTHON\n", user_data, re.DOTALL)
    assert user_data.index("PYTHON\nsystemctl restart docker") > 0
    daemon_json = tmp_path / "daemon.json"
    if existing is not None:
        daemon_json.write_text(json.dumps(existing))
    script = script.replace("/etc/docker/daemon.json", str(daemon_json))
    subprocess.run([sys.executable, "-c", script], check=True)
    assert json.loads(daemon_json.read_text()) == {**(existing or {}), "default-runtime": "nvidia"}
