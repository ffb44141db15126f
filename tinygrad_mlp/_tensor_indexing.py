"""Sorting and selection (sort, topk, kthvalue, median, mode, aminmax, std_mean) and indexing
(narrow, select, index_select, masked_select, take, scatter and its reductions, index_add,
index_fill, index_copy), with the helpers that tinygrad_mlp._tensor_maths shares. _tensor_maths
imports every name in ``__all__``: it exports them as ``tm.name`` and attaches the Tensor methods.
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any

from . import _creation, backend
from . import ops as O
from ._conversion import _lift
from ._tensor import Tensor, _as_float, _bool_mask, _one_dim, is_grad_enabled, where
from .autograd.graph import _wrap, apply
from .backend import np

__all__ = [
    "sort",
    "argsort",
    "msort",
    "topk",
    "kthvalue",
    "median",
    "mode",
    "aminmax",
    "std_mean",
    "var_mean",
    "narrow",
    "select",
    "index_select",
    "masked_select",
    "take",
    "scatter",
    "scatter_add",
    "scatter_reduce",
    "index_add",
    "index_fill",
    "index_copy",
    "sort_result",
    "topk_result",
    "kthvalue_result",
    "median_result",
    "mode_result",
    "aminmax_result",
]

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
    return _creation.tensor(x)


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
