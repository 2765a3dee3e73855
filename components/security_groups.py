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

from typing import Literal

from constructs import Construct

from components.aws import security_group, vpc_security_group_egress_rule, vpc_security_group_ingress_rule
from environments.schema import LoadBalancerConfig

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


class SecurityGroup:
    """One security group, and the rules that let others reach it (or it reach others).

    Rules are resources of the SecurityGroups construct that owns the group, wherever they
    are wired from, so their addresses in the state do not depend on who asked for them.

    Attributes: id, key (the short name in rule ids and the group's name).
    """

    def __init__(self, owner: SecurityGroups, key: str, group_id: str) -> None:
        self._owner = owner
        self.key = key
        self.id = group_id

    def admit(
        self,
        source: SecurityGroup,
        ports: tuple[int, int],
        *,
        ingress: str,
        egress: str,
        as_: str | None = None,
    ) -> None:
        """TCP ``ports`` from ``source``: the ingress rule here and the egress rule on ``source``.

        ``ingress``/``egress``: the rules' descriptions. ``as_``: the name this group has in the
        rules' ids when it is not the group's own (etcd and NATS share the control plane's).
        """
        name = as_ or self.key
        self._owner.rule("ingress", f"{name}-from-{source.key}", self, ports, ingress, peer=source)
        self._owner.rule("egress", f"{source.key}-to-{name}", source, ports, egress, peer=self)


class SecurityGroups(Construct):
    """The platform's security groups and the rules between them (see the module docstring).

    The ALB's rules to the frontend are added where the frontend is registered as the
    ALB's target (components/service.py, ``LoadBalancerTarget``).

    Attributes: alb, frontend, workers, control_plane, etcd_peers, efs, gpu_instances (SecurityGroup).
    """

    def __init__(
        self, scope: Construct, id_: str, *, name: str, vpc_id: str, load_balancer: LoadBalancerConfig
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

        listener_ports = [HTTP_PORT, HTTPS_PORT] if load_balancer.certificate_arn else [HTTP_PORT]
        for port in listener_ports:
            for index, cidr in enumerate(load_balancer.allowed_cidrs):
                self.rule(
                    "ingress", f"alb-{port}-{index}", self.alb, (port, port), f"clients to listener {port}", cidr=cidr
                )

        # Descriptions: AWS allows no apostrophe or ">" in them.
        self.workers.admit(
            self.frontend,
            (REQUEST_PLANE_PORT, REQUEST_PLANE_PORT),
            ingress="Dynamo request plane: requests from the frontend to DYN_TCP_RPC_PORT",
            egress="Dynamo request plane: the frontend sends requests to DYN_TCP_RPC_PORT of the workers",
        )
        self.frontend.admit(
            self.workers,
            (RESPONSE_STREAM_PORT, RESPONSE_STREAM_PORT),
            ingress="Dynamo response stream: workers stream tokens back to the frontend",
            egress="Dynamo response stream: tokens back to DYN_TCP_RESPONSE_STREAM_PORT of the frontend",
        )
        self.workers.admit(
            self.workers, UNPRIVILEGED_PORTS, ingress="NIXL KV-cache transfer", egress="NIXL KV-cache transfer"
        )
        for client in (self.frontend, self.workers):
            for service, port in (("etcd", ETCD_PORT), ("nats", NATS_PORT)):
                self.control_plane.admit(
                    client,
                    (port, port),
                    ingress=f"{service} clients",
                    egress=f"{service} discovery and events",
                    as_=service,
                )
        self.etcd_peers.admit(
            self.etcd_peers,
            (ETCD_PEER_PORT, ETCD_PEER_PORT),
            ingress="etcd raft: peer traffic from the other members",
            egress="etcd raft: peer traffic to the other members",
        )
        self.efs.admit(
            self.etcd_peers,
            (NFS_PORT, NFS_PORT),
            ingress="NFS: etcd members mount their data directories",
            egress="NFS: etcd data directories on the EFS mount targets",
        )
        for group in (self.frontend, self.workers, self.control_plane, self.gpu_instances):
            self.rule(
                "egress",
                f"{group.key}-https",
                group,
                (HTTPS_PORT, HTTPS_PORT),
                "image registries, Hugging Face, AWS APIs",
                cidr="0.0.0.0/0",
            )

    def _group(self, key: str, description: str) -> SecurityGroup:
        group = security_group.SecurityGroup(
            self,
            key,
            name=f"{self._name}-{key}",
            description=description,
            vpc_id=self._vpc_id,
            tags={"Name": f"{self._name}-{key}"},
        )
        return SecurityGroup(self, key, group.id)

    def rule(
        self,
        direction: Literal["ingress", "egress"],
        key: str,
        group: SecurityGroup,
        ports: tuple[int, int],
        description: str,
        *,
        cidr: str | None = None,
        peer: SecurityGroup | None = None,
    ) -> None:
        """One TCP port range from (ingress) or to (egress) either a CIDR or a peer security group."""
        rule_class = (
            vpc_security_group_ingress_rule.VpcSecurityGroupIngressRule
            if direction == "ingress"
            else vpc_security_group_egress_rule.VpcSecurityGroupEgressRule
        )
        rule_class(
            self,
            f"{'in' if direction == 'ingress' else 'out'}-{key}",
            security_group_id=group.id,
            ip_protocol="tcp",
            from_port=ports[0],
            to_port=ports[1],
            description=description,
            cidr_ipv4=cidr,
            referenced_security_group_id=peer.id if peer else None,
        )
