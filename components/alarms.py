"""CloudWatch alarms to the environment's SNS topic: the load balancer, every service, etcd's quorum."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from constructs import Construct

from components.aws import cloudwatch_metric_alarm, sns_topic
from components.load_balancer import LoadBalancer
from components.service import TaskService
from environments.schema import LoggingConfig

# A burst of 5xx is worth a page only when it is more than a handful of failed requests.
ALB_5XX_PER_5_MINUTES = 10
# Unhealthy frontends and missing tasks: long enough to ride out a rollout or a replaced task.
UNHEALTHY_TARGET_MINUTES = 5
BELOW_DESIRED_PERIODS = 3  # of 5 minutes: a GPU worker loading its model takes up to ~10
# A member replaced by Fargate is back in one or two minutes.
ETCD_BELOW_QUORUM_PLUS_ONE_MINUTES = 5


class Alarms(Construct):
    """Alarms on the ALB (5xx, unhealthy targets), on every ECS service below its desired count
    (NATS down included: one task, desired 1) and on etcd members below quorum + 1.

    Attributes:
        topic_arn: where alarms notify (the configured topic or a new encrypted one).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        config: LoggingConfig,
        key_arn: str,
        balancer: LoadBalancer,
        services: Mapping[str, TaskService],
        etcd_members: Sequence[TaskService],
    ) -> None:
        """``services``: every service by short name; ``etcd_members``: the members' services, in member order."""
        super().__init__(scope, id_)
        topic_arn = config.alarm_topic_arn
        if topic_arn is None:
            topic_arn = sns_topic.SnsTopic(self, "topic", name=f"{name}-alarms", kms_master_key_id=key_arn).arn
        self.topic_arn: str = topic_arn
        self._name = name
        self._common = {"alarm_actions": [topic_arn], "ok_actions": [topic_arn], "treat_missing_data": "notBreaching"}
        self._load_balancer(balancer)
        for short_name, service in services.items():
            self._below_desired(short_name, service)
        self._etcd_quorum(etcd_members)

    def _load_balancer(self, balancer: LoadBalancer) -> None:
        dimensions = {"LoadBalancer": balancer.arn_suffix}
        cloudwatch_metric_alarm.CloudwatchMetricAlarm(
            self,
            "alb-5xx",
            alarm_name=f"{self._name}-alb-5xx",
            alarm_description=(
                f"The load balancer or the frontends answered 5xx more than {ALB_5XX_PER_5_MINUTES} times in 5 minutes."
            ),
            comparison_operator="GreaterThanThreshold",
            threshold=ALB_5XX_PER_5_MINUTES,
            evaluation_periods=1,
            metric_query=[
                cloudwatch_metric_alarm.CloudwatchMetricAlarmMetricQuery(
                    id="errors", expression="elb + target", label="5xx responses", return_data=True
                ),
                metric_query("elb", "HTTPCode_ELB_5XX_Count", dimensions),
                metric_query("target", "HTTPCode_Target_5XX_Count", dimensions),
            ],
            **self._common,
        )
        cloudwatch_metric_alarm.CloudwatchMetricAlarm(
            self,
            "unhealthy-targets",
            alarm_name=f"{self._name}-unhealthy-targets",
            alarm_description=(
                f"A frontend target failed the ALB health check (/health) for {UNHEALTHY_TARGET_MINUTES} minutes."
            ),
            namespace="AWS/ApplicationELB",
            metric_name="UnHealthyHostCount",
            dimensions={**dimensions, "TargetGroup": balancer.target.target_group_arn_suffix},
            statistic="Maximum",
            period=60,
            evaluation_periods=UNHEALTHY_TARGET_MINUTES,
            comparison_operator="GreaterThanThreshold",
            threshold=0,
            **self._common,
        )

    def _below_desired(self, short_name: str, service: TaskService) -> None:
        dimensions = {"ClusterName": service.cluster_name, "ServiceName": service.service_name}
        minutes = BELOW_DESIRED_PERIODS * 5
        cloudwatch_metric_alarm.CloudwatchMetricAlarm(
            self,
            f"{short_name}-below-desired",
            alarm_name=f"{self._name}-{short_name}-below-desired",
            alarm_description=(
                f"{short_name}: fewer tasks running than desired for {minutes} minutes (Container Insights)."
            ),
            comparison_operator="GreaterThanThreshold",
            threshold=0,
            evaluation_periods=BELOW_DESIRED_PERIODS,
            metric_query=[
                cloudwatch_metric_alarm.CloudwatchMetricAlarmMetricQuery(
                    id="missing", expression="desired - running", label="tasks missing", return_data=True
                ),
                metric_query("desired", "DesiredTaskCount", dimensions, namespace="ECS/ContainerInsights"),
                metric_query("running", "RunningTaskCount", dimensions, namespace="ECS/ContainerInsights"),
            ],
            **self._common,
        )

    def _etcd_quorum(self, etcd_members: Sequence[TaskService]) -> None:
        """Quorum + 1: one more lost member would stop every Dynamo process. With three
        members that is any member missing; with one, etcd down."""
        members = len(etcd_members)
        threshold = min(members, members // 2 + 2)
        running = [f"m{index}" for index in range(members)]
        minutes = ETCD_BELOW_QUORUM_PLUS_ONE_MINUTES
        cloudwatch_metric_alarm.CloudwatchMetricAlarm(
            self,
            "etcd-below-quorum-plus-one",
            alarm_name=f"{self._name}-etcd-below-quorum-plus-one",
            alarm_description=(
                f"etcd: fewer than {threshold} of {members} members running for {minutes} minutes; "
                "one more lost member stops every Dynamo process (Container Insights)."
                if members > 1
                else (
                    f"etcd: its only member not running for {minutes} minutes; "
                    "every Dynamo process stops without it (Container Insights)."
                )
            ),
            comparison_operator="LessThanThreshold",
            threshold=threshold,
            evaluation_periods=minutes,
            metric_query=[
                # A member without a data point counts as not running.
                cloudwatch_metric_alarm.CloudwatchMetricAlarmMetricQuery(
                    id="members",
                    expression=" + ".join(f"FILL({query_id}, 0)" for query_id in running),
                    label="etcd members running",
                    return_data=True,
                ),
                *(
                    metric_query(
                        query_id,
                        "RunningTaskCount",
                        {"ClusterName": member.cluster_name, "ServiceName": member.service_name},
                        namespace="ECS/ContainerInsights",
                        period=60,
                    )
                    for query_id, member in zip(running, etcd_members, strict=True)
                ),
            ],
            **self._common,
        )


def metric_query(
    query_id: str, metric: str, dimensions: dict[str, str], *, namespace: str = "AWS/ApplicationELB", period: int = 300
) -> cloudwatch_metric_alarm.CloudwatchMetricAlarmMetricQuery:
    statistic = "Sum" if namespace == "AWS/ApplicationELB" else "Average"
    return cloudwatch_metric_alarm.CloudwatchMetricAlarmMetricQuery(
        id=query_id,
        metric={
            "namespace": namespace,
            "metric_name": metric,
            "dimensions": dimensions,
            "period": period,
            "stat": statistic,
        },
    )
