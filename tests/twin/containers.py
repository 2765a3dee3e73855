"""How a container definition becomes a process on this machine.

One table per concern, each the only place that knows it:
- IMAGE_USERS: the user an image runs as when the task definition sets none;
- VLLM_TO_MOCKER: `python3 -m dynamo.vllm` arguments as `python3 -m dynamo.mocker` takes them
  (the mocker is Dynamo's GPU-free engine with vLLM-style arguments);
- host_executable(): the image's executables, found on this machine.
Everything else (environment, secrets, mount points, health checks) is taken as written,
with container paths mapped to per-task directories.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

# (uid, gid) an image runs as when the task definition has no `user`.
IMAGE_USERS = {
    # USER dynamo (uid 1000, gid 0): ai-dynamo/dynamo container/templates/vllm_runtime.Dockerfile.
    "nvcr.io/nvidia/ai-dynamo/vllm-runtime": (1000, 0),
    # etcd's image is distroless/static and NATS's is alpine, both without a USER: root.
    "quay.io/coreos/etcd": (0, 0),
    "nats": (0, 0),
}

# vLLM argument -> mocker argument. Arguments with no counterpart are dropped and listed:
# they tune what the mocker does not have (GPUs, NIXL, vLLM's own KV event publisher; the
# mocker publishes KV events through Dynamo's event plane itself).
VLLM_TO_MOCKER = {
    "--model": "--model-path",
    "--served-model-name": "--model-name",
    "--disaggregation-mode": "--disaggregation-mode",
}


@dataclass
class Translation:
    argv: list[str]
    dropped: list[str] = field(default_factory=list)


def image_user(image: str) -> tuple[int, int]:
    repository = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
    if repository not in IMAGE_USERS:
        raise LookupError(f"the twin does not know which user {image} runs as; add it to IMAGE_USERS in {__file__}")
    return IMAGE_USERS[repository]


def host_executable(name: str, dynamo_python: Path) -> str:
    """The image's executable on this machine: python3 is the pinned ai-dynamo venv's."""
    if name == "python3":
        return str(dynamo_python)
    found = shutil.which(Path(name).name)
    if found is None:
        raise FileNotFoundError(f"{Path(name).name} is not installed (make twin-deps installs it)")
    return found


def _vllm_as_mocker(args: list[str]) -> Translation:
    translated, dropped = [], []
    index = 0
    while index < len(args):
        flag = args[index]
        value = args[index + 1] if index + 1 < len(args) and not args[index + 1].startswith("--") else None
        index += 1 if value is None else 2
        if flag in VLLM_TO_MOCKER:
            translated += [VLLM_TO_MOCKER[flag]] + ([value] if value is not None else [])
        else:
            dropped.append(flag if value is None else f"{flag} {value}")
    return Translation(translated, dropped)


def translate_command(command: list[str], dynamo_python: Path) -> Translation:
    """The container's command as a process here: dynamo.vllm runs as dynamo.mocker."""
    if command[:3] == ["python3", "-m", "dynamo.vllm"]:
        mocker = _vllm_as_mocker(command[3:])
        return Translation([str(dynamo_python), "-m", "dynamo.mocker", *mocker.argv], mocker.dropped)
    return Translation([host_executable(command[0], dynamo_python), *command[1:]])


def translate_health_check(command: list[str], dynamo_python: Path) -> list[str]:
    """An ECS healthCheck command: ["CMD", argv...] or ["CMD-SHELL", script]."""
    kind, *rest = command
    if kind == "CMD-SHELL":
        return ["/bin/sh", "-c", rest[0]]
    assert kind == "CMD", f"unknown health check form {kind}"
    return [host_executable(rest[0], dynamo_python), *rest[1:]]


def map_paths(value: str, mounts: dict[str, Path]) -> str:
    """A value that names a container path (`/data/etcd`, `--data-dir=/data/etcd`) names the
    task's directory for that mount instead."""
    for container_path, host_dir in sorted(mounts.items(), key=lambda item: -len(item[0])):
        for prefix in ("", "="):
            marker = prefix + container_path
            position = value.find(marker)
            if position != -1 and (position == 0 or prefix == "=") and value[position + len(marker) :][:1] in ("", "/"):
                start = position + len(prefix)
                return value[:start] + str(host_dir) + value[start + len(container_path) :]
    return value
