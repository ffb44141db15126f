"""PyTorch's functions and Tensor methods beyond the core arithmetic: rounding, trigonometry,
running sums and products, sorting, indexing and scattering, triangles and diagonals, shape
moves, logic, products and stacking. Each is a function ``name(input, ...)`` here, exported as
``tm.name`` and (where PyTorch has one) attached as the Tensor method ``input.name(...)``;
everything is composed from the registry's ops, so gradients come from their rules.
"""

from __future__ import annotations

import math
from collections import namedtuple
from collections.abc import Sequence
from typing import Any

from . import backend
from . import ops as O
from ._method_functions import _method_function
from ._tensor import (
    Tensor,
    _as_float,
    _binary,
    _bool_mask,
    _fit_inplace,
    _lift,
    _one_dim,
    _promote,
    _sizes,
    _wrap,
    apply,
    is_grad_enabled,
    matmul,
    where,
)
from .backend import np

_INT64 = np.dtype(np.int64)

sort_result = namedtuple("sort", ["values", "indices"])
topk_result = namedtuple("topk", ["values", "indices"])
kthvalue_result = namedtuple("kthvalue", ["values", "indices"])
median_result = namedtuple("median", ["values", "indices"])
mode_result = namedtuple("mode", ["values", "indices"])
aminmax_result = namedtuple("aminmax", ["min", "max"])


def _xp(t: Tensor) -> Any:
    return backend.array_module_of(t._data)


def _tensor(x: Any, like: Tensor | None = None) -> Tensor:
    if isinstance(x, Tensor):
        return x
    if like is not None:
        return _lift(x, like)
    from ._functions import tensor

    return tensor(x)


def _int_array(name: str, index: Any, device: str) -> Any:
    """An index argument as an int64 array on ``device``, or a RuntimeError naming ``name``."""
    data = index._data if isinstance(index, Tensor) else index
    if not backend.is_array(data):
        data = np.asarray(data)
    if data.dtype.kind not in "iu":
        raise RuntimeError(f"{name}(): Expected dtype int32 or int64 for index, got {data.dtype}")
    return backend.to_device(data.astype(np.int64, copy=False), device)


def _zero_grad(x: Tensor, values: Any) -> Tensor:
    """``values`` as a tensor recorded with a zero gradient for ``x`` (piecewise-constant ops)."""
    out = _wrap(values)
    if not (x.requires_grad and is_grad_enabled()):
        return out
    # NOTE: a where that never picks x records the op with a zero gradient for x
    return where(_wrap(_xp(x).zeros(x.shape, dtype=bool)), x, out)


def _exact(composed: Tensor, values: Any) -> Tensor:
    """``composed``'s gradient with ``values`` as its value (a correction carried as a constant:
    the formula composed for the gradient may round differently from the exact one)."""
    correction = values - composed._data
    if not correction.any():
        return composed
    return composed + _wrap(correction.astype(composed.dtype, copy=False))


# ---------------------------------------------------------------- rounding


def floor(input: Tensor) -> Tensor:
    """The largest integer not above each element (its gradient is 0)."""
    return _rounded(input, "floor")


def ceil(input: Tensor) -> Tensor:
    """The smallest integer not below each element (its gradient is 0)."""
    return _rounded(input, "ceil")


def trunc(input: Tensor) -> Tensor:
    """Each element rounded toward zero (its gradient is 0)."""
    return _rounded(input, "trunc")


fix = trunc


def _rounded(x: Tensor, how: str) -> Tensor:
    x = _tensor(x)
    if x._data.dtype.kind in "biu":
        return _wrap(x._data.copy())
    return _zero_grad(x, getattr(_xp(x), how)(x._data))


def frac(input: Tensor) -> Tensor:
    """The fractional part, x - trunc(x), with the sign of x."""
    x = _tensor(input)
    if x._data.dtype.kind in "biu":
        raise NotImplementedError(f'"frac_cpu" not implemented for {x.dtype}')
    return x - trunc(x)


# ---------------------------------------------------------------- trigonometry

_LOG2 = math.log(2)


def tan(input: Tensor) -> Tensor:
    """Elementwise tangent."""
    x = _as_float(_tensor(input))
    return _exact(x.sin() / x.cos(), _xp(x).tan(x._data))


def atan(input: Tensor) -> Tensor:
    """Elementwise inverse tangent."""
    return apply(O.ATAN, _as_float(_tensor(input)))


def asin(input: Tensor) -> Tensor:
    """Elementwise inverse sine (NaN outside [-1, 1])."""
    return apply(O.ASIN, _as_float(_tensor(input)))


def acos(input: Tensor) -> Tensor:
    """Elementwise inverse cosine (NaN outside [-1, 1])."""
    return apply(O.ACOS, _as_float(_tensor(input)))


def atan2(input: Tensor, other: Any) -> Tensor:
    """The angle of the point (other, input): atan(input / other) in the right quadrant."""
    y = _tensor(input, other if isinstance(other, Tensor) else None)
    x = _lift(other, y)
    y, x = _promote(_as_float(y), _as_float(x))
    return _binary(O.ATAN2, y, x)


def sinh(input: Tensor) -> Tensor:
    """Elementwise hyperbolic sine."""
    x = _as_float(_tensor(input))
    # NOTE: (e^x - e^-x) / 2 loses every digit near 0; there expm1 keeps them. Far from 0,
    # e^(x - log 2) overflows only where sinh itself does.
    small = x.clamp(-1.0, 1.0)
    near = (small.expm1() - (-small).expm1()) * 0.5
    far = (x - _LOG2).exp() - (-x - _LOG2).exp()
    return where((x.abs() < 1)._data, near, far)


def cosh(input: Tensor) -> Tensor:
    """Elementwise hyperbolic cosine."""
    x = _as_float(_tensor(input))
    return (x - _LOG2).exp() + (-x - _LOG2).exp()


arctan, arcsin, arccos, arctan2 = atan, asin, acos, atan2


# ---------------------------------------------------------------- running sums and products


def cumsum(input: Tensor, dim: int, *, dtype: Any = None) -> Tensor:
    """The running sum along ``dim`` (bool and int tensors sum in int64)."""
    x = _tensor(input)
    x = x if dtype is None else x.to(dtype)
    if x.ndim == 0:
        _one_dim(dim, 0)
        return x.clone() if x._data.dtype.kind == "f" else x.to(_INT64)
    d = _one_dim(dim, x.ndim)
    if x._data.dtype.kind in "biu":
        return _wrap(_xp(x).cumsum(x._data, axis=d, dtype=np.int64))
    return apply(O.CUMSUM, x, axis=d)


def cumprod(input: Tensor, dim: int, *, dtype: Any = None) -> Tensor:
    """The running product along ``dim`` (exact gradients, zeros included)."""
    x = _tensor(input)
    x = x if dtype is None else x.to(dtype)
    if x.ndim == 0:
        _one_dim(dim, 0)
        return x.clone() if x._data.dtype.kind == "f" else x.to(_INT64)
    d = _one_dim(dim, x.ndim)
    if x._data.dtype.kind in "biu":
        return _wrap(_xp(x).cumprod(x._data, axis=d, dtype=np.int64))
    # NOTE: a scan in log2(n) steps, each multiplying by the running products `step` places
    # back: products only, so the gradient is exact where elements are zero
    n, lead, out, step = x.shape[d], (slice(None),) * d, x, 1
    while step < n:
        shifted = out[lead + (slice(0, n - step),)]
        head, tail = out[lead + (slice(0, step),)], out[lead + (slice(step, n),)]
        out = _cat([head, tail * shifted], d)
        step *= 2
    return out


def _cat(parts: Sequence[Tensor], dim: int) -> Tensor:
    from ._functions import cat

    return cat(list(parts), dim)


# ---------------------------------------------------------------- sorting and selection


def _sorted_indices(x: Tensor, d: int, descending: bool) -> Any:
    xp, data = _xp(x), x._data
    if data.dtype.kind == "b":
        data = data.astype(np.int8)
    if not descending:
        return xp.argsort(data, axis=d, kind="stable")
    # NOTE: a stable descending order: sort the reversed array ascending and map back, so that
    # equal elements keep their order as in PyTorch's stable sort
    n = data.shape[d]
    rev = (slice(None),) * d + (slice(None, None, -1),)
    return (n - 1 - xp.argsort(data[rev], axis=d, kind="stable"))[rev]


def sort(input: Tensor, dim: int = -1, descending: bool = False, *, stable: bool = False) -> Any:
    """(values, indices) of the elements sorted along ``dim``; equal elements keep their order."""
    x = _tensor(input)
    if x.ndim == 0:
        return sort_result(x.clone(), _wrap(_xp(x).zeros((), np.int64)))
    d = _one_dim(dim, x.ndim)
    idx = _sorted_indices(x, d, descending).astype(np.int64)
    return sort_result(x.gather(d, _wrap(idx)), _wrap(idx))


def argsort(input: Tensor, dim: int = -1, descending: bool = False, *, stable: bool = False):
    """The indices that sort the elements along ``dim``."""
    return sort(input, dim, descending, stable=stable).indices


def msort(input: Tensor) -> Tensor:
    """The elements sorted along the first dimension."""
    return sort(input, 0).values


def topk(input: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):
    """(values, indices) of the ``k`` largest (or smallest) elements along ``dim``."""
    x = _tensor(input)
    d = _one_dim(dim, x.ndim)
    n = x.shape[d] if x.ndim else 1
    if not 0 <= k <= n:
        raise RuntimeError("selected index k out of range")
    if x.ndim == 0:
        return topk_result(x.clone(), _wrap(_xp(x).zeros((), np.int64)))
    idx = _sorted_indices(x, d, largest)[(slice(None),) * d + (slice(0, k),)]
    idx = _wrap(idx.astype(np.int64))
    return topk_result(x.gather(d, idx), idx)


def _picked(x: Tensor, idx: Any, d: int, keepdim: bool, result) -> Any:
    """(values, indices) of x at ``idx`` (kept dim of size 1 along ``d``)."""
    idx = _wrap(idx.astype(np.int64))
    values = x.gather(d, idx)
    if not keepdim:
        values, idx = values.squeeze(d), idx.squeeze(d)
    return result(values, idx)


def kthvalue(input: Tensor, k: int, dim: int = -1, keepdim: bool = False) -> Any:
    """(values, indices) of the ``k``-th smallest element along ``dim`` (k counts from 1)."""
    x = _tensor(input)
    d = _one_dim(dim, x.ndim)
    n = x.shape[d] if x.ndim else 1
    if not 1 <= k <= n:
        raise RuntimeError(f"kthvalue(): selected number k out of range for dimension {d}")
    if x.ndim == 0:
        return kthvalue_result(x.clone(), _wrap(_xp(x).zeros((), np.int64)))
    idx = _sorted_indices(x, d, False)[(slice(None),) * d + (slice(k - 1, k),)]
    return _picked(x, idx, d, keepdim, kthvalue_result)


def median(input: Tensor, dim: Any = None, keepdim: bool = False) -> Any:
    """The median (the lower of the two middle elements for an even count); with ``dim``,
    (values, indices) along it."""
    x = _tensor(input)
    if dim is None:
        if x.numel() == 0:
            return _wrap(_xp(x).full((), np.nan, x.dtype))
        flat = x.reshape(-1)
        return kthvalue(flat, (flat.shape[0] + 1) // 2).values
    d = _one_dim(dim, x.ndim)
    n = x.shape[d] if x.ndim else 1
    if x.ndim == 0:
        return median_result(x.clone(), _wrap(_xp(x).zeros((), np.int64)))
    idx = _sorted_indices(x, d, False)[(slice(None),) * d + (slice((n - 1) // 2, (n + 1) // 2),)]
    return _picked(x, idx, d, keepdim, median_result)


def mode(input: Tensor, dim: int = -1, keepdim: bool = False) -> Any:
    """(values, indices) of the most frequent element along ``dim`` (the smallest of equally
    frequent ones, at its last position)."""
    x = _tensor(input)
    if x.ndim == 0:
        return mode_result(x.clone(), _wrap(_xp(x).zeros((), np.int64)))
    d = _one_dim(dim, x.ndim)
    xp = _xp(x)
    data = xp.moveaxis(x._data, d, -1)
    ordered = xp.sort(data, axis=-1)
    counts = (ordered[..., :, None] == ordered[..., None, :]).sum(axis=-1)
    best = xp.take_along_axis(ordered, xp.argmax(counts, axis=-1)[..., None], axis=-1)
    n = data.shape[-1]
    positions = xp.where(data == best, xp.arange(n), -1).max(axis=-1, keepdims=True)
    return _picked(x, xp.moveaxis(positions, -1, d), d, keepdim, mode_result)


def aminmax(input: Tensor, *, dim: Any = None, keepdim: bool = False) -> Any:
    """(min, max) over ``dim`` (all elements when None)."""
    x = _tensor(input)
    if dim is None:
        return aminmax_result(x.amin(keepdim=keepdim), x.amax(keepdim=keepdim))
    return aminmax_result(x.amin(dim, keepdim), x.amax(dim, keepdim))


def std_mean(input: Tensor, dim: Any = None, unbiased: Any = None, keepdim: bool = False, *,
             correction: Any = None) -> tuple[Tensor, Tensor]:  # fmt: skip
    """(std, mean) over ``dim``, with Bessel's correction by default."""
    x = _as_float(_tensor(input))
    return x.std(dim, unbiased, keepdim, correction=correction), x.mean(dim, keepdim)


def var_mean(input: Tensor, dim: Any = None, unbiased: Any = None, keepdim: bool = False, *,
             correction: Any = None) -> tuple[Tensor, Tensor]:  # fmt: skip
    """(var, mean) over ``dim``, with Bessel's correction by default."""
    x = _as_float(_tensor(input))
    return x.var(dim, unbiased, keepdim, correction=correction), x.mean(dim, keepdim)


# ---------------------------------------------------------------- indexing


def _along(d: int, index: Any) -> tuple:
    return (slice(None),) * d + (index,)


def narrow(input: Tensor, dim: int, start: int, length: int) -> Tensor:
    """``length`` elements from ``start`` along ``dim`` (a view)."""
    return _tensor(input).narrow(dim, start, length)


def select(input: Tensor, dim: int, index: int) -> Tensor:
    """The slice at ``index`` along ``dim``, without that dimension (a view)."""
    return _tensor(input).select(dim, index)


def index_select(input: Tensor, dim: int, index: Any) -> Tensor:
    """The slices at ``index`` (a 1-D int tensor) along ``dim``."""
    x = _tensor(input)
    idx = _int_array("index_select", index, x.device)
    if idx.ndim > 1:
        raise IndexError(f"index_select(): Index is supposed to be a vector, got {idx.ndim}-D")
    if x.ndim == 0:
        return x[()] if idx.size else x.reshape(1)[:0]
    d = _one_dim(dim, x.ndim)
    return x[_along(d, idx.reshape(-1))]


def masked_select(input: Tensor, mask: Any) -> Tensor:
    """The elements where ``mask`` (broadcast with the input) is True, as a 1-D tensor."""
    x = _tensor(input)
    m = _bool_mask("masked_select", mask)
    shape = np.broadcast_shapes(x.shape, m.shape)
    m = backend.to_device(m, x.device)
    m = _xp(x).broadcast_to(m, shape)
    return x.expand(*shape)[m] if x.shape != shape else x[m]


def take(input: Tensor, index: Any) -> Tensor:
    """The elements of the flattened input at ``index`` (in the shape of ``index``)."""
    x = _tensor(input)
    idx = _int_array("take", index, x.device)
    n = x.numel()
    if idx.size and (idx.max() >= n or idx.min() < -n):
        raise IndexError(f"take(): index out of range for a tensor of {n} elements")
    return x.reshape(-1)[idx]


def _scatter_positions(name: str, x: Tensor, dim: int, index: Any) -> tuple[int, Any, tuple]:
    """dim, the index array and the advanced index of the positions that ``index`` names
    along ``dim`` (the other coordinates running over the index's own shape)."""
    idx = _int_array(name, index, x.device)
    if idx.ndim != x.ndim and not (idx.ndim <= 1 and x.ndim <= 1):
        raise RuntimeError(
            f"{name}(): Index tensor must have the same number of dimensions as self tensor "
            f"({idx.ndim} and {x.ndim})"
        )
    d = _one_dim(dim, x.ndim)
    if x.ndim == 0:
        idx = idx.reshape(())
        return d, idx, ()
    for i, (a, b) in enumerate(zip(idx.shape, x.shape, strict=True)):
        if i != d and a > b:
            raise RuntimeError(
                f"{name}(): Expected index {tuple(idx.shape)} to be smaller than self "
                f"{tuple(x.shape)} apart from dimension {d}"
            )
    if idx.size and (idx.max() >= x.shape[d] or idx.min() < -x.shape[d]):
        raise RuntimeError(f"{name}(): index out of bounds for dimension {d} of size {x.shape[d]}")
    xp = _xp(x)
    grid = list(xp.ogrid[tuple(slice(n) for n in idx.shape)]) if idx.ndim else []
    grid[d] = idx % x.shape[d]
    return d, idx, tuple(grid)


def _source(name: str, x: Tensor, idx: Any, src: Any) -> Tensor:
    """The part of ``src`` that the index covers (a number: filled to the index's shape)."""
    if not isinstance(src, Tensor):
        return _lift(src, x).to(x.dtype).expand(*idx.shape) if idx.ndim else _lift(src, x)
    for i, (a, b) in enumerate(zip(idx.shape, src.shape, strict=False)):
        if a > b:
            raise RuntimeError(
                f"{name}(): Expected index {tuple(idx.shape)} to be smaller than src "
                f"{tuple(src.shape)} (dimension {i})"
            )
    if src.dtype != x.dtype:
        raise RuntimeError(
            f"{name}(): Expected self.dtype to be equal to src.dtype ({x.dtype} and {src.dtype})"
        )
    if src.shape == tuple(idx.shape):
        return src
    return src[tuple(slice(0, n) for n in idx.shape)]


def _added(x: Tensor, values: Tensor, where_: tuple) -> Tensor:
    """zeros like x with ``values`` added at the positions ``where_`` (repeats add up)."""
    if x._data.dtype.kind in "biu":
        out = _xp(x).zeros(x.shape, x.dtype)
        _xp(x).add.at(out, where_, values._data)
        return _wrap(out)
    return apply(O.SCATTER, values, index=where_, shape=tuple(x.shape))


def _hit(x: Tensor, where_: tuple) -> Any:
    mask = _xp(x).zeros(x.shape, bool)
    mask[where_] = True
    return mask


def _ranks(flat: Any) -> Any:
    """For each entry of ``flat``, how many equal entries come before it."""
    xp = backend.array_module_of(flat)
    order = xp.argsort(flat, kind="stable")
    ordered = flat[order]
    starts = xp.concatenate([xp.ones(min(len(flat), 1), bool), ordered[1:] != ordered[:-1]])
    run_start = xp.maximum.accumulate(xp.where(starts, xp.arange(len(flat)), 0))
    ranks = xp.empty(len(flat), np.int64)
    ranks[order] = xp.arange(len(flat)) - run_start
    return ranks


def _flat_targets(x: Tensor, where_: tuple) -> Any:
    if not where_:
        return _xp(x).zeros(1, np.int64)
    xp = _xp(x)
    shape = np.broadcast_shapes(*(w.shape for w in where_))
    full = tuple(xp.broadcast_to(w, shape) for w in where_)
    return xp.ravel_multi_index(full, x.shape).reshape(-1)


def scatter(input: Tensor, dim: int, index: Any, src: Any = None, *, value: Any = None,
            reduce: str | None = None) -> Tensor:  # fmt: skip
    """A copy of the input with ``src`` (a tensor or a number) written at ``index`` along
    ``dim``; where an index repeats, the last write wins. ``reduce='add'|'multiply'``
    combines instead."""
    x = _tensor(input)
    if src is None:
        src = value
    if src is None:
        raise TypeError("scatter() missing the src tensor or value")
    if reduce is not None:
        kinds = {"add": "sum", "multiply": "prod"}
        if reduce not in kinds:
            raise RuntimeError(f"reduce argument must be either add or multiply, got {reduce}")
        return scatter_reduce(x, dim, index, _source_tensor(x, index, src), kinds[reduce])
    d, idx, where_ = _scatter_positions("scatter", x, dim, index)
    source = _source("scatter", x, idx, src)
    if not where_:
        return source.to(x.dtype).clone() if idx.ndim == 0 else x.clone()
    targets = _flat_targets(x, where_)
    # NOTE: of repeated positions the last write is kept, as PyTorch on the CPU; as in PyTorch
    # every write gets its position's gradient, and the input none where something is written
    last = _last_of_each(targets)
    flat = source.reshape(-1)
    if x._data.dtype.kind in "biu":
        written = _xp(x).zeros(x.numel(), x.dtype)
        written[targets[last]] = flat._data[last]
        written = _wrap(written)
    else:
        written = apply(O.SCATTER_LAST, flat, positions=targets, last=last, size=x.numel())
    mask = _xp(x).zeros(x.numel(), bool)
    mask[targets[last]] = True
    return where(mask.reshape(x.shape), written.reshape(*x.shape), x)


def _source_tensor(x: Tensor, index: Any, src: Any) -> Tensor:
    if isinstance(src, Tensor):
        return src
    shape = index.shape if isinstance(index, Tensor) else np.shape(index)
    return _lift(src, x).to(x.dtype).expand(*shape)


def _last_of_each(targets: Any) -> Any:
    """The positions in ``targets`` of the last occurrence of each distinct value."""
    xp = backend.array_module_of(targets)
    rev = targets[::-1]
    _, first = xp.unique(rev, return_index=True)
    return len(targets) - 1 - first


def scatter_add(input: Tensor, dim: int, index: Any, src: Tensor) -> Tensor:
    """A copy of the input with ``src`` added at ``index`` along ``dim`` (repeats add up)."""
    x = _tensor(input)
    d, idx, where_ = _scatter_positions("scatter_add", x, dim, index)
    source = _source("scatter_add", x, idx, src)
    return x + _added(x, source, where_)


_REDUCTIONS = ("sum", "prod", "mean", "amax", "amin")


def scatter_reduce(input: Tensor, dim: int, index: Any, src: Tensor, reduce: str, *,
                   include_self: bool = True) -> Tensor:  # fmt: skip
    """The input with ``src`` combined at ``index`` along ``dim`` by ``reduce`` ('sum',
    'prod', 'mean', 'amax' or 'amin'); ``include_self=False`` leaves the input's own values
    out where something is scattered. Tied extremes share the gradient equally."""
    reduce = {"max": "amax", "min": "amin"}.get(reduce, reduce)  # PyTorch's older names
    if reduce not in _REDUCTIONS:
        raise RuntimeError(
            f"reduce argument must be either sum, prod, mean, amax or amin, got {reduce}"
        )
    x = _tensor(input)
    d, idx, where_ = _scatter_positions("scatter_reduce", x, dim, index)
    source = _source("scatter_reduce", x, idx, src)
    if not where_:
        raise RuntimeError("scatter_reduce(): a 0-d input is not supported; use a 1-D one")
    hit = _hit(x, where_)
    base = x if include_self else where(hit, _lift(0, x), x)
    if reduce == "sum":
        return base + _added(x, source, where_)
    if reduce == "mean":
        ones = _wrap(_xp(x).ones(source.shape, x.dtype))
        count = _added(x, ones, where_) + (1 if include_self else 0)
        count = where(hit, count, _lift(1, count))
        total = base + _added(x, source, where_)
        if x._data.dtype.kind in "biu":
            return total // count
        return where(hit, total / count, x)
    if reduce == "prod":
        out = x if include_self else where(hit, _lift(1, x), x)
        targets = _flat_targets(x, where_)
        ranks = _ranks(targets)
        flat_source = source.reshape(-1)
        # NOTE: one round per repeat of a position: within a round every position is hit at
        # most once, so a product of factors (exact gradients, zeros included)
        for r in range(int(ranks.max()) + 1 if ranks.size else 0):
            pick = _xp(x).nonzero(ranks == r)[0]
            factors = _added(x.reshape(-1), flat_source[pick] - 1, (targets[pick],)) + 1
            out = out * factors.reshape(*x.shape)
        return out
    # amax / amin: the result first, then each position's value as the mean of the entries
    # equal to it, so that the gradient is shared equally among ties
    xp = _xp(x)
    top = (xp.maximum if reduce == "amax" else xp.minimum).at
    start = (
        x._data.copy()
        if include_self
        else xp.where(hit, -np.inf if reduce == "amax" else np.inf, x._data).astype(x.dtype)
    )
    top(start, where_, source._data)
    best = _wrap(start)
    source_ties = source._data == start[where_]
    self_ties = (x._data == start) if include_self else ~hit
    sums = _added(x, where(source_ties, source, _lift(0, source)), where_)
    counts = _added(x, _wrap(source_ties.astype(x.dtype)), where_)._data + self_ties
    out = (sums + where(self_ties, x, _lift(0, x))) / _wrap(xp.maximum(counts, 1).astype(x.dtype))
    if x._data.dtype.kind in "biu":
        return best
    return where(hit, out, x)


def _one_dim_index(name: str, x: Tensor, dim: int, index: Any) -> tuple[int, Any]:
    idx = _int_array(name, index, x.device)
    if idx.ndim > 1:
        raise IndexError(f"{name}(): Index is supposed to be a vector, got {idx.ndim}-D")
    d = _one_dim(dim, x.ndim)
    n = x.shape[d] if x.ndim else 1
    idx = idx.reshape(-1)
    if idx.size and (idx.max() >= n or idx.min() < -n):
        raise IndexError(f"{name}(): index out of range for dimension {d} of size {n}")
    return d, idx % n


def _sliced_shape(x: Tensor, d: int, n: int) -> tuple:
    return x.shape[:d] + (n,) + x.shape[d + 1 :]


def index_add(input: Tensor, dim: int, index: Any, source: Tensor, *, alpha: Any = 1) -> Tensor:
    """The input with ``alpha * source`` added at the slices ``index`` along ``dim``."""
    x = _tensor(input)
    d, idx = _one_dim_index("index_add", x, dim, index)
    source = _tensor(source, x)
    if x.ndim and source.shape != _sliced_shape(x, d, len(idx)):
        raise RuntimeError(
            f"index_add(): source of shape {source.shape} does not fit the input of shape "
            f"{x.shape} with {len(idx)} indices along dimension {d}"
        )
    if x.ndim == 0:
        return x + source.sum() * alpha
    return x + _added(x, source if alpha == 1 else source * alpha, _along(d, idx))


def index_fill(input: Tensor, dim: int, index: Any, value: Any) -> Tensor:
    """The input with ``value`` at the slices ``index`` along ``dim``."""
    x = _tensor(input)
    d, idx = _one_dim_index("index_fill", x, dim, index)
    mask = _xp(x).zeros(x.shape, bool)
    mask[_along(d, idx) if x.ndim else ()] = True
    return where(mask, _lift(value, x).to(x.dtype), x)


def index_copy(input: Tensor, dim: int, index: Any, source: Tensor) -> Tensor:
    """The input with the slices of ``source`` copied to the slices ``index`` along ``dim``
    (the last copy wins where an index repeats)."""
    x = _tensor(input)
    d, idx = _one_dim_index("index_copy", x, dim, index)
    source = _tensor(source, x)
    if x.ndim == 0:
        return source.reshape(()).to(x.dtype).clone() if len(idx) else x.clone()
    if source.shape != _sliced_shape(x, d, len(idx)):
        raise RuntimeError(
            f"index_copy(): source of shape {source.shape} does not fit the input of shape "
            f"{x.shape} with {len(idx)} indices along dimension {d}"
        )
    last = _last_of_each(idx)
    picked = source[_along(d, last)]
    written = _added(x, picked, _along(d, idx[last]))
    mask = _xp(x).zeros(x.shape, bool)
    mask[_along(d, idx)] = True
    return where(mask, written, x)


# ---------------------------------------------------------------- triangles and diagonals


def _triangle(name: str, x: Tensor, diagonal: int, lower: bool) -> Tensor:
    x = _tensor(x)
    if x.ndim < 2:
        raise RuntimeError(f"{name}: input tensor must have at least 2 dimensions")
    n, m = x.shape[-2:]
    keep = _xp(x).tri(n, m, diagonal, dtype=bool)
    if not lower:
        keep = ~_xp(x).tri(n, m, diagonal - 1, dtype=bool)
    return where(_xp(x).broadcast_to(keep, x.shape), x, _lift(0, x))


def tril(input: Tensor, diagonal: int = 0) -> Tensor:
    """The lower triangle of the last two dims (on and below ``diagonal``), zeros above."""
    return _triangle("tril", input, diagonal, True)


def triu(input: Tensor, diagonal: int = 0) -> Tensor:
    """The upper triangle of the last two dims (on and above ``diagonal``), zeros below."""
    return _triangle("triu", input, diagonal, False)


def _diagonal_positions(n: int, m: int, offset: int) -> tuple[Any, Any]:
    length = max(min(n, m - offset) if offset >= 0 else min(n + offset, m), 0)
    rows = np.arange(length) + max(-offset, 0)
    return rows, rows + offset


def diagonal(input: Tensor, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    """The diagonal of the planes (dim1, dim2), as the last dimension (a view)."""
    return _tensor(input).diagonal(offset, dim1, dim2)


_diagonal_of = diagonal  # diag's argument is named diagonal, as in PyTorch


def diag(input: Tensor, diagonal: int = 0) -> Tensor:
    """A 1-D input as the diagonal ``diagonal`` of a square matrix; a 2-D input's diagonal."""
    x = _tensor(input)
    if x.ndim == 2:
        return _diagonal_of(x, diagonal)
    if x.ndim != 1:
        raise RuntimeError(f"diag(): Supports 1D or 2D tensors. Got {x.ndim}D")
    return diag_embed(x, diagonal)


def diag_embed(input: Tensor, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
    """Matrices whose diagonal ``offset`` (in the new dims ``dim1``, ``dim2``) holds the last
    dimension of the input, zeros elsewhere."""
    x = _tensor(input)
    n = x.shape[-1] + abs(offset)
    ndim = x.ndim + 1
    a, b = _one_dim(dim1, ndim), _one_dim(dim2, ndim)
    if a == b:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    rows, cols = _diagonal_positions(n, n, offset)
    device = x.device
    index = (Ellipsis, backend.to_device(rows, device), backend.to_device(cols, device))
    out = _added(_wrap(_xp(x).zeros(x.shape[:-1] + (n, n), x.dtype)), x, index)
    # the two new dims are last: move them to dim1 and dim2
    order = list(range(ndim - 2))
    for pos, src in sorted(((a, ndim - 2), (b, ndim - 1))):
        order.insert(pos, src)
    return out.permute(*order)


# ---------------------------------------------------------------- moving elements


def roll(input: Tensor, shifts: Any, dims: Any = None) -> Tensor:
    """The elements shifted by ``shifts`` along ``dims`` (the flattened tensor when None),
    wrapping around."""
    x = _tensor(input)
    shifts = (shifts,) if isinstance(shifts, int) else tuple(shifts)
    if dims is None:
        if len(shifts) != 1:
            raise RuntimeError(f"shifts and dimensions must align. shifts: {len(shifts)}, dims:0")
        return roll(x.reshape(-1), shifts, 0).reshape(*x.shape)
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    if len(shifts) != len(dims):
        raise RuntimeError(
            f"shifts and dimensions must align. shifts: {len(shifts)}, dims:{len(dims)}"
        )
    out = x
    for s, dim in zip(shifts, dims, strict=True):
        d = _one_dim(dim, x.ndim)
        n = x.shape[d]
        if n and s % n:
            positions = backend.to_device((np.arange(n) - s) % n, x.device)
            out = out[_along(d, positions)]
    return out


def rot90(input: Tensor, k: int = 1, dims: Sequence[int] = (0, 1)) -> Tensor:
    """The tensor turned by 90 degrees ``k`` times in the plane ``dims``, from the first
    towards the second."""
    x = _tensor(input)
    dims = tuple(dims)
    if len(dims) != 2:
        raise RuntimeError(f"expected total rotation dims == 2, but got dims = {len(dims)}")
    if x.ndim < 2:
        raise RuntimeError(f"expected total dims >= 2, but got total dims = {x.ndim}")
    a, b = _one_dim(dims[0], x.ndim), _one_dim(dims[1], x.ndim)
    if a == b:
        raise RuntimeError(
            f"expected rotation dims to be different, but got dim0 = {a} and dim1 = {b}"
        )
    k %= 4
    if k == 1:
        return x.flip(b).transpose(a, b)
    if k == 2:
        return x.flip(a, b)
    if k == 3:
        return x.flip(a).transpose(a, b)
    return x.clone()


def repeat_interleave(input: Tensor, repeats: Any = None, dim: Any = None, *,
                      output_size: Any = None) -> Tensor:  # fmt: skip
    """Each element (or slice along ``dim``) repeated ``repeats`` times in place."""
    x = _tensor(input)
    if repeats is None:  # repeat_interleave(repeats): the indices, each repeated
        counts = _int_array("repeat_interleave", x, x.device)
        return _wrap(_xp(x).repeat(_xp(x).arange(len(counts)), counts))
    if dim is None:
        x, d = x.reshape(-1), 0
    else:
        d = _one_dim(dim, x.ndim)
    n = x.shape[d] if x.ndim else 1
    counts = repeats._data if isinstance(repeats, Tensor) else np.asarray(repeats)
    counts = backend.to_numpy(counts).reshape(-1)
    if counts.size not in (1, n):
        raise RuntimeError(
            f"repeats must have the same size as input along dim, but got repeats.size(0) = "
            f"{counts.size} and input.size({d}) = {n}"
        )
    if (counts < 0).any():
        raise RuntimeError("repeats can not be negative")
    positions = np.repeat(np.arange(n), counts if counts.size == n else int(counts[0]))
    if x.ndim == 0:
        x = x.reshape(1)
    return x[_along(d, backend.to_device(positions, x.device))]


def tile(input: Tensor, dims: Sequence[int]) -> Tensor:
    """The tensor repeated ``dims[i]`` times along each dimension (1s prepended as needed)."""
    x = _tensor(input)
    dims = _sizes((dims,), "tile: dims") if not isinstance(dims, int) else (dims,)
    dims = (1,) * (x.ndim - len(dims)) + tuple(dims)
    return x.repeat(*dims)


def movedim(input: Tensor, source: Any, destination: Any) -> Tensor:
    """The dims ``source`` moved to the positions ``destination``, the others in order."""
    x = _tensor(input)
    src = (source,) if isinstance(source, int) else tuple(source)
    dst = (destination,) if isinstance(destination, int) else tuple(destination)
    if len(src) != len(dst):
        raise RuntimeError(
            f"movedim: Invalid source or destination dims: source ({list(src)} dims) should "
            f"contain the same number of dims as destination ({list(dst)} dims)"
        )
    src = tuple(_one_dim(s, x.ndim) for s in src)
    dst = tuple(_one_dim(s, x.ndim) for s in dst)
    if len(set(src)) != len(src) or len(set(dst)) != len(dst):
        raise RuntimeError(f"movedim: repeated dim in source ({src}) or destination ({dst})")
    rest = iter(i for i in range(x.ndim) if i not in src)
    placed = dict(zip(dst, src, strict=True))
    order = [placed[i] if i in placed else next(rest) for i in range(x.ndim)]
    return x.permute(*order) if x.ndim else x


moveaxis = movedim


def swapdims(input: Tensor, dim0: int, dim1: int) -> Tensor:
    """``dim0`` and ``dim1`` swapped."""
    return _tensor(input).transpose(dim0, dim1)


# ---------------------------------------------------------------- logic


def _truth(x: Any, name: str) -> Any:
    if not isinstance(x, Tensor):
        raise TypeError(
            f"{name}(): argument 'other' (position 2) must be Tensor, not {type(x).__name__}"
        )
    return x._data.astype(bool, copy=False)


def logical_and(input: Tensor, other: Tensor) -> Tensor:
    """Elementwise: both nonzero (bool)."""
    return _wrap(_truth(_tensor(input), "logical_and") & _truth(other, "logical_and"))


def logical_or(input: Tensor, other: Tensor) -> Tensor:
    """Elementwise: either nonzero (bool)."""
    return _wrap(_truth(_tensor(input), "logical_or") | _truth(other, "logical_or"))


def logical_xor(input: Tensor, other: Tensor) -> Tensor:
    """Elementwise: exactly one nonzero (bool)."""
    return _wrap(_truth(_tensor(input), "logical_xor") ^ _truth(other, "logical_xor"))


# ---------------------------------------------------------------- division with remainders


def _operands(input: Any, other: Any) -> tuple[Tensor, Tensor]:
    a = input if isinstance(input, Tensor) else _lift(input, other)
    return _promote(a, _lift(other, a))


def remainder(input: Any, other: Any) -> Tensor:
    """input - floor(input / other) * other: the remainder with the sign of ``other``
    (Python's %)."""
    if isinstance(input, (bool, int, float)) and isinstance(other, Tensor):
        return other.__rmod__(input)  # a number first: no derivative, as in PyTorch
    a, b = _operands(input, other)
    return a.remainder(b)


def fmod(input: Any, other: Any) -> Tensor:
    """input - trunc(input / other) * other: the remainder with the sign of ``input``."""
    a, b = _operands(input, other)
    xp = _xp(a)
    if a._data.dtype.kind in "biu":
        return _wrap(xp.fmod(a._data, b._data))
    quotient = _zero_grad(a, xp.trunc(a._data / b._data))
    return _exact(a - quotient * b, xp.fmod(a._data, b._data))


def floor_divide(input: Any, other: Any) -> Tensor:
    """floor(input / other), elementwise (no gradient, as in PyTorch)."""
    a, b = _operands(input, other)
    return a // b


# ---------------------------------------------------------------- products


def mv(input: Tensor, vec: Tensor) -> Tensor:
    """The product of a matrix and a vector."""
    x = _tensor(input)
    if x.ndim != 2 or getattr(vec, "ndim", 0) != 1:
        raise RuntimeError(
            f"vector + matrix @ vector expected, got {x.ndim}, {x.ndim}, {getattr(vec, 'ndim', 0)}"
        )
    if x.shape[1] != vec.shape[0]:
        raise RuntimeError(
            f"size mismatch, got input ({x.shape[0]}), mat ({x.shape[0]}x{x.shape[1]}), "
            f"vec ({vec.shape[0]})"
        )
    return matmul(x, vec)


def _scaled_sum(input: Tensor, product: Tensor, beta: Any, alpha: Any) -> Tensor:
    product = product if alpha == 1 else product * alpha
    input = _tensor(input, product)
    if beta == 0:  # PyTorch ignores the input then (NaN and inf in it do not propagate)
        return product.expand(*np.broadcast_shapes(product.shape, input.shape))
    return (input if beta == 1 else input * beta) + product


def addmm(input: Tensor, mat1: Tensor, mat2: Tensor, *, beta: Any = 1, alpha: Any = 1):
    """beta * input + alpha * (mat1 @ mat2)."""
    if getattr(mat1, "ndim", 0) != 2 or getattr(mat2, "ndim", 0) != 2:
        raise RuntimeError(
            f"addmm: mat1 and mat2 must be matrices, got {getattr(mat1, 'ndim', 0)}-D and "
            f"{getattr(mat2, 'ndim', 0)}-D"
        )
    return _scaled_sum(input, matmul(mat1, mat2), beta, alpha)


def addmv(input: Tensor, mat: Tensor, vec: Tensor, *, beta: Any = 1, alpha: Any = 1):
    """beta * input + alpha * (mat @ vec)."""
    return _scaled_sum(input, mv(mat, vec), beta, alpha)


def baddbmm(input: Tensor, batch1: Tensor, batch2: Tensor, *, beta: Any = 1, alpha: Any = 1):
    """beta * input + alpha * (batch1 @ batch2) for batches of matrices."""
    return _scaled_sum(input, _tensor(batch1).bmm(batch2), beta, alpha)


def addbmm(input: Tensor, batch1: Tensor, batch2: Tensor, *, beta: Any = 1, alpha: Any = 1):
    """beta * input + alpha * the sum over the batch of batch1 @ batch2."""
    return _scaled_sum(input, _tensor(batch1).bmm(batch2).sum(0), beta, alpha)


_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def einsum(equation: str, *operands: Any) -> Tensor:
    """The sum over the repeated subscripts of ``equation`` of the products of ``operands``
    (numpy's and PyTorch's notation, with '...' and implicit output)."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    xs = [_tensor(x) for x in operands]
    eq = equation.replace(" ", "")
    inputs, arrow, out = eq.partition("->")
    subs = inputs.split(",")
    if len(subs) != len(xs):
        raise RuntimeError(
            "einsum(): more operands were provided than specified in the equation"
            if len(xs) > len(subs)
            else "einsum(): fewer operands were provided than specified in the equation"
        )
    used = set(c for c in eq if c.isalpha())
    spare = [c for c in _LETTERS if c not in used]
    widest = 0
    for s, x in zip(subs, xs, strict=True):
        if "..." in s:
            widest = max(widest, x.ndim - (len(s) - 3))
    ell = "".join(spare[:widest])
    full = []
    for s, x in zip(subs, xs, strict=True):
        named = len(s) - 3 if "..." in s else len(s)
        if "..." in s:
            s = s.replace("...", ell[widest - (x.ndim - named) :] if x.ndim > named else "")
        if len(s) != x.ndim or not all(c.isalpha() for c in s):
            raise RuntimeError(
                f"einsum(): the number of subscripts in the equation ({named}) does not match "
                f"the number of dimensions ({x.ndim}) for operand {len(full)}"
                + ("" if "..." in eq else " and no ellipsis was given")
            )
        full.append(s)
    if arrow:
        out = out.replace("...", ell)
    else:
        counts = {c: "".join(full).count(c) for c in set("".join(full))}
        out = ell + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ell))
    for c in out:
        if not any(c in s for s in full):
            raise RuntimeError(f"einsum(): output subscript {c} does not appear in the equation")
    sizes: dict[str, int] = {}
    for s, x in zip(full, xs, strict=True):
        for c, n in zip(s, x.shape, strict=True):
            if sizes.get(c, 1) not in (1, n) and n != 1:
                raise RuntimeError(
                    f"einsum(): operands do not broadcast with remapped shapes: subscript {c} "
                    f"has sizes {sizes[c]} and {n}"
                )
            sizes[c] = max(sizes.get(c, 1), n)
    prepared = []
    for k, (s, x) in enumerate(zip(full, xs, strict=True)):
        # size-1 dims broadcast; a repeated letter takes the diagonal; a letter that only this
        # operand has (and the output lacks) is summed out first
        target = tuple(sizes[c] for c in s)
        if x.shape != target:
            x = x.expand(*target)
        while len(set(s)) != len(s):
            c = next(c for c in s if s.count(c) > 1)
            i = s.index(c)
            j = s.index(c, i + 1)
            x = diagonal(x, 0, i, j)
            s = s[:i] + s[i + 1 : j] + s[j + 1 :] + c
        others = "".join(t for i, t in enumerate(full) if i != k) + out
        alone = [i for i, c in enumerate(s) if c not in others]
        if alone:
            x = x.sum(tuple(alone))
            s = "".join(c for i, c in enumerate(s) if i not in alone)
        prepared.append((s, x))
    full = [s for s, _ in prepared]
    xs = [x for _, x in prepared]
    kinds = {x._data.dtype.kind in "f" for x in xs}
    if kinds == {False}:
        xp = _xp(xs[0])
        return _wrap(xp.einsum(",".join(full) + "->" + out, *[x._data for x in xs]))
    dtypes = {x.dtype for x in xs if x._data.dtype.kind == "f"}
    if len(dtypes) > 1:
        raise RuntimeError(
            "einsum(): expected all operands to have the same dtype, got "
            f"{sorted(map(str, dtypes))}"
        )
    dtype = dtypes.pop()
    xs = [x if x.dtype == dtype else x.to(dtype) for x in xs]
    return apply(O.EINSUM, *xs, equation=",".join(full) + "->" + out)


def tensordot(a: Tensor, b: Tensor, dims: Any = 2) -> Tensor:
    """The sum of products over the last ``dims`` dims of ``a`` and the first of ``b`` (or
    over the dims listed in a pair of lists)."""
    a, b = _tensor(a), _tensor(b)
    if isinstance(dims, int) or (isinstance(dims, Tensor) and dims.ndim == 0):
        n = int(dims)
        if n < 0:
            raise RuntimeError(f"tensordot expects dims >= 0, but got dims={n}")
        da, db = list(range(a.ndim - n, a.ndim)), list(range(n))
    else:
        da, db = ([d] if isinstance(d, int) else list(d) for d in dims)
    if len(da) != len(db):
        raise RuntimeError(
            f"both dimension lists should have same length, got {len(da)} and {len(db)}"
        )
    la, lb = _LETTERS[: a.ndim], _LETTERS[a.ndim : a.ndim + b.ndim]
    lb = list(lb)
    for i, j in zip(da, db, strict=True):
        i, j = _one_dim(i, a.ndim), _one_dim(j, b.ndim)
        if a.shape[i] != b.shape[j]:
            raise RuntimeError(
                f"contracted dimensions need to match, but first has size {a.shape[i]} in dim "
                f"{i} and second has size {b.shape[j]} in dim {j}"
            )
        lb[j] = la[i]
    contracted = set(la[_one_dim(i, a.ndim)] for i in da)
    out = "".join(c for c in la if c not in contracted) + "".join(
        c for c in lb if c not in contracted
    )
    return einsum(f"{la},{''.join(lb)}->{out}", a, b)


def kron(input: Tensor, other: Tensor) -> Tensor:
    """The Kronecker product: every element of ``input`` times the whole of ``other``."""
    a = _tensor(input)
    b = _tensor(other, a)
    n = max(a.ndim, b.ndim)
    sa, sb = (1,) * (n - a.ndim) + a.shape, (1,) * (n - b.ndim) + b.shape
    wide = a.reshape(*[d for s in sa for d in (s, 1)]) * b.reshape(*[d for s in sb for d in (1, s)])
    return wide.reshape(*[p * q for p, q in zip(sa, sb, strict=True)])


# ---------------------------------------------------------------- stacking


def atleast_1d(*tensors: Any) -> Any:
    """Each tensor with at least one dimension."""
    out = [t if t.ndim >= 1 else t.reshape(1) for t in map(_tensor, _flat(tensors))]
    return out[0] if len(out) == 1 else tuple(out)


def atleast_2d(*tensors: Any) -> Any:
    """Each tensor with at least two dimensions (a vector becomes one row)."""
    out = [t if t.ndim >= 2 else t.reshape(1, -1) for t in map(_tensor, _flat(tensors))]
    return out[0] if len(out) == 1 else tuple(out)


def atleast_3d(*tensors: Any) -> Any:
    """Each tensor with at least three dimensions (as numpy's atleast_3d)."""
    out = []
    for t in map(_tensor, _flat(tensors)):
        if t.ndim == 0:
            t = t.reshape(1, 1, 1)
        elif t.ndim == 1:
            t = t.reshape(1, -1, 1)
        elif t.ndim == 2:
            t = t.unsqueeze(-1)
        out.append(t)
    return out[0] if len(out) == 1 else tuple(out)


def _flat(tensors: tuple) -> list:
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        return list(tensors[0])
    return list(tensors)


def _sequence(name: str, tensors: Any) -> list[Tensor]:
    if isinstance(tensors, Tensor) or not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{name}(): argument 'tensors' must be a tuple or list of Tensors")
    if not tensors:
        raise RuntimeError(f"{name} expects a non-empty TensorList")
    return [_tensor(t) for t in tensors]


def hstack(tensors: Sequence[Tensor]) -> Tensor:
    """The tensors side by side: along dim 0 for vectors, dim 1 otherwise."""
    ts = [atleast_1d(t) for t in _sequence("hstack", tensors)]
    return _cat(ts, 0 if ts[0].ndim == 1 else 1)


def vstack(tensors: Sequence[Tensor]) -> Tensor:
    """The tensors one above the other (vectors as rows)."""
    return _cat([atleast_2d(t) for t in _sequence("vstack", tensors)], 0)


row_stack = vstack


def dstack(tensors: Sequence[Tensor]) -> Tensor:
    """The tensors stacked along the third dimension."""
    return _cat([atleast_3d(t) for t in _sequence("dstack", tensors)], 2)


def column_stack(tensors: Sequence[Tensor]) -> Tensor:
    """The tensors as columns side by side (vectors become columns)."""
    ts = [t.reshape(-1, 1) if t.ndim <= 1 else t for t in _sequence("column_stack", tensors)]
    return _cat(ts, 1)


def meshgrid(*tensors: Any, indexing: str | None = None) -> tuple[Tensor, ...]:
    """Coordinate grids from 1-D tensors ('ij': matrix indexing, the default; 'xy':
    Cartesian, the first two dims swapped)."""
    ts = [_tensor(t) for t in _flat(tensors)]
    indexing = "ij" if indexing is None else indexing
    if indexing not in ("ij", "xy"):
        raise RuntimeError(
            f'torch.meshgrid: indexing must be one of "xy" or "ij", but received: {indexing}'
        )
    for t in ts:
        if t.ndim > 1:
            raise RuntimeError(
                f"torch.meshgrid: Expected 0D or 1D tensor in the tensor list but got: {t.ndim}D"
            )
    ts = [t.reshape(-1) for t in ts]
    swap = indexing == "xy" and len(ts) >= 2
    order = [1, 0, *range(2, len(ts))] if swap else list(range(len(ts)))
    shape = tuple(ts[i].shape[0] for i in order)
    out = []
    for k, t in enumerate(ts):
        axis = order.index(k)
        view = [1] * len(ts)
        view[axis] = t.shape[0]
        out.append(t.reshape(*view).expand(*shape))
    return tuple(out)


# ---------------------------------------------------------------- interpolation and friends


def clamp_min(input: Tensor, min: Any) -> Tensor:
    """Elementwise max(x, min)."""
    return _tensor(input).clamp(min=min)


def clamp_max(input: Tensor, max: Any) -> Tensor:
    """Elementwise min(x, max)."""
    return _tensor(input).clamp(max=max)


def lerp(input: Tensor, end: Any, weight: Any) -> Tensor:
    """input + weight * (end - input), computed from the nearer end as PyTorch does."""
    start = _as_float(_tensor(input))
    end = _lift(end, start)
    w = _lift(weight, start)
    diff = end - start
    # NOTE: PyTorch's two-sided formula: exact at weight 0 and at weight 1
    low = (w.abs() < 0.5)._data
    return where(low, start + w * diff, end - diff * (1 - w))


def addcmul(input: Tensor, tensor1: Tensor, tensor2: Tensor, *, value: Any = 1) -> Tensor:
    """input + value * tensor1 * tensor2."""
    product = _tensor(tensor1) * tensor2
    return _tensor(input, product) + (product if value == 1 else product * value)


def addcdiv(input: Tensor, tensor1: Tensor, tensor2: Tensor, *, value: Any = 1) -> Tensor:
    """input + value * tensor1 / tensor2 (true division)."""
    t1, t2 = _tensor(tensor1), _tensor(tensor2)
    if t1._data.dtype.kind in "biu" and t2._data.dtype.kind in "biu":
        raise RuntimeError(
            "Integer division with addcdiv is no longer supported, and in a future release "
            "addcdiv will perform a true division of tensor1 and tensor2. Use addcmul(input, "
            "tensor1, 1 / tensor2) for the old behaviour"
        )
    ratio = t1 / t2
    return _tensor(input, ratio) + (ratio if value == 1 else ratio * value)


# ---------------------------------------------------------------- in place


def _in_place(name: str, fn: Any):
    """``fn`` computed out of place and written into the tensor, on the tape as PyTorch records
    an in-place op when the tensor or an argument requires grad."""
    op = f"{name}_"

    def method(self: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        if self._recorded(op, *args, *kwargs.values()):
            return self._record(op, lambda t: fn(t, *args, **kwargs), True)
        out = _fit_inplace(op, fn(self.detach(), *args, **kwargs), self)
        self._data[...] = out._data
        self._bump()
        return self

    method.__name__ = method.__qualname__ = op
    method.__doc__ = f"``{name}`` written into this tensor in place."
    return method


def _method_of(name: str) -> Any:
    return lambda self, *args, **kwargs: getattr(self, name)(*args, **kwargs)


# every function here that PyTorch also has as a Tensor method
METHODS = (
    "floor ceil trunc fix frac tan atan asin acos atan2 arctan arcsin arccos arctan2 sinh cosh "
    "cumsum cumprod sort argsort msort topk kthvalue median mode aminmax narrow select "
    "index_select masked_select take scatter scatter_add scatter_reduce index_add index_fill "
    "index_copy tril triu diagonal diag diag_embed roll rot90 repeat_interleave tile movedim "
    "moveaxis logical_and logical_or logical_xor remainder fmod floor_divide mv addmm addmv "
    "baddbmm addbmm kron clamp_min clamp_max lerp addcmul addcdiv"
).split()

# the in-place forms: f"{name}_" computes ``name`` out of place and writes it in
IN_PLACE = (
    "floor ceil trunc fix frac tan atan asin acos atan2 arctan arcsin arccos arctan2 sinh cosh "
    "cumsum cumprod scatter scatter_add scatter_reduce index_add index_fill index_copy tril triu "
    "remainder fmod floor_divide addmm addmv baddbmm addbmm clamp_min clamp_max lerp addcmul "
    "addcdiv logical_and logical_or logical_xor "
    "relu sigmoid tanh exp expm1 log log1p log2 log10 neg sqrt rsqrt abs sin cos erf sign "
    "reciprocal square"
).split()

_functions = {name: globals()[name] for name in METHODS}
# NOTE: the Tensor class's own methods (views such as narrow, the registry's remainder, the
# in-place activations) stay; the loop adds only what the class lacks
for _name in METHODS:
    if _name not in vars(Tensor):
        setattr(Tensor, _name, _functions[_name])
for _name in IN_PLACE:
    if f"{_name}_" not in vars(Tensor):
        _fn = _functions.get(_name) or _method_of(_name)
        setattr(Tensor, f"{_name}_", _in_place(_name, _fn))
Tensor.logical_not_ = _in_place("logical_not", _method_of("logical_not"))


def _swapdims_(self: Tensor, dim0: int, dim1: int) -> Tensor:
    """This tensor with dimensions ``dim0`` and ``dim1`` swapped in place (the same memory)."""
    if self._recorded("swapdims_"):
        raise RuntimeError(
            "swapdims_: an in-place transpose of a tensor inside a graph is not supported; use "
            "the out-of-place swapdims (or transpose)"
        )
    d0, d1 = _one_dim(dim0, self.ndim), _one_dim(dim1, self.ndim)
    self._data = _xp(self).swapaxes(self._data, d0, d1)
    self._bump()
    return self


Tensor.swapdims_ = Tensor.swapaxes_ = Tensor.transpose_ = _swapdims_

Tensor.negative_ = Tensor.neg_
Tensor.absolute_ = Tensor.abs_

# the in-place forms that PyTorch also has at its top level (tm.relu_(x) is x.relu_())
TOP_LEVEL_IN_PLACE = (
    "clamp_min_ clamp_max_ relu_ sigmoid_ tanh_ exp_ log_ neg_ sqrt_ abs_ floor_ ceil_ trunc_ "
    "fix_ frac_ tan_ atan_ asin_ acos_ arctan_ arcsin_ arccos_ sinh_ cosh_ addmv_"
).split()
for _name in TOP_LEVEL_IN_PLACE:
    globals()[_name] = getattr(Tensor, _name)

__all__ = [
    *METHODS,
    "swapdims",
    "std_mean",
    "var_mean",
    "einsum",
    "tensordot",
    "hstack",
    "vstack",
    "row_stack",
    "dstack",
    "column_stack",
    "meshgrid",
    "atleast_1d",
    "atleast_2d",
    "atleast_3d",
    *TOP_LEVEL_IN_PLACE,
]
del _method_function
