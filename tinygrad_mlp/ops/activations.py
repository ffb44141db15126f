"""The activation table (each activation's forward and derivative, written once), the activation
ops made from it, and softmax and log-softmax."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._registry import OPS, Op, Sample, register

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
