"""Network namespaces, addresses and security groups for the twin.

Topology: one namespace per ECS task and one for the ALB, each with one interface `eth0`
whose other end sits on a bridge inside a private "fabric" namespace. Nothing is created
in the machine's own namespace, so no packet can leave what the twin made; addresses come
from 198.18.0.0/15 (reserved for benchmarks), never from the VPC CIDR.

Security groups are iptables rules in each namespace, generated from the stack's rule
resources: default deny both ways, replies allowed (stateful, like AWS), one ACCEPT per
rule and peer address (commented with the rule's name, so its counter says whether the rule
carried anything), then one DROP per known peer (so drops are counted per source and
destination). conntrack's event stream in each namespace records every connection the
destination admitted: that is the observed flow log.
"""

from __future__ import annotations

import ipaddress
import os
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

PREFIX = "dtwin"
SUBNET = ipaddress.ip_network("198.18.0.0/24")
NETNS_ETC = Path("/etc/netns")
FLOW_EVENT = re.compile(
    r"\[NEW\] tcp\s+\d+\s+\d+\s+\S+\s+src=(?P<src>\S+) dst=(?P<dst>\S+) sport=\d+ dport=(?P<dport>\d+)"
)
COUNTED_RULE = re.compile(r"^\s*(?P<packets>\d+)\s+\d+\s.*/\* (?P<comment>.+?) \*/")
CHAIN = re.compile(r"^Chain (?P<chain>\S+)")


def run(*argv: str, check: bool = True, namespace: str | None = None) -> subprocess.CompletedProcess[str]:
    command = (["ip", "netns", "exec", namespace] if namespace else []) + list(argv)
    return subprocess.run(command, check=check, capture_output=True, text=True, timeout=60)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _namespaces() -> list[str]:
    return [line.split()[0] for line in run("ip", "netns", "list").stdout.splitlines() if line.strip()]


def delete_namespace(name: str) -> None:
    """Kill whatever still runs inside, then remove the namespace and its /etc/netns files."""
    pids = run("ip", "netns", "pids", name, check=False).stdout.split()
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass
    run("ip", "netns", "delete", name, check=False)
    hosts_dir = NETNS_ETC / name
    for child in hosts_dir.glob("*"):
        child.unlink()
    if hosts_dir.exists():
        hosts_dir.rmdir()


def remove_leftovers() -> list[str]:
    """Namespaces of earlier twin runs whose process is gone (killed, crashed)."""
    removed = []
    for name in _namespaces():
        match = re.fullmatch(rf"{PREFIX}-(\d+)-.+", name)
        if match and not _alive(int(match[1])):
            delete_namespace(name)
            removed.append(name)
    return removed


@dataclass
class Flow:
    at: float
    source: str
    destination: str
    port: int


@dataclass
class Endpoint:
    """One namespace on the fabric: a task or the ALB."""

    key: str  # task id (decode-1) or "alb"
    namespace: str
    address: str
    groups: tuple[str, ...]
    flows: list[Flow] = field(default_factory=list)
    _events: subprocess.Popen | None = None


class Fabric:
    """The bridge namespace, the endpoints attached to it and their iptables rules."""

    def __init__(self, run_name: str, hostname: str) -> None:
        self.prefix = f"{PREFIX}-{os.getpid()}-{run_name}"
        self.hostname = hostname
        self.namespace = f"{self.prefix}-fabric"
        self.endpoints: dict[str, Endpoint] = {}
        self.detached: list[Endpoint] = []  # stopped tasks: their flows still count
        self.counters: dict[tuple[str, str, str], int] = {}  # (endpoint, chain, comment) -> packets
        self._next_host = 2
        self._lock = threading.Lock()
        run("ip", "netns", "add", self.namespace)
        run("ip", "link", "add", "br0", "type", "bridge", namespace=self.namespace)
        run("ip", "link", "set", "br0", "up", namespace=self.namespace)

    def attach(self, key: str, groups: tuple[str, ...]) -> Endpoint:
        address = str(SUBNET[self._next_host])
        peer = f"v{self._next_host}"
        self._next_host += 1
        namespace = f"{self.prefix}-{key}"
        run("ip", "netns", "add", namespace)
        run(
            "ip",
            "link",
            "add",
            "name",
            "eth0",
            "netns",
            namespace,
            "type",
            "veth",
            "peer",
            "name",
            peer,
            "netns",
            self.namespace,
        )
        run("ip", "link", "set", peer, "master", "br0", "up", namespace=self.namespace)
        for command in (
            ("ip", "addr", "add", f"{address}/{SUBNET.prefixlen}", "dev", "eth0"),
            ("ip", "link", "set", "lo", "up"),
            ("ip", "link", "set", "eth0", "up"),
            # A default route, as in a VPC subnet: Dynamo advertises the address of the
            # interface that carries it. No router answers on the fabric, so nothing leaves.
            ("ip", "route", "add", "default", "dev", "eth0"),
        ):
            run(*command, namespace=namespace)
        endpoint = Endpoint(key, namespace, address, groups)
        with self._lock:
            self.endpoints[key] = endpoint
        (NETNS_ETC / namespace).mkdir(parents=True, exist_ok=True)
        (NETNS_ETC / namespace / "resolv.conf").write_text("")
        endpoint._events = subprocess.Popen(
            ["ip", "netns", "exec", namespace, "stdbuf", "-oL", "conntrack", "-E", "-e", "NEW", "-p", "tcp"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        threading.Thread(target=self._read_flows, args=(endpoint,), daemon=True).start()
        return endpoint

    def _read_flows(self, endpoint: Endpoint) -> None:
        for line in endpoint._events.stdout:
            match = FLOW_EVENT.search(line)
            if match and match["dst"] == endpoint.address:
                endpoint.flows.append(Flow(time.monotonic(), match["src"], match["dst"], int(match["dport"])))

    def detach(self, key: str) -> Endpoint:
        with self._lock:
            endpoint = self.endpoints.pop(key)
        self._collect_counters(endpoint)
        if endpoint._events:
            endpoint._events.kill()
        delete_namespace(endpoint.namespace)
        self.detached.append(endpoint)
        return endpoint

    def close(self) -> None:
        for key in list(self.endpoints):
            self.detach(key)
        delete_namespace(self.namespace)

    def write_hosts(self, names: dict[str, list[str]]) -> None:
        """Cloud Map as the VPC resolver would answer it, per namespace (/etc/netns/NS/hosts,
        which `ip netns exec` mounts over /etc/hosts). Written in place: running processes
        see the bind-mounted file, not a new one."""
        for endpoint in list(self.endpoints.values()):
            lines = ["127.0.0.1 localhost", f"{endpoint.address} {self.hostname}"]
            lines += [f"{address} {name}" for name, addresses in sorted(names.items()) for address in addresses]
            path = NETNS_ETC / endpoint.namespace / "hosts"
            with open(path, "a+") as hosts:
                hosts.seek(0)
                hosts.truncate()
                hosts.write("\n".join(lines) + "\n")

    def enforce(self, rules) -> None:
        """(Re)writes every endpoint's iptables from the rules and the current members of
        each group; counters read first, so they add up across rewrites."""
        with self._lock:
            endpoints = list(self.endpoints.values())
        members: dict[str, list[str]] = {}
        for endpoint in endpoints:
            for group in endpoint.groups:
                members.setdefault(group, []).append(endpoint.address)
        for endpoint in endpoints:
            self._collect_counters(endpoint)
            lines = ["*filter", ":INPUT DROP [0:0]", ":FORWARD DROP [0:0]", ":OUTPUT DROP [0:0]"]
            for chain, direction, side, interface in (
                ("INPUT", "ingress", "-s", "-i"),
                ("OUTPUT", "egress", "-d", "-o"),
            ):
                lines += [
                    f"-A {chain} {interface} lo -j ACCEPT",
                    f"-A {chain} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT",
                ]
                for rule in rules:
                    if rule.direction != direction or rule.group not in endpoint.groups:
                        continue
                    peers = members.get(rule.peer_group, []) if rule.peer_group else [rule.cidr]
                    for peer in peers:
                        lines.append(
                            f"-A {chain} -p tcp {side} {peer} --dport {rule.from_port}:{rule.to_port} -m conntrack "
                            "--ctstate NEW "
                            f'-m comment --comment "allow {rule.name}" -j ACCEPT'
                        )
                for other in endpoints:
                    if other is not endpoint:
                        lines.append(
                            f'-A {chain} -p tcp --syn {side} {other.address} -m comment --comment "drop {other.key}" '
                            "-j DROP"
                        )
                # A stopped task's address has no interface any more: on AWS such a SYN goes
                # unanswered; here the sender's own rules drop it, named so it is not taken
                # for a rule that blocks Dynamo.
                for gone in self.detached:
                    lines.append(
                        f'-A {chain} -p tcp --syn {side} {gone.address} -m comment --comment "drop {gone.key} '
                        '(stopped)" -j DROP'
                    )
                lines.append(f'-A {chain} -p tcp --syn -m comment --comment "drop elsewhere" -j DROP')
            lines.append("COMMIT")
            subprocess.run(
                ["ip", "netns", "exec", endpoint.namespace, "iptables-restore"],
                input="\n".join(lines) + "\n",
                check=True,
                capture_output=True,
                text=True,
                timeout=60,
            )

    def _collect_counters(self, endpoint: Endpoint) -> None:
        # -L -Z lists and zeroes in one call, so a later read adds only what is new.
        listing = run("iptables", "-L", "-n", "-v", "-x", "-Z", namespace=endpoint.namespace, check=False).stdout
        chain = ""
        for line in listing.splitlines():
            if header := CHAIN.match(line):
                chain = header["chain"]
            elif (match := COUNTED_RULE.match(line)) and int(match["packets"]):
                key = (endpoint.key, chain, match["comment"])
                self.counters[key] = self.counters.get(key, 0) + int(match["packets"])

    def read_counters(self) -> dict[tuple[str, str, str], int]:
        with self._lock:
            endpoints = list(self.endpoints.values())
        for endpoint in endpoints:
            self._collect_counters(endpoint)
        return dict(self.counters)

    def exec_argv(self, key: str) -> list[str]:
        return ["ip", "netns", "exec", self.endpoints[key].namespace]

    def enter(self, key: str) -> None:
        """Move the calling thread into an endpoint's network namespace (for its sockets)."""
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        with open(f"/run/netns/{self.endpoints[key].namespace}") as handle:
            if libc.setns(handle.fileno(), 0x40000000) != 0:  # CLONE_NEWNET
                raise OSError(ctypes.get_errno(), "setns failed")
