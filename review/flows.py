"""The flows the twin observed while each shipped stack served, and whether a change still admits them.

`docs/measurements/twin-flows.json` is written by `make twin-flows` (tests/twin/record_flows.py): for
each stack, every connection between two of its parts while it served through the ALB (source and
destination role, port) and the rules that admitted it. The twin layer fails when what it observes
differs from the record, so the record describes the code it is committed with.

A change is checked against it on the stack it plans: a flow is admitted when an ingress rule of a
destination group admits the port from a source group (or from a CIDR that holds the VPC) and an egress
rule of a source group admits it to the destination. In a plan, the groups and rules that are created
or replaced are known only after apply; such a flow is "unknown", not broken.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from review.stack import Resource, Stack, block, number

RECORD_FILE = Path(__file__).resolve().parent.parent / "docs" / "measurements" / "twin-flows.json"
INGRESS = "aws_vpc_security_group_ingress_rule"
EGRESS = "aws_vpc_security_group_egress_rule"
RULE_TYPES = (INGRESS, EGRESS)


@dataclass(frozen=True)
class ObservedFlow:
    source: str  # a role (frontend, decode, prefill, nats, etcd-0, ...) or alb
    destination: str
    port: int
    rules: tuple[str, ...]  # the rules (construct paths) that admitted it when it was recorded

    @property
    def label(self) -> str:
        return f"{self.source} -> {self.destination}:{self.port}"

    def as_json(self) -> dict[str, Any]:
        return {"source": self.source, "destination": self.destination, "port": self.port, "rules": list(self.rules)}


def record_document(dynamo_release: str, flows: dict[str, list[ObservedFlow]]) -> str:
    """The record's text: sorted, no timestamps, so that an unchanged observation writes the same bytes."""
    document = {
        "about": "Connections between the parts of each stack while it served, observed by the twin "
        "(security groups enforced) and read by `main.py review`. Written by `make twin-flows`; "
        "tests/test_twin.py fails when the twin observes other flows.",
        "dynamo": dynamo_release,
        "stacks": {
            stack: [flow.as_json() for flow in sorted(observed, key=lambda flow: flow.label)]
            for stack, observed in sorted(flows.items())
        },
    }
    return json.dumps(document, indent=2) + "\n"


def recorded_flows(stack_name: str, path: Path = RECORD_FILE) -> list[ObservedFlow] | None:
    """The stack's recorded flows; None when the record has no such stack (or there is no record)."""
    if not path.is_file():
        return None
    found = json.loads(path.read_text())["stacks"].get(stack_name)
    if found is None:
        return None
    return [
        ObservedFlow(str(row["source"]), str(row["destination"]), int(row["port"]), tuple(row["rules"]))
        for row in found
    ]


def _groups(stack: Stack, role: str) -> set[str] | None:
    """The security groups of a role's ECS service (or of the ALB); None when unknown, as in a plan for
    a service that is created or replaced; empty when the stack has no such role."""
    if role == "alb":
        holders = [(balancer, balancer.values.get("security_groups")) for balancer in stack.of_type("aws_lb")]
    else:
        holders = [
            (service, block(service.values.get("network_configuration")).get("security_groups"))
            for service in stack.of_type("aws_ecs_service")
            if service.values.get("name") == f"{stack.name}-{role}"
        ]
    if not holders:
        return set()
    ((_, groups),) = holders
    return {str(group) for group in groups} if isinstance(groups, list) else None


def _vpc_network(stack: Stack) -> ipaddress.IPv4Network | None:
    cidrs = [vpc.values.get("cidr_block") for vpc in stack.of_type("aws_vpc")]
    return ipaddress.IPv4Network(cidrs[0]) if len(cidrs) == 1 and isinstance(cidrs[0], str) else None


def rule_admits(
    rule: Resource, port: int, own: set[str], peers: set[str], vpc: ipaddress.IPv4Network | None
) -> bool | None:
    """Whether this rule, on one of ``own`` groups, admits ``port`` to or from ``peers``; None if a value it
    needs is known only after apply."""
    values = rule.values
    group, peer, cidr = (
        values.get("security_group_id"),
        values.get("referenced_security_group_id"),
        values.get("cidr_ipv4"),
    )
    if group is None or (peer is None and cidr is None) or "from_port" not in values or "to_port" not in values:
        return None
    if str(group) not in own or values.get("ip_protocol") not in ("tcp", "6", "-1"):
        return False
    if values.get("ip_protocol") != "-1" and not number(values["from_port"], -1) <= port <= number(
        values["to_port"], -1
    ):
        return False
    if peer is not None:
        return str(peer) in peers
    network = ipaddress.IPv4Network(str(cidr))  # cidr_ipv4
    return network.prefixlen == 0 or (vpc is not None and network.supernet_of(vpc))


def _side(stack: Stack, rule_type: str, port: int, own: set[str], peers: set[str]) -> bool | None:
    vpc = _vpc_network(stack)
    verdicts = [rule_admits(rule, port, own, peers, vpc) for rule in stack.of_type(rule_type)]
    return True if True in verdicts else None if None in verdicts else False


def admitted(stack: Stack, flow: ObservedFlow) -> bool | None:
    """True: the stack's groups admit the flow both ways; False: they drop it; None: known only after apply."""
    source, destination = _groups(stack, flow.source), _groups(stack, flow.destination)
    if source is None or destination is None:
        return None
    if not source or not destination:
        return False
    ingress = _side(stack, INGRESS, flow.port, destination, source)
    egress = _side(stack, EGRESS, flow.port, source, destination)
    if ingress is False or egress is False:
        return False
    return True if ingress and egress else None


def carries_observed_flow(stack: Stack, rule: Resource, observed: list[ObservedFlow]) -> bool:
    """Whether a rule of the stack admits one of the observed flows on its side (True when unknown: only a
    rule known to admit none of them is reported as one no observed flow needs)."""
    vpc = _vpc_network(stack)
    for flow in observed:
        source, destination = _groups(stack, flow.source), _groups(stack, flow.destination)
        if source is None or destination is None:
            return True
        own, peers = (destination, source) if rule.type == INGRESS else (source, destination)
        if rule_admits(rule, flow.port, own, peers, vpc) is not False:
            return True
    return False
