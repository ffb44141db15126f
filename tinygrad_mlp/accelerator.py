"""``tm.accelerator``: the device-neutral questions of PyTorch's newer tutorials (is there an
accelerator, which one)."""

from __future__ import annotations

from . import cuda as _cuda
from ._device import device

__all__ = ["is_available", "current_accelerator", "device_count"]


def is_available() -> bool:
    """True when an accelerator (here: a CUDA device) can be used."""
    return _cuda.is_available()


def current_accelerator(check_available: bool = False) -> device | None:
    """The accelerator's device type (``device(type='cuda')``), or None without one."""
    if not _cuda.is_available():
        return None
    return device("cuda")


def device_count() -> int:
    """The number of accelerator devices."""
    return _cuda.device_count()
