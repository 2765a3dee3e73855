"""`make twin-flows`: run each shipped stack as the twin until it serves, and record the connections
between its parts in docs/measurements/twin-flows.json, which `main.py review` checks changes against
(review/flows.py). tests/test_twin.py fails when the twin observes other flows than the record's."""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

from environments.loader import environment_files
from review.flows import RECORD_FILE, ObservedFlow, record_document
from tests.twin.install import REQUIREMENTS, dynamo_python, missing, unsupported
from tests.twin.plan import read_plan
from tests.twin.runtime import Twin
from tests.twin.scenario import Report, serve

PROJECT_DIR = Path(__file__).resolve().parents[2]


def observed_flows(flows: dict[tuple[str, str, int], dict]) -> list[ObservedFlow]:
    """The twin's flow matrix as the record holds it: no counts (they differ run to run)."""
    return [
        ObservedFlow(source, destination, port, tuple(sorted(row["rules"])))
        for (source, destination, port), row in sorted(flows.items())
    ]


def pinned_dynamo() -> str:
    pinned = re.search(r"^ai-dynamo==(\S+)$", REQUIREMENTS.read_text(), re.MULTILINE)
    assert pinned, f"{REQUIREMENTS} must pin ai-dynamo=="
    return pinned[1]


def main() -> int:
    reason = unsupported() or missing()
    if reason:
        print(f"twin-flows: {reason}", file=sys.stderr)
        return 2
    names = sorted(path.stem for path in environment_files())
    recorded: dict[str, list[ObservedFlow]] = {}
    with tempfile.TemporaryDirectory(prefix="dynamo-twin-flows-") as outdir:
        synth = subprocess.run(
            [sys.executable, str(PROJECT_DIR / "main.py"), "--outdir", outdir, *[f"--env={name}" for name in names]],
            capture_output=True,
            text=True,
        )
        if synth.returncode != 0:
            print(synth.stderr, end="", file=sys.stderr)
            return synth.returncode
        for name in names:
            plan = read_plan(Path(outdir) / "stacks" / f"dynamo-{name}" / "cdk.tf.json")
            twin = Twin(plan, dynamo_python(), run_name=name, log=lambda line: None)
            report = Report(plan.stack_name)
            try:
                serve(twin, report)
            finally:
                twin.close()
            recorded[plan.stack_name] = observed_flows(report.serving_flows)
            print(f"{plan.stack_name}: {len(recorded[plan.stack_name])} flows while serving")
    RECORD_FILE.write_text(record_document(pinned_dynamo(), recorded))
    print(f"wrote {RECORD_FILE.relative_to(PROJECT_DIR)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
