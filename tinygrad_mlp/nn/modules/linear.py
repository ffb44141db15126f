"""Linear and Identity."""

from __future__ import annotations

import math
from typing import Any

from ... import backend
from ..._tensor import Tensor
from ...backend import np
from .. import functional as F
from .module import Module, Parameter

__all__ = ["Linear", "Identity", "Bilinear"]


def _check_features(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"Linear: {name} must be a positive int, got {value!r}")
    return int(value)


def _dtype(dtype: Any) -> Any:
    return np.float32 if dtype is None else np.dtype(getattr(dtype, "np", dtype))


class Linear(Module):
    """y = x @ weight.T + bias, with weight (out_features, in_features) as in PyTorch.

    Weight and bias start uniform in +-1/sqrt(in_features), PyTorch's default.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        if not isinstance(device, (str, type(None))) and dtype is None:
            device, dtype = None, device  # older code passed dtype before device
        self.in_features = _check_features("in_features", in_features)
        self.out_features = _check_features("out_features", out_features)
        bound = 1 / math.sqrt(self.in_features)
        gen = backend.rng()
        dtype = _dtype(dtype)
        w = gen.uniform(-bound, bound, (self.out_features, self.in_features))
        self.weight = Parameter(w, dtype=dtype, device=device)
        if bias:
            b = gen.uniform(-bound, bound, self.out_features)
            self.bias = Parameter(b, dtype=dtype, device=device)
        else:
            self.register_parameter("bias", None)

    def forward(self, input: Tensor) -> Tensor:
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


class Identity(Module):
    """Returns its input (any arguments are ignored, as in PyTorch)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def forward(self, input: Any) -> Any:
        return input


class Bilinear(Module):
    """y_o = x1^T W_o x2 + b_o, with weight (out_features, in1_features, in2_features); weight
    and bias start uniform in +-1/sqrt(in1_features), PyTorch's default."""

    def __init__(
        self,
        in1_features: int,
        in2_features: int,
        out_features: int,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        self.in1_features = _check_features("in1_features", in1_features)
        self.in2_features = _check_features("in2_features", in2_features)
        self.out_features = _check_features("out_features", out_features)
        bound = 1 / math.sqrt(self.in1_features)
        gen = backend.rng()
        dtype = _dtype(dtype)
        shape = (self.out_features, self.in1_features, self.in2_features)
        self.weight = Parameter(gen.uniform(-bound, bound, shape), dtype=dtype, device=device)
        if bias:
            b = gen.uniform(-bound, bound, self.out_features)
            self.bias = Parameter(b, dtype=dtype, device=device)
        else:
            self.register_parameter("bias", None)

    def forward(self, input1: Tensor, input2: Tensor) -> Tensor:
        return F.bilinear(input1, input2, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (
            f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
            f"out_features={self.out_features}, bias={self.bias is not None}"
        )
