"""``tm.backends``: what a PyTorch script asks of ``torch.backends`` before it picks a device
(is MPS there, is CUDA built, cuDNN's flags), answered for this library's devices."""

from __future__ import annotations

from . import cuda as _cuda

__all__ = ["mps", "cuda", "cudnn"]


class _MPS:
    """Apple's Metal device, which this library does not drive."""

    def is_available(self) -> bool:
        """Always False: there is no MPS backend."""
        return False

    def is_built(self) -> bool:
        """Always False: there is no MPS backend."""
        return False


class _CUDA:
    """The CUDA device (through CuPy)."""

    def is_built(self) -> bool:
        """True when a CUDA device can be used (CuPy with a GPU, or the simulated device)."""
        return _cuda.is_available()


class _CuDNN:
    """cuDNN's switches: accepted and kept, with nothing to tune here (numpy and CuPy kernels
    are deterministic and chosen without benchmarking)."""

    def __init__(self) -> None:
        self.enabled = True
        self.benchmark = False
        self.deterministic = False
        self.allow_tf32 = True

    def is_available(self) -> bool:
        """True when a CUDA device can be used."""
        return _cuda.is_available()

    def version(self) -> int | None:
        """None: this library does not call cuDNN."""
        return None


mps = _MPS()
cuda = _CUDA()
cudnn = _CuDNN()


_deterministic = {"mode": False, "warn_only": False}


def use_deterministic_algorithms(mode: bool, *, warn_only: bool = False) -> None:
    """Ask for deterministic algorithms only (``torch.use_deterministic_algorithms``): kept and
    reported; every kernel here already gives the same result on each run."""
    if not isinstance(mode, bool):
        raise TypeError(
            f"use_deterministic_algorithms expects a bool, but got {type(mode).__name__}"
        )
    _deterministic.update(mode=mode, warn_only=bool(warn_only))


def are_deterministic_algorithms_enabled() -> bool:
    """True after ``use_deterministic_algorithms(True)``."""
    return _deterministic["mode"]


def is_deterministic_algorithms_warn_only_enabled() -> bool:
    """True after ``use_deterministic_algorithms(True, warn_only=True)``."""
    return _deterministic["mode"] and _deterministic["warn_only"]
