"""The only gate to the prebuilt AWS provider bindings (cdktf-cdktf-provider-aws).

Components import the generated submodules they use as attributes of this module::

    from components.aws import ecs_cluster
    ecs_cluster.EcsCluster(scope, "cluster", name=...)

By itself this imports ``cdktf_cdktf_provider_aws.<name>`` as Python would, which imports
the whole package: ~2,100 generated modules in Python and in node, ~10 s and ~1.2 GB per
synth. Once the application has called ``components._speedups.enable()`` (main.py does),
the same submodules come through the speed-ups instead: only what is used is loaded, and
the output is byte-identical (components/_speedups.py explains how).

Either way, importing this module checks that the installed bindings are the pinned release
and raises ProviderVersionError if not (main.py reports it in one line).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import types
from typing import TYPE_CHECKING

from components import ProviderVersionError, _speedups

if TYPE_CHECKING:
    # mypy only: the modules the components use, so that their classes can annotate (typed Any:
    # pyproject.toml's mypy section says why). At run time __getattr__ below imports them.
    from cdktf_cdktf_provider_aws import appautoscaling_policy as appautoscaling_policy
    from cdktf_cdktf_provider_aws import appautoscaling_scheduled_action as appautoscaling_scheduled_action
    from cdktf_cdktf_provider_aws import appautoscaling_target as appautoscaling_target
    from cdktf_cdktf_provider_aws import autoscaling_group as autoscaling_group
    from cdktf_cdktf_provider_aws import cloudwatch_dashboard as cloudwatch_dashboard
    from cdktf_cdktf_provider_aws import cloudwatch_log_group as cloudwatch_log_group
    from cdktf_cdktf_provider_aws import cloudwatch_metric_alarm as cloudwatch_metric_alarm
    from cdktf_cdktf_provider_aws import data_aws_availability_zones as data_aws_availability_zones
    from cdktf_cdktf_provider_aws import data_aws_caller_identity as data_aws_caller_identity
    from cdktf_cdktf_provider_aws import data_aws_elb_service_account as data_aws_elb_service_account
    from cdktf_cdktf_provider_aws import data_aws_partition as data_aws_partition
    from cdktf_cdktf_provider_aws import data_aws_region as data_aws_region
    from cdktf_cdktf_provider_aws import data_aws_ssm_parameter as data_aws_ssm_parameter
    from cdktf_cdktf_provider_aws import default_security_group as default_security_group
    from cdktf_cdktf_provider_aws import ecs_capacity_provider as ecs_capacity_provider
    from cdktf_cdktf_provider_aws import ecs_cluster as ecs_cluster
    from cdktf_cdktf_provider_aws import ecs_cluster_capacity_providers as ecs_cluster_capacity_providers
    from cdktf_cdktf_provider_aws import ecs_service as ecs_service
    from cdktf_cdktf_provider_aws import ecs_task_definition as ecs_task_definition
    from cdktf_cdktf_provider_aws import efs_access_point as efs_access_point
    from cdktf_cdktf_provider_aws import efs_file_system as efs_file_system
    from cdktf_cdktf_provider_aws import efs_file_system_policy as efs_file_system_policy
    from cdktf_cdktf_provider_aws import efs_mount_target as efs_mount_target
    from cdktf_cdktf_provider_aws import eip as eip
    from cdktf_cdktf_provider_aws import flow_log as flow_log
    from cdktf_cdktf_provider_aws import iam_instance_profile as iam_instance_profile
    from cdktf_cdktf_provider_aws import iam_role as iam_role
    from cdktf_cdktf_provider_aws import iam_role_policy as iam_role_policy
    from cdktf_cdktf_provider_aws import iam_role_policy_attachment as iam_role_policy_attachment
    from cdktf_cdktf_provider_aws import internet_gateway as internet_gateway
    from cdktf_cdktf_provider_aws import kms_alias as kms_alias
    from cdktf_cdktf_provider_aws import kms_key as kms_key
    from cdktf_cdktf_provider_aws import launch_template as launch_template
    from cdktf_cdktf_provider_aws import lb as lb
    from cdktf_cdktf_provider_aws import lb_listener as lb_listener
    from cdktf_cdktf_provider_aws import lb_target_group as lb_target_group
    from cdktf_cdktf_provider_aws import nat_gateway as nat_gateway
    from cdktf_cdktf_provider_aws import provider as provider
    from cdktf_cdktf_provider_aws import route as route
    from cdktf_cdktf_provider_aws import route_table as route_table
    from cdktf_cdktf_provider_aws import route_table_association as route_table_association
    from cdktf_cdktf_provider_aws import s3_bucket as s3_bucket
    from cdktf_cdktf_provider_aws import s3_bucket_lifecycle_configuration as s3_bucket_lifecycle_configuration
    from cdktf_cdktf_provider_aws import s3_bucket_ownership_controls as s3_bucket_ownership_controls
    from cdktf_cdktf_provider_aws import s3_bucket_policy as s3_bucket_policy
    from cdktf_cdktf_provider_aws import s3_bucket_public_access_block as s3_bucket_public_access_block
    from cdktf_cdktf_provider_aws import (
        s3_bucket_server_side_encryption_configuration as s3_bucket_server_side_encryption_configuration,
    )
    from cdktf_cdktf_provider_aws import s3_bucket_versioning as s3_bucket_versioning
    from cdktf_cdktf_provider_aws import security_group as security_group
    from cdktf_cdktf_provider_aws import (
        service_discovery_private_dns_namespace as service_discovery_private_dns_namespace,
    )
    from cdktf_cdktf_provider_aws import service_discovery_service as service_discovery_service
    from cdktf_cdktf_provider_aws import sns_topic as sns_topic
    from cdktf_cdktf_provider_aws import subnet as subnet
    from cdktf_cdktf_provider_aws import vpc as vpc
    from cdktf_cdktf_provider_aws import vpc_endpoint as vpc_endpoint
    from cdktf_cdktf_provider_aws import vpc_security_group_egress_rule as vpc_security_group_egress_rule
    from cdktf_cdktf_provider_aws import vpc_security_group_ingress_rule as vpc_security_group_ingress_rule
    from cdktf_cdktf_provider_aws import wafv2_web_acl_association as wafv2_web_acl_association


PACKAGE = "cdktf_cdktf_provider_aws"
DISTRIBUTION = "cdktf-cdktf-provider-aws"
# 20.1.0 is the release generated from hashicorp/aws 5.100.0, the provider the
# machines here mirror; other releases generate different resource schemas.
PINNED_VERSION = "20.1.0"
PROVIDER_VERSION = "5.100.0"


def _check_version() -> None:
    try:
        installed = importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise ProviderVersionError(
            f"{DISTRIBUTION} is not installed; run `make synth` (it installs {DISTRIBUTION}=={PINNED_VERSION})"
        ) from None
    if installed != PINNED_VERSION:
        raise ProviderVersionError(
            f"{DISTRIBUTION} {installed} is installed but this project is built on "
            f"{PINNED_VERSION} (hashicorp/aws {PROVIDER_VERSION}); reinstall with `make synth`"
        )


_check_version()


def __getattr__(name: str) -> types.ModuleType:
    if name.startswith("__"):
        raise AttributeError(name)
    if _speedups.is_enabled():
        module = _speedups.import_provider_module(PACKAGE, name)
    else:
        module = importlib.import_module(f"{PACKAGE}.{name}")
    globals()[name] = module
    return module
