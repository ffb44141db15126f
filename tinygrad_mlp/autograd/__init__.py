"""Reverse-mode automatic differentiation: the engine, grad modes and gradient checks."""

from .._tensor import (
    detect_anomaly,
    enable_grad,
    grad,
    is_anomaly_enabled,
    is_grad_enabled,
    no_grad,
    set_anomaly_detection,
)
from .gradcheck import GradcheckError, gradcheck

__all__ = [
    "grad",
    "no_grad",
    "enable_grad",
    "is_grad_enabled",
    "set_anomaly_detection",
    "detect_anomaly",
    "is_anomaly_enabled",
    "gradcheck",
    "GradcheckError",
]
