"""The twin: one synthesized stack's services as processes in network namespaces.

It plays the parts AWS would: ECS starts each service's desired count of tasks and
replaces a task whose essential container exits; Cloud Map resolves the services' names to
their tasks' addresses; the ALB sends the target group's health check and the requests
from its own namespace; security groups are enforced (network.py). What runs is what the
task definitions say (containers.py), with the real Dynamo frontend, the mocker in place
of vLLM, and Debian's etcd and nats-server.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.twin import collector
from tests.twin.containers import image_user, map_paths, translate_command, translate_health_check
from tests.twin.network import Fabric, remove_leftovers
from tests.twin.plan import Rule, Service, StackPlan

# Roles in start order: what the others discover first.
HEALTH_POLL_SECONDS = 1.0
# ECS backs off a service whose tasks keep failing right after they start; the twin waits
# 1 s before the second such replacement, then doubles the wait up to BACKOFF_MAX_SECONDS.
CRASH_LOOP_SECONDS = 10
# Terraform moves to the next etcd member once the previous member's service is stable; AWS's
# ServicesStable waiter polls every 15 s (botocore data/ecs/2014-11-13/waiters-2.json), so
# members are replaced at least that far apart. Replaced 1.5 s apart instead, a frontend
# lost its etcd lease in 1 of 3 runs here ("Unable to maintain lease", then it exits).
ROLL_SPACING_SECONDS = 15
BACKOFF_MAX_SECONDS = 16


@dataclass
class Task:
    key: str  # e.g. decode-2: role and a number that never repeats within a run
    service: Service
    address: str
    process: subprocess.Popen
    started: float
    log: Path
    dropped_args: list[str]
    healthy_at: float | None = None
    health_output: str = ""
    exit: tuple[int, float] | None = None
    stopping: bool = False


@dataclass
class Event:
    at: float
    what: str


@dataclass
class Response:
    status: int | None
    body: str = ""
    chunks: int = 0
    done: bool = False
    error: str | None = None
    max_gap: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.error is None and (self.done or self.chunks == 0)


@dataclass
class DrillResult:
    name: str
    killed: str
    first_failure: float | None
    recovered_after: float | None  # seconds from the kill until completions succeed for good
    failures: int
    exited: list[str]
    replaced: list[str]
    rejoined: bool | None = None  # etcd drills: the same members, by id, before and after


class Twin:
    def __init__(
        self, plan: StackPlan, dynamo_python: Path, *, run_name: str, log: Callable[[str], None] = print
    ) -> None:
        self.plan = plan
        # Its own directory in the system's temporary directory, open for the containers'
        # users to traverse (a pytest tmp_path is private to root).
        self.workdir = Path(tempfile.mkdtemp(prefix=f"dynamo-twin-{run_name}-"))
        self.workdir.chmod(0o755)
        self.dynamo_python = dynamo_python
        self.say = log
        self.removed_leftovers = remove_leftovers()
        self.fabric = Fabric(run_name, socket.gethostname())
        self.tasks: dict[str, Task] = {}
        self.history: dict[str, str] = {}  # every address ever given -> task key
        self.events: list[Event] = []
        self.numbers: dict[str, int] = {}
        self.quick_exits: dict[str, int] = {}
        # Seconds before a replacement task starts, per role; 0 (at once) unless a drill
        # models ECS's own start-up time.
        self.start_delay: dict[str, float] = {}
        self.epoch = time.monotonic()
        self.health_without_workers: dict[str, object] = {}
        self._closing = False
        self._turn = 0
        self._lock = threading.RLock()
        alb = self.fabric.attach("alb", plan.balancer.security_groups)
        self.history[alb.address] = "alb"
        self.alb_address = alb.address
        self._prepare_instance_volumes()
        self._scheduler = threading.Thread(target=self._schedule, daemon=True)

    # --- set-up ------------------------------------------------------------------

    def model_id(self) -> str:
        command = self.plan.services["decode"].container["command"]
        return command[command.index("--model") + 1]

    def _prepare_instance_volumes(self) -> None:
        """Host volumes live on the GPU instance: run the user data's lines that make them,
        with the path moved into the twin's directory, then check that the image's user can
        write there before putting the model in, as a download would."""
        self.instance_dirs: dict[str, Path] = {}
        for service in self.plan.services.values():
            for volume in service.volumes:
                if volume.host_path is None or volume.host_path in self.instance_dirs:
                    continue
                host_dir = self.workdir / "instance" / volume.host_path.strip("/")
                host_dir.parent.mkdir(parents=True, exist_ok=True)
                lines = [line for line in self.plan.instance_user_data.splitlines() if volume.host_path in line]
                if not lines:
                    raise RuntimeError(f"the GPU instances' user data never creates {volume.host_path}")
                for line in lines:
                    subprocess.run(
                        ["bash", "-euc", line.replace(volume.host_path, str(host_dir))], check=True, timeout=30
                    )
                uid, gid = image_user(service.container["image"])
                probe = subprocess.run(
                    [
                        "setpriv",
                        f"--reuid={uid}",
                        f"--regid={gid}",
                        "--clear-groups",
                        "touch",
                        str(host_dir / ".twin-write-probe"),
                    ],
                    capture_output=True,
                    text=True,
                )
                if probe.returncode != 0:
                    raise RuntimeError(
                        f"{volume.host_path} as the user data leaves it is not writable for uid {uid} gid {gid}, "
                        f"the user {service.container['image']} runs as: {probe.stderr.strip()}"
                    )
                self._write_model(host_dir, uid, gid)
                self.instance_dirs[volume.host_path] = host_dir

    def _write_model(self, hf_home: Path, uid: int, gid: int) -> None:
        """The stand-in model in a Hugging Face cache, made once per twin and copied after."""
        made = self.workdir / "model"
        if not made.exists():
            subprocess.run(
                [str(self.dynamo_python), "-m", "tests.twin.hf_model", str(made), self.model_id()],
                check=True,
                capture_output=True,
                cwd=Path(__file__).resolve().parents[2],
                timeout=120,
            )
        shutil.copytree(made, hf_home, dirs_exist_ok=True)
        subprocess.run(["chown", "-R", f"{uid}:{gid}", str(hf_home)], check=True)

    # --- tasks -------------------------------------------------------------------

    def _now(self) -> float:
        return time.monotonic() - self.epoch

    def _event(self, what: str) -> None:
        self.events.append(Event(self._now(), what))
        self.say(f"[{self._now():6.1f}s] {what}")

    def start_task(self, role: str) -> Task:
        service = self.plan.services[role]
        container = service.container
        with self._lock:
            self.numbers[role] = self.numbers.get(role, 0) + 1
            key = f"{role}-{self.numbers[role]}"
        endpoint = self.fabric.attach(key, service.security_groups)
        self.history[endpoint.address] = key
        uid, gid = image_user(container["image"])
        task_dir = self.workdir / "tasks" / key
        home = task_dir / "home"
        home.mkdir(parents=True)
        # A container's /tmp is its own: Dynamo writes a logging configuration there per process.
        tmp = task_dir / "tmp"
        tmp.mkdir()
        mounts = {}
        for point in container.get("mountPoints", []):
            volume = next(volume for volume in service.volumes if volume.name == point["sourceVolume"])
            if volume.host_path:
                mounts[point["containerPath"]] = self.instance_dirs[volume.host_path]
            elif volume.persistent:
                # EFS: the same directory for every task of the member, across replacements.
                mounts[point["containerPath"]] = self.workdir / "efs" / volume.persistent
                mounts[point["containerPath"]].mkdir(parents=True, exist_ok=True)
                subprocess.run(["chown", "-R", f"{uid}:{gid}", str(mounts[point["containerPath"]])], check=True)
            else:
                mounts[point["containerPath"]] = task_dir / "volumes" / volume.name
                mounts[point["containerPath"]].mkdir(parents=True)
        if container["image"].startswith("nvcr.io/nvidia/ai-dynamo/") and "HF_HOME" not in {
            item["name"] for item in container["environment"]
        }:
            # What this process would download into its default Hugging Face cache.
            self._write_model(home / ".cache" / "huggingface", uid, gid)
        subprocess.run(["chown", "-R", f"{uid}:{gid}", str(task_dir)], check=True)

        environment = {item["name"]: map_paths(item["value"], mounts) for item in container.get("environment", [])}
        environment.update({item["name"]: f"twin-fake-{item['name'].lower()}" for item in container.get("secrets", [])})
        environment.update(
            HOME=str(home),
            TMPDIR=str(tmp),
            PATH=f"{self.dynamo_python.parent}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            # The twin's only addition: nothing may reach the Hugging Face hub from here.
            HF_HUB_OFFLINE="1",
        )
        translation = translate_command(container["command"], self.dynamo_python)
        argv = [map_paths(arg, mounts) for arg in translation.argv]
        log = task_dir / "container.log"
        with self._lock:
            self._publish()  # its security groups and names are in place before it runs
        process = subprocess.Popen(
            self.fabric.exec_argv(key)
            + ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "env", "-i"]
            + [f"{name}={value}" for name, value in sorted(environment.items())]
            + argv,
            cwd=home,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        task = Task(key, service, endpoint.address, process, time.monotonic(), log, translation.dropped)
        with self._lock:
            self.tasks[key] = task
            self._publish_names()  # its security groups are already in place
        self._event(
            f"started {key} at {endpoint.address}"
            + (f" (dropped for the mocker: {', '.join(translation.dropped)})" if translation.dropped else "")
        )
        threading.Thread(target=self._health_checks, args=(task, uid, gid), daemon=True).start()
        return task

    def _publish(self) -> None:
        """Security groups and Cloud Map follow the current tasks."""
        self.fabric.enforce(self.plan.rules)
        self._publish_names()

    def _publish_names(self) -> None:
        names: dict[str, list[str]] = {}
        for task in self.tasks.values():
            if task.service.cloud_map_name and task.exit is None:
                names.setdefault(task.service.cloud_map_name, []).append(task.address)
        self.fabric.write_hosts(names)

    def _health_checks(self, task: Task, uid: int, gid: int) -> None:
        check = task.service.container.get("healthCheck")
        if not check:
            return
        argv = self.fabric.exec_argv(task.key) + ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups"]
        argv += translate_health_check(check["command"], self.dynamo_python)
        while task.exit is None and not task.stopping and not self._closing:
            try:
                result = subprocess.run(argv, capture_output=True, text=True, timeout=check.get("timeout", 5), cwd="/")
                passed, output = result.returncode == 0, (result.stdout + result.stderr)[-300:]
            except subprocess.TimeoutExpired:
                passed, output = False, "timed out"
            except (FileNotFoundError, ValueError):
                return
            task.health_output = output
            if passed and task.healthy_at is None:
                task.healthy_at = time.monotonic()
                self._event(f"{task.key} healthy after {task.healthy_at - task.started:.1f}s")
            time.sleep(HEALTH_POLL_SECONDS if task.healthy_at is None else check.get("interval", 30))

    def stop_task(self, key: str, sig: int = signal.SIGKILL) -> None:
        task = self.tasks[key]
        try:
            os.killpg(task.process.pid, sig)
        except ProcessLookupError:
            pass

    def _schedule(self) -> None:
        """ECS's service scheduler: a task whose essential container exited is stopped and
        a new one (new namespace, new address, new task storage) takes its place."""
        while not self._closing:
            time.sleep(0.2)
            for task in list(self.tasks.values()):
                code = task.process.poll()
                if code is None or task.exit is not None or self._closing:
                    continue
                task.exit = (code, time.monotonic())
                self._event(f"{task.key} exited with {code}")
                with self._lock:
                    self.fabric.detach(task.key)
                    del self.tasks[task.key]
                    self._publish()
                role = task.service.role
                if task.stopping:
                    continue
                delay = self.start_delay.get(role, 0.0)
                if task.exit[1] - task.started < CRASH_LOOP_SECONDS and task.healthy_at is None:
                    quick = self.quick_exits[role] = self.quick_exits.get(role, 0) + 1
                    if quick > 1:
                        delay = max(delay, min(2 ** (quick - 2), BACKOFF_MAX_SECONDS))
                else:
                    self.quick_exits[role] = 0
                if delay:
                    threading.Timer(delay, self.start_task, args=(role,)).start()
                else:
                    self.start_task(role)

    def running(self, role: str) -> list[Task]:
        return [task for task in self.tasks.values() if task.service.role == role and task.exit is None]

    def start(self, *, workers: bool = True, wait_for_completions: bool = True) -> None:
        """Control plane, then frontends; the frontend's health is read with no worker;
        then the workers. ECS starts them all at once; the order only makes the
        no-worker reading possible."""
        self._scheduler.start()
        for role in (*self.control_plane_roles(), "frontend"):
            for _ in range(self.plan.services[role].desired_count):
                self.start_task(role)
        self.wait_healthy((*self.control_plane_roles(), "frontend"))
        self.health_without_workers = {
            "health": self.target_health(),
            "models": self.alb_get("/v1/models"),
            "completion": self.completion(stream=False, model=self.model_id(), timeout=10),
        }
        if workers:
            for role in self.worker_roles():
                for _ in range(self.plan.services[role].desired_count):
                    self.start_task(role)
            self.wait_healthy(self.worker_roles())
            self.wait_for_model(complete=wait_for_completions)

    def control_plane_roles(self) -> list[str]:
        """What Dynamo discovers through Cloud Map: the etcd member(s) and NATS."""
        return sorted(role for role, service in self.plan.services.items() if service.cloud_map_name)

    def etcd_roles(self) -> list[str]:
        return [role for role in self.control_plane_roles() if role == "etcd" or role.startswith("etcd-")]

    def worker_roles(self) -> list[str]:
        return [role for role in ("decode", "prefill") if role in self.plan.services]

    def wait_healthy(self, roles, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pending = [task.key for role in roles for task in self.running(role) if task.healthy_at is None]
            counts_met = all(len(self.running(role)) >= self.plan.services[role].desired_count for role in roles)
            if counts_met and not pending:
                return
            time.sleep(0.3)
        raise TimeoutError(f"not healthy after {timeout:.0f}s: {pending}; {self.describe_tasks()}")

    def wait_for_model(self, *, complete: bool = True, timeout: float = 90) -> str:
        """Until the frontend lists a model (and, with `complete`, serves a completion)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            response = self.alb_get("/v1/models")
            if response.status == 200 and json.loads(response.body).get("data"):
                served = json.loads(response.body)["data"][0]["id"]
                if not complete or self.completion(stream=False, model=served, timeout=10).ok:
                    self.served_model = served
                    return served
            time.sleep(0.5)
        raise TimeoutError(f"no model served through the ALB after {timeout:.0f}s; {self.describe_tasks()}")

    def describe_tasks(self) -> str:
        return "; ".join(
            f"{task.key} {'healthy' if task.healthy_at else 'unhealthy'} log tail: {task.log.read_text()[-400:]!r} "
            f"health: {task.health_output!r}"
            for task in self.tasks.values()
        )

    # --- the ALB ----------------------------------------------------------------

    def targets(self) -> list[Task]:
        return [task for task in self.running("frontend") if task.healthy_at is not None]

    def _in_alb(self, work: Callable[[], object]) -> object:
        """Run `work` on a thread inside the ALB's namespace: its sockets start there."""
        result: dict[str, object] = {}

        def body() -> None:
            self.fabric.enter("alb")
            try:
                result["value"] = work()
            except Exception as error:  # reported to the caller below
                result["error"] = error

        thread = threading.Thread(target=body, daemon=True)
        thread.start()
        thread.join()
        if "error" in result:
            raise result["error"]
        return result["value"]

    def _target(self) -> Task:
        """Round robin over the healthy targets, as the ALB does."""
        targets = self.targets()
        if not targets:
            raise ConnectionError("no healthy target")
        self._turn += 1
        return targets[self._turn % len(targets)]

    def target_health(self) -> Response:
        """The target group's health check (path, port, timeout) against one target."""
        check = self.plan.balancer.health_check
        port = None if check["port"] == "traffic-port" else int(check["port"])
        return self.alb_get(check["path"], port=port, timeout=check["timeout"])

    def alb_get(self, path: str, *, port: int | None = None, timeout: float = 10) -> Response:
        def work() -> Response:
            chosen = self._target()
            connection = http.client.HTTPConnection(chosen.address, port or chosen.service.target_port, timeout=timeout)
            try:
                connection.request("GET", path)
                reply = connection.getresponse()
                return Response(reply.status, reply.read().decode())
            finally:
                connection.close()

        try:
            return self._in_alb(work)
        except (OSError, ConnectionError) as error:
            return Response(None, error=f"{type(error).__name__}: {error}")

    def completion(
        self,
        *,
        stream: bool,
        model: str | None = None,
        chat: bool = True,
        max_tokens: int = 8,
        timeout: float = 20,
        on_chunk: Callable[[int], None] | None = None,
    ) -> Response:
        model = model or self.served_model
        if chat:
            path, payload = "/v1/chat/completions", {"messages": [{"role": "user", "content": "Hello from the twin"}]}
        else:
            path, payload = "/v1/completions", {"prompt": "Hello from the twin"}
        payload.update(model=model, max_tokens=max_tokens, stream=stream)
        if stream:
            # Ask for exactly max_tokens: a stream that ends early is then visible.
            payload["ignore_eos"] = True

        def work() -> Response:
            chosen = self._target()
            connection = http.client.HTTPConnection(chosen.address, chosen.service.target_port, timeout=timeout)
            try:
                connection.request("POST", path, body=json.dumps(payload), headers={"Content-Type": "application/json"})
                reply = connection.getresponse()
                if reply.status != 200 or not stream:
                    return Response(reply.status, reply.read().decode())
                response, last = Response(reply.status), time.monotonic()
                for raw in reply:
                    line = raw.decode().strip()
                    if not line.startswith("data:"):
                        if line.startswith("event: error") or line.startswith("error"):
                            response.error = line
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        response.done = True
                        break
                    chunk = json.loads(data)
                    if "error" in chunk:
                        response.error = json.dumps(chunk["error"])
                        break
                    now = time.monotonic()
                    response.max_gap, last = max(response.max_gap, now - last), now
                    response.chunks += 1
                    if on_chunk:
                        on_chunk(response.chunks)
                return response
            finally:
                connection.close()

        try:
            return self._in_alb(work)
        except (OSError, ConnectionError, http.client.HTTPException, json.JSONDecodeError) as error:
            return Response(None, error=f"{type(error).__name__}: {error}")

    # --- inside a task -----------------------------------------------------------

    def metrics(self, task: Task) -> str:
        """A worker's /metrics on its system port, read from inside its namespace."""
        port = next(
            item["value"] for item in task.service.container["environment"] if item["name"] == "DYN_SYSTEM_PORT"
        )
        return self._get_inside(task, f"http://127.0.0.1:{port}/metrics")

    def scrape(self, task: Task) -> str:
        """What the task's metrics collector reads: the target and path its configuration names
        (tests/twin/collector.py), from inside the task's namespace."""
        assert task.service.collector is not None, f"{task.key} has no metrics collector"
        scrape = collector.target(collector.config_of(task.service.collector))
        host = "127.0.0.1" if scrape.host == "localhost" else scrape.host
        return self._get_inside(task, f"http://{host}:{scrape.port}{scrape.path}")

    def _get_inside(self, task: Task, url: str) -> str:
        probe = f"import urllib.request; print(urllib.request.urlopen({url!r}, timeout=5).read().decode())"
        result = subprocess.run(
            self.fabric.exec_argv(task.key) + [str(self.dynamo_python), "-c", probe],
            capture_output=True,
            text=True,
            timeout=30,
        )
        return result.stdout

    def requests_served(self, role: str) -> int:
        """Requests the role's running workers handled on their generate endpoint."""
        total = 0
        for task in self.running(role):
            for line in self.metrics(task).splitlines():
                if line.startswith("dynamo_component_requests_total{") and 'dynamo_endpoint="generate"' in line:
                    total += int(float(line.rsplit(" ", 1)[1]))
        return total

    def inflight(self, task: Task) -> float:
        for line in self.metrics(task).splitlines():
            if line.startswith("dynamo_component_inflight_requests{") and 'dynamo_endpoint="generate"' in line:
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    # --- drills --------------------------------------------------------------------

    def replace_drill(self, role: str, *, observe: float, settle: float = 5, deadline: float = 150) -> DrillResult:
        """Kill the role's task as a crash or a Fargate retirement would; ECS starts a new one
        (new address; new task storage, or the same EFS data)."""
        victim = self.running(role)[0]
        return self._drill(
            f"{role} task replaced",
            victim.key,
            lambda: self.stop_task(victim.key),
            observe=observe,
            settle=settle,
            deadline=deadline,
        )

    def etcd_members_killed_drill(self, count: int, *, start_delay: float, observe: float) -> DrillResult:
        """Kill `count` etcd members at once; ECS starts each again after `start_delay`
        seconds (a Fargate task's start-up), on the member's own EFS data."""
        victims = [self.running(role)[0] for role in self.etcd_roles()[:count]]
        members_before = self.etcd_members()
        for victim in victims:
            self.start_delay[victim.service.role] = start_delay
        try:
            result = self._drill(
                f"{count} of {len(self.etcd_roles())} etcd members killed",
                ", ".join(victim.key for victim in victims),
                lambda: [self.stop_task(victim.key) for victim in victims],
                observe=observe,
                settle=5,
                deadline=180,
            )
        finally:
            for victim in victims:
                self.start_delay.pop(victim.service.role, None)
        result.rejoined = self.etcd_members() == members_before
        return result

    def etcd_roll_drill(self, *, observe: float) -> DrillResult:
        """A control-plane deployment: members replaced one at a time (SIGTERM, as ECS stops a
        task), each ROLL_SPACING_SECONDS after the one before is healthy again, as the
        members' service ordering makes Terraform do."""
        members_before = self.etcd_members()

        def roll() -> None:
            for index, role in enumerate(self.etcd_roles()):
                if index:
                    time.sleep(ROLL_SPACING_SECONDS)
                old = self.running(role)[0]
                self.stop_task(old.key, signal.SIGTERM)
                deadline = time.monotonic() + 60
                while not any(task.key != old.key and task.healthy_at for task in self.running(role)):
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{role} did not come back: {self.describe_tasks()}")
                    time.sleep(0.2)

        result = self._drill(
            "etcd members rolled one at a time",
            ", ".join(self.etcd_roles()),
            roll,
            observe=observe,
            settle=3,
            deadline=180,
        )
        result.rejoined = self.etcd_members() == members_before
        return result

    def etcd_members(self) -> dict[str, str]:
        """Member name -> member id, as the cluster lists them (asked inside a member's namespace)."""
        for role in self.etcd_roles():
            for task in self.running(role):
                listing = subprocess.run(
                    self.fabric.exec_argv(task.key)
                    + ["etcdctl", "--endpoints=http://127.0.0.1:2379", "member", "list", "-w", "json"],
                    capture_output=True,
                    text=True,
                    timeout=30,
                )
                if listing.returncode == 0:
                    return {
                        member.get("name", ""): f"{member['ID']:x}" for member in json.loads(listing.stdout)["members"]
                    }
        return {}

    def _drill(
        self, name: str, killed: str, action: Callable[[], object], *, observe: float, settle: float, deadline: float
    ) -> DrillResult:
        """Runs `action` (the kill) and tries a completion every half second for at least
        `observe` seconds (longer than the processes need to notice), until completions have
        succeeded for `settle` seconds with every service back at its count."""
        start_events = len(self.events)
        killed_at = time.monotonic()
        acting = threading.Thread(target=action, daemon=True)
        acting.start()
        first_failure, last_failure, failures, good_since = None, None, 0, None
        recovered = None
        while time.monotonic() - killed_at < deadline:
            response = self.completion(stream=False, max_tokens=4, timeout=5)
            now = time.monotonic()
            if response.ok:
                good_since = good_since or now
            else:
                failures += 1
                first_failure = first_failure or now
                last_failure, good_since = now, None
            settled = not acting.is_alive() and all(
                len(self.running(role)) >= service.desired_count for role, service in self.plan.services.items()
            )
            if good_since and settled and now - good_since >= settle and now - killed_at >= observe:
                recovered = (good_since - killed_at) if last_failure else 0.0
                break
            time.sleep(0.5)
        return DrillResult(
            name,
            killed,
            first_failure and first_failure - killed_at,
            recovered,
            failures,
            *self._exits_since(start_events),
        )

    def _exits_since(self, index: int) -> tuple[list[str], list[str]]:
        events = [event.what.split(" ") for event in self.events[index:]]
        exited = [words[0] for words in events if words[1:3] == ["exited", "with"]]
        started = [words[1] for words in events if words[0] == "started"]
        return exited, started

    def worker_kill_drill(self) -> tuple[DrillResult, Response]:
        """Two decode workers (scaled out if the stack runs fewer, as autoscaling would); a
        long stream runs; the decode worker serving it is killed mid-stream."""
        while len(self.running("decode")) < 2:
            self.start_task("decode")
        self.wait_healthy(["decode"])
        time.sleep(2)  # the frontend sees the new worker through discovery
        progress = threading.Event()
        outcome: dict[str, Response] = {}
        stream = threading.Thread(
            target=lambda: outcome.setdefault(
                "response",
                self.completion(stream=True, max_tokens=600, timeout=60, on_chunk=lambda n: n >= 20 and progress.set()),
            ),
            daemon=True,
        )
        stream.start()
        if not progress.wait(30):
            raise TimeoutError("the stream produced no tokens")
        serving = max(self.running("decode"), key=self.inflight)
        result = self._drill(
            "decode worker killed mid-stream",
            serving.key,
            lambda: self.stop_task(serving.key),
            observe=15,
            settle=3,
            deadline=90,
        )
        stream.join(90)
        return result, outcome.get("response", Response(None, error="stream did not finish"))

    # --- what was observed ---------------------------------------------------------

    def log_count(self, role: str, text: str) -> int:
        """How often the role's containers (running or gone) logged `text`."""
        logs = (self.workdir / "tasks").glob(f"{role}-*/container.log")
        return sum(log.read_text(errors="replace").count(text) for log in logs)

    def role_of(self, address: str) -> str:
        """frontend, decode, ... or alb for a twin address; the address itself otherwise."""
        key = self.history.get(address)
        return key.rsplit("-", 1)[0] if key else address

    def groups_of(self, key: str) -> set[str]:
        role = key.rsplit("-", 1)[0]
        return (
            set(self.plan.balancer.security_groups) if key == "alb" else set(self.plan.services[role].security_groups)
        )

    def flows(self, since: float = 0.0) -> dict[tuple[str, str, int], dict]:
        """(source role, destination role, port) -> count and the rules that admitted it."""
        matrix: dict[tuple[str, str, int], dict] = {}
        endpoints = [*self.fabric.endpoints.values(), *self.fabric.detached]
        for endpoint in endpoints:
            for flow in endpoint.flows:
                if flow.at - self.epoch < since:
                    continue
                source_key = self.history.get(flow.source, flow.source)
                row = matrix.setdefault(
                    (self.role_of(flow.source), self.role_of(flow.destination), flow.port), {"count": 0, "rules": set()}
                )
                row["count"] += 1
                row["rules"] |= {
                    rule.name
                    for rule in self.admitting_rules(source_key, endpoint.key, flow.source, flow.destination, flow.port)
                }
        return matrix

    def admitting_rules(
        self, source_key: str, destination_key: str, source: str, destination: str, port: int
    ) -> list[Rule]:
        source_groups, destination_groups = self.groups_of(source_key), self.groups_of(destination_key)
        return [
            rule
            for rule in self.plan.rules
            if (
                rule.direction == "ingress"
                and rule.group in destination_groups
                and rule.admits(port, source_groups, source)
            )
            or (
                rule.direction == "egress"
                and rule.group in source_groups
                and rule.admits(port, destination_groups, destination)
            )
        ]

    def drops(self) -> dict[tuple[str, str], int]:
        """(source, destination) -> SYN packets the security groups dropped."""
        dropped: dict[tuple[str, str], int] = {}
        for (key, chain, comment), packets in self.fabric.read_counters().items():
            if not comment.startswith("drop "):
                continue
            other = comment.removeprefix("drop ")
            pair = (other, key) if chain == "INPUT" else (key, other)
            dropped[pair] = dropped.get(pair, 0) + packets
        return dropped

    def idle_rules(self) -> list[Rule]:
        carried = {
            comment.removeprefix("allow ")
            for (_, _, comment), packets in self.fabric.read_counters().items()
            if packets
        }
        return [rule for rule in self.plan.rules if rule.name not in carried]

    def close(self, *, keep_logs: bool = False) -> None:
        self._closing = True
        for task in list(self.tasks.values()):
            task.stopping = True
            self.stop_task(task.key)
        for task in list(self.tasks.values()):
            try:
                task.process.wait(10)
            except subprocess.TimeoutExpired:
                pass
        self.fabric.close()
        if not keep_logs:
            shutil.rmtree(self.workdir, ignore_errors=True)
