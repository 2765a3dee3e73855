"""The environment as a Mermaid flowchart: ALB, frontend, workers with their counts, etcd and NATS, clusters."""

from __future__ import annotations

from review.capacity import Capacity, Role
from review.stack import Stack, number

CONTROL_PLANE = ("etcd", "nats")


def _tasks(role: Role) -> str:
    count = str(role.min_tasks) if role.min_tasks == role.max_tasks else f"{role.min_tasks}..{role.max_tasks}"
    gpus = f", {role.gpus} GPU{'s' if role.gpus > 1 else ''} each" if role.gpus else ""
    return f"{role.name} x{count}{gpus}"


def _node(role: Role) -> str:
    label = f"{role.name}, one per instance" if role.daemon else _tasks(role)
    return f'    {role.name.replace("-", "_")}["{label}"]'


def mermaid(stack: Stack, capacity: Capacity) -> str:
    listeners = sorted(number(listener.values.get("port")) for listener in stack.of_type("aws_lb_listener"))
    ports = ", ".join(str(port) for port in listeners) or "no listener"
    serving = [role for role in capacity.roles if not role.name.startswith(CONTROL_PLANE) and not role.daemon]
    daemons = [role for role in capacity.roles if role.daemon]
    etcd = [role for role in capacity.roles if role.name.startswith("etcd")]
    nats = [role for role in capacity.roles if role.name.startswith("nats")]
    on_fargate = [role for role in serving if role.fargate]
    on_gpus = [role for role in serving if not role.fargate]
    fleet = f"{capacity.instance_type} x {capacity.fleet_min}..{capacity.fleet_max}"
    lines = [
        "```mermaid",
        "flowchart LR",
        "  clients([clients]) --> alb",
        f'  alb["ALB :{ports}"]',
        '  subgraph fargate["Fargate cluster"]',
        *[_node(role) for role in on_fargate],
        f'    etcd[("etcd x{len(etcd)} members")]',
        f'    nats[("NATS x{sum(role.max_tasks for role in nats)}")]',
        "  end",
        f'  subgraph gpu["GPU cluster: {fleet}{" spot" if capacity.spot else ""}"]',
        *[_node(role) for role in on_gpus + daemons],
        "  end",
    ]
    frontend = [role for role in serving if role.name == "frontend"]
    workers = [role for role in serving if role.name != "frontend"]
    for role in frontend:
        lines.append(f"  alb --> {role.name}")
        lines += [f"  {role.name} --> {worker.name}" for worker in workers]
    for role in serving:
        lines += [f"  {role.name} -.-> etcd", f"  {role.name} -.-> nats"]
    lines.append("```")
    return "\n".join(lines)
