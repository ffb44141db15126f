"""torch.nn.functional: activations, layers and losses as functions, with PyTorch's arguments.

Each activation is the registry op of its name (``ops.OPS["leaky_relu"]`` ...), called with
PyTorch's keyword parameters. Losses take ``reduction`` ('mean', 'sum' or 'none'); the plain
cross-entropy of class indices is one fused op, every other option is composed from Tensor ops.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

from .. import backend
from .. import ops as O
from .._tensor import Tensor, apply
from .._tensor import where as _select
from ..backend import np

__all__ = [
    "relu",
    "leaky_relu",
    "elu",
    "gelu",
    "silu",
    "softplus",
    "mish",
    "hardtanh",
    "relu6",
    "logsigmoid",
    "selu",
    "celu",
    "hardsigmoid",
    "hardswish",
    "sigmoid",
    "tanh",
    "softmax",
    "log_softmax",
    "linear",
    "linear_relu",
    "dropout",
    "one_hot",
    "normalize",
    "cosine_similarity",
    "layer_norm",
    "batch_norm",
    "embedding",
    "pad",
    "cross_entropy",
    "nll_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "mse_loss",
    "l1_loss",
    "smooth_l1_loss",
    "huber_loss",
    "kl_div",
]

_REDUCTIONS = ("mean", "sum", "none")
_UNSIGNED = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}  # by item size


def _const(array: Any, like: Tensor) -> Tensor:
    """A constant tensor (no grad) around ``array``, on ``like``'s device."""
    if type(array) is not type(like._data):
        array = backend.to_device(np.asarray(array), like.device)
    return Tensor._wrap(array, False, None)


def _act(name: str, x: Tensor, **params: Any) -> Tensor:
    """The registry's activation op ``name`` on x."""
    return apply(O.OPS[name], x, **params)


def _where(mask: Any, a: Tensor, b: Tensor | float) -> Tensor:
    """a where the constant boolean ``mask`` holds, else b (inf in the other never leaks)."""
    return _select(_const(mask, a), a, b)


# ---------------------------------------------------------------- activations


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """max(x, 0) elementwise."""
    return _act("relu", input)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x for x > 0, negative_slope * x otherwise."""
    return _act("leaky_relu", input, negative_slope=float(negative_slope))


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x for x > 0, alpha * (e**x - 1) otherwise."""
    return _act("elu", input, alpha=float(alpha))


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """x * Phi(x) (``approximate='tanh'``: PyTorch's tanh approximation)."""
    if approximate not in ("none", "tanh"):
        raise RuntimeError(f"approximate argument must be either none or tanh, got {approximate!r}")
    return _act("gelu", input, approximate=approximate)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """x * sigmoid(x)."""
    return _act("silu", input)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + e**(beta x)) / beta, and x itself where beta x > threshold."""
    return _act("softplus", input, beta=float(beta), threshold=float(threshold))


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * tanh(softplus(x))."""
    return _act("mish", input)


def hardtanh(
    input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False
) -> Tensor:
    """x clipped into [min_val, max_val] (gradient 1 strictly inside)."""
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")
    if input._data.dtype.kind in "iu":  # PyTorch keeps the dtype, the bounds truncated
        return input.clamp(int(min_val), int(max_val))
    return _act("hardtanh", input, min_val=float(min_val), max_val=float(max_val))


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    """min(max(x, 0), 6)."""
    return _act("relu6", input)


def logsigmoid(input: Tensor) -> Tensor:
    """log(sigmoid(x)) = -softplus(-x), finite for any x."""
    return -softplus(-input, threshold=float("inf"))


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    """scale * elu(x, alpha) with the self-normalising constants of Klambauer et al."""
    return elu(input, _SELU_ALPHA) * _SELU_SCALE


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """max(0, x) + min(0, alpha * (e**(x / alpha) - 1))."""
    if alpha == 0:
        raise RuntimeError("ZeroDivisionError: alpha cannot be 0 for CELU")
    # NOTE: alpha elu(x / alpha) below 0 and x itself above: elu's rule gives celu'(0) = 1 and a
    # second derivative 0 there, as PyTorch
    return _select(input > 0, input, elu(input / alpha) * alpha)


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    """min(max(x + 3, 0), 6) / 6 (gradient 1/6 strictly inside (-3, 3), as PyTorch)."""
    return (hardtanh(input, -3.0, 3.0) + 3) / 6


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * min(max(x + 3, 0), 6) / 6 (gradient 0 at -3 and 1 at 3, as PyTorch)."""
    # NOTE: x * 0 at and below -3: NaN at -inf as PyTorch's, with the gradient 0 there
    inside = input > -3
    x = _select(inside, input, 0.0)  # so that no inf meets a zero gradient
    return _select(inside, x * (hardtanh(x, -3.0, 3.0) + 3) / 6, input * 0.0)


def sigmoid(input: Tensor) -> Tensor:
    """1 / (1 + e**-x) elementwise, stable for large |x|."""
    return _act("sigmoid", input)


def tanh(input: Tensor) -> Tensor:
    """Hyperbolic tangent elementwise."""
    return _act("tanh", input)


def _softmax_dim(ndim: int) -> int:
    # PyTorch's implicit choice when dim is not given (deprecated there, kept for old code)
    return 0 if ndim in (0, 1, 3) else 1


def _cast_to(x: Tensor, dtype: Any) -> Tensor:
    return x if dtype is None else x.astype(getattr(dtype, "np", dtype))


def softmax(input: Tensor, dim: int | None = None, dtype: Any = None, *, axis: int | None = None):
    """exp(x) / sum(exp(x)) along ``dim`` (``axis`` is an alias)."""
    dim = axis if dim is None else dim
    dim = _softmax_dim(input.ndim) if dim is None else dim
    return _cast_to(input, dtype).softmax(dim)


def log_softmax(
    input: Tensor, dim: int | None = None, dtype: Any = None, *, axis: int | None = None
) -> Tensor:
    """log(softmax(x)) along ``dim``, computed stably (``axis`` is an alias)."""
    dim = axis if dim is None else dim
    dim = _softmax_dim(input.ndim) if dim is None else dim
    return _cast_to(input, dtype).log_softmax(dim)


# ---------------------------------------------------------------- layers


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x @ weight.T + bias, one recorded op; weight has shape (out_features, in_features)."""
    return _linear(O.LINEAR, input, weight, bias)


def linear_relu(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """relu(x @ weight.T + bias) (an extension; PyTorch has no such function)."""
    return linear(x, weight, bias).relu()


def _linear(op: O.Op, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """Check the operands of a linear layer and apply ``op``; the op itself checks the shapes
    (a ShapeError naming both)."""
    if not (isinstance(x, Tensor) and isinstance(weight, Tensor)) or not (
        bias is None or isinstance(bias, Tensor)
    ):
        _check_tensors("linear", input=x, weight=weight, bias=bias)
    dtype = weight._data.dtype
    if x._data.dtype != dtype or (bias is not None and bias._data.dtype != dtype):
        what, other = ("input", x) if x._data.dtype != dtype else ("bias", bias)
        raise TypeError(
            f"linear: {what} dtype {other.dtype} differs from weight dtype {dtype}"
            + ("; cast the input with .to(dtype)" if what == "input" else "")
        )
    if bias is None:
        if weight._data.ndim != 2 or x.ndim == 0 or x.shape[-1] != weight.shape[1]:
            O._check_linear(x._data, weight._data, None)
        return x @ weight.T
    return apply(op, x, weight, bias)


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False):
    """Inverted dropout: zero each element with probability p and scale the rest by 1/(1-p)."""
    if not 0 <= p <= 1:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0:
        return input
    if p == 1:
        return input * 0.0
    keep = backend.rng().random(input.shape) >= p
    mask = (keep / (1 - p)).astype(input.dtype)
    return input * _const(mask, input)


def one_hot(tensor: Any, num_classes: int = -1) -> Tensor:
    """(..., num_classes) int64 one-hot rows of integer class indices."""
    data = tensor._data if isinstance(tensor, Tensor) else np.asarray(tensor)
    if data.dtype.kind not in "iu" and not (
        data.dtype.kind == "f" and bool((data == data.round()).all())
    ):
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
    xp = backend.array_module_of(data)
    data = data.astype(np.int64)
    if data.size and int(data.min()) < 0:
        raise RuntimeError("Class values must be non-negative.")
    if num_classes == -1:
        num_classes = int(data.max()) + 1 if data.size else 0
    elif data.size and int(data.max()) >= num_classes:
        raise RuntimeError("Class values must be smaller than num_classes.")
    out = (data[..., None] == xp.arange(num_classes)).astype(np.int64)
    return Tensor._wrap(out, False, None)


def _norm_dims(dims: Any, ndim: int) -> tuple[int, ...]:
    dims = (dims,) if isinstance(dims, numbers.Integral) else tuple(dims)
    out = []
    for d in dims:
        if not -ndim <= d < max(ndim, 1):
            raise IndexError(
                f"Dimension out of range (expected to be in range of [{-ndim}, {ndim - 1}], "
                f"but got {d})"
            )
        out.append(d % max(ndim, 1))
    return tuple(out)


def normalize(
    input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12, out: Any = None
) -> Tensor:
    """x / max(||x||_p, eps) along ``dim``."""
    (d,) = _norm_dims(dim, input.ndim)
    return input / input.norm(p, d, keepdim=True).clamp(min=eps)


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """sum((x1 / max(||x1||, eps)) * (x2 / max(||x2||, eps))) along ``dim``, broadcasting x1
    and x2 (as PyTorch 2.x: each norm is floored at eps on its own)."""
    _check_tensors("cosine_similarity", x1=x1, x2=x2)
    if x1.dtype.kind != "f" or x2.dtype.kind != "f":
        raise RuntimeError("expected common dtype to be floating point, yet common dtype is int")
    try:
        shape = np.broadcast_shapes(x1.shape, x2.shape)
    except ValueError:
        raise RuntimeError(
            f"cosine_similarity: shapes {tuple(x1.shape)} and {tuple(x2.shape)} do not broadcast"
        ) from None
    (d,) = _norm_dims(dim, len(shape))
    x1, x2 = x1.expand(*shape), x2.expand(*shape)
    return ((x1 / _floored_norm(x1, d, eps)) * (x2 / _floored_norm(x2, d, eps))).sum(d)


def _floored_norm(x: Tensor, dim: int, eps: float) -> Tensor:
    """||x|| along ``dim`` (kept), its value raised to eps; the gradient is the norm's own.

    NOTE: PyTorch clamps the norm in place under no_grad, so the gradient of a norm below eps
    is still x / ||x|| (0 at x = 0): the clamp enters as a constant shift."""
    n = x.norm(2, dim, keepdim=True)
    low = n.detach()
    return n + (low.clamp(min=eps) - low)


def layer_norm(
    input: Tensor,
    normalized_shape: Sequence[int],
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """(x - mean) / sqrt(var + eps) over the last len(normalized_shape) dims, then * w + b."""
    shape = (
        (normalized_shape,)
        if isinstance(normalized_shape, numbers.Integral)
        else tuple(normalized_shape)
    )
    k = len(shape)
    if k == 0 or tuple(input.shape[input.ndim - k :]) != shape or input.ndim < k:
        raise RuntimeError(
            f"Given normalized_shape={list(shape)}, expected input with shape "
            f"[*, {', '.join(map(str, shape))}], but got input of size{list(input.shape)}"
        )
    axes = tuple(range(input.ndim - k, input.ndim))
    mean = input.mean(axes, True)
    centred = input - mean
    var = (centred * centred).mean(axes, True)  # the biased variance, as PyTorch
    out = centred * (var + eps) ** -0.5
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out


def batch_norm(
    input: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise each channel (dim 1) of (N, C) or (N, C, L) input by the batch statistics
    (training) or the running ones; in training the running statistics are updated in place:
    r = (1 - momentum) r + momentum * stat, with the unbiased batch variance."""
    if input.ndim not in (2, 3):
        raise ValueError(f"expected 2D or 3D input (got {input.ndim}D input)")
    c = input.shape[1]
    axes = (0,) if input.ndim == 2 else (0, 2)
    shape = (1, c) if input.ndim == 2 else (1, c, 1)
    if training:
        count = input._data.size // c
        if count <= 1:
            raise ValueError(
                "Expected more than 1 value per channel when training, got input size "
                f"{list(input.shape)}"
            )
        mean = input.mean(axes, True)
        centred = input - mean
        var = (centred * centred).mean(axes, True)
        if running_mean is not None:
            m = running_mean._data
            m *= 1 - momentum
            m += momentum * mean._data.reshape(c).astype(m.dtype)
        if running_var is not None:
            v = running_var._data
            v *= 1 - momentum
            v += (momentum * count / (count - 1)) * var._data.reshape(c).astype(v.dtype)
        out = centred * (var + eps) ** -0.5
    else:
        if running_mean is None or running_var is None:
            raise RuntimeError("batch_norm: running_mean and running_var are needed in eval mode")
        mean = _const(running_mean._data.reshape(shape).astype(input._data.dtype), input)
        inv = (running_var._data.reshape(shape) + eps) ** -0.5
        out = (input - mean) * _const(inv.astype(input._data.dtype), input)
    if weight is not None:
        out = out * weight.reshape(*shape)
    if bias is not None:
        out = out + bias.reshape(*shape)
    return out


def embedding(
    input: Any,
    weight: Tensor,
    padding_idx: int | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> Tensor:
    """Rows of ``weight`` picked by integer ``input``; the padding row receives no gradient.
    With ``max_norm``, each picked row whose ``norm_type``-norm exceeds it is first scaled down
    to it, in place in ``weight`` (as PyTorch)."""
    if scale_grad_by_freq or sparse:
        raise NotImplementedError("embedding: scale_grad_by_freq and sparse are not supported")
    idx = input._data if isinstance(input, Tensor) else np.asarray(input)
    if idx.dtype.kind not in "iu":
        raise RuntimeError(
            "Expected tensor for argument #1 'indices' to have one of the following scalar "
            f"types: Long, Int; but got {idx.dtype} instead"
        )
    n = weight.shape[0]
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= n):
        raise IndexError("index out of range in self")
    idx = backend.to_device(idx, weight.device) if type(idx) is not type(weight._data) else idx
    if max_norm is not None:
        _renorm_rows(weight, idx, float(max_norm), float(norm_type))
    out = weight[idx]
    if padding_idx is not None and weight.requires_grad:
        padding_idx = padding_idx % n
        pad = idx % n == padding_idx
        if bool(pad.any()):
            # the padding row as a constant: the same values, no gradient to that row
            out = _select(_const(~pad[..., None], out), out, weight.detach()[idx])
    return out


def _renorm_rows(weight: Tensor, idx: Any, max_norm: float, p: float) -> None:
    """Scale the rows ``idx`` of ``weight`` whose p-norm exceeds ``max_norm`` down to it, in
    place and unrecorded: row * max_norm / (norm + 1e-7), as PyTorch's embedding_renorm_."""
    w = weight._data
    xp = backend.array_module_of(w)
    rows = xp.unique(idx.reshape(-1))
    picked = xp.abs(w[rows])
    norms = xp.sqrt((picked * picked).sum(1)) if p == 2 else (picked**p).sum(1) ** (1 / p)
    big = norms > max_norm
    if bool(big.any()):
        rows = rows[big]
        w[rows] *= (max_norm / (norms[big] + 1e-7))[:, None].astype(w.dtype)
        weight._bump()


def pad(input: Tensor, pad: Sequence[int], mode: str = "constant", value: float | None = None):
    """Pad the last len(pad) // 2 dims: (left, right) of the last, then of the one before...

    Negative widths crop, as in PyTorch. Only ``mode='constant'``.
    """
    if mode != "constant":
        raise NotImplementedError(f"pad: only mode='constant' is supported, got {mode!r}")
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise ValueError(
            "Padding length must be divisible by 2 and at most twice the number of dims, "
            f"got {len(pad)} for a {input.ndim}-D input"
        )
    widths = [(0, 0)] * input.ndim
    for i in range(len(pad) // 2):
        widths[input.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    positions = np.arange(input._data.size).reshape(input.shape)
    index = []
    for d, (lo, hi) in enumerate(widths):
        size = positions.shape[d]
        crop = [slice(None)] * positions.ndim
        crop[d] = slice(max(-lo, 0), size - max(-hi, 0))
        positions = positions[tuple(crop)]
        if min(lo, hi) < 0 and positions.shape[d] < 0:
            raise RuntimeError("pad: the cropped size must be >= 0")
        widths_d = [(0, 0)] * positions.ndim
        widths_d[d] = (max(lo, 0), max(hi, 0))
        positions = np.pad(positions, widths_d, constant_values=-1)
    index = positions
    inside = index >= 0
    flat = input.reshape(-1)
    picked = flat[backend.to_device(np.where(inside, index, 0), input.device)]
    fill = 0.0 if value is None else float(value)
    return _where(inside, picked, fill)


# ---------------------------------------------------------------- losses


def _check_tensors(name: str, **values: Any) -> None:
    """Refuse arrays, lists and other non-tensors given where a Tensor is needed (None passes)."""
    for what, value in values.items():
        if value is not None and not isinstance(value, Tensor):
            raise TypeError(
                f"{name}: {what} must be a Tensor, got {type(value).__name__}; "
                "wrap it with tinygrad_mlp.Tensor(...)"
            )


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
    t = _target_array(name, target, pred)
    if t.shape != pred.shape:
        raise ValueError(
            f"{name}: Using a target size ({tuple(t.shape)}) that is different to the input "
            f"size ({tuple(pred.shape)}) is deprecated. Please ensure they have the same size."
        )
    return t.astype(pred.dtype, copy=False)


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
    y = _same_shape_target("binary_cross_entropy", _detached(target), input)
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
    y = _same_shape_target(name, _detached(target), input)
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


def _detached(target: Any) -> Any:
    return target.detach() if isinstance(target, Tensor) and target.requires_grad else target


def _pair(name: str, input: Tensor, target: Any, promote: bool = True) -> tuple[Tensor, Tensor]:
    """The input and the target as tensors of one shape (the target kept in the graph when it
    requires grad); with ``promote``, a float target of a wider dtype widens the input, as
    PyTorch's type promotion does."""
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
        if target.shape != input.shape:
            raise ValueError(
                f"{name}: Using a target size ({tuple(target.shape)}) that is different to the "
                f"input size ({tuple(input.shape)}) is deprecated. Please ensure they have the "
                "same size."
            )
        return input, target if target.dtype == input.dtype else target.to(input.dtype)
    return input, _const(_same_shape_target(name, target, input), input)


def mse_loss(
    input: Tensor,
    target: Any,
    size_average: Any = None,
    reduce: Any = None,
    reduction: str = "mean",
    weight: Any = None,
) -> Tensor:
    """Mean squared error (x - y)**2; shapes must match exactly."""
    _check_reduction("mse_loss", reduction)
    input, y = _pair("mse_loss", input, target)
    if weight is not None:
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
    input, y = _pair("kl_div", input, target)
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
