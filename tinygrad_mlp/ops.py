"""The op registry: each op's forward and its one vector-Jacobian product (VJP), side by side.

Every op is two plain functions written against a namespace ``ns``:

- ``forward(ns, *inputs, **params) -> (out, saved)`` computes the result and returns what the
  backward needs as ``saved``;
- ``backward(ns, g, saved, needs) -> tuple`` takes the incoming gradient ``g`` (shaped like
  ``out``) and returns one gradient per input, or ``None`` where ``needs[i]`` is False.

On the fast first-order path ``ns`` is a ``backend.ArrayNamespace`` and the inputs are numpy
(or CuPy) arrays. When a gradient must itself be differentiable (``create_graph=True``) the
engine runs the same forward and the same rule with the Tensor namespace of ``autograd``, whose
functions are recorded ops: so every rule is differentiable again, to any order, without a
second copy. Rules therefore use only what both namespaces offer: arithmetic operators,
comparisons, ``.sum(axis=, keepdims=)``, ``.reshape``, ``.T``, ``.shape``, ``.ndim``,
``.dtype``, indexing, and the functions of ``ns`` (``exp``, ``where``, ``mm``, ``broadcast_to``,
``scatter``, ...). The in-place helpers of ``ns`` (``imul``, ``maximum_``, ...) write into
arrays on the fast path and are plain ops on Tensors; a rule passes them only arrays it made.

Rules never think about broadcasting: the engine sums each gradient back to its input's shape.
A backward must not write into ``g`` or into ``saved`` (both may be shared), and returns new
arrays, distinct from each other, or ``g`` itself. An op marked ``exact`` promises that its rule
returns each input's gradient with that input's shape and dtype; the engine then skips fitting
them (a test holds each such op to the promise). ``saves_inputs`` is False for ops whose rule
never reads its inputs' values, so that changing those inputs in place later is harmless.

Each op also carries a ``sample``: the input shapes, value domains and parameters that the test
suite uses to check every registered op automatically, at first and second order.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .backend import (
    conv2d_channels_last,
    conv2d_channels_last_grads,
    default_device,
    is_array,
    np,
    window_counts,
)

__all__ = ["Op", "Sample", "OPS", "ACTIVATIONS", "register", "ShapeError", "DTypeError"]


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


def _expand(ns, g, axes, keepdims: bool):
    """Re-insert the reduced axes of ``g`` so that it broadcasts against the input."""
    if keepdims or axes is None:
        return g
    return g.reshape(_kept_shape(g.shape, axes))


def _kept_shape(shape: tuple, axes: tuple) -> tuple:
    """``shape`` with a 1 inserted at each of the (sorted, non-negative) reduced ``axes``."""
    out = list(shape)
    for a in sorted(axes):
        out.insert(a, 1)
    return tuple(out)


_binary = Sample(shapes=lambda n, m: ((n, m), (n, m)), domains=("real", "real"), broadcast=True)


# ---------------------------------------------------------------- elementwise arithmetic


def _add(ns, a, b):
    return a + b, None


def _add_vjp(ns, g, saved, needs):
    # d(a+b)/da = 1, d(a+b)/db = 1
    return g, g


ADD = register("add", _add, _add_vjp, 2, _binary, saves_inputs=False)


def _sub(ns, a, b):
    return a - b, None


def _sub_vjp(ns, g, saved, needs):
    # d(a-b)/da = 1, d(a-b)/db = -1
    return g, (-g if needs[1] else None)


SUB = register("sub", _sub, _sub_vjp, 2, _binary, saves_inputs=False)


def _mul(ns, a, b):
    return a * b, (a, b)


def _mul_vjp(ns, g, saved, needs):
    # d(ab)/da = b, d(ab)/db = a
    a, b = saved
    return (g * b if needs[0] else None), (g * a if needs[1] else None)


MUL = register("mul", _mul, _mul_vjp, 2, _binary)


def _div(ns, a, b):
    return a / b, (a, b)


def _div_vjp(ns, g, saved, needs):
    # d(a/b)/da = 1/b, d(a/b)/db = -a/b^2, computed as PyTorch's -g ((a / b) / b): b^2 would
    # underflow or overflow where the quotient does not (at a = b = 1e-200 the two gradients
    # of a / a must cancel as they do there)
    a, b = saved
    return (g / b if needs[0] else None), (-g * (a / b / b) if needs[1] else None)


DIV = register(
    "div",
    _div,
    _div_vjp,
    2,
    Sample(shapes=lambda n, m: ((n, m), (n, m)), domains=("real", "nonzero"), broadcast=True),
)


def refuse_integer_division(name: str, a, b) -> None:
    """A rounding division or remainder of two bools, or of integers by zero, raises, as in
    PyTorch (numpy would give 0)."""
    if a.dtype.kind == "b" and b.dtype.kind == "b":
        raise NotImplementedError(f"\"{name}\" not implemented for 'Bool'")
    if a.dtype.kind in "biu" and b.dtype.kind in "biu" and bool((b == 0).any()):
        raise RuntimeError("ZeroDivisionError: integer division or modulo by zero")


def _remainder(ns, a, b):
    refuse_integer_division("remainder", a, b)
    # NOTE: the floor quotient is kept as a constant: it is piecewise constant in a and b
    if ns.differentiable:
        return a % b, a.detach() // b.detach()
    return a % b, a // b


def _remainder_vjp(ns, g, quotient, needs):
    # a mod b = a - b floor(a / b)  =>  d/da = 1, d/db = -floor(a / b)
    return g, (-(g * quotient) if needs[1] else None)


REMAINDER = register(
    "remainder",
    _remainder,
    _remainder_vjp,
    2,
    Sample(shapes=lambda n, m: ((n, m), (n, m)), domains=("offgrid", "positive"), broadcast=True),
)


def _zeros_like(ns, x):
    """Zeros of x's shape and dtype, with no history: PyTorch's gradient of a constant piece
    (never 0 * inf = NaN)."""
    if ns.differentiable:
        return ns._t(ns.arrays.xp.zeros(tuple(x.shape), dtype=x._data.dtype))
    return ns.zeros_like(x)


def _neg(ns, x):
    return -x, None


def _neg_vjp(ns, g, saved, needs):
    # d(-x)/dx = -1
    return (-g,)


NEG = register("neg", _neg, _neg_vjp, saves_inputs=False)


def _pow(ns, x, exponent):
    return x**exponent, (x, exponent)


def _pow_vjp(ns, g, saved, needs):
    # d/dx x^c = c x^(c-1)
    x, c = saved
    if c == 0 and c is not False:  # NOTE: x^0 is constant; c x^(c-1) gives 0 * inf at x = 0
        # (PyTorch's rule does not see a bool exponent False as 0: the formula below, as there)
        return (_zeros_like(ns, x),)
    if c == 1 and not ns.differentiable:  # (on Tensors: g 1 x^0, which requires grad)
        return (g,)
    # NOTE: the square root's and its reciprocal's derivatives read the root itself, so that
    # at -0.0 they keep its sign (-inf and +inf), as PyTorch's do
    if c == 0.5:
        return (g * 0.5 / x**0.5,)
    if c == -0.5:
        root = x**-0.5
        return (g * -0.5 * (root * root * root),)
    return (g * (c * x ** (c - 1)),)


POW = register(
    "pow", _pow, _pow_vjp, 1, Sample(domains=("positive",), params=lambda s: {"exponent": 2.5})
)


def _pow_tensor(ns, a, b):
    out = a**b
    return out, (a, b, out)


def _pow_tensor_vjp(ns, g, saved, needs):
    # d/da a^b = b a^(b-1); d/db a^b = a^b log a: NaN for a < 0, and 0 at a = 0 when b >= 0
    # (as PyTorch; at a = 0, b < 0 it is inf * log 0 = -inf)
    a, b, out = saved
    # NOTE: 0 where b = 0 (a^0 is constant), never 0 * inf = NaN at a = 0, as PyTorch
    ga = ns.where(b == 0, 0.0, g * (b * a ** (b - 1))) if needs[0] else None
    gb = None
    if needs[1]:
        # NOTE: log a, -inf at 0 and NaN below, where log only ever sees positive values (no
        # warnings); the edge cases are put in by wheres with one tensor branch each, so that
        # they keep the dtype. The 0 at a = 0, b >= 0 is a where around a^b log a, as in
        # PyTorch's rule, so that a second derivative there is 0 * log 0 = NaN as there
        logs = ns.log(ns.where(a > 0, a, 1))
        logs = ns.where(a == 0, -math.inf, ns.where(a < 0, math.nan, logs))
        gb = g * ns.where((a == 0) & (b >= 0), 0.0, out * logs)
    return ga, gb


POW_TENSOR = register(
    "pow_tensor",
    _pow_tensor,
    _pow_tensor_vjp,
    2,
    # NOTE: the exponent stays away from 0, where d/da is 0 by PyTorch's convention (a kink)
    Sample(shapes=lambda n, m: ((n, m), (n, m)), domains=("positive", "nonzero"), broadcast=True),
)


def _abs(ns, x):
    return ns.abs(x), x


def _abs_vjp(ns, g, x, needs):
    # d/dx |x| = sign(x) (taken as 0 at the kink x = 0, and at NaN as PyTorch's)
    return (g * _sign(ns, x)[0],)


ABS = register("abs", _abs, _abs_vjp, 1, Sample(domains=("nonzero",)))


def _sign(ns, x):
    out = ns.sign(x)
    return ns.where(out == out, out, 0), None  # NOTE: sign(NaN) is 0, as PyTorch's


def _sign_vjp(ns, g, saved, needs):
    # sign is piecewise constant: its derivative is 0 (where it exists), also where g is inf
    return (_zeros_like(ns, g),)


SIGN = register("sign", _sign, _sign_vjp, 1, Sample(domains=("nonzero",)), saves_inputs=False)


def _clamp(ns, x, low, high):
    return ns.clip(x, low, high), (x, low, high)


def _clamp_vjp(ns, g, saved, needs):
    # d/dx clamp(x, lo, hi) = 1 inside [lo, hi], 0 outside (a where, so that an infinite g
    # gives 0 outside, as PyTorch's)
    x, low, high = saved
    if low is None:
        return (ns.where(x <= high, g, 0),)
    if high is None:
        return (ns.where(x >= low, g, 0),)
    return (ns.where((x >= low) & (x <= high), g, 0),)


CLAMP = register(
    "clamp",
    _clamp,
    _clamp_vjp,
    1,
    Sample(domains=("nonzero",), params=lambda s: {"low": -0.05, "high": 100.0}),
)


def _maximum(ns, a, b):
    return ns.maximum(a, b), (a, b)


def _maximum_vjp(ns, g, saved, needs):
    # d max(a, b)/da = 1 where a > b, 1/2 where a = b (as PyTorch), 0 elsewhere; written as
    # PyTorch's wheres, so that where a or b is NaN both get g, and an inf g meets no 0 * inf
    a, b = saved
    tie = a == b
    ga = ns.where(a < b, 0.0, ns.where(tie, g / 2, g)) if needs[0] else None
    gb = ns.where(a > b, 0.0, ns.where(tie, g / 2, g)) if needs[1] else None
    return ga, gb


MAXIMUM = register(
    "maximum",
    _maximum,
    _maximum_vjp,
    2,
    Sample(shapes=lambda n, m: ((n, m), (n, m)), domains=("grid", "offgrid"), broadcast=True),
)


def _minimum(ns, a, b):
    return ns.minimum(a, b), (a, b)


def _minimum_vjp(ns, g, saved, needs):
    # d min(a, b)/da = 1 where a < b, 1/2 where a = b (as PyTorch), 0 elsewhere (see maximum)
    a, b = saved
    tie = a == b
    ga = ns.where(a > b, 0.0, ns.where(tie, g / 2, g)) if needs[0] else None
    gb = ns.where(a < b, 0.0, ns.where(tie, g / 2, g)) if needs[1] else None
    return ga, gb


MINIMUM = register(
    "minimum",
    _minimum,
    _minimum_vjp,
    2,
    Sample(shapes=lambda n, m: ((n, m), (n, m)), domains=("grid", "offgrid"), broadcast=True),
)


def _where(ns, a, b, condition):
    return ns.where(condition, a, b), condition


def _where_vjp(ns, g, condition, needs):
    # where(c, a, b): the gradient goes to a where c holds, to b elsewhere (0 to the other, even
    # where g is infinite or NaN, as PyTorch's)
    ga = ns.where(condition, g, 0) if needs[0] else None
    gb = ns.where(condition, 0, g) if needs[1] else None
    return ga, gb


WHERE = register(
    "where",
    _where,
    _where_vjp,
    2,
    Sample(
        shapes=lambda n, m: ((n, m), (n, m)),
        domains=("real", "real"),
        params=lambda s: {"condition": np.arange(s[0][0] * s[0][1]).reshape(s[0]) % 3 == 0},
    ),
    saves_inputs=False,
)


# ---------------------------------------------------------------- elementwise functions


def _exp(ns, x):
    out = ns.exp(x)
    return out, out


def _exp_vjp(ns, g, out, needs):
    # d/dx e^x = e^x
    return (g * out,)


EXP = register("exp", _exp, _exp_vjp, saves_inputs=False)  # its rule reads the output


def _expm1(ns, x):
    out = ns.expm1(x)
    return out, out


def _expm1_vjp(ns, g, out, needs):
    # d/dx (e^x - 1) = e^x
    return (g * (out + 1),)


EXPM1 = register("expm1", _expm1, _expm1_vjp)


def _log(ns, x):
    return ns.log(x), x


def _log_vjp(ns, g, x, needs):
    # d/dx log x = 1/x
    return (g / x,)


LOG = register("log", _log, _log_vjp, 1, Sample(domains=("positive",)))


def _log1p(ns, x):
    return ns.log1p(x), x


def _log1p_vjp(ns, g, x, needs):
    # d/dx log(1 + x) = 1/(1 + x)
    return (g / (x + 1),)


LOG1P = register("log1p", _log1p, _log1p_vjp, 1, Sample(domains=("positive",)))


def _sin(ns, x):
    return ns.sin(x), x


def _sin_vjp(ns, g, x, needs):
    # d/dx sin x = cos x
    return (g * ns.cos(x),)


SIN = register("sin", _sin, _sin_vjp)


def _cos(ns, x):
    return ns.cos(x), x


def _cos_vjp(ns, g, x, needs):
    # d/dx cos x = -sin x
    return (-(g * ns.sin(x)),)


COS = register("cos", _cos, _cos_vjp)


def _erf(ns, x):
    return ns.erf(x), x


def _erf_vjp(ns, g, x, needs):
    # d/dx erf x = 2/sqrt(pi) e^(-x^2)
    return (g * (2 / math.sqrt(math.pi)) * ns.exp(-(x * x)),)


ERF = register("erf", _erf, _erf_vjp)


# ---------------------------------------------------------------- activations

# One table serves the activation ops, nn.Sequential's fused stack and the tests: each entry is
# the activation's forward and its derivative, written once: ``vjp(ns, g, x, out, **params)``
# gives g * d out / d x elementwise, in g's dtype; entries with ``needs_input`` False read only
# ``out`` (so the fused stack may overwrite the pre-activation in place).


@dataclass(frozen=True)
class Activation:
    """An elementwise activation: forward, derivative and the parameters both take."""

    name: str
    forward: Callable[..., Any]
    vjp: Callable[..., Any]
    needs_input: bool
    defaults: dict[str, Any] = field(default_factory=dict)
    in_place: Callable[..., Any] | None = None  # forward written into its argument (fast path)
    domain: str = "nonzero"  # where the tests draw inputs (away from kinks)
    onnx: str | None = None  # the standard ONNX operator that computes it (see Op.onnx)


ACTIVATIONS: dict[str, Activation] = {}


def _sigmoid_values(ns, x):
    # NOTE: e = exp(-|x|) lies in (0, 1], so neither branch overflows for large |x|. -|x| is
    # written as a where so that its derivative at x = 0 is that of the x >= 0 branch (abs's
    # rule gives 0 there, which made sigmoid'(0) = 0 under create_graph)
    zero, one = ns.scalar(0, x), ns.scalar(1, x)
    positive = x >= zero
    e = ns.exp(ns.where(positive, -x, x))
    return ns.where(positive, one, e) / (e + one)


def _softplus_values(ns, x, beta=1.0, threshold=20.0):
    # NOTE: log(1 + e^(bx)) / b, computed as max(bx, 0) + log1p(e^-|bx|) so it never
    # overflows; above the threshold PyTorch returns x itself, and so do we.
    bx = x * beta
    soft = (ns.maximum(bx, 0) + ns.log1p(ns.exp(-ns.abs(bx)))) / beta
    return ns.where(bx > threshold, x, soft)


_GELU_C = math.sqrt(2 / math.pi)


def _gelu(ns, x, approximate="none"):
    if approximate == "tanh":
        return x * 0.5 * (ns.tanh((x + x * x * x * 0.044715) * _GELU_C) + 1)
    return x * 0.5 * (ns.erf(x * (1 / math.sqrt(2))) + 1)


def _gelu_vjp(ns, g, x, out, approximate="none"):
    if approximate == "tanh":
        # d/dx x/2 (1 + t), t = tanh(c (x + 0.044715 x^3))
        t = ns.tanh((x + x * x * x * 0.044715) * _GELU_C)
        inner = (x * x * (3 * 0.044715) + 1) * _GELU_C
        return g * ((t + 1) * 0.5 + x * 0.5 * (1 - t * t) * inner)
    # d/dx x Phi(x) = Phi(x) + x phi(x)
    phi = ns.exp(x * x * -0.5) * (1 / math.sqrt(2 * math.pi))
    return g * ((ns.erf(x * (1 / math.sqrt(2))) + 1) * 0.5 + x * phi)


def _activation(
    name, forward, vjp, needs_input, in_place=None, domain="nonzero", onnx=None, **dflt
):
    ACTIVATIONS[name] = Activation(name, forward, vjp, needs_input, dflt, in_place, domain, onnx)


_activation(
    "relu",
    lambda ns, x: ns.maximum(x, 0),
    # 0 at the kink and below (also where g is inf), g at NaN (not out > 0, which is False
    # there), as PyTorch's: out is 0 or above, or NaN, so out != 0 is ~(out <= 0) in one pass
    lambda ns, g, x, out: ns.kept(g, out != 0),
    False,
    in_place=lambda ns, x: ns.maximum_(x, 0),
    onnx="Relu",
)
_activation(
    "sigmoid",
    _sigmoid_values,
    lambda ns, g, x, s: g * s * (1 - s),
    False,
    domain="real",
    onnx="Sigmoid",
)
_activation(
    "tanh",
    lambda ns, x: ns.tanh(x),
    lambda ns, g, x, t: g * (1 - t * t),
    False,
    in_place=lambda ns, x: ns.tanh_(x),
    domain="real",
)
_activation(
    "leaky_relu",
    lambda ns, x, negative_slope=0.01: ns.where(x > 0, x, x * negative_slope),
    lambda ns, g, x, out, negative_slope=0.01: ns.where(x > 0, g, g * negative_slope),
    True,
    negative_slope=0.01,
)


def _elu_vjp(ns, g, x, alpha):
    if not ns.differentiable:
        return ns.where(x <= 0, g * ns.exp(ns.where(x < 0, x, 0.0)) * alpha, g)
    # on Tensors the masks are factors, as in PyTorch's derivative of elu's backward: an
    # infinite g where x > 0 then gives NaN there, as PyTorch's (not 0)
    finite = ns.where(x == x, x, 0.0)
    return g * (1 + (x <= 0) * (ns.exp(finite * (x < 0)) * alpha - 1))


_activation(
    "elu",
    lambda ns, x, alpha=1.0: ns.where(x > 0, x, ns.expm1(ns.minimum(x, 0)) * alpha),
    # alpha e^x for x <= 0; e^x is read at min(x, 0) taken by a where, so that the second
    # derivative at 0 is 0, as PyTorch's
    # (g at NaN, as PyTorch's)
    lambda ns, g, x, out, alpha=1.0: _elu_vjp(ns, g, x, alpha),
    True,
    alpha=1.0,
)
_activation("gelu", _gelu, _gelu_vjp, True, domain="real", approximate="none")
_activation(
    "silu",
    lambda ns, x: x * _sigmoid_values(ns, x),
    # d/dx x s(x) = s (1 + x (1 - s))
    lambda ns, g, x, out: g * _sigmoid_values(ns, x) * (x * (1 - _sigmoid_values(ns, x)) + 1),
    True,
    domain="real",
)
_activation(
    "softplus",
    _softplus_values,
    # d/dx log(1 + e^(bx)) / b = sigmoid(bx); 1 above the threshold
    lambda ns, g, x, out, beta=1.0, threshold=20.0: ns.where(
        x * beta > threshold, g, g * _sigmoid_values(ns, x * beta)
    ),
    True,
    domain="real",
    beta=1.0,
    threshold=20.0,
)
_activation(
    "mish",
    lambda ns, x: x * ns.tanh(_softplus_values(ns, x)),
    # d/dx x tanh(sp(x)) = tanh(sp) + x sigmoid(x) (1 - tanh^2(sp))
    lambda ns, g, x, out: (
        g
        * (
            ns.tanh(_softplus_values(ns, x))
            + x * _sigmoid_values(ns, x) * (1 - ns.tanh(_softplus_values(ns, x)) ** 2)
        )
    ),
    True,
    domain="real",
)
_activation(
    "hardtanh",
    lambda ns, x, min_val=-1.0, max_val=1.0: ns.clip(x, min_val, max_val),
    # 1 strictly inside (min_val, max_val), 0 outside and on the edges, as PyTorch
    # (g at NaN, as PyTorch's)
    lambda ns, g, x, out, min_val=-1.0, max_val=1.0: ns.where(
        (out <= min_val) | (out >= max_val), 0, g
    ),
    False,
    in_place=lambda ns, x, min_val=-1.0, max_val=1.0: ns.clip_(x, min_val, max_val),
    min_val=-1.0,
    max_val=1.0,
)
_activation(
    "relu6",
    lambda ns, x: ns.clip(x, 0, 6),
    lambda ns, g, x, out: ns.where((out <= 0) | (out >= 6), 0, g),
    False,
    in_place=lambda ns, x: ns.clip_(x, 0, 6),
)

_activation(
    "hardswish",
    # three pieces, as PyTorch's: x * 0 at and below -3 (NaN at -inf), x (x + 3) / 6 strictly
    # inside, x from 3 up and at NaN
    lambda ns, x: ns.where(x >= 3, x, ns.where(x > -3, x * (x + 3) / 6, x * 0.0)),
    # PyTorch's rule: 0 at and below -3, x / 3 + 1/2 inside, 1 from 3 up and at NaN (one
    # product, so an infinite g at x = 0 gives inf, not inf * 0)
    lambda ns, g, x, out: ns.where(x <= -3, 0, ns.where(x < 3, g * (x / 3 + 0.5), g)),
    True,
)

# piecewise-linear activations whose gradient PyTorch computes by a backward op that reads the
# input (threshold_backward, leaky_relu_backward, hardtanh_backward): under create_graph that
# gradient requires grad, and a second backward gives zeros for the input, not nothing
_KINKED = frozenset({"relu", "leaky_relu", "hardtanh", "relu6"})


def _on_tape(ns, grad, x):
    """``grad`` recorded as a function of ``x`` with derivative 0 (a where that never picks x)."""
    never = ns._t(ns.arrays.xp.zeros(tuple(x.shape), dtype=bool))
    return ns.where(never, x, grad)


def _activation_op(act: Activation) -> Op:
    def forward(ns, x, **params):
        out = act.forward(ns, x, **params)
        return out, (x, out, params)

    def backward(ns, g, saved, needs):
        x, out, params = saved
        return (act.vjp(ns, g, x, out, **params),)

    def backward_kinked(ns, g, saved, needs):
        x, out, params = saved
        if ns.differentiable:
            return (_on_tape(ns, act.vjp(ns, g, x, out, **params), x),)
        return (act.vjp(ns, g, x, out, **params),)

    if act.name in _KINKED:
        backward = backward_kinked

    forward.__name__, backward.__name__ = f"_{act.name}", f"_{act.name}_vjp"
    params = {"leaky_relu": {"negative_slope": 0.1}, "elu": {"alpha": 0.7}}.get(act.name, {})
    if act.name == "hardtanh":
        params = {"min_val": -0.53, "max_val": 0.77}
    sample = Sample(domains=(act.domain,), params=lambda s, p=params: dict(p))
    return register(act.name, forward, backward, 1, sample, exact=True, onnx=act.onnx)


for _act in list(ACTIVATIONS.values()):
    _activation_op(_act)
RELU, SIGMOID, TANH = OPS["relu"], OPS["sigmoid"], OPS["tanh"]


def _softmax(ns, x, axis):
    # NOTE: the max is subtracted first, so exp never overflows.
    e = ns.exp(x - ns.amax(x, axis, True))
    out = e / e.sum(axis=axis, keepdims=True)
    return out, (out, axis)


def _softmax_vjp(ns, g, saved, needs):
    # dS_i/dZ_j = S_i (delta_ij - S_j)  =>  dZ = S * (g - sum(g * S))
    s, axis = saved
    return (s * (g - (g * s).sum(axis=axis, keepdims=True)),)


SOFTMAX = register(
    "softmax", _softmax, _softmax_vjp, 1, Sample(params=lambda s: {"axis": -1}), onnx="Softmax"
)


def _log_softmax(ns, x, axis):
    shifted = x - ns.amax(x, axis, True)
    out = shifted - ns.log(ns.exp(shifted).sum(axis=axis, keepdims=True))
    return out, (out, axis)


def _log_softmax_vjp(ns, g, saved, needs):
    # d log_softmax(x)_i / dx_j = delta_ij - S_j  =>  dx = g - S * sum(g)
    out, axis = saved
    return (g - ns.exp(out) * g.sum(axis=axis, keepdims=True),)


LOG_SOFTMAX = register(
    "log_softmax",
    _log_softmax,
    _log_softmax_vjp,
    1,
    Sample(params=lambda s: {"axis": 0}),
    onnx="LogSoftmax",
)


# ---------------------------------------------------------------- reductions


def _sum(ns, x, axis=None, keepdims=False):
    axes = norm_axes(axis, x.ndim)
    return x.sum(axis=axes, keepdims=keepdims), (x.shape, axes, keepdims)


def _sum_vjp(ns, g, saved, needs):
    # d sum(x) / dx_i = 1: the gradient is copied to every summed element
    shape, axes, keepdims = saved
    return (ns.broadcast_to(_expand(ns, g, axes, keepdims), shape),)


SUM = register(
    "sum",
    _sum,
    _sum_vjp,
    1,
    Sample(params=lambda s: {"axis": 0, "keepdims": False}),
    saves_inputs=False,
)


def _mean(ns, x, axis=None, keepdims=False):
    axes = norm_axes(axis, x.ndim)
    out = x.mean(axis=axes, keepdims=keepdims)
    n = math.prod(x.shape) // max(math.prod(out.shape), 1)
    return out, (x.shape, axes, keepdims, n)


def _mean_vjp(ns, g, saved, needs):
    # d mean(x) / dx_i = 1/n
    shape, axes, keepdims, n = saved
    return (ns.broadcast_to(_expand(ns, g, axes, keepdims) / n, shape),)


MEAN = register(
    "mean",
    _mean,
    _mean_vjp,
    1,
    Sample(params=lambda s: {"axis": -1, "keepdims": True}),
    saves_inputs=False,
)


def _centred(x, axes, n):
    # NOTE: as PyTorch on the CPU: a reduction to one number is two-pass (deviations from the
    # mean, which may be off by a rounding); any other is a Welford sum per output, where equal
    # values deviate by exactly 0: here the deviations are centred a second time
    centred = x - x.sum(axis=axes, keepdims=True) / max(n, 1)
    if math.prod(x.shape) == n:  # one output
        return centred
    return centred - centred.sum(axis=axes, keepdims=True) / max(n, 1)


def _var(ns, x, axis=None, keepdims=False, correction=1):
    axes = norm_axes(axis, x.ndim)
    n = math.prod(x.shape) if axes is None else math.prod(x.shape[a] for a in axes)
    centred = _centred(x, axes, n)
    dof = max(n - correction, 0)  # NOTE: 0 degrees of freedom give inf or NaN, as PyTorch
    return (centred * centred).sum(axis=axes, keepdims=keepdims) / dof, (x, axes, keepdims, n, dof)


def _var_vjp(ns, g, saved, needs):
    # d var / dx_i = 2 (x_i - mean) / (n - correction): the deviations sum to 0, so the mean's
    # own derivative drops out (and an infinite g does not make inf - inf), as PyTorch's rule
    x, axes, keepdims, n, dof = saved
    centred = _centred(x, axes, n)
    return (_expand(ns, g, axes, keepdims) * centred * (2 / dof if dof else math.inf),)


VAR = register(
    "var",
    _var,
    _var_vjp,
    1,
    Sample(shapes=lambda n, m: ((n, m + 1),), params=lambda s: {"axis": -1, "keepdims": False}),
)


def _amax(ns, x, axis=None, keepdims=False):
    axes = norm_axes(axis, x.ndim)
    top = ns.amax(x, axes, True)
    out = top if keepdims else top.reshape(_dropped_shape(x.shape, axes))
    return out, (x, top, axes, keepdims)


def _dropped_shape(shape: tuple, axes: tuple | None) -> tuple:
    if axes is None:
        return ()
    return tuple(n for i, n in enumerate(shape) if i not in axes)


def _amax_vjp(ns, g, saved, needs):
    # d max(x) / dx_i = 1 at the maximum, 0 elsewhere; ties share the gradient equally
    x, top, axes, keepdims = saved
    mask = x == top
    g = g.reshape(top.shape)
    return (g * mask / mask.sum(axis=axes, keepdims=True),)


AMAX = register(
    "amax", _amax, _amax_vjp, 1, Sample(domains=("distinct",), params=lambda s: {"axis": 1})
)


def _prod(ns, x, axis=None, keepdims=False):
    axes = norm_axes(axis, x.ndim)
    out = ns.prod(x, axes, keepdims)
    return out, (x, out, axes, keepdims)


def _prod_vjp(ns, g, saved, needs):
    # d prod(x) / dx_i = the product of the others: prod / x_i where x_i != 0; at a single zero
    # the product of the nonzero others, and 0 everywhere when two or more are zero
    x, out, axes, keepdims = saved
    zero = x == 0
    zeros = zero.sum(axis=axes, keepdims=True)
    safe = ns.where(zero, 1, x)
    others = ns.prod(safe, axes, True)
    out = _expand(ns, out, axes, keepdims).reshape(others.shape)
    g = _expand(ns, g, axes, keepdims).reshape(others.shape)
    grad = ns.where(zero, others * (zeros == 1), out / safe)
    if axes is None:  # NOTE: PyTorch's product of all elements gives exact zeros at two or
        return (ns.where(zeros > 1, 0.0, g * grad),)  # more zeros, whatever g is (inf, NaN)
    return (g * grad,)


PROD = register(
    "prod", _prod, _prod_vjp, 1, Sample(domains=("nonzero",), params=lambda s: {"axis": 1})
)


# ---------------------------------------------------------------- shape


def _reshape(ns, x, shape):
    return x.reshape(shape), x.shape


def _reshape_vjp(ns, g, shape, needs):
    # reshape only moves elements: the gradient moves back
    return (g.reshape(shape),)


RESHAPE = register(
    "reshape",
    _reshape,
    _reshape_vjp,
    1,
    Sample(params=lambda s: {"shape": (-1,)}),
    exact=True,
    saves_inputs=False,
)


def _permute(ns, x, axes):
    inverse = tuple(sorted(range(len(axes)), key=lambda i: axes[i]))
    return ns.permute(x, axes), inverse


def _permute_vjp(ns, g, inverse, needs):
    # a permutation's inverse permutation carries the gradient back
    return (ns.permute(g, inverse),)


PERMUTE = register(
    "permute",
    _permute,
    _permute_vjp,
    1,
    Sample(shapes=lambda n, m: ((n, m, 2),), params=lambda s: {"axes": (1, 2, 0)}),
    exact=True,
    saves_inputs=False,
)


def _expand_op(ns, x, shape):
    # on arrays a writable strided view (stride 0 along the new dimensions), as PyTorch's
    if ns.differentiable:
        return ns.broadcast_to(x, shape), x.shape
    return ns.expand_view(x, shape), x.shape


def _expand_vjp(ns, g, shape, needs):
    # broadcasting copies elements: their gradients add up
    return (ns.sum_to(g, shape),)


EXPAND = register(
    "expand",
    _expand_op,
    _expand_vjp,
    1,
    Sample(shapes=lambda n, m: ((n, 1),), params=lambda s: {"shape": (3, s[0][0], 4)}),
    saves_inputs=False,
)


def _getitem(ns, x, index):
    return x[index], (x.shape, index)


def _getitem_vjp(ns, g, saved, needs):
    # d x[index] / dx scatters the gradient back; repeated indices accumulate
    shape, index = saved
    return (ns.scatter(g, index, shape),)


GETITEM = register(
    "getitem",
    _getitem,
    _getitem_vjp,
    1,
    Sample(params=lambda s: {"index": (np.array([0, s[0][0] - 1, 0]), slice(None, None, -1))}),
    saves_inputs=False,
)


def _scatter(ns, g, index, shape):
    return ns.scatter(g, index, shape), index


def _scatter_vjp(ns, g, index, needs):
    # scatter is getitem's adjoint: its gradient is picked back out at the same index
    return (g[index],)


SCATTER = register(
    "scatter",
    _scatter,
    _scatter_vjp,
    1,
    Sample(
        shapes=lambda n, m: ((3, m),),
        params=lambda s: {"index": np.array([0, 2, 0]), "shape": (4, s[0][1])},
    ),
    saves_inputs=False,
)


def _copy_slices_rule(ns, g, saved, needs):
    # out = base outside the written positions, value at them: d base = g with the written
    # positions zeroed; d value = g picked at those positions
    positions, keep = saved
    return (
        ns.where(keep, g, 0.0) if needs[0] else None,
        g.reshape(-1)[positions] if needs[1] else None,
    )


def _copy_slices(ns, base, value, positions=None, keep=None, take=None):
    # base with value written at the flat positions (keep is False exactly there): PyTorch's
    # CopySlices, the new history of a base written through a view or by index assignment;
    # without positions, value is written over all of base. Where positions repeat, ``take``
    # lists the (flat) entries of value that are written, the last one at each position; the
    # rule still hands every entry the gradient at its position, as PyTorch's index_put does
    if positions is None:
        keep = np.zeros(tuple(base.shape), dtype=bool)
        positions = np.arange(keep.size).reshape(keep.shape)
    if take is None:
        written = ns.scatter(value, positions, (keep.size,))
    else:
        written = ns.scatter(value.reshape(-1)[take], positions.reshape(-1)[take], (keep.size,))
    return ns.where(keep, base, written.reshape(keep.shape)), (positions, keep)


def _slices_sample(shapes):
    n, m = shapes[0]
    positions = np.array([m * n - 1, 0, m])
    keep = np.ones((n, m), dtype=bool)
    keep.reshape(-1)[positions] = False
    return {"positions": positions, "keep": keep}


COPY_SLICES = register(
    "copy_slices",
    _copy_slices,
    _copy_slices_rule,
    2,
    Sample(
        shapes=lambda n, m: ((max(n, 2), m), (3,)),
        domains=("real", "real"),
        params=_slices_sample,
    ),
    saves_inputs=False,
)


def _diagonal(ns, x, offset, dim1, dim2):
    out = x.diagonal(offset, dim1, dim2)
    if not ns.differentiable and not out.flags.writeable and x.flags.writeable:
        out.flags.writeable = True  # NOTE: numpy's diagonal is a read-only view; PyTorch's writes
    return out, (x.shape, _diagonal_index(x.shape, offset, dim1, dim2))


def _diagonal_index(shape: tuple, offset: int, dim1: int, dim2: int) -> tuple:
    """The advanced index that picks the diagonal out of an array of ``shape``, as numpy's
    diagonal lays it out (the other dimensions first, the diagonal last)."""
    n = len(shape)
    a, b = dim1 % n, dim2 % n
    length = max(0, min(shape[a] - max(-offset, 0), shape[b] - max(offset, 0)))
    others = [d for d in range(n) if d not in (a, b)]
    k = len(others) + 1
    index: list[Any] = [None] * n
    for j, d in enumerate(others):
        index[d] = np.arange(shape[d]).reshape((1,) * j + (-1,) + (1,) * (k - j - 1))
    diag = np.arange(length)
    index[a] = diag + max(-offset, 0)
    index[b] = diag + max(offset, 0)
    return tuple(index)


def _diagonal_vjp(ns, g, saved, needs):
    # the diagonal picks elements: their gradients go back to the same places, zeros elsewhere
    shape, index = saved
    return (ns.scatter(g, index, shape),)


DIAGONAL = register(
    "diagonal",
    _diagonal,
    _diagonal_vjp,
    1,
    Sample(
        shapes=lambda n, m: ((n, m, 3),),
        params=lambda s: {"offset": 1, "dim1": 0, "dim2": 1},
    ),
    saves_inputs=False,
)


def _scatter_last(ns, src, positions, last, size):
    # out (size,) gets src[i] at positions[i]; where a position repeats, the write at ``last``
    # (one per distinct position) is the one kept
    return ns.scatter(src[last], (positions[last],), (size,)), positions


def _scatter_last_vjp(ns, g, positions, needs):
    # NOTE: PyTorch's rule, not the derivative: every write gets the gradient of its position,
    # also those that a later write to the same position hides (d out / d src is 0 for those)
    return (g[positions],)


SCATTER_LAST = register(
    "scatter_last",
    _scatter_last,
    _scatter_last_vjp,
    1,
    Sample(
        shapes=lambda n, m: ((m + 1,),),
        params=lambda s: {
            "positions": np.arange(s[0][0])[::-1] * 2,
            "last": np.arange(s[0][0]),
            "size": 2 * s[0][0],
        },
    ),
    exact=True,
    saves_inputs=False,
)


def _cat(ns, *xs, axis=0):
    sizes = [x.shape[axis] for x in xs]
    return ns.concatenate(xs, axis=axis), (sizes, axis)


def _cat_vjp(ns, g, saved, needs):
    # concatenation places inputs side by side: each takes back its own slice
    sizes, axis = saved
    out, start = [], 0
    lead = (slice(None),) * (axis % g.ndim)
    for n, need in zip(sizes, needs, strict=True):
        out.append(g[lead + (slice(start, start + n),)] if need else None)
        start += n
    return tuple(out)


CAT = register(
    "cat",
    _cat,
    _cat_vjp,
    None,
    Sample(
        shapes=lambda n, m: ((n, m), (n, 1), (n, 2)),
        domains=("real",) * 3,
        params=lambda s: {"axis": 1},
    ),
    saves_inputs=False,
)


def _cast(ns, x, dtype):
    return ns.cast(x, dtype), x.dtype


def _cast_vjp(ns, g, dtype, needs):
    # a cast is the identity on values: the gradient is cast back
    return (ns.cast(g, dtype),)


CAST = register(
    "cast",
    _cast,
    _cast_vjp,
    1,
    Sample(params=lambda s: {"dtype": np.dtype(np.float64)}),
    exact=True,
    saves_inputs=False,
)


def _to_device(ns, x, device):
    return ns.to_device(x, device), ns.device_of(x)


def _to_device_vjp(ns, g, source, needs):
    # moving between devices is the identity on values: the gradient moves back
    return (ns.to_device(g, source),)


TO_DEVICE = register(
    "to_device",
    _to_device,
    _to_device_vjp,
    1,
    Sample(params=lambda s: {"device": default_device()}),  # samples keep one device
    exact=True,
    saves_inputs=False,
)


# ---------------------------------------------------------------- matrix products


def _matmul(ns, a, b):
    return (ns.mm(a, b) if a.ndim == 2 and b.ndim == 2 else ns.matmul(a, b)), (a, b)


def _matmul_vjp(ns, g, saved, needs):
    # C = A B  =>  dA = G B^T, dB = A^T G (1-D operands are promoted to matrices, as numpy does)
    a, b = saved
    if a.ndim == 1 and b.ndim == 1:
        return (g * b if needs[0] else None), (g * a if needs[1] else None)
    if a.ndim == 2 and b.ndim == 2:
        return (ns.mm(g, b.T) if needs[0] else None), (ns.mm(a.T, g) if needs[1] else None)
    a2 = a.reshape((1,) + a.shape) if a.ndim == 1 else a
    b2 = b.reshape(b.shape + (1,)) if b.ndim == 1 else b
    g2 = g
    if a.ndim == 1:
        g2 = g2.reshape(g2.shape[:-1] + (1,) + g2.shape[-1:])
    if b.ndim == 1:
        g2 = g2.reshape(g2.shape + (1,))
    ga = gb = None
    if needs[0]:
        ga = ns.sum_to(ns.matmul(g2, ns.mT(b2)), a2.shape).reshape(a.shape)
    if needs[1]:
        gb = ns.sum_to(ns.matmul(ns.mT(a2), g2), b2.shape).reshape(b.shape)
    return ga, gb


MATMUL = register(
    "matmul",
    _matmul,
    _matmul_vjp,
    2,
    Sample(shapes=lambda n, m: ((n, m), (m, n + 1)), domains=("real", "real")),
)


def _check_linear(x, w, b) -> None:
    if x.ndim == 0 or w.ndim != 2 or x.shape[-1] != w.shape[1]:
        raise ShapeError(
            f"linear: input of shape {tuple(x.shape)} does not fit weight of shape "
            f"{tuple(w.shape)}: the last dim must be in_features = {w.shape[-1]}"
        )
    if b is not None and tuple(b.shape) != tuple(w.shape[:1]):
        raise ShapeError(
            f"linear: bias of shape {tuple(b.shape)} does not fit weight of shape "
            f"{tuple(w.shape)}: expected ({w.shape[0]},)"
        )


def _affine(ns, x, w, b):
    """x W^T + b for an input of any number of leading dims."""
    if x.ndim == 2:
        out = ns.mm(x, w.T)
    else:
        out = ns.matmul(x, w.T)
    return out if b is None else ns.iadd(out, b)


def _linear(ns, x, w, b=None):
    _check_linear(x, w, b)
    return _affine(ns, x, w, b), (x, w, b is not None)


def _linear_vjp(ns, g, saved, needs):
    # y = x W^T + b  =>  dx = G W, dW = G^T x, db = sum of G over the batch
    x, w, has_bias = saved
    g2 = g if g.ndim == 2 else g.reshape((-1, w.shape[0]))
    x2 = x if x.ndim == 2 else x.reshape((-1, w.shape[1]))
    gx = None
    if needs[0]:
        gx = ns.mm(g2, w)
        gx = gx if x.ndim == 2 else gx.reshape(x.shape)
    gw = ns.mm(g2.T, x2) if needs[1] else None
    if not has_bias:
        return gx, gw
    return gx, gw, (ns.column_sums(g2) if needs[2] else None)


LINEAR = register(
    "linear",
    _linear,
    _linear_vjp,
    None,
    Sample(shapes=lambda n, m: ((n, m), (m + 1, m), (m + 1,)), domains=("real", "real", "real")),
    exact=True,
)


# ---------------------------------------------------------------- a stack of linear layers

# NOTE: the fused op that nn.Sequential records for consecutive Linear layers and their
# activations: one node instead of one per layer, and the backward of the whole stack in one
# loop, as in hand-written backprop. Each activation is None, a name from ACTIVATIONS, or a
# (name, params) pair; its derivative is the table's, read from the layer's output (and from
# the pre-activation for the activations that need it).


def activation_spec(act) -> tuple[Activation, dict[str, Any]] | None:
    """An mlp activation (None, a name or a (name, params) pair) as a table entry and params."""
    if act is None:
        return None
    name, params = (act, {}) if isinstance(act, str) else (act[0], dict(act[1]))
    entry = ACTIVATIONS.get(name)
    if entry is None:
        raise ValueError(
            f"mlp: unknown activation {name!r}; known: {sorted(ACTIVATIONS)} (or None)"
        )
    return entry, params


_SPECS: dict[int, tuple] = {}


def _specs(acts) -> list:
    """The table entries and params of ``acts``, kept per acts object (nn.Sequential passes the
    same tuple every call)."""
    cached = _SPECS.get(id(acts))
    if cached is not None and cached[0] is acts:
        return cached[1]
    specs = [activation_spec(a) for a in acts]
    if len(_SPECS) >= 256:
        _SPECS.clear()
    _SPECS[id(acts)] = (acts, specs)
    return specs


def _mlp(ns, x, *params, acts):
    # inputs: x (N, in), then weight (out, in) and bias (out,) of each layer, in order
    if len(params) != 2 * len(acts) or not acts or x.ndim != 2:
        raise ShapeError(
            f"mlp: expected a 2-D input and a weight and a bias for each of {len(acts)} layers, "
            f"got an input of shape {tuple(x.shape)} and {len(params)} arrays"
        )
    specs = _specs(acts)
    dtype = x.dtype
    h = x
    layers = []  # per layer: (pre-activation or None, output)
    for i, spec in enumerate(specs):
        w, b = params[2 * i], params[2 * i + 1]
        if w.ndim != 2 or h.shape[1] != w.shape[1] or b.shape != w.shape[:1]:
            raise ShapeError(
                f"mlp: layer {len(layers)}: input of shape {tuple(h.shape)} does not fit weight "
                f"of shape {tuple(w.shape)} and bias of shape {tuple(b.shape)}: expected input "
                "(N, in), weight (out, in), bias (out,)"
            )
        if w.dtype != dtype or b.dtype != dtype:
            raise DTypeError(
                f"mlp: layer {len(layers)}: input dtype {dtype}, weight dtype {w.dtype} and bias "
                f"dtype {b.dtype} must be the same; cast the input with .to(dtype)"
            )
        z = ns.iadd(ns.mm(h, w.T), b)
        if spec is None:
            h = z
            layers.append((None, h))
            continue
        entry, p = spec
        if entry.needs_input or entry.in_place is None:
            h = entry.forward(ns, z, **p)
            layers.append((z if entry.needs_input else None, h))
        else:
            h = entry.in_place(ns, z, **p)  # nothing else ever sees the pre-activation
            layers.append((None, h))
    return h, (x, params, layers, specs)


def _mlp_vjp(ns, g, saved, needs):
    # layer by layer from the top: dz = g * act'(z); dW = dz^T h; db = sum of dz; g = dz W
    x, params, layers, specs = saved
    grads: list[Any] = [None] * len(needs)
    lowest = needs.index(True)  # the gradient must reach down to this input
    for i in range(len(layers) - 1, -1, -1):
        at = 2 * i + 1  # the position of the layer's weight among the inputs
        w = params[2 * i]
        z, out = layers[i]
        h = layers[i - 1][1] if i else x  # the layer's input
        if specs[i] is not None:
            entry, p = specs[i]
            g = entry.vjp(ns, g, z, out, **p)
        if needs[at]:
            grads[at] = ns.mm(g.T, h)
        if needs[at + 1]:
            grads[at + 1] = ns.column_sums(g)
        if lowest >= at:
            break
        g = ns.mm(g, w)
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
        params=lambda s: {"acts": ("tanh", ("softplus", {"beta": 2.0}), None)},
    ),
    exact=True,  # the forward refuses mixed dtypes and takes 2-D input only
)


# ---------------------------------------------------------------- more maths: inverse
# trigonometry, running sums, einsum and linear algebra

# NOTE: the decompositions (eigh, qr, svd) give several arrays; the registry's ops give one, so
# each packs its results into one array (eigh: the eigenvalues as row 0 above the eigenvectors;
# qr and svd: the factors flattened side by side along the last axis) that the public functions
# of ``tinygrad_mlp.linalg`` unpack by slicing, a recorded and differentiable step.


def _xp(ns):
    """The array module behind a namespace (for constants such as identity matrices)."""
    return ns.arrays.xp if ns.differentiable else ns.xp


def _eye(ns, n: int, dtype) -> Any:
    return _xp(ns).eye(n, dtype=dtype)


def _square(name: str, a) -> None:
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ShapeError(
            f"linalg.{name}: A must be batches of square matrices, but they are "
            f"{' by '.join(map(str, a.shape[-2:]))} matrices (shape {tuple(a.shape)})"
        )


def _atan(ns, x):
    return ns.arctan(x), x


def _atan_vjp(ns, g, x, needs):
    # d/dx atan x = 1 / (1 + x^2)
    return (g / (x * x + 1),)


ATAN = register("atan", _atan, _atan_vjp)


def _asin(ns, x):
    return ns.arcsin(x), x


def _asin_vjp(ns, g, x, needs):
    # d/dx asin x = 1 / sqrt(1 - x^2)
    return (g / (1 - x * x) ** 0.5,)


ASIN = register("asin", _asin, _asin_vjp, 1, Sample(domains=("unit",)))


def _acos(ns, x):
    return ns.arccos(x), x


def _acos_vjp(ns, g, x, needs):
    # d/dx acos x = -1 / sqrt(1 - x^2)
    return (-g / (1 - x * x) ** 0.5,)


ACOS = register("acos", _acos, _acos_vjp, 1, Sample(domains=("unit",)))


def _atan2(ns, y, x):
    return ns.arctan2(y, x), (y, x)


def _atan2_vjp(ns, g, saved, needs):
    # d atan2(y, x) / dy = x / (x^2 + y^2), d atan2(y, x) / dx = -y / (x^2 + y^2)
    y, x = saved
    scaled = g / (x * x + y * y)
    return (scaled * x if needs[0] else None), (-(scaled * y) if needs[1] else None)


ATAN2 = register(
    "atan2",
    _atan2,
    _atan2_vjp,
    2,
    Sample(shapes=lambda n, m: ((n, m), (n, m)), domains=("nonzero", "nonzero"), broadcast=True),
)


def _cumsum(ns, x, axis):
    (axis,) = norm_axes(axis, x.ndim) or (0,)
    return ns.cumsum(x, axis=axis), axis


def _cumsum_vjp(ns, g, axis, needs):
    # out_i = sum_{j <= i} x_j  =>  dx_j = sum_{i >= j} g_i: a running sum from the other end
    back = (slice(None),) * axis + (slice(None, None, -1),)
    return (ns.cumsum(g[back], axis=axis)[back],)


CUMSUM = register(
    "cumsum",
    _cumsum,
    _cumsum_vjp,
    1,
    Sample(params=lambda s: {"axis": 1}),
    exact=True,
    saves_inputs=False,
)


def einsum_parts(equation: str) -> tuple[list[str], str]:
    """The subscripts of each operand and of the output of an explicit einsum equation."""
    inputs, out = equation.split("->")
    return inputs.split(","), out


def _einsum(ns, *xs, equation):
    return ns.einsum(equation, *xs), (xs, equation)


def _einsum_vjp(ns, g, saved, needs):
    # out = sum over the contracted letters of prod_k x_k: the gradient of x_k contracts g with
    # every other operand back to x_k's letters (each letter of x_k appears once in x_k and
    # also in the output or another operand: tinygrad_mlp.einsum arranges that)
    xs, equation = saved
    subs, out = einsum_parts(equation)
    grads = []
    for k, need in enumerate(needs):
        if not need:
            grads.append(None)
            continue
        others = [s for i, s in enumerate(subs) if i != k]
        eq = ",".join([out, *others]) + "->" + subs[k]
        grad = ns.einsum(eq, g, *[x for i, x in enumerate(xs) if i != k])
        # NOTE: einsum broadcasts a letter of size 1 against the same letter of another size
        # (as PyTorch's does): where x_k has size 1 the gradient sums that letter, and where the
        # others have size 1 the gradient is the same along x_k's letter, so it is broadcast
        shape = tuple(xs[k].shape)
        sums = tuple(a for a, n in enumerate(shape) if n == 1 and grad.shape[a] != 1)
        if sums:
            grad = grad.sum(axis=sums, keepdims=True)
        if tuple(grad.shape) != shape:
            grad = ns.broadcast_to(grad, shape)
        grads.append(grad)
    return tuple(grads)


EINSUM = register(
    "einsum",
    _einsum,
    _einsum_vjp,
    None,
    Sample(
        shapes=lambda n, m: ((n, m), (m, 2), (2, n)),
        domains=("real",) * 3,
        params=lambda s: {"equation": "ij,jk,kl->li"},
    ),
)


def _solve(ns, a, b):
    if a.ndim < 2 or b.ndim < 2 or a.shape[-1] != a.shape[-2] or b.shape[-2] != a.shape[-1]:
        raise ShapeError(
            f"linalg.solve: A of shape {tuple(a.shape)} and B of shape {tuple(b.shape)} do not "
            "fit A X = B: A must be square matrices (..., n, n) and B (..., n, k)"
        )
    out = ns.linalg_solve(a, b)
    return out, (a, out)


def _solve_vjp(ns, g, saved, needs):
    # X = A^-1 B  =>  dB = A^-T G, dA = -dB X^T
    a, x = saved
    gb = ns.linalg_solve(ns.mT(a), g)
    return (-ns.matmul(gb, ns.mT(x)) if needs[0] else None), (gb if needs[1] else None)


LINALG_SOLVE = register(
    "linalg_solve",
    _solve,
    _solve_vjp,
    2,
    Sample(shapes=lambda n, m: ((m, m), (m, n)), domains=("matrix", "real")),
)


def _det(ns, a):
    _square("det", a)
    out = ns.linalg_det(a)
    return out, (a, out)


def _det_vjp(ns, g, saved, needs):
    # d det(A) / dA = cof(A), the cofactor matrix: det(A) A^-T (Jacobi's formula) where A is
    # invertible; where det(A) is exactly 0 (LU met a zero pivot), from A = U S Vh:
    # cof(A) = det(U) det(Vh) U diag(gamma) Vh, gamma_i = prod_{k != i} S_k (as PyTorch)
    a, out = saved
    n = a.shape[-1]
    eye = _eye(ns, n, a.dtype)
    lead = tuple(out.shape)
    scale = g.reshape(lead + (1, 1))
    singular = out == 0
    if not bool(singular.any()):
        inverse = ns.linalg_solve(a, eye)
        return (scale * out.reshape(lead + (1, 1)) * ns.mT(inverse),)
    # NOTE: each branch gets a stand-in where the other applies (the identity to invert,
    # diag(1, ..., n), whose singular values are apart, to decompose), so neither its value
    # nor its gradient at higher order is inf or NaN
    picked = singular.reshape(lead + (1, 1))
    inverse = ns.linalg_solve(ns.where(picked, eye, a), eye)
    jacobi = out.reshape(lead + (1, 1)) * ns.mT(inverse)
    apart = _xp(ns).diag(_xp(ns).arange(1, n + 1)).astype(a.dtype)
    u, s, vh = svd_split(ns.linalg_svd(ns.where(picked, a, apart)), n, n)
    others = s.reshape(lead + (1, n)) * (1 - eye) + eye  # row i: S with S_i replaced by 1
    gamma = ns.prod(others, -1)
    sign = (ns.linalg_det(u) * ns.linalg_det(vh)).reshape(lead + (1, 1))
    cofactor = sign * ns.matmul(u * gamma.reshape(lead + (1, n)), vh)
    return (scale * ns.where(picked, cofactor, jacobi),)


LINALG_DET = register(
    "linalg_det", _det, _det_vjp, 1, Sample(shapes=lambda n, m: ((m, m),), domains=("matrix",))
)


def _sym(ns, a):
    return (a + ns.mT(a)) * 0.5


def _tril_mask(ns, n: int, dtype, k: int = 0):
    return _xp(ns).tri(n, n, k, dtype=dtype)


def _cholesky(ns, a, uplo=None):
    _square("cholesky", a)
    out = ns.linalg_cholesky(a, uplo)
    return out, out


def _cholesky_vjp(ns, g, low, needs):
    # A = L L^T, read as its symmetric part: dA = L^-T Phi(L^T G) L^-1, symmetrised, where Phi
    # keeps the lower triangle and halves the diagonal
    # NOTE: with ``uplo`` the forward reads one triangle, and the gradient is still this
    # symmetric one, spread over both triangles as in PyTorch: the derivative along symmetric
    # changes of A, not along changes of the triangle read
    n = low.shape[-1]
    phi = _tril_mask(ns, n, low.dtype) - _eye(ns, n, low.dtype) * 0.5
    p = ns.matmul(ns.mT(low), g) * phi
    # L^-T P L^-1 = solve(L^T, solve(L^T, P^T)^T)
    s = ns.linalg_solve(ns.mT(low), ns.mT(ns.linalg_solve(ns.mT(low), ns.mT(p))))
    return (_sym(ns, s),)


LINALG_CHOLESKY = register(
    "linalg_cholesky",
    _cholesky,
    _cholesky_vjp,
    1,
    Sample(shapes=lambda n, m: ((m, m),), domains=("matrix",)),
    saves_inputs=False,
)


def _eigh(ns, a, uplo=None):
    _square("eigh", a)
    out = ns.linalg_eigh(a, uplo)
    return out, (out[..., 0, :], out[..., 1:, :])


def _eigh_vjp(ns, g, saved, needs):
    # A = V diag(w) V^T (A read as its symmetric part): dA = V (diag(gw) + F o K) V^T with
    # K = (V^T gV - gV^T V) / 2 and F_ij = 1 / (w_j - w_i) off the diagonal
    w, v = saved
    gw, gv = g[..., 0, :], g[..., 1:, :]
    n = w.shape[-1]
    eye = _eye(ns, n, w.dtype)
    vg = ns.matmul(ns.mT(v), gv)
    skew = (vg - ns.mT(vg)) * 0.5
    gaps = w.reshape(tuple(w.shape[:-1]) + (1, n)) - w.reshape(tuple(w.shape) + (1,)) + eye
    inner = skew / gaps + gw.reshape(tuple(gw.shape[:-1]) + (1, n)) * eye
    # NOTE: symmetric; with ``uplo`` it is spread over both triangles, as in PyTorch (see
    # _cholesky_vjp)
    return (ns.matmul(ns.matmul(v, inner), ns.mT(v)),)


LINALG_EIGH = register(
    "linalg_eigh",
    _eigh,
    _eigh_vjp,
    1,
    Sample(shapes=lambda n, m: ((m, m),), domains=("matrix",)),
    saves_inputs=False,
)


def qr_split(packed, m: int, n: int):
    """Q (..., m, k) and R (..., k, n) out of linalg_qr's packed output."""
    k = min(m, n)
    lead = tuple(packed.shape[:-1])
    return packed[..., : m * k].reshape(lead + (m, k)), packed[..., m * k :].reshape(lead + (k, n))


def _qr(ns, a):
    m, n = a.shape[-2:] if a.ndim >= 2 else (0, 1)
    if m < n:  # tinygrad_mlp.linalg.qr splits wide matrices into a square part and the rest
        raise ShapeError(
            f"linalg_qr: expected matrices with at least as many rows as columns, got shape "
            f"{tuple(a.shape)}"
        )
    out = ns.linalg_qr(a)
    return out, (qr_split(out, m, n), m, n)


def _qr_vjp(ns, g, saved, needs):
    # A = QR (reduced, m >= n): M = R gR^T - gQ^T Q, dA = (gQ + Q copyltu(M)) R^-T, where
    # copyltu copies the lower triangle of M onto its upper one
    (q, r), m, n = saved
    gq, gr = qr_split(g, m, n)
    mm = ns.matmul(r, ns.mT(gr)) - ns.matmul(ns.mT(gq), q)
    low = mm * _tril_mask(ns, n, mm.dtype, -1)
    copied = low + ns.mT(low) + mm * _eye(ns, n, mm.dtype)
    b = gq + ns.matmul(q, copied)
    # B R^-T = (R^-1 B^T)^T
    return (ns.mT(ns.linalg_solve(r, ns.mT(b))),)


LINALG_QR = register(
    "linalg_qr",
    _qr,
    _qr_vjp,
    1,
    Sample(shapes=lambda n, m: ((m + 1, m),), domains=("matrix",)),
    saves_inputs=False,
)


def svd_split(packed, m: int, n: int):
    """U (..., m, k), S (..., k) and Vh (..., k, n) out of linalg_svd's packed output."""
    k = min(m, n)
    lead = tuple(packed.shape[:-1])
    u = packed[..., : m * k].reshape(lead + (m, k))
    s = packed[..., m * k : m * k + k]
    vh = packed[..., m * k + k :].reshape(lead + (k, n))
    return u, s, vh


def _svd(ns, a):
    if a.ndim < 2:
        raise ShapeError(f"linalg_svd: expected matrices, got shape {tuple(a.shape)}")
    m, n = a.shape[-2:]
    out = ns.linalg_svd(a)
    return out, (svd_split(out, m, n), m, n)


def _svd_vjp(ns, g, saved, needs):
    # A = U S Vh (reduced, distinct singular values), with E_jk = S_k^2 - S_j^2 off the diagonal
    # and skew(X) = X - X^T:
    # dA = U [(skew(U^T gU) / E) S + S (skew(V^T gV) / E) + diag(gS)] Vh
    #      + (I - U U^T) gU S^-1 Vh + U S^-1 gVh (I - V V^T)
    (u, s, vh), m, n = saved
    gu, gs, gvh = svd_split(g, m, n)
    k = min(m, n)
    eye = _eye(ns, k, s.dtype)
    row = s.reshape(tuple(s.shape[:-1]) + (1, k))  # S_k along a row
    col = s.reshape(tuple(s.shape) + (1,))  # S_j down a column
    gaps = row * row - col * col + eye
    ug = ns.matmul(ns.mT(u), gu)
    vg = ns.matmul(vh, ns.mT(gvh))
    inner = (ug - ns.mT(ug)) / gaps * row + col * ((vg - ns.mT(vg)) / gaps)
    inner = inner + gs.reshape(tuple(gs.shape[:-1]) + (1, k)) * eye
    out = ns.matmul(ns.matmul(u, inner), vh)
    if m > k:
        rest = (gu - ns.matmul(u, ug)) / row
        out = out + ns.matmul(rest, vh)
    if n > k:
        rest = (gvh - ns.matmul(ns.mT(vg), vh)) / col
        out = out + ns.matmul(u, rest)
    return (out,)


LINALG_SVD = register(
    "linalg_svd",
    _svd,
    _svd_vjp,
    1,
    Sample(shapes=lambda n, m: ((m + 1, m),), domains=("matrix",)),
    saves_inputs=False,
)


# ---------------------------------------------------------------- fused losses


def _reduce(ns, losses, reduction: str):
    if reduction == "mean":
        # NOTE: the same float32 sum as mean(), minus its overhead
        return losses.sum() / math.prod(losses.shape)
    if reduction == "sum":
        return losses.sum()
    return losses


def _scale(ns, g, reduction: str, n: int, ndim: int):
    """The incoming gradient of a reduced loss as a per-element factor."""
    if reduction == "mean":
        return g / n
    if reduction == "sum":
        return g
    return g.reshape(tuple(g.shape) + (1,) * (ndim - g.ndim))


def _cross_entropy(ns, logits, target, reduction="mean"):
    # NOTE: log-sum-exp with the row max subtracted: finite for logits of any size. The softmax
    # itself is left to backward, which needs it as a new array anyway.
    shifted = logits - ns.row_max(logits).reshape((-1, 1))
    exps = ns.exp(shifted)
    sums = ns.row_sums(exps)
    if target.ndim == 1:  # class indices: loss_i = log sum_c e^z_ic - z_i,target
        # the picked elements by their flat positions: cheaper than a (rows, target) index
        picks = ns.constant("starts", len(target), logits.shape[1]) + target
        losses = ns.log(sums) - shifted.reshape(-1)[picks]
    else:  # class probabilities: loss_i = -sum_c y_ic log softmax(z_i)_c
        picks = None
        losses = -ns.row_sums((shifted - ns.log(sums).reshape((-1, 1))) * target)
    return _reduce(ns, losses, reduction), (exps, sums, target, picks, reduction)


def _cross_entropy_vjp(ns, g, saved, needs):
    # loss_i = -sum_c y_ic log softmax(z_i)_c  =>  dz_i = softmax(z_i) sum_c y_ic - y_i
    exps, sums, target, picks, reduction = saved
    dz = exps / sums.reshape((-1, 1))
    if picks is not None:
        dz = ns.sub_at(dz, picks, 1)
    else:
        dz = dz * ns.row_sums(target).reshape((-1, 1)) - target
    return (ns.imul(dz, _scale(ns, g, reduction, len(dz), 2)),)


CROSS_ENTROPY = register(
    "cross_entropy",
    _cross_entropy,
    _cross_entropy_vjp,
    1,
    Sample(
        shapes=lambda n, m: ((n, m + 1),),
        params=lambda s: {
            "target": np.arange(s[0][0]) % s[0][1],
            "reduction": "mean",
        },
    ),
    exact=True,
)


def _clamped_log(ns, x):
    """log(x) floored at -100; x is raised to 1e-45 first, so log(0) neither warns nor is -inf."""
    return ns.maximum(ns.log(ns.maximum(x, 1e-45)), -100)


def _binary_cross_entropy(ns, p, y, reduction="mean"):
    # NOTE: logs are clamped at -100, as PyTorch does, so p = 0 or 1 gives a finite loss.
    losses = -(_clamped_log(ns, p) * y + _clamped_log(ns, 1 - p) * (1 - y))
    return _reduce(ns, losses, reduction), (p, y, reduction)


def _binary_cross_entropy_vjp(ns, g, saved, needs):
    # d/dp -(y log p + (1-y) log(1-p)) = (p - y) / (p (1 - p)), denominator kept >= 1e-12
    p, y, reduction = saved
    dp = (p - y) / ns.maximum(p * (1 - p), 1e-12)
    return (dp * _scale(ns, g, reduction, math.prod(p.shape), p.ndim),)


BINARY_CROSS_ENTROPY = register(
    "binary_cross_entropy",
    _binary_cross_entropy,
    _binary_cross_entropy_vjp,
    1,
    Sample(
        domains=("unit",),
        params=lambda s: {"y": np.indices(s[0]).sum(axis=0) % 2 * 0.8 + 0.1},
    ),
)


def _bce_with_logits(ns, z, y, reduction="mean"):
    # NOTE: max(z, 0) - z y + log(1 + e^-|z|) is log(1 + e^z) - z y without overflow.
    losses = ns.maximum(z, 0) - z * y + ns.log1p(ns.exp(-ns.abs(z)))
    return _reduce(ns, losses, reduction), (z, y, reduction)


def _bce_with_logits_vjp(ns, g, saved, needs):
    # d/dz [log(1 + e^z) - z y] = sigmoid(z) - y
    z, y, reduction = saved
    return ((_sigmoid_values(ns, z) - y) * _scale(ns, g, reduction, math.prod(z.shape), z.ndim),)


BCE_WITH_LOGITS = register(
    "binary_cross_entropy_with_logits",
    _bce_with_logits,
    _bce_with_logits_vjp,
    1,
    Sample(params=lambda s: {"y": np.indices(s[0]).prod(axis=0) % 2 * 1.0}),
)


def _mse_loss(ns, pred, target, reduction="mean"):
    diff = pred - target
    return _reduce(ns, diff * diff, reduction), (diff, reduction)


def _mse_loss_vjp(ns, g, saved, needs):
    # d/dp mean((p - y)^2) = 2 (p - y) / n, and the negative of it for y
    diff, reduction = saved
    gp = diff * (_scale(ns, g, reduction, math.prod(diff.shape), diff.ndim) * 2)
    return (gp if needs[0] else None), (-gp if needs[1] else None)


MSE_LOSS = register(
    "mse_loss",
    _mse_loss,
    _mse_loss_vjp,
    2,
    Sample(shapes=lambda n, m: ((n, m), (n, m)), domains=("real", "real")),
)


# ---------------------------------------------------------------- convolution and pooling

# NOTE: the window ops take their geometry per spatial dim: ``kernel_size``, ``dilation`` and
# ``stride`` as tuples, ``padding`` as (before, after) pairs. Inputs are (N, C, *size). The
# windows of x are cols (N, C, *kernel, *out) with cols[n, c, i, y] = xpad[n, c, y s + i d] (per
# dim); unfold makes them and fold, its adjoint, adds them back into place. Pooling pads with
# PyTorch's symmetric ``padding`` and, in ceil mode, with what the last window needs after it.


def pool_padding(size, kernel_size, dilation, padding, stride, ceil_mode) -> tuple:
    """(before, after) pairs: PyTorch's pooling output size, as the padding that gives it."""
    pairs = []
    for n, k, d, p, s in zip(size, kernel_size, dilation, padding, stride, strict=True):
        span = d * (k - 1) + 1
        out = (n + 2 * p - span + (s - 1 if ceil_mode else 0)) // s + 1
        if ceil_mode and (out - 1) * s >= n + p:
            out -= 1  # the last window must start inside the input or its left padding
        pairs.append((p, max(p, (out - 1) * s + span - n - p)))
    return tuple(pairs)


def _unfold(ns, x, kernel_size, dilation, padding, stride):
    geometry = (kernel_size, dilation, padding, stride)
    return ns.windows(x, *geometry), (tuple(x.shape[2:]), geometry)


def _unfold_vjp(ns, g, saved, needs):
    # each window element copies one input element (or the zero padding): the gradients of the
    # copies add up at their element, which is fold
    size, geometry = saved
    return (ns.fold_windows(g, size, *geometry),)


_WINDOWS = {
    "kernel_size": (2, 3),
    "dilation": (1, 2),
    "padding": ((1, 0), (1, 2)),
    "stride": (2, 1),
}

UNFOLD = register(
    "unfold",
    _unfold,
    _unfold_vjp,
    1,
    Sample(shapes=lambda n, m: ((min(n, 2), m, 3, 4),), params=lambda s: dict(_WINDOWS)),
    exact=True,
    saves_inputs=False,
)


def _fold(ns, cols, output_size, kernel_size, dilation, padding, stride):
    nd = len(output_size)
    counts = window_counts(output_size, kernel_size, dilation, padding, stride)
    if cols.ndim != 2 + 2 * nd or tuple(cols.shape[2:]) != tuple(kernel_size) + counts:
        raise ShapeError(
            f"fold: windows of shape {tuple(cols.shape)} do not fit output size "
            f"{tuple(output_size)}: expected (N, C, *{tuple(kernel_size)}, *{counts})"
        )
    geometry = (kernel_size, dilation, padding, stride)
    return ns.fold_windows(cols, output_size, *geometry), geometry


def _fold_vjp(ns, g, geometry, needs):
    # fold adds each window element into its place: its gradient is that place's, which is unfold
    return (ns.windows(g, *geometry),)


FOLD = register(
    "fold",
    _fold,
    _fold_vjp,
    1,
    Sample(
        shapes=lambda n, m: ((min(n, 2), m, 2, 3, 2, 3),),
        params=lambda s: dict(_WINDOWS, output_size=(3, 4)),
    ),
    exact=True,
    saves_inputs=False,
)


def _check_conv(x, w, b, groups: int) -> None:
    c, o = x.shape[1], w.shape[0]
    if w.ndim != x.ndim or c != w.shape[1] * groups or o % groups:
        raise ShapeError(
            f"conv: given groups={groups}, weight of size {list(w.shape)}, expected input"
            f"{list(x.shape)} to have {w.shape[1] * groups} channels, but got {c} channels "
            f"instead (and out_channels {o} divisible by groups)"
        )
    if b is not None and tuple(b.shape) != (o,):
        raise ShapeError(
            f"conv: bias of shape {list(b.shape)} does not fit weight of size {list(w.shape)}: "
            f"expected [{o}]"
        )
    if w.dtype != x.dtype or (b is not None and b.dtype != x.dtype):
        raise DTypeError(
            f"conv: input type ({x.dtype}), weight type ({w.dtype}) and bias type "
            f"({None if b is None else b.dtype}) should be the same"
        )


def _conv(ns, x, w, b=None, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1):
    # out[n, o, y] = sum over c, i of w[o, c, i] xpad[n, g c, y s + i d]: per group, one matrix
    # product of the flattened weight (O / G, C / G * K) and the windows (C / G * K, N * L)
    _check_conv(x, w, b, groups)
    n, o, nd = x.shape[0], w.shape[0], x.ndim - 2
    geometry = (tuple(w.shape[2:]), dilation, padding, stride)
    fast = conv2d_channels_last(x, w, b, geometry) if groups == 1 else None
    if fast is not None:  # numpy arrays, 2-D: computed channels-last
        out, cols = fast
        return out, (x.shape, w, cols, geometry, groups, b is not None, True)
    cols = ns.windows(x, *geometry, batch_inside=True)  # (C, *kernel, N, *out)
    counts = tuple(cols.shape[2 + nd :])
    cols = cols.reshape((groups, -1, n * math.prod(counts)))
    if groups == 1:
        out = ns.mm(w.reshape((o, -1)), cols.reshape(cols.shape[1:]))
    else:
        out = ns.matmul(w.reshape((groups, o // groups, -1)), cols)
    # NOTE: (O, N, *out) seen as (N, O, *out): the elementwise ops after a convolution keep
    # that memory order, and the next convolution's windows read it as it is
    out = ns.permute(out.reshape((o, n) + counts), (1, 0, *range(2, 2 + nd)))
    if b is not None:
        out = ns.iadd(out, b.reshape((o,) + (1,) * nd))
    return out, (x.shape, w, cols, geometry, groups, b is not None, False)


def _conv_vjp(ns, g, saved, needs):
    # out = W cols per group  =>  dcols = W^T G, folded back onto x (unfold's adjoint);
    # dW = G cols^T; db = G summed over images and positions
    shape, w, cols, geometry, groups, has_bias, channels_last = saved
    if channels_last:
        gx, gw, gb = conv2d_channels_last_grads(g, w, cols, tuple(shape[2:]), geometry, needs)
        return (gx, gw, gb) if has_bias else (gx, gw)
    n, o, nd = g.shape[0], g.shape[1], g.ndim - 2
    g3 = ns.permute(g, (1, 0, *range(2, 2 + nd))).reshape((groups, o // groups, -1))
    wm = w.reshape((groups, o // groups, -1))
    gx = gw = gb = None
    if needs[0]:
        gcols = ns.matmul(ns.mT(wm), g3)
        gcols = gcols.reshape((shape[1],) + geometry[0] + (n,) + tuple(g.shape[2:]))
        order = (1 + nd, 0, *range(1, 1 + nd), *range(2 + nd, 2 + 2 * nd))
        gx = ns.fold_windows(ns.permute(gcols, order), tuple(shape[2:]), *geometry)
    if needs[1]:
        # NOTE: (cols G^T)^T: BLAS runs the product faster with the long dim (N L) as the
        # columns of its first operand than as the rows of a transposed second one
        gw = ns.mT(ns.matmul(cols, ns.mT(g3))).reshape(w.shape)
    if has_bias and needs[2]:
        gb = ns.row_sums(g3.reshape((o, -1)))  # G summed over images and positions
    return (gx, gw, gb) if has_bias else (gx, gw)


CONV = register(
    "conv",
    _conv,
    _conv_vjp,
    None,
    Sample(
        shapes=lambda n, m: ((min(n, 2), 2, 3, 4), (2, 1, 2, 2), (2,)),
        domains=("real",) * 3,
        params=lambda s: {
            "stride": (1, 2),
            "padding": ((1, 0), (1, 1)),
            "dilation": (2, 1),
            "groups": 2,
        },
    ),
    exact=True,  # the forward refuses mixed dtypes
)


def _max_pool(ns, x, kernel_size, stride, padding, dilation, ceil_mode=False):
    size = tuple(x.shape[2:])
    pairs = pool_padding(size, kernel_size, dilation, padding, stride, ceil_mode)
    geometry = (kernel_size, dilation, pairs, stride)
    out, arg = ns.max_windows(x, *geometry)
    return out, (size, arg, geometry)


def _max_pool_vjp(ns, g, saved, needs):
    # d max(window) / dx = 1 at the window's first maximum, 0 elsewhere: each output's gradient
    # goes to that element, and adds up where windows overlap
    size, arg, geometry = saved
    return (ns.spread_max(g, arg, size, *geometry),)


MAX_POOL = register(
    "max_pool",
    _max_pool,
    _max_pool_vjp,
    1,
    Sample(
        shapes=lambda n, m: ((min(n, 2), m, 3, 4),),
        domains=("distinct",),
        params=lambda s: {
            "kernel_size": (2, 3),
            "stride": (2, 1),
            "padding": (1, 1),
            "dilation": (1, 1),
            "ceil_mode": True,
        },
    ),
    exact=True,
)


def pool_divisor(size, kernel_size, stride, padding, ceil_mode, count_include_pad) -> Any:
    """The number each window sum of average pooling is divided by, per output position: the
    window's size clipped to the padded input (count_include_pad) or to the input."""
    pairs = pool_padding(size, kernel_size, (1,) * len(size), padding, stride, ceil_mode)
    counts = window_counts(size, kernel_size, (1,) * len(size), pairs, stride)
    divisor = np.ones(())
    for n, k, s, p, m in zip(size, kernel_size, stride, padding, counts, strict=True):
        start = np.arange(m) * s - p
        if count_include_pad:
            along = np.minimum(start + k, n + p) - start
        else:
            along = np.minimum(start + k, n) - np.maximum(start, 0)
        divisor = np.multiply.outer(divisor, along)
    return divisor


def _avg_pool(
    ns, x, kernel_size, stride, padding, ceil_mode=False, count_include_pad=True, divisor=None
):
    # out = the window sum / its divisor (divisor: a number, or one per output position)
    size, nd = tuple(x.shape[2:]), x.ndim - 2
    pairs = pool_padding(size, kernel_size, (1,) * nd, padding, stride, ceil_mode)
    geometry = (kernel_size, (1,) * nd, pairs, stride)
    sums = ns.windows(x, *geometry).sum(axis=tuple(range(2, 2 + nd)))
    if is_array(sums) and is_array(divisor) and divisor.dtype != sums.dtype:
        divisor = divisor.astype(sums.dtype)  # the output keeps the input's dtype
    return sums / divisor, (size, geometry, divisor)


def _avg_pool_vjp(ns, g, saved, needs):
    # d (sum of a window / divisor) / dx = 1 / divisor for each element of the window
    size, geometry, divisor = saved
    lead, counts, nd = tuple(g.shape[:2]), tuple(g.shape[2:]), len(size)
    share = (g / divisor).reshape(lead + (1,) * nd + counts)
    spread = ns.broadcast_to(share, lead + tuple(geometry[0]) + counts)
    return (ns.fold_windows(spread, size, *geometry),)


AVG_POOL = register(
    "avg_pool",
    _avg_pool,
    _avg_pool_vjp,
    1,
    Sample(
        shapes=lambda n, m: ((min(n, 2), m, 3, 4),),
        params=lambda s: {
            "kernel_size": (2, 3),
            "stride": (2, 2),
            "padding": (1, 1),
            "ceil_mode": True,
            "count_include_pad": False,
            "divisor": pool_divisor(s[0][2:], (2, 3), (2, 2), (1, 1), True, False),
        },
    ),
    exact=True,
    saves_inputs=False,
)
