"""The floor for scripts/bench.py: the smallest cdktf app that still pays for the AWS provider.

One stack holding only the AWS provider block, the provider loaded module by module
through the same seam as the real app (components/aws.py). Nothing a synth of ours
does can be cheaper than this, so bench.py reports ours/floor.

    python scripts/floor_app.py [OUTDIR]
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from components.aws import provider  # noqa: E402  first: components/__init__ prepares the jsii runtime

from cdktf import App, TerraformStack  # noqa: E402


def main(outdir: str) -> None:
    app = App(outdir=outdir)
    stack = TerraformStack(app, "floor")
    provider.AwsProvider(stack, "aws", region="us-east-1")
    app.synth()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "cdktf.out.floor")
