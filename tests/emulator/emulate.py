"""`make emulate`: deploy dev to a local AWS emulator, keep it up until Ctrl-C, then destroy it.

    python -m tests.emulator.emulate [--env dev]

Nothing leaves this machine: the emulator (moto) listens on 127.0.0.1 only, and the
AWS provider reaches it through AWS_ENDPOINT_URL with test credentials. What the
emulator cannot show: no instance boots, no container runs, no GPU exists, the ALB
answers no request. It proves that the stack deploys, converges and tears down.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.emulator.harness import PROJECT_DIR, Deployment, Emulator, stack_region, stage_stack
from tests.terraform_env import offline_terraform


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make emulate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="dev", help="environment in environments/NAME.toml (default: dev)")
    args = parser.parse_args(argv)
    stack = f"dynamo-{args.env}"
    # Ctrl-C (and a polite kill) tear down, even where the shell started us with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    workdir = Path(tempfile.mkdtemp(prefix="dynamo-emulate."))
    try:
        terraform = offline_terraform(workdir / "terraform")
    except pytest.skip.Exception as missing:
        print(f"make emulate: {missing}", file=sys.stderr)
        return 1
    synth = subprocess.run(
        [sys.executable, str(PROJECT_DIR / "main.py"), "--env", args.env, "--outdir", str(workdir / "synth")],
        cwd=PROJECT_DIR,
    )
    if synth.returncode != 0:
        return synth.returncode
    outdir = stage_stack(workdir / "synth", stack, workdir / "deploy")
    region = stack_region(outdir, stack)

    with Emulator(workdir / "moto", [region]) as emulator:
        env = emulator.env(terraform.env(), region)
        deployment = Deployment(outdir, stack, env, terraform=terraform.terraform)
        print(
            f"emulator: {emulator.endpoint} (moto; log {emulator.log_path})\ndeploying {stack} with cdktf ...",
            flush=True,
        )
        interrupted = deployed = False
        try:
            deploy = deployment.deploy(stream=True)
            deployed = deploy.returncode == 0
            if not deployed:
                print(
                    f"\ncdktf deploy failed (exit {deploy.returncode}); "
                    f"emulator errors:\n{emulator.errors() or '(none)'}",
                    file=sys.stderr,
                )
            else:
                outputs = deployment.outputs()
                exports = " ".join(
                    f"{key}={shlex.quote(env[key])}"
                    for key in (
                        "AWS_ENDPOINT_URL",
                        "AWS_ACCESS_KEY_ID",
                        "AWS_SECRET_ACCESS_KEY",
                        "AWS_REGION",
                        "TF_CLI_CONFIG_FILE",
                    )
                )
                print(
                    f"\n{stack} is deployed to the emulator in {deploy.seconds:.0f}s.\n"
                    f"  endpoint_url: {outputs.get('endpoint_url', '?')}"
                    "   (a name only: the emulator serves no traffic)\n"
                    f"  every output: cd {deployment.stack_dir} && {exports} terraform output\n"
                    f"  AWS CLI:      aws --endpoint-url {emulator.endpoint} ecs list-services "
                    f"--cluster {outputs.get('fargate_cluster_name', stack + '-fargate')}\n"
                    "Press Ctrl-C to destroy the stack and stop the emulator.",
                    flush=True,
                )
                signal.pause()
        except KeyboardInterrupt:
            interrupted = True
        finally:
            # A second Ctrl-C during the teardown would leave the emulator running.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            print(f"\n{'interrupted; ' if interrupted else ''}destroying {stack} ...", flush=True)
            destroy = deployment.destroy(stream=True)
    if destroy.returncode != 0:
        print(
            f"destroy failed (exit {destroy.returncode}); the emulator is stopped anyway; files kept in {workdir}",
            file=sys.stderr,
        )
        return 1
    shutil.rmtree(workdir, ignore_errors=True)
    print("destroyed; emulator stopped.")
    return 0 if deployed else 1


if __name__ == "__main__":
    sys.exit(main())
