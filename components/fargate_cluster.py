"""The Fargate cluster: etcd, NATS and (by default) the frontend."""

from __future__ import annotations

from constructs import Construct

from components.aws import ecs_cluster, ecs_cluster_capacity_providers


class FargateCluster(Construct):
    """Attributes: cluster_name, cluster_arn, capacity_provider_name (None: tasks launch on Fargate)."""

    def __init__(self, scope: Construct, id_: str, *, name: str) -> None:
        super().__init__(scope, id_)
        cluster = ecs_cluster.EcsCluster(
            self,
            "cluster",
            name=f"{name}-fargate",
            setting=[ecs_cluster.EcsClusterSetting(name="containerInsights", value="enabled")],
        )
        ecs_cluster_capacity_providers.EcsClusterCapacityProviders(
            self,
            "capacity-providers",
            cluster_name=cluster.name,
            capacity_providers=["FARGATE"],
            default_capacity_provider_strategy=[
                ecs_cluster_capacity_providers.EcsClusterCapacityProvidersDefaultCapacityProviderStrategy(
                    capacity_provider="FARGATE", weight=1, base=0
                )
            ],
        )
        self.cluster_name: str = cluster.name
        self.cluster_arn: str = cluster.arn
        self.capacity_provider_name: str | None = None
