"""Every GPU instance row agrees with DescribeInstanceTypes (the copy moto ships)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import moto
import pytest

from environments.catalog import ECS_GPU_AMI_RELEASES, GPU_INSTANCE_TYPES

DESCRIBED = json.loads(gzip.open(Path(moto.__file__).parent / "ec2/resources/instance_types.json.gz").read())


@pytest.mark.parametrize("name", sorted(GPU_INSTANCE_TYPES))
def test_row_matches_describe_instance_types(name):
    row, described = GPU_INSTANCE_TYPES[name], DESCRIBED[name]
    (gpu,) = described["GpuInfo"]["Gpus"]
    assert row.vcpus == described["VCpuInfo"]["DefaultVCpus"]
    assert row.memory_mib == described["MemoryInfo"]["SizeInMiB"]
    assert row.gpus == gpu["Count"]
    assert row.gpu_model == f"NVIDIA {gpu['Name']}"
    assert row.gpu_memory_mib == gpu["MemoryInfo"]["SizeInMiB"]
    assert row.max_network_interfaces == described["NetworkInfo"]["MaximumNetworkInterfaces"]
    assert row.ebs_max_mbps == int(described["EbsInfo"]["EbsOptimizedInfo"]["MaximumThroughputInMBps"])
    assert described["ProcessorInfo"]["SupportedArchitectures"] == ["x86_64"]


def test_the_families_the_issue_asks_for_are_there():
    for family in ("g4dn.", "p4de.", "p5e.", "p5en.", "p6-b200."):
        assert any(name.startswith(family) for name in GPU_INSTANCE_TYPES), family


def test_ami_releases_are_dated_and_in_order():
    releases = [ami.release for ami in ECS_GPU_AMI_RELEASES]
    assert releases == sorted(releases) and all(len(release) == 8 for release in releases)
