"""One cdktf construct per part of the Dynamo platform; stack.py wires them."""
import os

# jsii 1.142 prints a ten-line banner on every synth when Node 20 runs it; Node 20
# works for what we do, and the banner would bury the one-line-per-stack summary.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


class ProviderVersionError(RuntimeError):
    """The installed provider bindings are not the release this project is built on."""
