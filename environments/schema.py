"""The environment model: the single source of truth for configuration.

Every default, limit and cross-field rule lives here; the README's configuration
reference is generated from these models (``python -m environments.reference``).
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import posixpath
import re
from collections.abc import Collection
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    model_validator,
)
from pydantic_core import PydanticCustomError

from environments.catalog import (
    FARGATE_CPU_MEMORY_MIB,
    GP3_IOPS,
    GP3_THROUGHPUT_MIBPS,
    GPU_INSTANCE_TYPES,
    LOG_RETENTION_DAYS,
    REGION_AVAILABILITY_ZONES,
    REGIONS,
    InstanceType,
)
from environments.fit import fit_problems, gpu_memory_utilization
from environments.models import MODEL_CATALOG, ModelFacts

# ECS registers less memory than an instance's nominal size (the kernel, the ECS and
# container agents and the NVIDIA driver take their share). We budget tasks against
# this fraction so a task that "fits" on paper is also placeable in practice.
ECS_USABLE_MEMORY_FRACTION = 0.9
# NVIDIA's DCGM exporter, a daemon on every GPU instance (components/gpu_metrics.py), beside
# its own metrics collector: what it reserves of each instance before any worker is placed.
DCGM_EXPORTER_CPU_UNITS = 128
DCGM_EXPORTER_MEMORY_MIB = 512


class Model(BaseModel):
    # strict: TOML already says what type a value is, so "yes" for a boolean or "2" for
    # a count is a mistake to report, not something to coerce silently.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _arn_pattern(service: str, resource: str) -> re.Pattern[str]:
    return re.compile(rf"^arn:aws(?:-cn|-us-gov)?:{service}:(?P<region>[a-z]{{2}}(?:-[a-z]+)+-\d):\d{{12}}:{resource}$")


SECRET_ARN = _arn_pattern("secretsmanager", r"secret:[A-Za-z0-9/_+=.@-]+")
CERTIFICATE_ARN = _arn_pattern("acm", r"certificate/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
WAF_ACL_ARN = _arn_pattern("wafv2", r"regional/webacl/[A-Za-z0-9_-]{1,128}/[0-9a-f-]{36}")
SNS_TOPIC_ARN = _arn_pattern("sns", r"[A-Za-z0-9_-]{1,256}")
KMS_KEY_ARN = _arn_pattern("kms", r"key/[0-9a-f-]{36}")
AMP_WORKSPACE_ARN = _arn_pattern("aps", r"workspace/ws-[0-9a-f-]{1,64}")


def _arn(pattern: re.Pattern[str], example: str) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise PydanticCustomError(
                "arn", "not a valid ARN of this kind; expected e.g. {example}", {"example": example}
            )
        return value

    return AfterValidator(check)


SecretArn = Annotated[str, _arn(SECRET_ARN, "arn:aws:secretsmanager:us-east-1:123456789012:secret:hf-token-AbCdEf")]
CertificateArn = Annotated[
    str, _arn(CERTIFICATE_ARN, "arn:aws:acm:us-east-1:123456789012:certificate/01234567-89ab-cdef-0123-456789abcdef")
]
WafAclArn = Annotated[
    str,
    _arn(
        WAF_ACL_ARN, "arn:aws:wafv2:us-east-1:123456789012:regional/webacl/my-acl/01234567-89ab-cdef-0123-456789abcdef"
    ),
]
SnsTopicArn = Annotated[str, _arn(SNS_TOPIC_ARN, "arn:aws:sns:us-east-1:123456789012:oncall")]
KmsKeyArn = Annotated[
    str, _arn(KMS_KEY_ARN, "arn:aws:kms:us-east-1:123456789012:key/01234567-89ab-cdef-0123-456789abcdef")
]
AmpWorkspaceArn = Annotated[
    str, _arn(AMP_WORKSPACE_ARN, "arn:aws:aps:us-east-1:123456789012:workspace/ws-01234567-89ab-cdef-0123-456789abcdef")
]


def did_you_mean(value: object, allowed: Collection[Any]) -> str:
    """ " (did you mean X?)" for the closest allowed value, or nothing when none is close."""
    if isinstance(value, int) and all(isinstance(item, int) for item in allowed):
        return f" (nearest: {min(allowed, key=lambda item: abs(item - value))})"
    close = difflib.get_close_matches(str(value), [str(item) for item in allowed], n=3, cutoff=0.6)
    if not close:
        return ""

    def similarity(candidate: str) -> float:
        return difflib.SequenceMatcher(None, str(value), candidate).ratio()

    # Equally close candidates are all named: us-est-1 is one letter from us-east-1 and from us-west-1.
    tied = [candidate for candidate in close if similarity(candidate) == similarity(close[0])]
    return f" (did you mean {' or '.join(tied)}?)"


def _member_of(kind: str, allowed: Collection[Any], what: str, hint: str = "") -> AfterValidator:
    """Accept only values from one of the catalog's tables, listing them when not."""

    def check(value: Any) -> Any:
        if value not in allowed:
            raise PydanticCustomError(
                kind,
                f"{{value}} is not {what}{{close}}; allowed: {{allowed}}{hint}",
                {"value": repr(value), "allowed": ", ".join(map(str, allowed)), "close": did_you_mean(value, allowed)},
            )
        return value

    return AfterValidator(check)


Region = Annotated[str, _member_of("region", REGIONS, "an AWS region")]
GpuInstanceType = Annotated[
    str,
    _member_of(
        "instance_type",
        GPU_INSTANCE_TYPES,
        "a GPU instance type in environments/catalog.py",
        "; to add one, add its row to GPU_INSTANCE_TYPES in environments/catalog.py (the comment there says how)",
    ),
]
RetentionDays = Annotated[int, _member_of("retention", LOG_RETENTION_DAYS, "a CloudWatch Logs retention")]


def _ipv4_network(value: str) -> str:
    try:
        ipaddress.IPv4Network(value, strict=True)
    except ValueError as error:
        raise PydanticCustomError(
            "cidr", "not an IPv4 CIDR block like 10.0.0.0/16 ({error})", {"error": str(error)}
        ) from None
    return value


Cidr = Annotated[str, AfterValidator(_ipv4_network)]
ImageTag = Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")]
ImageReference = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._/:-]*[a-z0-9](:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$")]
CRON = re.compile(r"^cron\([^()\s]+( [^()\s]+){5}\)$")


def _cron(value: str) -> str:
    if not CRON.fullmatch(value):
        raise PydanticCustomError(
            "cron",
            "{value} is not a scheduled-action cron expression: six fields in cron(...), minutes hours day-of-month "
            'month day-of-week year, e.g. "cron(0 8 ? * MON-FRI *)" for 08:00 on weekdays',
            {"value": repr(value)},
        )
    return value


Cron = Annotated[str, AfterValidator(_cron)]
# A Hugging Face id ("org/name") or a name clients send; one command-line token.
ModelName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")]


def _problem(path: str, message: str) -> tuple[str, str]:
    return (path, message)


# --- backend ----------------------------------------------------------------------


# Terraform (run by `cdktf deploy` or by hand) works in the stack's directory,
# <outdir>/stacks/dynamo-<name>/, and resolves a relative state path from there. Three levels
# up is the directory holding the output directory: state/ beside cdktf.out/, which synth never
# writes. Relative, so the JSON names no host path and is the same whatever --outdir is.
STATE_FROM_STACK_DIR = "../../../state"


class LocalBackendConfig(Model):
    """State in a local file: fine for one person's dev environment, nothing shared."""

    type: Literal["local"] = "local"
    path: str | None = Field(
        None,
        description=(
            "State file path, used as given; a relative one starts from the stack's directory "
            "`cdktf.out/stacks/dynamo-<name>/` "
            "and must lead out of the output directory. Default `../../../state/terraform.dynamo-<name>.tfstate`: "
            "`state/` beside `cdktf.out/`."
        ),
    )

    def state_path(self, stack_name: str) -> str:
        return self.path or f"{STATE_FROM_STACK_DIR}/terraform.{stack_name}.tfstate"


class S3BackendConfig(Model):
    """State in S3 with Terraform's native lock file (no DynamoDB table needed)."""

    type: Literal["s3"]
    bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", description="Existing, versioned state bucket.")
    key: str = Field(min_length=1, description="Object key of the state, e.g. `dynamo/staging.tfstate`.")
    region: Region = Field(description="Region of the state bucket.")
    kms_key_arn: KmsKeyArn | None = Field(None, description="KMS key for state encryption; default SSE-S3.")


class HcpBackendConfig(Model):
    """State in an HCP Terraform (or Terraform Enterprise) workspace."""

    type: Literal["hcp"]
    organization: str = Field(min_length=1)
    workspace: str = Field(pattern=r"^[A-Za-z0-9_-]{1,90}$")
    hostname: str = Field("app.terraform.io", description="HCP Terraform or Terraform Enterprise host.")


# --- network ----------------------------------------------------------------------


class NetworkConfig(Model):
    cidr: Cidr = Field("10.0.0.0/16", description="VPC CIDR block, /16 to /20.")
    az_count: int = Field(
        2,
        ge=1,
        le=6,
        description=(
            "Availability zones to spread subnets over: an ALB needs 2, and the region has a limit "
            "(environments/catalog.py)."
        ),
    )
    nat: Literal["single", "per_az"] = Field(
        "single", description="`single`: one NAT gateway (cheap, one AZ's outage cuts egress); `per_az`: one per AZ."
    )
    public_subnet_cidrs: list[Cidr] | None = Field(None, description="One per AZ; default carved from `cidr`.")
    private_subnet_cidrs: list[Cidr] | None = Field(
        None, description="One per AZ; default /20s carved from `cidr` (awsvpc tasks use one address each)."
    )

    @model_validator(mode="after")
    def _subnets(self) -> NetworkConfig:
        vpc = ipaddress.IPv4Network(self.cidr)
        problems = []
        if not 16 <= vpc.prefixlen <= 20:
            problems.append(_problem("cidr", f"prefix /{vpc.prefixlen} not allowed; use /16 to /20"))
        given = {"public_subnet_cidrs": self.public_subnet_cidrs, "private_subnet_cidrs": self.private_subnet_cidrs}
        seen: list[tuple[str, ipaddress.IPv4Network]] = []
        for field, cidrs in given.items():
            if cidrs is None:
                continue
            if len(cidrs) != self.az_count:
                problems.append(_problem(field, f"needs exactly az_count={self.az_count} entries, got {len(cidrs)}"))
            for index, cidr in enumerate(cidrs):
                subnet = ipaddress.IPv4Network(cidr)
                path = f"{field}.{index}"
                if not subnet.subnet_of(vpc):
                    problems.append(_problem(path, f"{cidr} is outside the VPC {self.cidr}"))
                for other_path, other in seen:
                    if subnet.overlaps(other):
                        problems.append(_problem(path, f"{cidr} overlaps {other_path} ({other})"))
                seen.append((path, subnet))
        _raise(problems)
        return self

    def subnet_cidrs(self) -> tuple[list[str], list[str]]:
        """(public, private) CIDRs per AZ: explicit ones, or carved from the VPC block."""
        vpc = ipaddress.IPv4Network(self.cidr)
        sixteenths = list(vpc.subnets(prefixlen_diff=4))
        private = self.private_subnet_cidrs or [str(block) for block in sixteenths[: self.az_count]]
        last = list(sixteenths[-1].subnets(prefixlen_diff=4))
        public = self.public_subnet_cidrs or [str(block) for block in last[: self.az_count]]
        return list(public), list(private)


# --- GPU fleet, image, model ------------------------------------------------------


class GpuFleetConfig(Model):
    instance_type: GpuInstanceType = Field(
        "g6e.2xlarge", description="GPU instance type (see environments/catalog.py)."
    )
    min_instances: int = Field(
        0, ge=0, le=1000, description="Auto Scaling group minimum; 0 lets the fleet scale to zero."
    )
    max_instances: int = Field(
        2, ge=1, le=1000, description="Auto Scaling group maximum; must hold the largest autoscaled GPU demand."
    )
    desired_instances: int | None = Field(
        None,
        ge=0,
        le=1000,
        description="Initial size; default `min_instances`. ECS managed scaling owns it afterwards.",
    )
    capacity: Literal["on_demand", "spot"] = Field(
        "on_demand", description="`spot` uses a mixed instances policy, price-capacity-optimized."
    )
    root_volume_gib: int = Field(
        200, ge=100, le=16384, description="Encrypted gp3 root volume: images and model weights are big."
    )
    root_volume_throughput_mibps: int = Field(
        500,
        ge=GP3_THROUGHPUT_MIBPS[0],
        le=GP3_THROUGHPUT_MIBPS[1],
        description=(
            "gp3 throughput of the root volume in MiB/s: weights are written and read at this rate on every cold "
            "start (the instance's EBS limit caps it). 125 is free; each MiB/s above costs extra. At most 0.25 per "
            "provisioned IOPS."
        ),
    )
    root_volume_iops: int = Field(
        3000,
        ge=GP3_IOPS[0],
        le=GP3_IOPS[1],
        description="gp3 IOPS of the root volume; 3000 is free. Throughput above 750 MiB/s needs more.",
    )
    model_cache_path: str = Field(
        "/opt/dynamo/model-cache",
        pattern=r"^/[A-Za-z0-9_./-]+$",
        description="Host directory shared by workers as the Hugging Face cache.",
    )

    @model_validator(mode="after")
    def _bounds(self) -> GpuFleetConfig:
        problems = []
        if self.min_instances > self.max_instances:
            problems.append(
                _problem("min_instances", f"{self.min_instances} is above max_instances ({self.max_instances})")
            )
        if (
            self.desired_instances is not None
            and not self.min_instances <= self.desired_instances <= self.max_instances
        ):
            problems.append(
                _problem(
                    "desired_instances",
                    f"{self.desired_instances} is outside [min_instances, max_instances] = [{self.min_instances}, "
                    f"{self.max_instances}]",
                )
            )
        _raise(problems)
        return self

    @property
    def instance(self) -> InstanceType:
        return GPU_INSTANCE_TYPES[self.instance_type]

    @property
    def initial_instances(self) -> int:
        return self.min_instances if self.desired_instances is None else self.desired_instances


class ImageConfig(Model):
    repository: str = Field(
        "nvcr.io/nvidia/ai-dynamo/vllm-runtime",
        pattern=r"^[a-z0-9][a-z0-9._/:-]*[a-z0-9]$",
        description="Dynamo vLLM runtime image repository.",
    )
    tag: ImageTag = Field(
        "1.2.1",
        description=(
            "Image tag: no spaces, at most 128 characters. 1.x takes --disaggregation-mode. Checked against the ECS "
            "GPU AMI's NVIDIA driver (IMAGE_CUDA in environments/catalog.py)."
        ),
    )
    pull_credentials_secret_arn: SecretArn | None = Field(
        None,
        description=(
            "Secrets Manager secret with `username`/`password` for a private registry (NGC: `$oauthtoken` + API key)."
        ),
    )

    @property
    def reference(self) -> str:
        return f"{self.repository}:{self.tag}"


class ModelFactsConfig(Model):
    """What vLLM needs to know of a model outside environments/models.py, from its config.json."""

    parameters: int = Field(ge=1_000_000, description="Parameters (all experts of a mixture of experts).")
    dtype: Literal["bfloat16", "float16", "float32", "float8", "mxfp4"] = Field(
        description="dtype of the checkpoint (config.json `torch_dtype`; fp8 checkpoints: `float8`)."
    )
    weights_gib: float | None = Field(
        None, gt=0, description="Size of the checkpoint in GiB, where it is not parameters x dtype (mxfp4, mixed)."
    )
    layers: int = Field(ge=1, description="`num_hidden_layers`.")
    attention_heads: int = Field(ge=1, description="`num_attention_heads`.")
    kv_heads: int = Field(ge=1, description="`num_key_value_heads` (the attention heads when absent).")
    head_dim: int = Field(ge=1, description="`head_dim`, or `hidden_size` / `num_attention_heads`.")
    max_context: int = Field(ge=256, description="`max_position_embeddings`: vLLM's default max_model_len.")
    gated: bool = Field(False, description="Whether the Hugging Face repository is gated (then a token is needed).")

    @model_validator(mode="after")
    def _weights(self) -> ModelFactsConfig:
        if self.dtype == "mxfp4" and self.weights_gib is None:
            _raise([_problem("weights_gib", 'required with dtype = "mxfp4": the checkpoint\'s size in GiB')])
        if self.attention_heads % self.kv_heads:
            _raise([_problem("kv_heads", f"{self.kv_heads} does not divide attention_heads ({self.attention_heads})")])
        return self

    def facts(self, source: str) -> ModelFacts:
        return ModelFacts(
            parameters=self.parameters,
            dtype=self.dtype,
            layers=self.layers,
            attention_heads=self.attention_heads,
            kv_heads=self.kv_heads,
            head_dim=self.head_dim,
            max_context=self.max_context,
            gated=self.gated,
            source=source,
            weights_bytes=round(self.weights_gib * 2**30) if self.weights_gib is not None else None,
        )


class ModelConfig(Model):
    name: ModelName = Field("Qwen/Qwen3-0.6B", description="Hugging Face model id served by vLLM.")
    served_model_name: ModelName | None = Field(
        None,
        description="Model name clients send in requests (vLLM --served-model-name); default the Hugging Face id.",
    )
    hf_token_secret_arn: SecretArn | None = Field(
        None, description="Secrets Manager secret holding HF_TOKEN for gated models."
    )
    tensor_parallel_size: int = Field(
        1, ge=1, le=8, description="vLLM tensor parallel size; must equal the GPUs per worker."
    )
    max_model_len: int | None = Field(None, ge=256, description="vLLM --max-model-len; default the model's own.")
    extra_vllm_args: list[Annotated[str, Field(pattern=r"^\S+$")]] = Field(
        default_factory=list,
        description='Extra vLLM arguments, one token per entry, e.g. ["--gpu-memory-utilization", "0.9"].',
    )
    config_json: str | None = Field(
        None,
        description=(
            "Path to the model's config.json (relative to the environment file), for a model outside "
            "environments/models.py: its facts are read from it, and `[model.facts]` adds what it lacks."
        ),
    )
    facts: ModelFactsConfig | None = Field(
        None,
        description=(
            "The model's facts, for a model outside environments/models.py (or to override the catalog's). See "
            "`[model.facts]`."
        ),
    )

    @property
    def model_facts(self) -> ModelFacts | None:
        """The facts the fit checks use: given ones first, then the catalog's."""
        if self.facts is not None:
            return self.facts.facts(self.config_json or "[model.facts]")
        return MODEL_CATALOG.get(self.name)


# --- services ---------------------------------------------------------------------


class TaskCountConfig(Model):
    count: int = Field(ge=1, le=1000, description="Desired tasks at deploy time.")
    min_count: int = Field(ge=0, le=1000, description="Application Auto Scaling minimum.")
    max_count: int = Field(ge=1, le=1000, description="Application Auto Scaling maximum.")

    @model_validator(mode="after")
    def _ordered(self) -> TaskCountConfig:
        problems = []
        if self.min_count > self.max_count:
            problems.append(_problem("min_count", f"{self.min_count} is above max_count ({self.max_count})"))
        elif not self.min_count <= self.count <= self.max_count:
            problems.append(
                _problem(
                    "count", f"{self.count} is outside [min_count, max_count] = [{self.min_count}, {self.max_count}]"
                )
            )
        _raise(problems)
        return self


class FrontendConfig(TaskCountConfig):
    count: int = Field(1, ge=1, le=1000, description="Desired frontend tasks at deploy time.")
    min_count: int = Field(1, ge=0, le=1000, description="Application Auto Scaling minimum.")
    max_count: int = Field(4, ge=1, le=1000, description="Application Auto Scaling maximum.")
    placement: Literal["fargate", "gpu_fleet"] = Field(
        "fargate",
        description=(
            "`fargate`: independent of GPU capacity, pays a cold pull of the ~12 GB image; `gpu_fleet`: image already "
            "cached there."
        ),
    )
    cpu: int = Field(2048, ge=256, le=16384, description="CPU units (1024 = 1 vCPU).")
    memory: int = Field(8192, ge=512, le=122880, description="Memory in MiB.")
    ephemeral_storage_gib: int = Field(
        100, ge=21, le=200, description="Fargate ephemeral storage; the runtime image alone is ~12 GB compressed."
    )
    router_mode: Literal["kv", "round-robin", "random"] = Field(
        "kv", description="Dynamo router: `kv` routes by KV-cache overlap."
    )
    migration_limit: int = Field(
        3,
        ge=0,
        le=10,
        description=(
            "Times a request may move to another worker when its worker goes away (Dynamo --migration-limit); 0 turns "
            "it off, "
            "and a request on a worker that dies fails. Workers go away on crashes, scale-in, instance refreshes and "
            "rollouts "
            "(a surge rollout stops the old worker too, once its replacement is healthy), not only on spot "
            "interruption. "
            "Cost: the frontend keeps the tokens of in-flight requests, and a moved request runs its prefill again "
            "elsewhere."
        ),
    )
    cpu_target_percent: int = Field(60, ge=10, le=90, description="Target tracking on average CPU.")
    requests_per_target: int = Field(
        200, ge=1, le=100000, description="Target tracking on ALB requests per target (per minute)."
    )


class GpuWorkerConfig(TaskCountConfig):
    count: int = Field(1, ge=1, le=1000, description="Desired workers at deploy time.")
    min_count: int = Field(1, ge=0, le=1000, description="Application Auto Scaling minimum.")
    max_count: int = Field(2, ge=1, le=1000, description="Application Auto Scaling maximum.")
    cpu: int = Field(4096, ge=256, le=196608, description="CPU units (1024 = 1 vCPU).")
    memory: int = Field(40960, ge=1024, le=2097152, description="Memory in MiB.")
    gpus: int = Field(1, ge=1, le=16, description="GPUs per worker; must equal model.tensor_parallel_size.")
    shared_memory_mib: int = Field(8192, ge=64, description="/dev/shm size for NCCL and tensor parallelism.")
    rollout: Literal["in_place", "surge"] = Field(
        "in_place",
        description=(
            "How a new task definition (image, model, secret) or an instance refresh replaces workers. `in_place`: "
            "a worker stops before its replacement starts (maximumPercent 100), so no spare GPU is needed; with "
            "min_count < 2 every worker may stop at once and the role serves nothing while the new one loads its model "
            "(~10 minutes). `surge`: the replacement starts first and the old worker stops once it is healthy "
            "(maximumPercent 200, minimumHealthyPercent 100); gpu_fleet.max_instances must leave room for one more "
            "worker of this role."
        ),
    )

    @property
    def rollout_serves_nothing(self) -> bool:
        """An in-place rollout with fewer than two workers stops them all before new ones load."""
        return self.rollout == "in_place" and self.min_count < 2

    @model_validator(mode="after")
    def _shm(self) -> GpuWorkerConfig:
        if self.shared_memory_mib >= self.memory:
            _raise([_problem("shared_memory_mib", f"{self.shared_memory_mib} must be below memory ({self.memory})")])
        return self


class FargateTaskConfig(Model):
    image: ImageReference
    cpu: int = Field(512, description="CPU units; a Fargate size.")
    memory: int = Field(1024, description="Memory in MiB; valid for the CPU size on Fargate.")


class EtcdConfig(FargateTaskConfig):
    image: ImageReference = Field("quay.io/coreos/etcd:v3.5.21", description="Upstream etcd image.")


class NatsConfig(FargateTaskConfig):
    image: ImageReference = Field("nats:2.11-alpine", description="NATS server image; started with JetStream (-js).")


class ControlPlaneConfig(Model):
    etcd_members: Literal[1, 3] = Field(
        3,
        description=(
            "etcd cluster size. 3: each member is its own Fargate service in its own AZ (two share one with 2 AZs) "
            "with "
            "its data on EFS; losing any one member stops no Dynamo process, and rollouts replace one member at a "
            "time. "
            "1: every replacement of the single task (Fargate retirement, a crash, a task definition change) restarts "
            "every Dynamo process, GPU workers included. Cost at the default 0.5 vCPU / 1 GiB per member (Fargate "
            "on-demand, us-east-1): ~$18 a month for 1, ~$54 for 3; EFS adds cents."
        ),
    )
    etcd: EtcdConfig = Field(default_factory=EtcdConfig)
    nats: NatsConfig = Field(default_factory=NatsConfig)


class LoadBalancerConfig(Model):
    internal: bool = Field(False, description="Internal ALB (private subnets) instead of internet-facing.")
    allowed_cidrs: list[Cidr] = Field(["0.0.0.0/0"], min_length=1, description="Who may reach the listener ports.")
    certificate_arn: CertificateArn | None = Field(
        None, description="ACM certificate: HTTPS on 443 and HTTP redirected; without it, HTTP on 80."
    )
    ssl_policy: Literal[
        "ELBSecurityPolicy-TLS13-1-2-2021-06",
        "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
        "ELBSecurityPolicy-TLS13-1-3-2021-06",
    ] = Field("ELBSecurityPolicy-TLS13-1-2-2021-06", description="TLS policy of the HTTPS listener.")
    idle_timeout_seconds: int = Field(
        900, ge=1, le=4000, description="ALB idle timeout; long, so streamed tokens are not cut off."
    )
    deregistration_delay_seconds: int = Field(
        120, ge=0, le=3600, description="Time for in-flight streams to finish when a frontend stops."
    )
    deletion_protection: bool = Field(False, description="ALB deletion protection.")
    access_logs: bool = Field(
        False, description="ALB access logs to an encrypted, private S3 bucket created per environment."
    )
    waf_acl_arn: WafAclArn | None = Field(None, description="Regional WAFv2 web ACL associated with the ALB.")


class LoggingConfig(Model):
    retention_days: RetentionDays = Field(30, description="CloudWatch Logs retention for every log group.")
    alarm_topic_arn: SnsTopicArn | None = Field(
        None, description="Existing SNS topic for alarms; default a new encrypted topic."
    )


class ScalingConfig(Model):
    """How the GPU workers scale on Dynamo's own metrics (README: Scaling on Dynamo's metrics).

    Each worker role has two policies: a step policy on its latency (scale out only) and
    target tracking on its requests in flight per worker (out and in). The latency targets are
    Dynamo's planner defaults; the in-flight targets are the ones `make simulate` chooses."""

    ttft_target_ms: int = Field(
        500,
        ge=10,
        le=60000,
        description=(
            "Time to first token SLO: mean TTFT at the frontends above it scales prefill out (decode in aggregated "
            "mode). Dynamo's planner default (SLAPlannerDefaults.ttft_ms)."
        ),
    )
    itl_target_ms: int = Field(
        50,
        ge=1,
        le=10000,
        description=(
            "Inter-token latency SLO: mean ITL at the frontends above it scales decode out. Dynamo's planner default "
            "(SLAPlannerDefaults.itl_ms)."
        ),
    )
    latency_breach_minutes: int = Field(
        3,
        ge=1,
        le=15,
        description=(
            "Consecutive minutes over a latency target before its step policy adds workers (Dynamo's planner re-plans "
            "every 180 s)."
        ),
    )
    prefill_inflight_target: int = Field(
        3,
        ge=1,
        le=10000,
        description=(
            "Target tracking: requests in flight per prefill worker (queued or prefilling). Chosen by `make simulate` "
            "on the mocker's calibration: re-measure with `make calibrate` on real GPUs."
        ),
    )
    decode_inflight_target: int = Field(
        24,
        ge=1,
        le=10000,
        description=(
            "Target tracking: requests in flight per decode worker (streaming tokens). Chosen by `make simulate` on "
            "the mocker's calibration: re-measure with `make calibrate` on real GPUs."
        ),
    )
    scale_out_cooldown_seconds: int = Field(
        60, ge=0, le=3600, description="After adding workers, how long before a policy may add more."
    )
    scale_in_cooldown_seconds: int = Field(
        600,
        ge=60,
        le=7200,
        description=(
            "After any scaling, how long before a worker may be removed: a removed GPU worker takes the environment's "
            "cold start (minutes) to come back."
        ),
    )
    latency_alarm_minutes: int = Field(
        5, ge=1, le=60, description="Minutes of mean TTFT or ITL over target before the alarm notifies."
    )
    gpu_memory_alarm_percent: int = Field(
        97,
        ge=50,
        le=100,
        description=(
            "GPU memory used (DCGM) above it notifies. vLLM holds --gpu-memory-utilization (0.9 by default) of each "
            "GPU from the start, so it must be above that."
        ),
    )


class MetricsConfig(Model):
    """The collector beside every Dynamo container, and the GPU exporter on every GPU instance."""

    scrape_interval_seconds: int = Field(
        15,
        ge=5,
        le=60,
        description="How often each collector reads /metrics; at most 60 s, so every minute has a data point.",
    )
    collector_image: ImageReference = Field(
        "public.ecr.aws/aws-observability/aws-otel-collector:v0.49.0",
        description="AWS Distro for OpenTelemetry collector (prometheus receiver, awsemf exporter), pinned.",
    )
    collector_cpu: int = Field(
        128, ge=32, le=1024, description="CPU units each collector reserves, out of its task's (1024 = 1 vCPU)."
    )
    collector_memory_mib: int = Field(
        256,
        ge=128,
        le=2048,
        description="Each collector's hard memory limit (MiB), out of its task's; it reserves half of it.",
    )
    dcgm_exporter_image: ImageReference = Field(
        "nvcr.io/nvidia/k8s/dcgm-exporter:4.5.3-4.8.2-ubuntu22.04",
        description="NVIDIA DCGM exporter, one per GPU instance (GPU utilization and memory).",
    )
    amp_workspace_arn: AmpWorkspaceArn | None = Field(
        None,
        description=(
            "Amazon Managed Service for Prometheus workspace: the same metrics are also remote-written there "
            "(SigV4, the task role may aps:RemoteWrite to this workspace only)."
        ),
    )


class ScheduleConfig(Model):
    """Scale every service to zero outside working hours (the GPU fleet follows)."""

    timezone: str = Field(
        "UTC", pattern=r"^[A-Za-z]+(?:[/_+-][A-Za-z0-9_+-]+)*$", description="IANA time zone of the cron expressions."
    )
    scale_up: Cron = Field("cron(0 8 ? * MON-FRI *)", description="When services return to their configured counts.")
    scale_down: Cron = Field("cron(0 20 ? * MON-FRI *)", description="When services go to zero.")


# --- the environment ----------------------------------------------------------------


class Environment(Model):
    name: str = Field(pattern=r"^[a-z][a-z0-9-]{1,15}$", description="Environment name; the stack is `dynamo-<name>`.")
    region: Region = Field(description="AWS region.")
    mode: Literal["aggregated", "disaggregated"] = Field(
        "disaggregated",
        description="`aggregated`: decode workers do everything; `disaggregated`: separate prefill workers.",
    )
    backend: LocalBackendConfig | S3BackendConfig | HcpBackendConfig = Field(
        default_factory=LocalBackendConfig, discriminator="type"
    )
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    gpu_fleet: GpuFleetConfig = Field(default_factory=GpuFleetConfig)
    image: ImageConfig = Field(default_factory=ImageConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    frontend: FrontendConfig = Field(default_factory=FrontendConfig)
    decode: GpuWorkerConfig = Field(default_factory=GpuWorkerConfig)
    prefill: GpuWorkerConfig | None = Field(
        None, description="Required in `disaggregated` mode, not allowed in `aggregated`."
    )
    control_plane: ControlPlaneConfig = Field(default_factory=ControlPlaneConfig)
    load_balancer: LoadBalancerConfig = Field(default_factory=LoadBalancerConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    scaling: ScalingConfig = Field(default_factory=ScalingConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    schedule: ScheduleConfig | None = Field(None, description="Scale to zero outside working hours (dev).")
    secrets_kms_key_arn: KmsKeyArn | None = Field(
        None,
        description=(
            "Customer-managed KMS key of the configured secrets; default the AWS-managed key (nothing to grant)."
        ),
    )

    @property
    def stack_name(self) -> str:
        return f"dynamo-{self.name}"

    def gpu_workers(self) -> dict[str, GpuWorkerConfig]:
        workers = {"decode": self.decode}
        if self.prefill is not None:
            workers["prefill"] = self.prefill
        return workers

    def rollout_summary(self) -> str:
        """Per role, how workers roll out; says so when a rollout leaves a role serving nothing."""
        parts = []
        for role, worker in self.gpu_workers().items():
            if worker.rollout_serves_nothing:
                parts.append(f"{role} in_place (min_count {worker.min_count}: DOWN while a new {role} worker loads)")
            else:
                parts.append(f"{role} {worker.rollout}")
        return "rollout " + ", ".join(parts)

    @model_validator(mode="after")
    def _cross_field(self) -> Environment:
        _raise(cross_field_problems(self))
        return self


def _arn_region(arn: str) -> str:
    return arn.split(":")[3]


def _inside_output(path: str) -> bool:
    """Whether a relative state path, taken from <outdir>/stacks/<stack>/, stays inside <outdir>."""
    if posixpath.isabs(path):
        return False
    resolved = posixpath.normpath(posixpath.join("stacks", "stack", path))
    return not (resolved == ".." or resolved.startswith("../"))


def account_ids(env: Environment) -> set[str]:
    """The AWS accounts this environment's resources name in their ARNs (none: not known).

    The state backend's key is left out: state often lives in another account."""
    return {arn.split(":")[4] for _, arn in _regional_arns(env)}


def cross_field_problems(env: Environment) -> list[tuple[str, str]]:
    """Rules that span sections, each reported against the field a user should change."""
    problems = []
    if env.mode == "disaggregated" and env.prefill is None:
        problems.append(_problem("prefill", 'required when mode = "disaggregated" (or set mode = "aggregated")'))
    if env.mode == "aggregated" and env.prefill is not None:
        problems.append(
            _problem("prefill", 'not allowed when mode = "aggregated" (remove it or set mode = "disaggregated")')
        )
    zones = REGION_AVAILABILITY_ZONES[env.region]
    if env.network.az_count < 2:
        problems.append(
            _problem(
                "network.az_count",
                f"{env.network.az_count} is too few: an Application Load Balancer needs at least 2 AZs",
            )
        )
    elif env.network.az_count > zones:
        problems.append(
            _problem(
                "network.az_count",
                f"{env.network.az_count} is more than the {zones} Availability Zones {env.region} has "
                f"(environments/catalog.py); allowed: 2 to {zones}",
            )
        )
    if isinstance(env.backend, LocalBackendConfig) and env.backend.path and _inside_output(env.backend.path):
        problems.append(
            _problem(
                "backend.path",
                f'"{env.backend.path}" puts the state inside the output directory (a relative path starts from '
                f"cdktf.out/stacks/{env.stack_name}/); use a path that leads out of it, e.g. the default "
                f'"{LocalBackendConfig().state_path(env.stack_name)}", or an absolute one',
            )
        )
    for path, arn in _regional_arns(env):
        if _arn_region(arn) != env.region:
            problems.append(
                _problem(
                    path,
                    f"is in {_arn_region(arn)}, but the environment is in {env.region}; it must be in the same region",
                )
            )
    for path, task in {
        "control_plane.etcd": env.control_plane.etcd,
        "control_plane.nats": env.control_plane.nats,
    }.items():
        problems += _fargate_size_problems(path, task.cpu, task.memory)
    if env.frontend.placement == "fargate":
        problems += _fargate_size_problems("frontend", env.frontend.cpu, env.frontend.memory)
    utilization = gpu_memory_utilization(list(env.model.extra_vllm_args))
    if env.scaling.gpu_memory_alarm_percent <= utilization * 100:
        problems.append(
            _problem(
                "scaling.gpu_memory_alarm_percent",
                f"{env.scaling.gpu_memory_alarm_percent} is not above the {utilization * 100:g}% of each GPU that vLLM "
                f"holds from the start (--gpu-memory-utilization {utilization:g}): the alarm would never clear; "
                f"allowed: {math.floor(utilization * 100) + 1} to 100",
            )
        )
    fleet_problems = _gpu_fleet_problems(env)
    problems += fleet_problems
    problems += _model_problems(env, fleet_checked=not fleet_problems)
    return problems


def _model_problems(env: Environment, *, fleet_checked: bool) -> list[tuple[str, str]]:
    facts = env.model.model_facts
    if facts is None:
        return [
            (
                "model.name",
                f'"{env.model.name}" is not in environments/models.py{did_you_mean(env.model.name, MODEL_CATALOG)}; '
                "for another model give its facts: model.config_json = the path of its config.json, or a "
                "[model.facts] table (parameters, dtype, layers, attention_heads, kv_heads, head_dim, max_context, "
                "gated)",
            )
        ]
    if not fleet_checked:
        return []
    return fit_problems(env, facts)


def _regional_arns(env: Environment) -> list[tuple[str, str]]:
    candidates = {
        "load_balancer.certificate_arn": env.load_balancer.certificate_arn,
        "load_balancer.waf_acl_arn": env.load_balancer.waf_acl_arn,
        "image.pull_credentials_secret_arn": env.image.pull_credentials_secret_arn,
        "model.hf_token_secret_arn": env.model.hf_token_secret_arn,
        "logging.alarm_topic_arn": env.logging.alarm_topic_arn,
        "secrets_kms_key_arn": env.secrets_kms_key_arn,
        "metrics.amp_workspace_arn": env.metrics.amp_workspace_arn,
    }
    return [(path, arn) for path, arn in candidates.items() if arn is not None]


def _fargate_size_problems(path: str, cpu: int, memory: int) -> list[tuple[str, str]]:
    if cpu not in FARGATE_CPU_MEMORY_MIB:
        return [
            _problem(
                f"{path}.cpu",
                f"{cpu} is not a Fargate CPU size; allowed: {', '.join(map(str, FARGATE_CPU_MEMORY_MIB))}",
            )
        ]
    allowed = FARGATE_CPU_MEMORY_MIB[cpu]
    if memory not in allowed:
        return [
            _problem(
                f"{path}.memory",
                f"{memory} MiB is not valid with cpu = {cpu} on Fargate; allowed: {allowed[0]}..{allowed[-1]} in "
                f"steps of {allowed[1] - allowed[0] if len(allowed) > 1 else allowed[0]}",
            )
        ]
    return []


def _gpu_fleet_problems(env: Environment) -> list[tuple[str, str]]:
    instance = env.gpu_fleet.instance
    daemon_cpu, daemon_memory = gpu_daemon_reservation(env)
    usable_memory = math.floor(instance.memory_mib * ECS_USABLE_MEMORY_FRACTION) - daemon_memory
    cpu_units = instance.vcpus * 1024 - daemon_cpu
    awsvpc_tasks = instance.max_network_interfaces - 1  # the instance keeps its primary ENI
    problems = []
    if env.frontend.placement == "gpu_fleet":
        problems += _fits_instance(env, "frontend", env.frontend.cpu, env.frontend.memory, cpu_units, usable_memory)
    fits: dict[str, int] = {}
    for role, worker in env.gpu_workers().items():
        too_big = _fits_instance(env, role, worker.cpu, worker.memory, cpu_units, usable_memory)
        if worker.gpus > instance.gpus:
            too_big.append(
                _problem(
                    f"{role}.gpus",
                    f"{worker.gpus} GPUs do not fit on {env.gpu_fleet.instance_type} ({instance.gpus} GPUs)",
                )
            )
        problems += too_big
        if worker.gpus != env.model.tensor_parallel_size:
            problems.append(
                _problem(
                    f"{role}.gpus",
                    f"{worker.gpus} must equal model.tensor_parallel_size ({env.model.tensor_parallel_size})",
                )
            )
        if too_big:
            continue
        fit = min(instance.gpus // worker.gpus, cpu_units // worker.cpu, usable_memory // worker.memory)
        if fit > awsvpc_tasks:
            problems.append(
                _problem(
                    "gpu_fleet.instance_type",
                    f"{env.gpu_fleet.instance_type} fits {fit} {role} workers by GPUs, CPU and memory but only "
                    f"{awsvpc_tasks} awsvpc "
                    f"tasks ({instance.max_network_interfaces} network interfaces, one is the instance's): "
                    f"{(fit - awsvpc_tasks) * worker.gpus} GPUs would sit idle; use larger workers or another type",
                )
            )
            continue
        fits[role] = fit
    if problems:
        return problems
    workers = env.gpu_workers()
    needed = sum(math.ceil(_rollout_tasks(workers[role]) / fit) for role, fit in fits.items())
    if env.frontend.placement == "gpu_fleet":
        needed = max(needed, _instances_for_frontend(env, awsvpc_tasks))
    if env.gpu_fleet.max_instances < needed:
        demand = " + ".join(
            f"{role} max_count "
            f"{workers[role].max_count}{' + 1 during a surge rollout' if workers[role].rollout == 'surge' else ''} at "
            f"{fit}/instance"
            for role, fit in fits.items()
        )
        problems.append(
            _problem(
                "gpu_fleet.max_instances",
                f"{env.gpu_fleet.max_instances} cannot hold the autoscaled GPU demand ({demand}"
                f"{' + frontend' if env.frontend.placement == 'gpu_fleet' else ''}); needs at least {needed}",
            )
        )
    return problems


def gpu_daemon_reservation(env: Environment) -> tuple[int, int]:
    """(CPU units, MiB) the GPU metrics daemon reserves on every GPU instance: the DCGM exporter
    and its collector."""
    metrics = env.metrics
    return DCGM_EXPORTER_CPU_UNITS + metrics.collector_cpu, DCGM_EXPORTER_MEMORY_MIB + metrics.collector_memory_mib


def _fits_instance(
    env: Environment, role: str, cpu: int, memory: int, cpu_units: int, usable_memory: int
) -> list[tuple[str, str]]:
    instance_type = env.gpu_fleet.instance_type
    problems = []
    if cpu > cpu_units:
        problems.append(
            _problem(
                f"{role}.cpu",
                f"{cpu} CPU units do not fit on {instance_type} ({cpu_units} units once the GPU metrics daemon has "
                "its share)",
            )
        )
    if memory > usable_memory:
        problems.append(
            _problem(
                f"{role}.memory",
                f"{memory} MiB does not fit on {instance_type} (at most {usable_memory} MiB: "
                f"{int(ECS_USABLE_MEMORY_FRACTION * 100)}% of its {env.gpu_fleet.instance.memory_mib} MiB less "
                f"{gpu_daemon_reservation(env)[1]} MiB for the GPU metrics daemon)",
            )
        )
    return problems


def _rollout_tasks(worker: GpuWorkerConfig) -> int:
    """Tasks of a role at its autoscaled maximum while it rolls out.

    A surge rollout (maximumPercent 200, minimumHealthyPercent 100) starts replacements
    before it stops anything, as many as the cluster has room for ("provided that the
    cluster resources required to do this are available": ECS API reference,
    DeploymentConfiguration). It needs room for one more task to make progress: each
    replacement that turns healthy stops an old task and frees its place for the next.
    """
    return worker.max_count + (1 if worker.rollout == "surge" else 0)


def _instances_for_frontend(env: Environment, awsvpc_tasks: int) -> int:
    """With the frontend on the GPU fleet every frontend task takes an ENI slot too; the
    frontend rolls out like a surge worker (ECS's defaults, 200/100), one more task each."""
    total_tasks = env.frontend.max_count + 1 + sum(_rollout_tasks(worker) for worker in env.gpu_workers().values())
    return math.ceil(total_tasks / awsvpc_tasks)


def _raise(problems: list[tuple[str, str]]) -> None:
    """Report located problems; paths are relative to the model that found them."""
    if not problems:
        return
    raise PydanticCustomError(
        "config",
        "{summary}",
        {"summary": "; ".join(f"{path}: {message}" for path, message in problems), "problems": problems},
    )
