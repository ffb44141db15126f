"""The reductions: sum, mean, var, amax and prod."""

from __future__ import annotations

import math

from ._registry import Sample, norm_axes, register


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
