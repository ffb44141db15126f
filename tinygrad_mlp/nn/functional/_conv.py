"""torch.nn.functional's convolution, pooling, fold/unfold, channel dropout and interpolation."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

from ... import backend
from ... import ops as O
from ..._tensor import Tensor
from ...autograd.graph import apply
from ...backend import np
from ._layers import _const, _dropout_mask, pad

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
