"""torch.nn.functional: activations, layers and losses as functions, with PyTorch's arguments.

Each activation is the registry op of its name (``ops.OPS["leaky_relu"]`` ...), called with
PyTorch's keyword parameters. Losses take ``reduction`` ('mean', 'sum' or 'none'); the plain
cross-entropy of class indices is one fused op, every other option is composed from Tensor ops.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Sequence
from typing import Any

from .. import backend
from .. import ops as O
from .._tensor import Tensor, apply
from .._tensor import where as _select
from .._tensor_maths import einsum
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
    "softmin",
    "glu",
    "threshold",
    "prelu",
    "bilinear",
    "pairwise_distance",
    "group_norm",
    "instance_norm",
    "embedding_bag",
    "pad",
    "conv1d",
    "conv2d",
    "conv_transpose2d",
    "max_pool1d",
    "max_pool2d",
    "avg_pool1d",
    "avg_pool2d",
    "adaptive_avg_pool2d",
    "unfold",
    "fold",
    "dropout2d",
    "interpolate",
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
    """max(x, 0) elementwise (``inplace=True``: written into ``input``)."""
    if inplace:
        return input._unary_("relu_", relu)
    return _act("relu", input)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x for x > 0, negative_slope * x otherwise."""
    if inplace:
        return input._unary_("leaky_relu_", lambda t: leaky_relu(t, negative_slope))
    return _act("leaky_relu", input, negative_slope=float(negative_slope))


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x for x > 0, alpha * (e**x - 1) otherwise."""
    if inplace:
        return input._unary_("elu_", lambda t: elu(t, alpha))
    return _act("elu", input, alpha=float(alpha))


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """x * Phi(x) (``approximate='tanh'``: PyTorch's tanh approximation)."""
    if approximate not in ("none", "tanh"):
        raise RuntimeError(f"approximate argument must be either none or tanh, got {approximate!r}")
    return _act("gelu", input, approximate=approximate)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """x * sigmoid(x)."""
    if inplace:
        return input._unary_("silu_", silu)
    return _act("silu", input)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + e**(beta x)) / beta, and x itself where beta x > threshold."""
    return _act("softplus", input, beta=float(beta), threshold=float(threshold))


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * tanh(softplus(x))."""
    if inplace:
        return input._unary_("mish_", mish)
    return _act("mish", input)


def hardtanh(
    input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False
) -> Tensor:
    """x clipped into [min_val, max_val] (gradient 1 strictly inside)."""
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")
    if inplace:
        return input._unary_("hardtanh_", lambda t: hardtanh(t, min_val, max_val))
    if input._data.dtype.kind in "iu":  # PyTorch keeps the dtype, the bounds truncated
        return input.clamp(int(min_val), int(max_val))
    return _act("hardtanh", input, min_val=float(min_val), max_val=float(max_val))


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    """min(max(x, 0), 6)."""
    if inplace:
        return input._unary_("relu6_", relu6)
    return _act("relu6", input)


def logsigmoid(input: Tensor) -> Tensor:
    """log(sigmoid(x)) = -softplus(-x), finite for any x."""
    return -softplus(-input, threshold=float("inf"))


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    """scale * elu(x, alpha) with the self-normalising constants of Klambauer et al."""
    if inplace:
        return input._unary_("selu_", selu)
    return elu(input, _SELU_ALPHA) * _SELU_SCALE


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """max(0, x) + min(0, alpha * (e**(x / alpha) - 1))."""
    if alpha == 0:
        raise RuntimeError("ZeroDivisionError: alpha cannot be 0 for CELU")
    if inplace:
        return input._unary_("celu_", lambda t: celu(t, alpha))
    # NOTE: alpha elu(x / alpha) below 0 and x itself above: elu's rule gives celu'(0) = 1 and a
    # second derivative 0 there, as PyTorch
    # (x itself at NaN, with the gradient 1, as PyTorch's)
    if alpha < 0:  # x / alpha > 0 below 0, where elu would not take its exponential branch
        below = input <= 0
        x = _select(below, input, 0.0)  # so that a NaN never meets the unpicked branch's 0
        return _select(below, (x / alpha).expm1() * alpha, input)
    return _select(input <= 0, elu(input / alpha) * alpha, input)


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    """min(max(x + 3, 0), 6) / 6 (gradient 1/6 strictly inside (-3, 3), as PyTorch)."""
    if inplace:
        return input._unary_("hardsigmoid_", hardsigmoid)
    return (hardtanh(input, -3.0, 3.0) + 3) / 6


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * min(max(x + 3, 0), 6) / 6 (gradient 0 at -3 and 1 at 3, as PyTorch)."""
    if inplace:
        return input._unary_("hardswish_", hardswish)
    return _act("hardswish", input)


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
        raise O.DTypeError(  # a RuntimeError, as PyTorch's
            f"linear: {what} dtype {other._data.dtype} differs from weight dtype {dtype}"
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
    mask = backend.draw(_dropout_mask, tuple(input.shape), p, input._data.dtype)
    return input * _const(mask, input)


def _dropout_mask(gen: Any, shape: tuple, p: float, dtype: Any) -> Any:
    """1 / (1 - p) where a uniform draw is at least p, else 0."""
    mask = (gen.random(shape) >= p).astype(dtype)
    mask *= 1 / (1 - p)  # the same numbers as (keep / (1 - p)).astype(dtype), in one pass less
    return mask


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


def _same_dtype(name: str, input: Tensor, **others: Tensor | None) -> None:
    """Refuse parameters of another dtype than the input's, with RuntimeError as PyTorch."""
    for what, value in others.items():
        if value is not None and value.dtype != input.dtype:
            raise O.DTypeError(
                f"{name}: input dtype {input.dtype} differs from {what} dtype {value.dtype}; "
                "cast the input with .to(dtype) (or the module with .to(dtype))"
            )


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
    _same_dtype("layer_norm", input, weight=weight, bias=bias)
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
    """Normalise each channel (dim 1) of (N, C, *) input by the batch statistics
    (training) or the running ones; in training the running statistics are updated in place:
    r = (1 - momentum) r + momentum * stat, with the unbiased batch variance."""
    if input.ndim < 2:
        raise ValueError(f"expected 2D or more input (got {input.ndim}D input)")
    c = input.shape[1]
    stats = dict(running_mean=running_mean, running_var=running_var, weight=weight, bias=bias)
    _same_dtype("batch_norm", input, **stats)
    for what, value in stats.items():
        if value is not None and value.numel() != c:
            raise O.ShapeError(
                f"batch_norm: {what} should contain {c} elements (the input's channels, dim 1) "
                f"not {value.numel()}"
            )
    axes = (0, *range(2, input.ndim))
    shape = (1, c) + (1,) * (input.ndim - 2)
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


# ---------------------------------------------------------------- more layers: softmin, glu,
# threshold, prelu, bilinear, distances, group and instance normalisation, embedding bags


def softmin(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None):
    """softmax(-x) along ``dim``."""
    return softmax(-input, dim, dtype)


def glu(input: Tensor, dim: int = -1) -> Tensor:
    """The gated linear unit: the first half of ``dim`` times the sigmoid of the second."""
    d = dim % max(input.ndim, 1)
    if input.ndim == 0:
        raise RuntimeError("glu does not support scalars because halving size must be even")
    if input.shape[d] % 2:
        raise RuntimeError(
            f"Halving dimension must be even, but dimension {d} is size {input.shape[d]}"
        )
    a, b = input.chunk(2, d)
    return a * b.sigmoid()


def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    """x where x > threshold, ``value`` elsewhere."""
    out = _where((input > threshold)._data, input, value)
    return input.copy_(out.detach()) if inplace else out


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """x where x >= 0, weight * x elsewhere (one weight, or one per channel of dim 1)."""
    _same_dtype("prelu", input, weight=weight)
    if weight.ndim != 1 or (
        weight.shape[0] != 1 and (input.ndim < 2 or weight.shape[0] != input.shape[1])
    ):
        raise RuntimeError(
            f"Mismatch of parameter numbers and input channel size. Found parameter numbers = "
            f"{weight.numel()} and channel size = {input.shape[1] if input.ndim > 1 else 1}."
        )
    w = (
        weight
        if weight.shape[0] == 1 or input.ndim < 2
        else weight.reshape(-1, *([1] * (input.ndim - 2)))
    )
    return _where((input >= 0)._data, input, input * w)


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor, bias: Tensor | None = None):
    """y_o = x1^T W_o x2 + b_o for each output feature o."""
    if (
        weight.ndim != 3
        or input1.shape[-1] != weight.shape[1]
        or input2.shape[-1] != weight.shape[2]
    ):
        raise RuntimeError(
            f"bilinear: input1 {tuple(input1.shape)}, input2 {tuple(input2.shape)} and weight "
            f"{tuple(weight.shape)} do not fit: expected weight (out, in1, in2)"
        )
    out = einsum("...i,oij,...j->...o", input1, weight, input2)
    return out if bias is None else out + bias


def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6,
                      keepdim: bool = False) -> Tensor:  # fmt: skip
    """||x1 - x2 + eps||_p along the last dimension."""
    diff = x1 - x2 + eps
    return diff.norm(p, -1, keepdim)


def _normalised(x: Tensor, axes: tuple, eps: float) -> Tensor:
    mean = x.mean(axes, True)
    centred = x - mean
    var = (centred * centred).mean(axes, True)  # the biased variance, as PyTorch
    return centred * (var + eps) ** -0.5


def _affine(out: Tensor, weight: Tensor | None, bias: Tensor | None) -> Tensor:
    shape = (1, -1) + (1,) * (out.ndim - 2)
    if weight is not None:
        out = out * weight.reshape(*shape)
    if bias is not None:
        out = out + bias.reshape(*shape)
    return out


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:  # fmt: skip
    """Normalise each group of channels (dim 1) of each sample by its own mean and variance."""
    if input.ndim < 2:
        raise RuntimeError(
            f"Expected at least 2 dimensions for input tensor but received {input.ndim}"
        )
    n, c = input.shape[:2]
    if c % num_groups:
        raise RuntimeError(
            f"Expected number of channels in input to be divisible by num_groups, but got input "
            f"of shape {list(input.shape)} and num_groups={num_groups}"
        )
    _same_dtype("group_norm", input, weight=weight, bias=bias)
    grouped = input.reshape(n, num_groups, -1)
    out = _normalised(grouped, (2,), eps).reshape(*input.shape)
    return _affine(out, weight, bias)


def instance_norm(input: Tensor, running_mean: Tensor | None = None,
                  running_var: Tensor | None = None, weight: Tensor | None = None,
                  bias: Tensor | None = None, use_input_stats: bool = True,
                  momentum: float = 0.1, eps: float = 1e-5) -> Tensor:  # fmt: skip
    """Normalise each channel of each sample over its spatial dims; with running statistics
    and ``use_input_stats``, they are updated (the mean over the batch of each sample's)."""
    if input.ndim < 3:
        raise ValueError(
            f"instance_norm expects an input of at least 3 dimensions, got {input.ndim}D"
        )
    _same_dtype("instance_norm", input, weight=weight, bias=bias)
    axes = tuple(range(2, input.ndim))
    c = input.shape[1]
    shape = (1, c) + (1,) * (input.ndim - 2)
    if use_input_stats:
        out = _normalised(input, axes, eps)
        count = math.prod(input.shape[2:])
        data = input._data
        if running_mean is not None:
            mean = data.mean(axis=axes).mean(axis=0)
            m = running_mean._data
            m *= 1 - momentum
            m += momentum * mean.astype(m.dtype)
        if running_var is not None:
            var = data.var(axis=axes, ddof=1 if count > 1 else 0).mean(axis=0)
            v = running_var._data
            v *= 1 - momentum
            v += momentum * var.astype(v.dtype)
    else:
        if running_mean is None or running_var is None:
            raise RuntimeError(
                "Expected running_mean and running_var to be defined when use_input_stats is false"
            )
        mean = _const(running_mean._data.reshape(shape).astype(input._data.dtype), input)
        inv = (running_var._data.reshape(shape) + eps) ** -0.5
        out = (input - mean) * _const(inv.astype(input._data.dtype), input)
    return _affine(out, weight, bias)


def embedding_bag(
    input: Any,
    weight: Tensor,
    offsets: Any = None,
    max_norm: float | None = None,
    norm_type: float = 2,
    scale_grad_by_freq: bool = False,
    mode: str = "mean",
    sparse: bool = False,
    per_sample_weights: Tensor | None = None,
    include_last_offset: bool = False,
    padding_idx: int | None = None,
) -> Tensor:
    """The sum, mean or max of the rows of ``weight`` picked by each bag of indices: the rows
    of a 2-D ``input``, or the runs of a 1-D one that start at ``offsets``. Empty bags give 0."""
    if max_norm is not None or scale_grad_by_freq or sparse:
        raise NotImplementedError(
            "embedding_bag: max_norm, scale_grad_by_freq and sparse are not supported"
        )
    if mode not in ("sum", "mean", "max"):
        raise ValueError(f"mode has to be one of sum, mean or max, got {mode!r}")
    idx = input._data if isinstance(input, Tensor) else np.asarray(input)
    idx = backend.to_numpy(idx)
    if idx.dtype.kind not in "iu":
        raise RuntimeError(f"embedding_bag: expected indices of an integer dtype, got {idx.dtype}")
    if per_sample_weights is not None and mode != "sum":
        raise NotImplementedError(
            "embedding_bag: per_sample_weights was not None. per_sample_weights is only "
            f"supported for mode='sum' (got mode='{mode}'). Please open a feature request"
        )
    if idx.ndim == 2:
        if offsets is not None:
            raise ValueError("if input is 2D, then offsets has to be None")
        bags = idx.shape[0]
        bag_of = np.repeat(np.arange(bags), idx.shape[1])
        idx = idx.reshape(-1)
    elif idx.ndim == 1:
        if offsets is None:
            raise ValueError("offsets has to be a 1D Tensor but got None")
        starts = backend.to_numpy(
            offsets._data if isinstance(offsets, Tensor) else np.asarray(offsets)
        )
        starts = starts.astype(np.int64).reshape(-1)
        if include_last_offset:
            starts = starts[:-1]
        bags = len(starts)
        if bags and (starts[0] != 0 or (np.diff(starts) < 0).any() or starts[-1] > len(idx)):
            raise ValueError(
                f"offsets must start at 0 and rise to at most {len(idx)}, got {starts.tolist()}"
            )
        bag_of = np.searchsorted(starts, np.arange(len(idx)), side="right") - 1
    else:
        raise ValueError(f"input has to be 1D or 2D Tensor, but got Tensor of dimension {idx.ndim}")
    n = weight.shape[0]
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise IndexError("index out of range in self")
    keep = np.ones(len(idx), bool)
    if padding_idx is not None:
        keep = idx != padding_idx % n
    idx, bag_of = idx[keep], bag_of[keep]
    device = weight.device
    rows = weight[backend.to_device(idx, device)]
    if per_sample_weights is not None:
        w = per_sample_weights.reshape(-1)[backend.to_device(np.nonzero(keep)[0], device)]
        rows = rows * w.reshape(-1, 1)
    target = backend.to_device(bag_of, device)
    zeros = weight.new_zeros(bags, weight.shape[1])
    if mode == "max":
        full = backend.to_device(np.repeat(bag_of[:, None], weight.shape[1], 1), device)
        return zeros.scatter_reduce(
            0, Tensor._wrap(full, False, None), rows, "amax", include_self=False
        )
    total = zeros.index_add(0, Tensor._wrap(target, False, None), rows)
    if mode == "sum":
        return total
    counts = np.bincount(bag_of, minlength=bags).astype(weight._data.dtype)
    counts = backend.to_device(np.maximum(counts, 1)[:, None], device)
    return total / _const(counts, total)


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


# ---------------------------------------------------------------- convolution and pooling


def _ints(name: str, value: Any, nd: int, low: int = 0) -> tuple[int, ...]:
    """An int or a sequence of ``nd`` ints (each >= ``low``) as a tuple of ``nd`` ints."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value,) * nd
    if len(items) == 1 and nd > 1:
        items = items * nd
    if len(items) != nd or not all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in items
    ):
        raise TypeError(f"{name} must be an int or a tuple of {nd} ints, got {value!r}")
    if any(v < low for v in items):
        raise RuntimeError(f"{name} must be {'positive' if low else 'non-negative'}, got {value!r}")
    return tuple(int(v) for v in items)


def _batched(name: str, input: Tensor, nd: int) -> tuple[Tensor, bool]:
    """(N, C, *size) input as it is, (C, *size) input with a batch dim of 1 added."""
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}(): argument 'input' must be Tensor, not {type(input).__name__}")
    if input.ndim not in (nd + 1, nd + 2):
        raise RuntimeError(
            f"Expected {nd + 1}D (unbatched) or {nd + 2}D (batched) input to {name}, but got "
            f"input of size: {list(input.shape)}"
        )
    if input.ndim == nd + 2:
        return input, False
    return input.reshape(1, *input.shape), True


def _unbatched(out: Tensor, unbatched: bool) -> Tensor:
    return out.reshape(*out.shape[1:]) if unbatched else out


def _conv_padding(padding: Any, nd: int, kernel: tuple, dilation: tuple, stride: tuple):
    """PyTorch's conv padding (an int, ints, 'valid' or 'same') as (before, after) pairs."""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * nd
        if padding != "same":
            raise ValueError(
                f"Invalid padding string {padding!r}, should be one of ['valid', 'same']"
            )
        if any(s != 1 for s in stride):
            raise ValueError("padding='same' is not supported for strided convolutions")
        # the total d (k - 1) split with the odd one after, as PyTorch pads
        totals = [d * (k - 1) for k, d in zip(kernel, dilation, strict=True)]
        return tuple((t // 2, t - t // 2) for t in totals)
    return tuple((p, p) for p in _ints("padding", padding, nd))


def _check_windows(name: str, size: tuple, pairs: tuple, kernel: tuple, dilation: tuple) -> None:
    padded = tuple(n + lo + hi for n, (lo, hi) in zip(size, pairs, strict=True))
    spans = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True))
    if any(p < s for p, s in zip(padded, spans, strict=True)):
        raise RuntimeError(
            f"{name}: calculated padded input size per channel: ({' x '.join(map(str, padded))})"
            f". Kernel size: ({' x '.join(map(str, spans))}). Kernel size can't be greater than "
            "actual input size"
        )


def _conv(name, nd, input, weight, bias, stride, padding, dilation, groups) -> Tensor:
    x, unbatched = _batched(name, input, nd)
    if not isinstance(weight, Tensor) or weight.ndim != nd + 2:
        raise RuntimeError(
            f"{name}: expected a {nd + 2}D weight (out_channels, in_channels / groups, "
            f"*kernel_size), got {list(getattr(weight, 'shape', [weight]))}"
        )
    if isinstance(groups, bool) or not isinstance(groups, numbers.Integral) or groups < 1:
        raise RuntimeError(f"{name}: non-positive groups is not supported, got {groups!r}")
    stride = _ints("stride", stride, nd, 1)
    dilation = _ints("dilation", dilation, nd, 1)
    kernel = tuple(weight.shape[2:])
    pairs = _conv_padding(padding, nd, kernel, dilation, stride)
    if x.shape[1] == weight.shape[1] * groups:
        _check_windows(name, tuple(x.shape[2:]), pairs, kernel, dilation)
    args = (x, weight) if bias is None else (x, weight, bias)
    out = apply(O.CONV, *args, stride=stride, padding=pairs, dilation=dilation, groups=int(groups))
    return _unbatched(out, unbatched)


def conv1d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> Tensor:
    """1-D convolution (cross-correlation) of (N, C_in, L) input with (C_out, C_in / groups, k)."""
    return _conv("conv1d", 1, input, weight, bias, stride, padding, dilation, groups)


def conv2d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> Tensor:
    """2-D convolution (cross-correlation) of (N, C_in, H, W) input with a
    (C_out, C_in / groups, kH, kW) weight, as torch.nn.functional.conv2d."""
    return _conv("conv2d", 2, input, weight, bias, stride, padding, dilation, groups)


def conv_transpose2d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    groups: int = 1,
    dilation: Any = 1,
) -> Tensor:
    """The transposed 2-D convolution (conv2d's input gradient) with a (C_in, C_out / groups,
    kH, kW) weight: each input element adds a weighted copy of the kernel into the output."""
    x, unbatched = _batched("conv_transpose2d", input, 2)
    stride = _ints("stride", stride, 2, 1)
    dilation = _ints("dilation", dilation, 2, 1)
    pads = _ints("padding", padding, 2)
    extra = _ints("output_padding", output_padding, 2)
    if any(e >= max(s, d) for e, s, d in zip(extra, stride, dilation, strict=True)):
        raise RuntimeError(
            f"conv_transpose2d: output padding must be smaller than either stride or dilation, "
            f"but got output_padding={extra}, stride={stride} and dilation={dilation}"
        )
    if isinstance(groups, bool) or not isinstance(groups, numbers.Integral) or groups < 1:
        raise RuntimeError(f"conv_transpose2d: non-positive groups is not supported: {groups!r}")
    n, c = x.shape[:2]
    if weight.ndim != 4 or weight.shape[0] != c or c % groups:
        raise RuntimeError(
            f"conv_transpose2d: given groups={groups}, weight of size {list(weight.shape)}, "
            f"expected input{list(x.shape)} to have {weight.shape[0]} channels, but got {c} "
            "channels instead"
        )
    kernel, o = tuple(weight.shape[2:]), weight.shape[1] * groups
    size = tuple(
        (m - 1) * s - 2 * p + d * (k - 1) + e + 1
        for m, s, p, d, k, e in zip(x.shape[2:], stride, pads, dilation, kernel, extra, strict=True)
    )
    if min(size) < 1:
        raise RuntimeError(
            f"conv_transpose2d: given input size {list(x.shape[1:])}, the calculated output "
            f"size {[o, *size]} is too small"
        )
    if bias is not None and tuple(bias.shape) != (o,):
        raise RuntimeError(
            f"conv_transpose2d: bias of shape {list(bias.shape)} does not fit {o} output channels"
        )
    # cols[n, g, (o k), y] = sum over c of w[g c, o k] x[n, g c, y]; fold adds them into place
    length = x.shape[2] * x.shape[3]
    wm = weight.reshape(groups, c // groups, -1).transpose(1, 2)
    cols = (wm @ x.reshape(n, groups, c // groups, length)).reshape(n, o, *kernel, *x.shape[2:])
    # NOTE: output padding adds rows after the last window: they come out of the crop of the
    # after-padding, and the rest (beyond the padding) are zeros appended
    pairs = tuple((p, max(p - e, 0)) for p, e in zip(pads, extra, strict=True))
    beyond = [max(e - p, 0) for p, e in zip(pads, extra, strict=True)]
    out = apply(
        O.FOLD,
        cols,
        output_size=tuple(n - b for n, b in zip(size, beyond, strict=True)),
        kernel_size=kernel,
        dilation=dilation,
        padding=pairs,
        stride=stride,
    )
    if any(beyond):
        out = pad(out, (0, beyond[1], 0, beyond[0]))
    if bias is not None:
        out = out + bias.reshape(o, 1, 1)
    return _unbatched(out, unbatched)


def _pool_args(name, nd, kernel_size, stride, padding, dilation, size):
    kernel = _ints("kernel_size", kernel_size, nd, 1)
    stride = kernel if stride is None or stride == [] else _ints("stride", stride, nd, 1)
    padding = _ints("padding", padding, nd)
    dilation = _ints("dilation", dilation, nd, 1)
    for p, k in zip(padding, kernel, strict=True):
        if p > k // 2:
            raise RuntimeError(
                f"{name}: pad should be at most half of kernel size, but got pad={p} and "
                f"kernel_size={k}"
            )
    return kernel, stride, padding, dilation


def _pool_check_size(name, x, kernel, stride, padding, dilation, ceil_mode) -> None:
    pairs = O.pool_padding(tuple(x.shape[2:]), kernel, dilation, padding, stride, ceil_mode)
    counts = backend.window_counts(tuple(x.shape[2:]), kernel, dilation, pairs, stride)
    if min(counts) < 1:
        raise RuntimeError(
            f"{name}: given input size: ({'x'.join(map(str, x.shape[1:]))}). Calculated output "
            f"size: ({'x'.join(map(str, (x.shape[1], *counts)))}). Output size is too small"
        )


def _max_pool(name, nd, input, kernel_size, stride, padding, dilation, ceil_mode, indices):
    x, unbatched = _batched(name, input, nd)
    kernel, stride, padding, dilation = _pool_args(
        name, nd, kernel_size, stride, padding, dilation, x.shape[2:]
    )
    _pool_check_size(name, x, kernel, stride, padding, dilation, ceil_mode)
    params = dict(kernel_size=kernel, stride=stride, padding=padding, dilation=dilation)
    out = _unbatched(apply(O.MAX_POOL, x, ceil_mode=bool(ceil_mode), **params), unbatched)
    if not indices:
        return out
    # the flat position in the (unpadded) input plane of each window's first maximum
    size = tuple(x.shape[2:])
    pairs = O.pool_padding(size, kernel, dilation, padding, stride, bool(ceil_mode))
    _, arg = backend.max_windows(x._data, kernel, dilation, pairs, stride)
    xp = backend.array_module_of(arg)
    where = xp.zeros(arg.shape, dtype=np.int64)
    within = xp.unravel_index(arg, kernel)
    for d in range(nd):
        starts = xp.arange(arg.shape[2 + d]) * stride[d] - padding[d]
        place = starts.reshape((-1,) + (1,) * (nd - 1 - d)) + within[d] * dilation[d]
        where = where * size[d] + place
    return out, _unbatched(Tensor._wrap(where, False, None), unbatched)


def max_pool1d(
    input: Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    """The maximum of each window along the last dim of (N, C, L) input."""
    return _max_pool(
        "max_pool1d", 1, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices
    )


def max_pool2d(
    input: Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    """The maximum of each window of (N, C, H, W) input (stride defaults to the kernel size);
    with ``return_indices`` also the flat position (h W + w) of each maximum."""
    return _max_pool(
        "max_pool2d", 2, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices
    )


def _avg_pool(name, nd, input, kernel_size, stride, padding, ceil_mode, include_pad, override):
    x, unbatched = _batched(name, input, nd)
    kernel, stride, padding, _ = _pool_args(name, nd, kernel_size, stride, padding, 1, None)
    _pool_check_size(name, x, kernel, stride, padding, (1,) * nd, ceil_mode)
    if override is not None:
        if isinstance(override, bool) or not isinstance(override, numbers.Real) or override == 0:
            raise RuntimeError(f"{name}: divisor must be not zero, got {override!r}")
        divisor = np.asarray(float(override), dtype=x._data.dtype)
    else:
        divisor = O.pool_divisor(
            tuple(x.shape[2:]), kernel, stride, padding, bool(ceil_mode), bool(include_pad)
        ).astype(x._data.dtype)
    divisor = backend.to_device(divisor, x.device)
    out = apply(
        O.AVG_POOL,
        x,
        kernel_size=kernel,
        stride=stride,
        padding=padding,
        ceil_mode=bool(ceil_mode),
        count_include_pad=bool(include_pad),
        divisor=divisor,
    )
    return _unbatched(out, unbatched)


def avg_pool1d(
    input: Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> Tensor:
    """The mean of each window along the last dim of (N, C, L) input."""
    return _avg_pool(
        "avg_pool1d", 1, input, kernel_size, stride, padding, ceil_mode, count_include_pad, None
    )


def avg_pool2d(
    input: Tensor,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Tensor:
    """The mean of each window of (N, C, H, W) input; the zero padding counts in the divisor
    with ``count_include_pad``, and ``divisor_override`` replaces the divisor."""
    return _avg_pool(
        "avg_pool2d",
        2,
        input,
        kernel_size,
        stride,
        padding,
        ceil_mode,
        count_include_pad,
        divisor_override,
    )


def _resample(x: Tensor, matrices: Sequence[Any]) -> Tensor:
    """x (N, C, H, W) or (N, C, L) with its spatial dims mapped by the constant (out, in)
    matrices, one per dim."""
    *rows, cols = (_const(m.astype(x._data.dtype), x) for m in matrices)
    out = x @ cols.T
    return rows[0] @ out if rows else out


def _adaptive_matrix(n: int, m: int) -> Any:
    """(m, n): row i averages input elements floor(i n / m) to ceil((i + 1) n / m) - 1."""
    out = np.zeros((m, n))
    for i in range(m):
        lo, hi = i * n // m, -(-(i + 1) * n // m)
        out[i, lo:hi] = 1 / (hi - lo)
    return out


def adaptive_avg_pool2d(input: Tensor, output_size: Any) -> Tensor:
    """Average (N, C, H, W) input over a grid of ``output_size`` bins (None keeps a dim)."""
    x, unbatched = _batched("adaptive_avg_pool2d", input, 2)
    sizes = output_size if isinstance(output_size, (tuple, list)) else (output_size,) * 2
    if len(sizes) != 2:
        raise ValueError(f"adaptive_avg_pool2d: output_size must be 2, got {len(sizes)}")
    size = tuple(n if m is None else m for n, m in zip(x.shape[2:], sizes, strict=True))
    if any(not isinstance(m, numbers.Integral) or m < 0 for m in size):
        raise RuntimeError(f"adaptive_avg_pool2d: bad output size {output_size!r}")
    if size == (1, 1):
        out = x.mean((2, 3), True)
    elif all(n % m == 0 for n, m in zip(x.shape[2:], size, strict=True)):
        kernel = tuple(n // m for n, m in zip(x.shape[2:], size, strict=True))
        out = avg_pool2d(x, kernel)
    else:
        out = _resample(x, [_adaptive_matrix(n, m) for n, m in zip(x.shape[2:], size, strict=True)])
    return _unbatched(out, unbatched)


def unfold(
    input: Tensor, kernel_size: Any, dilation: Any = 1, padding: Any = 0, stride: Any = 1
) -> Tensor:
    """The sliding windows of (N, C, H, W) input as (N, C kH kW, L) columns (im2col)."""
    if input.ndim != 4:
        raise NotImplementedError(
            f"Input Error: Only 4D input Tensors are supported (got {input.ndim}D)"
        )
    kernel = _ints("kernel_size", kernel_size, 2, 1)
    dilation = _ints("dilation", dilation, 2, 1)
    pairs = tuple((p, p) for p in _ints("padding", padding, 2))
    stride = _ints("stride", stride, 2, 1)
    _check_windows("unfold", tuple(input.shape[2:]), pairs, kernel, dilation)
    cols = apply(
        O.UNFOLD, input, kernel_size=kernel, dilation=dilation, padding=pairs, stride=stride
    )
    n, c = input.shape[:2]
    return cols.reshape(n, c * kernel[0] * kernel[1], -1)


def fold(
    input: Tensor,
    output_size: Any,
    kernel_size: Any,
    dilation: Any = 1,
    padding: Any = 0,
    stride: Any = 1,
) -> Tensor:
    """(N, C kH kW, L) columns summed back into (N, C, *output_size): unfold's adjoint."""
    if input.ndim != 3:
        raise NotImplementedError(
            f"Input Error: Only unbatched (2D) or batched (3D) input Tensors are supported "
            f"(got {input.ndim}D)"
        )
    size = _ints("output_size", output_size, 2, 1)
    kernel = _ints("kernel_size", kernel_size, 2, 1)
    dilation = _ints("dilation", dilation, 2, 1)
    pairs = tuple((p, p) for p in _ints("padding", padding, 2))
    stride = _ints("stride", stride, 2, 1)
    counts = backend.window_counts(size, kernel, dilation, pairs, stride)
    n, k, length = input.shape
    if k % (kernel[0] * kernel[1]) or length != counts[0] * counts[1]:
        raise RuntimeError(
            f"fold: expected size of input's dimension 1 to be divisible by the product of "
            f"kernel_size {kernel} and dimension 2 to match the calculated number of sliding "
            f"blocks {counts[0]} * {counts[1]} = {counts[0] * counts[1]}, but got input of "
            f"size {list(input.shape)}"
        )
    cols = input.reshape(n, k // (kernel[0] * kernel[1]), *kernel, *counts)
    return apply(
        O.FOLD,
        cols,
        output_size=size,
        kernel_size=kernel,
        dilation=dilation,
        padding=pairs,
        stride=stride,
    )


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False):
    """Zero whole channels of (N, C, H, W) input with probability p, scale the rest by 1/(1-p)."""
    if not 0 <= p <= 1:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if input.ndim not in (3, 4):
        raise RuntimeError(
            f"dropout2d: expected 3D (unbatched) or 4D (batched) input, got {input.ndim}D input"
        )
    if not training or p == 0:
        return input
    if p == 1:
        return input * 0.0
    # NOTE: PyTorch treats 3-D input as (N, C, L) batched input (with a warning); so do we
    shape = tuple(input.shape[:2]) + (1,) * (input.ndim - 2)
    return input * _const(backend.draw(_dropout_mask, shape, p, input._data.dtype), input)


_INTERPOLATE_MODES = (
    "nearest",
    "linear",
    "bilinear",
    "bicubic",
    "trilinear",
    "area",
    "nearest-exact",
)


def _interpolation_matrix(n: int, m: int, mode: str, align_corners: bool, scale, dtype) -> Any:
    """(m, n): how each of m output positions mixes the n input positions."""
    out = np.zeros((m, n))
    dst = np.arange(m)
    if mode == "nearest":
        # NOTE: in float32, as PyTorch computes the source index: floor(dst * in / out)
        ratio = np.float32(1 / scale if scale is not None else n / m)
        src = np.minimum(np.floor(dst.astype(np.float32) * ratio).astype(np.int64), n - 1)
        out[dst, src] = 1
        return out
    # NOTE: the source positions in the input's precision, as PyTorch computes them
    dst = dst.astype(dtype)
    if align_corners:
        src = dst * dtype.type((n - 1) / (m - 1) if m > 1 else 0.0)
    else:
        ratio = dtype.type(1 / scale if scale is not None else n / m)
        src = np.maximum((dst + dtype.type(0.5)) * ratio - dtype.type(0.5), 0)
    lo = np.minimum(np.floor(src).astype(np.int64), n - 1)
    hi = np.minimum(lo + 1, n - 1)
    frac = (src - lo).astype(np.float64)
    np.add.at(out, (dst.astype(np.int64), lo), 1 - frac)
    np.add.at(out, (dst.astype(np.int64), hi), frac)
    return out


def interpolate(
    input: Tensor,
    size: Any = None,
    scale_factor: Any = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
    recompute_scale_factor: bool | None = None,
    antialias: bool = False,
) -> Tensor:
    """Resize (N, C, L) input ('nearest' or 'linear') or (N, C, H, W) input ('nearest' or
    'bilinear') to ``size`` or by ``scale_factor`` (``align_corners`` as in PyTorch)."""
    if mode not in _INTERPOLATE_MODES:
        raise NotImplementedError(
            f"interpolate: mode {mode!r} is not one of PyTorch's {_INTERPOLATE_MODES}"
        )
    needs = {"linear": 3, "bilinear": 4, "trilinear": 5, "bicubic": 4}.get(mode)
    if needs is not None and input.ndim != needs:
        raise NotImplementedError(f"Got {input.ndim}D input, but {mode} mode needs {needs}D input")
    if mode not in ("nearest", "linear", "bilinear") or input.ndim not in (3, 4):
        raise NotImplementedError(
            f"interpolate: only 3-D input with mode 'nearest' or 'linear' and 4-D input with "
            f"mode 'nearest' or 'bilinear' are supported, got {input.ndim}-D input and mode "
            f"{mode!r}"
        )
    if antialias:
        raise NotImplementedError("interpolate: antialias=True is not supported")
    if mode == "nearest" and align_corners is not None:
        raise ValueError(
            "align_corners option can only be set with the interpolating modes: linear | "
            "bilinear | bicubic | trilinear"
        )
    if (size is None) == (scale_factor is None):
        raise ValueError("only one of size or scale_factor should be defined")
    in_size = tuple(input.shape[2:])
    nd = len(in_size)
    scales: tuple = (None,) * nd
    if size is not None:
        if isinstance(size, (tuple, list)) and len(size) != nd:
            raise ValueError(
                f"Input and output must have the same number of spatial dimensions, but got "
                f"input with spatial dimensions of {list(in_size)} and output size of "
                f"{tuple(size)}."
            )
        out_size = _ints("size", size, nd, 1)
    else:
        factors = (
            tuple(scale_factor) if isinstance(scale_factor, (tuple, list)) else (scale_factor,) * nd
        )
        if len(factors) != nd:
            raise ValueError(
                f"Input and scale_factor must have the same number of spatial dimensions, but "
                f"got input with spatial dimensions of {list(in_size)} and scale_factor of "
                f"shape {list(factors)}."
            )
        out_size = tuple(
            int(math.floor(n * float(f))) for n, f in zip(in_size, factors, strict=True)
        )
        if not recompute_scale_factor:
            scales = tuple(float(f) for f in factors)
    matrices = [
        _interpolation_matrix(n, m, mode, bool(align_corners), s, input._data.dtype)
        for n, m, s in zip(in_size, out_size, scales, strict=True)
    ]
    return _resample(input, matrices)


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
