"""BatchNorm1d and LayerNorm, with PyTorch's parameters, buffers and state-dict keys."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

from ... import backend
from ..._tensor import Tensor
from ...backend import np
from ...ops import ShapeError
from .. import functional as F
from .linear import _dtype
from .module import Module, Parameter

__all__ = [
    "BatchNorm1d",
    "BatchNorm2d",
    "LayerNorm",
    "GroupNorm",
    "InstanceNorm1d",
    "InstanceNorm2d",
]


def _buffer(array: Any, device: Any) -> Tensor:
    return Tensor._wrap(backend.to_device(array, device), False, None)


def _channel_state(
    m: Module, c: int, affine: bool, bias: bool, track: bool, dtype: Any, device: Any
) -> None:
    """A per-channel norm's parameters (weight 1, bias 0, when ``affine``) and its running
    statistics (mean 0, variance 1, a batch count, when ``track``); None where absent."""
    if affine:
        m.weight = Parameter(np.ones(c, dtype=dtype), device=device)
        if bias:
            m.bias = Parameter(np.zeros(c, dtype=dtype), device=device)
        else:
            m.register_parameter("bias", None)
    else:
        m.register_parameter("weight", None)
        m.register_parameter("bias", None)
    stats = {
        "running_mean": np.zeros(c, dtype=dtype),
        "running_var": np.ones(c, dtype=dtype),
        "num_batches_tracked": np.array(0, dtype=np.int64),
    }
    for name, value in stats.items():
        m.register_buffer(name, _buffer(value, device) if track else None)


class BatchNorm1d(Module):
    """Batch normalisation over (N, C) or (N, C, L) input, as torch.nn.BatchNorm1d.

    Training normalises by the batch's mean and biased variance and updates the running
    statistics: r = (1 - momentum) r + momentum * stat, with the unbiased variance; with
    ``momentum=None`` the factor is 1 / num_batches_tracked (a cumulative average). Evaluation
    normalises by the running statistics (or by the batch's, without ``track_running_stats``).
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device: Any = None,
        dtype: Any = None,
        *,
        bias: bool = True,
    ) -> None:
        if isinstance(num_features, bool) or not isinstance(num_features, numbers.Integral):
            raise TypeError(f"num_features must be an int, got {num_features!r}")
        if num_features <= 0:
            raise ValueError(f"num_features must be positive, got {num_features}")
        self.num_features = int(num_features)
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        dtype = _dtype(dtype)
        c = self.num_features
        self._has_bias = bias
        _channel_state(self, c, affine, bias, track_running_stats, dtype, device)

    def reset_running_stats(self) -> None:
        """Running mean 0, running variance 1, no batches tracked."""
        if self.track_running_stats:
            self.running_mean._data[...] = 0
            self.running_var._data[...] = 1
            self.num_batches_tracked._data[...] = 0

    def reset_parameters(self) -> None:
        """Running statistics reset; weight 1, bias 0."""
        self.reset_running_stats()
        if self.affine:
            self.weight._data[...] = 1
            if self.bias is not None:
                self.bias._data[...] = 0

    _input_dims = (2, 3)  # the input dims accepted, for the message: "2D or 3D"

    def forward(self, input: Tensor) -> Tensor:
        if input.ndim not in self._input_dims:
            dims = " or ".join(f"{d}D" for d in self._input_dims)
            raise ValueError(f"expected {dims} input (got {input.ndim}D input)")
        if input.shape[1] != self.num_features:
            raise ShapeError(  # a RuntimeError, as PyTorch's
                f"running_mean should contain {input.shape[1]} elements not {self.num_features}"
                if self.track_running_stats
                else f"expected {self.num_features} channels (dim 1), got input of shape "
                f"{tuple(input.shape)}"
            )
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked._data += 1
            if self.momentum is None:  # a cumulative moving average
                factor = 1.0 / float(self.num_batches_tracked._data)
        use_batch = self.training or not self.track_running_stats
        tracked = not self.training or self.track_running_stats
        return F.batch_norm(
            input,
            self.running_mean if tracked else None,
            self.running_var if tracked else None,
            self.weight,
            self.bias,
            use_batch,
            factor,
            self.eps,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, bias={self._has_bias}, "
            f"track_running_stats={self.track_running_stats}"
        )


class BatchNorm2d(BatchNorm1d):
    """Batch normalisation of each channel of (N, C, H, W) input, as torch.nn.BatchNorm2d."""

    _input_dims = (4,)


class LayerNorm(Module):
    """Normalise over the last dims ``normalized_shape`` (mean and biased variance), then scale
    by ``weight`` and shift by ``bias``, as torch.nn.LayerNorm."""

    def __init__(
        self,
        normalized_shape: int | Sequence[int],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        if isinstance(normalized_shape, numbers.Integral):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(int(n) for n in normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        self._has_bias = bias
        dtype = _dtype(dtype)
        if elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, dtype=dtype), device=device)
            if bias:
                self.bias = Parameter(np.zeros(self.normalized_shape, dtype=dtype), device=device)
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, input: Tensor) -> Tensor:
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, "
            f"elementwise_affine={self.elementwise_affine}, bias={self._has_bias}"
        )


class GroupNorm(Module):
    """Normalise each of ``num_groups`` groups of channels of each sample by its own mean and
    biased variance, then scale and shift per channel, as torch.nn.GroupNorm."""

    def __init__(
        self,
        num_groups: int,
        num_channels: int,
        eps: float = 1e-5,
        affine: bool = True,
        device: Any = None,
        dtype: Any = None,
        *,
        bias: bool = True,
    ) -> None:
        if num_channels % num_groups:
            raise ValueError("num_channels must be divisible by num_groups")
        self.num_groups = int(num_groups)
        self.num_channels = int(num_channels)
        self.eps = eps
        self.affine = affine
        self._has_bias = affine and bias
        dtype = _dtype(dtype)
        if affine:
            self.weight = Parameter(np.ones(num_channels, dtype=dtype), device=device)
            if bias:
                self.bias = Parameter(np.zeros(num_channels, dtype=dtype), device=device)
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, input: Tensor) -> Tensor:
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
            f"bias={self._has_bias}"
        )


class _InstanceNorm(Module):
    _ndim = 0  # the number of spatial dims

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.1,
        affine: bool = False,
        track_running_stats: bool = False,
        device: Any = None,
        dtype: Any = None,
        *,
        bias: bool = True,
    ) -> None:
        self.num_features = int(num_features)
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        self._has_bias = affine and bias
        dtype = _dtype(dtype)
        c = self.num_features
        _channel_state(self, c, affine, bias, track_running_stats, dtype, device)

    def forward(self, input: Tensor) -> Tensor:
        n = self._ndim
        if input.ndim not in (n + 1, n + 2):
            raise ValueError(f"expected {n + 1}D or {n + 2}D input (got {input.ndim}D input)")
        unbatched = input.ndim == n + 1
        x = input.unsqueeze(0) if unbatched else input
        if self.affine and x.shape[1] != self.num_features:
            raise ValueError(
                f"expected input's size at dim=1 to match num_features ({self.num_features}), "
                f"but got: {x.shape[1]}."
            )
        use_input_stats = self.training or not self.track_running_stats
        if self.training and self.track_running_stats:
            self.num_batches_tracked._data += 1
        out = F.instance_norm(
            x,
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            use_input_stats,
            self.momentum,
            self.eps,
        )
        return out.squeeze(0) if unbatched else out

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, bias={self._has_bias}, "
            f"track_running_stats={self.track_running_stats}"
        )


class InstanceNorm1d(_InstanceNorm):
    """Instance normalisation of (N, C, L) or (C, L) input, as torch.nn.InstanceNorm1d."""

    _ndim = 1


class InstanceNorm2d(_InstanceNorm):
    """Instance normalisation of (N, C, H, W) or (C, H, W) input, as torch.nn.InstanceNorm2d."""

    _ndim = 2
