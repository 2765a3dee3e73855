"""Application Auto Scaling for the ECS services; the GPU fleet follows through the capacity provider."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cdktf import TerraformResourceLifecycle
from constructs import Construct

from components.aws import (
    appautoscaling_policy,
    appautoscaling_scheduled_action,
    appautoscaling_target,
    cloudwatch_metric_alarm,
)
from components.metrics import ITL, TTFT, WORKER_INFLIGHT, Metrics, PublishedMetric
from components.service import TaskService
from environments.policies import PERIOD_SECONDS, WorkerPolicy
from environments.schema import FrontendConfig, ScheduleConfig

if TYPE_CHECKING:
    from components.load_balancer import LoadBalancer


@dataclass(frozen=True)
class ScaledService:
    service: TaskService
    min_count: int
    max_count: int


# A scalable target, policy or scheduled action is replaced only when what identifies it
# changes (its resource id: the frontend moving to the other cluster, or a name), so the
# replacement is always a different object: it can exist first, and the service is never
# left without its bounds and policies while the old ones go.
REPLACE_FIRST = TerraformResourceLifecycle(create_before_destroy=True)
# Add frontends a minute after load rises; remove them only after five quiet minutes, so a
# burst does not cut the streams of frontends that were just added.
SCALE_OUT_COOLDOWN_SECONDS = 60
SCALE_IN_COOLDOWN_SECONDS = 300


LATENCY_METRICS: dict[str, PublishedMetric] = {"ttft_ms": TTFT, "itl_ms": ITL}


class Autoscaling(Construct):
    """A scalable target per service; target tracking for the frontend on CPU and requests;
    for each GPU worker role its policies on Dynamo's metrics (environments/policies.py);
    optional working hours. The GPU instances follow the workers through the capacity
    provider's managed scaling (components/gpu_cluster.py).

    Attributes: resource_ids (scalable target resource id per short name).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        services: Mapping[str, ScaledService],
        frontend: FrontendConfig,
        balancer: LoadBalancer,
        schedule: ScheduleConfig | None,
        worker_policies: Mapping[str, list[WorkerPolicy]],
        metrics: Metrics,
    ) -> None:
        """``services`` has the frontend under "frontend", and every worker role ``worker_policies`` names."""
        super().__init__(scope, id_)
        self.resource_ids: dict[str, str] = {}
        targets = {}
        for short_name, scaled in services.items():
            target = appautoscaling_target.AppautoscalingTarget(
                self,
                f"{short_name}-target",
                service_namespace="ecs",
                scalable_dimension="ecs:service:DesiredCount",
                resource_id=f"service/{scaled.service.cluster_name}/{scaled.service.service_name}",
                min_capacity=scaled.min_count,
                max_capacity=scaled.max_count,
                lifecycle=REPLACE_FIRST,
            )
            targets[short_name] = target
            self.resource_ids[short_name] = target.resource_id

        front = targets["frontend"]
        request_count_label = f"{balancer.arn_suffix}/{balancer.target.target_group_arn_suffix}"
        for metric, value, label in (
            ("ECSServiceAverageCPUUtilization", frontend.cpu_target_percent, None),
            ("ALBRequestCountPerTarget", frontend.requests_per_target, request_count_label),
        ):
            self._policy(
                f"frontend-{metric}",
                name,
                front,
                target_tracking_scaling_policy_configuration={
                    "target_value": value,
                    "scale_in_cooldown": SCALE_IN_COOLDOWN_SECONDS,
                    "scale_out_cooldown": SCALE_OUT_COOLDOWN_SECONDS,
                    "predefined_metric_specification": {"predefined_metric_type": metric, "resource_label": label},
                },
            )

        for role, policies in worker_policies.items():
            for policy in policies:
                if policy.kind == "step":
                    self._latency_steps(name, targets[role], policy, metrics)
                else:
                    self._inflight_tracking(name, targets[role], policy, metrics)

        if schedule is not None:
            self._working_hours(name, services, targets, schedule)

    def _latency_steps(
        self, name: str, target: appautoscaling_target.AppautoscalingTarget, policy: WorkerPolicy, metrics: Metrics
    ) -> None:
        """Step scaling on the frontends' mean latency; scale-out only.

        The alarm's threshold is the target; each step's bounds are relative to it (how far the
        period's mean is over target), in the metric's unit, seconds."""
        threshold = policy.target / 1000
        bounds = [(ratio - 1) * threshold for ratio, _ in policy.steps] + [None]
        steps = [
            appautoscaling_policy.AppautoscalingPolicyStepScalingPolicyConfigurationStepAdjustment(
                metric_interval_lower_bound=f"{lower:.6g}",
                metric_interval_upper_bound=None if upper is None else f"{upper:.6g}",
                scaling_adjustment=adjustment,
            )
            for (_, adjustment), lower, upper in zip(policy.steps, bounds, bounds[1:], strict=False)
        ]
        scaling = self._policy(
            f"{policy.name}-steps",
            name,
            target,
            step_scaling_policy_configuration={
                "adjustment_type": "ChangeInCapacity",
                "cooldown": policy.scale_out_cooldown_seconds,
                "metric_aggregation_type": "Average",
                "step_adjustment": steps,
            },
        )
        metric = metrics.metric(LATENCY_METRICS[policy.signal], "frontend")
        cloudwatch_metric_alarm.CloudwatchMetricAlarm(
            self,
            f"{policy.name}-over-target",
            alarm_name=f"{name}-{policy.name}-over-target",
            alarm_description=(
                f"Scales {policy.role} out: mean {policy.signal.removesuffix('_ms').upper()} at the frontends over "
                f"{policy.target:g} ms for {policy.scale_out_minutes} minutes."
            ),
            namespace=metric.namespace,
            metric_name=metric.metric_name,
            dimensions=metric.dimensions,
            statistic="Average",
            period=PERIOD_SECONDS,
            evaluation_periods=policy.scale_out_minutes,
            comparison_operator="GreaterThanThreshold",
            threshold=threshold,
            # No requests, no latency: nothing to scale for.
            treat_missing_data="notBreaching",
            alarm_actions=[scaling.arn],
        )

    def _inflight_tracking(
        self, name: str, target: appautoscaling_target.AppautoscalingTarget, policy: WorkerPolicy, metrics: Metrics
    ) -> None:
        """Target tracking on requests in flight per worker: the mean over the role's workers
        (each publishes its own gauge; a worker still loading its model has no generate
        endpoint yet and publishes none, so it does not dilute the mean)."""
        metric = metrics.metric(WORKER_INFLIGHT, policy.role)
        self._policy(
            f"{policy.name}-tracking",
            name,
            target,
            target_tracking_scaling_policy_configuration={
                "target_value": policy.target,
                "scale_out_cooldown": policy.scale_out_cooldown_seconds,
                "scale_in_cooldown": policy.scale_in_cooldown_seconds,
                "customized_metric_specification": {
                    "namespace": metric.namespace,
                    "metric_name": metric.metric_name,
                    "dimensions": [{"name": key, "value": value} for key, value in metric.dimensions.items()],
                    "statistic": "Average",
                },
            },
        )

    def _policy(
        self,
        id_: str,
        name: str,
        target: appautoscaling_target.AppautoscalingTarget,
        **configuration: Any,
    ) -> appautoscaling_policy.AppautoscalingPolicy:
        """A policy named ``<stack>-<id_>`` on ``target``: target tracking or step scaling, by
        which configuration it is given."""
        return appautoscaling_policy.AppautoscalingPolicy(
            self,
            id_,
            name=f"{name}-{id_}",
            policy_type="StepScaling"
            if "step_scaling_policy_configuration" in configuration
            else "TargetTrackingScaling",
            service_namespace=target.service_namespace,
            scalable_dimension=target.scalable_dimension,
            resource_id=target.resource_id,
            lifecycle=REPLACE_FIRST,
            **configuration,
        )

    def _working_hours(
        self,
        name: str,
        services: Mapping[str, ScaledService],
        targets: Mapping[str, appautoscaling_target.AppautoscalingTarget],
        schedule: ScheduleConfig,
    ) -> None:
        for short_name, target in targets.items():
            scaled = services[short_name]
            for action, cron, bounds in (
                ("scale-down", schedule.scale_down, (0, 0)),
                ("scale-up", schedule.scale_up, (scaled.min_count, scaled.max_count)),
            ):
                appautoscaling_scheduled_action.AppautoscalingScheduledAction(
                    self,
                    f"{short_name}-{action}",
                    name=f"{name}-{short_name}-{action}",
                    service_namespace=target.service_namespace,
                    scalable_dimension=target.scalable_dimension,
                    resource_id=target.resource_id,
                    schedule=cron,
                    timezone=schedule.timezone,
                    scalable_target_action={"min_capacity": str(bounds[0]), "max_capacity": str(bounds[1])},
                    lifecycle=REPLACE_FIRST,
                )
