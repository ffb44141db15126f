"""The elementwise ops: arithmetic, comparisons' selections (maximum, minimum, where) and
the elementwise functions (exp, log, sin, erf, ...)."""

from __future__ import annotations

import math

from ..backend import np
from ._registry import Sample, register

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
