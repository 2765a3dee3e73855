"""Cloud Map private DNS: etcd and NATS are found by name, never by a copied IP address."""

from __future__ import annotations

from constructs import Construct

from components.aws import service_discovery_private_dns_namespace, service_discovery_service


class Discovery(Construct):
    """A private DNS namespace with one A-record service per name.

    Attributes:
        namespace_name, namespace_id: the namespace (``dynamo-<env>.local``).
        service_arns: registry ARN per service name, for ECS ``service_registries``.
        hostnames: ``<service>.<namespace>`` per service name.
    """

    def __init__(self, scope: Construct, id_: str, *, name: str, vpc_id: str, services: list[str]) -> None:
        super().__init__(scope, id_)
        namespace_name = f"{name}.local"
        namespace = service_discovery_private_dns_namespace.ServiceDiscoveryPrivateDnsNamespace(
            self, "namespace", name=namespace_name, vpc=vpc_id, description=f"{name}: etcd and NATS for Dynamo"
        )
        self.namespace_name: str = namespace_name
        self.namespace_id: str = namespace.id
        self.service_arns: dict[str, str] = {}
        self.hostnames: dict[str, str] = {}
        for service in services:
            registry = service_discovery_service.ServiceDiscoveryService(
                self,
                service,
                name=service,
                dns_config={
                    "namespace_id": namespace.id,
                    "routing_policy": "MULTIVALUE",
                    "dns_records": [
                        service_discovery_service.ServiceDiscoveryServiceDnsConfigDnsRecords(type="A", ttl=10)
                    ],
                },
                # ECS reports each task's health to Cloud Map. Every name here has one task, which
                # must resolve while it starts: etcd members find each other at the first deploy
                # before any of them can be healthy. A custom health check starts HEALTHY unless
                # told otherwise (Cloud Map's RegisterInstance, AWS_INIT_HEALTH_STATUS), and a
                # multivalue answer falls back to unhealthy records when none is healthy (Route 53).
                health_check_custom_config={"failure_threshold": 1},
            )
            self.service_arns[service] = registry.arn
            self.hostnames[service] = f"{service}.{namespace_name}"
