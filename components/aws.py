"""The only gate to the prebuilt AWS provider bindings (cdktf-cdktf-provider-aws).

Why: the package's ``__init__`` imports all ~2,100 generated resource modules, which
costs tens of seconds and hundreds of MB per synth. Each generated submodule only
needs the package's jsii assembly (``cdktf_cdktf_provider_aws._jsii``) to be loaded,
so we put a bare module object carrying the real package path into ``sys.modules``
under the package's name, load ``_jsii`` and then import just the submodules the
components ask for, as attributes of this module::

    from components.aws import ecs_cluster
    ecs_cluster.EcsCluster(scope, "cluster", name=...)

The synthesized JSON is byte-identical to the plain import (tests/test_provider_seam.py
proves it). Failure modes: a type the jsii kernel hands back from a submodule nobody
imported comes back as an untyped proxy instead of its Python class (we only pass
values into the bindings, so synth never sees one); any code that does
``import cdktf_cdktf_provider_aws`` itself *after* this module ran gets the stub, not
the full package. If the full package was imported first, we simply use it.

The node side has the same problem: the jsii kernel requires the provider's JavaScript
index, which requires all ~2,100 generated JavaScript modules (~2.5 s, ~450 MB). The
package's ``__init__`` (components/__init__.py) has node preload lazy_provider_index.cjs,
which turns that index into getters, so node too loads only the classes we create.

Three more speed-ups live here, all invisible in the output (scripts/bench.py measures them):

* Loading the provider's assembly still costs node ~0.1 s (jsii checks its package cache
  against the 30 MB tarball), during which Python would sit idle. We run that one kernel
  call on a thread and let the importing thread go on importing the generated submodules
  and our components; every other kernel call waits for the load (see ``_KernelGate``).
  Failure mode: if the load fails, the error is raised by the next kernel call instead of
  by the import of this module.
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
import importlib.metadata
import importlib.util
import sys
import threading
import types
import typing

import jsii

from components import ProviderVersionError

PACKAGE = "cdktf_cdktf_provider_aws"
DISTRIBUTION = "cdktf-cdktf-provider-aws"
# 20.1.0 is the release generated from hashicorp/aws 5.100.0, the provider the
# machines here mirror; other releases generate different resource schemas.
PINNED_VERSION = "20.1.0"
PROVIDER_VERSION = "5.100.0"


def _check_version() -> None:
    try:
        installed = importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise ProviderVersionError(
            f"{DISTRIBUTION} is not installed; run `make synth` (it installs {DISTRIBUTION}=={PINNED_VERSION})"
        ) from None
    if installed != PINNED_VERSION:
        raise ProviderVersionError(
            f"{DISTRIBUTION} {installed} is installed but this project is built on "
            f"{PINNED_VERSION} (hashicorp/aws {PROVIDER_VERSION}); reinstall with `make synth`"
        )


class _KernelGate:
    """Stands in for jsii's kernel provider while the provider assembly loads on a thread.

    jsii talks to its node process over one pipe, one request at a time, so nothing
    else may reach the pipe until the load has answered: any other thread that makes a
    kernel call blocks here until then. The loading thread itself passes straight
    through, and puts the real provider back once done.
    """

    def __init__(self, kernel: typing.Any) -> None:
        self._kernel = kernel
        self._provider = kernel.provider
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

        self._thread = threading.Thread(target=run, name=f"{PACKAGE} assembly load")
        self._kernel.provider = self
        self._thread.start()

    def __getattr__(self, name: str) -> typing.Any:
        assert self._thread is not None
        if threading.current_thread() is not self._thread:
            self._thread.join()
            if self._error is not None:
                raise self._error
        return getattr(self._provider, name)


def _install_stub() -> bool:
    """Install the stub and start loading the assembly; False if the full package is already here."""
    if PACKAGE in sys.modules:
        return False
    import cdktf  # noqa: F401  loads the constructs and cdktf assemblies, as usual

    spec = importlib.util.find_spec(PACKAGE)
    stub = types.ModuleType(PACKAGE, "stub of the provider package: see components/aws.py")
    stub.__path__ = list(spec.submodule_search_locations)
    stub.__spec__ = spec
    stub.__file__ = spec.origin
    sys.modules[PACKAGE] = stub

    # `_jsii/__init__.py` ends with `jsii.JSIIAssembly.load(<the provider's assembly>)`, the
    # slow call. While that module runs, `load` hands back the assembly record at once and
    # does the real work on a thread, behind the gate.
    assembly_type = jsii.JSIIAssembly
    real_load = assembly_type.__dict__["load"]  # the classmethod object, to put back as is

    def load_later(cls: type, *args: typing.Any, **kwargs: typing.Any) -> typing.Any:
        _KernelGate(jsii.kernel).load_in_background(lambda: real_load.__func__(cls, *args, **kwargs))
        return cls(*args, **kwargs)

    assembly_type.load = classmethod(load_later)
    try:
        importlib.import_module(f"{PACKAGE}._jsii")
    finally:
        assembly_type.load = real_load
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
        module.__dict__.update(jsii.__dict__)
        module.get = self.get
        module.set = self.set
        return module


def _typing_with_cached_hints() -> types.ModuleType:
    """A stand-in for the `typing` module whose get_type_hints is memoized per stub."""
    module = types.ModuleType("typing")
    module.__dict__.update(typing.__dict__)
    # The generated code only reads the dict it gets back, never changes it.
    module.get_type_hints = functools.cache(typing.get_type_hints)
    return module


def _no_check(argname: str, value: object, expected_type: typing.Any) -> None:
    """Replaces the generated modules' typeguard check: see the module docstring."""


_check_version()
_STUBBED = _install_stub()
_TYPING = _typing_with_cached_hints()
_JSII = _TokenReads().module()


def __getattr__(name: str) -> types.ModuleType:
    if name.startswith("__"):
        raise AttributeError(name)
    module = importlib.import_module(f"{PACKAGE}.{name}")
    # Generated modules end with publication.publish(): sys.modules holds a public face
    # and the functions run in the `_private` module's namespace.
    private = getattr(module, "_private", module)
    if _STUBBED and getattr(private, "typing", None) is typing:
        private.typing = _TYPING
        private.check_type = _no_check
        private.jsii = _JSII
    globals()[name] = module
    return module
