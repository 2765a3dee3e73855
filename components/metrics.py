"""Dynamo's Prometheus metrics in CloudWatch: what is published, and the collector beside each
Dynamo container that publishes it.

The collector is the AWS Distro for OpenTelemetry collector (ADOT), one per task, reading the
Dynamo container's /metrics on localhost. Chosen over the CloudWatch agent's Prometheus support
because the agent's ECS mode is a cluster-wide scraper that discovers tasks through the ECS API
and scrapes them by private IP (every Dynamo security group would have to admit it: CloudWatch
User Guide, "Set up and configure Prometheus metrics collection on Amazon ECS clusters"), while
ADOT reads localhost inside the task, needs no rule, and remote-writes to Amazon Managed Service
for Prometheus with the same file (its prometheusremotewrite exporter and sigv4auth extension).

What the configuration does, and why (sources: the awsemf exporter, cumulativetodelta processor
and prometheus receiver READMEs and code of opentelemetry-collector-contrib v0.156.0, which ADOT
v0.49.0 ships):
- the receiver keeps only the series of PUBLISHED (metric_relabel_configs): awsemf writes every
  metric it receives into the EMF log, matched by a declaration or not, so anything not dropped
  here would be paid for as log ingestion;
- histograms become deltas before awsemf (cumulativetodelta): awsemf exports a histogram as a
  statistic set {Count, Sum, Min, Max} of the values it is given and never converts a
  cumulative histogram itself (its datapoint.go, with a to-do on issue #18245), so CloudWatch's
  Average would be the mean since the process started. With deltas, Average over a period is
  the period's mean (Sum / Count) across every task publishing it. Min and Max read 0 (a
  Prometheus histogram has neither) and percentiles are not available from CloudWatch: the
  buckets are not exported. With amp_workspace_arn set, the buckets go to Prometheus unchanged
  (its own pipeline, cumulative), where histogram_quantile gives percentiles;
- every published metric has the same three dimensions and no rollup, so a metric costs one
  CloudWatch custom metric per service that publishes it (NoDimensionRollup; the default adds
  a metric per single dimension and one with none).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Literal

from constructs import Construct

from components.aws import iam_role_policy
from components.container import Container
from components.iam import TaskRoles
from components.logs import LogGroup, LogGroups
from components.policy import policy_document, statement
from environments.schema import MetricsConfig

DIMENSIONS = ("Environment", "Service", "Model")
# The collector's health_check extension; the image's /healthcheck binary asks it (the image is
# built FROM scratch, so the check cannot be a shell command: aws-otel-collector's Dockerfile).
COLLECTOR_HEALTH_PORT = 13133
ENDPOINT_LABEL = "dynamo_endpoint"


@dataclass(frozen=True)
class PublishedMetric:
    """One Prometheus metric published to CloudWatch under the same name.

    ``services``: whose collector publishes it (``frontend``, ``decode``, ``prefill``, ``gpu``).
    ``endpoint``: only the series of this Dynamo endpoint (label ``dynamo_endpoint``)."""

    name: str
    services: tuple[str, ...]
    kind: Literal["gauge", "histogram"]
    endpoint: str | None = None

    @property
    def series_names(self) -> tuple[str, ...]:
        """The names this metric's series have in the Prometheus text format."""
        if self.kind == "histogram":
            return tuple(f"{self.name}_{suffix}" for suffix in ("bucket", "sum", "count"))
        return (self.name,)


# Every metric a policy, an alarm or the dashboard uses, and nothing else (tests check both ways).
# Names as Dynamo 1.2.1 exposes them (read from the twin's processes: tests/test_twin.py) and as
# DCGM exporter 4.5.3-4.8.2 does (etc/default-counters.csv there). No counters: request rate
# is the TTFT histogram's sample count (one first token per request) and the ALB's RequestCount.
TTFT = PublishedMetric("dynamo_frontend_time_to_first_token_seconds", ("frontend",), "histogram")
ITL = PublishedMetric("dynamo_frontend_inter_token_latency_seconds", ("frontend",), "histogram")
QUEUED = PublishedMetric("dynamo_frontend_queued_requests", ("frontend",), "gauge")
FRONTEND_INFLIGHT = PublishedMetric("dynamo_frontend_inflight_requests", ("frontend",), "gauge")
# Each worker's requests in flight on its generate endpoint (not the KV indexer's queries).
WORKER_INFLIGHT = PublishedMetric(
    "dynamo_component_inflight_requests", ("decode", "prefill"), "gauge", endpoint="generate"
)
GPU_UTILIZATION = PublishedMetric("DCGM_FI_DEV_GPU_UTIL", ("gpu",), "gauge")  # percent
GPU_MEMORY_USED = PublishedMetric("DCGM_FI_DEV_FB_USED", ("gpu",), "gauge")  # MiB
PUBLISHED = (TTFT, ITL, QUEUED, FRONTEND_INFLIGHT, WORKER_INFLIGHT, GPU_UTILIZATION, GPU_MEMORY_USED)


@dataclass(frozen=True)
class MetricRef:
    """One published metric of one service, as CloudWatch names it."""

    namespace: str
    metric_name: str
    dimensions: dict[str, str]

    def dashboard(self, **options: object) -> list[object]:
        """A dashboard widget's metric array: namespace, name, dimension pairs, then options."""
        pairs = [item for pair in self.dimensions.items() for item in pair]
        return [self.namespace, self.metric_name, *pairs, *([options] if options else [])]


def published_by(service: str) -> list[PublishedMetric]:
    return [metric for metric in PUBLISHED if service in metric.services]


def keep_rule(metrics: list[PublishedMetric]) -> dict[str, object]:
    """A metric_relabel_configs rule that keeps exactly these metrics' series.

    It matches "<series name>;<dynamo_endpoint>": a metric without ``endpoint`` keeps its
    series that have no such label, one with it only the series of that endpoint. Prometheus
    anchors the expression at both ends."""
    alternatives = []
    for metric in metrics:
        names = "|".join(re.escape(name) for name in metric.series_names)
        alternatives.append(f"(?:{names});{re.escape(metric.endpoint or '')}")
    return {
        "source_labels": ["__name__", ENDPOINT_LABEL],
        "separator": ";",
        "regex": "|".join(alternatives),
        "action": "keep",
    }


@dataclass(frozen=True)
class Scrape:
    """What one collector reads: a service's /metrics on localhost (or a linked container's)."""

    service: str
    host: str
    port: int
    path: str = "/metrics"


def collector_config(
    *,
    scrape: Scrape,
    dimensions: dict[str, str],
    namespace: str,
    log_group: LogGroup,
    interval_seconds: int,
    amp_workspace_arn: str | None,
) -> dict[str, object]:
    """The ADOT configuration (as JSON, which is YAML) of one collector."""
    metrics = published_by(scrape.service)
    extensions: dict[str, object] = {"health_check": {"endpoint": f"127.0.0.1:{COLLECTOR_HEALTH_PORT}"}}
    exporters: dict[str, object] = {
        "awsemf": {
            "namespace": namespace,
            "region": log_group.region,
            "log_group_name": log_group.name,
            "log_stream_name": f"{scrape.service}/{{TaskId}}",
            "dimension_rollup_option": "NoDimensionRollup",
            "metric_declarations": [
                {
                    "dimensions": [list(DIMENSIONS)],
                    # Unanchored at the end (a "$" would be read as a variable by the collector's
                    # configuration): after the receiver's filter, no kept name starts another.
                    "metric_name_selectors": [f"^{metric.name}" for metric in metrics],
                }
            ],
        }
    }
    pipelines: dict[str, object] = {
        "metrics/cloudwatch": {
            "receivers": ["prometheus"],
            "processors": ["memory_limiter", "cumulativetodelta", "batch"],
            "exporters": ["awsemf"],
        }
    }
    if amp_workspace_arn is not None:
        # A second pipeline to Amazon Managed Service for Prometheus: cumulative, as remote write expects.
        _, partition, _, region, _, resource = amp_workspace_arn.split(":", 5)
        suffix = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
        workspace_id = resource.removeprefix("workspace/")
        extensions["sigv4auth"] = {"region": region, "service": "aps"}
        exporters["prometheusremotewrite"] = {
            "endpoint": f"https://aps-workspaces.{region}.{suffix}/workspaces/{workspace_id}/api/v1/remote_write",
            "auth": {"authenticator": "sigv4auth"},
            "resource_to_telemetry_conversion": {"enabled": True},
        }
        pipelines["metrics/prometheus"] = {
            "receivers": ["prometheus"],
            "processors": ["memory_limiter", "batch"],
            "exporters": ["prometheusremotewrite"],
        }
    return {
        "extensions": extensions,
        "receivers": {
            "prometheus": {
                "config": {
                    "global": {"scrape_interval": f"{interval_seconds}s", "scrape_timeout": f"{interval_seconds}s"},
                    "scrape_configs": [
                        {
                            "job_name": scrape.service,
                            "metrics_path": scrape.path,
                            "static_configs": [{"targets": [f"{scrape.host}:{scrape.port}"], "labels": dimensions}],
                            "metric_relabel_configs": [keep_rule(metrics)],
                        }
                    ],
                }
            }
        },
        "processors": {
            # A share of the container's hard limit (metrics.collector_memory_mib), so the
            # collector sheds data before the kernel kills it.
            "memory_limiter": {"check_interval": "5s", "limit_percentage": 80, "spike_limit_percentage": 20},
            "cumulativetodelta": {"include": {"metric_types": ["histogram"]}},
            "batch": {"timeout": "10s"},
        },
        "exporters": exporters,
        "service": {"extensions": list(extensions), "pipelines": pipelines},
    }


class Metrics(Construct):
    """The environment's metrics: a collector container for each Dynamo task (``collector``),
    the EMF log group they write, and what lets each task role publish.

    Attributes:
        namespace: ``Dynamo/<environment>``.
        log_group: the EMF log group (CloudWatch extracts the metrics from it).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        environment: str,
        model: str,
        config: MetricsConfig,
        logs: LogGroups,
    ) -> None:
        super().__init__(scope, id_)
        self._name = name
        self._environment = environment
        self._model = model
        self._config = config
        self.namespace: str = f"Dynamo/{environment}"
        self.log_group: LogGroup = logs.group("metrics")
        self._granted: set[str] = set()

    def dimensions(self, service: str) -> dict[str, str]:
        return {"Environment": self._environment, "Service": service, "Model": self._model}

    def metric(self, published: PublishedMetric, service: str) -> MetricRef:
        """How a policy, alarm or dashboard names one published metric of one service."""
        assert service in published.services, f"{published.name} is not published by {service}"
        return MetricRef(self.namespace, published.name, self.dimensions(service))

    def collector(self, *, scrape: Scrape, roles: TaskRoles, logs: LogGroup) -> Container:
        """The collector container for a task whose Dynamo container serves ``scrape``, logging
        to the task's log group; lets the task's role write the metrics (and remote-write them,
        with a workspace)."""
        self._grant(roles)
        config = collector_config(
            scrape=scrape,
            dimensions=self.dimensions(scrape.service),
            namespace=self.namespace,
            log_group=self.log_group,
            interval_seconds=self._config.scrape_interval_seconds,
            amp_workspace_arn=self._config.amp_workspace_arn,
        )
        return Container(
            name="metrics",
            image=self._config.collector_image,
            command=[],
            # Read by the ADOT image in place of its built-in file (pkg/config/config_factory.go).
            environment={"AOT_CONFIG_CONTENT": json.dumps(config, sort_keys=True, separators=(",", ":"))},
            health_check={
                "command": ["CMD", "/healthcheck"],
                "interval": 30,
                "timeout": 5,
                "retries": 3,
                "startPeriod": 15,
            },
            logs=logs,
            log_stream_prefix="metrics",
            # A collector that fails must not stop the Dynamo process it watches.
            essential=False,
            readonly_root_filesystem=True,
            cpu=self._config.collector_cpu,
            memory_reservation=self._config.collector_memory_mib // 2,
            memory=self._config.collector_memory_mib,
            links=[] if scrape.host == "localhost" else [scrape.host],
        )

    def _grant(self, roles: TaskRoles) -> None:
        """One policy per task role: several services can share one (the workers do)."""
        if roles.family in self._granted:
            return
        self._granted.add(roles.family)
        statements = [
            statement(
                action=["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                resource=[self.log_group.arn, f"{self.log_group.arn}:log-stream:*"],
            )
        ]
        if self._config.amp_workspace_arn is not None:
            statements.append(statement(action="aps:RemoteWrite", resource=self._config.amp_workspace_arn))
        iam_role_policy.IamRolePolicy(
            self,
            f"publish-{roles.family}",
            name=f"{self._name}-{roles.family}-publish-metrics",
            role=roles.task_role_name,
            policy=policy_document(*statements),
        )
