"""torch.nn.functional's losses. Each takes ``reduction`` ('mean', 'sum' or 'none'); the plain
cross-entropy of class indices is one fused op, every other option is composed from Tensor ops.
"""

from __future__ import annotations

import warnings
from typing import Any

from ... import backend
from ... import ops as O
from ..._tensor import Tensor
from ..._tensor import where as _select
from ...autograd.graph import apply
from ...backend import np
from ._layers import _REDUCTIONS, _UNSIGNED, _check_tensors, _const, _where, softplus

# ---------------------------------------------------------------- losses


def _check_reduction(name: str, reduction: str, allowed: tuple = _REDUCTIONS) -> None:
    if reduction not in allowed:
        raise ValueError(f"{name}: {reduction!r} is not a valid value for reduction {allowed}")


def _reduce(losses: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return losses.mean()
    return losses.sum() if reduction == "sum" else losses


def _target_array(name: str, target: Any, like: Tensor):
    """A loss target as a backend array on ``like``'s device."""
    if isinstance(target, Tensor):
        if target.requires_grad:
            raise ValueError(f"{name}: the target must not require grad (detach it)")
        data = target._data
    else:
        try:
            data = target if backend.is_array(target) else np.asarray(target)
        except (TypeError, ValueError) as e:
            raise TypeError(f"{name}: target must be numeric: {e}") from None
    if data.dtype.kind not in "biuf":
        raise TypeError(f"{name}: target must be numeric, got dtype {data.dtype}")
    if type(data) is type(like._data):
        return data
    return backend.to_device(data, like.device)


def _class_indices(name: str, target, logits: Tensor, ignore_index: int = -100):
    """Validated int64 class indices for (N, C) logits; labels equal to ignore_index pass."""
    n, c = logits._data.shape
    if target.shape != (n,):
        raise ValueError(
            f"{name}: target of shape {tuple(target.shape)} does not fit input of shape "
            f"{tuple(logits.shape)}: expected class indices of shape ({n},)"
        )
    if target.dtype.kind == "f":
        if not bool((target == target.round()).all()):
            raise ValueError(f"{name}: class-index targets must be whole numbers")
        target = target.astype(np.int64)
    elif target.dtype.kind == "b":
        target = target.astype(np.int64)
    # NOTE: seen as unsigned, a negative label is huge, so one max() checks both ends
    if n and int(target.view(_UNSIGNED[target.dtype.itemsize]).max()) >= c:
        bad = ((target < 0) | (target >= c)) & (target != ignore_index)
        if bool(bad.any()):
            label = int(target[bad.argmax()])
            raise IndexError(
                f"{name}: Target {label} is out of bounds for {c} classes (valid labels are "
                f"0..{c - 1}, or ignore_index={ignore_index})"
            )
    return target


def _as_2d(name: str, input: Tensor, target: Any) -> tuple[Tensor, Any]:
    """(N, C) logits and class indices (N,) from (C,), (N, C) or (N, C, d1, ...) input."""
    if input.ndim == 1:
        if target is not None and target.size != 1:
            raise ValueError(
                f"{name}: input of shape {tuple(input.shape)} is one sample of C classes and "
                f"takes a 0-d target, got a target of shape {tuple(target.shape)}"
            )
        return input.reshape(1, -1), None if target is None else target.reshape(1)
    if input.ndim == 2:
        return input, target
    if input.ndim == 0:
        raise ValueError(f"{name}: input must have a class dimension, got a scalar")
    c = input.shape[1]
    order = (0, *range(2, input.ndim), 1)
    moved = input.permute(*order).reshape(-1, c)
    if target is not None and target.ndim == input.ndim - 1:
        target = target.reshape(-1)
    return moved, target


def _weight_array(name: str, weight: Any, like: Tensor):
    if weight is None:
        return None
    w = weight._data if isinstance(weight, Tensor) else np.asarray(weight)
    c = like.shape[1]
    if w.shape != (c,):
        raise RuntimeError(
            f"{name}: weight tensor should be defined either for all {c} classes or no classes "
            f"but got weight tensor of shape: {list(w.shape)}"
        )
    return _const(w.astype(like._data.dtype), like)._data


def _nll(name, logp, target, weight, ignore_index, reduction, shape):
    """PyTorch's nll_loss of (N, C) log-probabilities: -w[y] logp[y], 0 where ignored; the mean
    divides by the sum of the picked weights (the count of kept targets without weights)."""
    xp = backend.array_module_of(logp._data)
    ignored = target == ignore_index
    safe = xp.where(ignored, 0, target)
    picked = logp[xp.arange(len(safe)), safe]
    w = xp.ones(len(safe), dtype=logp._data.dtype) if weight is None else weight[safe]
    w = w * ~ignored
    losses = -picked * _const(w, logp)
    if reduction == "none":
        return losses.reshape(*shape)
    if reduction == "sum":
        return losses.sum()
    return _mean_over(losses.sum(), w.sum(), logp)


def _mean_over(total: Tensor, denom: Any, like: Tensor) -> Tensor:
    """total / denom for a weighted mean; NaN with a zero gradient when nothing counts (every
    target ignored), as PyTorch's."""
    if float(denom) == 0.0:
        nothing = _const(backend.array_module_of(like._data).zeros((), dtype=bool), like)
        return _select(nothing, total, float("nan"))
    return total / _const(denom, like)


def nll_loss(
    input: Tensor,
    target: Any,
    weight: Tensor | None = None,
    size_average: Any = None,
    ignore_index: int = -100,
    reduce: Any = None,
    reduction: str = "mean",
) -> Tensor:
    """Negative log-likelihood of class indices given log-probabilities (N, C) or (C,) or
    (N, C, d1, ...), with PyTorch's ``weight`` and ``ignore_index``."""
    _check_reduction("nll_loss", reduction)
    _check_tensors("nll_loss", input=input)
    t = _target_array("nll_loss", target, input)
    shape = t.shape
    logp, t = _as_2d("nll_loss", input, t)
    t = _class_indices("nll_loss", t, logp, ignore_index)
    w = _weight_array("nll_loss", weight, logp)
    return _nll("nll_loss", logp, t, w, ignore_index, reduction, shape)


def cross_entropy(
    input: Tensor,
    target: Any,
    weight: Tensor | None = None,
    size_average: Any = None,
    ignore_index: int = -100,
    reduce: Any = None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Softmax cross-entropy, as torch.nn.functional.cross_entropy.

    ``input`` is (N, C), (C,) or (N, C, d1, ...); ``target`` holds class indices or class
    probabilities of the input's shape. Plain class indices of (N, C) logits run as one fused op.
    """
    if reduction not in _REDUCTIONS:
        _check_reduction("cross_entropy", reduction)
    if not isinstance(input, Tensor):
        _check_tensors("cross_entropy", input=input)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    if isinstance(target, Tensor) and not target.requires_grad:
        target = target._data
    plain = weight is None and label_smoothing == 0.0
    data = input._data
    if (
        plain
        and data.ndim == 2
        and type(target) is type(data)
        and target.ndim == 1
        and target.dtype.kind in "iu"
        and target.shape[0] == data.shape[0]
        and (ignore_index < 0 or ignore_index >= data.shape[1])
    ):
        n, c = data.shape
        # the common case, class indices in an array on the logits' device
        if not n or int(target.view(_UNSIGNED[target.dtype.itemsize]).max()) < c:
            return apply(O.CROSS_ENTROPY, input, target=target, reduction=reduction)
    graph_target = _graph_target(target)
    if graph_target is not None and graph_target.shape == input.shape and input.ndim >= 1:
        return _cross_entropy_probs(input, graph_target, weight, reduction, label_smoothing)
    t = _target_array("cross_entropy", target, input)
    if t.dtype.kind == "f" and t.shape == tuple(input.shape) and input.ndim >= 1:
        return _cross_entropy_probs(input, t, weight, reduction, label_smoothing)
    if t.dtype.kind == "f" and t.ndim == input.ndim >= 2:  # probabilities of another shape
        raise O.ShapeError(
            f"cross_entropy: target probabilities of shape {tuple(t.shape)} do not fit input of "
            f"shape {tuple(input.shape)}: give them the same shape"
        )
    shape = t.shape
    logits, t = _as_2d("cross_entropy", input, t)
    t = _class_indices("cross_entropy", t, logits, ignore_index)
    w = _weight_array("cross_entropy", weight, logits)
    if plain and not bool((t == ignore_index).any()):
        out = apply(O.CROSS_ENTROPY, logits, target=t, reduction=reduction)
        return out.reshape(*shape) if reduction == "none" else out
    logp = logits.log_softmax(1)
    nll = _nll("cross_entropy", logp, t, w, ignore_index, reduction, shape)
    if label_smoothing == 0.0:
        return nll
    # PyTorch: (1 - eps) * nll + eps / C * smooth, smooth = -sum_c w_c logp_c (0 where ignored),
    # its mean divided by the same weight sum as the nll's
    xp = backend.array_module_of(logp._data)
    c = logits.shape[1]
    ignored = t == ignore_index
    wl = logp if w is None else logp * _const(w, logp)
    smooth = -wl.sum(1) * _const((~ignored).astype(logp._data.dtype), logp)
    if reduction == "none":
        smooth = smooth.reshape(*shape)
    elif reduction == "sum":
        smooth = smooth.sum()
    else:
        safe = xp.where(ignored, 0, t)
        denom = (~ignored).sum() if w is None else (w[safe] * ~ignored).sum()
        smooth = _mean_over(smooth.sum(), xp.asarray(denom, dtype=logp._data.dtype), logp)
    return nll * (1 - label_smoothing) + smooth * (label_smoothing / c)


def _cross_entropy_probs(input, t, weight, reduction, label_smoothing):
    """Cross-entropy of class probabilities: -sum_c w_c y_c log softmax(x)_c; the mean divides by
    the number of samples (not by the weights). ``t`` is an array, or a tensor in the graph."""
    dim = 0 if input.ndim == 1 else 1
    c = input.shape[dim]
    graph = isinstance(t, Tensor)
    t = t.to(input.dtype) if graph else t.astype(input._data.dtype, copy=False)
    if label_smoothing > 0:
        t = t * (1 - label_smoothing) + label_smoothing / c
    if weight is None and input.ndim == 2 and not graph:
        return apply(O.CROSS_ENTROPY, input, target=t, reduction=reduction)
    logp = input.log_softmax(dim)
    prod = logp * (t if graph else _const(t, input))
    if weight is not None:
        w = weight._data if isinstance(weight, Tensor) else np.asarray(weight)
        shape = [1] * input.ndim
        shape[dim] = c
        prod = prod * _const(w.reshape(shape).astype(input._data.dtype), input)
    if reduction == "none":
        return -prod.sum(dim)
    total = -prod.sum()
    if reduction == "sum":
        return total
    return total / (input._data.size / c) if input._data.size else total * float("nan")


def _same_shape_target(name: str, target: Any, pred: Tensor):
    """The target as an array of the input's dtype; PyTorch's binary cross-entropies refuse a
    target of another shape with ValueError."""
    t = _target_array(name, target, pred)
    if t.shape != pred.shape:
        raise ValueError(
            f"{name}: the target's size {tuple(t.shape)} differs from the input's size "
            f"{tuple(pred.shape)}; give them the same size"
        )
    return t.astype(pred._data.dtype, copy=False)


def _weighted(name: str, losses: Tensor, weight: Any, reduction: str) -> Tensor:
    if weight is not None:
        w = weight._data if isinstance(weight, Tensor) else np.asarray(weight)
        losses = losses * _const(w.astype(losses._data.dtype), losses)
    return _reduce(losses, reduction)


def binary_cross_entropy(
    input: Tensor,
    target: Any,
    weight: Tensor | None = None,
    size_average: Any = None,
    reduce: Any = None,
    reduction: str = "mean",
) -> Tensor:
    """-w (y log p + (1 - y) log(1 - p)) for probabilities p in [0, 1], logs clamped at -100."""
    _check_reduction("binary_cross_entropy", reduction)
    _check_tensors("binary_cross_entropy", input=input)
    graph_target = _graph_target(target)
    y = _same_shape_target(
        "binary_cross_entropy", target if graph_target is None else target.detach(), input
    )
    p = input._data
    if p.size and not (p.min() >= 0 and p.max() <= 1):  # NaN fails both, as in PyTorch
        raise RuntimeError(
            "binary_cross_entropy: all elements of input should be between 0 and 1 (apply "
            "sigmoid first, or use binary_cross_entropy_with_logits)"
        )
    if weight is None and graph_target is None:
        return apply(O.BINARY_CROSS_ENTROPY, input, y=y, reduction=reduction)
    losses = apply(O.BINARY_CROSS_ENTROPY, input, y=y, reduction="none")
    if graph_target is not None:
        # the loss is linear in y, d/dy = log(1 - p) - log(p) (logs floored at -100): a term
        # that is 0 in value carries that gradient (and the mixed second derivative)
        logs = (1 - input).log().clamp(min=-100) - input.log().clamp(min=-100)
        losses = losses + (graph_target - graph_target.detach()) * logs
    return _weighted("binary_cross_entropy", losses, weight, reduction)


def binary_cross_entropy_with_logits(
    input: Tensor,
    target: Any,
    weight: Tensor | None = None,
    size_average: Any = None,
    reduce: Any = None,
    reduction: str = "mean",
    pos_weight: Tensor | None = None,
) -> Tensor:
    """Binary cross-entropy of sigmoid(x), computed stably from the logits x.

    With ``pos_weight`` (broadcast along the last dim, as PyTorch):
    loss = (1 - y) x + (1 + (pos_weight - 1) y) log(1 + e^-x).
    """
    name = "binary_cross_entropy_with_logits"
    _check_reduction(name, reduction)
    _check_tensors(name, input=input)
    graph_target = _graph_target(target)
    y = _same_shape_target(name, target if graph_target is None else target.detach(), input)
    if pos_weight is None:
        if weight is None and graph_target is None:
            return apply(O.BCE_WITH_LOGITS, input, y=y, reduction=reduction)
        losses = apply(O.BCE_WITH_LOGITS, input, y=y, reduction="none")
        if graph_target is not None:
            # linear in y with d/dy = -x: a term that is 0 in value carries it
            losses = losses - (graph_target - graph_target.detach()) * input
        return _weighted(name, losses, weight, reduction)
    pw = pos_weight._data if isinstance(pos_weight, Tensor) else np.asarray(pos_weight)
    pw = backend.to_device(np.asarray(backend.to_numpy(pw)), input.device).astype(y.dtype)
    log_weight = 1 + (pw - 1) * y
    # log(1 + e^-x) through the softplus op: finite for any x, and its derivative -sigmoid(-x)
    # is right at x = 0 too (a sum of relu(-x) and |x| terms would have 0 there)
    softplus_neg = softplus(-input, threshold=float("inf"))
    losses = input * _const(1 - y, input) + softplus_neg * _const(log_weight, input)
    if graph_target is not None:
        # d/dy = -x + (pos_weight - 1) log(1 + e^-x)
        slope = softplus_neg * _const(pw - 1, input) - input
        losses = losses + (graph_target - graph_target.detach()) * slope
    return _weighted(name, losses, weight, reduction)


def _graph_target(target: Any) -> Tensor | None:
    """The target when it is a tensor that requires grad (soft labels, distillation)."""
    return target if isinstance(target, Tensor) and target.requires_grad else None


def _pair(
    name: str, input: Tensor, target: Any, warn: bool = True, promote: bool = True
) -> tuple[Tensor, Tensor]:
    """The input and the target as tensors (the target kept in the graph when it requires
    grad). With ``promote``, a float target of a wider dtype widens the input, as PyTorch's type
    promotion does. As in PyTorch, a target of another shape that broadcasts with the input is
    broadcast, with a UserWarning unless ``warn`` is False; one that does not broadcast raises
    RuntimeError."""
    _check_tensors(name, input=input)
    data = target._data if isinstance(target, Tensor) else None
    if (
        promote
        and data is not None
        and data.dtype.kind == "f"
        and input._data.dtype.kind == "f"
        and data.dtype.itemsize > input._data.dtype.itemsize
    ):
        input = input.to(data.dtype)
    if isinstance(target, Tensor) and target.requires_grad:
        y = target if target.dtype == input.dtype else target.to(input.dtype)
    else:
        t = _target_array(name, target, input)
        y = _const(t.astype(input._data.dtype, copy=False), input)
    if y.shape != input.shape:
        try:
            np.broadcast_shapes(tuple(y.shape), tuple(input.shape))
        except ValueError:
            raise O.ShapeError(
                f"{name}: the target's size {tuple(y.shape)} does not broadcast with the "
                f"input's size {tuple(input.shape)}; give them the same size"
            ) from None
        if warn:
            warnings.warn(
                f"{name}: the target's size {tuple(y.shape)} differs from the input's size "
                f"{tuple(input.shape)}; they are broadcast together, which is likely not what you "
                "want: give them the same size",
                UserWarning,
                stacklevel=3,
            )
    return input, y


def mse_loss(
    input: Tensor,
    target: Any,
    size_average: Any = None,
    reduce: Any = None,
    reduction: str = "mean",
    weight: Any = None,
) -> Tensor:
    """Mean squared error (x - y)**2 (a target of another shape broadcasts, with a warning)."""
    _check_reduction("mse_loss", reduction)
    input, y = _pair("mse_loss", input, target)
    if weight is not None or y.shape != input.shape:  # a weight, or a broadcast target
        d = input - y
        return _weighted("mse_loss", d * d, weight, reduction)
    return apply(O.MSE_LOSS, input, y, reduction=reduction)


def l1_loss(
    input: Tensor, target: Any, size_average: Any = None, reduce: Any = None, reduction="mean"
) -> Tensor:
    """Mean absolute error |x - y|; shapes must match exactly."""
    _check_reduction("l1_loss", reduction)
    input, y = _pair("l1_loss", input, target)
    return _reduce((input - y).abs(), reduction)


def _smooth(input: Tensor, y: Tensor, beta: float) -> Tensor:
    # 0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta
    d = input - y
    a = d.abs()
    small = backend.to_numpy(a._data) < beta
    return _where(small, d * d * (0.5 / beta), a - 0.5 * beta)


def smooth_l1_loss(
    input: Tensor,
    target: Any,
    size_average: Any = None,
    reduce: Any = None,
    reduction: str = "mean",
    beta: float = 1.0,
) -> Tensor:
    """0.5 (x - y)**2 / beta where |x - y| < beta, else |x - y| - beta / 2."""
    _check_reduction("smooth_l1_loss", reduction)
    if beta < 0:
        raise RuntimeError("smooth_l1_loss does not support negative values for beta.")
    input, y = _pair("smooth_l1_loss", input, target)
    if beta == 0:
        return _reduce((input - y).abs(), reduction)
    return _reduce(_smooth(input, y, float(beta)), reduction)


def huber_loss(
    input: Tensor, target: Any, reduction: str = "mean", delta: float = 1.0, weight: Any = None
) -> Tensor:
    """0.5 (x - y)**2 where |x - y| < delta, else delta (|x - y| - delta / 2)."""
    _check_reduction("huber_loss", reduction)
    if delta <= 0:
        raise RuntimeError("huber_loss does not support non-positive values for delta.")
    input, y = _pair("huber_loss", input, target, promote=False)
    return _weighted(
        "huber_loss", _smooth(input, y, float(delta)) * float(delta), weight, reduction
    )


def kl_div(
    input: Tensor,
    target: Any,
    size_average: Any = None,
    reduce: Any = None,
    reduction: str = "mean",
    log_target: bool = False,
) -> Tensor:
    """Pointwise KL divergence y (log y - x) of log-probabilities x (y given as log y when
    ``log_target``); 'batchmean' divides the sum by the batch size, as the maths wants."""
    _check_reduction("kl_div", reduction, (*_REDUCTIONS, "batchmean"))
    input, y = _pair("kl_div", input, target, warn=False)  # PyTorch broadcasts silently
    if log_target:
        losses = y.exp() * (y - input)
    elif y.requires_grad:
        losses = y * (y.clamp(min=1e-45).log() - input)
    else:
        t = y._data
        xp = backend.array_module_of(t)
        with np.errstate(divide="ignore", invalid="ignore"):
            ylogy = xp.where(t > 0, t * xp.log(xp.where(t > 0, t, 1)), 0 * t)
        losses = _const(ylogy.astype(t.dtype), input) - y * input
    if reduction == "batchmean":
        return losses.sum() / (input.shape[0] if input.ndim else 1)
    return _reduce(losses, reduction)
