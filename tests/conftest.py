"""Test configuration: the Hypothesis profiles.

`ci` (the default) is bounded and reproducible; `dev` draws more examples for local bug hunting.
Pick one with HYPOTHESIS_PROFILE=dev; GPU tests detect CuPy themselves (tests/device/test_cuda.py).
"""

from __future__ import annotations

import importlib
import os
import pkgutil

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "dev",
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or "ci")


def pytest_collection_finish(session):
    """Hypothesis also draws values from the literals of the local modules loaded when a test
    runs (not test files), so a test's examples would depend on which tests ran before it in
    the same process (its order, or the xdist worker it lands on). Here every module of the
    package is imported, and the constants Hypothesis uses are fixed to those of the package,
    so every run, whole or in part, in one process or several, draws the same examples."""
    import tinygrad_mlp

    modules = []
    for info in pkgutil.walk_packages(tinygrad_mlp.__path__, "tinygrad_mlp."):
        try:
            modules.append(importlib.import_module(info.name))
        except ImportError:  # a module that needs an optional dependency
            pass
    try:  # Hypothesis's internals: where they differ, its own behaviour stays
        from hypothesis.internal.conjecture import providers
        from hypothesis.internal.constants_ast import Constants, constants_from_module
    except ImportError:
        return
    if not hasattr(providers, "_get_local_constants"):
        return
    frozen = Constants()
    for module in [tinygrad_mlp, *modules]:
        frozen |= constants_from_module(module)
    providers._get_local_constants = lambda: frozen
    providers.CONSTANTS_CACHE.cache.clear()
