"""The tape: ``Node`` (PyTorch's grad_fn objects, as in torch/autograd/graph.py), ``apply``,
which runs an op's forward and records a Node when a gradient is wanted, the creation counter
that orders the nodes, and the seams through which tm.compile watches (``_recorder``,
``_observer``, ``replayable``). Views: a tensor made by a view op shares its input's memory
and versions (``_link_view``).
"""

from __future__ import annotations

import functools
import itertools
import traceback
import weakref
from collections.abc import Sequence
from operator import attrgetter
from typing import Any

from .. import backend
from .. import ops as O
from .._printing import backward_name
from ..backend import np
from .grad_mode import _Mode

# NOTE: the Tensor class, set by _tensor.py once it has defined it (this module cannot import
# _tensor.py, which imports it): ``apply`` and ``_wrap`` make Tensors with object.__new__.
Tensor: Any = None


class Node:
    """One recorded op application (the ``grad_fn`` of its output): the op, its input tensors,
    its keyword parameters and what its forward saved."""

    __slots__ = (
        "op",
        "inputs",
        "saved",
        "needs",
        "params",
        "seq",
        "released",
        "trace",
        "ctx",
        "label",  # PyTorch's name, where the op that made the node sets one; after release,
        # the inputs' dims for a matmul or linear node (whose name depends on them)
    )

    def __init__(self, op: O.Op, inputs: tuple, saved: Any, needs: tuple, params: dict) -> None:
        self.op = op
        self.inputs = inputs
        self.saved = saved
        self.needs = needs
        self.params = params
        self.seq = next(_creation_order)
        self.released = False
        self.trace = _creation_trace() if _Mode.anomaly else None
        self.ctx = None

    def name(self) -> str:
        """PyTorch's name for the backward of this op, e.g. 'MulBackward0'."""
        label = getattr(self, "label", None)
        if type(label) is str:
            return label
        dims = tuple(map(_ndim_of, self.inputs)) if label is None else label
        return backward_name(self.op.name, self.params, dims)

    @property
    def next_functions(self) -> tuple:
        """(grad_fn, 0) of each input; None for inputs that are leaves."""
        return tuple((t._node, 0) for t in self.inputs)

    def release(self) -> None:
        """Free what forward saved and the links to the inputs."""
        if self.op in _NAMED_BY_DIMS:  # the name depends on the inputs' dims
            self.label = tuple(map(_ndim_of, self.inputs))
        self.released = True
        if not self.op.saves_inputs and self.ctx is None:
            return
        self.saved = None
        self.inputs = ()
        self.ctx = None

    def __repr__(self) -> str:
        return f"<{self.name()} object at {id(self):#x}>"


# NOTE: an op's output is always created after its inputs, so ordering the nodes of a graph by
# this counter (a heap in the engine) gives a topological order without recursion. In-place
# changes draw their stamps from the same counter: an input changed after a node was created
# carries a stamp above the node's, and while no in-place change at all is newer than a node
# (_Mode.last_inplace) the engine need not look at its inputs.
_creation_order = itertools.count(1)
_ndim_of = attrgetter("_data.ndim")
_NAMED_BY_DIMS = frozenset((O.MATMUL, O.LINEAR))  # a released node keeps its inputs' dims
_data_of = attrgetter("_data")
_requires_grad_of = attrgetter("requires_grad")
_ndarray = np.ndarray
_NUMPY = backend.NUMPY


def _creation_trace() -> str:
    """Where the user's code created an op, for anomaly messages."""
    frames = [f for f in traceback.extract_stack()[:-3] if "tinygrad_mlp" not in f.filename]
    return "".join(traceback.format_list(frames[-3:]))


def apply(op: O.Op, *inputs: Tensor, **params: Any) -> Tensor:
    """Run an op's forward on tensors and record it on the tape when a gradient is wanted."""
    arrays = tuple(map(_data_of, inputs))
    first = arrays[0]
    if len(arrays) > 1 and len(set(map(type, arrays))) != 1:
        arrays = _same_device(op, inputs, arrays)
        first = arrays[0]
    ns = _NUMPY if type(first) is _ndarray else backend.namespace_of(first)
    try:
        out, saved = op.forward(ns, *arrays, **params)
    except (O.ShapeError, O.DTypeError):
        raise  # the op's own message already names the op, the shapes or dtypes
    except (ValueError, TypeError) as e:
        shapes = " and ".join(str(tuple(a.shape)) for a in arrays)
        kind = _ShapeMismatch if isinstance(e, ValueError) else O.DTypeError
        raise kind(
            f"{op.name}: cannot apply to shape{'s' if len(arrays) > 1 else ''} {shapes}: {e}"
        ) from None
    if type(out) is not _ndarray and ns is _NUMPY and not backend.is_array(out):
        scalar, out = out, np.asarray(out)  # NOTE: numpy turns 0-d results into scalars
        if saved is scalar:  # a kept output is the tensor's own array
            saved = out
        elif type(saved) is tuple:
            for s in saved:
                if s is scalar:
                    saved = _saved_into(saved, scalar, out)
                    break
    t = _new(Tensor)
    t._data = out
    t.grad = None
    t._version = 0
    t._extra = None
    if type(out) is _ndarray:
        if out.base is not None:
            _link_view(t, out, op, inputs, params)  # reshape, getitem, ...: shares memory
    elif out.base is not None:  # a CuPy view
        _link_view(t, out, op, inputs, params)
    if _recorder is not None:  # tm.compile is tracing a step (see compile.py)
        _recorder(op, inputs, params, t)
    if _Mode.grad_enabled:
        needs = tuple(map(_requires_grad_of, inputs))
        if True in needs:
            t.requires_grad = True
            t._node = Node(op, inputs, saved, needs, params)
            return t
    t.requires_grad = False
    t._node = None
    return t


_new = object.__new__
_new_size = tuple.__new__

# the ops whose output is a view of their input in PyTorch (when numpy's output shares memory)
_VIEW_OPS = frozenset({"reshape", "permute", "expand", "getitem", "diagonal"})

# NOTE: tm.compile sets this to its recorder while it traces a step; apply then reports each op
# application (op, input tensors, params, output tensor). None otherwise: one global read per op.
_recorder = None

# NOTE: the tracer of tm.compile while it traces a step, told what the tape does not show: a
# value read on the host (``read``), an in-place change (``inplace``), a tensor made outside the
# ops (``made``) and a call that changes state outside the tape (``call``, see ``replayable``).
_observer = None


def replayable(fn: Any) -> Any:
    """Mark a function that changes state outside the tape (an optimizer's step, zero_grad, a
    scheduler's step, gradient clipping): a compiled step replays the call as a whole."""

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        if _observer is None:
            return fn(*args, **kwargs)
        return _observer.call(fn, args, kwargs)

    return call


class _ShapeMismatch(RuntimeError, ValueError):
    """Shapes that do not fit an op: a RuntimeError as in PyTorch (and a ValueError, as before)."""


def _link_view(t: Tensor, out: Any, op: O.Op, inputs: tuple, params: dict) -> None:
    """Tie a view to the input whose memory it shares, so that a write through either is seen
    by both and counts as a change of both (PyTorch's version counter, shared by a tensor and
    its views). The view keeps the op that made it, to be made again from a rebased base."""
    may_share_memory = backend.array_module_of(out).may_share_memory
    for inp in inputs:
        if may_share_memory(out, inp._data):
            if op.name not in _VIEW_OPS or (op is O.GETITEM and _steps_back(params["index"])):
                t._data = out.copy()  # flip and friends are copies in PyTorch
                return
            t._extra = {"base": inp, "view": (op, params)}
            _views_of(inp).add(t)
            return


def _views_of(t: Tensor) -> Any:
    """The live tensors that share ``t``'s memory as views (or detached aliases) of it."""
    views = t._get_extra("views")
    if views is None:
        views = weakref.WeakSet()
        t._set_extra("views", views)
    return views


def _steps_back(index: Any) -> bool:
    """True for an index holding a slice with a negative step (a copy here, as in PyTorch's
    flip; PyTorch refuses such slices)."""
    items = index if type(index) is tuple else (index,)
    return any(type(i) is slice and i.step is not None and i.step < 0 for i in items)


def _same_device(op: O.Op, inputs: Sequence[Tensor], arrays: tuple) -> tuple:
    """The arrays of inputs of mixed types, when they are all on one device: a numpy scalar
    (numpy's result of some ops on 0-d arrays) becomes a 0-d array; else the refusal."""
    arrays = tuple(np.asarray(a) if isinstance(a, np.generic) else a for a in arrays)
    if len(set(map(type, arrays))) != 1:
        _refuse_devices(op, inputs)
    return arrays


def _refuse_devices(op: O.Op, inputs: Sequence[Tensor]) -> None:
    devices = ", ".join(f"{x.device} {tuple(x.shape)}" for x in inputs)
    raise RuntimeError(
        f"{op.name}: expected all tensors to be on the same device, got {devices}; "
        "move them with .to(device)"
    )


def _wrap_array(like: Any, out: Any) -> Tensor:
    """A tensor around ``out``, a result computed from the array ``like``: a 0-d result that
    numpy made a scalar is made an array again (a tensor never holds a numpy scalar)."""
    return _wrap(backend.array_module_of(like).asarray(out))


def _wrap(data: Any, requires_grad: bool = False, node: Node | None = None) -> Tensor:
    """Make a tensor around an array without conversion (the engine's fast path)."""
    t = _new(Tensor)
    t._data = data
    t.grad = None
    t.requires_grad = requires_grad
    t._node = node
    t._version = 0
    t._extra = None
    if _observer is not None:
        _observer.made(t)
    return t


def _constant(data: Any) -> Tensor:
    """A tensor around a constant made from Python values (not a value of the step's data)."""
    t = _new(Tensor)
    t._data = data
    t.grad = None
    t.requires_grad = False
    t._node = None
    t._version = 0
    t._extra = None
    return t


def _saved_into(saved: Any, out: Any, data: Any) -> Any:
    """What a node saved, with its own output array replaced by the memory it was written
    into (so that a later change of that memory is caught at backward)."""
    if saved is out:
        return data
    if type(saved) is tuple:
        return tuple(data if s is out else s for s in saved)
    return saved
