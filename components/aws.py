"""The only gate to the prebuilt AWS provider bindings (cdktf-cdktf-provider-aws).

Why: the package's ``__init__`` imports all ~1,500 generated resource modules, which
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
"""
from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import sys
import types

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


def _install_stub() -> None:
    if PACKAGE in sys.modules:
        return
    spec = importlib.util.find_spec(PACKAGE)
    stub = types.ModuleType(PACKAGE, "stub of the provider package: see components/aws.py")
    stub.__path__ = list(spec.submodule_search_locations)
    stub.__spec__ = spec
    stub.__file__ = spec.origin
    sys.modules[PACKAGE] = stub
    importlib.import_module(f"{PACKAGE}._jsii")


_check_version()
_install_stub()


def __getattr__(name: str) -> types.ModuleType:
    if name.startswith("__"):
        raise AttributeError(name)
    module = importlib.import_module(f"{PACKAGE}.{name}")
    globals()[name] = module
    return module
