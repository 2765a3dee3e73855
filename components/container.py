"""The containers of an ECS task definition, described the same way for every service."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from components.aws import ecs_task_definition
from components.logs import LogGroup


def http_health_check(
    port: int, path: str, *, start_period: int, interval: int = 30, retries: int = 3
) -> dict[str, Any]:
    """A health check that needs only Python in the image (Dynamo's images have no curl guarantee)."""
    probe = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}{path}', timeout=5)"
    return {
        "command": ["CMD", "python3", "-c", probe],
        "interval": interval,
        "timeout": 10,
        "retries": retries,
        "startPeriod": start_period,
    }


@dataclass(frozen=True)
class Mount:
    """A task volume and where the container sees it (read-write)."""

    volume: ecs_task_definition.EcsTaskDefinitionVolume
    container_path: str


@dataclass(frozen=True)
class Container:
    """One container: essential (the task stops when it stops) unless it is a sidecar.

    Secrets arrive only through ``secrets`` (name -> Secrets Manager ARN) and
    ``repository_credentials_arn``; the service that runs the container grants its execution
    role read on exactly those (``secret_arns``).

    Log streams are ``<log_stream_prefix>/<name>/<task id>``; the prefix defaults to the name.
    """

    name: str
    image: str
    command: list[str]
    logs: LogGroup
    log_stream_prefix: str | None = None
    environment: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    ports: list[int] = field(default_factory=list)
    health_check: dict[str, Any] | None = None
    repository_credentials_arn: str | None = None
    gpus: int = 0
    readonly_root_filesystem: bool = False
    mounts: list[Mount] = field(default_factory=list)
    linux_parameters: dict[str, Any] | None = None
    ulimits: list[dict[str, Any]] | None = None
    stop_timeout: int | None = None
    essential: bool = True
    # A sidecar's own share of the task: CPU units, and memory reserved / its hard limit (MiB).
    cpu: int | None = None
    memory_reservation: int | None = None
    memory: int | None = None
    # Bridge network mode only: the containers of the task this one reaches by name.
    links: list[str] = field(default_factory=list)

    @property
    def secret_arns(self) -> list[str]:
        arns = list(self.secrets.values())
        return arns + [self.repository_credentials_arn] if self.repository_credentials_arn else arns

    @property
    def volumes(self) -> list[ecs_task_definition.EcsTaskDefinitionVolume]:
        return [mount.volume for mount in self.mounts]

    def definition(self) -> dict[str, Any]:
        """The container definition as ECS's RegisterTaskDefinition takes it."""
        definition: dict[str, Any] = {
            "name": self.name,
            "image": self.image,
            "essential": self.essential,
            "command": self.command,
            "environment": [{"name": key, "value": value} for key, value in sorted(self.environment.items())],
            "secrets": [{"name": key, "valueFrom": arn} for key, arn in sorted(self.secrets.items())],
            "portMappings": [{"containerPort": port, "protocol": "tcp"} for port in self.ports],
            "readonlyRootFilesystem": self.readonly_root_filesystem,
            "privileged": False,
            "mountPoints": [
                {"sourceVolume": mount.volume.name, "containerPath": mount.container_path, "readOnly": False}
                for mount in self.mounts
            ],
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {
                    "awslogs-group": self.logs.name,
                    "awslogs-region": self.logs.region,
                    "awslogs-stream-prefix": self.log_stream_prefix or self.name,
                    "mode": "non-blocking",
                },
            },
        }
        if self.health_check:
            definition["healthCheck"] = self.health_check
        if self.repository_credentials_arn:
            definition["repositoryCredentials"] = {"credentialsParameter": self.repository_credentials_arn}
        if self.gpus:
            definition["resourceRequirements"] = [{"type": "GPU", "value": str(self.gpus)}]
        if self.linux_parameters:
            definition["linuxParameters"] = self.linux_parameters
        if self.ulimits:
            definition["ulimits"] = self.ulimits
        if self.stop_timeout is not None:
            definition["stopTimeout"] = self.stop_timeout
        for key, value in (("cpu", self.cpu), ("memoryReservation", self.memory_reservation), ("memory", self.memory)):
            if value is not None:
                definition[key] = value
        if self.links:
            definition["links"] = self.links
        return definition
