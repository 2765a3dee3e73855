"""The floor for scripts/bench.py: the smallest cdktf app that still pays for the AWS provider.

One stack holding only the AWS provider block, the provider loaded module by module
through the same seam as the real app (components/aws.py), in Python and in node.
Nothing a synth of ours does can be cheaper than this, so bench.py reports ours/floor.

    python scripts/floor_app.py [OUTDIR]
    python scripts/floor_app.py --node-loads-everything [OUTDIR]

--node-loads-everything starts jsii's node before `components` can have it preload
components/lazy_provider_index.cjs, so node requires the whole provider index as jsii
does by default: the floor as it was before that preload, for reference.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

NODE_LOADS_EVERYTHING = "--node-loads-everything"
if NODE_LOADS_EVERYTHING in sys.argv:
    sys.argv.remove(NODE_LOADS_EVERYTHING)
    import os

    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")  # as components/__init__ does
    import constructs  # noqa: F401  starts node, without the preload

from cdktf import App, TerraformStack  # noqa: E402

from components.aws import provider  # noqa: E402  first: components/__init__ prepares the jsii runtime


def main(outdir: str) -> None:
    app = App(outdir=outdir)
    stack = TerraformStack(app, "floor")
    provider.AwsProvider(stack, "aws", region="us-east-1")
    app.synth()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "cdktf.out.floor")
