"""Container definitions for ECS task definitions, built the same way for every service."""

from __future__ import annotations

from typing import Any


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


def container_definition(
    *,
    name: str,
    image: str,
    command: list[str],
    log_group: str,
    region: str,
    environment: dict[str, str] | None = None,
    secrets: dict[str, str] | None = None,
    ports: list[int] | None = None,
    health_check: dict[str, Any] | None = None,
    repository_credentials_arn: str | None = None,
    gpus: int = 0,
    readonly_root_filesystem: bool = False,
    mount_points: list[dict[str, Any]] | None = None,
    linux_parameters: dict[str, Any] | None = None,
    ulimits: list[dict[str, Any]] | None = None,
    stop_timeout: int | None = None,
    log_stream_prefix: str | None = None,
) -> dict[str, Any]:
    """One essential container; secrets arrive only through ``secrets`` (Secrets Manager ARNs).

    Log streams are ``<log_stream_prefix>/<name>/<task id>``; the prefix defaults to the name.
    """
    definition: dict[str, Any] = {
        "name": name,
        "image": image,
        "essential": True,
        "command": command,
        "environment": [{"name": key, "value": value} for key, value in sorted((environment or {}).items())],
        "secrets": [{"name": key, "valueFrom": arn} for key, arn in sorted((secrets or {}).items())],
        "portMappings": [{"containerPort": port, "protocol": "tcp"} for port in ports or []],
        "readonlyRootFilesystem": readonly_root_filesystem,
        "privileged": False,
        "mountPoints": mount_points or [],
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": log_group,
                "awslogs-region": region,
                "awslogs-stream-prefix": log_stream_prefix or name,
                "mode": "non-blocking",
            },
        },
    }
    if health_check:
        definition["healthCheck"] = health_check
    if repository_credentials_arn:
        definition["repositoryCredentials"] = {"credentialsParameter": repository_credentials_arn}
    if gpus:
        definition["resourceRequirements"] = [{"type": "GPU", "value": str(gpus)}]
    if linux_parameters:
        definition["linuxParameters"] = linux_parameters
    if ulimits:
        definition["ulimits"] = ulimits
    if stop_timeout is not None:
        definition["stopTimeout"] = stop_timeout
    return definition
