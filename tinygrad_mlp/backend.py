"""The one place that imports numpy and CuPy: array modules, devices and random numbers."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

__all__ = [
    "np",
    "DEVICES",
    "default_device",
    "set_default_device",
    "get_array_module",
    "array_module_of",
    "device_of",
    "to_device",
    "to_numpy",
    "cupy_available",
    "manual_seed",
    "rng",
]

DEVICES = ("cpu", "cuda")
_CUDA_INSTALL_HINT = 'install the CUDA extra with: pip install -e ".[cuda]"'

_cupy: Any = None  # the imported cupy module, once asked for


def _normalise_device(device: str | None) -> str:
    """Map None, 'cpu', 'cuda' and 'cuda:0' to a device name, refusing anything else."""
    if device is None:
        return _default_device
    if not isinstance(device, str):
        raise TypeError(f"device must be a string such as 'cpu' or 'cuda', got {device!r}")
    name = device.lower()
    if name.startswith("cuda:"):
        name = "cuda"
    if name not in DEVICES:
        raise ValueError(f"unknown device {device!r}; expected one of {DEVICES}")
    return name


def _load_cupy() -> Any:
    """Import CuPy and check that a GPU is there, with an error that says what is missing."""
    global _cupy
    if _cupy is not None:
        return _cupy
    try:
        import cupy
    except ImportError as e:
        raise ImportError(
            f"device 'cuda' needs CuPy, which is not installed; {_CUDA_INSTALL_HINT}"
        ) from e
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # CuPy raises its own CUDARuntimeError when no driver is present
        raise RuntimeError(f"device 'cuda' needs an NVIDIA GPU, but CUDA reports none: {e}") from e
    if count < 1:
        raise RuntimeError("device 'cuda' needs an NVIDIA GPU, but CUDA reports none")
    _cupy = cupy
    return cupy


def cupy_available() -> bool:
    """True when CuPy is installed and can see at least one GPU."""
    try:
        _load_cupy()
    except (ImportError, RuntimeError):
        return False
    return True


def _env_default_device() -> str:
    value = os.environ.get("TINYGRAD_MLP_DEVICE", "cpu") or "cpu"
    name = value.lower()
    if name.startswith("cuda:"):
        name = "cuda"
    if name not in DEVICES:
        raise ValueError(
            f"TINYGRAD_MLP_DEVICE={value!r} is not a device; expected one of {DEVICES}"
        )
    return name


_default_device = _env_default_device()


def default_device() -> str:
    """The device new tensors go to: 'cpu' unless TINYGRAD_MLP_DEVICE or set_default_device say."""
    return _default_device


def set_default_device(device: str) -> None:
    """Set the device that new tensors go to ('cpu' or 'cuda')."""
    global _default_device
    name = _normalise_device(device)
    if name == "cuda":
        _load_cupy()
    _default_device = name


def get_array_module(device: str | None = None) -> Any:
    """The array module (numpy or cupy) for a device name."""
    name = _normalise_device(device)
    return np if name == "cpu" else _load_cupy()


def array_module_of(array: Any) -> Any:
    """The array module an array belongs to."""
    if isinstance(array, np.ndarray) or _cupy is None:
        return np
    return _cupy if isinstance(array, _cupy.ndarray) else np


def device_of(array: Any) -> str:
    """'cpu' for numpy arrays, 'cuda' for CuPy arrays."""
    if _cupy is not None and isinstance(array, _cupy.ndarray):
        return "cuda"
    return "cpu"


def is_array(obj: Any) -> bool:
    """True for numpy and CuPy arrays."""
    return isinstance(obj, np.ndarray) or (_cupy is not None and isinstance(obj, _cupy.ndarray))


def to_device(array: Any, device: str | None) -> Any:
    """Move an array to a device, copying only when it is elsewhere."""
    name = _normalise_device(device)
    here = device_of(array)
    if here == name:
        return array
    if name == "cuda":
        return _load_cupy().asarray(array)
    return _cupy.asnumpy(array)


def to_numpy(array: Any) -> np.ndarray:
    """A host numpy array for any numpy or CuPy array."""
    if _cupy is not None and isinstance(array, _cupy.ndarray):
        return _cupy.asnumpy(array)
    return np.asarray(array)


def looks_like_cupy(obj: Any) -> bool:
    """True for a CuPy array even before this module has imported CuPy."""
    return type(obj).__module__.startswith("cupy")


_rng = np.random.default_rng()


def manual_seed(seed: int) -> None:
    """Seed the generator behind every random initialisation and dropout mask."""
    global _rng
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    _rng = np.random.default_rng(int(seed))


def rng() -> np.random.Generator:
    """The global numpy random generator (random numbers are drawn on the host)."""
    return _rng
