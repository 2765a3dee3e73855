"""Offline Terraform for the tests: the terraform binary and the local hashicorp/aws mirror.

There is no Terraform registry on these machines, only a filesystem mirror of the
provider somewhere on disk (see DESIGN.md, "Offline Terraform on these machines").
Nothing here hard-codes where: the binary comes from $TERRAFORM or PATH, the mirror
from $TF_PROVIDER_MIRROR or a bounded search of the usual roots. The CLI config that
points Terraform at the mirror is written to a temporary directory per session, with
a plugin cache that is filled once, before any test runs terraform: Terraform's plugin
cache "is not guaranteed to be concurrency safe" (CLI config docs), and the layers run
several `terraform init`s at once. Two of them installing into an empty cache at the
same moment failed one with "mkdir ...: file exists"; and since a stack has no lock file, the cache
serves it only with plugin_cache_may_break_dependency_lock_file (cli_config_text says why).
Where either is missing the tests skip, loudly, saying what to install.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

PROVIDER = "registry.terraform.io/hashicorp/aws"
# Roots where mirrors and plugin directories are conventionally unpacked; searched a
# few levels deep only, so discovery stays well under a second.
SEARCH_ROOTS = (
    "/opt",
    "/usr/local/share",
    "/usr/local/lib",
    "/usr/share",
    "/usr/lib",
    "~/.terraform.d/plugins",
    "~/.local/share/terraform/plugins",
    "/srv",
)
MAX_DEPTH = 4


@dataclass(frozen=True)
class OfflineTerraform:
    terraform: str
    mirror: Path
    cli_config: Path
    plugin_cache: Path

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for a terraform (or cdktf) subprocess: offline, quiet, non-interactive."""
        env = dict(os.environ)
        env.update(
            TF_CLI_CONFIG_FILE=str(self.cli_config),
            TF_IN_AUTOMATION="1",
            TF_INPUT="0",
            CHECKPOINT_DISABLE="1",
            # The cdktf CLI: no telemetry, no version check against npm.
            DISABLE_VERSION_CHECK="true",
            CDKTF_DISABLE_PLUGIN_CACHE_ENV="true",
            NO_COLOR="1",
            FORCE_COLOR="0",
        )
        env.update(extra)
        return env


def _mirror_root(candidate: Path) -> Path | None:
    """The mirror directory containing registry.terraform.io/hashicorp/aws/<version>/<os_arch>/."""
    provider_dir = candidate / PROVIDER
    if not provider_dir.is_dir():
        return None
    for binary in provider_dir.glob("*/*/terraform-provider-aws*"):
        if os.access(binary, os.X_OK):
            return candidate
    # Packed layout: registry.terraform.io/hashicorp/aws/terraform-provider-aws_<v>_<os>_<arch>.zip
    if any(provider_dir.glob("terraform-provider-aws_*.zip")):
        return candidate
    return None


def _search(root: Path, depth: int) -> Path | None:
    found = _mirror_root(root)
    if found or depth == 0:
        return found
    try:
        children = sorted(child for child in root.iterdir() if child.is_dir() and not child.is_symlink())
    except OSError:
        return None
    for child in children:
        if child.name in ("proc", "sys", "node_modules", ".git"):
            continue
        found = _search(child, depth - 1)
        if found:
            return found
    return None


def find_provider_mirror() -> Path | None:
    explicit = os.environ.get("TF_PROVIDER_MIRROR")
    if explicit:
        return _mirror_root(Path(explicit).expanduser())
    for root in SEARCH_ROOTS:
        path = Path(root).expanduser()
        if path.is_dir():
            found = _search(path, MAX_DEPTH)
            if found:
                return found
    return None


def mirror_versions(mirror: Path) -> list[str]:
    """The hashicorp/aws versions the mirror holds, in either layout."""
    provider_dir = mirror / PROVIDER
    unpacked = {binary.parent.parent.name for binary in provider_dir.glob("*/*/terraform-provider-aws*")}
    packed = {zipped.name.split("_")[1] for zipped in provider_dir.glob("terraform-provider-aws_*.zip")}
    return sorted(unpacked | packed)


def fill_plugin_cache(terraform: str, env: dict[str, str], workdir: Path, versions: list[str]) -> None:
    """One `terraform init` per mirrored version, in turn, so that every later init only links from the cache."""
    for version in versions:
        scratch = workdir / f"fill-cache-{version}"
        scratch.mkdir(exist_ok=True)
        (scratch / "main.tf.json").write_text(
            '{"terraform": {"required_providers": {"aws": '
            f'{{"source": "hashicorp/aws", "version": "{version}"}}}}}}}}\n'
        )
        init = subprocess.run(
            [terraform, "init", "-backend=false", "-input=false"], cwd=scratch, env=env, capture_output=True, text=True
        )
        if init.returncode != 0:
            pytest.fail(f"filling the plugin cache from the mirror failed (hashicorp/aws {version}):\n{init.stderr}")


def cli_config_text(mirror: Path, plugin_cache: Path) -> str:
    # No `direct` block: anything but hashicorp/aws fails to install instead of
    # reaching for a registry.
    # Terraform >= 1.4 takes a provider from the cache only when the working directory's lock file
    # already holds its checksum; otherwise every init installs it into the cache again, and
    # concurrent inits race on that (measured with the cache filled: 1 of 8 failed in 4 of 11 runs
    # of test_concurrent_inits_share_one_plugin_cache). The stacks have no lock file, so let the cache
    # serve them (the setting's own name says what it trades: the lock file may record only the
    # cached package's checksum, which is the mirror's).
    return (
        f'plugin_cache_dir = "{plugin_cache.as_posix()}"\n'
        "plugin_cache_may_break_dependency_lock_file = true\n"
        "disable_checkpoint = true\n"
        "provider_installation {\n"
        "  filesystem_mirror {\n"
        f'    path    = "{mirror.as_posix()}"\n'
        f'    include = ["{PROVIDER}"]\n'
        "  }\n"
        "}\n"
    )


def offline_terraform(workdir: Path) -> OfflineTerraform:
    """Discover terraform and the mirror, write the CLI config under ``workdir``; skip if impossible."""
    terraform = os.environ.get("TERRAFORM") or shutil.which("terraform")
    if not terraform:
        pytest.skip(
            "SKIPPED LOUDLY: no terraform binary on PATH (or $TERRAFORM); the Terraform and emulator layers did not run"
        )
    mirror = find_provider_mirror()
    if mirror is None:
        pytest.skip(
            f"SKIPPED LOUDLY: no local mirror of {PROVIDER} found (set $TF_PROVIDER_MIRROR or unpack one under "
            f"{', '.join(SEARCH_ROOTS)}); the Terraform and emulator layers did not run"
        )
    version = subprocess.run(
        [terraform, "version"], capture_output=True, text=True, env={**os.environ, "CHECKPOINT_DISABLE": "1"}
    )
    if version.returncode != 0:
        pytest.skip(f"SKIPPED LOUDLY: `{terraform} version` failed: {version.stderr.strip()}")
    workdir.mkdir(parents=True, exist_ok=True)
    plugin_cache = workdir / "plugin-cache"
    plugin_cache.mkdir(exist_ok=True)
    cli_config = workdir / "terraform.rc"
    cli_config.write_text(cli_config_text(mirror, plugin_cache))
    offline = OfflineTerraform(terraform=terraform, mirror=mirror, cli_config=cli_config, plugin_cache=plugin_cache)
    fill_plugin_cache(terraform, offline.env(), workdir, mirror_versions(mirror))
    return offline


def run_terraform(
    tf: OfflineTerraform, args: list[str], cwd: Path, *, timeout: int = 600, **extra_env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tf.terraform, *args], cwd=cwd, env=tf.env(**extra_env), capture_output=True, text=True, timeout=timeout
    )


def failure(what: str, result: subprocess.CompletedProcess[str]) -> str:
    """Terraform's own words, for the assertion message."""
    return (
        f"{what} exited {result.returncode}\n--- stderr ---\n{result.stderr.strip()}"
        f"\n--- stdout ---\n{result.stdout.strip()[-6000:]}"
    )
