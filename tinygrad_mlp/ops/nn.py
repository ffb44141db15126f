"""The fused losses (cross-entropy, binary cross-entropy, MSE) and the window ops: unfold, fold,
convolution and pooling."""

from __future__ import annotations

import math
from typing import Any

from ..backend import (
    conv2d_channels_last,
    conv2d_channels_last_grads,
    is_array,
    np,
    window_counts,
)
from ._registry import DTypeError, Sample, ShapeError, register
from .activations import _sigmoid_values

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
