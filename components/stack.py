"""DynamoStack: the one place that knows how the parts of the platform connect."""

from __future__ import annotations

from cdktf import CloudBackend, LocalBackend, NamedCloudWorkspace, S3Backend, TerraformOutput, TerraformStack
from constructs import Construct

from components.account import Account
from components.alarms import Alarms
from components.autoscaling import Autoscaling, ScaledService
from components.aws import provider
from components.control_plane import ControlPlane, etcd_member_names
from components.dashboard import Dashboard
from components.discovery import Discovery
from components.dynamo_alarms import DynamoAlarms
from components.etcd_data import EtcdData
from components.fargate_cluster import FargateCluster
from components.gpu_cluster import GpuCluster
from components.gpu_metrics import GpuMetrics
from components.iam import Iam
from components.load_balancer import LoadBalancer
from components.logs import LogGroups
from components.metrics import Metrics
from components.network import Network
from components.security_groups import SecurityGroups
from components.service import Placement, TaskService
from components.workers import DynamoRuntime, Frontend, GpuWorkers, WorkerStart
from environments.fit import cold_start
from environments.policies import worker_policies
from environments.schema import Environment, HcpBackendConfig, S3BackendConfig


class DynamoStack(TerraformStack):
    """Everything one environment runs, in one Terraform stack named ``dynamo-<env>``.

    Built in four steps, each a method below: the foundation every part stands on, the
    clusters and the control plane, the Dynamo services behind the load balancer, then
    scaling, alarms and outputs.
    """

    def __init__(self, scope: Construct, *, environment: Environment) -> None:
        super().__init__(scope, environment.stack_name)
        self.config = environment
        self.name = environment.stack_name
        self._foundation()
        self._compute()
        self._services()
        self._scaling_alarms_and_outputs()

    def _foundation(self) -> None:
        env = self.config
        tags = {"Project": "dynamo-ecs", "Environment": env.name, "ManagedBy": "cdktf"}
        provider.AwsProvider(self, "aws", region=env.region, default_tags=[provider.AwsProviderDefaultTags(tags=tags)])
        self._backend()
        self.account = Account(self, "account")
        self.logs = LogGroups(
            self,
            "logs",
            name=self.name,
            region=env.region,
            account=self.account,
            retention_days=env.logging.retention_days,
        )
        self.metrics = Metrics(
            self,
            "metrics",
            name=self.name,
            environment=env.name,
            model=env.model.served_model_name or env.model.name,
            config=env.metrics,
            logs=self.logs,
        )
        self.network = Network(self, "network", name=self.name, region=env.region, config=env.network, logs=self.logs)
        self.security = SecurityGroups(
            self, "security-groups", name=self.name, vpc_id=self.network.vpc_id, load_balancer=env.load_balancer
        )
        self.iam = Iam(self, "iam", name=self.name, account=self.account, secrets_kms_key_arn=env.secrets_kms_key_arn)

    def _compute(self) -> None:
        env = self.config
        private_subnets = self.network.private_subnet_ids
        self.gpu = GpuCluster(
            self,
            "gpu-cluster",
            name=self.name,
            config=env.gpu_fleet,
            network=self.network,
            security_group=self.security.gpu_instances,
            instance_profile_arn=self.iam.instance_profile_arn,
        )
        GpuMetrics(
            self,
            "gpu-metrics",
            name=self.name,
            config=env.metrics,
            cluster=self.gpu,
            roles=self.iam.roles_for("gpu-metrics"),
            metrics=self.metrics,
            logs=self.logs,
        )
        self.fargate = FargateCluster(self, "fargate-cluster", name=self.name)
        etcd_members = etcd_member_names(env.control_plane.etcd_members)
        self.discovery = Discovery(
            self, "discovery", name=self.name, vpc_id=self.network.vpc_id, services=[*etcd_members, "nats"]
        )
        etcd_data = EtcdData(
            self,
            "etcd-data",
            name=self.name,
            members=len(etcd_members),
            kms_key_arn=self.logs.key_arn,
            subnet_ids=private_subnets,
            security_group=self.security.efs,
        )
        self.control_plane = ControlPlane(
            self,
            "control-plane",
            name=self.name,
            config=env.control_plane,
            discovery=self.discovery,
            data=etcd_data,
            logs=self.logs,
            roles=self.iam.roles_for("control-plane"),
            placement=Placement.on(
                self.fargate, subnet_ids=private_subnets, security_groups=[self.security.control_plane]
            ),
            peers=self.security.etcd_peers,
        )

    def _services(self) -> None:
        env = self.config
        private_subnets = self.network.private_subnet_ids
        self.balancer = LoadBalancer(
            self,
            "load-balancer",
            name=self.name,
            account=self.account,
            config=env.load_balancer,
            network=self.network,
            security_group=self.security.alb,
            log_retention_days=env.logging.retention_days,
        )
        runtime = DynamoRuntime.of(image=env.image, model=env.model, control_plane=self.control_plane)
        frontend_cluster = self.gpu if env.frontend.placement == "gpu_fleet" else self.fargate
        self.frontend = Frontend(
            self,
            "frontend",
            name=self.name,
            config=env.frontend,
            runtime=runtime,
            placement=Placement.on(
                frontend_cluster, subnet_ids=private_subnets, security_groups=[self.security.frontend]
            ),
            roles=self.iam.roles_for("frontend"),
            target=self.balancer.target,
            logs=self.logs,
            metrics=self.metrics,
        )
        self.workers = {
            role: GpuWorkers(
                self,
                role,
                name=self.name,
                config=worker,
                start=WorkerStart.of(env, role),
                runtime=runtime,
                placement=Placement.on(self.gpu, subnet_ids=private_subnets, security_groups=[self.security.workers]),
                roles=self.iam.roles_for("workers"),
                logs=self.logs,
                metrics=self.metrics,
            )
            for role, worker in env.gpu_workers().items()
        }

    def _scaling_alarms_and_outputs(self) -> None:
        env = self.config
        scaled = {"frontend": ScaledService(self.frontend.service, env.frontend.min_count, env.frontend.max_count)}
        for role, worker in env.gpu_workers().items():
            scaled[role] = ScaledService(self.workers[role].service, worker.min_count, worker.max_count)
        Autoscaling(
            self,
            "autoscaling",
            name=self.name,
            services=scaled,
            frontend=env.frontend,
            balancer=self.balancer,
            schedule=env.schedule,
            worker_policies=worker_policies(env),
            metrics=self.metrics,
        )
        control = self.control_plane
        services: dict[str, TaskService] = {short_name: each.service for short_name, each in scaled.items()}
        services.update(zip(etcd_member_names(len(control.etcd_members)), control.etcd_members, strict=True))
        services["nats"] = control.nats
        alarms = Alarms(
            self,
            "alarms",
            name=self.name,
            config=env.logging,
            key_arn=self.logs.key_arn,
            balancer=self.balancer,
            services=services,
            etcd_members=control.etcd_members,
        )
        gpu_memory_mib = env.gpu_fleet.instance.gpu_memory_mib
        facts = env.model.model_facts
        assert facts is not None, "the schema refuses a model without facts"
        DynamoAlarms(
            self,
            "dynamo-alarms",
            name=self.name,
            topic_arn=alarms.topic_arn,
            config=env.scaling,
            metrics=self.metrics,
            workers={role: scaled[role] for role in env.gpu_workers()},
            gpu_memory_mib=gpu_memory_mib,
            cold_start_seconds=cold_start(env, facts).total,
        )
        dashboard = Dashboard(
            self,
            "dashboard",
            name=self.name,
            region=env.region,
            config=env.scaling,
            metrics=self.metrics,
            balancer=self.balancer,
            services=scaled,
            gpu_cluster=self.gpu,
            gpu_memory_mib=gpu_memory_mib,
        )
        outputs = {
            "endpoint_url": (self.balancer.endpoint_url, "OpenAI-compatible endpoint, e.g. <url>/v1/models"),
            "alb_dns_name": (self.balancer.dns_name, "DNS name of the load balancer (point your own record at it)"),
            "gpu_cluster_name": (self.gpu.cluster_name, "ECS cluster of the GPU workers"),
            "fargate_cluster_name": (
                self.fargate.cluster_name,
                "ECS cluster of etcd, NATS and the frontend (on Fargate)",
            ),
            "gpu_autoscaling_group_name": (self.gpu.autoscaling_group_name, "Auto Scaling group of the GPU instances"),
            "service_discovery_namespace": (
                self.discovery.namespace_name,
                "Cloud Map namespace: etcd-<i>.<ns>:2379 per etcd member, nats.<ns>:4222",
            ),
            "etcd_endpoint": (
                control.etcd_endpoint,
                "ETCD_ENDPOINTS for Dynamo processes in this VPC: every etcd member, comma-separated",
            ),
            "nats_server": (control.nats_server, "NATS_SERVER for Dynamo processes in this VPC"),
            "vpc_id": (self.network.vpc_id, "VPC id"),
            "private_subnet_ids": (self.network.private_subnet_ids, "Private subnets (tasks, instances)"),
            "alarm_topic_arn": (alarms.topic_arn, "SNS topic the alarms notify: subscribe your on-call"),
            "log_group_names": (self.logs.names, "CloudWatch log group per service"),
            "dashboard_name": (dashboard.dashboard_name, "CloudWatch dashboard: demand, latency, load, workers, GPUs"),
            "metrics_namespace": (
                self.metrics.namespace,
                "CloudWatch namespace of Dynamo's and the GPUs' metrics (dimensions Environment, Service, Model)",
            ),
        }
        for output_id, (value, description) in outputs.items():
            TerraformOutput(self, output_id, value=value, description=description)

    def _backend(self) -> None:
        backend = self.config.backend
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
            LocalBackend(self, path=backend.state_path(self.name))
