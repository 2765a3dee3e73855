"""CloudWatch Logs: the environment's KMS key and a log group per part that logs."""

from __future__ import annotations

from dataclasses import dataclass

from constructs import Construct

from components.account import Account
from components.aws import cloudwatch_log_group, kms_alias, kms_key
from components.policy import policy_document, statement


@dataclass(frozen=True)
class LogGroup:
    """One encrypted log group, and the region its awslogs driver writes to."""

    name: str
    arn: str
    region: str


class LogGroups(Construct):
    """A customer-managed KMS key, and one encrypted log group per part that asks for one (``group``).

    Attributes:
        key_arn: the key, also used by the alarm topic and the etcd data file system.
        names: log group name per short name, in the order they were asked for.
    """

    def __init__(
        self, scope: Construct, id_: str, *, name: str, region: str, account: Account, retention_days: int
    ) -> None:
        super().__init__(scope, id_)
        self._name = name
        self._region = region
        self._retention_days = retention_days
        key = kms_key.KmsKey(
            self,
            "key",
            description=f"{name}: CloudWatch Logs, alarm notifications and etcd data",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=_key_policy(account, name),
        )
        kms_alias.KmsAlias(self, "alias", name=f"alias/{name}-observability", target_key_id=key.key_id)
        self.key_arn: str = key.arn
        self._groups: dict[str, LogGroup] = {}

    def group(self, short_name: str) -> LogGroup:
        """The log group ``/ecs/<stack>/<short_name>``, made on first use."""
        if short_name not in self._groups:
            group = cloudwatch_log_group.CloudwatchLogGroup(
                self,
                short_name,
                name=f"/ecs/{self._name}/{short_name}",
                retention_in_days=self._retention_days,
                kms_key_id=self.key_arn,
            )
            self._groups[short_name] = LogGroup(group.name, group.arn, self._region)
        return self._groups[short_name]

    @property
    def names(self) -> dict[str, str]:
        return {short_name: group.name for short_name, group in self._groups.items()}


def _key_policy(account: Account, name: str) -> str:
    root = f"arn:{account.partition}:iam::{account.account_id}:root"
    log_groups = f"arn:{account.partition}:logs:{account.region}:{account.account_id}:log-group:/ecs/{name}/*"
    return policy_document(
        statement(sid="AccountAdministers", principal={"AWS": root}, action="kms:*", resource="*"),
        statement(
            sid="CloudWatchLogsEncryptsThisEnvironmentsGroups",
            principal={"Service": f"logs.{account.region}.{account.dns_suffix}"},
            action=["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
            resource="*",
            condition={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": log_groups}},
        ),
        statement(
            sid="CloudWatchAlarmsPublishToTheEncryptedTopic",
            principal={"Service": "cloudwatch.amazonaws.com"},
            action=["kms:Decrypt", "kms:GenerateDataKey*"],
            resource="*",
            condition={"StringEquals": {"aws:SourceAccount": account.account_id}},
        ),
    )
