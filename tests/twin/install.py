"""Installs what the twin needs (`make twin-deps`): Debian's etcd, NATS, iptables, iproute2,
conntrack and wget, and a virtual environment with the pinned ai-dynamo.

The virtual environment is made from Debian's python3, in a directory every user can
read: Dynamo's containers run as uid 1000, which can read neither root's home (where
pyenv's interpreters usually live) nor a checkout inside it. Where this is not Linux, not
root or has no apt-get, it says why in one line and changes nothing: the twin layer then
skips with the same reason.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

REQUIREMENTS = Path(__file__).with_name("requirements.txt")
# Debian package -> an executable it provides.
PACKAGES = {
    "etcd-server": "etcd",
    "etcd-client": "etcdctl",
    "nats-server": "nats-server",
    "iptables": "iptables",
    "iproute2": "ip",
    "conntrack": "conntrack",
    "wget": "wget",
    "python3-venv": None,
}
BASE_PYTHON = Path("/usr/bin/python3")
TWIN_HOME = Path(os.environ.get("DYNAMO_TWIN_HOME", "/var/lib/dynamo-twin"))


def venv_dir() -> Path:
    """One venv per requirements file content, so clones and branches share it."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:12]
    return TWIN_HOME / f"venv-{digest}"


def dynamo_python() -> Path:
    return venv_dir() / "bin" / "python"


def unsupported() -> str | None:
    """Why the twin cannot run here, or None."""
    if platform.system() != "Linux":
        return f"the twin needs Linux network namespaces; this is {platform.system()}"
    if os.geteuid() != 0:
        return "the twin needs root (network namespaces, iptables, running containers as their image's user)"
    return None


def missing() -> str | None:
    """What is not installed yet, or None."""
    absent = [package for package, executable in PACKAGES.items() if executable and not shutil.which(executable)]
    if absent:
        return f"not installed: {', '.join(absent)} (make twin-deps)"
    if not (venv_dir() / ".installed").exists():
        return f"no ai-dynamo venv at {venv_dir()} (make twin-deps)"
    return None


def install() -> None:
    reason = unsupported()
    if reason is None and not shutil.which("apt-get"):
        reason = "no apt-get to install etcd-server, nats-server, iptables, iproute2 and conntrack"
    if reason:
        print(f"twin: skipped set-up: {reason}")
        return
    needed = [
        package
        for package, executable in PACKAGES.items()
        if (executable and not shutil.which(executable)) or (executable is None and not BASE_PYTHON.exists())
    ]
    if (
        needed
        or subprocess.run([str(BASE_PYTHON), "-c", "import ensurepip, venv"], capture_output=True).returncode != 0
    ):
        needed = needed or ["python3-venv"]
        environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=environment)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *needed], check=True, env=environment
        )
    target = venv_dir()
    if not (target / ".installed").exists():
        shutil.rmtree(target, ignore_errors=True)
        TWIN_HOME.mkdir(parents=True, exist_ok=True)
        TWIN_HOME.chmod(0o755)
        subprocess.run([str(BASE_PYTHON), "-m", "venv", str(target)], check=True)
        pip = [str(target / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, "-r", str(REQUIREMENTS)], check=True)
        (target / ".installed").write_text(REQUIREMENTS.read_text())
    print(f"twin: ready ({target})")


if __name__ == "__main__":
    try:
        install()
    except subprocess.CalledProcessError as error:
        sys.exit(f"twin: set-up failed: {' '.join(map(str, error.cmd))} exited with {error.returncode}")
