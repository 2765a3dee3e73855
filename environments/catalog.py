"""Facts about AWS that the environment model validates against, each with its source."""

from __future__ import annotations

from typing import NamedTuple


class InstanceType(NamedTuple):
    vcpus: int
    memory_mib: int
    gpus: int
    gpu_model: str
    gpu_memory_mib: int  # per GPU, as DescribeInstanceTypes reports it (what CUDA can allocate is a little less)
    max_network_interfaces: int  # all network cards; each awsvpc task takes one
    efa: bool
    ebs_max_mbps: int  # the instance's EBS throughput limit in MB/s (10^6 bytes), bursting where it is "up to"


# Source: AWS, "Amazon EC2 instance type specifications: accelerated computing"
# (docs.aws.amazon.com/ec2/latest/instancetypes/ac.html), cross-checked with the
# DescribeInstanceTypes data shipped in moto 5.2.1 (moto/ec2/resources/instance_types.json.gz:
# VCpuInfo, MemoryInfo, GpuInfo.Gpus[].MemoryInfo.SizeInMiB, NetworkInfo.MaximumNetworkInterfaces,
# EbsInfo.EbsOptimizedInfo.MaximumThroughputInMBps) and the ENI limits in aws/amazon-vpc-cni-k8s
# (pkg/vpc/vpc_ip_resource_limit.go). Taken 2026-11-26. x86_64 only, like the vllm-runtime image.
# g4dn, p4de, p5e and p6-b200 added 2026-11-26 from the same moto data. The T4 (g4dn) is Turing:
# Dynamo supports Ampere and later (docs/reference/compatibility.mdx in ai-dynamo/dynamo), so it
# is here for small experiments; vLLM runs bfloat16 only from compute capability 8.0, so a bf16
# model needs "--dtype", "half" in model.extra_vllm_args there (not checked).
#
# To add a type: copy its row from `aws ec2 describe-instance-types --instance-types <type>`
# (the fields above, in this order) and name the source and date here; tests/test_catalog.py
# checks that every row is self-consistent.
GPU_INSTANCE_TYPES: dict[str, InstanceType] = {
    "g4dn.xlarge": InstanceType(4, 16384, 1, "NVIDIA T4", 16384, 3, False, 437),
    "g4dn.2xlarge": InstanceType(8, 32768, 1, "NVIDIA T4", 16384, 3, False, 437),
    "g4dn.4xlarge": InstanceType(16, 65536, 1, "NVIDIA T4", 16384, 3, False, 593),
    "g4dn.8xlarge": InstanceType(32, 131072, 1, "NVIDIA T4", 16384, 4, True, 1187),
    "g4dn.12xlarge": InstanceType(48, 196608, 4, "NVIDIA T4", 16384, 8, True, 1187),
    "g4dn.16xlarge": InstanceType(64, 262144, 1, "NVIDIA T4", 16384, 4, True, 1187),
    "g4dn.metal": InstanceType(96, 393216, 8, "NVIDIA T4", 16384, 15, True, 2375),
    "g5.xlarge": InstanceType(4, 16384, 1, "NVIDIA A10G", 22888, 4, False, 437),
    "g5.2xlarge": InstanceType(8, 32768, 1, "NVIDIA A10G", 22888, 4, False, 437),
    "g5.4xlarge": InstanceType(16, 65536, 1, "NVIDIA A10G", 22888, 8, False, 593),
    "g5.8xlarge": InstanceType(32, 131072, 1, "NVIDIA A10G", 22888, 8, True, 2000),
    "g5.12xlarge": InstanceType(48, 196608, 4, "NVIDIA A10G", 22888, 15, True, 2000),
    "g5.16xlarge": InstanceType(64, 262144, 1, "NVIDIA A10G", 22888, 8, True, 2000),
    "g5.24xlarge": InstanceType(96, 393216, 4, "NVIDIA A10G", 22888, 15, True, 2375),
    "g5.48xlarge": InstanceType(192, 786432, 8, "NVIDIA A10G", 22888, 7, True, 2375),
    "g6.xlarge": InstanceType(4, 16384, 1, "NVIDIA L4", 22888, 4, False, 625),
    "g6.2xlarge": InstanceType(8, 32768, 1, "NVIDIA L4", 22888, 4, False, 625),
    "g6.4xlarge": InstanceType(16, 65536, 1, "NVIDIA L4", 22888, 8, False, 1000),
    "g6.8xlarge": InstanceType(32, 131072, 1, "NVIDIA L4", 22888, 8, True, 2000),
    "g6.12xlarge": InstanceType(48, 196608, 4, "NVIDIA L4", 22888, 8, True, 2500),
    "g6.16xlarge": InstanceType(64, 262144, 1, "NVIDIA L4", 22888, 15, True, 2500),
    "g6.24xlarge": InstanceType(96, 393216, 4, "NVIDIA L4", 22888, 15, True, 3750),
    "g6.48xlarge": InstanceType(192, 786432, 8, "NVIDIA L4", 22888, 15, True, 7500),
    "g6e.xlarge": InstanceType(4, 32768, 1, "NVIDIA L40S", 45776, 4, False, 625),
    "g6e.2xlarge": InstanceType(8, 65536, 1, "NVIDIA L40S", 45776, 4, False, 625),
    "g6e.4xlarge": InstanceType(16, 131072, 1, "NVIDIA L40S", 45776, 8, False, 1000),
    "g6e.8xlarge": InstanceType(32, 262144, 1, "NVIDIA L40S", 45776, 8, True, 2000),
    "g6e.12xlarge": InstanceType(48, 393216, 4, "NVIDIA L40S", 45776, 10, True, 2500),
    "g6e.16xlarge": InstanceType(64, 524288, 1, "NVIDIA L40S", 45776, 15, True, 2500),
    "g6e.24xlarge": InstanceType(96, 786432, 4, "NVIDIA L40S", 45776, 20, True, 3750),
    "g6e.48xlarge": InstanceType(192, 1572864, 8, "NVIDIA L40S", 45776, 40, True, 7500),
    "p4d.24xlarge": InstanceType(96, 1179648, 8, "NVIDIA A100", 40960, 60, True, 2375),
    "p4de.24xlarge": InstanceType(96, 1179648, 8, "NVIDIA A100", 81920, 60, True, 2375),
    "p5.48xlarge": InstanceType(192, 2097152, 8, "NVIDIA H100", 81920, 64, True, 10000),
    "p5e.48xlarge": InstanceType(192, 2097152, 8, "NVIDIA H200", 144384, 64, True, 10000),
    "p5en.48xlarge": InstanceType(192, 2097152, 8, "NVIDIA H200", 144384, 64, True, 12500),
    "p6-b200.48xlarge": InstanceType(192, 2097152, 8, "NVIDIA B200", 183359, 32, True, 12500),
}

# Source: botocore's endpoints.json (partition "aws"), plus ap-east-2 (Taipei) and
# ap-southeast-6 (New Zealand) from the AWS SDK for JavaScript's partitions table.
REGIONS: tuple[str, ...] = (
    "us-east-1", "us-east-2", "us-west-1", "us-west-2",
    "af-south-1",
    "ap-east-1", "ap-east-2",
    "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
    "ap-south-1", "ap-south-2",
    "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4", "ap-southeast-5", "ap-southeast-6",
    "ap-southeast-7",
    "ca-central-1", "ca-west-1",
    "eu-central-1", "eu-central-2", "eu-north-1", "eu-south-1", "eu-south-2", "eu-west-1", "eu-west-2", "eu-west-3",
    "il-central-1", "me-central-1", "me-south-1",
    "mx-central-1", "sa-east-1",
)  # fmt: skip

# Source: CloudWatch Logs PutRetentionPolicy API reference, retentionInDays.
LOG_RETENTION_DAYS: tuple[int, ...] = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip


def _steps(start: int, stop: int, step: int) -> tuple[int, ...]:
    return tuple(range(start, stop + 1, step))


# Source: Amazon ECS developer guide, "Task CPU and memory" for Fargate (Linux).
FARGATE_CPU_MEMORY_MIB: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: _steps(1024, 4096, 1024),
    1024: _steps(2048, 8192, 1024),
    2048: _steps(4096, 16384, 1024),
    4096: _steps(8192, 30720, 1024),
    8192: _steps(16384, 61440, 4096),
    16384: _steps(32768, 122880, 8192),
}


# Availability Zones per region that an account can use: what the stack's zone lookup
# (DescribeAvailabilityZones, opt-in-not-required only: no Local or Wavelength Zones) returns.
# Subnets take element(zones, i), which wraps: network.az_count one above this puts two subnets
# (and with per_az NAT, two NAT gateways) in one zone without any error. Taken 2026-11-26 from
# moto 5.2.1's DescribeAvailabilityZones data (moto/ec2/models/availability_zones_and_regions.py),
# cross-checked with AWS, "AWS Availability Zones"
# (docs.aws.amazon.com/global-infrastructure/latest/regions/aws-availability-zones.html): "Each
# Region has at least three Availability Zones". us-west-1 and ap-northeast-1 have one zone
# more than most accounts can use (moto's data and a third-party table agree on 2 and 3); the
# counts are what an account can use. ap-east-2 (Taipei) and ap-southeast-6 (New Zealand) are
# not in moto's data: AWS's minimum of three. Re-check a region with
# `aws ec2 describe-availability-zones --region <region>` before relying on more.
REGION_AVAILABILITY_ZONES: dict[str, int] = {
    "us-east-1": 6, "us-east-2": 3, "us-west-1": 2, "us-west-2": 4,
    "af-south-1": 3,
    "ap-east-1": 3, "ap-east-2": 3,
    "ap-northeast-1": 3, "ap-northeast-2": 4, "ap-northeast-3": 3,
    "ap-south-1": 3, "ap-south-2": 3,
    "ap-southeast-1": 3, "ap-southeast-2": 3, "ap-southeast-3": 3, "ap-southeast-4": 3, "ap-southeast-5": 3,
    "ap-southeast-6": 3, "ap-southeast-7": 3,
    "ca-central-1": 3, "ca-west-1": 3,
    "eu-central-1": 3, "eu-central-2": 3, "eu-north-1": 3, "eu-south-1": 3, "eu-south-2": 3,
    "eu-west-1": 3, "eu-west-2": 3, "eu-west-3": 3,
    "il-central-1": 3, "me-central-1": 3, "me-south-1": 3,
    "mx-central-1": 3, "sa-east-1": 3,
}  # fmt: skip


class AmiRelease(NamedTuple):
    release: str  # the ECS-optimized AMI release (its date)
    name: str
    nvidia_driver: str


# The ECS-optimized Amazon Linux 2023 GPU AMI, newest last. The stack reads
# /aws/service/ecs/optimized-ami/amazon-linux-2023/gpu/recommended/image_id at deploy time
# (components/gpu_cluster.py), so it runs on whatever AWS recommends then: the last row here
# is what synth checks images against. Source: the release notes of aws/amazon-ecs-ami
# (github.com/aws/amazon-ecs-ami/releases, "GPU ... NVIDIA driver version"), read 2026-11-26.
# The Amazon Linux 2 GPU AMI (driver 550.163.01, CUDA 12.4.1 in release 20260826) is listed
# for contrast: too old for any Dynamo 1.x image, and not what the stack uses.
ECS_GPU_AMI_RELEASES: tuple[AmiRelease, ...] = (
    AmiRelease("20260708", "al2023-ami-ecs-gpu-hvm-2023.0.20260708-kernel-6.1-x86_64-ebs", "580.159.03"),
    AmiRelease("20260805", "al2023-ami-ecs-gpu-hvm-2023.0.20260805-kernel-6.1-x86_64-ebs", "580.159.03"),
    AmiRelease("20260918", "al2023-ami-ecs-gpu-hvm-2023.0.20260918-kernel-6.1-x86_64-ebs", "580.178.04"),
    AmiRelease("20261113", "al2023-ami-ecs-gpu-hvm-2023.0.20261113-kernel-6.1-x86_64-ebs", "580.178.04"),
)
AL2_GPU_AMI = AmiRelease("20260826", "amzn2-ami-ecs-gpu-hvm-2.0.20260826-x86_64-ebs", "550.163.01")


class ImageCuda(NamedTuple):
    cuda: str
    min_driver: int  # NVIDIA driver branch


# What each vllm-runtime tag was built with and the driver it needs. Source: ai-dynamo/dynamo
# docs/reference/compatibility.mdx ("CUDA & Driver Requirements": vLLM with CUDA 12.9 needs a
# 575.xx+ driver, with CUDA 13.0 a 580.xx+ driver) and docs/reference/release-artifacts.mdx
# (v1.2.1 publishes `1.2.1`, built with CUDA 12.9, and `1.2.1-cuda13`), read 2026-11-26. The
# same page says v1.3.0-dev.1 "follows the same CUDA matrix"; 1.3.0 itself is not listed there,
# so it is not in this table and is not checked (a warning says so). When a tag needs a newer
# driver than the recommended AMI has: use the tag's CUDA 12 variant, or wait for the AMI
# release that brings the driver (then add its row above); never install a driver in user data.
IMAGE_CUDA: dict[str, ImageCuda] = {
    "1.2.0": ImageCuda("12.9", 575),
    "1.2.0-cuda13": ImageCuda("13.0", 580),
    "1.2.1": ImageCuda("12.9", 575),
    "1.2.1-cuda13": ImageCuda("13.0", 580),
}

# gp3 volumes, as the launch template (AWS provider 5.100, EC2 API LaunchTemplateEbsBlockDeviceRequest)
# takes them: "gp3: 3,000 - 16,000 IOPS"; throughput "Valid Range: Minimum value of 125. Maximum value
# of 1000"; and from the Amazon EBS user guide (General Purpose SSD volumes, gp3): additional
# throughput "at a ratio of 0.25 MiB/s per provisioned IOPS", IOPS at most 500 per GiB. The
# defaults (3000 IOPS, 125 MiB/s) are free; more costs per month. (Since 2025 AWS documents gp3
# up to 80,000 IOPS and 2,000 MiB/s; the launch template API reference above still says 1,000.)
GP3_IOPS = (3000, 16000)
GP3_THROUGHPUT_MIBPS = (125, 1000)
GP3_MIBPS_PER_IOPS = 0.25
GP3_IOPS_PER_GIB = 500

# A container health check (ECS HealthCheck, as the AWS CDK's aws_ecs.HealthCheck documents it):
# "interval ... between 5 and 300 seconds", "retries ... between 1 and 10", "start_period ...
# between 0 and 300 seconds". The start period counts from the container's start, after its
# image is pulled.
ECS_HEALTH_INTERVAL = (5, 300)
ECS_HEALTH_RETRIES = (1, 10)
ECS_HEALTH_START_PERIOD_MAX = 300
