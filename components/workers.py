"""Dynamo's own processes: the OpenAI-compatible frontend and the vLLM decode/prefill workers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from constructs import Construct

from components.aws import ecs_task_definition
from components.container import Container, Mount, http_health_check
from components.iam import TaskRoles
from components.load_balancer import LoadBalancerTarget
from components.logs import LogGroups
from components.metrics import Metrics, Scrape
from components.security_groups import FRONTEND_PORT, REQUEST_PLANE_PORT, RESPONSE_STREAM_PORT
from components.service import Deployment, Placement, TaskService, TaskSize
from environments.fit import HealthCheck, worker_health_check
from environments.schema import Environment, FrontendConfig, GpuWorkerConfig, ImageConfig, ModelConfig

if TYPE_CHECKING:
    from components.control_plane import ControlPlane

# The worker's system server (/health, /live, /metrics) listens here when DYN_SYSTEM_PORT is set.
SYSTEM_PORT = 9090
# Without this the mocker's /health answers 503 {"status":"notready"} forever, even while it
# serves; with it, 200 "ready" as soon as the generate endpoint is registered (measured side
# by side with dynamo.mocker 1.2.1). 1.2.1 logs the variable as "deprecated and no longer
# used" (lib/runtime/src/config.rs) and dynamo.vllm registers generate with a health-check
# payload (dynamo/vllm/worker_factory.py:437), so a vLLM worker may turn ready without it;
# it is kept because the check then follows the generate endpoint either way, and ECS
# would replace every worker whose check never passes. Dynamo's own Kubernetes configs set
# the same value (dynamo/planner/tests/manual/perf_test_configs/agg_8b.yaml in the package).
# Prefill workers serve an endpoint named generate too (component "prefill"; measured).
# Re-check on every image bump: the twin runs the mocker, not vLLM.
ENDPOINT_HEALTH_STATUS = json.dumps(["generate"], separators=(",", ":"))
# vLLM publishes KV-cache events here for the KV-aware router; each awsvpc task has its
# own address, so every worker can use the same port.
KV_EVENTS_PORT = 20080
MODEL_CACHE_VOLUME = "model-cache"
MODEL_CACHE_MOUNT = "/model-cache"
NIXL_KV_TRANSFER = json.dumps({"kv_connector": "NixlConnector", "kv_role": "kv_both"}, separators=(",", ":"))
# The ALB's /health check proves that the frontend's HTTP server runs and has finished its
# first discovery scan: Dynamo 1.2.1 answers 200 {"status":"healthy","endpoints":[],
# "instances":[]} within seconds of starting, even with no worker registered
# (lib/llm/src/http/service/health.rs in ai-dynamo/dynamo; measured). It does not prove a
# model is served: until a worker registers, /v1/models is empty and completions get 404
# "model not found", and an ALB matcher sees only the status code, so a model-aware check
# is not possible there. The grace therefore covers only the frontend's start and the
# ALB's healthy_threshold (2) x interval (15 s), not a model load.
FRONTEND_HEALTH_GRACE_SECONDS = 120
# ECS's maximum: time for in-flight requests to finish after SIGTERM.
STOP_TIMEOUT = 120


def rollout_percents(rollout: str, min_count: int) -> tuple[int, int]:
    """(deployment_minimum_healthy_percent, deployment_maximum_percent) of a worker service.

    ECS rounds the maximum down and the minimum up, as percentages of the desired count
    (ECS API reference, DeploymentConfiguration). The same two numbers govern tasks moved
    off an instance that drains (instance refresh, scale-in, spot interruption).
    """
    if rollout == "surge":
        # Every old worker keeps serving until its replacement is healthy; the
        # replacements start as far as the fleet has room (schema.py counts one more).
        return 100, 200
    # Never more workers than desired (no spare GPU); keep half serving when there are at
    # least two. With fewer, 50% of one rounds up to one and nothing could ever stop, so
    # the only worker stops first: the role serves nothing until the new one has loaded.
    return (50 if min_count >= 2 else 0), 100


@dataclass(frozen=True)
class DynamoRuntime:
    """What every Dynamo process is given: the image, how to reach etcd and NATS, and its secrets."""

    image: str
    pull_credentials_arn: str | None
    environment: dict[str, str]
    secrets: dict[str, str]

    @classmethod
    def of(cls, *, image: ImageConfig, model: ModelConfig, control_plane: ControlPlane) -> DynamoRuntime:
        return cls(
            image=image.reference,
            pull_credentials_arn=image.pull_credentials_secret_arn,
            environment={
                "ETCD_ENDPOINTS": control_plane.etcd_endpoint,
                "NATS_SERVER": control_plane.nats_server,
                "DYN_EVENT_PLANE": "nats",
                "DYN_LOG": "info",
            },
            # HF_TOKEN for the workers (weights) and the frontend, which downloads a gated
            # model's config and tokenizer itself: with the default Rust preprocessor through
            # ModelDeploymentCard::download_config (lib/llm/src/model_card.rs upstream, compiled
            # into dynamo/_core.abi3.so), with --dyn-chat-processor vllm through
            # fetch_model(source_path, ignore_weights=True) (dynamo/frontend/vllm_processor.py:788
            # in ai-dynamo 1.2.1; sglang_processor.py:646 likewise).
            secrets={"HF_TOKEN": model.hf_token_secret_arn} if model.hf_token_secret_arn else {},
        )


def frontend_command(config: FrontendConfig) -> list[str]:
    command = ["python3", "-m", "dynamo.frontend", "--router-mode", config.router_mode]
    command += ["--http-port", str(FRONTEND_PORT)]
    # Each KV router tracks only the requests it routed itself; with several frontends they
    # share their view of the workers' load through NATS. max_count, not count: autoscaling
    # adds frontends to a running stack.
    if config.router_mode == "kv" and config.max_count > 1:
        command.append("--router-replica-sync")
    if config.migration_limit > 0:
        command += ["--migration-limit", str(config.migration_limit)]
    return command


@dataclass(frozen=True)
class WorkerStart:
    """How a worker of one role starts: its vLLM command, the health check that gives it the
    environment's cold-start estimate (environments/fit.py) to load its model, and the
    instance's directory its model is cached in."""

    command: list[str]
    health: HealthCheck
    model_cache_path: str

    @classmethod
    def of(cls, env: Environment, role: str) -> WorkerStart:
        return cls(worker_command(env, role), worker_health_check(env), env.gpu_fleet.model_cache_path)


def worker_command(env: Environment, role: str) -> list[str]:
    """The vLLM worker of ``role`` ("decode" or "prefill"): aggregated when ``env.mode`` says so."""
    model = env.model
    command = ["python3", "-m", "dynamo.vllm", "--model", model.name]
    command += ["--tensor-parallel-size", str(model.tensor_parallel_size)]
    if model.served_model_name is not None:
        # dynamo.vllm registers the model under vLLM's served_model_name when one is given
        # (dynamo/vllm/args.py, update_dynamo_config_with_engine, in ai-dynamo 1.2.1).
        command += ["--served-model-name", model.served_model_name]
    if model.max_model_len is not None:
        command += ["--max-model-len", str(model.max_model_len)]
    if env.mode == "disaggregated":
        command += ["--disaggregation-mode", role, "--kv-transfer-config", NIXL_KV_TRANSFER]
    # The KV router learns cache contents from the workers that own KV blocks after
    # prefill; decode workers in disaggregated mode do not publish.
    if env.frontend.router_mode == "kv" and (env.mode == "aggregated" or role == "prefill"):
        events = {
            "publisher": "zmq",
            "topic": "kv-events",
            "endpoint": f"tcp://*:{KV_EVENTS_PORT}",
            "enable_kv_cache_events": True,
        }
        command += ["--kv-events-config", json.dumps(events, separators=(",", ":"))]
    return command + list(model.extra_vllm_args)


class Frontend(Construct):
    """The frontend service behind the ALB's target group, on Fargate or on the GPU fleet.

    Attributes: service (TaskService).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        config: FrontendConfig,
        runtime: DynamoRuntime,
        placement: Placement,
        roles: TaskRoles,
        target: LoadBalancerTarget,
        logs: LogGroups,
        metrics: Metrics,
    ) -> None:
        super().__init__(scope, id_)
        # On the GPU fleet, NVIDIA's runtime is Docker's default (for the GPU metrics daemon), and
        # Dynamo's CUDA image asks for every GPU (NVIDIA_VISIBLE_DEVICES=all in the image): "void"
        # gives this GPU-less task none of them.
        gpus_hidden = {} if placement.on_fargate else {"NVIDIA_VISIBLE_DEVICES": "void"}
        container = Container(
            name="frontend",
            image=runtime.image,
            command=frontend_command(config),
            environment={
                **runtime.environment,
                # Workers connect back to the frontend to stream tokens; pinned so the
                # security groups can admit them on this one port (see security_groups.py).
                # Never DYN_TCP_RPC_PORT here: on the frontend, 1.2.1 then fails model
                # discovery ("TCP RPC port not set"; measured).
                "DYN_TCP_RESPONSE_STREAM_PORT": str(RESPONSE_STREAM_PORT),
                **gpus_hidden,
            },
            # Only HF_TOKEN, if any: the frontend downloads the model's config and
            # tokenizer itself, never its weights (see DynamoRuntime).
            secrets=runtime.secrets,
            ports=[FRONTEND_PORT],
            # /live answers as soon as the HTTP server runs: all ECS needs to know the
            # process is alive. Whether it serves is the ALB's /health check (stack.py).
            health_check=http_health_check(FRONTEND_PORT, "/live", start_period=60),
            repository_credentials_arn=runtime.pull_credentials_arn,
            logs=logs.group("frontend"),
            stop_timeout=STOP_TIMEOUT,
        )
        self.service = TaskService(
            self,
            "frontend",
            name=f"{name}-frontend",
            placement=placement,
            roles=roles,
            containers=[
                container,
                metrics.collector(
                    scrape=Scrape("frontend", "localhost", FRONTEND_PORT), roles=roles, logs=container.logs
                ),
            ],
            size=TaskSize(config.cpu, config.memory, config.ephemeral_storage_gib),
            deployment=Deployment(
                desired_count=config.count,
                autoscaled=True,
                health_check_grace_seconds=FRONTEND_HEALTH_GRACE_SECONDS,
                # Moving between Fargate and the GPU fleet moves the service to the other
                # cluster, which forces a replacement (a service's cluster cannot change). The
                # new service registers in the same target group and runs its tasks before the
                # old one is deleted; the old tasks then drain for the target group's
                # deregistration delay. Both keep the name: they live in different clusters.
                replace_before_destroy=True,
            ),
            target=target,
        )


class GpuWorkers(Construct):
    """One vLLM worker service on the GPU capacity provider; its construct id is its role
    (``decode`` or ``prefill``).

    Attributes: service (TaskService).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        config: GpuWorkerConfig,
        start: WorkerStart,
        runtime: DynamoRuntime,
        placement: Placement,
        roles: TaskRoles,
        logs: LogGroups,
        metrics: Metrics,
    ) -> None:
        super().__init__(scope, id_)
        role = id_
        minimum_healthy_percent, maximum_percent = rollout_percents(config.rollout, config.min_count)
        model_cache = ecs_task_definition.EcsTaskDefinitionVolume(
            name=MODEL_CACHE_VOLUME, host_path=start.model_cache_path
        )
        container = Container(
            name=role,
            image=runtime.image,
            command=start.command,
            environment={
                **runtime.environment,
                "DYN_SYSTEM_PORT": str(SYSTEM_PORT),
                "DYN_SYSTEM_ENABLED": "true",
                "DYN_SYSTEM_USE_ENDPOINT_HEALTH_STATUS": ENDPOINT_HEALTH_STATUS,
                # The request-plane server of every endpoint this worker serves
                # (generate, worker_kv_indexer_query, ...) listens here instead of on a
                # port of its own choosing, so the frontend's rule names one port.
                "DYN_TCP_RPC_PORT": str(REQUEST_PLANE_PORT),
                "HF_HOME": MODEL_CACHE_MOUNT,
            },
            secrets=runtime.secrets,
            ports=[SYSTEM_PORT],
            # Workers download and load a model before /health turns 200: the start period and
            # retries cover the environment's cold-start estimate (environments/fit.py).
            health_check=http_health_check(
                SYSTEM_PORT,
                "/health",
                start_period=start.health.start_period,
                interval=start.health.interval,
                retries=start.health.retries,
            ),
            repository_credentials_arn=runtime.pull_credentials_arn,
            gpus=config.gpus,
            mounts=[Mount(model_cache, MODEL_CACHE_MOUNT)],
            linux_parameters={"sharedMemorySize": config.shared_memory_mib, "initProcessEnabled": True},
            # NCCL and NIXL pin memory for GPU transfers: no memlock limit.
            ulimits=[
                {"name": "memlock", "softLimit": -1, "hardLimit": -1},
                {"name": "stack", "softLimit": 67108864, "hardLimit": 67108864},
            ],
            logs=logs.group(role),
            stop_timeout=STOP_TIMEOUT,
        )
        self.service = TaskService(
            self,
            role,
            name=f"{name}-{role}",
            placement=placement,
            roles=roles,
            containers=[
                container,
                metrics.collector(scrape=Scrape(role, "localhost", SYSTEM_PORT), roles=roles, logs=container.logs),
            ],
            size=TaskSize(config.cpu, config.memory),
            deployment=Deployment(
                desired_count=config.count,
                autoscaled=True,
                minimum_healthy_percent=minimum_healthy_percent,
                maximum_percent=maximum_percent,
            ),
        )
