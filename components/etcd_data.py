"""Persistent data for the etcd members: one encrypted EFS file system, a directory per member.

A replaced etcd task must come back as the same member with the same data, or the cluster
has to be reconfigured by hand (see components/control_plane.py). Fargate's task storage
dies with the task, so each member's ``--data-dir`` lives on EFS: regional (it survives the
loss of an AZ, like the members spread over the AZs), a mount target in every private
subnet, and an access point per member that pins it to its own directory ``/etcd-<i>``.

Why EFS: it is the only storage a Fargate task can take over from the task it replaces (an
EBS volume is created for each new task, empty or from a snapshot, and never handed on). The
cost is latency: etcd fsyncs every write and NFS adds milliseconds to each. Dynamo keeps
registrations and leases in etcd: small, infrequent writes (etcd does not write lease
renewals to disk; KV events go through NATS), which should keep that latency off the serving
path. It is not measured yet (the twin runs etcd on local disk).
"""

from __future__ import annotations

from cdktf import ITerraformDependable
from constructs import Construct

from components.aws import efs_access_point, efs_file_system, efs_file_system_policy, efs_mount_target, iam_role_policy
from components.iam import TaskRoles
from components.policy import policy_document, statement
from components.security_groups import SecurityGroup

# The upstream etcd image has no USER: etcd runs as root, and the access point writes as
# root too, so files keep one owner whatever the container's user.
ROOT = 0
CLIENT_ACTIONS = [
    "elasticfilesystem:ClientMount",
    "elasticfilesystem:ClientWrite",
    "elasticfilesystem:ClientRootAccess",
]


class EtcdData(Construct):
    """Attributes:
    file_system_id, file_system_arn: the file system.
    access_point_ids, access_point_arns: one per member, in member order.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        members: int,
        kms_key_arn: str,
        subnet_ids: list[str],
        security_group: SecurityGroup,
    ) -> None:
        super().__init__(scope, id_)
        self._name = name
        file_system = efs_file_system.EfsFileSystem(
            self,
            "file-system",
            creation_token=f"{name}-etcd",
            encrypted=True,
            kms_key_id=kms_key_arn,
            performance_mode="generalPurpose",
            # Pay per byte moved instead of earning burst credits by the byte stored: the
            # file system holds a few MB, so its bursting baseline would be a trickle.
            throughput_mode="elastic",
            tags={"Name": f"{name}-etcd"},
        )
        self.file_system_id: str = file_system.id
        self.file_system_arn: str = file_system.arn
        self._mount_targets = [
            efs_mount_target.EfsMountTarget(
                self,
                f"mount-target-{index}",
                file_system_id=file_system.id,
                subnet_id=subnet_id,
                security_groups=[security_group.id],
            )
            for index, subnet_id in enumerate(subnet_ids)
        ]
        self.access_point_ids: list[str] = []
        self.access_point_arns: list[str] = []
        for index in range(members):
            access_point = efs_access_point.EfsAccessPoint(
                self,
                f"etcd-{index}",
                file_system_id=file_system.id,
                root_directory={
                    "path": f"/etcd-{index}",
                    "creation_info": {"owner_uid": ROOT, "owner_gid": ROOT, "permissions": "0700"},
                },
                posix_user={"uid": ROOT, "gid": ROOT},
                tags={"Name": f"{name}-etcd-{index}"},
            )
            self.access_point_ids.append(access_point.id)
            self.access_point_arns.append(access_point.arn)

        # Any file system policy replaces EFS's default one, which lets every client that
        # reaches a mount target in, unauthenticated. With this one, only IAM principals
        # granted access (grant_mount) mount, and only over TLS.
        self._policy = efs_file_system_policy.EfsFileSystemPolicy(
            self,
            "policy",
            file_system_id=file_system.id,
            policy=policy_document(
                statement(
                    sid="TlsOnly",
                    effect="Deny",
                    principal={"AWS": "*"},
                    action=CLIENT_ACTIONS,
                    resource=file_system.arn,
                    condition={"Bool": {"aws:SecureTransport": "false"}},
                )
            ),
        )

    def grant_mount(self, roles: TaskRoles) -> list[ITerraformDependable]:
        """Lets tasks of that role mount the members' directories; returns what must exist
        before such a task mounts (mount targets, the file system policy, this grant): nothing
        in a task definition refers to them, and tasks that fail to mount would trip the
        deployment circuit breaker."""
        # ClientRootAccess too: an access point whose POSIX user is root needs it, or EFS
        # squashes the member's writes to nobody and etcd cannot write its own directory
        # ("Enforcing a user identity using an access point", Amazon EFS User Guide).
        grant = iam_role_policy.IamRolePolicy(
            self,
            "task-role",
            name=f"{self._name}-etcd-data",
            role=roles.task_role_name,
            policy=policy_document(
                statement(
                    action=CLIENT_ACTIONS,
                    resource=self.file_system_arn,
                    condition={"StringEquals": {"elasticfilesystem:AccessPointArn": self.access_point_arns}},
                )
            ),
        )
        return [*self._mount_targets, self._policy, grant]
