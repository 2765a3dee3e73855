"""One CloudWatch dashboard per environment: demand, latency against its targets, load, workers,
GPUs and the fleet, on the same minute as the policies that act on them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from constructs import Construct

from components.autoscaling import ScaledService
from components.aws import cloudwatch_dashboard
from components.gpu_cluster import GpuCluster
from components.load_balancer import LoadBalancer
from components.metrics import (
    FRONTEND_INFLIGHT,
    GPU_MEMORY_USED,
    GPU_UTILIZATION,
    ITL,
    QUEUED,
    TTFT,
    WORKER_INFLIGHT,
    Metrics,
)
from environments.schema import ScalingConfig

PERIOD = 60
WIDTH, HEIGHT, COLUMNS = 12, 6, 2


class Dashboard(Construct):
    """The dashboard ``<stack>`` (CloudWatch console, Dashboards).

    Attributes: dashboard_name.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        region: str,
        config: ScalingConfig,
        metrics: Metrics,
        balancer: LoadBalancer,
        services: Mapping[str, ScaledService],
        gpu_cluster: GpuCluster,
        gpu_memory_mib: int,
    ) -> None:
        """``services``: the frontend and every worker role, by short name."""
        super().__init__(scope, id_)
        self._region = region
        workers = [role for role in services if role != "frontend"]
        inflight_targets = {"decode": config.decode_inflight_target, "prefill": config.prefill_inflight_target}
        ttft, itl = metrics.metric(TTFT, "frontend"), metrics.metric(ITL, "frontend")
        widgets = [
            self._widget(
                "Requests per minute",
                [
                    [
                        "AWS/ApplicationELB",
                        "RequestCount",
                        "LoadBalancer",
                        balancer.arn_suffix,
                        {"label": "at the ALB"},
                    ],
                    ttft.dashboard(stat="SampleCount", label="first tokens (frontends)"),
                ],
                stat="Sum",
            ),
            self._widget(
                "Time to first token, mean (s)",
                [ttft.dashboard(label="TTFT")],
                target=(config.ttft_target_ms / 1000, "scaling.ttft_target_ms"),
            ),
            self._widget(
                "Inter-token latency, mean (s)",
                [itl.dashboard(label="ITL")],
                target=(config.itl_target_ms / 1000, "scaling.itl_target_ms"),
            ),
            self._widget(
                "Requests waiting and in flight, per frontend",
                [
                    metrics.metric(QUEUED, "frontend").dashboard(label="queued (HTTP processing queue)"),
                    metrics.metric(FRONTEND_INFLIGHT, "frontend").dashboard(label="in flight"),
                ],
            ),
            *(
                self._widget(
                    f"{role}: requests in flight per worker",
                    [metrics.metric(WORKER_INFLIGHT, role).dashboard(label=role)],
                    target=(inflight_targets[role], f"scaling.{role}_inflight_target"),
                )
                for role in workers
            ),
            self._widget(
                "Tasks per service: desired and running",
                [
                    [
                        "ECS/ContainerInsights",
                        metric_name,
                        "ClusterName",
                        scaled.service.cluster_name,
                        "ServiceName",
                        scaled.service.service_name,
                        {"label": f"{short_name} {metric_name.removesuffix('TaskCount').lower()}"},
                    ]
                    for short_name, scaled in services.items()
                    for metric_name in ("DesiredTaskCount", "RunningTaskCount")
                ],
                stat="Maximum",
            ),
            self._widget(
                "GPU utilization (%)",
                [
                    metrics.metric(GPU_UTILIZATION, "gpu").dashboard(stat="Average", label="mean over GPUs"),
                    metrics.metric(GPU_UTILIZATION, "gpu").dashboard(stat="Maximum", label="busiest GPU"),
                ],
            ),
            self._widget(
                "GPU memory used, fullest GPU (MiB)",
                [metrics.metric(GPU_MEMORY_USED, "gpu").dashboard(stat="Maximum", label="framebuffer used")],
                target=(
                    gpu_memory_mib * config.gpu_memory_alarm_percent // 100,
                    "scaling.gpu_memory_alarm_percent",
                ),
            ),
            self._widget(
                "GPU fleet",
                [
                    [
                        "ECS/ContainerInsights",
                        "ContainerInstanceCount",
                        "ClusterName",
                        gpu_cluster.cluster_name,
                        {"label": "instances in the cluster"},
                    ],
                    [
                        "AWS/ECS/ManagedScaling",
                        "CapacityProviderReservation",
                        "CapacityProviderName",
                        gpu_cluster.capacity_provider_name,
                        "ClusterName",
                        gpu_cluster.cluster_name,
                        {"label": "capacity provider reservation (%)", "yAxis": "right"},
                    ],
                ],
                stat="Maximum",
            ),
        ]
        for index, widget in enumerate(widgets):
            widget.update(x=(index % COLUMNS) * WIDTH, y=(index // COLUMNS) * HEIGHT, width=WIDTH, height=HEIGHT)
        dashboard = cloudwatch_dashboard.CloudwatchDashboard(
            self, "dashboard", dashboard_name=name, dashboard_body=json.dumps({"widgets": widgets})
        )
        self.dashboard_name: str = dashboard.dashboard_name

    def _widget(
        self, title: str, metrics: list[list[Any]], *, stat: str = "Average", target: tuple[float, str] | None = None
    ) -> dict[str, Any]:
        properties: dict[str, Any] = {
            "title": title,
            "region": self._region,
            "view": "timeSeries",
            "period": PERIOD,
            "stat": stat,
            "metrics": metrics,
        }
        if target is not None:
            value, label = target
            properties["annotations"] = {"horizontal": [{"value": value, "label": label, "color": "#d62728"}]}
        return {"type": "metric", "properties": properties}
