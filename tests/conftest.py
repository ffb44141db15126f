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
    """Import every module of the package before the first test runs. Hypothesis also draws
    values from the literals of the local modules loaded when a test runs, so without this the
    examples of a test would depend on which tests ran before it in the same process (its
    order, or the xdist worker it lands on)."""
    import tinygrad_mlp

    for module in pkgutil.walk_packages(tinygrad_mlp.__path__, "tinygrad_mlp."):
        try:
            importlib.import_module(module.name)
        except ImportError:  # a module that needs an optional dependency
            pass
