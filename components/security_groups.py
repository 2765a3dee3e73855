"""Security groups with least privilege between the parts of the platform.

Who may talk to whom:
  clients (allowed CIDRs) -> ALB listener ports
  ALB -> frontend:8000
  frontend -> workers:9100 (Dynamo request plane: the workers' DYN_TCP_RPC_PORT)
  workers -> frontend:9101 (Dynamo response stream: workers connect back to the frontend
                            and stream the tokens; the frontend's DYN_TCP_RESPONSE_STREAM_PORT)
  workers <-> workers (TCP 1024-65535: NIXL KV-cache transfer between prefill and decode)
  frontend, workers -> etcd:2379, NATS:4222
  etcd members <-> etcd members:2380 (raft peer traffic; a group of their own, so NATS and
                                      the clients never reach the peer port)
  etcd members -> EFS mount targets:2049 (NFS: the members' data directories)
  tasks and GPU instances -> 443 anywhere (image pulls, Hugging Face, AWS APIs)

Dynamo's request and response planes are pinned to fixed ports (both set in the tasks'
environment by components/workers.py) so these rules can name one port each instead of
every unprivileged port; measured with ai-dynamo 1.2.1 (frontend, mocker workers, etcd,
NATS) in the twin.
"""

from __future__ import annotations

from constructs import Construct

from components.aws import security_group, vpc_security_group_egress_rule, vpc_security_group_ingress_rule

FRONTEND_PORT = 8000
ETCD_PORT = 2379
ETCD_PEER_PORT = 2380
NFS_PORT = 2049
NATS_PORT = 4222
HTTP_PORT = 80
HTTPS_PORT = 443
# Dynamo's request plane: every endpoint a worker serves (generate,
# worker_kv_indexer_query, ...) is on one TCP server, which binds a port of its own choosing
# unless DYN_TCP_RPC_PORT is set (lib/runtime/src/pipeline/network/tcp/server.rs in
# ai-dynamo/dynamo). Set on the workers only: on the frontend, 1.2.1 then fails model
# discovery with "TCP RPC port not set" (measured).
REQUEST_PLANE_PORT = 9100
# Dynamo's response stream: a worker does not answer on the connection the request came
# in on; it connects back to a TCP server the frontend runs and streams the tokens there
# (lib/runtime/src/pipeline/network/ingress/push_handler.rs and tcp/server.rs). That
# server binds a random port unless DYN_TCP_RESPONSE_STREAM_PORT is set on the frontend.
RESPONSE_STREAM_PORT = 9101
# NIXL/UCX KV-cache transfer between workers picks its own ports (not observable without
# GPUs, so not pinned); they are unprivileged or OS-assigned, never below 1024, so SSH,
# RDP, HTTP and the other well-known ports stay closed even between workers.
UNPRIVILEGED_PORTS = (1024, 65535)


class SecurityGroups(Construct):
    """Attributes: alb, frontend, workers, control_plane, etcd_peers, efs, gpu_instances (security group ids)."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        vpc_id: str,
        listener_ports: list[int],
        allowed_cidrs: list[str],
    ) -> None:
        super().__init__(scope, id_)
        self._vpc_id = vpc_id
        self._name = name
        self.alb = self._group("alb", "Application Load Balancer: listener ports from the allowed CIDRs")
        # AWS cannot change a group's description in place: a new one replaces the group,
        # which an applied stack cannot do while tasks use it. The rules' descriptions
        # carry what the group admits; this text stays as first deployed.
        self.frontend = self._group("frontend", "Dynamo frontend: HTTP from the ALB only")
        self.workers = self._group(
            "workers", "Dynamo vLLM workers: requests from the frontend, KV transfer between workers"
        )
        self.control_plane = self._group("control-plane", "etcd and NATS: from the frontend and the workers only")
        self.gpu_instances = self._group(
            "gpu-instances", "GPU container instances: no ingress, HTTPS out for the ECS agent and image pulls"
        )
        # On the etcd members only, next to control-plane (which admits their clients).
        self.etcd_peers = self._group(
            "etcd-peers", "etcd members: raft peer traffic between members, NFS to their data"
        )
        self.efs = self._group("efs", "etcd data file system mount targets: NFS from the etcd members only")

        for port in listener_ports:
            for index, cidr in enumerate(allowed_cidrs):
                self._ingress(f"alb-{port}-{index}", self.alb, port, port, f"clients to listener {port}", cidr=cidr)
        self._egress(
            "alb-to-frontend", self.alb, FRONTEND_PORT, FRONTEND_PORT, "health checks and requests", peer=self.frontend
        )
        self._ingress(
            "frontend-from-alb", self.frontend, FRONTEND_PORT, FRONTEND_PORT, "requests from the ALB", peer=self.alb
        )

        # Descriptions: AWS allows no apostrophe or ">" in them.
        self._ingress(
            "workers-from-frontend",
            self.workers,
            REQUEST_PLANE_PORT,
            REQUEST_PLANE_PORT,
            "Dynamo request plane: requests from the frontend to DYN_TCP_RPC_PORT",
            peer=self.frontend,
        )
        self._egress(
            "frontend-to-workers",
            self.frontend,
            REQUEST_PLANE_PORT,
            REQUEST_PLANE_PORT,
            "Dynamo request plane: the frontend sends requests to DYN_TCP_RPC_PORT of the workers",
            peer=self.workers,
        )
        self._ingress(
            "frontend-from-workers",
            self.frontend,
            RESPONSE_STREAM_PORT,
            RESPONSE_STREAM_PORT,
            "Dynamo response stream: workers stream tokens back to the frontend",
            peer=self.workers,
        )
        self._egress(
            "workers-to-frontend",
            self.workers,
            RESPONSE_STREAM_PORT,
            RESPONSE_STREAM_PORT,
            "Dynamo response stream: tokens back to DYN_TCP_RESPONSE_STREAM_PORT of the frontend",
            peer=self.frontend,
        )
        self._ingress(
            "workers-from-workers", self.workers, *UNPRIVILEGED_PORTS, "NIXL KV-cache transfer", peer=self.workers
        )
        self._egress(
            "workers-to-workers", self.workers, *UNPRIVILEGED_PORTS, "NIXL KV-cache transfer", peer=self.workers
        )

        for client_name, client in (("frontend", self.frontend), ("workers", self.workers)):
            for service, port in (("etcd", ETCD_PORT), ("nats", NATS_PORT)):
                self._ingress(
                    f"{service}-from-{client_name}", self.control_plane, port, port, f"{service} clients", peer=client
                )
                self._egress(
                    f"{client_name}-to-{service}",
                    client,
                    port,
                    port,
                    f"{service} discovery and events",
                    peer=self.control_plane,
                )

        self._ingress(
            "etcd-peers-from-etcd-peers",
            self.etcd_peers,
            ETCD_PEER_PORT,
            ETCD_PEER_PORT,
            "etcd raft: peer traffic from the other members",
            peer=self.etcd_peers,
        )
        self._egress(
            "etcd-peers-to-etcd-peers",
            self.etcd_peers,
            ETCD_PEER_PORT,
            ETCD_PEER_PORT,
            "etcd raft: peer traffic to the other members",
            peer=self.etcd_peers,
        )
        self._ingress(
            "efs-from-etcd-peers",
            self.efs,
            NFS_PORT,
            NFS_PORT,
            "NFS: etcd members mount their data directories",
            peer=self.etcd_peers,
        )
        self._egress(
            "etcd-peers-to-efs",
            self.etcd_peers,
            NFS_PORT,
            NFS_PORT,
            "NFS: etcd data directories on the EFS mount targets",
            peer=self.efs,
        )

        for group_name, group in (
            ("frontend", self.frontend),
            ("workers", self.workers),
            ("control-plane", self.control_plane),
            ("gpu-instances", self.gpu_instances),
        ):
            self._egress(
                f"{group_name}-https",
                group,
                HTTPS_PORT,
                HTTPS_PORT,
                "image registries, Hugging Face, AWS APIs",
                cidr="0.0.0.0/0",
            )

    def _group(self, suffix: str, description: str) -> str:
        group = security_group.SecurityGroup(
            self,
            suffix,
            name=f"{self._name}-{suffix}",
            description=description,
            vpc_id=self._vpc_id,
            tags={"Name": f"{self._name}-{suffix}"},
        )
        return group.id

    def _ingress(
        self,
        id_: str,
        group: str,
        from_port: int,
        to_port: int,
        description: str,
        *,
        cidr: str | None = None,
        peer: str | None = None,
    ) -> None:
        self._rule(
            vpc_security_group_ingress_rule.VpcSecurityGroupIngressRule,
            f"in-{id_}",
            group,
            from_port,
            to_port,
            description,
            cidr,
            peer,
        )

    def _egress(
        self,
        id_: str,
        group: str,
        from_port: int,
        to_port: int,
        description: str,
        *,
        cidr: str | None = None,
        peer: str | None = None,
    ) -> None:
        self._rule(
            vpc_security_group_egress_rule.VpcSecurityGroupEgressRule,
            f"out-{id_}",
            group,
            from_port,
            to_port,
            description,
            cidr,
            peer,
        )

    def _rule(
        self,
        rule_class: type,
        id_: str,
        group: str,
        from_port: int,
        to_port: int,
        description: str,
        cidr: str | None,
        peer: str | None,
    ) -> None:
        """One TCP port range from (ingress) or to (egress) either a CIDR or a peer security group."""
        rule_class(
            self,
            id_,
            security_group_id=group,
            ip_protocol="tcp",
            from_port=from_port,
            to_port=to_port,
            description=description,
            cidr_ipv4=cidr,
            referenced_security_group_id=peer,
        )
