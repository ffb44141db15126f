"""The shape ops: reshape, permute, expand, indexing and its scatters, diagonal, cat, casts and
device moves."""

from __future__ import annotations

from typing import Any

from ..backend import default_device, np
from ._registry import Sample, register

# ---------------------------------------------------------------- shape


def _reshape(ns, x, shape):
    return x.reshape(shape), x.shape


def _reshape_vjp(ns, g, shape, needs):
    # reshape only moves elements: the gradient moves back
    return (g.reshape(shape),)


RESHAPE = register(
    "reshape",
    _reshape,
    _reshape_vjp,
    1,
    Sample(params=lambda s: {"shape": (-1,)}),
    exact=True,
    saves_inputs=False,
)


def _permute(ns, x, axes):
    inverse = tuple(sorted(range(len(axes)), key=lambda i: axes[i]))
    return ns.permute(x, axes), inverse


def _permute_vjp(ns, g, inverse, needs):
    # a permutation's inverse permutation carries the gradient back
    return (ns.permute(g, inverse),)


PERMUTE = register(
    "permute",
    _permute,
    _permute_vjp,
    1,
    Sample(shapes=lambda n, m: ((n, m, 2),), params=lambda s: {"axes": (1, 2, 0)}),
    exact=True,
    saves_inputs=False,
)


def _expand_op(ns, x, shape):
    # on arrays a writable strided view (stride 0 along the new dimensions), as PyTorch's
    if ns.differentiable:
        return ns.broadcast_to(x, shape), x.shape
    return ns.expand_view(x, shape), x.shape


def _expand_vjp(ns, g, shape, needs):
    # broadcasting copies elements: their gradients add up
    return (ns.sum_to(g, shape),)


EXPAND = register(
    "expand",
    _expand_op,
    _expand_vjp,
    1,
    Sample(shapes=lambda n, m: ((n, 1),), params=lambda s: {"shape": (3, s[0][0], 4)}),
    saves_inputs=False,
)


def _getitem(ns, x, index):
    return x[index], (x.shape, index)


def _getitem_vjp(ns, g, saved, needs):
    # d x[index] / dx scatters the gradient back; repeated indices accumulate
    shape, index = saved
    return (ns.scatter(g, index, shape),)


GETITEM = register(
    "getitem",
    _getitem,
    _getitem_vjp,
    1,
    Sample(params=lambda s: {"index": (np.array([0, s[0][0] - 1, 0]), slice(None, None, -1))}),
    saves_inputs=False,
)


def _scatter(ns, g, index, shape):
    return ns.scatter(g, index, shape), index


def _scatter_vjp(ns, g, index, needs):
    # scatter is getitem's adjoint: its gradient is picked back out at the same index
    return (g[index],)


SCATTER = register(
    "scatter",
    _scatter,
    _scatter_vjp,
    1,
    Sample(
        shapes=lambda n, m: ((3, m),),
        params=lambda s: {"index": np.array([0, 2, 0]), "shape": (4, s[0][1])},
    ),
    saves_inputs=False,
)


def _copy_slices_rule(ns, g, saved, needs):
    # out = base outside the written positions, value at them: d base = g with the written
    # positions zeroed; d value = g picked at those positions
    positions, keep = saved
    return (
        ns.where(keep, g, 0.0) if needs[0] else None,
        g.reshape(-1)[positions] if needs[1] else None,
    )


def _copy_slices(ns, base, value, positions=None, keep=None, take=None):
    # base with value written at the flat positions (keep is False exactly there): PyTorch's
    # CopySlices, the new history of a base written through a view or by index assignment;
    # without positions, value is written over all of base. Where positions repeat, ``take``
    # lists the (flat) entries of value that are written, the last one at each position; the
    # rule still hands every entry the gradient at its position, as PyTorch's index_put does
    if positions is None:
        keep = np.zeros(tuple(base.shape), dtype=bool)
        positions = np.arange(keep.size).reshape(keep.shape)
    if take is None:
        written = ns.scatter(value, positions, (keep.size,))
    else:
        written = ns.scatter(value.reshape(-1)[take], positions.reshape(-1)[take], (keep.size,))
    return ns.where(keep, base, written.reshape(keep.shape)), (positions, keep)


def _slices_sample(shapes):
    n, m = shapes[0]
    positions = np.array([m * n - 1, 0, m])
    keep = np.ones((n, m), dtype=bool)
    keep.reshape(-1)[positions] = False
    return {"positions": positions, "keep": keep}


COPY_SLICES = register(
    "copy_slices",
    _copy_slices,
    _copy_slices_rule,
    2,
    Sample(
        shapes=lambda n, m: ((max(n, 2), m), (3,)),
        domains=("real", "real"),
        params=_slices_sample,
    ),
    saves_inputs=False,
)


def _diagonal(ns, x, offset, dim1, dim2):
    out = x.diagonal(offset, dim1, dim2)
    if not ns.differentiable and not out.flags.writeable and x.flags.writeable:
        out.flags.writeable = True  # NOTE: numpy's diagonal is a read-only view; PyTorch's writes
    return out, (x.shape, _diagonal_index(x.shape, offset, dim1, dim2))


def _diagonal_index(shape: tuple, offset: int, dim1: int, dim2: int) -> tuple:
    """The advanced index that picks the diagonal out of an array of ``shape``, as numpy's
    diagonal lays it out (the other dimensions first, the diagonal last)."""
    n = len(shape)
    a, b = dim1 % n, dim2 % n
    length = max(0, min(shape[a] - max(-offset, 0), shape[b] - max(offset, 0)))
    others = [d for d in range(n) if d not in (a, b)]
    k = len(others) + 1
    index: list[Any] = [None] * n
    for j, d in enumerate(others):
        index[d] = np.arange(shape[d]).reshape((1,) * j + (-1,) + (1,) * (k - j - 1))
    diag = np.arange(length)
    index[a] = diag + max(-offset, 0)
    index[b] = diag + max(offset, 0)
    return tuple(index)


def _diagonal_vjp(ns, g, saved, needs):
    # the diagonal picks elements: their gradients go back to the same places, zeros elsewhere
    shape, index = saved
    return (ns.scatter(g, index, shape),)


DIAGONAL = register(
    "diagonal",
    _diagonal,
    _diagonal_vjp,
    1,
    Sample(
        shapes=lambda n, m: ((n, m, 3),),
        params=lambda s: {"offset": 1, "dim1": 0, "dim2": 1},
    ),
    saves_inputs=False,
)


def _scatter_last(ns, src, positions, last, size):
    # out (size,) gets src[i] at positions[i]; where a position repeats, the write at ``last``
    # (one per distinct position) is the one kept
    return ns.scatter(src[last], (positions[last],), (size,)), positions


def _scatter_last_vjp(ns, g, positions, needs):
    # NOTE: PyTorch's rule, not the derivative: every write gets the gradient of its position,
    # also those that a later write to the same position hides (d out / d src is 0 for those)
    return (g[positions],)


SCATTER_LAST = register(
    "scatter_last",
    _scatter_last,
    _scatter_last_vjp,
    1,
    Sample(
        shapes=lambda n, m: ((m + 1,),),
        params=lambda s: {
            "positions": np.arange(s[0][0])[::-1] * 2,
            "last": np.arange(s[0][0]),
            "size": 2 * s[0][0],
        },
    ),
    exact=True,
    saves_inputs=False,
)


def _cat(ns, *xs, axis=0):
    sizes = [x.shape[axis] for x in xs]
    return ns.concatenate(xs, axis=axis), (sizes, axis)


def _cat_vjp(ns, g, saved, needs):
    # concatenation places inputs side by side: each takes back its own slice
    sizes, axis = saved
    out, start = [], 0
    lead = (slice(None),) * (axis % g.ndim)
    for n, need in zip(sizes, needs, strict=True):
        out.append(g[lead + (slice(start, start + n),)] if need else None)
        start += n
    return tuple(out)


CAT = register(
    "cat",
    _cat,
    _cat_vjp,
    None,
    Sample(
        shapes=lambda n, m: ((n, m), (n, 1), (n, 2)),
        domains=("real",) * 3,
        params=lambda s: {"axis": 1},
    ),
    saves_inputs=False,
)


def _cast(ns, x, dtype):
    return ns.cast(x, dtype), x.dtype


def _cast_vjp(ns, g, dtype, needs):
    # a cast is the identity on values: the gradient is cast back
    return (ns.cast(g, dtype),)


CAST = register(
    "cast",
    _cast,
    _cast_vjp,
    1,
    Sample(params=lambda s: {"dtype": np.dtype(np.float64)}),
    exact=True,
    saves_inputs=False,
)


def _to_device(ns, x, device):
    return ns.to_device(x, device), ns.device_of(x)


def _to_device_vjp(ns, g, source, needs):
    # moving between devices is the identity on values: the gradient moves back
    return (ns.to_device(g, source),)


TO_DEVICE = register(
    "to_device",
    _to_device,
    _to_device_vjp,
    1,
    Sample(params=lambda s: {"device": default_device()}),  # samples keep one device
    exact=True,
    saves_inputs=False,
)
