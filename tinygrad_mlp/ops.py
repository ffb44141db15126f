"""The op registry: each op's forward and its vector-Jacobian product (VJP), side by side.

Every op is two plain functions:

- ``forward(xp, *arrays, **params) -> (out, saved)`` computes the result with the array module
  ``xp`` (numpy or cupy) and returns what the backward needs as ``saved``;
- ``backward(xp, g, saved, needs) -> tuple`` takes the incoming gradient ``g`` (shaped like
  ``out``) and returns one gradient per array input, or ``None`` where ``needs[i]`` is False.

Rules never think about broadcasting: the engine sums each gradient back to its input's shape.
A backward must not write into ``g`` or into ``saved``: both may be shared. It returns new
arrays (distinct from each other) or ``g`` itself.

An op may add ``backward_owned``: the same rule, allowed to overwrite ``g``. The engine calls it
instead when it holds the only reference to ``g``, which saves an allocation per elementwise op
in a chain (the in-place ``dA *= Z > 0`` of hand-written backprop). An op marked ``exact``
promises that its rule returns each input's gradient with that input's shape and dtype; the
engine then skips fitting them (a test holds each such op to the promise).

Each op also carries a ``sample``: the input shapes, value domains and parameters that the test
suite uses to gradient-check every registered op automatically.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from .backend import np

__all__ = ["Op", "Sample", "OPS", "register", "ShapeError", "DTypeError"]


class ShapeError(ValueError):
    """A ValueError raised by an op's forward whose message already names the op and shapes."""


class DTypeError(TypeError):
    """A TypeError raised by an op's forward whose message already names the op and dtypes."""


@dataclass(frozen=True)
class Sample:
    """How to build valid inputs for gradient checks of an op.

    ``shapes(n, m)`` gives the input shapes from two small sizes; ``domains`` names the value range
    of each input ("real", "positive", "nonzero" = away from 0, "unit" = inside (0, 1),
    "distinct" = no ties); ``params(shapes)`` gives the op's keyword parameters.
    """

    shapes: Callable[[int, int], tuple[tuple[int, ...], ...]] = lambda n, m: ((n, m),)
    domains: tuple[str, ...] = ("real",)
    params: Callable[[tuple[tuple[int, ...], ...]], dict[str, Any]] = lambda shapes: {}
    broadcast: bool = False  # binary elementwise: the test also draws broadcastable pairs


@dataclass(frozen=True)
class Op:
    """A differentiable primitive: a name, a forward and its vector-Jacobian product."""

    name: str
    forward: Callable[..., tuple[Any, Any]]
    backward: Callable[..., tuple[Any, ...]]
    arity: int | None  # the number of array inputs; None: any number (the sample shows one)
    sample: Sample = field(default_factory=Sample)
    backward_owned: Callable[..., tuple[Any, ...]] | None = None
    # True when the rule always returns, for each input, an array of that input's shape and
    # dtype (g being of the output's): the engine then skips fitting the gradients to the inputs
    exact: bool = False

    def __repr__(self) -> str:
        return f"Op({self.name!r})"


OPS: dict[str, Op] = {}


def register(
    name: str,
    forward,
    backward,
    arity: int | None = 1,
    sample: Sample | None = None,
    backward_owned=None,
    exact: bool = False,
) -> Op:
    """Add an op to the registry and return it."""
    if name in OPS:
        raise ValueError(f"op {name!r} is already registered")
    op = Op(name, forward, backward, arity, sample or Sample(), backward_owned, exact)
    OPS[name] = op
    return op


def _norm_axes(axis, ndim: int) -> tuple[int, ...] | None:
    """Axis argument (None, int or tuple) as a tuple of non-negative ints, or None for all."""
    if axis is None:
        return None
    try:
        if isinstance(axis, (tuple, list)):
            axes = tuple(operator.index(a) for a in axis)
        else:
            axes = (operator.index(axis),)
    except TypeError:
        raise TypeError(f"axis must be an int or a tuple of ints, got {axis!r}") from None
    out = []
    for a in axes:
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"axis {a} is out of range for a tensor of {ndim} dimensions")
        out.append(a % max(ndim, 1))
    return tuple(out)


def _expand(xp, g, axes, keepdims: bool):
    """Re-insert the reduced axes of ``g`` so that it broadcasts against the input."""
    if keepdims or axes is None:
        return g
    return xp.expand_dims(g, axes)


_binary = Sample(shapes=lambda n, m: ((n, m), (n, m)), domains=("real", "real"), broadcast=True)


# ---------------------------------------------------------------- elementwise arithmetic


def _add(xp, a, b):
    return a + b, None


def _add_vjp(xp, g, saved, needs):
    # d(a+b)/da = 1, d(a+b)/db = 1
    return g, g


ADD = register("add", _add, _add_vjp, 2, _binary)


def _sub(xp, a, b):
    return a - b, None


def _sub_vjp(xp, g, saved, needs):
    # d(a-b)/da = 1, d(a-b)/db = -1
    return g, (-g if needs[1] else None)


SUB = register("sub", _sub, _sub_vjp, 2, _binary)


def _mul(xp, a, b):
    return a * b, (a, b)


def _mul_vjp(xp, g, saved, needs):
    # d(ab)/da = b, d(ab)/db = a
    a, b = saved
    return (g * b if needs[0] else None), (g * a if needs[1] else None)


MUL = register("mul", _mul, _mul_vjp, 2, _binary)


def _div(xp, a, b):
    return a / b, (a, b)


def _div_vjp(xp, g, saved, needs):
    # d(a/b)/da = 1/b, d(a/b)/db = -a/b^2
    a, b = saved
    ga = g / b
    return (ga if needs[0] else None), (-ga * a / b if needs[1] else None)


DIV = register(
    "div",
    _div,
    _div_vjp,
    2,
    Sample(shapes=lambda n, m: ((n, m), (n, m)), domains=("real", "nonzero"), broadcast=True),
)


def _neg(xp, x):
    return -x, None


def _neg_vjp(xp, g, saved, needs):
    # d(-x)/dx = -1
    return (-g,)


NEG = register("neg", _neg, _neg_vjp)


def _pow(xp, x, exponent):
    return x**exponent, (x, exponent)


def _pow_vjp(xp, g, saved, needs):
    # d/dx x^c = c x^(c-1)
    x, c = saved
    if c == 0:  # NOTE: x^0 is constant; c x^(c-1) would give 0 * inf = nan at x = 0
        return (xp.zeros_like(g),)
    return (g * (c * x ** (c - 1)),)


POW = register(
    "pow", _pow, _pow_vjp, 1, Sample(domains=("positive",), params=lambda s: {"exponent": 1.5})
)


def _abs(xp, x):
    return xp.abs(x), x


def _abs_vjp(xp, g, x, needs):
    # d/dx |x| = sign(x) (taken as 0 at the kink x = 0)
    return (g * xp.sign(x),)


ABS = register("abs", _abs, _abs_vjp, 1, Sample(domains=("nonzero",)))


def _clamp(xp, x, low, high):
    return xp.clip(x, low, high), (x, low, high)


def _clamp_vjp(xp, g, saved, needs):
    # d/dx clamp(x, lo, hi) = 1 inside [lo, hi], 0 outside
    x, low, high = saved
    inside = xp.ones(x.shape, dtype=bool)
    if low is not None:
        inside &= x >= low
    if high is not None:
        inside &= x <= high
    return (g * inside,)


CLAMP = register(
    "clamp",
    _clamp,
    _clamp_vjp,
    1,
    Sample(domains=("nonzero",), params=lambda s: {"low": -0.05, "high": 100.0}),
)


# ---------------------------------------------------------------- elementwise functions


def _exp(xp, x):
    out = xp.exp(x)
    return out, out


def _exp_vjp(xp, g, out, needs):
    # d/dx e^x = e^x
    return (g * out,)


EXP = register("exp", _exp, _exp_vjp)


def _log(xp, x):
    return xp.log(x), x


def _log_vjp(xp, g, x, needs):
    # d/dx log x = 1/x
    return (g / x,)


LOG = register("log", _log, _log_vjp, 1, Sample(domains=("positive",)))


def _relu(xp, x):
    out = xp.maximum(x, 0)
    return out, out


def _relu_vjp(xp, g, out, needs):
    # d/dx max(x, 0) = 1 where x > 0, else 0 (0 at the kink, as PyTorch)
    return (g * (out > 0),)


def _relu_vjp_owned(xp, g, out, needs):
    g *= out > 0
    return (g,)


RELU = register(
    "relu", _relu, _relu_vjp, 1, Sample(domains=("nonzero",)), backward_owned=_relu_vjp_owned
)


def _sigmoid(xp, x):
    # NOTE: e = exp(-|x|) lies in (0, 1], so neither branch overflows for large |x|.
    e = xp.exp(-xp.abs(x))
    out = xp.where(x >= 0, 1, e) / (1 + e)
    return out, out


def _sigmoid_vjp(xp, g, s, needs):
    # d/dx sigmoid(x) = s (1 - s)
    return (g * s * (1 - s),)


def _sigmoid_vjp_owned(xp, g, s, needs):
    g *= s
    g *= 1 - s
    return (g,)


SIGMOID = register("sigmoid", _sigmoid, _sigmoid_vjp, backward_owned=_sigmoid_vjp_owned)


def _tanh(xp, x):
    out = xp.tanh(x)
    return out, out


def _tanh_vjp(xp, g, t, needs):
    # d/dx tanh x = 1 - tanh^2 x
    return (g * (1 - t * t),)


def _tanh_vjp_owned(xp, g, t, needs):
    g *= 1 - t * t
    return (g,)


TANH = register("tanh", _tanh, _tanh_vjp, backward_owned=_tanh_vjp_owned)


def _softmax(xp, x, axis):
    # NOTE: the max is subtracted first, so exp never overflows.
    e = xp.exp(x - x.max(axis=axis, keepdims=True))
    out = e / e.sum(axis=axis, keepdims=True)
    return out, (out, axis)


def _softmax_vjp(xp, g, saved, needs):
    # dS_i/dZ_j = S_i (delta_ij - S_j)  =>  dZ = S * (g - sum(g * S))
    s, axis = saved
    return (s * (g - (g * s).sum(axis=axis, keepdims=True)),)


SOFTMAX = register("softmax", _softmax, _softmax_vjp, 1, Sample(params=lambda s: {"axis": -1}))


def _log_softmax(xp, x, axis):
    shifted = x - x.max(axis=axis, keepdims=True)
    out = shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))
    return out, (out, axis)


def _log_softmax_vjp(xp, g, saved, needs):
    # d log_softmax(x)_i / dx_j = delta_ij - S_j  =>  dx = g - S * sum(g)
    out, axis = saved
    return (g - xp.exp(out) * g.sum(axis=axis, keepdims=True),)


LOG_SOFTMAX = register(
    "log_softmax", _log_softmax, _log_softmax_vjp, 1, Sample(params=lambda s: {"axis": -1})
)


# ---------------------------------------------------------------- reductions


def _sum(xp, x, axis=None, keepdims=False):
    axes = _norm_axes(axis, x.ndim)
    return x.sum(axis=axes, keepdims=keepdims), (x.shape, axes, keepdims)


def _sum_vjp(xp, g, saved, needs):
    # d sum(x) / dx_i = 1: the gradient is copied to every summed element
    shape, axes, keepdims = saved
    out = xp.empty(shape, dtype=g.dtype)
    out[...] = _expand(xp, g, axes, keepdims)  # NOTE: cheaper than broadcast_to, and writable
    return (out,)


SUM = register("sum", _sum, _sum_vjp, 1, Sample(params=lambda s: {"axis": 0, "keepdims": False}))


def _mean(xp, x, axis=None, keepdims=False):
    axes = _norm_axes(axis, x.ndim)
    out = x.mean(axis=axes, keepdims=keepdims)
    return out, (x.shape, axes, keepdims, x.size // max(out.size, 1))


def _mean_vjp(xp, g, saved, needs):
    # d mean(x) / dx_i = 1/n
    shape, axes, keepdims, n = saved
    out = xp.empty(shape, dtype=g.dtype)
    out[...] = _expand(xp, g, axes, keepdims) / n
    return (out,)


MEAN = register(
    "mean", _mean, _mean_vjp, 1, Sample(params=lambda s: {"axis": -1, "keepdims": True})
)


def _max(xp, x, axis=None, keepdims=False):
    axes = _norm_axes(axis, x.ndim)
    top = x.max(axis=axes, keepdims=True)
    out = top if keepdims else (top.reshape(()) if axes is None else xp.squeeze(top, axis=axes))
    return out, (x, top, axes, keepdims)


def _max_vjp(xp, g, saved, needs):
    # d max(x) / dx_i = 1 at the maximum, 0 elsewhere; ties share the gradient equally
    x, top, axes, keepdims = saved
    mask = x == top
    g = g.reshape(top.shape) if axes is None else _expand(xp, g, axes, keepdims)
    return (g * mask / mask.sum(axis=axes, keepdims=True),)


MAX = register(
    "max", _max, _max_vjp, 1, Sample(domains=("distinct",), params=lambda s: {"axis": 1})
)


# ---------------------------------------------------------------- shape


def _reshape(xp, x, shape):
    return x.reshape(shape), x.shape


def _reshape_vjp(xp, g, shape, needs):
    # reshape only moves elements: the gradient moves back
    return (g.reshape(shape),)


RESHAPE = register("reshape", _reshape, _reshape_vjp, 1, Sample(params=lambda s: {"shape": (-1,)}))


def _transpose(xp, x, axes=None):
    out = x.transpose(axes)
    inverse = None if axes is None else tuple(int(i) for i in xp.argsort(xp.asarray(axes)))
    return out, inverse


def _transpose_vjp(xp, g, inverse, needs):
    # a permutation's inverse permutation carries the gradient back
    return (g.transpose(inverse),)


TRANSPOSE = register(
    "transpose",
    _transpose,
    _transpose_vjp,
    1,
    Sample(shapes=lambda n, m: ((n, m, 2),), params=lambda s: {"axes": (1, 2, 0)}),
)


def _is_advanced(index) -> bool:
    """True when an index uses integer or boolean arrays (numpy's advanced indexing)."""
    parts = index if isinstance(index, tuple) else (index,)
    return any(not isinstance(p, (int, slice, type(None), type(Ellipsis))) for p in parts)


def _getitem(xp, x, index):
    return x[index], (x.shape, x.dtype, index)


def _getitem_vjp(xp, g, saved, needs):
    # d x[index] / dx scatters the gradient back; repeated indices accumulate
    shape, dtype, index = saved
    out = xp.zeros(shape, dtype=dtype)
    if _is_advanced(index):
        xp.add.at(out, index, g)
    else:
        out[index] = g
    return (out,)


GETITEM = register(
    "getitem",
    _getitem,
    _getitem_vjp,
    1,
    Sample(params=lambda s: {"index": ([0, s[0][0] - 1, 0], slice(None, None, -1))}),
)


# ---------------------------------------------------------------- sums and maxima along a matrix

# NOTE: numpy reduces along the short rows of a (batch, classes) array, or down the columns of
# a (batch, features) gradient, several times slower than BLAS multiplies the same array by a
# vector of ones (4.8 us against 1.2 us for a row sum of 128 x 10 float32). These helpers are
# what the linear layers, the stack of them and the softmax losses use instead of .sum(axis=).
_CONSTANTS: dict[tuple, Any] = {}


def _constant(xp, kind: str, n: int, arg) -> Any:
    """A read-only vector kept between calls for numpy arrays: ``ones(n)`` of dtype ``arg``
    ("ones"), or the offsets ``0, arg, 2 arg, ...`` of the n rows of an (n, arg) array
    ("starts")."""
    key = (kind, n, arg)
    array = _CONSTANTS.get(key)
    if array is not None and xp is np:
        return array
    if xp is not np:
        return xp.ones(n, arg) if kind == "ones" else xp.arange(0, n * arg, arg)
    if len(_CONSTANTS) >= 64:  # batch sizes vary little; never let the cache grow
        _CONSTANTS.clear()
    array = np.ones(n, arg) if kind == "ones" else np.arange(0, n * arg, arg)
    array.flags.writeable = False
    _CONSTANTS[key] = array
    return array


def _row_sums(xp, a):
    """a.sum(axis=1) of a 2-D array."""
    return a.dot(_constant(xp, "ones", a.shape[1], a.dtype))


def _column_sums(xp, a):
    """a.sum(axis=0) of a 2-D array (the bias gradient of a linear layer)."""
    return _constant(xp, "ones", a.shape[0], a.dtype).dot(a)


def _row_max(xp, a):
    """a.max(axis=1) of a 2-D array; for a few columns, a maximum down a transposed copy."""
    if xp is np and a.shape[1] <= 64:
        return np.maximum.reduce(np.ascontiguousarray(a.T), axis=0)
    return a.max(axis=1)


# ---------------------------------------------------------------- matrix products


_DOT_MAX = 4096  # outputs up to this many elements go through dot, larger ones through matmul


def _mm(xp, a, b):
    """The product of two 2-D arrays by the cheaper of numpy's two paths for its size."""
    # NOTE: dot costs a few microseconds less per call than matmul, but it zero-fills its
    # output before the BLAS call; past a few thousand elements that fill costs more.
    if a.shape[0] * b.shape[1] <= _DOT_MAX:
        return a.dot(b)
    return xp.matmul(a, b)


def _matmul(xp, a, b):
    return (_mm(xp, a, b) if a.ndim == 2 and b.ndim == 2 else a @ b), (a, b)


def _matmul_vjp(xp, g, saved, needs):
    # C = A B  =>  dA = G B^T, dB = A^T G (1-D operands are promoted to matrices, as numpy does)
    a, b = saved
    if a.ndim == 1 and b.ndim == 1:
        return (g * b if needs[0] else None), (g * a if needs[1] else None)
    if a.ndim == 2 and b.ndim == 2:
        return (_mm(xp, g, b.T) if needs[0] else None), (_mm(xp, a.T, g) if needs[1] else None)
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    g2 = g
    if a.ndim == 1:
        g2 = xp.expand_dims(g2, -2)
    if b.ndim == 1:
        g2 = xp.expand_dims(g2, -1)
    ga = gb = None
    if needs[0]:
        ga = g2 @ xp.swapaxes(b2, -1, -2)
        if a.ndim == 1:
            ga = ga[..., 0, :]
    if needs[1]:
        gb = xp.swapaxes(a2, -1, -2) @ g2
        if b.ndim == 1:
            gb = gb[..., 0]
    return ga, gb


MATMUL = register(
    "matmul",
    _matmul,
    _matmul_vjp,
    2,
    Sample(shapes=lambda n, m: ((n, m), (m, n + 1)), domains=("real", "real")),
)


def _linear(xp, x, w, b):
    if x.ndim == 0 or x.shape[-1] != w.shape[1]:
        raise ShapeError(
            f"linear: input of shape {x.shape} does not fit weight of shape {w.shape}: "
            f"the last dim must be in_features = {w.shape[1]}"
        )
    out = _mm(xp, x, w.T) if x.ndim == 2 else x @ w.T
    out += b
    return out, (x, w)


def _linear_vjp(xp, g, saved, needs):
    # y = x W^T + b  =>  dx = G W, dW = G^T x, db = sum of G over the batch
    x, w = saved
    g2 = g if g.ndim == 2 else g.reshape(-1, w.shape[0])
    x2 = x if x.ndim == 2 else x.reshape(-1, w.shape[1])
    gx = None
    if needs[0]:
        gx = _mm(xp, g2, w)
        gx = gx if x.ndim == 2 else gx.reshape(x.shape)
    gw = _mm(xp, g2.T, x2) if needs[1] else None
    gb = _column_sums(xp, g2) if needs[2] else None
    return gx, gw, gb


LINEAR = register(
    "linear",
    _linear,
    _linear_vjp,
    3,
    Sample(shapes=lambda n, m: ((n, m), (m + 1, m), (m + 1,)), domains=("real", "real", "real")),
)


def _linear_relu(xp, x, w, b):
    out, _ = _linear(xp, x, w, b)
    xp.maximum(out, 0, out=out)  # in place: nothing else ever sees the pre-activation
    return out, (x, w, out)


def _linear_relu_vjp(xp, g, saved, needs):
    # y = relu(z), z = x W^T + b  =>  dz = g * (y > 0), then the rule of linear
    x, w, out = saved
    return _linear_vjp(xp, g * (out > 0), (x, w), needs)


def _linear_relu_vjp_owned(xp, g, saved, needs):
    x, w, out = saved
    g *= out > 0
    return _linear_vjp(xp, g, (x, w), needs)


LINEAR_RELU = register(
    "linear_relu",
    _linear_relu,
    _linear_relu_vjp,
    3,
    # positive inputs and well-separated weights keep the pre-activations away from the kink
    Sample(
        shapes=lambda n, m: ((n, m), (m + 1, m), (m + 1,)),
        domains=("positive", "nonzero", "nonzero"),
    ),
    backward_owned=_linear_relu_vjp_owned,
)


# ---------------------------------------------------------------- a stack of linear layers

# NOTE: the fused op that nn.Sequential records for consecutive Linear layers and their
# activations ("relu", "tanh", "sigmoid" or None): one node instead of one per layer, and the
# backward of the whole stack in one loop, as in hand-written backprop. The derivatives of the
# activations are written in terms of their outputs.
_MLP_ACTIVATIONS = frozenset({"relu", "tanh", "sigmoid", None})


def _mlp(xp, x, *params, acts):
    # inputs: x (N, in), then weight (out, in) and bias (out,) of each layer, in order
    if len(params) != 2 * len(acts) or not acts or x.ndim != 2:
        raise ShapeError(
            f"mlp: expected a 2-D input and a weight and a bias for each of {len(acts)} layers, "
            f"got an input of shape {x.shape} and {len(params)} arrays"
        )
    if not _MLP_ACTIVATIONS.issuperset(acts):
        raise ValueError(f"mlp: activations must be among {sorted(map(str, _MLP_ACTIVATIONS))}")
    dtype = x.dtype
    h = x
    outs = []
    for w, b, act in zip(params[::2], params[1::2], acts, strict=True):
        shape = w.shape
        if (
            len(shape) != 2
            or h.shape[1] != shape[1]
            or b.shape != shape[:1]
            or w.dtype != dtype
            or b.dtype != dtype
        ):
            _refuse_layer(len(outs), h, w, b, dtype)
        h = _mm(xp, h, w.T)
        h += b
        if act == "relu":
            xp.maximum(h, 0, out=h)
        elif act == "tanh":
            xp.tanh(h, out=h)
        elif act == "sigmoid":
            h = _sigmoid(xp, h)[0]
        outs.append(h)
    return h, (x, params, outs, acts)


def _refuse_layer(i: int, h, w, b, dtype) -> None:
    """Raise the error that says why layer ``i`` of an mlp cannot take its operands."""
    if w.ndim != 2 or h.shape[1] != w.shape[1] or b.shape != w.shape[:1]:
        raise ShapeError(
            f"mlp: layer {i}: input of shape {h.shape} does not fit weight of shape "
            f"{w.shape} and bias of shape {b.shape}: expected input (N, in), weight "
            "(out, in), bias (out,)"
        )
    raise DTypeError(
        f"mlp: layer {i}: input dtype {dtype}, weight dtype {w.dtype} and bias dtype "
        f"{b.dtype} must be the same; cast the input with .astype"
    )


def _mlp_vjp(xp, g, saved, needs, owned=False):
    # layer by layer from the top: dz = g * act'(out); dW = dz^T h; db = sum of dz; g = dz W
    x, params, outs, acts = saved
    grads: list[Any] = [None] * len(needs)
    lowest = needs.index(True)  # the gradient must reach down to this input
    ones = _constant(xp, "ones", len(x), x.dtype)  # db = ones . dz (see _column_sums)
    layers = zip(range(1, len(needs), 2), params[::2], [x, *outs], outs, acts, strict=False)
    for at, w, h, out, act in reversed(list(layers)):  # at: the position of the weight
        if act is not None:
            if not owned:
                g = g.copy()
            if act == "relu":
                g *= out > 0
            elif act == "tanh":
                g *= 1 - out * out
            else:  # sigmoid
                g *= out
                g *= 1 - out
        if needs[at]:
            grads[at] = _mm(xp, g.T, h)
        if needs[at + 1]:
            grads[at + 1] = ones.dot(g)
        if lowest >= at:
            break
        g = _mm(xp, g, w)
        owned = True
    if needs[0]:
        grads[0] = g
    return tuple(grads)


MLP = register(
    "mlp",
    _mlp,
    _mlp_vjp,
    None,
    Sample(
        shapes=lambda n, m: ((n, m), (m + 1, m), (m + 1,), (2, m + 1), (2,), (3, 2), (3,)),
        domains=("real",) * 7,
        params=lambda s: {"acts": ("tanh", "sigmoid", None)},
    ),
    backward_owned=partial(_mlp_vjp, owned=True),
    exact=True,  # the forward refuses mixed dtypes and takes 2-D input only
)


# ---------------------------------------------------------------- fused losses


def _reduce(xp, losses, reduction: str):
    if reduction == "mean":
        return (
            losses.sum() / losses.size
        )  # NOTE: the same float32 sum as mean(), minus its overhead
    if reduction == "sum":
        return losses.sum()
    return losses


def _scale(xp, g, reduction: str, n: int, ndim: int):
    """The incoming gradient of a reduced loss as a per-element factor."""
    if reduction == "mean":
        return g / n
    if reduction == "sum":
        return g
    return g.reshape(g.shape + (1,) * (ndim - g.ndim))


def _cross_entropy(xp, logits, target, reduction="mean"):
    # NOTE: log-sum-exp with the row max subtracted: finite for logits of any size. The softmax
    # itself is left to backward, which needs it as a new array anyway.
    shifted = logits - _row_max(xp, logits)[:, None]
    exps = xp.exp(shifted)
    sums = _row_sums(xp, exps)
    if target.ndim == 1:  # class indices: loss_i = log sum_c e^z_ic - z_i,target
        # the picked elements by their flat positions: cheaper than a (rows, target) index
        picks = _constant(xp, "starts", len(target), logits.shape[1]) + target
        losses = xp.log(sums)
        losses -= shifted.reshape(-1)[picks]
    else:  # class probabilities
        picks = None
        shifted -= xp.log(sums)[:, None]
        shifted *= target
        losses = -_row_sums(xp, shifted)
    return _reduce(xp, losses, reduction), (exps, sums, target, picks, reduction)


def _cross_entropy_vjp(xp, g, saved, needs):
    # loss_i = -sum_c y_ic log softmax(z_i)_c  =>  dz_i = softmax(z_i) sum_c y_ic - y_i
    exps, sums, target, picks, reduction = saved
    dz = exps / sums[:, None]
    if picks is not None:
        shape = dz.shape
        dz = dz.reshape(-1)  # a view, or a C-ordered copy when the logits were not C-ordered
        dz[picks] -= 1
        dz = dz.reshape(shape)
    else:
        dz *= _row_sums(xp, target)[:, None]
        dz -= target
    if reduction == "mean" and xp is np:
        dz *= float(g) / len(dz)  # a Python number: one array operation fewer
    else:
        dz *= _scale(xp, g, reduction, len(dz), 2)
    return (dz,)


CROSS_ENTROPY = register(
    "cross_entropy",
    _cross_entropy,
    _cross_entropy_vjp,
    1,
    Sample(
        shapes=lambda n, m: ((n, m + 1),),
        params=lambda s: {"target": [i % s[0][1] for i in range(s[0][0])], "reduction": "mean"},
    ),
    exact=True,
)


def _clamped_log(xp, x):
    """log(x) floored at -100; x is raised to 1e-45 first, so log(0) neither warns nor is -inf."""
    return xp.maximum(xp.log(xp.maximum(x, 1e-45)), -100)


def _binary_cross_entropy(xp, p, y, reduction="mean"):
    # NOTE: logs are clamped at -100, as PyTorch does, so p = 0 or 1 gives a finite loss.
    losses = -(y * _clamped_log(xp, p) + (1 - y) * _clamped_log(xp, 1 - p))
    return _reduce(xp, losses, reduction), (p, y, reduction)


def _binary_cross_entropy_vjp(xp, g, saved, needs):
    # d/dp -(y log p + (1-y) log(1-p)) = (p - y) / (p (1 - p)), denominator kept >= 1e-12
    p, y, reduction = saved
    dp = (p - y) / xp.maximum(p * (1 - p), 1e-12)
    return (dp * _scale(xp, g, reduction, p.size, p.ndim),)


BINARY_CROSS_ENTROPY = register(
    "binary_cross_entropy",
    _binary_cross_entropy,
    _binary_cross_entropy_vjp,
    1,
    Sample(
        domains=("unit",),
        params=lambda s: {"y": [[(i + j) % 2 for j in range(s[0][1])] for i in range(s[0][0])]},
    ),
)


def _bce_with_logits(xp, z, y, reduction="mean"):
    # NOTE: max(z, 0) - z y + log(1 + e^-|z|) is log(1 + e^z) - z y without overflow.
    losses = xp.maximum(z, 0) - z * y + xp.log1p(xp.exp(-xp.abs(z)))
    return _reduce(xp, losses, reduction), (z, y, reduction)


def _bce_with_logits_vjp(xp, g, saved, needs):
    # d/dz [log(1 + e^z) - z y] = sigmoid(z) - y
    z, y, reduction = saved
    s, _ = _sigmoid(xp, z)
    return ((s - y) * _scale(xp, g, reduction, z.size, z.ndim),)


BCE_WITH_LOGITS = register(
    "binary_cross_entropy_with_logits",
    _bce_with_logits,
    _bce_with_logits_vjp,
    1,
    Sample(params=lambda s: {"y": [[(i * j) % 2 for j in range(s[0][1])] for i in range(s[0][0])]}),
)


def _mse_loss(xp, pred, target, reduction="mean"):
    diff = pred - target
    return _reduce(xp, diff * diff, reduction), (diff, reduction)


def _mse_loss_vjp(xp, g, saved, needs):
    # d/dp mean((p - y)^2) = 2 (p - y) / n, and the negative of it for y
    diff, reduction = saved
    gp = diff * (2 * _scale(xp, g, reduction, diff.size, diff.ndim))
    return (gp if needs[0] else None), (-gp if needs[1] else None)


MSE_LOSS = register(
    "mse_loss",
    _mse_loss,
    _mse_loss_vjp,
    2,
    Sample(shapes=lambda n, m: ((n, m), (n, m)), domains=("real", "real")),
)
