"""The twin's scenario for one stack, as `make test` and `make twin` run it, and its report."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from tests.twin import collector
from tests.twin.runtime import DrillResult, Response, Twin

# How long each drill watches before it may conclude: longer than the processes need to
# notice. Dynamo's etcd lease is 10 s; in the twin the workers exited 6-9 s and the frontends
# about 15 s after a lone etcd was killed, so 30 s sees every exit and the restarts after them.
ETCD_OBSERVE_SECONDS = 30
NATS_OBSERVE_SECONDS = 15
# With three members, losing one changes nothing Dynamo can see; 15 s covers its lease.
ETCD_MEMBER_OBSERVE_SECONDS = 15
# A replacement Fargate task takes longer than that to start (image pull, ENI); the
# quorum drill waits this long before ECS's new tasks start, so the leases run out as on AWS.
FARGATE_START_SECONDS = 20


@dataclass
class Report:
    stack_name: str
    startup_seconds: float = 0.0
    started_counts: dict[str, int] = field(default_factory=dict)  # role -> tasks running once serving
    health_budget: dict[str, tuple[float, float]] = field(default_factory=dict)  # task -> (took, allowed)
    health_without_workers: dict[str, Response] = field(default_factory=dict)
    health_with_model: Response | None = None
    health_check: dict = field(default_factory=dict)
    served_model: str = ""
    streamed_chat: Response | None = None
    plain_completion: Response | None = None
    served_by_role: dict[str, int] = field(default_factory=dict)
    dropped_args: dict[str, list[str]] = field(default_factory=dict)
    serving_drops: dict[tuple[str, str], int] = field(default_factory=dict)
    flows: dict[tuple[str, str, int], dict] = field(default_factory=dict)
    serving_flows: dict[tuple[str, str, int], dict] = field(default_factory=dict)  # before the drills
    idle_rules: list[str] = field(default_factory=list)
    drills: dict[str, DrillResult] = field(
        default_factory=dict
    )  # nats, worker, etcd | etcd-member, etcd-roll, etcd-quorum
    stream_across_kill: Response | None = None
    migration_attempted: bool = False
    drill_drops: dict[tuple[str, str], int] = field(default_factory=dict)
    # role -> the metric names its collector would publish, read from a running task's /metrics
    published_metrics: dict[str, set[str]] = field(default_factory=dict)
    not_run: dict[str, str] = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = [f"{self.stack_name}: serving after {self.startup_seconds:.1f}s; model {self.served_model!r}"]
        without = self.health_without_workers
        out.append(
            f"  target group {self.health_check.get('path')} (matcher {self.health_check.get('matcher')}): "
            f"{without['health'].status} with no worker ({without['health'].body[:60]}), "
            f"/v1/models {without['models'].body[:40]}, completion {without['completion'].status}; "
            f"{self.health_with_model.status if self.health_with_model else '-'} with a served model"
        )
        out.append(
            f"  streamed chat: {self.streamed_chat.chunks if self.streamed_chat else 0} chunks; plain completion: "
            f"{self.plain_completion.status if self.plain_completion else '-'}; generate requests served: "
            + ", ".join(f"{role} {count}" for role, count in sorted(self.served_by_role.items()))
        )
        for role, dropped in sorted(self.dropped_args.items()):
            out.append(f"  {role}: vLLM arguments the mocker does not take: {', '.join(dropped) or 'none'}")
        out.append(
            "  metrics its collector would publish, from the real /metrics: "
            + "; ".join(f"{role} {', '.join(sorted(names))}" for role, names in sorted(self.published_metrics.items()))
        )
        for name, why in sorted(self.not_run.items()):
            out.append(f"  not run here: {name}, {why}")
        out.append(
            f"  dropped by security groups while serving: {self._drops(self.serving_drops)}; during the drills: "
            f"{self._drops(self.drill_drops)}"
        )
        out.append("  flows (source -> destination:port  connections  allowed by):")
        for (source, destination, port), row in sorted(self.flows.items()):
            out.append(
                f"    {source:>8} -> {destination}:{port:<6} {row['count']:>4}  {', '.join(sorted(row['rules']))}"
            )
        out.append("  rules that carried no flow (candidates to narrow, or not exercisable here):")
        out += [f"    {name}" for name in self.idle_rules]
        out.append("  drills (seconds after the kill):")
        for drill in self.drills.values():
            recovered = "never" if drill.recovered_after is None else f"{drill.recovered_after:.1f}s"
            first = "none" if drill.first_failure is None else f"{drill.first_failure:.1f}s"
            out.append(
                f"    {drill.name}: first failed completion {first}, succeeding again {recovered} "
                f"({drill.failures} failed tries); exited: {', '.join(drill.exited)}"
                + (
                    ""
                    if drill.rejoined is None
                    else f"; members rejoined with their data: {'yes' if drill.rejoined else 'no'}"
                )
            )
        if self.stream_across_kill:
            stream = self.stream_across_kill
            verdict = "completed" if stream.done and not stream.error else f"failed: {stream.error}"
            out.append(
                f"    the stream on the killed worker: {verdict} after {stream.chunks} chunks; "
                f"frontend tried to migrate it: {'yes' if self.migration_attempted else 'no'}"
            )
        return out

    @staticmethod
    def _drops(drops: dict[tuple[str, str], int]) -> str:
        return (
            ", ".join(f"{source} -> {destination}: {count}" for (source, destination), count in sorted(drops.items()))
            or "none"
        )


def serve(twin: Twin, report: Report) -> None:
    """Steps 1-4: start, health, completions, flows."""
    started = time.monotonic()
    twin.start()
    report.startup_seconds = time.monotonic() - started
    report.served_model = twin.served_model
    report.started_counts = {role: len(twin.running(role)) for role in twin.plan.services}
    report.health_check = dict(twin.plan.balancer.health_check)
    report.health_without_workers = twin.health_without_workers
    report.health_with_model = twin.target_health()
    for task in twin.tasks.values():
        check = task.service.container.get("healthCheck", {})
        allowed = check.get("startPeriod", 0) + check.get("retries", 3) * check.get("interval", 30)
        report.health_budget[task.key] = (task.healthy_at - task.started, allowed)
        if task.dropped_args:
            report.dropped_args[task.service.role] = task.dropped_args
    report.streamed_chat = twin.completion(stream=True, max_tokens=32)
    report.plain_completion = twin.completion(stream=False, chat=False, max_tokens=8)
    report.served_by_role = {role: twin.requests_served(role) for role in twin.worker_roles()}
    # After the completions, so that the latency histograms have observations.
    for role, service in twin.plan.services.items():
        if service.collector is not None:
            text = twin.scrape(twin.running(role)[0])
            report.published_metrics[role] = collector.published(collector.config_of(service.collector), text)
    report.not_run = dict(twin.plan.not_run)
    report.serving_drops = twin.drops()
    report.serving_flows = twin.flows()


def drill(twin: Twin, report: Report, *, quorum_drill: bool = True) -> None:
    """Step 5: NATS, a decode worker mid-stream, then etcd: the lone task (everything
    restarts), or one member, a rolling deployment and (with `quorum_drill`) a lost quorum."""
    report.drills["nats"] = twin.replace_drill("nats", observe=NATS_OBSERVE_SECONDS)
    migrations_before = twin.log_count("frontend", "recreating stream")
    report.drills["worker"], report.stream_across_kill = twin.worker_kill_drill()
    report.migration_attempted = twin.log_count("frontend", "recreating stream") > migrations_before
    members = twin.etcd_roles()
    if len(members) == 1:
        report.drills["etcd"] = twin.replace_drill(members[0], observe=ETCD_OBSERVE_SECONDS)
    else:
        report.drills["etcd-member"] = twin.etcd_members_killed_drill(
            1, start_delay=0, observe=ETCD_MEMBER_OBSERVE_SECONDS
        )
        report.drills["etcd-roll"] = twin.etcd_roll_drill(observe=ETCD_MEMBER_OBSERVE_SECONDS)
        if quorum_drill:
            quorum = len(members) // 2 + 1
            report.drills["etcd-quorum"] = twin.etcd_members_killed_drill(
                len(members) - quorum + 1,
                start_delay=FARGATE_START_SECONDS,
                observe=FARGATE_START_SECONDS + ETCD_OBSERVE_SECONDS,
            )
    total = twin.drops()
    report.drill_drops = {
        pair: count - report.serving_drops.get(pair, 0)
        for pair, count in total.items()
        if count > report.serving_drops.get(pair, 0)
    }


def finish(twin: Twin, report: Report) -> None:
    report.flows = twin.flows()
    report.idle_rules = [rule.name for rule in twin.idle_rules()]
