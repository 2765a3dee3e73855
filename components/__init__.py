"""One cdktf construct per part of the Dynamo platform; stack.py wires them.

Importing this package also prepares the jsii kernel's node process, which the first
import of a jsii package (cdktf, constructs) starts, so it must happen before that.
"""

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jsii._kernel.providers import process as _jsii_process

# jsii 1.142 prints a ten-line banner on every synth when Node 20 runs it; Node 20
# works for what we do, and the banner would bury the one-line-per-stack summary.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

LAZY_PROVIDER_INDEX = Path(__file__).with_name("lazy_provider_index.cjs")
# Set in the environment, the preload prints one line per provider module node loads.
TRACE_PROVIDER_LOADS = "DYNAMO_ECS_TRACE_PROVIDER_LOADS"


def _with_lazy_provider_index(start: Callable[[Any], None]) -> Callable[[Any], None]:
    """Wraps jsii's node start so that node preloads lazy_provider_index.cjs (why: see there).

    jsii starts node with a copy of this process's environment, so NODE_OPTIONS carries the
    preload for exactly that start and is put back right after: no other child process
    inherits it. If node already runs (a jsii package was imported before this package),
    nothing changes but the speed.
    """

    @functools.wraps(start)
    def start_with_preload(self: Any) -> None:
        before = os.environ.get("NODE_OPTIONS")
        preload = f'--require "{LAZY_PROVIDER_INDEX}"'
        os.environ["NODE_OPTIONS"] = f"{before} {preload}" if before else preload
        try:
            start(self)
        finally:
            if before is None:
                del os.environ["NODE_OPTIONS"]
            else:
                os.environ["NODE_OPTIONS"] = before

    start_with_preload.preloads_lazy_provider_index = True
    return start_with_preload


if not getattr(_jsii_process._NodeProcess.start, "preloads_lazy_provider_index", False):
    _jsii_process._NodeProcess.start = _with_lazy_provider_index(_jsii_process._NodeProcess.start)


class ProviderVersionError(RuntimeError):
    """The installed provider bindings are not the release this project is built on."""
