"""NVIDIA's DCGM exporter on every GPU instance, with a collector publishing GPU utilization
and memory into the environment's metrics."""

from __future__ import annotations

import json

from cdktf import TerraformResourceLifecycle
from constructs import Construct

from components.aws import ecs_service, ecs_task_definition
from components.container import Container
from components.iam import TaskRoles
from components.logs import LogGroups
from components.metrics import Metrics, Scrape
from components.service import Cluster
from environments.schema import DCGM_EXPORTER_CPU_UNITS, DCGM_EXPORTER_MEMORY_MIB, MetricsConfig

EXPORTER = "dcgm-exporter"
EXPORTER_PORT = 9400  # DCGM_EXPORTER_LISTEN's default
# A hard limit twice what it reserves: a leak stops the exporter, not the instance's workers.
EXPORTER_MEMORY_LIMIT_MIB = 2 * DCGM_EXPORTER_MEMORY_MIB


class GpuMetrics(Construct):
    """A daemon service on the GPU cluster: one DCGM exporter and its collector per instance.

    The exporter reserves no GPU (a reservation would take GPUs from the workers), so it sees
    the GPUs only because the GPU instances make NVIDIA's runtime Docker's default
    (components/gpu_cluster.py, user_data) and it asks for every device. It needs no extra
    capability for utilization and memory (CAP_SYS_ADMIN is for the profiling fields only,
    which it then skips with a warning: dcgm-exporter's docker/Dockerfile). Bridge networking:
    no network interface of the instance's few is used (awsvpc would take one per instance),
    the collector reaches the exporter by link, and nothing listens on the instance's address.

    Attributes: service_name.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        config: MetricsConfig,
        cluster: Cluster,
        roles: TaskRoles,
        metrics: Metrics,
        logs: LogGroups,
    ) -> None:
        super().__init__(scope, id_)
        exporter = Container(
            name=EXPORTER,
            image=config.dcgm_exporter_image,
            command=[],
            environment={
                "NVIDIA_VISIBLE_DEVICES": "all",
                "NVIDIA_DRIVER_CAPABILITIES": "utility",
                "DCGM_EXPORTER_LISTEN": f":{EXPORTER_PORT}",
            },
            logs=logs.group("gpu-metrics"),
            cpu=DCGM_EXPORTER_CPU_UNITS,
            memory_reservation=DCGM_EXPORTER_MEMORY_MIB,
            memory=EXPORTER_MEMORY_LIMIT_MIB,
        )
        collector = metrics.collector(scrape=Scrape("gpu", EXPORTER, EXPORTER_PORT), roles=roles, logs=exporter.logs)
        task = ecs_task_definition.EcsTaskDefinition(
            self,
            "task",
            family=f"{name}-gpu-metrics",
            network_mode="bridge",
            requires_compatibilities=["EC2"],
            execution_role_arn=roles.execution.arn,
            task_role_arn=roles.task_role_arn,
            container_definitions=json.dumps([exporter.definition(), collector.definition()]),
            runtime_platform={"operating_system_family": "LINUX", "cpu_architecture": "X86_64"},
            # As every task definition here (components/service.py): revisions stay registered.
            skip_destroy=True,
            lifecycle=TerraformResourceLifecycle(create_before_destroy=True),
        )
        service = ecs_service.EcsService(
            self,
            "service",
            name=f"{name}-gpu-metrics",
            cluster=cluster.cluster_arn,
            task_definition=task.arn,
            scheduling_strategy="DAEMON",
            # A daemon service takes no capacity provider strategy; it runs wherever the GPU
            # capacity provider has put an instance.
            launch_type="EC2",
            enable_ecs_managed_tags=True,
            propagate_tags="SERVICE",
            depends_on=roles.execution.grant_read_secrets([]),
        )
        self.service_name: str = service.name
