"""The floor for scripts/bench.py: the smallest cdktf app that still pays for the AWS provider.

One stack holding only the AWS provider block, the provider loaded module by module
through the same speed-ups as the real app (components/_speedups.py), in Python and in
node. Nothing a synth of ours does can be cheaper than this, so bench.py reports ours/floor.

    python scripts/floor_app.py [OUTDIR]
    python scripts/floor_app.py --node-loads-everything [OUTDIR]

--node-loads-everything starts jsii's node before the speed-ups are enabled, so node
does not preload components/lazy_provider_index.cjs and requires the whole provider
index as jsii does by default: the floor as it was before that preload, for reference.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")  # as main.py does

NODE_LOADS_EVERYTHING = "--node-loads-everything"
if NODE_LOADS_EVERYTHING in sys.argv:
    sys.argv.remove(NODE_LOADS_EVERYTHING)
    import constructs  # noqa: F401  starts node, before enable() below can have it preload

from components import _speedups  # noqa: E402

_speedups.enable()  # before cdktf is imported, as in main.py

from cdktf import App, TerraformStack  # noqa: E402

from components.aws import provider  # noqa: E402


def main(outdir: str) -> None:
    app = App(outdir=outdir)
    stack = TerraformStack(app, "floor")
    provider.AwsProvider(stack, "aws", region="us-east-1")
    app.synth()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "cdktf.out.floor")
