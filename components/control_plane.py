"""etcd and NATS on Fargate, registered in Cloud Map: Dynamo's discovery and event planes.

Each is a single task: Dynamo keeps only leases and transient events there, which the
workers re-create when etcd or NATS restarts; a restart costs seconds of routing, not data.
"""
from __future__ import annotations

from typing import Sequence

from cdktf import ITerraformDependable
from constructs import Construct

from components.aws import ecs_task_definition
from components.container import container_definition
from components.security_groups import ETCD_PORT, NATS_PORT
from components.service import TaskService

NATS_MONITOR_PORT = 8222
DATA_VOLUME = "data"


class ControlPlane(Construct):
    """Attributes: etcd_endpoint (http://etcd.<ns>:2379), nats_server (nats://nats.<ns>:4222), service_names."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        region: str,
        cluster_arn: str,
        etcd_image: str,
        etcd_cpu: int,
        etcd_memory: int,
        nats_image: str,
        nats_cpu: int,
        nats_memory: int,
        etcd_hostname: str,
        nats_hostname: str,
        etcd_registry_arn: str,
        nats_registry_arn: str,
        log_groups: dict[str, str],
        execution_role_arn: str,
        task_role_arn: str,
        subnet_ids: list[str],
        security_group_id: str,
        needs: Sequence[ITerraformDependable],
    ) -> None:
        super().__init__(scope, id_)
        self.etcd_endpoint: str = f"http://{etcd_hostname}:{ETCD_PORT}"
        self.nats_server: str = f"nats://{nats_hostname}:{NATS_PORT}"
        common = {
            "cluster_arn": cluster_arn,
            "execution_role_arn": execution_role_arn,
            "task_role_arn": task_role_arn,
            "subnet_ids": subnet_ids,
            "security_group_ids": [security_group_id],
            "desired_count": 1,
            # A single member: stop the old task before starting the new one, so two
            # instances never answer on the same DNS name with different state.
            "minimum_healthy_percent": 0,
            "maximum_percent": 100,
            "volumes": [ecs_task_definition.EcsTaskDefinitionVolume(name=DATA_VOLUME)],
            "needs": needs,
        }
        mount = [{"sourceVolume": DATA_VOLUME, "containerPath": "/data", "readOnly": False}]
        etcd = TaskService(
            self,
            "etcd",
            name=f"{name}-etcd",
            cpu=etcd_cpu,
            memory=etcd_memory,
            service_registry_arn=etcd_registry_arn,
            container=container_definition(
                name="etcd",
                image=etcd_image,
                # The upstream image is distroless: no shell, no entrypoint.
                command=[
                    "/usr/local/bin/etcd",
                    "--name=etcd",
                    "--data-dir=/data/etcd",
                    f"--listen-client-urls=http://0.0.0.0:{ETCD_PORT}",
                    f"--advertise-client-urls={self.etcd_endpoint}",
                    "--listen-peer-urls=http://127.0.0.1:2380",
                    "--initial-advertise-peer-urls=http://127.0.0.1:2380",
                    "--initial-cluster=etcd=http://127.0.0.1:2380",
                    "--auto-compaction-retention=1",
                ],
                ports=[ETCD_PORT],
                log_group=log_groups["etcd"],
                region=region,
                readonly_root_filesystem=True,
                mount_points=mount,
                health_check={
                    "command": ["CMD", "/usr/local/bin/etcdctl", f"--endpoints=http://127.0.0.1:{ETCD_PORT}", "endpoint", "health"],
                    "interval": 15,
                    "timeout": 5,
                    "retries": 3,
                    "startPeriod": 30,
                },
            ),
            **common,
        )
        nats = TaskService(
            self,
            "nats",
            name=f"{name}-nats",
            cpu=nats_cpu,
            memory=nats_memory,
            service_registry_arn=nats_registry_arn,
            container=container_definition(
                name="nats",
                image=nats_image,
                command=["nats-server", "-js", "-sd", "/data/jetstream", "-p", str(NATS_PORT), "-m", str(NATS_MONITOR_PORT)],
                ports=[NATS_PORT],
                log_group=log_groups["nats"],
                region=region,
                readonly_root_filesystem=True,
                mount_points=mount,
                health_check={
                    "command": ["CMD-SHELL", f"wget -q -O /dev/null http://127.0.0.1:{NATS_MONITOR_PORT}/healthz || exit 1"],
                    "interval": 15,
                    "timeout": 5,
                    "retries": 3,
                    "startPeriod": 15,
                },
            ),
            **common,
        )
        self.service_names: dict[str, str] = {"etcd": etcd.service_name, "nats": nats.service_name}
