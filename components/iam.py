"""IAM: the task execution role, task roles per family, and the GPU instances' role and profile."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cdktf import ITerraformDependable
from constructs import Construct

from components.account import Account
from components.aws import iam_instance_profile, iam_role, iam_role_policy, iam_role_policy_attachment
from components.policy import assume_role_policy, policy_document, statement


class ExecutionRole:
    """The role ECS uses to start tasks: pull images, write logs, and read the secrets it was granted.

    Attributes: arn.
    """

    def __init__(self, owner: Iam, *, name: str, account: Account, secrets_kms_key_arn: str | None) -> None:
        self._owner = owner
        self._name = name
        self._account = account
        self._secrets_kms_key_arn = secrets_kms_key_arn
        role = iam_role.IamRole(
            owner,
            "execution",
            name=f"{name}-task-execution",
            assume_role_policy=assume_role_policy("ecs-tasks.amazonaws.com", source_account=account.account_id),
        )
        self._role = role
        self.arn: str = role.arn
        self._managed = iam_role_policy_attachment.IamRolePolicyAttachment(
            owner,
            "execution-managed",
            role=role.name,
            policy_arn=f"{owner.managed_policy_prefix}/service-role/AmazonECSTaskExecutionRolePolicy",
        )
        self._secret_arns: set[str] = set()
        self._secrets_policy: iam_role_policy.IamRolePolicy | None = None

    def grant_read_secrets(self, secret_arns: Iterable[str]) -> list[ITerraformDependable]:
        """Lets the role read exactly these secrets (and those granted before); returns what a
        service using them must wait for.

        A service references only the role's ARN, which exists before its policies do:
        without an explicit dependency a task can start (and fail to pull its image or read
        its secrets) before a policy added in the same apply is attached.
        """
        granted = set(secret_arns)
        if not granted:
            return [self._managed]
        self._secret_arns.update(granted)
        document = policy_document(
            statement(action="secretsmanager:GetSecretValue", resource=sorted(self._secret_arns)),
            *self._decrypt_through_secrets_manager(),
        )
        if self._secrets_policy is None:
            self._secrets_policy = iam_role_policy.IamRolePolicy(
                self._owner, "execution-secrets", name=f"{self._name}-read-secrets", role=self._role.id, policy=document
            )
        else:
            self._secrets_policy.policy = document
        return [self._managed, self._secrets_policy]

    def _decrypt_through_secrets_manager(self) -> list[dict[str, object]]:
        """Secrets under a customer-managed key also need kms:Decrypt, but only when Secrets Manager asks."""
        if self._secrets_kms_key_arn is None:
            return []
        via_secrets_manager = f"secretsmanager.{self._account.region}.amazonaws.com"
        return [
            statement(
                action="kms:Decrypt",
                resource=self._secrets_kms_key_arn,
                condition={"StringEquals": {"kms:ViaService": via_secrets_manager}},
            )
        ]


@dataclass(frozen=True)
class TaskRoles:
    """The two roles of an ECS task: ``execution`` starts it, the task role is what its code runs as."""

    execution: ExecutionRole
    family: str
    task_role_arn: str
    task_role_name: str


class Iam(Construct):
    """Roles for ECS and the GPU instances.

    Task roles are made per task family on first use (``roles_for``) and carry no permission
    beyond their identity until a feature grants one where it is wired (the etcd members'
    EFS data: components/etcd_data.py).

    Attributes:
        execution: the ExecutionRole every task shares.
        instance_profile_name, instance_profile_arn: for the GPU launch template (ECS agent + SSM).
    """

    def __init__(
        self, scope: Construct, id_: str, *, name: str, account: Account, secrets_kms_key_arn: str | None
    ) -> None:
        super().__init__(scope, id_)
        self._name = name
        self._account = account
        self.managed_policy_prefix = f"arn:{account.partition}:iam::aws:policy"
        self.execution = ExecutionRole(self, name=name, account=account, secrets_kms_key_arn=secrets_kms_key_arn)
        self._task_roles: dict[str, TaskRoles] = {}

        instance = iam_role.IamRole(
            self, "instance", name=f"{name}-gpu-instance", assume_role_policy=assume_role_policy("ec2.amazonaws.com")
        )
        for policy in ("service-role/AmazonEC2ContainerServiceforEC2Role", "AmazonSSMManagedInstanceCore"):
            iam_role_policy_attachment.IamRolePolicyAttachment(
                self,
                f"instance-{policy.rsplit('/', 1)[-1]}",
                role=instance.name,
                policy_arn=f"{self.managed_policy_prefix}/{policy}",
            )
        profile = iam_instance_profile.IamInstanceProfile(
            self, "instance-profile", name=f"{name}-gpu-instance", role=instance.name
        )
        self.instance_profile_name: str = profile.name
        self.instance_profile_arn: str = profile.arn

    def roles_for(self, family: str) -> TaskRoles:
        """The execution role and the task role of one task family (``frontend``, ``workers``,
        ``control-plane``, ``gpu-metrics``)."""
        if family not in self._task_roles:
            role = iam_role.IamRole(
                self,
                f"task-{family}",
                name=f"{self._name}-{family}-task",
                assume_role_policy=assume_role_policy(
                    "ecs-tasks.amazonaws.com", source_account=self._account.account_id
                ),
            )
            self._task_roles[family] = TaskRoles(self.execution, family, role.arn, role.name)
        return self._task_roles[family]
