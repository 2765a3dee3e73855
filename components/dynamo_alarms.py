"""Alarms on Dynamo's own signals, to the environment's SNS topic: latency over its target, no
decode worker ready, a worker role pinned at its maximum, GPU memory near full. (etcd and
NATS down are components/alarms.py's, with the load balancer's.)"""

from __future__ import annotations

import math
from collections.abc import Mapping

from constructs import Construct

from components.alarms import metric_query
from components.autoscaling import ScaledService
from components.aws import cloudwatch_metric_alarm
from components.gpu_cluster import INSTANCE_WARMUP_SECONDS
from components.metrics import GPU_MEMORY_USED, ITL, TTFT, WORKER_INFLIGHT, MetricRef, Metrics
from environments.schema import ScalingConfig

# A role at its maximum for this long is not a burst: its policies want more than it may have.
AT_MAXIMUM_MINUTES = 15


class DynamoAlarms(Construct):
    """Alarms that page when the model is slow, down, out of room or out of GPU memory."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        topic_arn: str,
        config: ScalingConfig,
        metrics: Metrics,
        workers: Mapping[str, ScaledService],
        gpu_memory_mib: int,
        cold_start_seconds: float,
    ) -> None:
        """``workers``: every GPU worker role's service and bounds; ``gpu_memory_mib``: one GPU's
        memory; ``cold_start_seconds``: the environment's estimate for a new worker (environments/fit.py)."""
        super().__init__(scope, id_)
        self._name = name
        self._common = {"alarm_actions": [topic_arn], "ok_actions": [topic_arn]}
        minutes = config.latency_alarm_minutes
        for short_name, published, target_ms in (
            ("ttft", TTFT, config.ttft_target_ms),
            ("itl", ITL, config.itl_target_ms),
        ):
            self._over(
                f"{short_name}-over-target",
                (
                    f"Mean {short_name.upper()} at the frontends over its target ({target_ms} ms, scaling.{short_name}"
                    f"_target_ms) for {minutes} minutes: the workers' policies have not caught up (cold start, or the "
                    "role at its max_count)."
                ),
                metrics.metric(published, "frontend"),
                statistic="Average",
                minutes=minutes,
                threshold=target_ms / 1000,
            )
        self._no_ready_decode(workers["decode"], metrics, cold_start_seconds)
        for role, scaled in workers.items():
            if scaled.min_count < scaled.max_count:
                self._at_maximum(role, scaled)
        self._gpu_memory(metrics, config.gpu_memory_alarm_percent, gpu_memory_mib)

    def _no_ready_decode(self, decode: ScaledService, metrics: Metrics, cold_start_seconds: float) -> None:
        """Every request needs a decode worker. A worker is ready once its generate endpoint is
        registered, and only then does its collector publish the generate endpoint's in-flight
        gauge (measured with the 1.2.1 mocker: the series appears with /health turning 200;
        dynamo.vllm registers generate after its engine is up, worker_factory.py), so the
        gauge's sample count counts ready workers, where Container Insights' RunningTaskCount
        would count one still loading its model. The alarm waits for what a replacement needs
        (the cold start, and an instance launch), so a rollout or the morning's scheduled
        scale-up does not page, and asks for a ready worker only when one is desired (a
        scheduled zero does not page either). A collector that stops publishing looks the same."""
        minutes = math.ceil((cold_start_seconds + INSTANCE_WARMUP_SECONDS) / 60)
        dimensions = {"ClusterName": decode.service.cluster_name, "ServiceName": decode.service.service_name}
        ready = metrics.metric(WORKER_INFLIGHT, "decode")
        cloudwatch_metric_alarm.CloudwatchMetricAlarm(
            self,
            "no-ready-decode-worker",
            alarm_name=f"{self._name}-no-ready-decode-worker",
            alarm_description=(
                f"No decode worker ready (reporting its generate endpoint) for {minutes} minutes while at least one is "
                "desired, longer than a replacement needs: no request can be served. Or its metrics collector is down."
            ),
            comparison_operator="GreaterThanOrEqualToThreshold",
            threshold=1,
            evaluation_periods=minutes,
            metric_query=[
                cloudwatch_metric_alarm.CloudwatchMetricAlarmMetricQuery(
                    id="none",
                    expression="IF(FILL(desired, 0) >= 1 AND FILL(ready, 0) < 1, 1, 0)",
                    label="desired but none ready",
                    return_data=True,
                ),
                metric_query("desired", "DesiredTaskCount", dimensions, namespace="ECS/ContainerInsights", period=60),
                cloudwatch_metric_alarm.CloudwatchMetricAlarmMetricQuery(
                    id="ready",
                    metric={
                        "namespace": ready.namespace,
                        "metric_name": ready.metric_name,
                        "dimensions": ready.dimensions,
                        "period": 60,
                        "stat": "SampleCount",
                    },
                ),
            ],
            treat_missing_data="notBreaching",
            **self._common,
        )

    def _at_maximum(self, role: str, scaled: ScaledService) -> None:
        dimensions = {"ClusterName": scaled.service.cluster_name, "ServiceName": scaled.service.service_name}
        cloudwatch_metric_alarm.CloudwatchMetricAlarm(
            self,
            f"{role}-at-maximum",
            alarm_name=f"{self._name}-{role}-at-maximum",
            alarm_description=(
                f"{role}: desired count at max_count ({scaled.max_count}) for {AT_MAXIMUM_MINUTES} minutes; its "
                f"policies cannot add more. Raise {role}.max_count (and gpu_fleet.max_instances) or accept the "
                "latency (Container Insights)."
            ),
            namespace="ECS/ContainerInsights",
            metric_name="DesiredTaskCount",
            dimensions=dimensions,
            statistic="Minimum",
            period=60,
            evaluation_periods=AT_MAXIMUM_MINUTES,
            comparison_operator="GreaterThanOrEqualToThreshold",
            threshold=scaled.max_count,
            treat_missing_data="notBreaching",
            **self._common,
        )

    def _gpu_memory(self, metrics: Metrics, percent: int, gpu_memory_mib: int) -> None:
        """The fullest GPU of the fleet: DCGM reports each GPU's framebuffer used, in MiB; the
        threshold is that share of the instance type's GPU memory (environments/catalog.py)."""
        threshold = gpu_memory_mib * percent // 100
        self._over(
            "gpu-memory-near-full",
            (
                f"A GPU has more than {percent}% of its {gpu_memory_mib} MiB in use ({threshold} MiB, "
                "scaling.gpu_memory_alarm_percent) for 5 minutes: beyond what vLLM reserves, so something else holds "
                "GPU memory or the next allocation fails (DCGM exporter)."
            ),
            metrics.metric(GPU_MEMORY_USED, "gpu"),
            statistic="Maximum",
            minutes=5,
            threshold=threshold,
        )

    def _over(
        self, id_: str, description: str, metric: MetricRef, *, statistic: str, minutes: int, threshold: float
    ) -> None:
        """A one-minute metric over ``threshold`` for ``minutes``; no data (no traffic) is not a breach."""
        cloudwatch_metric_alarm.CloudwatchMetricAlarm(
            self,
            id_,
            alarm_name=f"{self._name}-{id_}",
            alarm_description=description,
            namespace=metric.namespace,
            metric_name=metric.metric_name,
            dimensions=metric.dimensions,
            statistic=statistic,
            period=60,
            evaluation_periods=minutes,
            comparison_operator="GreaterThanThreshold",
            threshold=threshold,
            treat_missing_data="notBreaching",
            **self._common,
        )
