"""Will it fit, and how long until it serves: checks of the model against the GPU fleet.

Every assumption of the estimates is in the first block, with where it comes from. The
checks return (field path, message) pairs like the schema's other cross-field rules.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, NamedTuple

from environments.catalog import (
    ECS_GPU_AMI_RELEASES,
    ECS_HEALTH_INTERVAL,
    ECS_HEALTH_RETRIES,
    ECS_HEALTH_START_PERIOD_MAX,
    GP3_MIBPS_PER_IOPS,
    IMAGE_CUDA,
    AmiRelease,
)
from environments.models import ModelFacts

if TYPE_CHECKING:
    from environments.schema import Environment

GIB = 2**30
MIB = 2**20

# --- assumptions -------------------------------------------------------------------------
# vLLM's default --gpu-memory-utilization: "If unspecified, will use the default value of
# 0.9" (vllm/config/cache.py, CacheConfig.gpu_memory_utilization, Field(default=0.9)). vLLM
# budgets ceil(total GPU memory x utilization) for weights, peak activations, CUDA graphs and
# the KV cache together (vllm/v1/worker/gpu_worker.py, determine_available_memory). Newer
# vLLM releases document 0.92: re-check on an image bump; 0.9 is the smaller budget.
DEFAULT_GPU_MEMORY_UTILIZATION = 0.9
# What vLLM takes from that budget besides weights and KV cache (peak activations of a
# profiling batch, CUDA graphs, NCCL buffers): an assumption, not measured; vLLM logs the real
# figures at start ("Available KV cache memory"). vLLM refuses to start when one max_model_len
# sequence does not fit in what is left ("To serve at least one request with the models's max
# seq len ... KV cache is needed, which is larger than the available KV cache memory":
# vllm/v1/core/kv_cache_utils.py, check_enough_kv_cache_memory).
RUNTIME_RESERVE_GIB = 1.0
# The vllm-runtime image: ~11-12 GB compressed (DESIGN.md: the image "even carries etcd and
# nats-server"); on disk, with its layers extracted, assumed 25 GiB (not measured).
IMAGE_COMPRESSED_GIB = 12.0
IMAGE_ON_DISK_GIB = 25.0
# What the ECS GPU AMI itself uses of the root volume (OS, NVIDIA driver, ECS agent, logs):
# assumed 10 GiB (the AMI's own snapshot is 30 GiB and mostly empty).
AMI_USED_GIB = 10.0
# Room left free on the root volume, for Docker's temporary files and the kernel's page cache
# of a full disk: 10% of the volume.
ROOT_VOLUME_HEADROOM = 0.10
# Pulling the image (registry to Docker, decompressing and extracting layers): assumed
# 100 MiB/s, bounded by the volume's write throughput. Not measured.
IMAGE_PULL_MIBPS = 100.0
# Downloading weights from Hugging Face: assumed 250 MiB/s, bounded by the volume's write
# throughput. Not measured; every instance type here has >= 5 Gbit/s of network (DescribeInstanceTypes).
WEIGHTS_DOWNLOAD_MIBPS = 250.0
# vLLM's own start once the weights are on disk (torch.compile, memory profiling, CUDA graph
# capture) plus Dynamo's registration: assumed 120 s. Not measured; it depends on the model.
ENGINE_START_SECONDS = 120.0
# The health-check budget covers the estimate with this margin.
HEALTH_MARGIN = 1.25
# A worker's container health check: the start period at ECS's maximum (300 s), 10 retries (ECS's
# maximum), and an interval of 30 s, longer only as far as the estimate needs. ECS cannot tell a
# worker that is still loading from one that hangs: past the start period both look the same, so
# a longer budget also means a hung worker is replaced later (after interval x retries). The
# longest start ECS allows is 300 + 10 x 300 s = 55 minutes.
HEALTH_INTERVAL_DEFAULT = 30
HEALTH_INTERVAL_MAX = ECS_HEALTH_INTERVAL[1]


class ColdStart(NamedTuple):
    """Seconds per phase of a worker's first start on a fresh instance."""

    pull: float
    download: float
    load: float
    engine: float
    disk_mibps: float

    @property
    def total(self) -> float:
        return self.pull + self.download + self.load + self.engine

    @property
    def after_container_start(self) -> float:
        """What the container health check has to wait for: the image is pulled before it starts."""
        return self.download + self.load + self.engine


class HealthCheck(NamedTuple):
    start_period: int
    interval: int
    retries: int

    @property
    def budget(self) -> int:
        return self.start_period + self.interval * self.retries


def vllm_argument(args: list[str], name: str) -> str | None:
    """The value of ``--name value`` or ``--name=value`` in vLLM's arguments (the last one wins)."""
    value = None
    for index, arg in enumerate(args):
        if arg == name and index + 1 < len(args):
            value = args[index + 1]
        elif arg.startswith(name + "="):
            value = arg.split("=", 1)[1]
    return value


def gpu_memory_utilization(args: list[str]) -> float:
    value = vllm_argument(args, "--gpu-memory-utilization")
    try:
        return float(value) if value is not None else DEFAULT_GPU_MEMORY_UTILIZATION
    except ValueError:
        return DEFAULT_GPU_MEMORY_UTILIZATION


def kv_bytes(facts: ModelFacts, args: list[str]) -> int:
    """Bytes per KV element: an fp8 --kv-cache-dtype halves them."""
    dtype = vllm_argument(args, "--kv-cache-dtype")
    return 1 if dtype is not None and dtype.startswith("fp8") else facts.kv_bytes


def kv_heads_per_gpu(facts: ModelFacts, tp: int) -> int:
    """vLLM splits KV heads across tensor-parallel ranks, or replicates them when there are
    fewer heads than ranks (vllm/model_executor/layers/linear.py, QKVParallelLinear)."""
    return max(1, facts.kv_heads // tp)


def kv_bytes_per_token(facts: ModelFacts, tp: int, args: list[str]) -> int:
    """Per GPU: keys and values of every layer."""
    return 2 * facts.layers * kv_heads_per_gpu(facts, tp) * facts.head_dim * kv_bytes(facts, args)


def valid_tensor_parallel(facts: ModelFacts, tp: int) -> bool:
    """vLLM: "Total number of attention heads (H) must be divisible by tensor parallel size (T)"
    (vllm/config/model.py, verify_with_parallel_config), and KV heads split evenly or replicate
    evenly (QKVParallelLinear divides one by the other)."""
    heads_split = facts.attention_heads % tp == 0
    kv_split = facts.kv_heads % tp == 0 if tp <= facts.kv_heads else tp % facts.kv_heads == 0
    return heads_split and kv_split


class Memory(NamedTuple):
    weights: float  # GiB per GPU
    kv: float  # GiB per GPU, one max_model_len sequence
    reserve: float
    budget: float  # GiB per GPU vLLM may use
    utilization: float
    gpu: float  # GiB per GPU

    @property
    def needed(self) -> float:
        return self.weights + self.kv + self.reserve


def memory(facts: ModelFacts, tp: int, max_model_len: int, gpu_memory_mib: int, args: list[str]) -> Memory:
    utilization = gpu_memory_utilization(args)
    gpu = gpu_memory_mib * MIB / GIB
    return Memory(
        weights=facts.weight_bytes / tp / GIB,
        kv=kv_bytes_per_token(facts, tp, args) * max_model_len / GIB,
        reserve=RUNTIME_RESERVE_GIB,
        budget=gpu * utilization,
        utilization=utilization,
        gpu=gpu,
    )


def _gib(value: float) -> str:
    return f"{value:.1f} GiB"


def longest_fitting_length(facts: ModelFacts, tp: int, gpu_memory_mib: int, args: list[str]) -> int:
    """The longest max_model_len (a multiple of 1024) whose KV cache fits beside the weights; 0 if none."""
    fit = memory(facts, tp, 0, gpu_memory_mib, args)
    room = fit.budget - fit.weights - fit.reserve
    if room <= 0:
        return 0
    return int(room * GIB // kv_bytes_per_token(facts, tp, args)) // 1024 * 1024


def memory_problems(env: Environment, facts: ModelFacts) -> list[tuple[str, str]]:
    model, fleet = env.model, env.gpu_fleet
    instance, tp = fleet.instance, model.tensor_parallel_size
    args = list(model.extra_vllm_args)
    length = model.max_model_len or facts.max_context
    fit = memory(facts, tp, length, instance.gpu_memory_mib, args)
    if fit.needed <= fit.budget:
        return []
    sizes = (
        f"{model.name} needs {_gib(fit.weights)} of weights per GPU at tensor_parallel_size {tp} + "
        f"{_gib(fit.kv)} of KV cache for one {length}-token sequence + {_gib(fit.reserve)} for vLLM's "
        f"activations = {_gib(fit.needed)}; each {instance.gpu_model} of {fleet.instance_type} gives vLLM "
        f"{_gib(fit.budget)} ({_gib(fit.gpu)} x gpu-memory-utilization {fit.utilization:.2f})"
    )
    options = []
    longest = longest_fitting_length(facts, tp, instance.gpu_memory_mib, args)
    if longest >= 1024:
        options.append(f"max_model_len <= {longest}")
    for larger in range(tp + 1, instance.gpus + 1):
        if not valid_tensor_parallel(facts, larger):
            continue
        longest_there = longest_fitting_length(facts, larger, instance.gpu_memory_mib, args)
        if longest_there >= length:
            options.append(f"tensor_parallel_size {larger} (gpus = {larger} per worker)")
        elif longest_there >= 1024:
            options.append(f"tensor_parallel_size {larger} (gpus = {larger}) with max_model_len <= {longest_there}")
        else:
            continue
        break
    options.append("an instance type with more GPU memory per GPU")
    field = "model.max_model_len" if longest >= 1024 else "model.tensor_parallel_size"
    return [(field, f"does not fit: {sizes}; fits with {' or '.join(options)}")]


def tensor_parallel_problems(env: Environment, facts: ModelFacts) -> list[tuple[str, str]]:
    tp = env.model.tensor_parallel_size
    if valid_tensor_parallel(facts, tp):
        return []
    allowed = [str(size) for size in range(1, 9) if valid_tensor_parallel(facts, size)]
    return [
        (
            "model.tensor_parallel_size",
            f"{tp} does not split {env.model.name}'s {facts.attention_heads} attention heads and "
            f"{facts.kv_heads} KV heads evenly (vLLM refuses to start); allowed: {', '.join(allowed)}",
        )
    ]


def root_volume_needed_gib(facts: ModelFacts) -> int:
    """Two images (the old one stays on disk while a new tag rolls out), one copy of the
    weights (the Hugging Face cache is shared by every worker on the instance), the AMI, headroom."""
    used = AMI_USED_GIB + 2 * IMAGE_ON_DISK_GIB + facts.weight_bytes / GIB
    return math.ceil(used / (1 - ROOT_VOLUME_HEADROOM))


def root_volume_problems(env: Environment, facts: ModelFacts) -> list[tuple[str, str]]:
    fleet = env.gpu_fleet
    problems = []
    needed = root_volume_needed_gib(facts)
    if fleet.root_volume_gib < needed:
        problems.append(
            (
                "gpu_fleet.root_volume_gib",
                f"{fleet.root_volume_gib} GiB is too small: {AMI_USED_GIB:.0f} GiB for the AMI + 2 x "
                f"{IMAGE_ON_DISK_GIB:.0f} GiB for the image (old and new during a rollout) + "
                f"{_gib(facts.weight_bytes / GIB)} of {env.model.name} weights + {ROOT_VOLUME_HEADROOM:.0%} free; "
                f"needs at least {needed}",
            )
        )
    most = fleet.root_volume_iops * GP3_MIBPS_PER_IOPS
    if fleet.root_volume_throughput_mibps > most:
        problems.append(
            (
                "gpu_fleet.root_volume_throughput_mibps",
                f"{fleet.root_volume_throughput_mibps} MiB/s needs at least "
                f"{math.ceil(fleet.root_volume_throughput_mibps / GP3_MIBPS_PER_IOPS)} IOPS on gp3 "
                f"({GP3_MIBPS_PER_IOPS} MiB/s per provisioned IOPS); root_volume_iops is {fleet.root_volume_iops}: "
                f"raise it or lower the throughput to {int(most)}",
            )
        )
    # gp3's other ratio, at most 500 IOPS per GiB, cannot bind: 16,000 IOPS need 32 GiB and the
    # root volume has at least 100 (schema.py).
    return problems


def gated_problems(env: Environment, facts: ModelFacts) -> list[tuple[str, str]]:
    if not facts.gated or env.model.hf_token_secret_arn is not None:
        return []
    return [
        (
            "model.hf_token_secret_arn",
            f"{env.model.name} is gated on Hugging Face: the workers (weights) and the frontend (config, "
            "tokenizer) need a token of an account that was granted access; set hf_token_secret_arn to the ARN "
            "of a Secrets Manager secret holding it",
        )
    ]


def current_ami() -> AmiRelease:
    return ECS_GPU_AMI_RELEASES[-1]


def image_driver_problems(tag: str, ami: AmiRelease) -> list[tuple[str, str]]:
    needs = IMAGE_CUDA.get(tag)
    if needs is None:
        return []
    driver = int(ami.nvidia_driver.split(".")[0])
    if driver >= needs.min_driver:
        return []
    return [
        (
            "image.tag",
            f"{tag} is built with CUDA {needs.cuda} and needs an NVIDIA driver {needs.min_driver} or later; the ECS "
            f"GPU AMI {ami.name} has {ami.nvidia_driver}: use a tag built for the AMI's driver (see IMAGE_CUDA in "
            "environments/catalog.py) or wait for an AMI release with a newer driver",
        )
    ]


def image_warnings(tag: str) -> list[tuple[str, str]]:
    if tag in IMAGE_CUDA:
        return []
    return [
        (
            "image.tag",
            f"warning: {tag} is not in environments/catalog.py's IMAGE_CUDA table, so whether the ECS GPU AMI's "
            f"driver ({current_ami().nvidia_driver}) runs it is not checked; add its CUDA version there",
        )
    ]


def disk_mibps(env: Environment) -> float:
    """The root volume's throughput, capped by what the instance's EBS connection carries."""
    fleet = env.gpu_fleet
    instance_limit = fleet.instance.ebs_max_mbps * 1_000_000 / MIB
    return min(float(fleet.root_volume_throughput_mibps), instance_limit)


def cold_start(env: Environment, facts: ModelFacts) -> ColdStart:
    disk = disk_mibps(env)
    weights_mib = facts.weight_bytes / MIB
    return ColdStart(
        pull=IMAGE_COMPRESSED_GIB * 1024 / min(IMAGE_PULL_MIBPS, disk),
        download=weights_mib / min(WEIGHTS_DOWNLOAD_MIBPS, disk),
        load=weights_mib / disk,
        engine=ENGINE_START_SECONDS,
        disk_mibps=disk,
    )


def health_check(estimate: ColdStart) -> HealthCheck | None:
    """The shortest health check whose budget covers the start with the margin, or None."""
    needed = math.ceil(estimate.after_container_start * HEALTH_MARGIN)
    start_period, retries = ECS_HEALTH_START_PERIOD_MAX, ECS_HEALTH_RETRIES[1]
    interval = max(HEALTH_INTERVAL_DEFAULT, math.ceil(max(0, needed - start_period) / retries / 5) * 5)
    if interval > HEALTH_INTERVAL_MAX:
        return None
    return HealthCheck(start_period, interval, retries)


def worker_health_check(env: Environment) -> HealthCheck:
    """The workers' container health check for this environment (the schema has checked it exists)."""
    facts = env.model.model_facts
    check = health_check(cold_start(env, facts)) if facts is not None else None
    if check is None:
        raise ValueError(f"{env.name}: no worker health check fits; the schema should have said so")
    return check


def cold_start_problems(env: Environment, facts: ModelFacts) -> list[tuple[str, str]]:
    estimate = cold_start(env, facts)
    if health_check(estimate) is not None:
        return []
    longest = ECS_HEALTH_START_PERIOD_MAX + ECS_HEALTH_RETRIES[1] * HEALTH_INTERVAL_MAX
    fleet = env.gpu_fleet
    phases = (
        f"download {minutes(estimate.download)}, load {minutes(estimate.load)} at {estimate.disk_mibps:.0f} MiB/s, "
        f"engine {minutes(estimate.engine)}"
    )
    limits = (
        f"start period <= {ECS_HEALTH_START_PERIOD_MAX} s, {ECS_HEALTH_RETRIES[1]} retries, "
        f"interval <= {HEALTH_INTERVAL_MAX} s"
    )
    return [
        (
            "gpu_fleet.root_volume_throughput_mibps",
            f"each {env.model.name} worker needs ~{minutes(estimate.after_container_start)} from container start "
            f"({phases}); with a {HEALTH_MARGIN:.2f}x margin that is beyond the {minutes(longest)} an ECS health "
            f"check allows ({limits}); raise root_volume_throughput_mibps (now "
            f"{fleet.root_volume_throughput_mibps}, up to 1000 with root_volume_iops >= 4000) or use a smaller model",
        )
    ]


def minutes(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 60}m{whole % 60:02d}s"


def fit_problems(env: Environment, facts: ModelFacts) -> list[tuple[str, str]]:
    problems = tensor_parallel_problems(env, facts)
    if not problems:
        problems += memory_problems(env, facts)
    problems += root_volume_problems(env, facts)
    problems += gated_problems(env, facts)
    problems += image_driver_problems(env.image.tag, current_ami())
    if not any(path.startswith("gpu_fleet.root_volume") for path, _ in problems):
        problems += cold_start_problems(env, facts)
    return problems
