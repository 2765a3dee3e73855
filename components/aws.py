"""The only gate to the prebuilt AWS provider bindings (cdktf-cdktf-provider-aws).

Components import the generated submodules they use as attributes of this module::

    from components.aws import ecs_cluster
    ecs_cluster.EcsCluster(scope, "cluster", name=...)

By itself this imports ``cdktf_cdktf_provider_aws.<name>`` as Python would, which imports
the whole package: ~2,100 generated modules in Python and in node, ~10 s and ~1.2 GB per
synth. Once the application has called ``components._speedups.enable()`` (main.py does),
the same submodules come through the speed-ups instead: only what is used is loaded, and
the output is byte-identical (components/_speedups.py explains how).

Either way, importing this module checks that the installed bindings are the pinned release
and raises ProviderVersionError if not (main.py reports it in one line).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import types

from components import ProviderVersionError, _speedups

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


_check_version()


def __getattr__(name: str) -> types.ModuleType:
    if name.startswith("__"):
        raise AttributeError(name)
    if _speedups.is_enabled():
        module = _speedups.import_provider_module(PACKAGE, name)
    else:
        module = importlib.import_module(f"{PACKAGE}.{name}")
    globals()[name] = module
    return module
