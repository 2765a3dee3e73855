"""Application Auto Scaling for the ECS services; the GPU fleet follows through the capacity provider."""

from __future__ import annotations

from dataclasses import dataclass

from cdktf import TerraformResourceLifecycle
from constructs import Construct

from components.aws import appautoscaling_policy, appautoscaling_scheduled_action, appautoscaling_target


@dataclass(frozen=True)
class ScaledService:
    cluster_name: str
    service_name: str
    min_count: int
    max_count: int


@dataclass(frozen=True)
class WorkingHours:
    timezone: str
    scale_up: str
    scale_down: str


# A scalable target, policy or scheduled action is replaced only when what identifies it
# changes (its resource id: the frontend moving to the other cluster, or a name), so the
# replacement is always a different object: it can exist first, and the service is never
# left without its bounds and policies while the old ones go.
REPLACE_FIRST = TerraformResourceLifecycle(create_before_destroy=True)


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
        services: dict[str, ScaledService],
        frontend: str,
        frontend_cpu_target_percent: int,
        frontend_requests_per_target: int,
        request_count_resource_label: str,
        working_hours: WorkingHours | None,
    ) -> None:
        super().__init__(scope, id_)
        self.resource_ids: dict[str, str] = {}
        targets = {}
        for short_name, service in services.items():
            target = appautoscaling_target.AppautoscalingTarget(
                self,
                f"{short_name}-target",
                service_namespace="ecs",
                scalable_dimension="ecs:service:DesiredCount",
                resource_id=f"service/{service.cluster_name}/{service.service_name}",
                min_capacity=service.min_count,
                max_capacity=service.max_count,
                lifecycle=REPLACE_FIRST,
            )
            targets[short_name] = target
            self.resource_ids[short_name] = target.resource_id

        front = targets[frontend]
        for metric, value, label in (
            ("ECSServiceAverageCPUUtilization", frontend_cpu_target_percent, None),
            ("ALBRequestCountPerTarget", frontend_requests_per_target, request_count_resource_label),
        ):
            appautoscaling_policy.AppautoscalingPolicy(
                self,
                f"{frontend}-{metric}",
                name=f"{name}-{frontend}-{metric}",
                policy_type="TargetTrackingScaling",
                service_namespace=front.service_namespace,
                scalable_dimension=front.scalable_dimension,
                resource_id=front.resource_id,
                target_tracking_scaling_policy_configuration={
                    "target_value": value,
                    "scale_in_cooldown": 300,
                    "scale_out_cooldown": 60,
                    "predefined_metric_specification": {"predefined_metric_type": metric, "resource_label": label},
                },
                lifecycle=REPLACE_FIRST,
            )

        if working_hours is None:
            return
        for short_name, target in targets.items():
            service = services[short_name]
            for action, schedule, bounds in (
                ("scale-down", working_hours.scale_down, (0, 0)),
                ("scale-up", working_hours.scale_up, (service.min_count, service.max_count)),
            ):
                appautoscaling_scheduled_action.AppautoscalingScheduledAction(
                    self,
                    f"{short_name}-{action}",
                    name=f"{name}-{short_name}-{action}",
                    service_namespace=target.service_namespace,
                    scalable_dimension=target.scalable_dimension,
                    resource_id=target.resource_id,
                    schedule=schedule,
                    timezone=working_hours.timezone,
                    scalable_target_action={"min_capacity": str(bounds[0]), "max_capacity": str(bounds[1])},
                    lifecycle=REPLACE_FIRST,
                )
