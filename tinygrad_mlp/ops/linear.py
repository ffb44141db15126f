"""The matrix products: matmul, linear, and the fused stack of linear layers (mlp)."""

from __future__ import annotations

from typing import Any

from ._registry import DTypeError, Sample, ShapeError, register
from .activations import ACTIVATIONS, Activation

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
