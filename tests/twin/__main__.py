"""`make twin ENV=staging`: synthesize one environment, run its stack as the twin, print the
endpoint, the flow matrix and the drill timings, and keep it up until Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from tests.twin.install import dynamo_python, missing, unsupported
from tests.twin.plan import read_plan
from tests.twin.runtime import Twin
from tests.twin.scenario import Report, drill, finish, serve

PROJECT_DIR = Path(__file__).resolve().parents[2]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.twin", description=__doc__)
    parser.add_argument("--env", default="dev", help="environment to synthesize and run (default dev)")
    parser.add_argument("--stack", type=Path, help="a synthesized cdk.tf.json to run instead of synthesizing --env")
    parser.add_argument("--no-drills", action="store_true", help="skip the failure drills")
    parser.add_argument("--no-wait", action="store_true", help="stop after the report instead of waiting for Ctrl-C")
    parser.add_argument(
        "--keep-logs", action="store_true", help="keep the containers' logs (and the twin's directory) after it stops"
    )
    args = parser.parse_args()
    reason = unsupported() or missing()
    if reason:
        print(f"twin: {reason}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as outdir:
        stack = args.stack
        if stack is None:
            synth = subprocess.run(
                [sys.executable, str(PROJECT_DIR / "main.py"), "--env", args.env, "--outdir", outdir],
                capture_output=True,
                text=True,
            )
            if synth.returncode != 0:
                print(synth.stderr, end="", file=sys.stderr)
                return synth.returncode
            stack = Path(outdir) / "stacks" / f"dynamo-{args.env}" / "cdk.tf.json"
        plan = read_plan(stack)
        twin = Twin(plan, dynamo_python(), run_name=plan.stack_name.removeprefix("dynamo-"))
        report = Report(plan.stack_name)
        try:
            serve(twin, report)
            if not args.no_drills:
                drill(twin, report)
            finish(twin, report)
            print("\n".join(report.lines()))
            target = twin.targets()[0]
            print(
                f"\nendpoint (from the ALB's namespace): http://{target.address}:{target.service.target_port}\n"
                f"  ip netns exec {twin.fabric.endpoints['alb'].namespace} curl -s http://{target.address}:{target.service.target_port}/v1/models\n"
                f"logs: {twin.workdir}/tasks/*/container.log"
                + ("" if args.keep_logs else " (removed when the twin stops; --keep-logs keeps them)")
            )
            if not args.no_wait:
                print("the twin stays up until Ctrl-C")
                stop = threading.Event()
                signal.signal(signal.SIGTERM, lambda *_: stop.set())
                try:
                    stop.wait()
                except KeyboardInterrupt:
                    pass
        finally:
            twin.close(keep_logs=args.keep_logs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
