"""Grad mode and anomaly mode (``tm.autograd.grad_mode``); they live in ``_grad_mode`` so that
the Tensor module can import them without importing the autograd package."""

from .._grad_mode import __all__ as __all__
from .._grad_mode import (  # noqa: F401
    _Mode,
    detect_anomaly,
    enable_grad,
    inference_mode,
    is_anomaly_enabled,
    is_grad_enabled,
    is_inference_mode_enabled,
    no_grad,
    set_anomaly_detection,
    set_grad_enabled,
)
