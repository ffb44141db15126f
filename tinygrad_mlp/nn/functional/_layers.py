"""torch.nn.functional's activations and layers: linear, dropout, one_hot, normalisations,
distances, embeddings and padding, with the helpers the convolution and loss modules share.

Each activation is the registry op of its name (``ops.OPS["leaky_relu"]`` ...), called with
PyTorch's keyword parameters.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

from ... import backend
from ... import ops as O
from ..._tensor import Tensor
from ..._tensor import where as _select
from ..._tensor_maths import einsum
from ...autograd.graph import apply
from ...backend import np

_REDUCTIONS = ("mean", "sum", "none")
_UNSIGNED = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}  # by item size


def _const(array: Any, like: Tensor) -> Tensor:
    """A constant tensor (no grad) around ``array``, on ``like``'s device."""
    if type(array) is not type(like._data):
        array = backend.to_device(np.asarray(array), like.device)
    return Tensor._wrap(array, False, None)


def _act(name: str, x: Tensor, **params: Any) -> Tensor:
    """The registry's activation op ``name`` on x."""
    if type(x) is not Tensor or x._data.dtype.kind == "b":
        _check_input(name, x)
    return apply(O.OPS[name], x, **params)


_BOOL_REFUSED_AS_RUNTIME = ("relu", "relu6", "hardtanh")  # the rest: PyTorch has no bool kernel


def _check_input(name: str, x: Any) -> None:
    """Refuse what PyTorch's activation refuses: a non-tensor (F.sigmoid and F.tanh call a
    method of it), a bool tensor (sigmoid and tanh compute in float32)."""
    if not isinstance(x, Tensor):
        if name in ("sigmoid", "tanh"):
            raise AttributeError(f"{type(x).__name__!r} object has no attribute {name!r}")
        raise TypeError(
            f"{name}(): argument 'input' (position 1) must be Tensor, not {type(x).__name__}"
        )
    if x._data.dtype.kind == "b" and name not in ("sigmoid", "tanh"):
        if name in _BOOL_REFUSED_AS_RUNTIME:
            raise RuntimeError(f"Boolean inputs not supported for {name}")
        raise NotImplementedError(f"\"{name}\" not implemented for 'Bool'")


def _where(mask: Any, a: Tensor, b: Tensor | float) -> Tensor:
    """a where the constant boolean ``mask`` holds, else b (inf in the other never leaks)."""
    return _select(_const(mask, a), a, b)


def _check_tensors(name: str, **values: Any) -> None:
    """Refuse arrays, lists and other non-tensors given where a Tensor is needed (None passes)."""
    for what, value in values.items():
        if value is not None and not isinstance(value, Tensor):
            raise TypeError(
                f"{name}: {what} must be a Tensor, got {type(value).__name__}; "
                "wrap it with tinygrad_mlp.Tensor(...)"
            )


# ---------------------------------------------------------------- activations


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """max(x, 0) elementwise (``inplace=True``: written into ``input``)."""
    if inplace:
        _check_input("relu", input)
        return input._unary_("relu_", relu)
    return _act("relu", input)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x for x > 0, negative_slope * x otherwise."""
    if inplace:
        _check_input("leaky_relu", input)
        return input._unary_("leaky_relu_", lambda t: leaky_relu(t, negative_slope))
    return _act("leaky_relu", input, negative_slope=float(negative_slope))


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x for x > 0, alpha * (e**x - 1) otherwise."""
    if inplace:
        _check_input("elu", input)
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
        _check_input("silu", input)
        return input._unary_("silu_", silu)
    return _act("silu", input)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + e**(beta x)) / beta, and x itself where beta x > threshold."""
    return _act("softplus", input, beta=float(beta), threshold=float(threshold))


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * tanh(softplus(x))."""
    if inplace:
        _check_input("mish", input)
        return input._unary_("mish_", mish)
    return _act("mish", input)


def hardtanh(
    input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False
) -> Tensor:
    """x clipped into [min_val, max_val] (gradient 1 strictly inside)."""
    _check_input("hardtanh", input)
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
        _check_input("relu6", input)
        return input._unary_("relu6_", relu6)
    return _act("relu6", input)


def logsigmoid(input: Tensor) -> Tensor:
    """log(sigmoid(x)) = -softplus(-x), finite for any x."""
    _check_input("logsigmoid", input)
    return -softplus(-input, threshold=float("inf"))


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    """scale * elu(x, alpha) with the self-normalising constants of Klambauer et al."""
    if inplace:
        _check_input("selu", input)
        return input._unary_("selu_", selu)
    return elu(input, _SELU_ALPHA) * _SELU_SCALE


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """max(0, x) + min(0, alpha * (e**(x / alpha) - 1))."""
    _check_input("celu", input)
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
    _check_input("hardsigmoid", input)
    if inplace:
        return input._unary_("hardsigmoid_", hardsigmoid)
    return (hardtanh(input, -3.0, 3.0) + 3) / 6


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * min(max(x + 3, 0), 6) / 6 (gradient 0 at -3 and 1 at 3, as PyTorch)."""
    if inplace:
        _check_input("hardswish", input)
        return input._unary_("hardswish_", hardswish)
    return _act("hardswish", input)


def sigmoid(input: Tensor) -> Tensor:
    """1 / (1 + e**-x) elementwise, stable for large |x|."""
    _check_input("sigmoid", input)
    return input.sigmoid()


def tanh(input: Tensor) -> Tensor:
    """Hyperbolic tangent elementwise."""
    _check_input("tanh", input)
    return input.tanh()


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
