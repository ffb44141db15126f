"""Activations and losses as functions, with the argument checks of a public API."""

from __future__ import annotations

from typing import Any

from .. import backend
from .. import ops as O
from ..backend import np
from .._tensor import Tensor, apply

__all__ = [
    "relu",
    "sigmoid",
    "tanh",
    "softmax",
    "log_softmax",
    "linear",
    "linear_relu",
    "dropout",
    "cross_entropy",
    "nll_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "mse_loss",
    "l1_loss",
]

_REDUCTIONS = ("mean", "sum", "none")
_UNSIGNED = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}  # by item size


def relu(x: Tensor) -> Tensor:
    """max(x, 0) elementwise."""
    return x.relu()


def sigmoid(x: Tensor) -> Tensor:
    """1 / (1 + e**-x) elementwise, stable for large |x|."""
    return x.sigmoid()


def tanh(x: Tensor) -> Tensor:
    """Hyperbolic tangent elementwise."""
    return x.tanh()


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """Softmax along ``axis``."""
    return x.softmax(axis)


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """Log-softmax along ``axis``, stable for large logits."""
    return x.log_softmax(axis)


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x @ weight.T + bias, one recorded op; weight has shape (out_features, in_features)."""
    return _linear(O.LINEAR, x, weight, bias)


def linear_relu(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """relu(x @ weight.T + bias) as one recorded op: the same values and gradients as the two
    ops, without keeping the pre-activation (``nn.Sequential`` uses it for Linear, ReLU)."""
    if bias is None:
        return linear(x, weight).relu()
    return _linear(O.LINEAR_RELU, x, weight, bias)


def _linear(op: O.Op, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """Check the operands of a linear layer and apply ``op`` (linear or linear_relu)."""
    if not (isinstance(x, Tensor) and isinstance(weight, Tensor)) or not (
        bias is None or isinstance(bias, Tensor)
    ):
        _check_tensors("linear", input=x, weight=weight, bias=bias)
    w = weight._data
    if w.ndim != 2:
        raise ValueError(f"linear: weight must be 2-D (out, in), got shape {w.shape}")
    if x._data.dtype != w.dtype:
        raise TypeError(
            f"linear: input dtype {x.dtype} differs from weight dtype {w.dtype}; "
            "cast the input with .astype"
        )
    if bias is None:
        return x @ weight.T
    b = bias._data
    if b.shape != (w.shape[0],):
        raise ValueError(f"linear: bias of shape {b.shape} does not fit weight of shape {w.shape}")
    if b.dtype != w.dtype:
        raise TypeError(f"linear: bias dtype {b.dtype} differs from weight dtype {w.dtype}")
    return apply(op, x, weight, bias)


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Inverted dropout: zero each element with probability p and scale the rest by 1/(1-p)."""
    if not 0 <= p <= 1:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0:
        return x
    if p == 1:
        return x * 0.0
    keep = backend.rng().random(x.shape) >= p
    mask = (keep / (1 - p)).astype(x.dtype)
    return x * Tensor._wrap(backend.to_device(mask, x.device), False, None)


def _check_tensors(name: str, **values: Any) -> None:
    """Refuse arrays, lists and other non-tensors given where a Tensor is needed (None passes)."""
    for what, value in values.items():
        if value is not None and not isinstance(value, Tensor):
            raise TypeError(
                f"{name}: {what} must be a Tensor, got {type(value).__name__}; "
                "wrap it with tinygrad_mlp.Tensor(...)"
            )


def _check_reduction(name: str, reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{name}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


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


def _class_indices(name: str, target, logits: Tensor):
    """Validated int64 class indices for a (N, C) batch of logits."""
    n, c = logits._data.shape
    if target.shape != (n,):
        raise ValueError(
            f"{name}: target of shape {tuple(target.shape)} does not fit logits of shape "
            f"{logits.shape}: expected class indices of shape ({n},)"
        )
    if target.dtype.kind == "f":
        if not bool((target == target.round()).all()):
            raise ValueError(f"{name}: class-index targets must be whole numbers")
        target = target.astype(np.int64)
    elif target.dtype.kind == "b":
        target = target.astype(np.int64)
    # NOTE: seen as unsigned, a negative label is huge, so one max() checks both ends
    if n and int(target.view(_UNSIGNED[target.dtype.itemsize]).max()) >= c:
        label = int(target[((target < 0) | (target >= c)).argmax()])
        raise ValueError(
            f"{name}: label {label} is out of range for {c} classes (valid labels are 0..{c - 1})"
        )
    return target


def cross_entropy(logits: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Softmax cross-entropy of (N, C) logits, fused and stable through log-softmax.

    ``target`` holds class indices of shape (N,) or class probabilities (one-hot or soft) of the
    logits' shape.
    """
    if reduction not in _REDUCTIONS:
        _check_reduction("cross_entropy", reduction)
    if not isinstance(logits, Tensor):
        _check_tensors("cross_entropy", input=logits)
    if logits._data.ndim != 2:
        raise ValueError(f"cross_entropy: logits must be 2-D (N, C), got shape {logits.shape}")
    if type(target) is type(logits._data) and target.ndim == 1 and target.dtype.kind in "iu":
        # the common case, class indices in an array on the logits' device
        return apply(
            O.CROSS_ENTROPY,
            logits,
            target=_class_indices("cross_entropy", target, logits),
            reduction=reduction,
        )
    t = _target_array("cross_entropy", target, logits)
    if t.ndim == 2:
        if t.shape != logits.shape:
            raise ValueError(
                f"cross_entropy: probability target of shape {tuple(t.shape)} does not match "
                f"logits of shape {logits.shape}"
            )
        t = t.astype(logits.dtype, copy=False)
    else:
        t = _class_indices("cross_entropy", t, logits)
    return apply(O.CROSS_ENTROPY, logits, target=t, reduction=reduction)


def nll_loss(log_probs: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of class indices given (N, C) log-probabilities."""
    _check_reduction("nll_loss", reduction)
    _check_tensors("nll_loss", input=log_probs)
    if log_probs.ndim != 2:
        raise ValueError(f"nll_loss: input must be 2-D (N, C), got shape {log_probs.shape}")
    t = _class_indices("nll_loss", _target_array("nll_loss", target, log_probs), log_probs)
    xp = backend.array_module_of(log_probs._data)
    picked = -log_probs[xp.arange(len(t)), t]
    if reduction == "mean":
        return picked.mean()
    return picked.sum() if reduction == "sum" else picked


def _same_shape_target(name: str, target: Any, pred: Tensor):
    t = _target_array(name, target, pred)
    if t.shape != pred.shape:
        raise ValueError(
            f"{name}: target of shape {tuple(t.shape)} does not match input of shape {pred.shape}"
        )
    return t.astype(pred.dtype, copy=False)


def binary_cross_entropy(probs: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """-(y log p + (1 - y) log(1 - p)) for probabilities p in [0, 1], logs clamped at -100."""
    _check_reduction("binary_cross_entropy", reduction)
    _check_tensors("binary_cross_entropy", input=probs)
    y = _same_shape_target("binary_cross_entropy", target, probs)
    p = probs._data
    if probs.size and not bool(((p >= 0) & (p <= 1)).all()):
        raise ValueError(
            "binary_cross_entropy: input must hold probabilities in [0, 1] (apply sigmoid "
            "first, or use binary_cross_entropy_with_logits)"
        )
    return apply(O.BINARY_CROSS_ENTROPY, probs, y=y, reduction=reduction)


def binary_cross_entropy_with_logits(
    logits: Tensor, target: Any, reduction: str = "mean"
) -> Tensor:
    """Binary cross-entropy of sigmoid(logits), computed stably from the logits."""
    _check_reduction("binary_cross_entropy_with_logits", reduction)
    _check_tensors("binary_cross_entropy_with_logits", input=logits)
    y = _same_shape_target("binary_cross_entropy_with_logits", target, logits)
    return apply(O.BCE_WITH_LOGITS, logits, y=y, reduction=reduction)


def mse_loss(pred: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Mean squared error (p - y)**2; shapes must match exactly."""
    _check_reduction("mse_loss", reduction)
    _check_tensors("mse_loss", input=pred)
    if isinstance(target, Tensor) and target.requires_grad:
        if target.shape != pred.shape:
            raise ValueError(
                f"mse_loss: target of shape {target.shape} does not match input of shape "
                f"{pred.shape}"
            )
        return apply(O.MSE_LOSS, pred, target, reduction=reduction)
    y = _same_shape_target("mse_loss", target, pred)
    return apply(O.MSE_LOSS, pred, Tensor._wrap(y, False, None), reduction=reduction)


def l1_loss(pred: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Mean absolute error |p - y|; shapes must match exactly."""
    _check_reduction("l1_loss", reduction)
    _check_tensors("l1_loss", input=pred)
    y = (
        target
        if isinstance(target, Tensor) and target.requires_grad
        else Tensor._wrap(_same_shape_target("l1_loss", target, pred), False, None)
    )
    if y.shape != pred.shape:
        raise ValueError(
            f"l1_loss: target of shape {y.shape} does not match input of shape {pred.shape}"
        )
    losses = (pred - y).abs()
    if reduction == "mean":
        return losses.mean()
    return losses.sum() if reduction == "sum" else losses
