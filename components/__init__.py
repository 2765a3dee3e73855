"""One cdktf construct per part of the Dynamo platform; stack.py wires them.

Importing this package or any module in it changes nothing outside it. The speed-ups for
jsii and node are off until the application calls ``components._speedups.enable()``
before its first jsii import, as main.py does.
"""


class ProviderVersionError(RuntimeError):
    """The installed provider bindings are not the release this project is built on."""
