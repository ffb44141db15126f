"""In-place ops' helpers: PyTorch's refusals of an in-place op or an index assignment, and the
rebasing of a tensor's history on an in-place op (the state before it, ``_snapshot``; the views
made again from the new base, ``_remake_views``; a node's inputs as they were when it was made,
``_inputs_then``, and their versions, ``_version_at``, for the engine).
"""

from __future__ import annotations

from typing import Any

from . import backend
from . import ops as O
from ._conversion import _lift
from .autograd.graph import _NUMPY, Node, _wrap, apply
from .backend import np

# NOTE: the Tensor class, set by _tensor.py once it has defined it (this module cannot import
# _tensor.py, which imports it).
Tensor: Any = None


def _check_operand(name: str, value: Any) -> None:
    """Refuse, as PyTorch does, an operand that is neither a tensor, a number nor an array."""
    if not (
        isinstance(value, (Tensor, bool, int, float, list, tuple, np.generic))
        or backend.is_array(value)
    ):
        raise TypeError(
            f"{name}(): argument 'other' must be a Tensor or a number, not {type(value).__name__}"
        )


def _advanced(item: Any) -> bool:
    """An index array or mask (a 0-d integer index selects, as an int does)."""
    return backend.is_array(item) and (item.ndim > 0 or item.dtype.kind == "b")


def _check_put(t: Tensor, idx: Any, value: Any) -> None:
    """PyTorch's refusals of an index assignment that come before the index is read, in its
    order: a value that is neither a tensor, a number nor an array; more indices than dims;
    under advanced indexing (index arrays or masks), a tensor of another dtype."""
    if not isinstance(value, Tensor):
        try:
            _check_operand("__setitem__", value)
        except TypeError:
            name = type(value).__name__
            raise TypeError(f"can't assign a {name} to a {t.dtype} tensor") from None
    items = idx if type(idx) is tuple else (idx,)
    named = sum(
        i.ndim if backend.is_array(i) and i.dtype.kind == "b" else 1
        for i in items
        if i is not None and i is not Ellipsis and not isinstance(i, (bool, np.bool_))
    )  # None, ... and a bool (a 0-d mask) name no dim
    if named > t.ndim:
        raise IndexError(f"too many indices for tensor of dimension {t.ndim}")
    if isinstance(value, Tensor) and value.dtype != t.dtype:
        # under a single mask PyTorch fills with a 0-d value, casting it
        fill = value.ndim == 0 and len(items) == 1 and _advanced(items[0])
        if any(map(_advanced, items)) and not (fill and items[0].dtype.kind == "b"):
            raise RuntimeError(
                f"Index put requires the source and destination dtypes match, got {t.dtype} "
                f"for the destination and {value.dtype} for the source."
            )


def _put_shape(t: Tensor, idx: Any) -> tuple | None:
    """The shape an index selects, whatever the values in its index arrays (PyTorch checks a
    value's shape against it before the bounds); None where a plain int is out of range."""
    items = idx if type(idx) is tuple else (idx,)
    zeroed = tuple(i * 0 if _advanced(i) and i.dtype.kind != "b" else i for i in items)
    try:
        return np.broadcast_to(np.zeros((), bool), t.shape)[zeroed].shape
    except (IndexError, TypeError, ValueError):
        return None


def _broadcasts(shape: tuple, to: tuple) -> bool:
    """Whether a value of ``shape`` (leading 1s dropped, as PyTorch does) broadcasts to ``to``."""
    shape = tuple(shape)
    while len(shape) > len(to) and shape[0] == 1:
        shape = shape[1:]
    return len(shape) <= len(to) and all(
        a in (1, b) for a, b in zip(reversed(shape), reversed(to), strict=False)
    )


def _refuse_overlap(name: str, data: Any) -> None:
    """Refuse writing into a view where several elements share one memory location."""
    if any(s == 0 and n > 1 for s, n in zip(data.strides, data.shape, strict=True)):
        raise RuntimeError(
            f"{name}: unsupported operation: more than one element of the written-to tensor "
            f"(shape {tuple(data.shape)}, strides {data.strides}) refers to a single memory "
            "location. Please clone() the tensor before performing the operation."
        )


def _snapshot(t: Tensor) -> Tensor:
    """The state of ``t`` before an in-place op: its history and versions, with its memory."""
    old = _wrap(t._data, t.requires_grad, t._node)
    old._version = t._version
    old._extra = {"changed_at": t._get_extra("changed_at"), "changes": t._get_extra("changes")}
    return old


def _fit_inplace(name: str, out: Tensor, target: Tensor) -> Tensor:
    """An in-place op's result checked against the tensor it is written into: the same shape
    (the target is never broadcast), a dtype that casts to the target's."""
    if out.shape != target.shape:
        raise RuntimeError(
            f"{name}: output with shape {list(target.shape)} doesn't match the broadcast shape "
            f"{list(out.shape)}"
        )
    if out.dtype != target.dtype:
        if not np.can_cast(out.dtype, target.dtype, "same_kind"):
            raise RuntimeError(
                f"{name}: result type {out.dtype} can't be cast to the desired output type "
                f"{target.dtype}"
            )
        out = out._cast(target.dtype)
    return out


def _positions(data: Any, chain: list) -> Any:
    """The flat positions, in an array like ``data``, of the elements of the view that the
    view ops of ``chain`` make of it."""
    xp = backend.array_module_of(data)
    ns = _NUMPY if xp is np else backend.namespace_of(data)
    positions = xp.arange(data.size).reshape(data.shape)
    for op, params in chain:
        positions = op.forward(ns, positions, **params)[0]
    return positions


def _remake_views(t: Tensor, stamp: int) -> None:
    """Give every live view of the rebased ``t`` its history again, as a view of the new
    ``t`` (PyTorch regenerates a view's grad_fn when its base changed in place)."""
    views = t._get_extra("views")
    if not views:
        return
    for view in list(views):
        made = view._get_extra("view")
        if made is None:
            continue  # detach(): shares the memory and the versions, not the history
        op, params = made
        old = _snapshot(view)
        node = apply(op, t, **params)._node
        view._node, view.requires_grad = node, node is not None
        view._extra.setdefault("history", []).append((stamp, old))
        _remake_views(view, stamp)


def _inputs_then(node: Node) -> tuple:
    """A node's inputs as they were when it was made: an input rebased by a later in-place op
    is replaced by its state from before that op (PyTorch's edges point at grad_fns)."""
    inputs = node.inputs
    for i, inp in enumerate(inputs):
        history = None if inp._extra is None else inp._extra.get("history")
        if history and history[-1][0] > node.seq:
            state = next(old for stamp, old in history if stamp > node.seq)
            inputs = inputs[:i] + (state,) + inputs[i + 1 :]
    return inputs


def _version_at(t: Tensor, seq: int) -> int:
    """The version ``t`` had when the op numbered ``seq`` was recorded."""
    return sum(1 for stamp in (t._get_extra("changes") or ()) if stamp < seq)


def _drop_leading_ones(value: Any, ndim: int) -> Any:
    """``value`` (an array or a tensor) without the leading dimensions of size 1 that it has
    beyond ``ndim``: PyTorch's index assignment drops them before broadcasting."""
    shape = tuple(value.shape)
    k = 0
    while len(shape) - k > ndim and shape[k] == 1:
        k += 1
    return value.reshape(shape[k:]) if k else value


def _index_put(target: Tensor, index: Any, idx: Any, value: Any) -> Any:
    """The computation of ``target[index] = value`` on the tape: a copy_slices of ``value``
    (broadcast and cast to the target) at the indexed positions."""
    xp = backend.array_module_of(target._data)
    try:
        positions = xp.asarray(xp.arange(target._data.size).reshape(target.shape)[idx])
    except IndexError as e:
        raise IndexError(f"index {index!r:.80} is invalid for shape {target.shape}: {e}") from None
    value = _lift(value, target).to(target.device)._cast(target.dtype)
    fitted = _drop_leading_ones(value, positions.ndim)
    try:
        if fitted.ndim > positions.ndim:
            raise RuntimeError("more dims than the indexing result")
        value = fitted.expand(*positions.shape)
    except RuntimeError as e:
        raise RuntimeError(
            f"__setitem__: shape mismatch: value of shape {list(value.shape)} cannot be broadcast "
            f"to indexing result of shape {list(positions.shape)}: {e}"
        ) from None
    flat = positions.reshape(-1)
    unique, last = xp.unique(flat[::-1], return_index=True)
    take = None
    if unique.size != flat.size:  # repeated positions: the last write wins, as in numpy
        take = flat.size - 1 - last
    keep = xp.ones(target.shape, dtype=bool)
    keep.reshape(-1)[flat] = False
    return lambda t: apply(O.COPY_SLICES, t, value, positions=positions, keep=keep, take=take)
