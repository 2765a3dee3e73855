"""Every ingress rule of every stack: nothing open to the internet but a public ALB's
listeners, and between the frontend and the workers exactly the flows Dynamo uses."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest

from environments.loader import ENVIRONMENTS_DIR, load
from tests.conftest import ENVIRONMENTS
from tests.stack_json import environment_of, main_container, one

OPEN_CIDRS = {"0.0.0.0/0", "::/0"}
REFERENCE = re.compile(r"^\$\{([a-z0-9_]+)\.([^.}]+)\.(?:id|arn)\}$")


@dataclass(frozen=True)
class Ingress:
    address: str  # where the rule is written in the stack
    group: str  # aws_security_group.<name> the rule admits into
    from_port: int
    to_port: int
    protocol: str
    source: str  # a CIDR, a security group reference, a prefix list or "self"

    def __str__(self) -> str:
        ports = str(self.from_port) if self.from_port == self.to_port else f"{self.from_port}-{self.to_port}"
        return f"{self.group:<48} {self.protocol}/{ports:<11} from {self.source:<48} ({self.address})"


def referenced(value: str) -> str:
    match = REFERENCE.match(value or "")
    return f"{match.group(1)}.{match.group(2)}" if match else value


def ingress_rules(stack: dict[str, Any]) -> list[Ingress]:
    """Standalone rules, legacy aws_security_group_rule and inline blocks alike."""
    resources = stack.get("resource", {})
    rules = []
    for name, rule in resources.get("aws_vpc_security_group_ingress_rule", {}).items():
        sources = [rule.get(key) for key in ("cidr_ipv4", "cidr_ipv6", "prefix_list_id") if rule.get(key)]
        if rule.get("referenced_security_group_id"):
            sources.append(referenced(rule["referenced_security_group_id"]))
        ports = (
            (rule.get("from_port", 0), rule.get("to_port", 65535))
            if rule.get("ip_protocol") not in ("-1", "all")
            else (0, 65535)
        )
        for source in sources or ["(no source: everything)"]:
            rules.append(
                Ingress(
                    f"aws_vpc_security_group_ingress_rule.{name}",
                    referenced(rule["security_group_id"]),
                    *ports,
                    rule.get("ip_protocol", "?"),
                    source,
                )
            )
    for name, rule in resources.get("aws_security_group_rule", {}).items():
        if rule.get("type") == "ingress":
            rules += _classic(f"aws_security_group_rule.{name}", referenced(rule["security_group_id"]), rule)
    for name, group in resources.get("aws_security_group", {}).items():
        for index, block in enumerate(group.get("ingress") or []):
            rules += _classic(f"aws_security_group.{name}.ingress[{index}]", f"aws_security_group.{name}", block)
    for name, group in resources.get("aws_default_security_group", {}).items():
        for index, block in enumerate(group.get("ingress") or []):
            rules += _classic(
                f"aws_default_security_group.{name}.ingress[{index}]", f"aws_default_security_group.{name}", block
            )
    return rules


def _classic(address: str, group: str, block: dict[str, Any]) -> list[Ingress]:
    sources = [
        *(block.get("cidr_blocks") or []),
        *(block.get("ipv6_cidr_blocks") or []),
        *(block.get("prefix_list_ids") or []),
    ]
    sources += [referenced(value) for value in block.get("security_groups") or []]
    if block.get("source_security_group_id"):
        sources.append(referenced(block["source_security_group_id"]))
    if block.get("self"):
        sources.append("self")
    ports = (block.get("from_port", 0), block.get("to_port", 65535))
    return [
        Ingress(address, group, *ports, block.get("protocol", "?"), source)
        for source in sources or ["(no source: everything)"]
    ]


def public_listeners(stack: dict[str, Any]) -> dict[str, set[int]]:
    """Security group of each internet-facing load balancer -> its listener ports."""
    resources = stack.get("resource", {})
    allowed: dict[str, set[int]] = {}
    for name, balancer in resources.get("aws_lb", {}).items():
        if balancer.get("internal"):
            continue
        ports = {
            int(listener["port"])
            for listener in resources.get("aws_lb_listener", {}).values()
            if referenced(listener["load_balancer_arn"]) == f"aws_lb.{name}"
        }
        for group in balancer.get("security_groups", []):
            allowed.setdefault(referenced(group), set()).update(ports)
    return allowed


def open_ingress_problems(stack: dict[str, Any]) -> list[str]:
    allowed = public_listeners(stack)
    problems = []
    for rule in ingress_rules(stack):
        if rule.source.startswith("(no source"):
            problems.append(f"{rule}: a rule without a source")
            continue
        if rule.source not in OPEN_CIDRS:
            continue
        ports = allowed.get(rule.group, set())
        if rule.from_port != rule.to_port or rule.from_port not in ports or rule.protocol != "tcp":
            problems.append(
                f"{rule}: open to the internet, and not a listener port of a public load balancer "
                f"({sorted(ports) or 'none'})"
            )
    return problems


# --- the detector -------------------------------------------------------------------


def planted_stack(*, internal: bool = False, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    stack = {
        "resource": {
            "aws_security_group": {"alb": {"name": "alb"}, "workers": {"name": "workers"}},
            "aws_lb": {"alb": {"internal": internal, "security_groups": ["${aws_security_group.alb.id}"]}},
            "aws_lb_listener": {"http": {"load_balancer_arn": "${aws_lb.alb.arn}", "port": 80}},
            "aws_vpc_security_group_ingress_rule": {
                "alb-80": {
                    "security_group_id": "${aws_security_group.alb.id}",
                    "ip_protocol": "tcp",
                    "from_port": 80,
                    "to_port": 80,
                    "cidr_ipv4": "0.0.0.0/0",
                },
            },
        }
    }
    for kind, resources in (extra or {}).items():
        stack["resource"].setdefault(kind, {}).update(resources)
    return stack


def test_a_public_alb_listener_may_be_open() -> None:
    assert open_ingress_problems(planted_stack()) == []


@pytest.mark.parametrize(
    "extra",
    [
        {
            "aws_vpc_security_group_ingress_rule": {
                "ssh": {
                    "security_group_id": "${aws_security_group.workers.id}",
                    "ip_protocol": "tcp",
                    "from_port": 22,
                    "to_port": 22,
                    "cidr_ipv4": "0.0.0.0/0",
                }
            }
        },
        {
            "aws_vpc_security_group_ingress_rule": {
                "v6": {
                    "security_group_id": "${aws_security_group.workers.id}",
                    "ip_protocol": "tcp",
                    "from_port": 8000,
                    "to_port": 8000,
                    "cidr_ipv6": "::/0",
                }
            }
        },
        {
            "aws_vpc_security_group_ingress_rule": {
                "alb-all": {
                    "security_group_id": "${aws_security_group.alb.id}",
                    "ip_protocol": "-1",
                    "cidr_ipv4": "0.0.0.0/0",
                }
            }
        },
        {
            "aws_vpc_security_group_ingress_rule": {
                "alb-8000": {
                    "security_group_id": "${aws_security_group.alb.id}",
                    "ip_protocol": "tcp",
                    "from_port": 8000,
                    "to_port": 8000,
                    "cidr_ipv4": "0.0.0.0/0",
                }
            }
        },
        {
            "aws_security_group_rule": {
                "legacy": {
                    "type": "ingress",
                    "security_group_id": "${aws_security_group.workers.id}",
                    "protocol": "tcp",
                    "from_port": 0,
                    "to_port": 65535,
                    "cidr_blocks": ["0.0.0.0/0"],
                }
            }
        },
        {
            "aws_security_group": {
                "inline": {
                    "ingress": [
                        {
                            "protocol": "tcp",
                            "from_port": 9090,
                            "to_port": 9090,
                            "cidr_blocks": ["10.0.0.0/8", "0.0.0.0/0"],
                        }
                    ]
                }
            }
        },
        {
            "aws_default_security_group": {
                "default": {
                    "ingress": [
                        {"protocol": "-1", "from_port": 0, "to_port": 0, "self": True},
                        {"protocol": "-1", "from_port": 0, "to_port": 0, "cidr_blocks": ["0.0.0.0/0"]},
                    ]
                }
            }
        },
    ],
    ids=[
        "ssh-on-workers",
        "ipv6-anywhere",
        "alb-all-traffic",
        "alb-non-listener-port",
        "legacy-rule",
        "inline-ingress",
        "default-sg",
    ],
)
def test_the_detector_catches_planted_open_ingress(extra: dict[str, Any]) -> None:
    assert open_ingress_problems(planted_stack(extra=extra)), "the planted rule was not caught"


def test_an_internal_alb_listener_may_not_be_open() -> None:
    assert open_ingress_problems(planted_stack(internal=True))


# --- the stacks ---------------------------------------------------------------------


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_no_internet_ingress_but_public_listeners(
    environment: str, stacks: dict[str, dict], capsys: pytest.CaptureFixture[str]
) -> None:
    stack = stacks[environment]
    rules = ingress_rules(stack)
    with capsys.disabled():
        print(f"\ningress rules of dynamo-{environment}:")
        for rule in sorted(rules, key=str):
            print(f"  {rule}")
    assert len(rules) >= 8, (
        f"dynamo-{environment}: only {len(rules)} ingress rules found; is the walker reading the stack?"
    )
    problems = open_ingress_problems(stack)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_only_the_alb_takes_traffic_from_addresses(environment: str, stacks: dict[str, dict]) -> None:
    """Everything behind the ALB admits peers by security group, never by CIDR."""
    stack = stacks[environment]
    balancer_groups = set(public_listeners(stack)) | {
        referenced(group)
        for balancer in stack["resource"].get("aws_lb", {}).values()
        for group in balancer.get("security_groups", [])
    }
    by_address = [
        rule
        for rule in ingress_rules(stack)
        if rule.group not in balancer_groups and not rule.source.startswith("aws_security_group.")
    ]
    assert not by_address, "\n".join(map(str, by_address))


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_the_default_security_group_is_empty(environment: str, stacks: dict[str, dict]) -> None:
    groups = stacks[environment]["resource"].get("aws_default_security_group", {})
    assert groups, "the VPC's default security group is not managed (its allow-all rules would remain)"
    for name, group in groups.items():
        assert not group.get("ingress") and not group.get("egress"), (
            f"aws_default_security_group.{name} must have no rules"
        )


def _service_group(stack: dict[str, Any], service: str) -> str:
    (group,) = one(stack, "aws_ecs_service", f"{service}/{service}/service")["network_configuration"]["security_groups"]
    return referenced(group)


def _environment(stack: dict[str, Any], service: str) -> dict[str, str]:
    container = main_container(one(stack, "aws_ecs_task_definition", f"{service}/{service}/task"))
    return environment_of(container)


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_frontend_and_workers_admit_exactly_the_flows_dynamo_uses(environment: str, stacks: dict[str, dict]) -> None:
    """Every ingress into the frontend's and the workers' groups is one of Dynamo's flows, each
    on the port the receiving process is told to listen on, and every such flow is admitted."""
    stack = stacks[environment]
    roles = list(load(ENVIRONMENTS_DIR / f"{environment}.toml").gpu_workers())
    frontend_group = _service_group(stack, "frontend")
    (workers_group,) = {_service_group(stack, role) for role in roles}
    (alb_group,) = {referenced(group) for group in one(stack, "aws_lb", "load-balancer/alb")["security_groups"]}
    frontend = main_container(one(stack, "aws_ecs_task_definition", "frontend/frontend/task"))
    (http_port,) = [mapping["containerPort"] for mapping in frontend["portMappings"]]
    response_stream = int(environment_of(frontend)["DYN_TCP_RESPONSE_STREAM_PORT"])
    (request_plane,) = {int(_environment(stack, role)["DYN_TCP_RPC_PORT"]) for role in roles}
    expected = {
        (frontend_group, http_port, http_port, alb_group),  # requests and health checks from the ALB
        (frontend_group, response_stream, response_stream, workers_group),  # workers stream tokens back
        (workers_group, request_plane, request_plane, frontend_group),  # requests to the workers
        (workers_group, 1024, 65535, workers_group),  # NIXL KV transfer: ports not pinned, not observable without GPUs
    }
    admitted = {
        (rule.group, rule.from_port, rule.to_port, rule.source)
        for rule in ingress_rules(stack)
        if rule.group in (frontend_group, workers_group) and rule.protocol == "tcp"
    }
    assert admitted == expected
    assert all(rule.protocol == "tcp" for rule in ingress_rules(stack) if rule.group in (frontend_group, workers_group))
