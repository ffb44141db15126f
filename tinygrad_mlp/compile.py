"""``tm.compile``: trace a step once, then replay it as a fixed plan of array operations.

The first call of a compiled function runs it eagerly while a recorder watches: every op
application (the hook in ``_tensor.apply``), every seed, derivative rule, gradient fit, sum and
delivery of the backward pass (the engine's loop runs with ``_TracedRun``, set as its
``observer`` for the length of the trace), every dropout mask, and every call that changes
state outside the tape (an optimizer's ``step`` and ``zero_grad``, ``Module.zero_grad``, an LR
scheduler's ``step``, ``clip_grad_*``). The second call with the same guards traces again and
compares the two recordings: equal, they become a plan; different, the step depends on
something the tracer cannot see (a Python value, data-dependent branching) and the function
stays eager. From the third call on the plan replays: a flat list of closures over numpy calls,
with no Tensor, Node or engine in between. The common ops (linear, the fused ``mlp`` stack,
ReLU, tanh, sigmoid, cross-entropy, MSE, plain SGD) replay through kernels that write into
buffers allocated once (``out=`` arguments, in-place updates); every other op replays through
its own registry forward and rule, so the arithmetic is always the eager one, bit for bit.

Guards (a change re-traces): the shapes, dtypes and devices of tensor and array arguments,
``requires_grad`` of tensor arguments, the values of other arguments, the grad mode, and
which gradients are None when the call starts (so accumulation over several calls gets its
own plan). Steps that read values out of the graph (``.item()``, ``float()``, ``bool()``,
``.numpy()``, ``.tolist()``), change tensors in place, draw random numbers other than through
dropout, use hooks, ``create_graph`` or ``autograd.grad`` fall back to eager with a one-time
warning naming the reason.

What a replay hands back is the eager result's values: returned tensors are new arrays (no
grad_fn), and ``.grad`` of the parameters are buffers, one per parameter, overwritten by the
next call (as PyTorch accumulates into ``.grad`` in place). The plans' other buffers share one
block (``_Arena``), freed before every trace. Values an eager step checks
in Python (a label out of range for cross-entropy) are checked by the kernels too; other checks
of the eager ops are not repeated.

``tm.compile(module)`` gives a ``CompiledModule``: its calls replay under ``no_grad`` (inference),
and run eagerly when they are recorded for a backward, or traced inside a compiled step.

On CuPy the kernels are not used; the plan's array steps replay through CUDA graphs
(``_CudaGraphs``, untested: no GPU was at hand when it was written).
"""

from __future__ import annotations

import functools
import math
import warnings
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from . import _tensor, backend
from . import ops as O
from ._tensor import Tensor, _wrap
from .autograd import engine
from .autograd.grad_mode import _Mode
from .autograd.namespace import ArrayNamespace
from .backend import np

__all__ = ["compile", "CompiledFunction", "CompiledModule"]

_ndarray = np.ndarray
_CACHE_LIMIT = 8  # guard combinations per function before it gives up and stays eager
_ACTIVE: list[_Trace] = []  # the trace being recorded (at most one)


class _Unsupported(Exception):
    """Raised inside the recorder when the step does something a plan cannot replay."""


class _SlotRef:
    """An op parameter that is an array of the plan (a step input or an intermediate)."""

    __slots__ = ("slot",)

    def __init__(self, slot: int) -> None:
        self.slot = slot

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _SlotRef) and other.slot == self.slot

    def __hash__(self) -> int:
        return hash(("slot", self.slot))

    def __repr__(self) -> str:
        return f"slot{self.slot}"


# ---------------------------------------------------------------- flattening the arguments


def _flatten(value: Any, leaves: list, sig: list) -> None:
    """Tensors and arrays of ``value`` into ``leaves``; everything else (and their guards) into
    ``sig``."""
    if isinstance(value, Tensor):
        data = value._data
        leaves.append(value)
        sig.append(("T", tuple(data.shape), data.dtype.str, type(data), value.requires_grad))
    elif backend.is_array(value):
        leaves.append(value)
        sig.append(("A", tuple(value.shape), value.dtype.str, type(value)))
    elif isinstance(value, (list, tuple)):
        sig.append((type(value), len(value)))
        for v in value:
            _flatten(v, leaves, sig)
    elif isinstance(value, dict):
        sig.append((dict, tuple(value)))
        for v in value.values():
            _flatten(v, leaves, sig)
    else:
        try:
            hash(value)
            sig.append(("V", type(value), value))
        except TypeError:
            sig.append(("V", type(value), id(value)))


def _guard_key(args: tuple, kwargs: dict) -> tuple[list, tuple]:
    """The step's tensors and arrays, and the key of everything the plan depends on."""
    if not kwargs:  # the common case, tensors and arrays only: a shorter key
        sig: list = []
        for a in args:
            kind = type(a)
            if kind is Tensor:
                data = a._data
                sig.append((data.shape, data.dtype, type(data), a.requires_grad))
            elif kind is _ndarray:
                sig.append((a.shape, a.dtype))
            else:
                break
        else:
            sig.append(_Mode.grad_enabled)
            return list(args), tuple(sig)
    leaves = []
    sig = []
    _flatten(args, leaves, sig)
    _flatten(kwargs, leaves, sig)
    sig.append(("grad", _Mode.grad_enabled))
    return leaves, tuple(sig)


# ---------------------------------------------------------------- the recorder


_OPAQUE = (
    "a tensor computed outside the differentiable ops (a comparison, argmax, isnan, a cast to "
    "an integer dtype, new_tensor, ...)"
)


class _Trace:
    """One eager run of the step with everything recorded as events over numbered slots."""

    def __init__(self, inputs: list) -> None:
        self.events: list[tuple] = []
        self.slot_of: dict[int, int] = {}  # id(array) -> slot
        self.refs: list[Callable[[], Any]] = []  # slot -> a reference to its array
        self.meta: list[tuple] = []  # slot -> (shape, dtype)
        self.keep: list = []  # everything whose id is a key, kept alive for the trace
        self.node_event: dict[int, int] = {}  # id(node) -> index of its forward event
        self.unresolved: list[tuple[Tensor, int]] = []
        self.entry: dict[int, tuple[Tensor, bool]] = {}  # leaf -> grad was None at entry
        self.reason: str | None = None
        self.opaque: set[int] = set()  # arrays of tensors made outside the recorded ops
        self.depth = 0  # > 0 inside a call replayed as a whole (optimizer step, ...)
        self.inputs = []
        for i, x in enumerate(inputs):
            array = x._data if isinstance(x, Tensor) else x
            if self.find(array) is not None:
                self.inputs.append((i, self.find(array)))
                continue
            slot = self._new(array)
            self.inputs.append((i, slot))
            self.events.append(("in", i, slot, isinstance(x, Tensor)))
        self.result: Any = None
        self.sig: list | None = None
        arrays = [x._data if isinstance(x, Tensor) else x for x in inputs]
        self.ns = backend.namespace_of(arrays[0]) if arrays else backend.NUMPY

    def fail(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason

    def find(self, array: Any) -> int | None:
        """The slot of ``array``, or None; an id left by an array that died is not it."""
        slot = self.slot_of.get(id(array))
        if slot is not None and self.refs[slot]() is not array:
            return None
        return slot

    def _new(self, array: Any) -> int:
        slot = len(self.meta)
        self.slot_of[id(array)] = slot
        # NOTE: arrays are held weakly, so that the traced run frees them as eager mode does;
        # numpy scalars (which cannot be) are held as they are, they are small
        try:
            self.refs.append(weakref.ref(array))
        except TypeError:
            self.keep.append(array)
            self.refs.append(lambda array=array: array)
        shape = getattr(array, "shape", ())
        dtype = getattr(array, "dtype", None)
        self.meta.append((tuple(shape), dtype))
        return slot

    def slot(self, array: Any) -> int:
        """The slot of an array, numbering it if new."""
        slot = self.find(array)
        return self._new(array) if slot is None else slot

    def ref(self, t: Tensor) -> tuple:
        slot = self.find(t._data)
        if slot is not None:
            return ("s", slot)
        self.keep.append(t)
        return ("x", t)

    def _resolve(self) -> None:
        for t, index in self.unresolved:
            if t._node is not None:
                self.node_event[id(t._node)] = index
                self.keep.append(t._node)
        self.unresolved.clear()

    def touch(self, leaf: Tensor, state: Any = ...) -> None:
        """Note the gradient state of ``leaf`` at entry when this is its first use (None: the
        step does not depend on it)."""
        if id(leaf) not in self.entry:
            self.entry[id(leaf)] = (leaf, leaf.grad is None if state is ... else state)

    # ------------------------------------------------------------ what the hooks report

    def on_apply(self, op: O.Op, inputs: tuple, params: dict, t: Tensor) -> None:
        if self.depth or self.reason:
            return
        self._resolve()
        if op.custom is not None:
            self.fail(f"the custom autograd.Function {op.name!r}")
            return
        refs = tuple(self.ref(x) for x in inputs)
        if any(r[0] == "x" and id(r[1]._data) in self.opaque for r in refs):
            self.fail(_OPAQUE)
            return
        resolved = {}
        for k, v in params.items():
            if backend.is_array(v) and self.find(v) is not None:
                v = _SlotRef(self.find(v))
            resolved[k] = v
        out = self._new(t._data)
        self.events.append(("fwd", op, refs, resolved, out))
        self.unresolved.append((t, len(self.events) - 1))

    def on_call(self, orig: Callable, what: str, obj: Any, args: tuple, kwargs: dict) -> Any:
        """A call replayed as a whole (an optimizer step, zero_grad, ...)."""
        if not (self.depth or self.reason):
            # an iterator argument (model.parameters()) is kept as a list, to be used again
            args = tuple(list(a) if isinstance(a, Iterator) else a for a in args)
            if what == "step" and (args or kwargs.get("closure") is not None):
                self.fail("optimizer.step(closure)")
            params = _params_of(obj, what, args, kwargs)
            # zero_grad(set_to_none=True) first: the gradient at entry does not matter
            clears = what == "zero_grad" and (args[:1] or (kwargs.get("set_to_none", True),))[0]
            for p in params:
                self.touch(p, None if clears else ...)
            self.keep.append(obj)
            self.events.append(("call", orig, what, obj, args, kwargs))
        self.depth += 1
        try:
            return orig(obj, *args, **kwargs) if obj is not None else orig(*args, **kwargs)
        finally:
            self.depth -= 1

    def on_dropout(self, orig: Callable, input: Any, p: float, training: bool, inplace: bool):
        if self.depth or self.reason or not training or p == 0 or p == 1:
            return orig(input, p, training, inplace)
        from .nn import functional as F

        keep = _REAL_RNG().random(input.shape) >= p
        mask = (keep / (1 - p)).astype(input.dtype)
        if type(mask) is not type(input._data):  # drawn on the host, as eager dropout does
            mask = _REAL_TO_DEVICE(mask, input.device)
        self.events.append(
            ("mask", tuple(input.shape), p, input.dtype, self._new(mask), input.device)
        )
        return input * F._const(mask, input)

    def on_move(self, orig: Callable, array: Any, device: Any) -> Any:
        """``backend.to_device``: a host input moved to the device (a loss's labels) is a step
        of the plan, not a constant."""
        out = orig(array, device)
        if out is not array and not (self.depth or self.reason):
            src = self.find(array)
            if src is not None:
                self.events.append(("move", src, device, self._new(out)))
        return out

    def on_wrap(self, t: Tensor) -> None:
        data = t._data
        if not (self.depth or self.reason) and self.find(data) is None:
            self.opaque.add(id(data))
            self.keep.append(data)

    def on_value(self, what: str, t: Tensor) -> None:
        data = t._data
        if not (self.depth or self.reason) and (
            self.find(data) is not None or id(data) in self.opaque
        ):
            self.fail(f"{what} on a tensor computed in the step (its value depends on the data)")

    # ------------------------------------------------------------ the run

    def run(self, fn: Callable, args: tuple, kwargs: dict) -> Any:
        patches = _Patches(self)
        _ACTIVE.append(self)
        patches.install()
        try:
            result = fn(*args, **kwargs)
        finally:
            patches.remove()
            _ACTIVE.pop()
        if self.depth:  # a backward stopped by an error that the step caught
            self.fail("an error inside backward")
        self._resolve()
        self.result = self._outputs(result)
        self.sig = self.signature() if self.reason is None else None
        # the arrays of the run are no longer needed (only their shapes, in meta)
        self.keep, self.slot_of, self.opaque, self.node_event = [], {}, set(), {}
        self.refs = []
        return result

    def _outputs(self, value: Any) -> Any:
        """The structure of the step's result, tensors as references."""
        if isinstance(value, Tensor):
            if value.requires_grad and value._node is not None and not value._node.released:
                self.fail(
                    "the step returns a tensor with a live graph (call backward inside the step, "
                    "or compile a module and call it under no_grad)"
                )
            slot = self.find(value._data)
            if id(value._data) in self.opaque:
                self.fail(_OPAQUE)
            if slot is None:
                self.keep.append(value)
                return ("x", value)
            return ("s", slot, value.requires_grad)
        if isinstance(value, (list, tuple)):
            items = [self._outputs(v) for v in value]
            return ("seq", type(value), items)
        if isinstance(value, dict):
            return ("dict", {k: self._outputs(v) for k, v in value.items()})
        if backend.is_array(value):
            self.fail("the step returns an array")
        return ("v", value)

    def entry_pattern(self, leaves: list[tuple[Tensor, bool]]) -> tuple | None:
        """Which of the ``leaves`` whose state matters had no gradient at entry; None when
        this trace touched other leaves, or depends on other ones."""
        mine = self.cares()
        if [(id(t), c) for t, c in mine] != [(id(t), c) for t, c in leaves]:
            return None
        return tuple(self.entry[id(t)][1] for t, care in leaves if care)

    def cares(self) -> list[tuple[Tensor, bool]]:
        return [(t, state is not None) for t, state in self.entry.values()]

    def signature(self) -> list:
        """A comparable rendering of the events: equal for two runs of the same step."""
        return [_event_signature(e) for e in self.events] + [_value_sig(self.result)]


class _TracedRun(engine._Run):
    """A backward of the traced step, run by the engine (its observer seam) with each seed,
    rule, fit, sum and delivery recorded as an event. What a plan cannot replay fails the
    trace; the run then goes on as a plain one."""

    def __init__(self, tr: _Trace, space: type, wanted: Any, accumulate: bool) -> None:
        super().__init__(space, wanted, accumulate)
        self.tr = None if tr.depth or tr.reason else tr
        if self.tr is None:
            return
        if not accumulate:
            self.refuse("autograd.grad")
        elif space is not ArrayNamespace or wanted is not None:
            self.refuse("backward with several outputs, gradient=, inputs= or create_graph=True")
        elif _Mode.anomaly:
            self.refuse("anomaly detection")

    def refuse(self, reason: str) -> None:
        self.tr.fail(reason)
        self.tr = None

    def seed(self, out: Tensor, grad: Any) -> Any:
        tr = self.tr
        if tr is not None and grad is not None:
            self.refuse("backward with several outputs, gradient=, inputs= or create_graph=True")
        elif tr is not None and (out._node is None or tr.find(out._data) is None):
            self.refuse("a backward of a tensor the step did not compute")
        return super().seed(out, grad)

    def start(self, roots: Any) -> None:
        tr = self.tr
        if tr is not None and len(roots) != 1:
            self.refuse("backward with several outputs, gradient=, inputs= or create_graph=True")
        elif tr is not None:
            tr._resolve()
            seed = roots[0][1]
            const = seed.copy()
            const.flags.writeable = False  # rules never write into g
            tr.events.append(("seed", tr._new(seed), const))
            tr.depth += 1  # nothing below is a step op
        super().start(roots)

    def visit(self, t: Tensor, g: Any, ns: Any) -> Any:
        if self.tr is not None and (t._get_extra("hooks") or t._get_extra("retains_grad")):
            self.tr.fail("a tensor hook or retain_grad")
        return super().visit(t, g, ns)

    def rule(self, node: Any, ns: Any, g: Any) -> tuple:
        grads = node.op.backward(ns, g, ns.saved(node), node.needs)
        tr = self.tr
        if tr is not None:
            index = tr.node_event.get(id(node))
            if index is None:
                tr.fail("a backward into a graph recorded before the step")
            if node.op.custom is not None:
                tr.fail(f"the custom autograd.Function {node.op.name!r}")
            outs = tuple(None if r is None else tr.slot(r) for r in grads)
            tr.events.append(("rule", index, tr.find(g), tuple(node.needs), outs))
        return grads

    def fit(self, ns: Any, ig: Any, data: Any, node: Any, i: int) -> Any:
        fitted = super().fit(ns, ig, data, node, i)
        tr = self.tr
        if tr is not None:
            if type(fitted) is not type(data):
                tr.fail("a gradient moved between devices")
            tr.events.append(("fit", tr.find(ig), tr.slot(fitted), tuple(data.shape), data.dtype))
        return fitted

    def add(self, t: Tensor, g: Any, ns: Any) -> None:
        prev = self.pending.get(t)
        super().add(t, g, ns)
        tr = self.tr
        if tr is not None and prev is not None:
            tr.events.append(("add", tr.find(prev), tr.find(g), tr.slot(self.pending[t])))

    def deliver(self, t: Tensor, g: Any, ns: Any, source: Any, hooked: bool = False) -> None:
        tr = self.tr
        if tr is not None:
            if t._extra is not None and (t._get_extra("hooks") or t._get_extra("post_hooks")):
                tr.fail("a tensor hook")
            tr.touch(t)
            tr.keep.append(t)
            fresh = g is not source and g.base is None
            how = "set" if t.grad is None else "acc"
            tr.events.append(("deliver", t, tr.find(g), fresh, how))
        super().deliver(t, g, ns, source, hooked)

    def finish(self) -> None:
        super().finish()
        if self.tr is not None:
            self.tr.depth -= 1


def _params_of(obj: Any, what: str, args: tuple, kwargs: dict) -> list:
    """The parameters whose ``.grad`` a replayed call reads or clears."""
    if what in ("step", "zero_grad") and hasattr(obj, "param_groups"):
        return [p for g in obj.param_groups for p in g["params"]]
    if what == "zero_grad" and hasattr(obj, "parameters"):
        return list(obj.parameters())
    return []


def _value_sig(value: Any) -> Any:
    if isinstance(value, Tensor):
        return ("tensor", _array_sig(value._data), value.requires_grad)
    if backend.is_array(value):
        return _array_sig(value)
    if isinstance(value, tuple) and value and value[0] == "x":
        t = value[1]
        return ("x", id(t) if t.requires_grad else _array_sig(t._data))
    if isinstance(value, (list, tuple)):
        return tuple(_value_sig(v) for v in value)
    if isinstance(value, dict):
        return tuple((k, _value_sig(v)) for k, v in value.items())
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, (int, float, str, bool, type(None), _SlotRef, type, np.dtype)):
        return value
    return ("obj", id(value))


def _call_sig(value: Any) -> Any:
    """Arguments of a replayed call: tensors by identity (the call reads their live values)."""
    if isinstance(value, Tensor):
        return ("tensor", id(value))
    if isinstance(value, (list, tuple)):
        return tuple(_call_sig(v) for v in value)
    if isinstance(value, dict):
        return tuple((k, _call_sig(v)) for k, v in value.items())
    return _value_sig(value)


def _array_sig(a: Any) -> tuple:
    host = backend.to_numpy(a)
    return (host.shape, host.dtype.str, host.tobytes())


def _event_signature(e: tuple) -> tuple:
    kind = e[0]
    if kind == "fwd":
        _, op, refs, params, out = e
        return (kind, op.name, _value_sig(list(refs)), _value_sig(params), out)
    if kind == "deliver":
        return (kind, id(e[1]), e[2], e[3], e[4])
    if kind == "call":
        _, orig, what, obj, args, kwargs = e
        return (kind, orig, what, id(obj), _call_sig(args), _call_sig(kwargs))
    if kind == "seed":
        return (kind, e[1], _array_sig(e[2]))
    return tuple(_value_sig(v) if not isinstance(v, (int, str)) else v for v in e)


class _Patches:
    """The engine, Tensor and optimizer functions wrapped for the length of one trace."""

    def __init__(self, trace: _Trace) -> None:
        self.trace = trace
        self.saved: list[tuple[Any, str, Any]] = []

    def _set(self, owner: Any, name: str, value: Any) -> None:
        self.saved.append((owner, name, owner.__dict__[name] if name in owner.__dict__ else None))
        setattr(owner, name, value)

    def install(self) -> None:
        tr = self.trace
        from .nn import functional as F
        from .nn import utils as nn_utils
        from .nn.modules.module import Module
        from .optim import lr_scheduler
        from .optim.optimizer import Optimizer

        _tensor._recorder = tr.on_apply
        engine.observer = functools.partial(_TracedRun, tr)
        self._set(F, "dropout", _dropout_hook(tr, F.dropout))
        self._set(backend, "rng", _refusing(tr, "random numbers from the global generator", None))
        self._set(backend, "to_device", functools.partial(tr.on_move, backend.to_device))
        for what in ("item", "tolist", "numpy", "__float__", "__int__", "__bool__", "__index__"):
            self._set(Tensor, what, _value_hook(tr, what, getattr(Tensor, what)))
        self._set(Tensor, "_bump", _refusing(tr, "an in-place tensor op", Tensor._bump))
        orig_wrap, orig_lift = _tensor._wrap, _tensor._lift

        def wrap(data: Any, requires_grad: bool = False, node: Any = None) -> Tensor:
            t = orig_wrap(data, requires_grad, node)
            tr.on_wrap(t)
            return t

        def lift(value: Any, like: Tensor) -> Tensor:
            tr.depth += 1  # a constant from a Python number: compared between traces
            try:
                return orig_lift(value, like)
            finally:
                tr.depth -= 1

        self._set(_tensor, "_wrap", wrap)
        self._set(_tensor, "_lift", lift)
        classes = [Optimizer, *_subclasses(Optimizer)]
        for cls in classes:
            for what in ("step", "zero_grad"):
                if what in cls.__dict__:
                    self._set(cls, what, _call_hook(tr, what, cls.__dict__[what]))
        self._set(Module, "zero_grad", _call_hook(tr, "zero_grad", Module.zero_grad))
        for cls in [lr_scheduler.LRScheduler, *_subclasses(lr_scheduler.LRScheduler)]:
            if "step" in cls.__dict__:
                self._set(cls, "step", _call_hook(tr, "sched", cls.__dict__["step"]))
        for name in ("clip_grad_norm_", "clip_grad_value_"):
            if hasattr(nn_utils, name):
                self._set(nn_utils, name, _function_hook(tr, name, getattr(nn_utils, name)))

    def remove(self) -> None:
        _tensor._recorder = None
        engine.observer = None
        for owner, name, value in reversed(self.saved):
            if value is None:
                delattr(owner, name)
            else:
                setattr(owner, name, value)
        self.saved.clear()


def _subclasses(cls: type) -> list[type]:
    out = []
    for sub in cls.__subclasses__():
        out.append(sub)
        out.extend(_subclasses(sub))
    return out


def _refusing(tr: _Trace, reason: str, orig: Callable | None) -> Callable:
    real = backend.rng if orig is None else orig

    def hook(*args: Any, **kwargs: Any) -> Any:
        if not tr.depth:
            tr.fail(reason)
        return real(*args, **kwargs)

    return hook


def _value_hook(tr: _Trace, what: str, orig: Callable) -> Callable:
    def hook(self: Tensor, *args: Any, **kwargs: Any) -> Any:
        tr.on_value(f".{what}()" if not what.startswith("__") else f"{what.strip('_')}()", self)
        return orig(self, *args, **kwargs)

    return hook


def _call_hook(tr: _Trace, what: str, orig: Callable) -> Callable:
    def hook(self: Any, *args: Any, **kwargs: Any) -> Any:
        return tr.on_call(orig, what, self, args, kwargs)

    return hook


def _function_hook(tr: _Trace, what: str, orig: Callable) -> Callable:
    def hook(*args: Any, **kwargs: Any) -> Any:
        return tr.on_call(orig, what, None, args, kwargs)

    return hook


def _dropout_hook(tr: _Trace, orig: Callable) -> Callable:
    def hook(input: Any, p: float = 0.5, training: bool = True, inplace: bool = False) -> Any:
        return tr.on_dropout(orig, input, p, training, inplace)

    return hook


_REAL_RNG = backend.rng
_REAL_TO_DEVICE = backend.to_device


# ---------------------------------------------------------------- the plan


def _fit_array(ig: Any, shape: tuple, dtype: Any) -> Any:
    """ArrayNamespace.fit, with the input's shape and dtype as recorded."""
    if isinstance(ig, np.generic) or not hasattr(ig, "shape"):
        ig = np.asarray(ig, dtype=dtype)
    if ig.shape != shape:
        ig = backend.sum_to(ig, shape)
    if ig.dtype != dtype:
        ig = ig.astype(dtype)
    return ig


def _label(events: list[tuple], e: tuple) -> str:
    """An event in words: the op of a forward or rule, the call of a replayed call."""
    kind = e[0]
    if kind == "fwd":
        return f"{e[1].name} forward"
    if kind == "rule":
        return f"{events[e[1]][1].name} rule"
    if kind == "call":
        return f"{type(e[3]).__name__ if e[3] is not None else ''}.{e[2]}".lstrip(".")
    return kind


def _getter(ref: tuple, env: list) -> Callable[[], Any]:
    if ref[0] == "s":
        slot = ref[1]
        return lambda: env[slot]
    t = ref[1]
    return lambda: t._data


class _Plan:
    """A trace turned into closures; ``run(inputs)`` replays the step. Its buffers live in the
    function's ``_Arena``: when the arena is released or grows, the plan is dropped and builds
    its closures again from the trace on its next run (an allocation, never a new trace)."""

    def __init__(self, trace: _Trace, arena: _Arena) -> None:
        self.trace = trace
        self.arena = arena
        self.inputs = trace.inputs
        self.ns = trace.ns
        self.result = trace.result
        self.uses = self._count_uses()
        self.generation: int | None = None
        self.env: list[Any] = []
        self.saved: dict[int, Any] = {}
        self.steps: list[Callable[[], None]] = []
        self.kinds: list[str] = []  # the event kind of each step
        self.labels: list[str] = []  # what each step does, in words (benchmarks/compile_parts.py)
        self.graphs: _CudaGraphs | None = None
        self.kernels: _Kernels | None = None
        arena.plans.append(self)
        self._build()

    def drop(self) -> None:
        """Let go of every buffer; the next run builds the plan again."""
        self.generation = None
        self.env, self.saved, self.steps, self.kinds, self.labels = [], {}, [], [], []
        self.graphs = self.kernels = None

    def _build(self) -> None:
        events = self.trace.events
        for _ in range(2):  # a second pass when the arena had to grow
            self.env = [None] * len(self.trace.meta)
            self.saved = {}
            self.steps, self.kinds, self.labels = [], [], []
            self.kernels = _Kernels(self)
            fused = self.kernels.plan(events)  # event index -> closure (or None: skipped)
            for index, e in enumerate(events):
                step = fused[index] if index in fused else self._generic(index, e)
                if step is not None:
                    self.steps.append(step)
                    self.kinds.append(e[0])
                    self.labels.append(_label(events, e))
            if not self.kernels.overflow:
                break
            nbytes = self.kernels.offset
            del fused, step
            self.drop()
            self.arena.grow(nbytes)  # drops every plan
        self.kernels.sealed = True
        self.generation = self.arena.generation
        self.graphs = _CudaGraphs(self) if _CudaGraphs.applies(self) else None

    def _count_uses(self) -> dict[int, int]:
        uses: dict[int, int] = {}
        for e in self.trace.events:
            kind = e[0]
            if kind == "fwd":
                for r in e[2]:
                    if r[0] == "s":
                        uses[r[1]] = uses.get(r[1], 0) + 1
                for v in e[3].values():
                    if isinstance(v, _SlotRef):
                        uses[v.slot] = uses.get(v.slot, 0) + 1
            elif kind in ("rule", "fit", "deliver"):
                s = e[2] if kind != "fit" else e[1]
                uses[s] = uses.get(s, 0) + 1
            elif kind == "add":
                uses[e[1]] = uses.get(e[1], 0) + 1
                uses[e[2]] = uses.get(e[2], 0) + 1
            elif kind == "move":
                uses[e[1]] = uses.get(e[1], 0) + 1
        stack = [self.trace.result]
        while stack:
            spec = stack.pop()
            if spec[0] == "s":
                uses[spec[1]] = uses.get(spec[1], 0) + 2  # read by the caller too
            elif spec[0] == "seq":
                stack.extend(spec[2])
            elif spec[0] == "dict":
                stack.extend(spec[1].values())
        return uses

    def _generic(self, index: int, e: tuple) -> Callable[[], None] | None:
        env, saved, ns = self.env, self.saved, self.ns
        kind = e[0]
        if kind == "in":
            return None  # written by run() itself
        if kind == "fwd":
            _, op, refs, params, out = e
            getters = [_getter(r, env) for r in refs]
            dynamic = {k: v.slot for k, v in params.items() if isinstance(v, _SlotRef)}
            static = {k: v for k, v in params.items() if not isinstance(v, _SlotRef)}
            forward = op.forward

            def fwd() -> None:
                kw = static
                if dynamic:
                    kw = dict(static)
                    for k, s in dynamic.items():
                        kw[k] = env[s]
                result, keep = forward(ns, *[get() for get in getters], **kw)
                if type(result) is not _ndarray and ns is backend.NUMPY:
                    result = np.asarray(result)
                env[out] = result
                saved[index] = keep

            return fwd
        if kind == "rule":
            _, at, g, needs, outs = e
            backward = self.trace.events[at][1].backward

            def rule() -> None:
                grads = backward(ns, env[g], saved.pop(at), needs)
                for s, r in zip(outs, grads, strict=True):
                    if s is not None:
                        env[s] = r

            return rule
        if kind == "fit":
            _, src, out, shape, dtype = e

            def fit() -> None:
                env[out] = _fit_array(env[src], shape, dtype)

            return fit
        if kind == "add":
            _, a, b, out = e
            add = ArrayNamespace.add

            def acc() -> None:
                env[out] = add(env[a], env[b])

            return acc
        if kind == "move":
            _, src, device, out = e
            to_device = backend.to_device

            def move() -> None:
                env[out] = to_device(env[src], device)

            return move
        if kind == "seed":
            _, out, const = e

            def seed() -> None:
                env[out] = const

            return seed
        if kind == "deliver":
            _, t, g, fresh, mode = e
            add = ArrayNamespace.add
            if mode == "set":

                def deliver() -> None:
                    t.grad = _wrap(env[g] if fresh else env[g].copy())

            else:

                def deliver() -> None:
                    t.grad = _wrap(add(t.grad._data, env[g]))

            return deliver
        if kind == "call":
            _, orig, what, obj, args, kwargs = e
            if obj is None:
                return lambda: orig(*args, **kwargs)
            return lambda: orig(obj, *args, **kwargs)
        if kind == "mask":
            _, shape, p, dtype, out, device = e
            on_host = self.ns is backend.NUMPY

            def mask() -> None:
                keep = _REAL_RNG().random(shape) >= p
                m = (keep / (1 - p)).astype(dtype)
                env[out] = m if on_host else _REAL_TO_DEVICE(m, device)

            return mask
        raise AssertionError(f"unknown event {kind}")

    def run(self, leaves: list) -> Any:
        if self.generation != self.arena.generation:
            self._build()
        if self.graphs is not None:
            out = self.graphs.run(leaves)
            if out is not _NOT_RUN:
                return out
        env = self.env
        for i, slot in self.inputs:
            x = leaves[i]
            env[slot] = x._data if type(x) is Tensor or isinstance(x, Tensor) else x
        for step in self.steps:
            step()
        return self._rebuild(self.result)

    def _rebuild(self, spec: Any) -> Any:
        kind = spec[0]
        if kind == "s":
            return _wrap(self.env[spec[1]].copy())
        if kind == "x":
            return spec[1]
        if kind == "v":
            return spec[1]
        if kind == "seq":
            items = [self._rebuild(s) for s in spec[2]]
            return items if spec[1] is list else spec[1](items)
        return {k: self._rebuild(v) for k, v in spec[1].items()}


# NOTE (_broadcast): a ufunc whose operand broadcasts (a bias row, a column of row maxima)
# allocates iterator buffers of up to 32 KiB on every call; copyto broadcasts without them. So
# the kernels first copy the broadcast operand out to the full shape, then apply the ufunc to
# operands of one shape: the same elementwise arithmetic, so the same bits, and no allocation.


_NOT_RUN = object()


class _CudaGraphs:
    """Replay on CuPy through CUDA graphs. UNTESTED: written without a GPU to run it on.

    The plan's array steps (forwards, rules, fits, sums, seeds) between two Python steps
    (deliveries into ``.grad``, optimizer and scheduler calls) are captured once each into a CUDA
    graph (CuPy stream capture), then every replay launches the graphs, running the Python steps
    between them on the same stream. The inputs are copied into static buffers first, since a
    graph reads fixed addresses. The first replay runs plainly (so that the memory pool holds
    blocks of every size) and captures afterwards; any error in capturing leaves the plan on
    plain replays, with a warning. Plans with dropout masks (drawn on the host) are not captured.
    """

    CAPTURED = frozenset({"fwd", "rule", "fit", "add", "seed"})

    @staticmethod
    def applies(plan: _Plan) -> bool:
        xp = plan.ns.xp
        return xp is not np and xp.__name__ == "cupy" and "mask" not in plan.kinds

    def __init__(self, plan: _Plan) -> None:
        self.plan = plan
        self.cp = plan.ns.xp
        self.stream: Any = None
        self.segments: list[tuple[bool, list, Any]] | None = None  # (graph?, steps, graph)
        self.static: dict[int, Any] = {}
        self.failed = False
        self.runs = 0

    def run(self, leaves: list) -> Any:
        if self.failed:
            return _NOT_RUN
        self.runs += 1
        if self.runs == 1:
            return _NOT_RUN  # a plain replay first (see the class docstring)
        plan, env = self.plan, self.plan.env
        if self.segments is None:
            try:
                self._capture(leaves)
            except Exception as e:  # noqa: BLE001 - any failure leaves plain replays
                self.failed = True
                warnings.warn(
                    f"tm.compile: CUDA graph capture failed ({type(e).__name__}: {e}); the "
                    "plan replays without graphs",
                    RuntimeWarning,
                    stacklevel=4,
                )
                return _NOT_RUN
        with self.stream:
            for i, slot in plan.inputs:
                x = leaves[i]
                self.static[slot][...] = x._data if isinstance(x, Tensor) else x
                env[slot] = self.static[slot]
            for captured, steps, graph in self.segments:
                if captured:
                    graph.launch(self.stream)
                else:
                    for step in steps:
                        step()
            out = plan._rebuild(plan.result)
        self.stream.synchronize()
        return out

    def _capture(self, leaves: list) -> None:
        cp, plan, env = self.cp, self.plan, self.plan.env
        self.stream = cp.cuda.Stream(non_blocking=True)
        # deliveries only set .grad, which no array step reads: the array steps on either side
        # of them make one graph, and the deliveries follow it
        segments: list[tuple[bool, list, Any]] = []
        arrays: list = []
        after: list = []

        def flush() -> None:
            if arrays:
                segments.append((True, list(arrays), None))
            if after:
                segments.append((False, list(after), None))
            arrays.clear()
            after.clear()

        for kind, step in zip(plan.kinds, plan.steps, strict=True):
            if kind in self.CAPTURED:
                arrays.append(step)
            elif kind == "deliver":
                after.append(step)
            else:
                flush()
                segments.append((False, [step], None))
        flush()
        for i, slot in plan.inputs:
            x = leaves[i]
            self.static[slot] = cp.array(x._data if isinstance(x, Tensor) else x)
            env[slot] = self.static[slot]
        graphs = []
        with self.stream:
            for captured, steps, _ in segments:
                if not captured:
                    graphs.append((False, steps, None))
                    continue
                self.stream.begin_capture()
                try:
                    for step in steps:
                        step()
                finally:
                    graph = self.stream.end_capture()
                graphs.append((True, steps, graph))
        self.segments = graphs


class _Arena:
    """The memory of the plans of one compiled function. Its plans never run at once and
    every buffer but a gradient handed out as ``.grad`` is written before it is read in each
    replay, so all the plans share one block, as large as the largest plan needs (an epoch's
    last, smaller batch adds no memory). The gradients handed out outlive the call: one buffer
    per parameter, which the plans share. ``release`` (before a trace, which runs eagerly)
    frees both; each plan builds itself again on its next run."""

    ALIGN = 64  # bytes: every buffer starts on a cache line

    def __init__(self) -> None:
        self.block: Any = None
        self.size = 0
        self.generation = 0
        self.plans: list[_Plan] = []
        self.grads: dict[tuple, tuple[Tensor, Any]] = {}  # (id, shape, dtype) -> (t, buffer)

    def release(self) -> None:
        for plan in self.plans:
            plan.drop()
        self.block, self.size = None, 0
        self.grads.clear()
        self.generation += 1

    def grow(self, nbytes: int) -> None:
        self.release()
        self.block, self.size = backend.aligned_block(nbytes, self.ALIGN), nbytes

    def grad_buffer(self, t: Tensor, shape: tuple, dtype: Any) -> Any:
        """The buffer handed out as ``t.grad``: the array ``t.grad`` holds now when it fits
        (the traced call's own gradient, which the replays then overwrite), else a new one."""
        shape, dtype = tuple(shape), np.dtype(dtype)
        key = (id(t), shape, dtype)
        hit = self.grads.get(key)
        if hit is None:
            now = None if t.grad is None else t.grad._data
            if not (
                type(now) is _ndarray
                and now.base is None
                and now.flags.c_contiguous
                and now.flags.writeable
                and now.shape == shape
                and now.dtype == dtype
                and all(now is not b for _, b in self.grads.values())
            ):
                now = np.empty(shape, dtype)
            hit = self.grads[key] = (t, now)  # t kept: its id stays its own
        return hit[1]


class _Kernels:
    """Buffer-reusing replacements for the events of the common ops.

    Each kernel repeats its op's eager arithmetic call for call (the same numpy functions on
    the same operands, in the same order), writing into buffers allocated here once: the
    results are those of eager mode bit for bit. A forward is replaced only together with its
    rule, since the two share buffers instead of a ``saved`` tuple. Buffers are never shared
    between slots, except where an op writes over an input that nothing else reads (ReLU on
    a linear layer's output, a mask multiplied into a gradient), as eager code does in place.
    """

    def __init__(self, plan: _Plan) -> None:
        self.owner = plan
        self.env = plan.env
        self.meta = plan.trace.meta
        self.uses = plan.uses
        self.arena = plan.arena
        self.offset = 0  # bytes of the arena taken so far
        self.overflow = False  # True: the arena is too small, these buffers are placeholders
        self.sealed = False  # True once the plan is built
        self.fixed: dict[int, Any] = {}  # slot -> its buffer (the same array every replay)
        self.rules: dict[int, Callable[[tuple, tuple], Callable[[], None]]] = {}
        self.seeds: set[int] = set()
        self.pool: dict[tuple, Any] = {}
        # the gradients handed out as .grad live outside the arena
        # (an accumulation reads .grad, so its gradient must not be computed into it)
        events = plan.trace.events
        self.leaf_of = {e[2]: e[1] for e in events if e[0] == "deliver" and e[4] == "set"}

    def _take(self, shape: tuple, dtype: Any) -> Any:
        """A buffer in the arena (while the arena is too small, a placeholder: this pass only
        sizes the arena)."""
        dtype = np.dtype(dtype)
        nbytes = math.prod(shape) * dtype.itemsize
        start = self.offset
        self.offset = start + -(-nbytes // _Arena.ALIGN) * _Arena.ALIGN
        block = self.arena.block
        if self.sealed:  # asked for during a replay: outside the arena
            return np.empty(shape, dtype)
        if block is None or self.offset > self.arena.size:
            self.overflow = True
            return backend.placeholder(shape, dtype)
        return block[start : start + nbytes].view(dtype).reshape(shape)

    def buffer(self, slot: int, shape: tuple | None = None, dtype: Any = None) -> Any:
        """A new buffer for ``slot`` (or a scratch one when slot is -1)."""
        if slot >= 0:
            shape, dtype = self.meta[slot]
        leaf = self.leaf_of.get(slot)
        if leaf is not None:
            array = self.arena.grad_buffer(leaf, shape, dtype)
        else:
            array = self._take(shape, dtype)
        if slot >= 0:
            self.fixed[slot] = array
            self.env[slot] = array
        return array

    def scratch(self, shape: tuple, dtype: Any, k: int = 0) -> Any:
        """A temporary buffer shared by every kernel: its contents last one kernel call only;
        ``k`` tells apart the temporaries of one shape that a call uses at once."""
        key = (tuple(shape), np.dtype(dtype), k)
        array = self.pool.get(key)
        if array is None:
            array = self.pool[key] = self._take(shape, dtype)
        return array

    def alias(self, slot: int, array: Any) -> None:
        self.fixed[slot] = array
        self.env[slot] = array

    def owned(self, slot: int) -> bool:
        """True when ``slot`` is a buffer of this plan read by exactly one event."""
        return slot in self.fixed and slot not in self.seeds and self.uses.get(slot, 0) == 1

    def plan(self, events: list[tuple]) -> dict[int, Callable[[], None] | None]:
        out: dict[int, Callable[[], None] | None] = {}
        if self.owner.ns is not backend.NUMPY:
            return out
        for index, e in enumerate(events):
            kind = e[0]
            step = None
            if kind == "fwd":
                step = self.forward(index, e)
            elif kind == "rule" and e[1] in self.rules:
                step = self.rules.pop(e[1])(e[2], e[3], e[4])
            elif kind == "seed":
                self.seeds.add(e[1])
                self.alias(e[1], e[2])
                out[index] = None
                continue
            elif kind == "deliver":
                step = self.deliver(e)
            elif kind == "call":
                step = self.call(e)
            if step is not None:
                out[index] = step
        return out

    # ------------------------------------------------------------ helpers

    def _array(self, ref: tuple) -> Callable[[], Any]:
        return _getter(ref, self.env)

    def _float_arrays(self, refs: tuple) -> bool:
        """True when every operand is a floating numpy array."""
        for r in refs:
            if r[0] == "x" and type(r[1]._data) is not _ndarray:
                return False
            dtype = self._dtype(r)
            if dtype is None or dtype.kind != "f":
                return False
        return True

    @staticmethod
    def _mm(n: int, m: int) -> Callable:
        """The product function ns.mm uses for an (n, m) result, given an out= buffer."""
        return np.dot if n * m <= backend._DOT_MAX else np.matmul

    # ------------------------------------------------------------ forwards

    def forward(self, index: int, e: tuple) -> Callable[[], None] | None:
        _, op, refs, params, out = e
        if op is O.LINEAR and len(refs) in (2, 3) and not params:
            return self.linear(index, refs, out)
        if op is O.MLP:
            return self.mlp(index, refs, params, out)
        if op is O.CROSS_ENTROPY and set(params) <= {"target", "reduction"}:
            return self.cross_entropy(index, refs, params, out)
        if op is O.MSE_LOSS and set(params) <= {"reduction"}:
            return self.mse(index, refs, params, out)
        if op.name in ("relu", "tanh", "sigmoid") and not params:
            return self.activation(index, op.name, refs, out)
        return None

    def linear(self, index: int, refs: tuple, out: int) -> Callable[[], None] | None:
        if not self._float_arrays(refs):
            return None
        x_shape, dtype = self._shape(refs[0]), self._dtype(refs[0])
        w_shape = self._shape(refs[1])
        if len(x_shape) != 2 or any(self._dtype(r) != dtype for r in refs):
            return None
        n, k = x_shape
        m = w_shape[0]
        get_x, get_w = self._array(refs[0]), self._array(refs[1])
        get_b = self._array(refs[2]) if len(refs) == 3 else None
        z = self.buffer(out)
        mm = self._mm(n, m)
        add, copyto = np.add, np.copyto

        if get_b is None:

            def fwd() -> None:
                mm(get_x(), get_w().T, out=z)

        else:
            rows = self.scratch((n, m), dtype)

            def fwd() -> None:
                mm(get_x(), get_w().T, out=z)
                copyto(rows, get_b())  # NOTE: see _broadcast
                add(z, rows, out=z)  # ns.iadd(out, b)

        ones = backend.NUMPY.constant("ones", n, dtype)

        def rule(g_slot: int, needs: tuple, outs: tuple) -> Callable[[], None]:
            # dx = G W, dW = G^T x, db = sum of G over the batch (the linear op's rule)
            env = self.env
            gx = self.buffer(outs[0]) if needs[0] else None
            gw = self.buffer(outs[1]) if needs[1] else None
            gb = self.buffer(outs[2]) if len(outs) == 3 and needs[2] else None
            mm_x, mm_w = self._mm(n, k), self._mm(m, k)
            dot = np.dot

            def bwd() -> None:
                g = env[g_slot]
                if gx is not None:
                    mm_x(g, get_w(), out=gx)
                if gw is not None:
                    mm_w(g.T, get_x(), out=gw)
                if gb is not None:
                    dot(ones, g, out=gb)

            return bwd

        self.rules[index] = rule
        return fwd

    def activation(self, index: int, name: str, refs: tuple, out: int):
        if not self._float_arrays(refs) or refs[0][0] != "s":
            return None
        src = refs[0][1]
        shape, dtype = self.meta[src]
        if self.owned(src):
            y = self.fixed[src]  # nothing else reads the pre-activation: overwrite it
            self.alias(out, y)
        else:
            y = self.buffer(out)
        env = self.env
        scratch = [self.scratch(shape, dtype, k) for k in range(3 if name == "sigmoid" else 1)]
        mask = self.scratch(shape, bool)
        fwd_into = _ACT_FORWARD[name]

        def fwd() -> None:
            fwd_into(env[src], y, scratch, mask)

        vjp_into = _ACT_VJP[name]

        def rule(g_slot: int, needs: tuple, outs: tuple) -> Callable[[], None]:
            gx = self.fixed[g_slot] if self.owned(g_slot) else None
            if gx is None:
                gx = self.buffer(outs[0])
            else:
                self.alias(outs[0], gx)

            def bwd() -> None:
                vjp_into(env[g_slot], y, gx, scratch[0], mask)

            return bwd

        self.rules[index] = rule
        return fwd

    def mlp(self, index: int, refs: tuple, params: dict, out: int):
        if not self._float_arrays(refs) or len(self._shape(refs[0])) != 2:
            return None
        acts = params.get("acts")
        specs = [O.activation_spec(a) for a in acts]
        dtype = self._dtype(refs[0])
        if any(self._dtype(r) != dtype for r in refs):
            return None
        n = self._shape(refs[0])[0]
        getters = [self._array(r) for r in refs]
        layers = []  # per layer: (w getter, b getter, z buffer, out buffer, name, p, scratch)
        for i, spec in enumerate(specs):
            m, k = self._shape(refs[1 + 2 * i])
            z = self._take((n, m), dtype)
            name = None if spec is None else spec[0].name
            p = {} if spec is None else spec[1]
            if name is None:
                h = z
            elif name in _ACT_FORWARD and not p:
                h = z if name in ("relu", "tanh") else self._take((n, m), dtype)
            else:
                h = None  # computed by the table's forward (a new array each call)
            temps = 3 if name == "sigmoid" else (1 if name in _ACT_FORWARD else 0)
            scratch = [self.scratch((n, m), dtype, j) for j in range(temps)]
            mms = (self._mm(n, m), self._mm(m, k), self._mm(n, k))
            scratch.append(self.scratch((n, m), dtype, 3))  # the bias on every row (_broadcast)
            # (the last temporary; the activation's come first)
            layers.append([getters[1 + 2 * i], getters[2 + 2 * i], z, h, name, p, scratch, mms])
        last = layers[-1]
        if last[3] is None:
            return None  # the output would be a new array each call
        self.alias(out, last[3])
        mask = [self.scratch(lay[2].shape, bool) for lay in layers]
        get_x = getters[0]
        add = np.add
        table = O.ACTIVATIONS
        outs_now: list[Any] = [None] * len(layers)

        def fwd() -> None:
            h = get_x()
            for i, (get_w, get_b, z, y, name, p, scratch, mms) in enumerate(layers):
                mms[0](h, get_w().T, out=z)
                if z.size > _SMALL:
                    np.copyto(scratch[-1], get_b())
                    add(z, scratch[-1], out=z)
                else:  # a tiny broadcast buffer costs less than a second call
                    add(z, get_b(), out=z)
                if name is None:
                    h = z
                elif y is not None:
                    _ACT_FORWARD[name](z, y, scratch, mask[i])
                    h = y
                else:
                    h = table[name].forward(backend.NUMPY, z, **p)
                outs_now[i] = h

        ones = backend.NUMPY.constant("ones", n, dtype)

        def rule(g_slot: int, needs: tuple, outs: tuple) -> Callable[[], None]:
            env = self.env
            lowest = needs.index(True)
            grads = [
                self.buffer(s) if s is not None and needs[j] else None for j, s in enumerate(outs)
            ]
            # g W of each layer, read by the layer below only: shared temporaries, alternating
            # so that a layer without activation never writes the buffer it reads
            down = [
                self.scratch((n, self._shape(refs[1 + 2 * i])[1]), dtype, 5 + i % 2)
                if lowest < 2 * i + 1  # the loop goes below layer i
                else None
                for i in range(len(layers))
            ]
            # the activation's derivative is written over g where g is this kernel's own (every
            # layer but the top, and the top when nothing else reads the incoming gradient)
            top = len(layers) - 1
            gact = [None] * len(layers)
            if layers[top][4] is not None and not self.owned(g_slot):
                gact[top] = self.scratch(layers[top][2].shape, dtype, 4)
            if needs[0] and outs[0] is not None:
                # the input's gradient is the last product: write it into the slot's buffer
                down[0] = self.buffer(outs[0])
                grads[0] = None

            def bwd() -> None:
                g = env[g_slot]
                for i in range(len(layers) - 1, -1, -1):
                    get_w, _, z, y, name, p, scratch, mms = layers[i]
                    at = 2 * i + 1
                    if name is not None:
                        if y is not None:
                            into = g if gact[i] is None else gact[i]
                            _ACT_VJP[name](g, y, into, scratch[0], mask[i])
                            g = into
                        else:
                            g = table[name].vjp(backend.NUMPY, g, z, outs_now[i], **p)
                    if grads[at] is not None:
                        below = get_x() if i == 0 else outs_now[i - 1]
                        mms[1](g.T, below, out=grads[at])
                    if grads[at + 1] is not None:
                        np.dot(ones, g, out=grads[at + 1])
                    if lowest >= at:
                        break
                    mms[2](g, get_w(), out=down[i])
                    g = down[i]

            return bwd

        self.rules[index] = rule
        return fwd

    def cross_entropy(self, index: int, refs: tuple, params: dict, out: int):
        target = params.get("target")
        reduction = params.get("reduction", "mean")
        if not self._float_arrays(refs) or reduction not in ("mean", "sum") or refs[0][0] != "s":
            return None
        src = refs[0][1]
        (n, c), dtype = self.meta[src]
        if isinstance(target, _SlotRef):
            t_shape, t_dtype = self.meta[target.slot]
            t_slot = target.slot
            get_t = lambda: self.env[t_slot]  # noqa: E731
        elif backend.is_array(target) and type(target) is _ndarray:
            t_shape, t_dtype = target.shape, target.dtype
            get_t = lambda: target  # noqa: E731
        else:
            return None
        if tuple(t_shape) != (n,) or t_dtype.kind not in "iu":
            return None
        env = self.env
        unsigned = np.dtype(f"u{t_dtype.itemsize}")
        transposed = self.scratch((c, n), dtype) if c <= 64 else None
        row_max = self.scratch((n,), dtype, 0)
        shifted = self.scratch((n, c), dtype)
        exps = self._take((n, c), dtype)
        sums = self._take((n,), dtype)
        picks = self._take((n,), np.result_type(np.int64, t_dtype))
        picked = self.scratch((n,), dtype, 1)
        losses = self.scratch((n,), dtype, 2)
        loss = self.buffer(out)
        starts = backend.NUMPY.constant("starts", n, c)
        ones = backend.NUMPY.constant("ones", c, dtype)
        flat_shifted, col_max, col_sums = shifted.reshape(-1), row_max[:, None], sums[:, None]
        maximum, subtract, exp, dot, log = np.maximum, np.subtract, np.exp, np.dot, np.log

        def fwd() -> None:
            logits = env[src]
            if transposed is not None:  # ns.row_max: a maximum down a transposed copy
                np.copyto(transposed, logits.T)
                maximum.reduce(transposed, axis=0, out=row_max)
            else:
                maximum.reduce(logits, axis=1, out=row_max)
            np.copyto(shifted, col_max)  # see _broadcast
            subtract(logits, shifted, out=shifted)
            exp(shifted, out=exps)
            dot(exps, ones, out=sums)
            target = get_t()
            if n and not int(target.view(unsigned).max()) < c:  # as F.cross_entropy checks
                raise IndexError(f"cross_entropy: a target is out of bounds for {c} classes")
            np.add(starts, target, out=picks)
            log(sums, out=losses)
            flat_shifted.take(picks, out=picked, mode="clip")  # in range: checked
            subtract(losses, picked, out=losses)
            np.add.reduce(losses, axis=None, out=loss)
            if reduction == "mean":
                np.divide(loss, n, out=loss)

        def rule(g_slot: int, needs: tuple, outs: tuple) -> Callable[[], None]:
            dz = self.buffer(outs[0])
            flat = dz.reshape(-1)
            scale = self.scratch((), dtype)
            taken = self.scratch((n,), dtype, 0)

            def bwd() -> None:
                np.copyto(dz, col_sums)  # see _broadcast
                np.divide(exps, dz, out=dz)
                flat.take(picks, out=taken, mode="clip")  # ns.sub_at: flat[picks] -= 1
                subtract(taken, 1, out=taken)
                flat[picks] = taken
                g = env[g_slot]
                if reduction == "mean":
                    np.divide(g, n, out=scale)
                    np.multiply(dz, scale, out=dz)
                else:
                    np.multiply(dz, g, out=dz)

            return bwd

        self.rules[index] = rule
        return fwd

    def mse(self, index: int, refs: tuple, params: dict, out: int):
        reduction = params.get("reduction", "mean")
        if not self._float_arrays(refs) or reduction not in ("mean", "sum"):
            return None
        shape, dtype = self._shape(refs[0]), self._dtype(refs[0])
        if self._shape(refs[1]) != shape or self._dtype(refs[1]) != dtype:
            return None
        get_p, get_t = self._array(refs[0]), self._array(refs[1])
        diff = self._take(shape, dtype)
        square = self.scratch(shape, dtype)
        loss = self.buffer(out)
        count = math.prod(shape)

        def fwd() -> None:
            np.subtract(get_p(), get_t(), out=diff)
            np.multiply(diff, diff, out=square)
            np.add.reduce(square, axis=None, out=loss)
            if reduction == "mean":
                np.divide(loss, count, out=loss)

        def rule(g_slot: int, needs: tuple, outs: tuple) -> Callable[[], None]:
            env = self.env
            gp = self.buffer(outs[0]) if needs[0] else self.scratch(shape, dtype)
            gt = self.buffer(outs[1]) if needs[1] else None
            scale = self.scratch((), dtype)

            def bwd() -> None:
                # gp = diff * (g / n * 2), and -gp for the target
                g = env[g_slot]
                if reduction == "mean":
                    np.divide(g, count, out=scale)
                    np.multiply(scale, 2, out=scale)
                else:
                    np.multiply(g, 2, out=scale)
                np.multiply(diff, scale, out=gp)
                if gt is not None:
                    np.negative(gp, out=gt)

            return bwd

        self.rules[index] = rule
        return fwd

    def _shape(self, ref: tuple) -> tuple:
        return tuple(ref[1]._data.shape) if ref[0] == "x" else self.meta[ref[1]][0]

    def _dtype(self, ref: tuple) -> Any:
        return ref[1]._data.dtype if ref[0] == "x" else self.meta[ref[1]][1]

    # ------------------------------------------------------------ delivery and the optimizer

    def deliver(self, e: tuple) -> Callable[[], None] | None:
        _, t, g, fresh, mode = e
        if mode != "set" or g not in self.fixed or g in self.seeds:
            return None
        source = self.fixed[g]
        target = self.arena.grad_buffer(t, source.shape, source.dtype)
        wrapper = _wrap(target)
        if not fresh or source is not target:
            # eager copies (the rule handed back its own incoming gradient or a view), or the
            # gradient was computed in the arena (written over a buffer nothing else reads)

            def deliver_copy() -> None:
                np.copyto(target, source)
                t.grad = wrapper

            return deliver_copy

        def deliver() -> None:
            t.grad = wrapper

        return deliver

    def call(self, e: tuple) -> Callable[[], None] | None:
        _, orig, what, obj, args, kwargs = e
        from .optim.sgd import SGD

        if what != "step" or type(obj) is not SGD or args or kwargs:
            return None
        groups = obj.param_groups
        blocks: dict[int, tuple] = {}  # id(p) -> (data, grad, [(data rows, grad rows, tmp)])
        multiply, subtract = np.multiply, np.subtract

        def temp(data: Any) -> tuple[int, Any]:
            # NOTE: a large parameter is updated a block of rows at a time, through one small
            # temporary that stays in the cache (elementwise: the same bits as one call)
            rows = max(1, _SGD_BLOCK // max(1, math.prod(data.shape[1:])))
            if data.ndim < 2 or data.shape[0] <= rows:
                return rows, self.scratch(data.shape, data.dtype)
            return rows, self.scratch((rows, *data.shape[1:]), data.dtype)

        for group in groups:  # the temporaries are in the arena: take them now
            for p in group["params"]:
                if type(p._data) is _ndarray:
                    temp(p._data)

        def pieces(p: Any, data: Any, g: Any) -> list:
            cached = blocks.get(id(p))
            if cached is not None and cached[0] is data and cached[1] is g:
                return cached[2]
            rows, tmp = temp(data)
            out = []
            if tmp.shape == data.shape:
                out.append((data, g, tmp))
            else:
                for i in range(0, data.shape[0], rows):
                    d, gr = data[i : i + rows], g[i : i + rows]
                    out.append((d, gr, tmp[: len(d)]))
            blocks[id(p)] = (data, g, out)
            return out

        def sgd_step() -> None:
            for group in groups:
                if group["momentum"] != 0.0 or group["weight_decay"] != 0.0 or group["maximize"]:
                    orig(obj)
                    return
            for group in groups:
                lr = float(group["lr"])
                for p in group["params"]:
                    g = p.grad
                    if g is None:
                        continue
                    g = g._data
                    data = p._data
                    if type(g) is not _ndarray or data.dtype != g.dtype or data.shape != g.shape:
                        data -= lr * g
                        continue
                    for d, gr, tmp in pieces(p, data, g):
                        multiply(gr, lr, out=tmp)  # data -= lr * g
                        subtract(d, tmp, out=d)

        return sgd_step


# the forwards and derivatives of the table's activations written into buffers, as the table
# computes them: fwd(x, out, scratch, mask), vjp(g, out, gx, tmp, mask)


def _relu_fwd(x, out, scratch, mask):
    np.maximum(x, 0, out=out)


def _relu_vjp(g, out, gx, tmp, mask):
    # g * (out > 0): the bools as 0.0 and 1.0 first, as numpy casts them for the product
    # NOTE: copyto casts without the temporary buffer a mixed-dtype multiply would allocate
    np.greater(out, 0, out=mask)
    np.copyto(tmp, mask)
    np.multiply(g, tmp, out=gx)


def _tanh_fwd(x, out, scratch, mask):
    np.tanh(x, out=out)


def _tanh_vjp(g, t, gx, tmp, mask):
    np.multiply(t, t, out=tmp)  # g * (1 - t * t)
    np.subtract(1, tmp, out=tmp)
    np.multiply(g, tmp, out=gx)


def _sigmoid_fwd(x, out, scratch, mask):
    # e = exp(-|x|); where(x >= 0, 1, e) / (e + 1), as _sigmoid_values
    e, num, den = scratch[:3]
    np.abs(x, out=e)
    np.negative(e, out=e)
    np.exp(e, out=e)
    np.greater_equal(x, 0, out=mask)
    np.add(e, 1, out=den)
    np.divide(e, den, out=out)  # x (which may be out) is not read from here on
    np.divide(1, den, out=out, where=mask)


def _sigmoid_vjp(g, s, gx, tmp, mask):
    np.multiply(g, s, out=gx)  # g * s * (1 - s)
    np.subtract(1, s, out=tmp)
    np.multiply(gx, tmp, out=gx)


_SGD_BLOCK = 8192  # elements of a parameter the plain SGD kernel updates per call
_SMALL = 256  # elements up to which a bias is added by broadcasting (see _broadcast)

_ACT_FORWARD = {"relu": _relu_fwd, "tanh": _tanh_fwd, "sigmoid": _sigmoid_fwd}
_ACT_VJP = {"relu": _relu_vjp, "tanh": _tanh_vjp, "sigmoid": _sigmoid_vjp}


# ---------------------------------------------------------------- the public wrapper


class _Entry:
    """The traces and plans of one guard key."""

    def __init__(self) -> None:
        self.leaves: list[tuple[Tensor, bool]] | None = None  # and whether its grad matters
        self.cared: list[Tensor] = []
        self.states: dict[tuple, Any] = {}


class CompiledFunction:
    """A function whose calls replay a recorded plan (see the module docstring)."""

    def __init__(self, fn: Callable, fullgraph: bool = False) -> None:
        self.fn = fn
        self.fullgraph = fullgraph
        self._entries: dict[tuple, _Entry] = {}
        self._eager_reason: str | None = None
        self._arena = _Arena()
        functools.update_wrapper(self, fn, updated=())

    def _fallback(self, reason: str) -> None:
        self._eager_reason = reason
        self._entries.clear()
        self._arena.release()
        self._arena.plans.clear()
        message = f"tm.compile: {_name(self.fn)} runs eagerly from now on: {reason}"
        if self.fullgraph:
            raise RuntimeError(message)
        warnings.warn(message, RuntimeWarning, stacklevel=3)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._eager_reason is not None or _ACTIVE:
            return self.fn(*args, **kwargs)  # inside another trace: recorded by that one
        leaves, key = _guard_key(args, kwargs)
        entry = self._entries.get(key)
        pattern = None
        if entry is not None and entry.leaves is not None:
            cared = entry.cared
            pattern = tuple([t.grad is None for t in cared]) if cared else ()
            state = entry.states.get(pattern)
            if type(state) is _Plan:
                return state.run(leaves)
        if entry is None:
            if len(self._entries) >= _CACHE_LIMIT:
                self._fallback(f"more than {_CACHE_LIMIT} different input signatures")
                return self.fn(*args, **kwargs)
            entry = self._entries[key] = _Entry()
        self._arena.release()  # the trace runs eagerly: it needs the memory the plans hold
        trace = _Trace(leaves)
        result = trace.run(self.fn, args, kwargs)
        if trace.reason is not None:
            self._fallback(f"the step uses {trace.reason}")
            return result
        if entry.leaves is None:
            entry.leaves = trace.cares()
            entry.cared = [t for t, care in entry.leaves if care]
        pattern = trace.entry_pattern(entry.leaves)
        if pattern is None:
            self._fallback("the step touches different parameters from call to call")
            return result
        previous = entry.states.get(pattern)
        if previous is None:
            entry.states[pattern] = trace
        elif previous.sig == trace.sig:
            entry.states[pattern] = _Plan(trace, self._arena)
        else:
            self._fallback(
                "a different sequence of ops or constants than on the call before, with the "
                "same inputs (data-dependent Python control flow, a changing Python value or "
                "random numbers)"
            )
        return result

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        return self if obj is None else functools.partial(self, obj)


def _name(fn: Any) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__name__


class CompiledModule:
    """A module whose calls are compiled: replayed under no_grad (or with no parameter that
    requires grad); run eagerly when they are recorded for a backward, or inside a compiled
    training step (which then records them)."""

    def __init__(self, module: Any, **options: Any) -> None:
        object.__setattr__(self, "_orig_mod", module)
        object.__setattr__(self, "_compiled", CompiledFunction(module.__call__, **options))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        module = self._orig_mod
        if _ACTIVE or (
            _Mode.grad_enabled
            and (
                any(p.requires_grad for p in module.parameters())
                or any(isinstance(a, Tensor) and a.requires_grad for a in args)
            )
        ):
            return module(*args, **kwargs)
        return self._compiled(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._orig_mod, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._orig_mod, name, value)

    def __repr__(self) -> str:
        return f"CompiledModule({self._orig_mod!r})"


def compile(
    model: Any = None,
    *,
    fullgraph: bool = False,
    dynamic: Any = None,
    backend: Any = None,
    mode: Any = None,
    options: Any = None,
    disable: bool = False,
) -> Any:
    """Compile a function (a training step, forward, backward and optimizer update) or a
    module, as ``torch.compile``: the first calls run eagerly and record, later calls with the
    same guards replay the recorded plan."""
    if model is None:
        return lambda fn: compile(
            fn,
            fullgraph=fullgraph,
            dynamic=dynamic,
            backend=backend,
            mode=mode,
            options=options,
            disable=disable,
        )
    if disable:
        return model
    from .nn.modules.module import Module

    if isinstance(model, Module):
        return CompiledModule(model, fullgraph=fullgraph)
    if not callable(model):
        raise TypeError(f"tm.compile expects a callable or a Module, got {type(model).__name__}")
    return CompiledFunction(model, fullgraph=fullgraph)
