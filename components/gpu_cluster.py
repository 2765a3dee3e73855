"""The EC2 GPU cluster: launch template, Auto Scaling group and ECS capacity provider."""

from __future__ import annotations

from typing import Any

from cdktf import Fn, TerraformResourceLifecycle, Token
from constructs import Construct

from components.aws import (
    autoscaling_group,
    data_aws_ssm_parameter,
    ecs_capacity_provider,
    ecs_cluster,
    ecs_cluster_capacity_providers,
    launch_template,
)
from components.network import Network
from components.security_groups import SecurityGroup
from environments.schema import GpuFleetConfig

# The ECS-optimized Amazon Linux 2023 GPU AMI (NVIDIA driver, container toolkit, ECS
# agent), published by AWS as a public SSM parameter so it is never hard-coded.
GPU_AMI_PARAMETER = "/aws/service/ecs/optimized-ami/amazon-linux-2023/gpu/recommended/image_id"
# The vllm-runtime image runs as user dynamo, uid 1000, gid 0
# (container/templates/vllm_runtime.Dockerfile in ai-dynamo/dynamo). The model cache is a
# host directory mounted into the workers, so it must be writable for that user, not only
# for root who creates it; the setgid bit keeps what the workers create in group 0.
CONTAINER_UID = 1000
CONTAINER_GID = 0


# NVIDIA's runtime as Docker's default: the GPU metrics daemon (components/gpu_metrics.py) sees
# the GPUs without reserving them. The ECS GPU AMI only registers the runtime
# (/etc/docker-runtimes.d/nvidia: aws/amazon-ecs-ami, scripts/al2023/gpu/
# enable-ecs-agent-gpu-support-al2023.sh), and ECS selects it only for containers with a GPU
# reservation ("If your GPU requirements aren't specified in the task definition, the task uses
# the default Docker runtime": ECS Developer Guide, ecs-gpu-specifying). The runtime changes
# nothing for a container that does not ask for devices (NVIDIA_VISIBLE_DEVICES unset or
# "void"); the workers keep the GPUs ECS assigns them. Docker restarts with no task on it: the
# ECS-optimized AMI's ecs.service is ordered After=cloud-final.service, the stage that runs user
# data (which is also why ecs.config written here takes effect; the ECS Developer Guide's agent
# install steps add the same line on other AMIs).
DEFAULT_RUNTIME_NVIDIA = """python3 - <<'PYTHON'
import json, pathlib
path = pathlib.Path('/etc/docker/daemon.json')
config = json.loads(path.read_text()) if path.exists() else {}
config['default-runtime'] = 'nvidia'
path.write_text(json.dumps(config, indent=2))
PYTHON
systemctl restart docker"""


def user_data(*, cluster_name: str, model_cache_path: str) -> str:
    """Joins the cluster; keeps pulled images (the runtime is ~12 GB), blocks IMDS for awsvpc
    tasks, prepares the model cache for the image's user and makes NVIDIA's runtime the default."""
    return "\n".join(
        [
            "#!/bin/bash",
            "set -euo pipefail",
            "cat >> /etc/ecs/ecs.config <<'CONFIG'",
            f"ECS_CLUSTER={cluster_name}",
            "ECS_ENABLE_GPU_SUPPORT=true",
            "ECS_AWSVPC_BLOCK_IMDS=true",
            "ECS_IMAGE_PULL_BEHAVIOR=prefer-cached",
            "ECS_CONTAINER_STOP_TIMEOUT=120s",
            "ECS_ENABLE_CONTAINER_METADATA=true",
            "ECS_ENABLE_SPOT_INSTANCE_DRAINING=true",
            "CONFIG",
            # Creates the directory (and its parents) or, if it exists, sets its owner and mode.
            f"install -d -m 2775 -o {CONTAINER_UID} -g {CONTAINER_GID} {model_cache_path}",
            DEFAULT_RUNTIME_NVIDIA,
            "",
        ]
    )


# A new GPU instance needs about five minutes to boot, join the cluster and be useful:
# the Auto Scaling group's health-check grace, the refresh's and managed scaling's warm-up.
INSTANCE_WARMUP_SECONDS = 300
# Managed scaling adds at most this many instances per step: GPU instances are expensive,
# and one step's worth of workers is what the services can ask for at once.
MAX_SCALING_STEP = 2


# What replaces the instances when the launch template changes (the AWS provider starts
# the refresh when the group's launch_template or mixed_instances_policy changes:
# aws_autoscaling_group, instance_refresh). It has to go through ECS, not around it:
# - scale_in_protected_instances "Refresh": managed termination protection keeps every
#   instance with tasks protected from scale-in, and the default for protected instances
#   ("Ignore" in the provider) would skip exactly those. The ECS developer guide (Amazon
#   ECS managed instance draining) says to choose Refresh for scale-in protection when
#   starting an instance refresh with managed termination protection;
# - managed draining (the capacity provider) then drains each instance before it is
#   terminated: ECS moves its tasks under each service's deployment configuration, so a
#   surge worker's replacement starts before the old one stops (workers.py);
# - min 100 / max 200 healthy percent: "launch before terminating" (EC2 Auto Scaling user
#   guide, instance maintenance policies): the new instance is in service before an old
#   one goes, so GPU capacity never drops during the refresh;
# - warm-up as long as the group's health check grace and managed scaling's warm-up;
# - skip_matching: instances already on the new template (a refresh that was cancelled
#   and started again) are not replaced twice.
INSTANCE_REFRESH = autoscaling_group.AutoscalingGroupInstanceRefresh(
    strategy="Rolling",
    preferences=autoscaling_group.AutoscalingGroupInstanceRefreshPreferences(
        min_healthy_percentage=100,
        max_healthy_percentage=200,
        scale_in_protected_instances="Refresh",
        instance_warmup=str(INSTANCE_WARMUP_SECONDS),
        skip_matching=True,
    ),
)


class GpuCluster(Construct):
    """The ECS cluster of the GPU workers and its EC2 capacity.

    Attributes: cluster_name, cluster_arn, capacity_provider_name, autoscaling_group_name.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        config: GpuFleetConfig,
        network: Network,
        security_group: SecurityGroup,
        instance_profile_arn: str,
    ) -> None:
        super().__init__(scope, id_)
        self._name = name
        cluster_name = f"{name}-gpu"
        cluster = ecs_cluster.EcsCluster(
            self,
            "cluster",
            name=cluster_name,
            setting=[ecs_cluster.EcsClusterSetting(name="containerInsights", value="enabled")],
        )
        template = self._launch_template(config, cluster_name, security_group, instance_profile_arn)
        group = self._group(config, template, network.private_subnet_ids)
        provider = ecs_capacity_provider.EcsCapacityProvider(
            self,
            "capacity-provider",
            name=f"{name}-gpu",
            auto_scaling_group_provider={
                "auto_scaling_group_arn": group.arn,
                "managed_termination_protection": "ENABLED",
                "managed_draining": "ENABLED",
                "managed_scaling": {
                    "status": "ENABLED",
                    "target_capacity": 100,
                    "minimum_scaling_step_size": 1,
                    "maximum_scaling_step_size": MAX_SCALING_STEP,
                    "instance_warmup_period": INSTANCE_WARMUP_SECONDS,
                },
            },
        )
        ecs_cluster_capacity_providers.EcsClusterCapacityProviders(
            self,
            "capacity-providers",
            cluster_name=cluster.name,
            capacity_providers=[provider.name],
            default_capacity_provider_strategy=[
                ecs_cluster_capacity_providers.EcsClusterCapacityProvidersDefaultCapacityProviderStrategy(
                    capacity_provider=provider.name, weight=1, base=0
                )
            ],
        )
        self.cluster_name: str = cluster.name
        self.cluster_arn: str = cluster.arn
        self.capacity_provider_name: str | None = provider.name
        self.autoscaling_group_name: str = group.name

    def _launch_template(
        self, config: GpuFleetConfig, cluster_name: str, security_group: SecurityGroup, instance_profile_arn: str
    ) -> launch_template.LaunchTemplate:
        ami = data_aws_ssm_parameter.DataAwsSsmParameter(self, "ami", name=GPU_AMI_PARAMETER)
        spot = config.capacity == "spot"
        return launch_template.LaunchTemplate(
            self,
            "launch-template",
            name=f"{self._name}-gpu",
            image_id=ami.insecure_value,
            instance_type=None if spot else config.instance_type,
            iam_instance_profile={"arn": instance_profile_arn},
            vpc_security_group_ids=[security_group.id],
            user_data=Fn.base64encode(user_data(cluster_name=cluster_name, model_cache_path=config.model_cache_path)),
            metadata_options={
                "http_endpoint": "enabled",
                "http_tokens": "required",
                # 1 hop: only the ECS agent (host network) reads IMDS; every task is awsvpc and
                # blocked from IMDS (ECS_AWSVPC_BLOCK_IMDS), so no container needs a second hop.
                "http_put_response_hop_limit": 1,
                "instance_metadata_tags": "disabled",
            },
            block_device_mappings=[
                launch_template.LaunchTemplateBlockDeviceMappings(
                    device_name="/dev/xvda",
                    ebs={
                        "volume_size": config.root_volume_gib,
                        "volume_type": "gp3",
                        # Every cold start writes and reads the model's weights here: at gp3's
                        # free 125 MiB/s, 61 GiB of Qwen3-32B take ~17 minutes (environments/fit.py).
                        "throughput": config.root_volume_throughput_mibps,
                        "iops": config.root_volume_iops,
                        "encrypted": "true",
                        "delete_on_termination": "true",
                    },
                )
            ],
            monitoring={"enabled": True},
            ebs_optimized="true",
            update_default_version=True,
            tag_specifications=[
                launch_template.LaunchTemplateTagSpecifications(
                    resource_type=resource, tags={"Name": f"{self._name}-gpu"}
                )
                for resource in ("instance", "volume")
            ],
        )

    def _group(
        self, config: GpuFleetConfig, template: launch_template.LaunchTemplate, subnet_ids: list[str]
    ) -> autoscaling_group.AutoscalingGroup:
        # The version number, not "$Latest": a new version (instance type, AMI, user data)
        # is then a change of the group's launch template, which starts its instance
        # refresh; with "$Latest" only instances launched later would use it.
        version = Token.as_string(template.latest_version)
        placement: dict[str, Any]
        if config.capacity == "spot":
            placement = {
                "mixed_instances_policy": {
                    "instances_distribution": {
                        "on_demand_base_capacity": 0,
                        "on_demand_percentage_above_base_capacity": 0,
                        "spot_allocation_strategy": "price-capacity-optimized",
                    },
                    "launch_template": {
                        "launch_template_specification": {"launch_template_id": template.id, "version": version},
                        "override": [
                            autoscaling_group.AutoscalingGroupMixedInstancesPolicyLaunchTemplateOverride(
                                instance_type=config.instance_type
                            )
                        ],
                    },
                },
                "capacity_rebalance": True,
            }
        else:
            placement = {"launch_template": {"id": template.id, "version": version}}
        return autoscaling_group.AutoscalingGroup(
            self,
            "asg",
            name=f"{self._name}-gpu",
            min_size=config.min_instances,
            max_size=config.max_instances,
            desired_capacity=config.initial_instances,
            vpc_zone_identifier=subnet_ids,
            health_check_type="EC2",
            health_check_grace_period=INSTANCE_WARMUP_SECONDS,
            # Required by managed termination protection: ECS decides which instance is empty.
            protect_from_scale_in=True,
            tag=[
                autoscaling_group.AutoscalingGroupTag(key="AmazonECSManaged", value="true", propagate_at_launch=True),
                autoscaling_group.AutoscalingGroupTag(key="Name", value=f"{self._name}-gpu", propagate_at_launch=True),
            ],
            # ECS managed scaling owns the group's size after the first apply.
            lifecycle=TerraformResourceLifecycle(ignore_changes=["desired_capacity"]),
            instance_refresh=INSTANCE_REFRESH,
            **placement,
        )
