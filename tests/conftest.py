"""Test configuration: the Hypothesis profiles.

`ci` (the default) is bounded and reproducible; `dev` draws more examples for local bug hunting.
Pick one with HYPOTHESIS_PROFILE=dev; GPU tests detect CuPy themselves (tests/device/test_cuda.py).
"""

from __future__ import annotations

import os

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
