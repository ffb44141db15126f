"""The registry's machinery: Op, Sample, register, the registry OPS itself, the errors the
forwards raise and norm_axes, the axis argument every reduction reads."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class ShapeError(RuntimeError, ValueError):
    """Raised by an op's forward whose message already names the op and shapes: a RuntimeError
    as in PyTorch (and a ValueError, as before)."""


class DTypeError(RuntimeError, TypeError):
    """Raised by an op's forward whose message already names the op and dtypes: a RuntimeError
    as in PyTorch (and a TypeError, as before)."""


@dataclass(frozen=True)
class Sample:
    """How to build valid inputs for gradient checks of an op.

    ``shapes(n, m)`` gives the input shapes from two small sizes; ``domains`` names the value range
    of each input ("real", "positive", "nonzero" = away from 0, "unit" = inside (0, 1),
    "distinct" = no ties; "grid" and "offgrid" = values that never come near each other's;
    "matrix" = matrices near diag(1, 2, 3, ...): invertible, positive-definite, with distinct
    eigenvalues and singular values);
    ``params(shapes)`` gives the op's keyword parameters.
    """

    shapes: Callable[[int, int], tuple[tuple[int, ...], ...]] = lambda n, m: ((n, m),)
    domains: tuple[str, ...] = ("real",)
    params: Callable[[tuple[tuple[int, ...], ...]], dict[str, Any]] = lambda shapes: {}
    broadcast: bool = False  # binary elementwise: the test also draws broadcastable pairs


@dataclass(frozen=True, eq=False)
class Op:
    """A differentiable primitive: a name, a forward and its vector-Jacobian product."""

    name: str
    forward: Callable[..., tuple[Any, Any]]
    backward: Callable[..., tuple[Any, ...]]
    arity: int | None  # the number of array inputs; None: any number (the sample shows one)
    sample: Sample = field(default_factory=Sample)
    # True when the rule always returns, for each input, an array of that input's shape and
    # dtype (g being of the output's): the engine then skips fitting the gradients to the inputs
    exact: bool = False
    saves_inputs: bool = True
    custom: Any = None  # the autograd.Function subclass of a custom op (not in the registry)
    # the one standard ONNX operator that computes this op, its params as attributes; None: the
    # ONNX export runs ``forward`` itself on its graph namespace (tinygrad_mlp/_onnx_graph.py)
    onnx: str | None = None

    def __repr__(self) -> str:
        return f"Op({self.name!r})"


OPS: dict[str, Op] = {}


def register(
    name: str,
    forward,
    backward,
    arity: int | None = 1,
    sample: Sample | None = None,
    exact: bool = False,
    saves_inputs: bool = True,
    onnx: str | None = None,
) -> Op:
    """Add an op to the registry and return it."""
    if name in OPS:
        raise ValueError(f"op {name!r} is already registered")
    op = Op(name, forward, backward, arity, sample or Sample(), exact, saves_inputs, onnx=onnx)
    OPS[name] = op
    return op


def norm_axes(axis, ndim: int) -> tuple[int, ...] | None:
    """Axis argument (None, int or tuple) as a tuple of non-negative ints, or None for all."""
    if axis is None:
        return None
    try:
        if isinstance(axis, (tuple, list)):
            axes = tuple(operator.index(a) for a in axis)
        else:
            axes = (operator.index(axis),)
    except TypeError:
        raise TypeError(f"dim must be an int or a tuple of ints, got {axis!r}") from None
    out = []
    for a in axes:
        if not -max(ndim, 1) <= a < max(ndim, 1):
            raise IndexError(
                f"Dimension out of range (expected to be in range of [{-max(ndim, 1)}, "
                f"{max(ndim, 1) - 1}], but got {a})"
            )
        out.append(a % max(ndim, 1))
    if len(set(out)) != len(out):
        raise RuntimeError(f"dim {axis!r} names a dimension more than once")
    return tuple(out) if ndim else ()
