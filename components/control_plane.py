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

from dataclasses import replace

from constructs import Construct

from components.aws import ecs_task_definition
from components.container import Container, Mount
from components.discovery import Discovery
from components.etcd_data import EtcdData
from components.iam import TaskRoles
from components.logs import LogGroups
from components.security_groups import ETCD_PEER_PORT, ETCD_PORT, NATS_PORT, SecurityGroup
from components.service import Deployment, Placement, TaskService, TaskSize
from environments.schema import ControlPlaneConfig, EtcdConfig

NATS_MONITOR_PORT = 8222
DATA_VOLUME = "data"
DATA_PATH = "/data"
# At the first deploy the members start one after another (each waits for the one before,
# see _member_ordering), and a member answers the health check only once a quorum has
# elected a leader, i.e. once the next member has started too: one Fargate task start
# (ENI, image pull, EFS mount) of 30-60 s, doubled for a slow pull. A member replaced
# later finds its peers running and is healthy within seconds, so this costs nothing then.
ETCD_START_PERIOD_SECONDS = 120


def etcd_member_names(members: int) -> list[str]:
    """``etcd-<i>``: each member's ECS service suffix, Cloud Map name and ``--name``."""
    return [f"etcd-{index}" for index in range(members)]


class ControlPlane(Construct):
    """Attributes:
    etcd_endpoint: ETCD_ENDPOINTS for Dynamo, ``http://etcd-<i>.<ns>:2379`` of every member, comma-joined.
    nats_server: ``nats://nats.<ns>:4222``.
    etcd_members: the members' services, in member order.
    nats: the NATS service.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        config: ControlPlaneConfig,
        discovery: Discovery,
        data: EtcdData,
        logs: LogGroups,
        roles: TaskRoles,
        placement: Placement,
        peers: SecurityGroup,
    ) -> None:
        """``placement``: the Fargate cluster, the private subnets and the group that admits
        Dynamo's clients; ``peers``: the group the members talk to each other and to their data in.
        ``discovery`` has a name ``etcd-<i>`` per member and ``nats``."""
        super().__init__(scope, id_)
        self._name = name
        members = etcd_member_names(config.etcd_members)
        hostnames = [discovery.hostnames[member] for member in members]
        self.etcd_endpoint: str = ",".join(f"http://{hostname}:{ETCD_PORT}" for hostname in hostnames)
        self.nats_server: str = f"nats://{discovery.hostnames['nats']}:{NATS_PORT}"
        initial_cluster = ",".join(
            f"{member}=http://{hostname}:{ETCD_PEER_PORT}" for member, hostname in zip(members, hostnames, strict=True)
        )
        self.etcd_members: list[TaskService] = []
        for index, member in enumerate(members):
            subnet = placement.subnet_ids[index % len(placement.subnet_ids)]
            self.etcd_members.append(
                TaskService(
                    self,
                    member,
                    name=f"{name}-{member}",
                    placement=replace(
                        placement, subnet_ids=[subnet], security_groups=[*placement.security_groups, peers]
                    ),
                    roles=roles,
                    containers=[
                        self._etcd_container(
                            member,
                            hostnames[index],
                            initial_cluster,
                            config.etcd,
                            data,
                            data.access_point_ids[index],
                            logs,
                        )
                    ],
                    size=TaskSize(config.etcd.cpu, config.etcd.memory),
                    deployment=_member_ordering(self.etcd_members[-1] if self.etcd_members else None, data, roles),
                    registry_arn=discovery.service_arns[member],
                )
            )
        self.nats = TaskService(
            self,
            "nats",
            name=f"{name}-nats",
            placement=placement,
            roles=roles,
            containers=[
                Container(
                    name="nats",
                    image=config.nats.image,
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
                    logs=logs.group("nats"),
                    readonly_root_filesystem=True,
                    mounts=[Mount(ecs_task_definition.EcsTaskDefinitionVolume(name=DATA_VOLUME), DATA_PATH)],
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
                )
            ],
            size=TaskSize(config.nats.cpu, config.nats.memory),
            deployment=ONE_TASK_AT_A_TIME,
            registry_arn=discovery.service_arns["nats"],
        )

    def _etcd_container(
        self,
        member: str,
        hostname: str,
        initial_cluster: str,
        config: EtcdConfig,
        data: EtcdData,
        access_point_id: str,
        logs: LogGroups,
    ) -> Container:
        volume = ecs_task_definition.EcsTaskDefinitionVolume(
            name=DATA_VOLUME,
            efs_volume_configuration=ecs_task_definition.EcsTaskDefinitionVolumeEfsVolumeConfiguration(
                file_system_id=data.file_system_id,
                transit_encryption="ENABLED",
                authorization_config=ecs_task_definition.EcsTaskDefinitionVolumeEfsVolumeConfigurationAuthorizationConfig(
                    access_point_id=access_point_id, iam="ENABLED"
                ),
            ),
        )
        return Container(
            name="etcd",
            image=config.image,
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
                f"--initial-cluster-token={self._name}",
                "--auto-compaction-retention=1",
            ],
            ports=[ETCD_PORT],
            logs=logs.group("etcd"),
            log_stream_prefix=member,
            readonly_root_filesystem=True,
            mounts=[Mount(volume, DATA_PATH)],
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
        )


# One task per service: stop the old task before starting the new one, so two instances
# never answer on the same DNS name, or write the same data, at once.
ONE_TASK_AT_A_TIME = Deployment(desired_count=1, minimum_healthy_percent=0, maximum_percent=100)


def _member_ordering(previous: TaskService | None, data: EtcdData, roles: TaskRoles) -> Deployment:
    """Terraform changes member i+1 only after member i is back, so quorum holds through a rollout.

    A change to the etcd image or size changes every member's task definition. Without an
    order, Terraform would update the three services at once and ECS would stop all three
    tasks together (minimum_healthy_percent 0): quorum lost, every Dynamo process gone. With
    ``depends_on`` on the previous member's service, Terraform updates them one after
    another, and ``wait_for_steady_state`` makes it wait, after each update, until that
    service has its one task running and no other deployment left.

    The first member depends instead on its data being mountable (EtcdData.grant_mount:
    mount targets are available a minute or two after they are created). The others follow
    the first.

    Limit: that waiter (hashicorp/aws 5.x: one deployment, runningCount == desiredCount)
    counts RUNNING tasks, not healthy ones. A member that runs but has not rejoined yet
    counts as steady, and Terraform moves on to the next member. A healthy change costs
    nothing by it (a replaced member catches up within seconds); a change that breaks etcd
    itself (a bad flag, an image that cannot read the data) can reach the second member
    before the first one fails its health check, and two broken members are a lost quorum.
    Try such changes in dev or staging first. (hashicorp/aws 6.x waits for the ECS
    deployment to succeed, health checks included.)
    """
    after = [previous.service] if previous else data.grant_mount(roles)
    return replace(ONE_TASK_AT_A_TIME, wait_for_steady_state=True, after=after)
