"""Application Auto Scaling for the ECS services; the GPU fleet follows through the capacity provider."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cdktf import TerraformResourceLifecycle
from constructs import Construct

from components.aws import appautoscaling_policy, appautoscaling_scheduled_action, appautoscaling_target
from components.service import TaskService
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


class Autoscaling(Construct):
    """A scalable target per service; target tracking for the frontend; optional working hours.

    GPU workers get targets (so their bounds are managed and schedulable) but no policy:
    scaling them on CPU would be wrong, and scaling on Dynamo's latency metrics needs the
    metrics pipeline first.

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
    ) -> None:
        """``services`` has the frontend under "frontend"."""
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
            appautoscaling_policy.AppautoscalingPolicy(
                self,
                f"frontend-{metric}",
                name=f"{name}-frontend-{metric}",
                policy_type="TargetTrackingScaling",
                service_namespace=front.service_namespace,
                scalable_dimension=front.scalable_dimension,
                resource_id=front.resource_id,
                target_tracking_scaling_policy_configuration={
                    "target_value": value,
                    "scale_in_cooldown": SCALE_IN_COOLDOWN_SECONDS,
                    "scale_out_cooldown": SCALE_OUT_COOLDOWN_SECONDS,
                    "predefined_metric_specification": {"predefined_metric_type": metric, "resource_label": label},
                },
                lifecycle=REPLACE_FIRST,
            )

        if schedule is not None:
            self._working_hours(name, services, targets, schedule)

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
