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
from ._tensor import Tensor, _add_methods, _bool_mask, _engine, _index, _scaled, where
from .autograd import graph as _graph
from .autograd.grad_mode import _Mode
from .autograd.graph import _NUMPY, Node, _creation_order, _saved_into, _views_of, _wrap, apply
from .backend import np


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
    elif value.dtype != t.dtype:
        items = idx if type(idx) is tuple else (idx,)
        # under a single mask PyTorch fills with a 0-d value, casting it
        fill = value.ndim == 0 and len(items) == 1 and _advanced(items[0])
        if any(map(_advanced, items)) and not (fill and items[0].dtype.kind == "b"):
            named = sum(
                i.ndim if backend.is_array(i) and i.dtype.kind == "b" else 1
                for i in items
                if i is not None and i is not Ellipsis and not isinstance(i, (bool, np.bool_))
            )  # None, ... and a bool (a 0-d mask) name no dim
            if named > t.ndim:  # PyTorch's check before the dtypes' (numpy's own otherwise)
                raise IndexError(f"too many indices for tensor of dimension {t.ndim}")
            raise RuntimeError(
                f"Index put requires the source and destination dtypes match, got {t.dtype} "
                f"for the destination and {value.dtype} for the source."
            )


def _put_shape(t: Tensor, idx: Any) -> tuple | None:
    """The shape an index selects, whatever the values in its index arrays (PyTorch checks a
    value's shape against it before the bounds); None where a plain int is out of range."""
    items = idx if type(idx) is tuple else (idx,)
    host = [backend.to_numpy(i) if backend.is_array(i) else i for i in items]  # any device
    zeroed = tuple(i * 0 if _advanced(i) and i.dtype.kind != "b" else i for i in host)
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


def _overwrite(t: Tensor, value: Any) -> Tensor:
    """``value`` (broadcast) everywhere in ``t``'s shape, differentiable in both (``t`` gets a
    zero gradient): fill_ and copy_ on the tape."""
    xp = backend.array_module_of(t._data)
    return where(_wrap(xp.zeros(t.shape, dtype=bool)), t, value)


class _InplaceMethods:
    """Tensor's in-place methods and index assignment (added to Tensor below)."""

    def _recorded(self, name: str, *others: Any) -> bool:
        """Whether an in-place op on this tensor goes on the tape: grad mode is on and this
        tensor, or a value written into it, requires grad. Refuses what PyTorch refuses."""
        if self._extra is not None and "view" in self._extra:
            _refuse_overlap(name, self._data)
        if not _Mode.grad_enabled:
            return False
        if self.requires_grad:
            if self._node is None:
                raise RuntimeError(
                    f"a leaf Variable that requires grad is being used in an in-place operation "
                    f"({name}); update it under tm.no_grad(), or use the out-of-place form"
                )
            return True
        if not any(isinstance(o, Tensor) and o.requires_grad for o in others):
            return False
        if self._data.dtype.kind in "biu":
            # NOTE: PyTorch marks the integer tensor as requiring grad, and its backward then
            # fails inside PyTorch; refused here where it is written
            raise RuntimeError(
                f"{name}: writing a tensor that requires grad into a {self.dtype} tensor: only "
                "floating point tensors can require gradients; write value.detach(), or make "
                "this tensor floating point"
            )
        return True

    def _record(self, name: str, compute: Any, reads_self: bool) -> Tensor:
        """Write ``compute(values before the op)`` into this tensor and rebase its history on
        that op, as PyTorch does: the tensor's grad_fn becomes the op's node, whose input is the
        tensor's previous state. On a view the base is rebased (PyTorch's CopySlices: the base's
        new node writes the view's new value into the old base) and every live view of the
        base is made again from the new base."""
        chain, root = [], self
        while root._extra is not None and "view" in root._extra:
            chain.append(root._extra["view"])
            root = root._extra["base"]
        chain.reverse()
        if chain and root.requires_grad and root._node is None:
            raise RuntimeError(
                f"a view of a leaf Variable that requires grad is being used in an in-place "
                f"operation ({name}); update it under tm.no_grad(), or use the out-of-place form"
            )
        stamp = next(_creation_order)  # drawn first: the op's own nodes come after the change
        old = _snapshot(root)
        src = old
        for op, params in chain:
            src = apply(op, src, **params)
        if reads_self:
            # NOTE: the op may keep its input for its backward, and the write below changes
            # that memory: it reads a copy (PyTorch keeps `original_self` the same way)
            src = src.clone()
        out = _fit_inplace(name, compute(src), self)
        self._data[...] = out._data
        self._bump(stamp)
        old._version, old._extra["changed_at"] = root._version, stamp
        old._extra["changes"] = root._extra["changes"]
        node = out._node
        if node is not None and node.seq > stamp and _engine()._saves_output(node.saved, out._data):
            # the op keeps its output: it now lives in this tensor's memory, so that a later
            # change of it is caught at backward (output 0 of the op, as in PyTorch)
            node.saved = _saved_into(node.saved, out._data, self._data)
            if chain:
                out._data, out._extra = self._data, {"base": self}
                _views_of(self).add(out)
        if chain:
            positions = _positions(root._data, chain)
            keep = backend.array_module_of(root._data).ones(root.shape, dtype=bool)
            keep.reshape(-1)[positions.reshape(-1)] = False
            node = apply(O.COPY_SLICES, old, out, positions=positions, keep=keep)._node
        # NOTE: ops recorded before this point (the op's own included) keep seeing the state
        # before it: the engine hands them the snapshot (see _inputs_then)
        swap = _Mode.last_inplace = next(_creation_order)
        root._node, root.requires_grad = node, node is not None
        root._extra.setdefault("history", []).append((swap, old))
        _remake_views(root, swap)
        return self

    def _bump(self, stamp: int | None = None) -> None:
        """Count one in-place change, here, in the tensors this one is a view of and in every
        view of those (a saved view of a changed tensor then refuses its backward)."""
        if _graph._observer is not None:
            _graph._observer.inplace(self)
        chain, t = [], self
        while t is not None:
            chain.append(t)
            t = t._get_extra("base")
        seen = set()
        stamp = next(_creation_order) if stamp is None else stamp
        _Mode.last_inplace = stamp
        while chain:
            t = chain.pop()
            if id(t) not in seen:
                seen.add(id(t))
                t._version += 1
                t._set_extra("changed_at", stamp)
                changes = t._extra.get("changes")
                if changes is None:
                    t._extra["changes"] = [stamp]
                else:
                    changes.append(stamp)
                views = t._extra.get("views")
                if views:
                    chain.extend(views)

    def _inplace(self, name: str, ufunc: str, other: Any) -> Tensor:
        _check_operand(name, other)
        value = other._data if isinstance(other, Tensor) else other
        xp = backend.array_module_of(self._data)
        if backend.is_array(value) and backend.device_of(value) != self.device:
            value = backend.to_device(value, self.device)
        try:
            getattr(xp, ufunc)(self._data, value, out=self._data, casting="same_kind")
        except TypeError:
            kind = np.result_type(self._data, value)
            raise RuntimeError(
                f"{name}: result type {kind} can't be cast to the desired output type {self.dtype}"
            ) from None
        except ValueError as e:
            raise RuntimeError(
                f"{name}: the shape of the operand {getattr(value, 'shape', ())} does not "
                f"broadcast to this tensor's shape {self.shape}: {e}"
            ) from None
        self._bump()
        return self

    def add_(self, other: Any, *, alpha: Any = 1) -> Tensor:
        """self += alpha * other, in place."""
        if self._recorded("add_", other):
            return self._record("add_", lambda t: t.add(other, alpha=alpha), False)
        return self._inplace("add_", "add", other if alpha == 1 else _scaled(other, alpha))

    def sub_(self, other: Any, *, alpha: Any = 1) -> Tensor:
        """self -= alpha * other, in place."""
        if (
            type(other) is bool
            or self._data.dtype.kind == "b"
            or (isinstance(other, Tensor) and other._data.dtype.kind == "b")
        ):
            raise RuntimeError(
                "Subtraction, the `-` operator, with a bool tensor is not supported. If you are "
                "trying to invert a mask, use the `~` or `logical_not()` operator instead."
            )
        if self._recorded("sub_", other):
            return self._record("sub_", lambda t: t.sub(other, alpha=alpha), False)
        return self._inplace("sub_", "subtract", other if alpha == 1 else _scaled(other, alpha))

    def mul_(self, other: Any) -> Tensor:
        """self *= other, in place."""
        if self._recorded("mul_", other):
            return self._record("mul_", lambda t: t.mul(other), True)
        return self._inplace("mul_", "multiply", other)

    def div_(self, other: Any) -> Tensor:
        """self /= other, in place."""
        if self._recorded("div_", other):
            return self._record("div_", lambda t: t.div(other), True)
        return self._inplace("div_", "true_divide", other)

    def pow_(self, exponent: Any) -> Tensor:
        """self **= exponent, in place."""
        if self._recorded("pow_", exponent):
            return self._record("pow_", lambda t: t.pow(exponent), True)
        return self._inplace("pow_", "power", exponent)

    __iadd__ = add_
    __isub__ = sub_
    __imul__ = mul_
    __itruediv__ = div_

    def zero_(self) -> Tensor:
        """Fill with zeros in place."""
        return self.fill_(0)

    def fill_(self, value: Any) -> Tensor:
        """Fill with ``value`` in place."""
        if self._recorded("fill_", value):
            return self._record("fill_", lambda t: _overwrite(t, value), False)
        self._data[...] = value._data if isinstance(value, Tensor) else value
        self._bump()
        return self

    def copy_(self, src: Any, non_blocking: bool = False) -> Tensor:
        """Copy ``src`` (broadcast, cast and moved as needed) into this tensor."""
        if self._recorded("copy_", src):
            source = src.to(self.device)._cast(self.dtype)
            return self._record("copy_", lambda t: _overwrite(t, source), False)
        value = src._data if isinstance(src, Tensor) else src
        if not (backend.is_array(value) or backend.looks_like_cupy(value)):
            value = np.asarray(value)
            if value.dtype == object:
                raise TypeError(f"copy_(): argument 'src' must be Tensor, not {type(src).__name__}")
        value = backend.to_device(value, self.device)
        if value.ndim > self._data.ndim:  # numpy drops leading 1s; PyTorch never broadcasts self
            raise RuntimeError(
                f"copy_: output with shape {list(self.shape)} doesn't match the broadcast shape "
                f"{list(value.shape)}"
            )
        try:
            self._data[...] = value
        except ValueError as e:
            raise RuntimeError(
                f"copy_: the source of shape {tuple(value.shape)} does not broadcast to the "
                f"destination shape {self.shape}: {e}"
            ) from None
        self._bump()
        return self

    def clamp_(self, min: Any = None, max: Any = None) -> Tensor:
        """Clip into [min, max] in place."""
        if self._recorded("clamp_", min, max):
            return self._record("clamp_", lambda t: t.clamp(min, max), True)
        out = self.detach().clamp(min, max)._data
        self._data[...] = out
        self._bump()
        return self

    clip_ = clamp_

    def masked_fill_(self, mask: Any, value: Any) -> Tensor:
        """``value`` where ``mask`` is True, in place."""
        if self._recorded("masked_fill_", value):
            return self._record("masked_fill_", lambda t: t.masked_fill(mask, value), False)
        mask = _bool_mask("masked_fill_", mask)
        xp = backend.array_module_of(self._data)
        fill = value._data if isinstance(value, Tensor) else value
        self._data[...] = xp.where(mask, fill, self._data)
        self._bump()
        return self

    def _unary_(self, name: str, compute: Any) -> Tensor:
        """An elementwise op written into this tensor: ``compute`` of its values."""
        if self._recorded(name):
            return self._record(name, compute, True)
        self._data[...] = _fit_inplace(name, compute(self.detach()), self)._data
        self._bump()
        return self

    def relu_(self) -> Tensor:
        """max(x, 0) in place."""
        return self._unary_("relu_", Tensor.relu)

    def sigmoid_(self) -> Tensor:
        """The logistic sigmoid in place."""
        return self._unary_("sigmoid_", Tensor.sigmoid)

    def tanh_(self) -> Tensor:
        """tanh in place."""
        return self._unary_("tanh_", Tensor.tanh)

    def exp_(self) -> Tensor:
        """e**x in place."""
        return self._unary_("exp_", Tensor.exp)

    def neg_(self) -> Tensor:
        """-x in place."""
        return self._unary_("neg_", Tensor.neg)

    def normal_(self, mean: float = 0.0, std: float = 1.0, *, generator: Any = None) -> Tensor:
        """Fill with draws from N(mean, std^2) in place."""
        draws = backend.generator(generator).normal(mean, std, self.shape)
        return self._fill_draws("normal_", draws)

    def uniform_(self, a: float = 0.0, b: float = 1.0, *, generator: Any = None) -> Tensor:
        """Fill with draws from U(a, b) in place."""
        draws = backend.generator(generator).uniform(a, b, self.shape)
        return self._fill_draws("uniform_", draws)

    def _fill_draws(self, name: str, draws: Any) -> Tensor:
        values = backend.to_device(draws.astype(self.dtype), self.device)
        if self._recorded(name):
            return self._record(name, lambda t: _overwrite(t, _wrap(values)), False)
        self._data[...] = values
        self._bump()
        return self

    def __setitem__(self, index: Any, value: Any) -> None:
        idx = _index(index)
        _check_put(self, idx, value)
        try:
            recorded = self._recorded("__setitem__", value)
        except RuntimeError:
            self._read(index, idx)  # PyTorch refuses an index out of range first
            raise
        if recorded:
            self._record("__setitem__", _index_put(self, index, idx, value), False)
            return
        v = value._data if isinstance(value, Tensor) else value
        if backend.is_array(v) and backend.device_of(v) != self.device:
            v = backend.to_device(v, self.device)
        try:
            self._data[idx] = v
        except IndexError:
            selected = _put_shape(self, idx)
            if selected is not None and not _broadcasts(np.shape(v), selected):
                raise RuntimeError(
                    f"__setitem__: shape mismatch: value of shape {tuple(np.shape(v))} cannot be "
                    f"broadcast to indexing result of shape {selected}"
                ) from None
            self._read(index, idx)
            raise
        except (ValueError, TypeError) as e:
            # numpy refuses a value with leading 1s beyond the selection's dims (under a mask);
            # PyTorch drops them
            selected = _put_shape(self, idx) or self._read(index, idx).shape
            fitted = _drop_leading_ones(v, len(selected)) if backend.is_array(v) else v
            if fitted is v or np.ndim(fitted) > len(selected):
                raise RuntimeError(
                    f"__setitem__: shape mismatch: value of shape {tuple(np.shape(v))} cannot be "
                    f"broadcast to indexing result of shape {tuple(selected)}: {e}"
                ) from None
            self.__setitem__(index, fitted)
            return
        self._bump()

    def _read(self, index: Any, idx: Any) -> Any:
        """The indexed selection of the array, or an IndexError naming the index and shape."""
        try:
            return self._data[idx]
        except IndexError as e:
            raise IndexError(
                f"index {index!r:.80} is invalid for shape {tuple(self.shape)}: {e}"
            ) from None


_add_methods(_InplaceMethods)
