"""DynamoStack: the one place that knows how the parts of the platform connect."""

from __future__ import annotations

from cdktf import CloudBackend, LocalBackend, NamedCloudWorkspace, S3Backend, TerraformOutput, TerraformStack
from constructs import Construct

from components.account import Account
from components.autoscaling import Autoscaling, ScaledService, WorkingHours
from components.aws import provider
from components.control_plane import ControlPlane
from components.discovery import Discovery
from components.etcd_data import EtcdData
from components.fargate_cluster import FargateCluster
from components.gpu_cluster import GpuCluster
from components.iam import Iam
from components.load_balancer import LoadBalancer
from components.network import Network
from components.observability import Alarms, LogGroups
from components.security_groups import HTTP_PORT, HTTPS_PORT, SecurityGroups
from components.workers import Frontend, GpuWorkers, dynamo_environment, frontend_command, secrets_for, worker_command
from environments.schema import Environment, HcpBackendConfig, S3BackendConfig

# The ALB's /health check proves that the frontend's HTTP server runs and has finished its
# first discovery scan: Dynamo 1.2.1 answers 200 {"status":"healthy","endpoints":[],
# "instances":[]} within seconds of starting, even with no worker registered
# (lib/llm/src/http/service/health.rs in ai-dynamo/dynamo; measured). It does not prove a
# model is served: until a worker registers, /v1/models is empty and completions get 404
# "model not found", and an ALB matcher sees only the status code, so a model-aware check
# is not possible there. The grace therefore covers only the frontend's start and the
# ALB's healthy_threshold (2) x interval (15 s), not a model load.
FRONTEND_HEALTH_GRACE_SECONDS = 120


class DynamoStack(TerraformStack):
    """Everything one environment runs, in one Terraform stack named ``dynamo-<env>``."""

    def __init__(self, scope: Construct, *, environment: Environment) -> None:
        env = environment
        name = env.stack_name
        super().__init__(scope, name)
        provider.AwsProvider(
            self,
            "aws",
            region=env.region,
            default_tags=[
                provider.AwsProviderDefaultTags(
                    tags={"Project": "dynamo-ecs", "Environment": env.name, "ManagedBy": "cdktf"}
                )
            ],
        )
        self._backend(env)

        account = Account(self, "account")
        workers = env.gpu_workers()
        logs = LogGroups(
            self,
            "logs",
            name=name,
            account=account,
            retention_days=env.logging.retention_days,
            streams=["vpc-flow-logs", "etcd", "nats", "frontend", *workers],
        )
        public_cidrs, private_cidrs = env.network.subnet_cidrs()
        network = Network(
            self,
            "network",
            name=name,
            region=env.region,
            cidr=env.network.cidr,
            public_cidrs=public_cidrs,
            private_cidrs=private_cidrs,
            nat_per_az=env.network.nat == "per_az",
            flow_log_group_arn=logs.arns["vpc-flow-logs"],
        )
        security = SecurityGroups(
            self,
            "security-groups",
            name=name,
            vpc_id=network.vpc_id,
            listener_ports=[HTTP_PORT, HTTPS_PORT] if env.load_balancer.certificate_arn else [HTTP_PORT],
            allowed_cidrs=list(env.load_balancer.allowed_cidrs),
        )
        secret_arns = [arn for arn in (env.image.pull_credentials_secret_arn, env.model.hf_token_secret_arn) if arn]
        iam = Iam(
            self,
            "iam",
            name=name,
            account=account,
            secret_arns=secret_arns,
            secrets_kms_key_arn=env.secrets_kms_key_arn,
            task_families=["frontend", "workers", "control-plane"],
        )

        gpu = GpuCluster(
            self,
            "gpu-cluster",
            name=name,
            instance_type=env.gpu_fleet.instance_type,
            min_instances=env.gpu_fleet.min_instances,
            max_instances=env.gpu_fleet.max_instances,
            initial_instances=env.gpu_fleet.initial_instances,
            spot=env.gpu_fleet.capacity == "spot",
            root_volume_gib=env.gpu_fleet.root_volume_gib,
            model_cache_path=env.gpu_fleet.model_cache_path,
            subnet_ids=network.private_subnet_ids,
            security_group_id=security.gpu_instances,
            instance_profile_arn=iam.instance_profile_arn,
        )
        fargate = FargateCluster(self, "fargate-cluster", name=name)
        etcd_members = [f"etcd-{index}" for index in range(env.control_plane.etcd_members)]
        discovery = Discovery(self, "discovery", name=name, vpc_id=network.vpc_id, services=[*etcd_members, "nats"])
        etcd_data = EtcdData(
            self,
            "etcd-data",
            name=name,
            members=len(etcd_members),
            kms_key_arn=logs.key_arn,
            subnet_ids=network.private_subnet_ids,
            security_group_id=security.efs,
            task_role_name=iam.task_role_names["control-plane"],
        )
        control = ControlPlane(
            self,
            "control-plane",
            name=name,
            region=env.region,
            cluster_arn=fargate.cluster_arn,
            etcd_image=env.control_plane.etcd.image,
            etcd_cpu=env.control_plane.etcd.cpu,
            etcd_memory=env.control_plane.etcd.memory,
            nats_image=env.control_plane.nats.image,
            nats_cpu=env.control_plane.nats.cpu,
            nats_memory=env.control_plane.nats.memory,
            etcd_hostnames=[discovery.hostnames[member] for member in etcd_members],
            nats_hostname=discovery.hostnames["nats"],
            etcd_registry_arns=[discovery.service_arns[member] for member in etcd_members],
            nats_registry_arn=discovery.service_arns["nats"],
            etcd_file_system_id=etcd_data.file_system_id,
            etcd_access_point_ids=etcd_data.access_point_ids,
            etcd_data_mountable=etcd_data.mountable,
            log_groups=logs.names,
            execution_role_arn=iam.execution_role_arn,
            task_role_arn=iam.task_role_arns["control-plane"],
            subnet_ids=network.private_subnet_ids,
            security_group_id=security.control_plane,
            etcd_peers_security_group_id=security.etcd_peers,
            # etcd and NATS read no secret: only pulling and logging.
            needs=[iam.execution_managed_policy],
        )
        balancer = LoadBalancer(
            self,
            "load-balancer",
            name=name,
            account=account,
            vpc_id=network.vpc_id,
            subnet_ids=network.private_subnet_ids if env.load_balancer.internal else network.public_subnet_ids,
            security_group_id=security.alb,
            internal=env.load_balancer.internal,
            certificate_arn=env.load_balancer.certificate_arn,
            ssl_policy=env.load_balancer.ssl_policy,
            idle_timeout_seconds=env.load_balancer.idle_timeout_seconds,
            deregistration_delay_seconds=env.load_balancer.deregistration_delay_seconds,
            deletion_protection=env.load_balancer.deletion_protection,
            access_logs=env.load_balancer.access_logs,
            log_retention_days=env.logging.retention_days,
            waf_acl_arn=env.load_balancer.waf_acl_arn,
        )

        environment = dynamo_environment(etcd_endpoint=control.etcd_endpoint, nats_server=control.nats_server)
        frontend_on_fleet = env.frontend.placement == "gpu_fleet"
        frontend = Frontend(
            self,
            "frontend",
            name=name,
            region=env.region,
            cluster_arn=gpu.cluster_arn if frontend_on_fleet else fargate.cluster_arn,
            capacity_provider=gpu.capacity_provider_name if frontend_on_fleet else None,
            image=env.image.reference,
            repository_credentials_arn=env.image.pull_credentials_secret_arn,
            command=frontend_command(
                router_mode=env.frontend.router_mode,
                # Each KV router tracks only the requests it routed itself; with several
                # frontends they share their view of the workers' load through NATS.
                # max_count, not count: autoscaling adds frontends to a running stack.
                router_replica_sync=env.frontend.router_mode == "kv" and env.frontend.max_count > 1,
                migration_limit=env.frontend.migration_limit,
            ),
            cpu=env.frontend.cpu,
            memory=env.frontend.memory,
            ephemeral_storage_gib=env.frontend.ephemeral_storage_gib,
            desired_count=env.frontend.count,
            environment=environment,
            secrets=secrets_for(hf_token_secret_arn=env.model.hf_token_secret_arn),
            target_group_arn=balancer.target_group_arn,
            health_check_grace_seconds=FRONTEND_HEALTH_GRACE_SECONDS,
            log_group=logs.names["frontend"],
            execution_role_arn=iam.execution_role_arn,
            task_role_arn=iam.task_role_arns["frontend"],
            subnet_ids=network.private_subnet_ids,
            security_group_id=security.frontend,
            needs=iam.execution_policies,
        )
        scaled = {
            "frontend": ScaledService(
                gpu.cluster_name if frontend_on_fleet else fargate.cluster_name,
                frontend.service_name,
                env.frontend.min_count,
                env.frontend.max_count,
            )
        }
        for role, worker in workers.items():
            service = GpuWorkers(
                self,
                role,
                name=name,
                role=role,
                region=env.region,
                cluster_arn=gpu.cluster_arn,
                capacity_provider=gpu.capacity_provider_name,
                image=env.image.reference,
                repository_credentials_arn=env.image.pull_credentials_secret_arn,
                command=worker_command(
                    model=env.model.name,
                    served_model_name=env.model.served_model_name,
                    tensor_parallel_size=env.model.tensor_parallel_size,
                    disaggregation_mode=role if env.mode == "disaggregated" else None,
                    # The KV router learns cache contents from the workers that own KV blocks
                    # after prefill; decode workers in disaggregated mode do not publish.
                    publish_kv_events=env.frontend.router_mode == "kv"
                    and (env.mode == "aggregated" or role == "prefill"),
                    max_model_len=env.model.max_model_len,
                    extra_args=list(env.model.extra_vllm_args),
                ),
                cpu=worker.cpu,
                memory=worker.memory,
                gpus=worker.gpus,
                shared_memory_mib=worker.shared_memory_mib,
                desired_count=worker.count,
                min_count=worker.min_count,
                rollout=worker.rollout,
                environment=environment,
                secrets=secrets_for(hf_token_secret_arn=env.model.hf_token_secret_arn),
                model_cache_path=env.gpu_fleet.model_cache_path,
                log_group=logs.names[role],
                execution_role_arn=iam.execution_role_arn,
                task_role_arn=iam.task_role_arns["workers"],
                subnet_ids=network.private_subnet_ids,
                security_group_id=security.workers,
                needs=iam.execution_policies,
            )
            scaled[role] = ScaledService(gpu.cluster_name, service.service_name, worker.min_count, worker.max_count)

        Autoscaling(
            self,
            "autoscaling",
            name=name,
            services=scaled,
            frontend="frontend",
            frontend_cpu_target_percent=env.frontend.cpu_target_percent,
            frontend_requests_per_target=env.frontend.requests_per_target,
            request_count_resource_label=f"{balancer.arn_suffix}/{balancer.target_group_arn_suffix}",
            working_hours=WorkingHours(env.schedule.timezone, env.schedule.scale_up, env.schedule.scale_down)
            if env.schedule
            else None,
        )
        alarmed = {short: (service.cluster_name, service.service_name) for short, service in scaled.items()}
        alarmed.update(
            {short: (fargate.cluster_name, service_name) for short, service_name in control.service_names.items()}
        )
        alarms = Alarms(
            self,
            "alarms",
            name=name,
            topic_arn=env.logging.alarm_topic_arn,
            key_arn=logs.key_arn,
            load_balancer_arn_suffix=balancer.arn_suffix,
            target_group_arn_suffix=balancer.target_group_arn_suffix,
            services=alarmed,
            etcd_cluster_name=fargate.cluster_name,
            etcd_service_names=control.etcd_service_names,
        )

        outputs = {
            "endpoint_url": (balancer.endpoint_url, "OpenAI-compatible endpoint, e.g. <url>/v1/models"),
            "alb_dns_name": (balancer.dns_name, "DNS name of the load balancer (point your own record at it)"),
            "gpu_cluster_name": (gpu.cluster_name, "ECS cluster of the GPU workers"),
            "fargate_cluster_name": (fargate.cluster_name, "ECS cluster of etcd, NATS and the frontend (on Fargate)"),
            "gpu_autoscaling_group_name": (gpu.autoscaling_group_name, "Auto Scaling group of the GPU instances"),
            "service_discovery_namespace": (
                discovery.namespace_name,
                "Cloud Map namespace: etcd-<i>.<ns>:2379 per etcd member, nats.<ns>:4222",
            ),
            "etcd_endpoint": (
                control.etcd_endpoint,
                "ETCD_ENDPOINTS for Dynamo processes in this VPC: every etcd member, comma-separated",
            ),
            "nats_server": (control.nats_server, "NATS_SERVER for Dynamo processes in this VPC"),
            "vpc_id": (network.vpc_id, "VPC id"),
            "private_subnet_ids": (network.private_subnet_ids, "Private subnets (tasks, instances)"),
            "alarm_topic_arn": (alarms.topic_arn, "SNS topic the alarms notify: subscribe your on-call"),
            "log_group_names": (logs.names, "CloudWatch log group per service"),
        }
        for output_id, (value, description) in outputs.items():
            TerraformOutput(self, output_id, value=value, description=description)

    def _backend(self, env: Environment) -> None:
        backend = env.backend
        if isinstance(backend, S3BackendConfig):
            S3Backend(
                self,
                bucket=backend.bucket,
                key=backend.key,
                region=backend.region,
                encrypt=True,
                kms_key_id=backend.kms_key_arn,
            )
            # Terraform >= 1.10 locks with a lock file next to the state; cdktf 0.21's
            # S3Backend predates the argument.
            self.add_override("terraform.backend.s3.use_lockfile", True)
        elif isinstance(backend, HcpBackendConfig):
            CloudBackend(
                self,
                organization=backend.organization,
                hostname=backend.hostname,
                workspaces=NamedCloudWorkspace(backend.workspace),
            )
        else:
            LocalBackend(self, path=backend.state_path(env.stack_name))
