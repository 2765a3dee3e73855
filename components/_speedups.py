"""The speed-ups for synth: every trick on jsii, node and the AWS provider bindings, in one place.

They are off until the application calls ``enable()`` before its first import of a jsii
package (cdktf, constructs): main.py, scripts/floor_app.py and tests/conftest.py do.
Importing this module, ``components`` or any component changes nothing outside them: no
patched jsii, no module in ``sys.modules`` that Python did not import, no environment
variable. With ``DYNAMO_ECS_PLAIN_IMPORT=1`` in the environment ``enable()`` does nothing,
so components/aws.py imports the provider as Python would and jsii runs as shipped: for
debugging, and as the reference tests/test_provider_seam.py compares the output against.

Why: the package's ``__init__`` imports all ~2,100 generated resource modules, which
costs tens of seconds and hundreds of MB per synth. Each generated submodule only
needs the package's jsii assembly (``cdktf_cdktf_provider_aws._jsii``) to be loaded,
so we put a bare module object carrying the real package path into ``sys.modules``
under the package's name, load ``_jsii`` and then import just the submodules the
components ask for (``import_provider_module``, which components/aws.py calls).

The synthesized JSON is byte-identical to the plain import (tests/test_provider_seam.py
proves it). Failure modes: a type the jsii kernel hands back from a submodule nobody
imported comes back as an untyped proxy instead of its Python class (we only pass
values into the bindings, so synth never sees one); any code that does
``import cdktf_cdktf_provider_aws`` itself *after* the first provider submodule was imported
gets the stub, not the full package. If the full package was imported first, we simply use it.

The node side has the same problem: the jsii kernel requires the provider's JavaScript
index, which requires all ~2,100 generated JavaScript modules (~2.5 s, ~450 MB).
``enable()`` has node preload lazy_provider_index.cjs, which turns that index into
getters, so node too loads only the classes we create.

Three more speed-ups live here, all invisible in the output (scripts/bench.py measures them):

* Loading the provider's assembly still costs node ~0.1 s (jsii checks its package cache
  against the 30 MB tarball), during which Python would sit idle. We run that one kernel
  call on a thread and let the importing thread go on importing the generated submodules
  and our components; every other kernel call waits for the load (see ``_KernelGate``).
  Failure mode: if the load fails, the error is raised by the next kernel call instead of
  by the import of the first provider submodule.
* Every generated method with typed arguments runs
  ``check_type(value, typing.get_type_hints(<its type-checking stub>)[arg])`` for each
  argument and struct field: typeguard walks every value (every item of every list)
  against the Python annotations, and get_type_hints re-evaluates the same annotations
  on each call. That is a third of our Python time per stack and buys nothing: the
  jsii kernel checks the same values against the same assembly types when they arrive
  on the node side, so a wrong type still fails at the same call, with a jsii error
  ("Unable to deserialize value as ...") instead of a typeguard one. In the submodules
  we import, ``check_type`` does nothing and ``typing.get_type_hints`` remembers its
  answer per stub (the generated code only reads it). The cdktf package keeps its checks,
  and so does the plain full import (the reference the seam test compares against).
* Every read of a resource attribute (``vpc.id``, ``role.arn``) is a round trip to node
  (~0.4 ms) that mints a new token for the same reference; our components read the
  same attributes again and again (~40% of all reads). The submodules we import get a
  copy of ``jsii`` whose ``get`` hands back the token string it got the first time for
  that object and attribute: any of those tokens resolves to the same
  ``${aws_vpc.main.id}``. Only strings are remembered, and never ``*Input`` (the raw
  value last set) or ``internalValue`` (a block's current value), which change on set.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import sys
import threading
import types
import typing
from collections.abc import Callable
from pathlib import Path

import jsii
from jsii._kernel.providers import process as jsii_process

# Set to anything but "" or "0": enable() does nothing (see the module docstring).
PLAIN_IMPORT = "DYNAMO_ECS_PLAIN_IMPORT"
LAZY_PROVIDER_INDEX = Path(__file__).with_name("lazy_provider_index.cjs")
# Set in the environment, the preload prints one line per provider module node loads.
TRACE_PROVIDER_LOADS = "DYNAMO_ECS_TRACE_PROVIDER_LOADS"

_enabled = False


def plain_import_requested() -> bool:
    return os.environ.get(PLAIN_IMPORT, "") not in ("", "0")


def enable() -> None:
    """Turns the speed-ups on for this process, unless DYNAMO_ECS_PLAIN_IMPORT asks for the plain import.

    Call it before the first import of a jsii package: that import starts jsii's node
    process, and only a node started after this call preloads lazy_provider_index.cjs.
    Called later, only the Python side speeds up. Calling it again changes nothing.
    """
    global _enabled
    if _enabled or plain_import_requested():
        return
    node_process = jsii_process._NodeProcess
    node_process.start = _with_lazy_provider_index(node_process.start)  # type: ignore[method-assign]
    _enabled = True


def is_enabled() -> bool:
    return _enabled


def import_provider_module(package: str, name: str) -> types.ModuleType:
    """Imports ``<package>.<name>`` through the speed-ups; the first call puts the package's stub in place."""
    stubbed = _install_stub(package)
    module = importlib.import_module(f"{package}.{name}")
    # Generated modules end with publication.publish(): sys.modules holds a public face
    # and the functions run in the `_private` module's namespace.
    private = getattr(module, "_private", module)
    if stubbed and getattr(private, "typing", None) is typing:
        vars(private).update(_generated_module_replacements())
    return module


def _with_lazy_provider_index(start: Callable[[typing.Any], None]) -> Callable[[typing.Any], None]:
    """Wraps jsii's node start so that node preloads lazy_provider_index.cjs (why: see there).

    jsii starts node with a copy of this process's environment, so NODE_OPTIONS carries the
    preload for exactly that start and is put back right after: no other child process
    inherits it. If node already runs (a jsii package was imported before enable()),
    nothing changes but the speed.
    """

    @functools.wraps(start)
    def start_with_preload(self: typing.Any) -> None:
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

    return start_with_preload


class _KernelGate:
    """Stands in for jsii's kernel provider while the provider assembly loads on a thread.

    jsii talks to its node process over one pipe, one request at a time, so nothing
    else may reach the pipe until the load has answered: any other thread that makes a
    kernel call blocks here until then. The loading thread itself passes straight
    through, and puts the real provider back once done.
    """

    def __init__(self, kernel: typing.Any, package: str) -> None:
        self._kernel = kernel
        self._provider = kernel.provider
        self._package = package
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def load_in_background(self, load: typing.Callable[[], object]) -> None:
        def run() -> None:
            try:
                load()
            except BaseException as error:  # re-raised by the next kernel call
                self._error = error
            else:
                self._kernel.provider = self._provider

        self._thread = threading.Thread(target=run, name=f"{self._package} assembly load")
        self._kernel.provider = self
        self._thread.start()

    def __getattr__(self, name: str) -> typing.Any:
        assert self._thread is not None
        if threading.current_thread() is not self._thread:
            self._thread.join()
            if self._error is not None:
                raise self._error
        return getattr(self._provider, name)


@functools.cache
def _install_stub(package: str) -> bool:
    """Install the stub and start loading the assembly, once; False if the full package is already here."""
    if package in sys.modules:
        return False
    import cdktf  # noqa: F401  loads the constructs and cdktf assemblies, as usual

    spec = importlib.util.find_spec(package)
    if spec is None or spec.submodule_search_locations is None:
        raise ModuleNotFoundError(f"{package} is not an installed package", name=package)
    stub = types.ModuleType(package, "stub of the provider package: see components/_speedups.py")
    stub.__path__ = list(spec.submodule_search_locations)
    stub.__spec__ = spec
    stub.__file__ = spec.origin
    sys.modules[package] = stub

    # `_jsii/__init__.py` ends with `jsii.JSIIAssembly.load(<the provider's assembly>)`, the
    # slow call. While that module runs, `load` hands back the assembly record at once and
    # does the real work on a thread, behind the gate.
    assembly_type = jsii.JSIIAssembly
    real_load = assembly_type.__dict__["load"]  # the classmethod object, to put back as is

    def load_later(cls: type, *args: typing.Any, **kwargs: typing.Any) -> typing.Any:
        gate = _KernelGate(jsii.kernel, package)
        gate.load_in_background(lambda: real_load.__func__(cls, *args, **kwargs))
        return cls(*args, **kwargs)

    assembly_type.load = classmethod(load_later)  # type: ignore[method-assign,assignment]
    try:
        importlib.import_module(f"{package}._jsii")
    finally:
        assembly_type.load = real_load  # type: ignore[method-assign]
    return True


class _TokenReads:
    """``jsii.get`` for the generated modules, remembering attribute tokens (module docstring)."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str], str] = {}

    def get(self, obj: typing.Any, property: str) -> typing.Any:
        if property.endswith("Input") or property == "internalValue":
            return jsii.get(obj, property)
        key = (obj.__jsii_ref__.ref, property)
        token = self._tokens.get(key)
        if token is None:
            token = jsii.get(obj, property)
            if not isinstance(token, str):
                return token
            self._tokens[key] = token
        return token

    def set(self, obj: typing.Any, property: str, value: typing.Any) -> None:
        self._tokens.pop((obj.__jsii_ref__.ref, property), None)
        jsii.set(obj, property, value)

    def module(self) -> types.ModuleType:
        """A copy of the jsii module with these get and set."""
        module = types.ModuleType("jsii")
        vars(module).update(jsii.__dict__, get=self.get, set=self.set)
        return module


def _typing_with_cached_hints() -> types.ModuleType:
    """A stand-in for the `typing` module whose get_type_hints is memoized per stub."""
    module = types.ModuleType("typing")
    # The generated code only reads the dict it gets back, never changes it.
    vars(module).update(typing.__dict__, get_type_hints=functools.cache(typing.get_type_hints))
    return module


def _no_check(argname: str, value: object, expected_type: typing.Any) -> None:
    """Replaces the generated modules' typeguard check: see the module docstring."""


@functools.cache
def _generated_module_replacements() -> dict[str, object]:
    """What the namespace of each generated submodule we import gets instead (one set for all of them)."""
    return {"typing": _typing_with_cached_hints(), "check_type": _no_check, "jsii": _TokenReads().module()}
