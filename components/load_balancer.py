"""The Application Load Balancer in front of the frontends."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from constructs import Construct

from components.account import Account
from components.aws import (
    data_aws_elb_service_account,
    ecs_service,
    lb,
    lb_listener,
    lb_target_group,
    s3_bucket,
    s3_bucket_lifecycle_configuration,
    s3_bucket_ownership_controls,
    s3_bucket_policy,
    s3_bucket_public_access_block,
    s3_bucket_server_side_encryption_configuration,
    s3_bucket_versioning,
    wafv2_web_acl_association,
)
from components.network import Network
from components.policy import policy_document, statement
from components.security_groups import FRONTEND_PORT, HTTP_PORT, HTTPS_PORT, SecurityGroup
from environments.schema import LoadBalancerConfig


def _cdktf_path_hash(*path: str) -> str:
    """The hash cdktf appends to a resource's logical id (makeUniqueId in cdktf's unique-id.ts)."""
    return hashlib.md5("/".join(path).encode()).hexdigest()[:8].upper()


@dataclass(frozen=True)
class LoadBalancerTarget:
    """The frontends' target group, as a service registers in it."""

    target_group_arn: str
    target_group_arn_suffix: str
    port: int
    balancer_security_group: SecurityGroup

    def register(self, container_name: str, tasks: SecurityGroup) -> ecs_service.EcsServiceLoadBalancer:
        """The service's load_balancer block; lets the ALB reach the tasks for health checks and requests."""
        tasks.admit(
            self.balancer_security_group,
            (self.port, self.port),
            ingress="requests from the ALB",
            egress="health checks and requests",
        )
        return ecs_service.EcsServiceLoadBalancer(
            target_group_arn=self.target_group_arn, container_name=container_name, container_port=self.port
        )


# The target group's check of /health: two passes 15 s apart make a new frontend healthy,
# three failures take it out of rotation.
HEALTH_CHECK = {
    "path": "/health",
    "port": "traffic-port",
    "protocol": "HTTP",
    "matcher": "200",
    "interval": 15,
    "timeout": 5,
    "healthy_threshold": 2,
    "unhealthy_threshold": 3,
}


class LoadBalancer(Construct):
    """ALB, target group (IP targets on port 8000, health on /health) and listeners.

    Attributes:
        dns_name, arn, arn_suffix: the ALB.
        target: where the frontend service registers (LoadBalancerTarget).
        endpoint_url: what clients call (https:// when a certificate is configured).
        access_logs_bucket: the bucket name, or None.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        name: str,
        account: Account,
        config: LoadBalancerConfig,
        network: Network,
        security_group: SecurityGroup,
        log_retention_days: int,
    ) -> None:
        super().__init__(scope, id_)
        certificate_arn = config.certificate_arn
        self.access_logs_bucket: str | None = (
            self._access_log_bucket(name, account, log_retention_days) if config.access_logs else None
        )
        balancer = lb.Lb(
            self,
            "alb",
            name=name,
            load_balancer_type="application",
            internal=config.internal,
            subnets=network.private_subnet_ids if config.internal else network.public_subnet_ids,
            security_groups=[security_group.id],
            idle_timeout=config.idle_timeout_seconds,
            drop_invalid_header_fields=True,
            desync_mitigation_mode="strictest" if certificate_arn else "defensive",
            enable_deletion_protection=config.deletion_protection,
            access_logs=(
                {"bucket": self.access_logs_bucket, "enabled": True, "prefix": "alb"}
                if self.access_logs_bucket
                else None
            ),
            depends_on=[self._bucket_policy] if self.access_logs_bucket else None,
        )
        target_group = lb_target_group.LbTargetGroup(
            self,
            "frontend",
            name=f"{name}-frontend",
            port=FRONTEND_PORT,
            protocol="HTTP",
            target_type="ip",
            vpc_id=network.vpc_id,
            deregistration_delay=str(config.deregistration_delay_seconds),
            health_check=HEALTH_CHECK,
        )
        self._listeners(balancer, target_group, config)
        if config.waf_acl_arn:
            wafv2_web_acl_association.Wafv2WebAclAssociation(
                self, "waf", resource_arn=balancer.arn, web_acl_arn=config.waf_acl_arn
            )

        self.dns_name: str = balancer.dns_name
        self.arn: str = balancer.arn
        self.arn_suffix: str = balancer.arn_suffix
        self.target = LoadBalancerTarget(target_group.arn, target_group.arn_suffix, FRONTEND_PORT, security_group)
        scheme = "https" if certificate_arn else "http"
        self.endpoint_url: str = f"{scheme}://{balancer.dns_name}"

    def _listeners(
        self, balancer: lb.Lb, target_group: lb_target_group.LbTargetGroup, config: LoadBalancerConfig
    ) -> None:
        forward = [lb_listener.LbListenerDefaultAction(type="forward", target_group_arn=target_group.arn)]
        https = None
        if config.certificate_arn:
            https = lb_listener.LbListener(
                self,
                "https",
                load_balancer_arn=balancer.arn,
                port=HTTPS_PORT,
                protocol="HTTPS",
                ssl_policy=config.ssl_policy,
                certificate_arn=config.certificate_arn,
                default_action=forward,
            )
        redirect = [
            lb_listener.LbListenerDefaultAction(
                type="redirect", redirect={"port": str(HTTPS_PORT), "protocol": "HTTPS", "status_code": "HTTP_301"}
            )
        ]
        # One listener on port 80 whatever the certificate: adding or removing one changes
        # its default action in place (ModifyListener), so port 80 never closes and no
        # create can race the delete of the old listener (DuplicateListener). It redirects
        # only once the HTTPS listener exists; without a certificate it forwards.
        http = lb_listener.LbListener(
            self,
            "http",
            load_balancer_arn=balancer.arn,
            port=HTTP_PORT,
            protocol="HTTP",
            default_action=redirect if https else forward,
            depends_on=[https] if https else None,
        )
        if https:
            # Before this one listener, a stack with a certificate had its port-80 listener
            # at this address (cdktf's logical id for the path load-balancer/http-redirect:
            # the path, then the first 8 hex digits of its MD5, upper case): Terraform
            # moves it in the state instead of deleting one listener and creating another.
            http.move_from_id(
                f"aws_lb_listener.load-balancer_http-redirect_{_cdktf_path_hash('load-balancer', 'http-redirect')}"
            )

    def _access_log_bucket(self, name: str, account: Account, retention_days: int) -> str:
        """A private bucket for ALB access logs. ALB log delivery supports SSE-S3 only, not KMS."""
        bucket = s3_bucket.S3Bucket(
            self, "access-logs", bucket=f"{name}-alb-logs-{account.account_id}", force_destroy=False
        )
        s3_bucket_public_access_block.S3BucketPublicAccessBlock(
            self,
            "access-logs-public-access",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
        )
        s3_bucket_ownership_controls.S3BucketOwnershipControls(
            self, "access-logs-ownership", bucket=bucket.id, rule={"object_ownership": "BucketOwnerEnforced"}
        )
        s3_bucket_server_side_encryption_configuration.S3BucketServerSideEncryptionConfigurationA(
            self,
            "access-logs-encryption",
            bucket=bucket.id,
            rule=[
                s3_bucket_server_side_encryption_configuration.S3BucketServerSideEncryptionConfigurationRuleA(
                    apply_server_side_encryption_by_default={"sse_algorithm": "AES256"}
                )
            ],
        )
        s3_bucket_versioning.S3BucketVersioningA(
            self, "access-logs-versioning", bucket=bucket.id, versioning_configuration={"status": "Enabled"}
        )
        lifecycle = s3_bucket_lifecycle_configuration
        lifecycle.S3BucketLifecycleConfiguration(
            self,
            "access-logs-lifecycle",
            bucket=bucket.id,
            rule=[
                lifecycle.S3BucketLifecycleConfigurationRule(
                    id="expire-access-logs",
                    status="Enabled",
                    filter=[lifecycle.S3BucketLifecycleConfigurationRuleFilter(prefix="")],
                    expiration=[lifecycle.S3BucketLifecycleConfigurationRuleExpiration(days=retention_days)],
                    noncurrent_version_expiration=[
                        lifecycle.S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration(noncurrent_days=7)
                    ],
                    abort_incomplete_multipart_upload=[
                        lifecycle.S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload(
                            days_after_initiation=1
                        )
                    ],
                )
            ],
        )
        elb_account = data_aws_elb_service_account.DataAwsElbServiceAccount(self, "elb-account")
        self._bucket_policy = s3_bucket_policy.S3BucketPolicy(
            self,
            "access-logs-policy",
            bucket=bucket.id,
            policy=policy_document(
                statement(
                    sid="AlbWritesAccessLogs",
                    principal={"AWS": elb_account.arn},
                    action="s3:PutObject",
                    resource=f"{bucket.arn}/alb/AWSLogs/{account.account_id}/*",
                ),
                statement(
                    sid="DenyInsecureTransport",
                    effect="Deny",
                    principal="*",
                    action="s3:*",
                    resource=[bucket.arn, f"{bucket.arn}/*"],
                    condition={"Bool": {"aws:SecureTransport": "false"}},
                ),
            ),
        )
        bucket_name: str = bucket.bucket
        return bucket_name
