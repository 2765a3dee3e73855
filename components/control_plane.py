"""etcd and NATS on Fargate, registered in Cloud Map: Dynamo's discovery and event planes.

etcd is where Dynamo keeps its leases and registrations, and a Dynamo process that loses its
lease shuts itself down ("Runtime shutdown initiated"). Measured with Dynamo 1.2.1: with one
etcd task, every replacement of that task (Fargate retirement, a crash, any change to its
task definition, an AZ event) restarts every frontend and every GPU worker, which then
reloads its model. With a three-member cluster and ETCD_ENDPOINTS naming all three, killing
any one member (the leader too) fails no completion and stops no process; killing two
(quorum lost) stops every Dynamo process 5-10 s later. Hence ``control_plane.etcd_members``:
3 by default, 1 where cheap matters more (dev).

Each member ``etcd-<i>`` is its own ECS service of one task:
- its own Cloud Map service ``etcd-<i>.<namespace>``, so the name always means that member
  and has exactly one record, which must resolve before the member is healthy: a member is
  healthy only once a quorum has formed (see components/discovery.py; neither the emulator
  nor the twin reproduces Cloud Map's health handling: members that log "no such host" for
  each other past their start period at a first deploy would be the sign it differs);
- its own subnet, the i-th private subnet modulo the AZs, so the members sit in different
  AZs (with 2 AZs, members 0 and 2 share the first: losing that AZ loses quorum);
- its data directory on EFS through its own access point (components/etcd_data.py), so a
  replacement task starts with the member's data (EFS is regional, with a mount target in
  every private subnet);
- minimum_healthy_percent 0 and maximum_percent 100: two tasks of one member must never
  run at once on the same data directory.

A member that is replaced or restarted rejoins by itself: same name, same data directory,
and etcd ignores the ``--initial-cluster*`` flags once its data directory holds a member.
A member whose data is lost (the directory deleted or damaged) cannot: etcd refuses an
empty data directory for a member the cluster already knows ("member ... has already been
bootstrapped"). It is replaced under the same name from the surviving members (README,
"etcd: replacing a member whose data is lost", has every command)::

    etcdctl --endpoints=<the healthy members> member list              # its ID
    etcdctl --endpoints=<the healthy members> member remove <ID>
    etcdctl --endpoints=<the healthy members> member add etcd-<i> --peer-urls=http://etcd-<i>.<namespace>:2380

then it is started once, on an empty directory, with ``--initial-cluster-state=existing``.

Rollouts replace one member at a time: see ``_member_ordering`` below. etcd upgrades go one
minor version at a time (3.5 -> 3.6 only from 3.5.26 or later), each one rolled this way.

NATS stays a single task: Dynamo sends only events through it (KV cache, metrics). Killing it
failed no completion and stopped no process in the twin; events published while it is away
are lost, so the KV router may not know of cache blocks stored meanwhile.
"""

from __future__ import annotations

from collections.abc import Sequence

from cdktf import ITerraformDependable
from constructs import Construct

from components.aws import ecs_task_definition
from components.container import container_definition
from components.security_groups import ETCD_PEER_PORT, ETCD_PORT, NATS_PORT
from components.service import TaskService

NATS_MONITOR_PORT = 8222
DATA_VOLUME = "data"
DATA_PATH = "/data"
# At the first deploy the members start one after another (each waits for the one before,
# see _member_ordering), and a member answers the health check only once a quorum has
# elected a leader, i.e. once the next member has started too: one Fargate task start
# (ENI, image pull, EFS mount) of 30-60 s, doubled for a slow pull. A member replaced
# later finds its peers running and is healthy within seconds, so this costs nothing then.
ETCD_START_PERIOD_SECONDS = 120


class ControlPlane(Construct):
    """Attributes:
    etcd_endpoint: ETCD_ENDPOINTS for Dynamo, ``http://etcd-<i>.<ns>:2379`` of every member, comma-joined.
    nats_server: ``nats://nats.<ns>:4222``.
    service_names: ECS service name per short name (``etcd-0``..., ``nats``).
    etcd_service_names: the members' ECS service names, in member order.
    """

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
        etcd_hostnames: list[str],
        nats_hostname: str,
        etcd_registry_arns: list[str],
        nats_registry_arn: str,
        etcd_file_system_id: str,
        etcd_access_point_ids: list[str],
        etcd_data_mountable: list[ITerraformDependable],
        log_groups: dict[str, str],
        execution_role_arn: str,
        task_role_arn: str,
        subnet_ids: list[str],
        security_group_id: str,
        etcd_peers_security_group_id: str,
        needs: Sequence[ITerraformDependable],
    ) -> None:
        """``etcd_hostnames``, ``etcd_registry_arns`` and ``etcd_access_point_ids``: one per member, in member order.

        ``etcd_data_mountable``: what the first member waits for before its task can mount its data.
        """
        super().__init__(scope, id_)
        self.etcd_endpoint: str = ",".join(f"http://{hostname}:{ETCD_PORT}" for hostname in etcd_hostnames)
        self.nats_server: str = f"nats://{nats_hostname}:{NATS_PORT}"
        common = {
            "cluster_arn": cluster_arn,
            "execution_role_arn": execution_role_arn,
            "task_role_arn": task_role_arn,
            "desired_count": 1,
            # One task per service: stop the old task before starting the new one, so two
            # instances never answer on the same DNS name, or write the same data, at once.
            "minimum_healthy_percent": 0,
            "maximum_percent": 100,
            "needs": needs,
        }
        mount = [{"sourceVolume": DATA_VOLUME, "containerPath": DATA_PATH, "readOnly": False}]
        initial_cluster = ",".join(
            f"etcd-{index}=http://{hostname}:{ETCD_PEER_PORT}" for index, hostname in enumerate(etcd_hostnames)
        )
        self.service_names: dict[str, str] = {}
        self.etcd_service_names: list[str] = []
        previous: TaskService | None = None
        for index, (hostname, registry_arn, access_point_id) in enumerate(
            zip(etcd_hostnames, etcd_registry_arns, etcd_access_point_ids, strict=True)
        ):
            member = f"etcd-{index}"
            volume = ecs_task_definition.EcsTaskDefinitionVolume(
                name=DATA_VOLUME,
                efs_volume_configuration=ecs_task_definition.EcsTaskDefinitionVolumeEfsVolumeConfiguration(
                    file_system_id=etcd_file_system_id,
                    transit_encryption="ENABLED",
                    authorization_config=ecs_task_definition.EcsTaskDefinitionVolumeEfsVolumeConfigurationAuthorizationConfig(
                        access_point_id=access_point_id, iam="ENABLED"
                    ),
                ),
            )
            service = TaskService(
                self,
                member,
                name=f"{name}-{member}",
                cpu=etcd_cpu,
                memory=etcd_memory,
                service_registry_arn=registry_arn,
                subnet_ids=[subnet_ids[index % len(subnet_ids)]],
                security_group_ids=[security_group_id, etcd_peers_security_group_id],
                volumes=[volume],
                container=container_definition(
                    name="etcd",
                    image=etcd_image,
                    # The upstream image is distroless: no shell, no entrypoint.
                    command=[
                        "/usr/local/bin/etcd",
                        f"--name={member}",
                        f"--data-dir={DATA_PATH}/etcd",
                        f"--listen-client-urls=http://0.0.0.0:{ETCD_PORT}",
                        f"--advertise-client-urls=http://{hostname}:{ETCD_PORT}",
                        f"--listen-peer-urls=http://0.0.0.0:{ETCD_PEER_PORT}",
                        f"--initial-advertise-peer-urls=http://{hostname}:{ETCD_PEER_PORT}",
                        f"--initial-cluster={initial_cluster}",
                        # Read only while the data directory is empty: at the first deploy.
                        "--initial-cluster-state=new",
                        f"--initial-cluster-token={name}",
                        "--auto-compaction-retention=1",
                    ],
                    ports=[ETCD_PORT],
                    log_group=log_groups["etcd"],
                    log_stream_prefix=member,
                    region=region,
                    readonly_root_filesystem=True,
                    mount_points=mount,
                    health_check={
                        "command": [
                            "CMD",
                            "/usr/local/bin/etcdctl",
                            f"--endpoints=http://127.0.0.1:{ETCD_PORT}",
                            "endpoint",
                            "health",
                        ],
                        "interval": 15,
                        "timeout": 5,
                        "retries": 3,
                        "startPeriod": ETCD_START_PERIOD_SECONDS,
                    },
                ),
                **_member_ordering(previous, etcd_data_mountable, common),
            )
            self.service_names[member] = service.service_name
            self.etcd_service_names.append(service.service_name)
            previous = service

        nats = TaskService(
            self,
            "nats",
            name=f"{name}-nats",
            cpu=nats_cpu,
            memory=nats_memory,
            service_registry_arn=nats_registry_arn,
            subnet_ids=subnet_ids,
            security_group_ids=[security_group_id],
            volumes=[ecs_task_definition.EcsTaskDefinitionVolume(name=DATA_VOLUME)],
            container=container_definition(
                name="nats",
                image=nats_image,
                command=[
                    "nats-server",
                    "-js",
                    "-sd",
                    "/data/jetstream",
                    "-p",
                    str(NATS_PORT),
                    "-m",
                    str(NATS_MONITOR_PORT),
                ],
                ports=[NATS_PORT],
                log_group=log_groups["nats"],
                region=region,
                readonly_root_filesystem=True,
                mount_points=mount,
                health_check={
                    "command": [
                        "CMD-SHELL",
                        f"wget -q -O /dev/null http://127.0.0.1:{NATS_MONITOR_PORT}/healthz || exit 1",
                    ],
                    "interval": 15,
                    "timeout": 5,
                    "retries": 3,
                    "startPeriod": 15,
                },
            ),
            **common,
        )
        self.service_names["nats"] = nats.service_name


def _member_ordering(previous: TaskService | None, mountable: list[ITerraformDependable], common: dict) -> dict:
    """Terraform changes member i+1 only after member i is back, so quorum holds through a rollout.

    A change to the etcd image or size changes every member's task definition. Without an
    order, Terraform would update the three services at once and ECS would stop all three
    tasks together (minimum_healthy_percent 0): quorum lost, every Dynamo process gone. With
    ``depends_on`` on the previous member's service, Terraform updates them one after
    another, and ``wait_for_steady_state`` makes it wait, after each update, until that
    service has its one task running and no other deployment left.

    The first member depends instead on its data being mountable: nothing in its task
    definition refers to the mount targets (available a minute or two after they are
    created), the file system policy or the task role's grant, and tasks that fail to mount
    would trip the deployment circuit breaker. The others follow the first.

    Limit: that waiter (hashicorp/aws 5.x: one deployment, runningCount == desiredCount)
    counts RUNNING tasks, not healthy ones. A member that runs but has not rejoined yet
    counts as steady, and Terraform moves on to the next member. A healthy change costs
    nothing by it (a replaced member catches up within seconds); a change that breaks etcd
    itself (a bad flag, an image that cannot read the data) can reach the second member
    before the first one fails its health check, and two broken members are a lost quorum.
    Try such changes in dev or staging first. (hashicorp/aws 6.x waits for the ECS
    deployment to succeed, health checks included.)
    """
    return {
        **common,
        "wait_for_steady_state": True,
        "needs": [*common["needs"], *([previous.service] if previous else mountable)],
    }
