"""Test configuration: Hypothesis profiles and CuPy detection."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

import tinygrad_mlp as tm

# `ci`: bounded and reproducible, the default; `dev`: more examples for local hunting.
settings.register_profile(
    "ci",
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "dev",
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or "ci")


@pytest.fixture(scope="session")
def cuda_available() -> bool:
    """True when CuPy is installed and sees a GPU."""
    return tm.cupy_available()
