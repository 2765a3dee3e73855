"""IAM: task execution role, task roles, and the GPU instances' role and profile."""

from __future__ import annotations

import json

from cdktf import ITerraformDependable
from constructs import Construct

from components.account import Account
from components.aws import iam_instance_profile, iam_role, iam_role_policy, iam_role_policy_attachment


def _assume(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
        }
    )


def _ecs_tasks_assume(account: Account) -> str:
    """ecs-tasks may assume the role only for tasks of this account (confused-deputy guard)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                    "Condition": {"StringEquals": {"aws:SourceAccount": account.account_id}},
                }
            ],
        }
    )


def _decrypt_through_secrets_manager(key_arn: str | None, account: Account) -> list[dict]:
    """Secrets under a customer-managed key also need kms:Decrypt, but only when Secrets Manager asks."""
    if key_arn is None:
        return []
    return [
        {
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": key_arn,
            "Condition": {"StringEquals": {"kms:ViaService": f"secretsmanager.{account.region}.amazonaws.com"}},
        }
    ]


class Iam(Construct):
    """Roles for ECS and the GPU instances.

    Attributes:
        execution_role_arn: pulls images, writes logs, reads exactly the configured secrets.
        execution_policies: what attaches that role's permissions; services wait for them.
        execution_managed_policy: the part without secrets (pull images, write logs).
        task_role_arns, task_role_names: per task family (frontend, workers, control-plane); no
            permissions beyond their identity until a feature needs one (the control plane's
            etcd members mount their EFS data, components/etcd_data.py).
        instance_profile_name: for the GPU launch template (ECS agent + SSM Session Manager).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        account: Account,
        secret_arns: list[str],
        secrets_kms_key_arn: str | None,
        task_families: list[str],
    ) -> None:
        super().__init__(scope, id_)
        managed = f"arn:{account.partition}:iam::aws:policy"
        execution = iam_role.IamRole(
            self, "execution", name=f"{name}-task-execution", assume_role_policy=_ecs_tasks_assume(account)
        )
        managed_policy = iam_role_policy_attachment.IamRolePolicyAttachment(
            self,
            "execution-managed",
            role=execution.name,
            policy_arn=f"{managed}/service-role/AmazonECSTaskExecutionRolePolicy",
        )
        # A service references only the role's ARN, which exists before its policies do:
        # without an explicit dependency a task can start (and fail to pull its image or
        # read its secrets) before a policy added in the same apply is attached.
        self.execution_managed_policy: ITerraformDependable = managed_policy
        self.execution_policies: list[ITerraformDependable] = [managed_policy]
        if secret_arns:
            secrets_policy = iam_role_policy.IamRolePolicy(
                self,
                "execution-secrets",
                name=f"{name}-read-secrets",
                role=execution.id,
                policy=json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Action": "secretsmanager:GetSecretValue",
                                "Resource": sorted(secret_arns),
                            },
                            *_decrypt_through_secrets_manager(secrets_kms_key_arn, account),
                        ],
                    }
                ),
            )
            self.execution_policies.append(secrets_policy)
        self.execution_role_arn: str = execution.arn

        self.task_role_arns: dict[str, str] = {}
        self.task_role_names: dict[str, str] = {}
        for family in task_families:
            role = iam_role.IamRole(
                self, f"task-{family}", name=f"{name}-{family}-task", assume_role_policy=_ecs_tasks_assume(account)
            )
            self.task_role_arns[family] = role.arn
            self.task_role_names[family] = role.name

        instance = iam_role.IamRole(
            self, "instance", name=f"{name}-gpu-instance", assume_role_policy=_assume("ec2.amazonaws.com")
        )
        for policy in ("service-role/AmazonEC2ContainerServiceforEC2Role", "AmazonSSMManagedInstanceCore"):
            iam_role_policy_attachment.IamRolePolicyAttachment(
                self, f"instance-{policy.rsplit('/', 1)[-1]}", role=instance.name, policy_arn=f"{managed}/{policy}"
            )
        profile = iam_instance_profile.IamInstanceProfile(
            self, "instance-profile", name=f"{name}-gpu-instance", role=instance.name
        )
        self.instance_profile_name: str = profile.name
        self.instance_profile_arn: str = profile.arn
