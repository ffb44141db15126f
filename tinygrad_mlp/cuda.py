"""``tm.cuda``: what a PyTorch script asks of ``torch.cuda`` (is a GPU there, how many, wait
for it), answered by the CuPy backend."""

from __future__ import annotations

from . import backend

__all__ = ["is_available", "device_count", "current_device", "synchronize", "manual_seed"]


def is_available() -> bool:
    """True when CuPy is installed and sees a GPU (or the simulated device is selected)."""
    return backend.cupy_available()


def device_count() -> int:
    """The number of GPUs CuPy sees (0 without CuPy or a GPU)."""
    if not is_available():
        return 0
    return int(backend.get_array_module("cuda").cuda.runtime.getDeviceCount())


def current_device() -> int:
    """The index of the GPU in use (this backend uses one)."""
    if not is_available():
        raise RuntimeError(f"no CUDA GPU is available; {backend._CUDA_INSTALL_HINT}")
    return 0


def synchronize(device: object = None) -> None:
    """Wait until the GPU has finished its queued work (nothing to do without one)."""
    if is_available():
        backend.get_array_module("cuda").cuda.Device().synchronize()


def manual_seed(seed: int) -> None:
    """Seed the random numbers (drawn on the host for every device): ``tm.manual_seed``."""
    backend.manual_seed(seed)


manual_seed_all = manual_seed
