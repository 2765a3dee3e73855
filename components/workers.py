"""Dynamo's own processes: the OpenAI-compatible frontend and the vLLM decode/prefill workers."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from cdktf import ITerraformDependable
from constructs import Construct

from components.aws import ecs_task_definition
from components.container import container_definition, http_health_check
from components.security_groups import FRONTEND_PORT, REQUEST_PLANE_PORT, RESPONSE_STREAM_PORT
from components.service import TaskService

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
# Workers load a model before /health turns 200: ECS allows at most 300 s of start
# period, then `retries` failed checks; together about 10 minutes.
WORKER_START_PERIOD = 300
WORKER_HEALTH_RETRIES = 10
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


def frontend_command(*, router_mode: str, router_replica_sync: bool, migration_limit: int) -> list[str]:
    command = ["python3", "-m", "dynamo.frontend", "--router-mode", router_mode, "--http-port", str(FRONTEND_PORT)]
    if router_replica_sync:
        command.append("--router-replica-sync")
    if migration_limit > 0:
        command += ["--migration-limit", str(migration_limit)]
    return command


def worker_command(
    *,
    model: str,
    served_model_name: str | None,
    tensor_parallel_size: int,
    disaggregation_mode: str | None,
    publish_kv_events: bool,
    max_model_len: int | None,
    extra_args: list[str],
) -> list[str]:
    """``disaggregation_mode`` is "prefill", "decode" or None (aggregated)."""
    command = ["python3", "-m", "dynamo.vllm", "--model", model, "--tensor-parallel-size", str(tensor_parallel_size)]
    if served_model_name is not None:
        # dynamo.vllm registers the model under vLLM's served_model_name when one is given
        # (dynamo/vllm/args.py, update_dynamo_config_with_engine, in ai-dynamo 1.2.1).
        command += ["--served-model-name", served_model_name]
    if max_model_len is not None:
        command += ["--max-model-len", str(max_model_len)]
    if disaggregation_mode is not None:
        command += ["--disaggregation-mode", disaggregation_mode, "--kv-transfer-config", NIXL_KV_TRANSFER]
    if publish_kv_events:
        events = {
            "publisher": "zmq",
            "topic": "kv-events",
            "endpoint": f"tcp://*:{KV_EVENTS_PORT}",
            "enable_kv_cache_events": True,
        }
        command += ["--kv-events-config", json.dumps(events, separators=(",", ":"))]
    return command + extra_args


def dynamo_environment(*, etcd_endpoint: str, nats_server: str) -> dict[str, str]:
    return {
        "ETCD_ENDPOINTS": etcd_endpoint,
        "NATS_SERVER": nats_server,
        "DYN_EVENT_PLANE": "nats",
        "DYN_LOG": "info",
    }


class Frontend(Construct):
    """The frontend service behind the ALB target group, on Fargate or on the GPU fleet.

    Attributes: service_name.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        region: str,
        cluster_arn: str,
        capacity_provider: str | None,
        image: str,
        repository_credentials_arn: str | None,
        command: list[str],
        cpu: int,
        memory: int,
        ephemeral_storage_gib: int,
        desired_count: int,
        environment: dict[str, str],
        secrets: dict[str, str],
        target_group_arn: str,
        health_check_grace_seconds: int,
        log_group: str,
        execution_role_arn: str,
        task_role_arn: str,
        subnet_ids: list[str],
        security_group_id: str,
        needs: Sequence[ITerraformDependable],
    ) -> None:
        super().__init__(scope, id_)
        service = TaskService(
            self,
            "frontend",
            name=f"{name}-frontend",
            cluster_arn=cluster_arn,
            capacity_provider=capacity_provider,
            cpu=cpu,
            memory=memory,
            ephemeral_storage_gib=ephemeral_storage_gib,
            execution_role_arn=execution_role_arn,
            task_role_arn=task_role_arn,
            subnet_ids=subnet_ids,
            security_group_ids=[security_group_id],
            desired_count=desired_count,
            autoscaled=True,
            load_balancer={
                "target_group_arn": target_group_arn,
                "container_name": "frontend",
                "container_port": FRONTEND_PORT,
            },
            health_check_grace_seconds=health_check_grace_seconds,
            needs=needs,
            # Moving between Fargate and the GPU fleet moves the service to the other
            # cluster, which forces a replacement (a service's cluster cannot change). The
            # new service registers in the same target group and runs its tasks before the
            # old one is deleted; the old tasks then drain for the target group's
            # deregistration delay. Both keep the name: they live in different clusters.
            replace_before_destroy=True,
            container=container_definition(
                name="frontend",
                image=image,
                command=command,
                environment={
                    **environment,
                    # Workers connect back to the frontend to stream tokens; pinned so the
                    # security groups can admit them on this one port (see security_groups.py).
                    # Never DYN_TCP_RPC_PORT here: on the frontend, 1.2.1 then fails model
                    # discovery ("TCP RPC port not set"; measured).
                    "DYN_TCP_RESPONSE_STREAM_PORT": str(RESPONSE_STREAM_PORT),
                },
                # Only HF_TOKEN, if any: the frontend downloads the model's config and
                # tokenizer itself, never its weights (see secrets_for).
                secrets=secrets,
                ports=[FRONTEND_PORT],
                # /live answers as soon as the HTTP server runs: all ECS needs to know the
                # process is alive. Whether it serves is the ALB's /health check (stack.py).
                health_check=http_health_check(FRONTEND_PORT, "/live", start_period=60),
                repository_credentials_arn=repository_credentials_arn,
                log_group=log_group,
                region=region,
                stop_timeout=STOP_TIMEOUT,
            ),
        )
        self.service_name: str = service.service_name


class GpuWorkers(Construct):
    """One vLLM worker service (decode or prefill) on the GPU capacity provider.

    Attributes: service_name.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        role: str,
        region: str,
        cluster_arn: str,
        capacity_provider: str,
        image: str,
        repository_credentials_arn: str | None,
        command: list[str],
        cpu: int,
        memory: int,
        gpus: int,
        shared_memory_mib: int,
        desired_count: int,
        min_count: int,
        rollout: str,
        environment: dict[str, str],
        secrets: dict[str, str],
        model_cache_path: str,
        log_group: str,
        execution_role_arn: str,
        task_role_arn: str,
        subnet_ids: list[str],
        security_group_id: str,
        needs: Sequence[ITerraformDependable],
    ) -> None:
        super().__init__(scope, id_)
        minimum_healthy_percent, maximum_percent = rollout_percents(rollout, min_count)
        service = TaskService(
            self,
            role,
            name=f"{name}-{role}",
            cluster_arn=cluster_arn,
            capacity_provider=capacity_provider,
            cpu=cpu,
            memory=memory,
            execution_role_arn=execution_role_arn,
            task_role_arn=task_role_arn,
            subnet_ids=subnet_ids,
            security_group_ids=[security_group_id],
            desired_count=desired_count,
            autoscaled=True,
            maximum_percent=maximum_percent,
            minimum_healthy_percent=minimum_healthy_percent,
            needs=needs,
            volumes=[ecs_task_definition.EcsTaskDefinitionVolume(name=MODEL_CACHE_VOLUME, host_path=model_cache_path)],
            container=container_definition(
                name=role,
                image=image,
                command=command,
                environment={
                    **environment,
                    "DYN_SYSTEM_PORT": str(SYSTEM_PORT),
                    "DYN_SYSTEM_ENABLED": "true",
                    "DYN_SYSTEM_USE_ENDPOINT_HEALTH_STATUS": ENDPOINT_HEALTH_STATUS,
                    # The request-plane server of every endpoint this worker serves
                    # (generate, worker_kv_indexer_query, ...) listens here instead of on a
                    # port of its own choosing, so the frontend's rule names one port.
                    "DYN_TCP_RPC_PORT": str(REQUEST_PLANE_PORT),
                    "HF_HOME": MODEL_CACHE_MOUNT,
                },
                secrets=secrets,
                ports=[SYSTEM_PORT],
                health_check=http_health_check(
                    SYSTEM_PORT, "/health", start_period=WORKER_START_PERIOD, retries=WORKER_HEALTH_RETRIES
                ),
                repository_credentials_arn=repository_credentials_arn,
                gpus=gpus,
                mount_points=[
                    {"sourceVolume": MODEL_CACHE_VOLUME, "containerPath": MODEL_CACHE_MOUNT, "readOnly": False}
                ],
                linux_parameters={"sharedMemorySize": shared_memory_mib, "initProcessEnabled": True},
                # NCCL and NIXL pin memory for GPU transfers: no memlock limit.
                ulimits=[
                    {"name": "memlock", "softLimit": -1, "hardLimit": -1},
                    {"name": "stack", "softLimit": 67108864, "hardLimit": 67108864},
                ],
                log_group=log_group,
                region=region,
                stop_timeout=STOP_TIMEOUT,
            ),
        )
        self.service_name: str = service.service_name


def secrets_for(*, hf_token_secret_arn: str | None) -> dict[str, Any]:
    """HF_TOKEN for the workers (weights) and the frontend, which downloads a gated model's
    config and tokenizer itself: with the default Rust preprocessor through
    ModelDeploymentCard::download_config (lib/llm/src/model_card.rs upstream, compiled into
    dynamo/_core.abi3.so), with --dyn-chat-processor vllm through
    fetch_model(source_path, ignore_weights=True) (dynamo/frontend/vllm_processor.py:788 in
    ai-dynamo 1.2.1; sglang_processor.py:646 likewise)."""
    return {"HF_TOKEN": hf_token_secret_arn} if hf_token_secret_arn else {}
