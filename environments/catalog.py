"""Facts about AWS that the environment model validates against, each with its source."""

from __future__ import annotations

from typing import NamedTuple


class InstanceType(NamedTuple):
    vcpus: int
    memory_mib: int
    gpus: int
    gpu_model: str
    gpu_memory_gib: int  # nominal, per GPU
    max_network_interfaces: int  # all network cards; each awsvpc task takes one
    efa: bool


# Source: AWS, "Amazon EC2 instance type specifications: accelerated computing"
# (docs.aws.amazon.com/ec2/latest/instancetypes/ac.html), cross-checked with the
# DescribeInstanceTypes data shipped in moto 5.2.1 (moto/ec2/resources/instance_types.json.gz)
# and the ENI limits in aws/amazon-vpc-cni-k8s (pkg/vpc/vpc_ip_resource_limit.go).
GPU_INSTANCE_TYPES: dict[str, InstanceType] = {
    "g5.xlarge": InstanceType(4, 16384, 1, "NVIDIA A10G", 24, 4, False),
    "g5.2xlarge": InstanceType(8, 32768, 1, "NVIDIA A10G", 24, 4, False),
    "g5.4xlarge": InstanceType(16, 65536, 1, "NVIDIA A10G", 24, 8, False),
    "g5.8xlarge": InstanceType(32, 131072, 1, "NVIDIA A10G", 24, 8, True),
    "g5.12xlarge": InstanceType(48, 196608, 4, "NVIDIA A10G", 24, 15, True),
    "g5.16xlarge": InstanceType(64, 262144, 1, "NVIDIA A10G", 24, 8, True),
    "g5.24xlarge": InstanceType(96, 393216, 4, "NVIDIA A10G", 24, 15, True),
    "g5.48xlarge": InstanceType(192, 786432, 8, "NVIDIA A10G", 24, 7, True),
    "g6.xlarge": InstanceType(4, 16384, 1, "NVIDIA L4", 24, 4, False),
    "g6.2xlarge": InstanceType(8, 32768, 1, "NVIDIA L4", 24, 4, False),
    "g6.4xlarge": InstanceType(16, 65536, 1, "NVIDIA L4", 24, 8, False),
    "g6.8xlarge": InstanceType(32, 131072, 1, "NVIDIA L4", 24, 8, True),
    "g6.12xlarge": InstanceType(48, 196608, 4, "NVIDIA L4", 24, 8, True),
    "g6.16xlarge": InstanceType(64, 262144, 1, "NVIDIA L4", 24, 15, True),
    "g6.24xlarge": InstanceType(96, 393216, 4, "NVIDIA L4", 24, 15, True),
    "g6.48xlarge": InstanceType(192, 786432, 8, "NVIDIA L4", 24, 15, True),
    "g6e.xlarge": InstanceType(4, 32768, 1, "NVIDIA L40S", 48, 4, False),
    "g6e.2xlarge": InstanceType(8, 65536, 1, "NVIDIA L40S", 48, 4, False),
    "g6e.4xlarge": InstanceType(16, 131072, 1, "NVIDIA L40S", 48, 8, False),
    "g6e.8xlarge": InstanceType(32, 262144, 1, "NVIDIA L40S", 48, 8, True),
    "g6e.12xlarge": InstanceType(48, 393216, 4, "NVIDIA L40S", 48, 10, True),
    "g6e.16xlarge": InstanceType(64, 524288, 1, "NVIDIA L40S", 48, 15, True),
    "g6e.24xlarge": InstanceType(96, 786432, 4, "NVIDIA L40S", 48, 20, True),
    "g6e.48xlarge": InstanceType(192, 1572864, 8, "NVIDIA L40S", 48, 40, True),
    "p4d.24xlarge": InstanceType(96, 1179648, 8, "NVIDIA A100", 40, 60, True),
    "p5.48xlarge": InstanceType(192, 2097152, 8, "NVIDIA H100", 80, 64, True),
    "p5en.48xlarge": InstanceType(192, 2097152, 8, "NVIDIA H200", 141, 64, True),
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
