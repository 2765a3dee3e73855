"""CloudWatch: a KMS key, log groups with retention, an alarm topic and alarms."""

from __future__ import annotations

import json

from constructs import Construct

from components.account import Account
from components.aws import cloudwatch_log_group, cloudwatch_metric_alarm, kms_alias, kms_key, sns_topic


class LogGroups(Construct):
    """A customer-managed KMS key and one encrypted log group per name.

    Attributes:
        key_arn: the key, also used by the alarm topic and the etcd data file system.
        names: log group name per short name (e.g. ``names["decode"]``).
        arns: log group ARN per short name.
    """

    def __init__(
        self, scope: Construct, id_: str, *, name: str, account: Account, retention_days: int, streams: list[str]
    ) -> None:
        super().__init__(scope, id_)
        key = kms_key.KmsKey(
            self,
            "key",
            description=f"{name}: CloudWatch Logs, alarm notifications and etcd data",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=json.dumps(_key_policy(account, name)),
        )
        kms_alias.KmsAlias(self, "alias", name=f"alias/{name}-observability", target_key_id=key.key_id)
        self.key_arn: str = key.arn
        self.names: dict[str, str] = {}
        self.arns: dict[str, str] = {}
        for stream in streams:
            group = cloudwatch_log_group.CloudwatchLogGroup(
                self,
                stream,
                name=f"/ecs/{name}/{stream}",
                retention_in_days=retention_days,
                kms_key_id=key.arn,
            )
            self.names[stream] = group.name
            self.arns[stream] = group.arn


def _key_policy(account: Account, name: str) -> dict:
    root = f"arn:{account.partition}:iam::{account.account_id}:root"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AccountAdministers",
                "Effect": "Allow",
                "Principal": {"AWS": root},
                "Action": "kms:*",
                "Resource": "*",
            },
            {
                "Sid": "CloudWatchLogsEncryptsThisEnvironmentsGroups",
                "Effect": "Allow",
                "Principal": {"Service": f"logs.{account.region}.{account.dns_suffix}"},
                "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                "Resource": "*",
                "Condition": {
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": (
                            f"arn:{account.partition}:logs:{account.region}:{account.account_id}:log-group:/ecs/{name}/*"
                        )
                    }
                },
            },
            {
                "Sid": "CloudWatchAlarmsPublishToTheEncryptedTopic",
                "Effect": "Allow",
                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:SourceAccount": account.account_id}},
            },
        ],
    }


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
        topic_arn: str | None,
        key_arn: str,
        load_balancer_arn_suffix: str,
        target_group_arn_suffix: str,
        services: dict[str, tuple[str, str]],
        etcd_cluster_name: str,
        etcd_service_names: list[str],
    ) -> None:
        """``services`` maps a short name to (cluster name, service name); ``etcd_service_names``: one per member."""
        super().__init__(scope, id_)
        if topic_arn is None:
            topic_arn = sns_topic.SnsTopic(self, "topic", name=f"{name}-alarms", kms_master_key_id=key_arn).arn
        self.topic_arn: str = topic_arn
        common = {
            "alarm_actions": [topic_arn],
            "ok_actions": [topic_arn],
            "treat_missing_data": "notBreaching",
        }
        balancer = {"LoadBalancer": load_balancer_arn_suffix}
        cloudwatch_metric_alarm.CloudwatchMetricAlarm(
            self,
            "alb-5xx",
            alarm_name=f"{name}-alb-5xx",
            alarm_description="The load balancer or the frontends answered 5xx more than 10 times in 5 minutes.",
            comparison_operator="GreaterThanThreshold",
            threshold=10,
            evaluation_periods=1,
            metric_query=[
                cloudwatch_metric_alarm.CloudwatchMetricAlarmMetricQuery(
                    id="errors", expression="elb + target", label="5xx responses", return_data=True
                ),
                _metric_query("elb", "HTTPCode_ELB_5XX_Count", balancer),
                _metric_query("target", "HTTPCode_Target_5XX_Count", balancer),
            ],
            **common,
        )
        cloudwatch_metric_alarm.CloudwatchMetricAlarm(
            self,
            "unhealthy-targets",
            alarm_name=f"{name}-unhealthy-targets",
            alarm_description="A frontend target failed the ALB health check (/health) for 5 minutes.",
            namespace="AWS/ApplicationELB",
            metric_name="UnHealthyHostCount",
            dimensions={**balancer, "TargetGroup": target_group_arn_suffix},
            statistic="Maximum",
            period=60,
            evaluation_periods=5,
            comparison_operator="GreaterThanThreshold",
            threshold=0,
            **common,
        )
        for short_name, (cluster_name, service_name) in services.items():
            dimensions = {"ClusterName": cluster_name, "ServiceName": service_name}
            cloudwatch_metric_alarm.CloudwatchMetricAlarm(
                self,
                f"{short_name}-below-desired",
                alarm_name=f"{name}-{short_name}-below-desired",
                alarm_description=(
                    f"{short_name}: fewer tasks running than desired for 15 minutes (Container Insights)."
                ),
                comparison_operator="GreaterThanThreshold",
                threshold=0,
                evaluation_periods=3,
                metric_query=[
                    cloudwatch_metric_alarm.CloudwatchMetricAlarmMetricQuery(
                        id="missing", expression="desired - running", label="tasks missing", return_data=True
                    ),
                    _metric_query("desired", "DesiredTaskCount", dimensions, namespace="ECS/ContainerInsights"),
                    _metric_query("running", "RunningTaskCount", dimensions, namespace="ECS/ContainerInsights"),
                ],
                **common,
            )

        # Quorum + 1: one more lost member would stop every Dynamo process. With three
        # members that is any member missing; with one, etcd down. Five minutes: a member
        # replaced by Fargate is back in one or two.
        members = len(etcd_service_names)
        threshold = min(members, members // 2 + 2)
        running = [f"m{index}" for index in range(members)]
        cloudwatch_metric_alarm.CloudwatchMetricAlarm(
            self,
            "etcd-below-quorum-plus-one",
            alarm_name=f"{name}-etcd-below-quorum-plus-one",
            alarm_description=(
                f"etcd: fewer than {threshold} of {members} members running for 5 minutes; one more lost member stops "
                "every Dynamo process (Container Insights)."
                if members > 1
                else (
                    "etcd: its only member not running for 5 minutes; "
                    "every Dynamo process stops without it (Container Insights)."
                )
            ),
            comparison_operator="LessThanThreshold",
            threshold=threshold,
            evaluation_periods=5,
            metric_query=[
                # A member without a data point counts as not running.
                cloudwatch_metric_alarm.CloudwatchMetricAlarmMetricQuery(
                    id="members",
                    expression=" + ".join(f"FILL({query_id}, 0)" for query_id in running),
                    label="etcd members running",
                    return_data=True,
                ),
                *(
                    _metric_query(
                        query_id,
                        "RunningTaskCount",
                        {"ClusterName": etcd_cluster_name, "ServiceName": service_name},
                        namespace="ECS/ContainerInsights",
                        period=60,
                    )
                    for query_id, service_name in zip(running, etcd_service_names, strict=True)
                ),
            ],
            **common,
        )


def _metric_query(
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
