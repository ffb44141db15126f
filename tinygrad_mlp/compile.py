"""``tm.compile``: trace a step once, then replay it as a fixed plan of array operations.

The first call of a compiled function runs it eagerly while a recorder watches through the seams
the library offers: ``apply``'s recorder sees every op application; the engine's ``observer``
(``_TracedRun``, a subclass of its ``_Run``) sees every seed, derivative rule, gradient fit, sum
and delivery of the backward pass; ``autograd.graph._observer`` sees value reads on the host,
in-place changes, tensors made outside the ops and the calls marked ``replayable`` (an optimizer's
``step`` and ``zero_grad``, ``Module.zero_grad``, an LR scheduler's ``step``, ``clip_grad_*``,
replayed as a whole); ``backend.observer`` sees moves between devices and random draws
(``backend.draw``, as dropout draws its mask). Nothing of another module is replaced.

The second call with the same guards traces again and compares the two recordings: equal, they
become a plan; different, the step depends on something the tracer cannot see (a Python value,
data-dependent branching) and the function stays eager. From the third call on the plan
replays: one Python function written from the recording and compiled once, a line per event
calling an op's own registry forward or rule on arrays (or a recorded call, draw or move), with
no Tensor, Node or engine in between; the arithmetic is the eager one, bit for bit, and no
formula is written here a second time.

Guards (a change re-traces): the shapes, dtypes and devices of tensor and array arguments,
``requires_grad`` of tensor arguments, the values of other arguments, the grad mode, and
which gradients are None when the call starts (so accumulation over several calls gets its
own plan). Steps that read values out of the graph (``.item()``, ``float()``, ``bool()``,
``.numpy()``, ``.tolist()``), change tensors in place, draw random numbers other than through
``backend.draw``, use hooks, ``create_graph`` or ``autograd.grad`` fall back to eager with a
one-time warning naming the reason.

A replay hands back new tensors (no grad_fn) for returned tensors, and sets ``.grad`` of the
parameters as eager mode does. ``tm.compile(module)`` gives a ``CompiledModule``: its calls
replay under ``no_grad`` (inference), and run eagerly when they are recorded for a backward, or
traced inside a compiled step.
"""

from __future__ import annotations

import builtins
import dataclasses
import functools
import math
import re
import warnings
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from . import backend
from . import ops as O
from ._tensor import Tensor
from .autograd import engine, graph
from .autograd.grad_mode import _Mode
from .autograd.graph import _wrap
from .autograd.namespace import ArrayNamespace
from .backend import np

__all__ = ["compile", "CompiledFunction", "CompiledModule"]

_ndarray = np.ndarray
_CACHE_LIMIT = 8  # guard combinations per function before it gives up and stays eager
_ACTIVE: list[_Trace] = []  # the trace being recorded (at most one)
# a step built again (a new model of the same shapes) writes the same source: compiled once
_SLOT = re.compile(r"\bs\d+\b")  # an array of the plan in its source
_compiled = functools.lru_cache(64)(lambda source: builtins.compile(source, "<plan>", "exec"))


@dataclasses.dataclass(frozen=True)
class _SlotRef:
    """An op parameter that is an array of the plan (a step input or an intermediate)."""

    slot: int


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


def _guard_key(args: tuple, kwargs: dict) -> tuple[Any, tuple]:
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
            return args, tuple(sig)
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
        self.meta: list[tuple] = []  # slot -> shape
        self.keep: list = []  # everything whose id is a key, kept alive for the trace
        self.node_event: dict[int, int] = {}  # id(node) -> index of its forward event
        self.unresolved: list[tuple[Tensor, int]] = []
        self.entry: dict[int, tuple[Tensor, bool]] = {}  # leaf -> grad was None at entry
        self.reason: str | None = None
        self.opaque: set[int] = set()  # arrays of tensors made outside the recorded ops
        self.depth = 0  # > 0 inside a call replayed as a whole (optimizer step, ...)
        self.inputs: list[tuple[int, int, bool]] = []  # (position, slot, whether a tensor)
        for i, x in enumerate(inputs):
            tensor = isinstance(x, Tensor)
            array = x._data if tensor else x
            slot = self.find(array)
            if slot is None:
                slot = self._new(array)
                self.events.append(("in", i, slot, tensor))
            self.inputs.append((i, slot, tensor))
        self.result: Any = None
        self.sig: list | None = None
        self.ns = backend.namespace_of(self.refs[0]()) if inputs else backend.NUMPY

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
        self.meta.append(tuple(getattr(array, "shape", ())))
        return slot

    def slot(self, array: Any) -> int:
        """The slot of an array, numbering it if new."""
        slot = self.find(array)
        return self._new(array) if slot is None else slot

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

    # ------------------------------------------------------------ what the seams report

    def on_apply(self, op: O.Op, inputs: tuple, params: dict, t: Tensor) -> None:
        """``apply``'s recorder: an op applied to tensors."""
        if self.depth or self.reason:
            return
        self._resolve()
        if op.custom is not None:
            self.fail(f"the custom autograd.Function {op.name!r}")
            return
        self.keep.extend(inputs)  # an input of no slot is read from its tensor at replay ("x")
        slots = [self.find(x._data) for x in inputs]
        refs = tuple(
            ("x", x) if s is None else ("s", s) for x, s in zip(inputs, slots, strict=True)
        )
        if any(r[0] == "x" and id(r[1]._data) in self.opaque for r in refs):
            self.fail(_OPAQUE)
            return
        slots = {k: self.find(v) for k, v in params.items() if backend.is_array(v)}
        params = {k: v if slots.get(k) is None else _SlotRef(slots[k]) for k, v in params.items()}
        self.events.append(("fwd", op, refs, params, self._new(t._data)))
        self.unresolved.append((t, len(self.events) - 1))

    def call(self, fn: Callable, args: tuple, kwargs: dict) -> Any:
        """A ``replayable`` call (an optimizer step, zero_grad, ...): run now, replayed whole."""
        if not (self.depth or self.reason):
            # an iterator argument (model.parameters()) is kept as a list, to be used again
            args = tuple(list(a) if isinstance(a, Iterator) else a for a in args)
            what, obj = fn.__name__, (args[0] if args else None)
            optimizer = hasattr(obj, "param_groups")
            if optimizer and what == "step" and (args[1:] or kwargs.get("closure") is not None):
                self.fail("optimizer.step(closure)")
            params = []
            if optimizer:
                params = [p for g in obj.param_groups for p in g["params"]]
            elif what == "zero_grad" and hasattr(obj, "parameters"):
                params = list(obj.parameters())
            # zero_grad(set_to_none=True) first: the gradient at entry does not matter
            clears = what == "zero_grad" and (args[1:2] or (kwargs.get("set_to_none", True),))[0]
            for p in params:
                self.touch(p, None if clears else ...)
            self.keep.append(args)
            self.events.append(("call", fn, args, kwargs))
        self.depth += 1
        try:
            return fn(*args, **kwargs)
        finally:
            self.depth -= 1

    def drew(self, fn: Callable, args: tuple, out: Any) -> None:
        """``backend.draw``: random numbers, drawn again by every replay."""
        if not (self.depth or self.reason):
            self.events.append(("draw", fn, args, self._new(out)))

    def rng(self) -> None:
        """Any other use of the global generator: its numbers would be baked into the plan."""
        if not self.depth:
            self.fail("random numbers from the global generator")

    def moved(self, array: Any, device: Any, out: Any) -> None:
        """``backend.to_device``: a host input moved to the device (a loss's labels) is a step
        of the plan, not a constant."""
        if not (self.depth or self.reason):
            src = self.find(array)
            if src is not None:
                self.events.append(("move", src, device, self._new(out)))

    def made(self, t: Tensor) -> None:
        """A tensor made outside the ops: a value of the data the plan could not recompute."""
        data = t._data
        if not (self.depth or self.reason) and self.find(data) is None:
            self.opaque.add(id(data))
            self.keep.append(data)

    def read(self, t: Tensor, what: str) -> None:
        data = t._data
        if not (self.depth or self.reason) and (
            self.find(data) is not None or id(data) in self.opaque
        ):
            self.fail(f"{what} on a tensor computed in the step (its value depends on the data)")

    def inplace(self, t: Tensor) -> None:
        if not self.depth:
            self.fail("an in-place tensor op")

    # ------------------------------------------------------------ the run

    def run(self, fn: Callable, args: tuple, kwargs: dict) -> Any:
        _ACTIVE.append(self)
        graph._recorder, graph._observer, backend.observer = self.on_apply, self, self
        engine.observer = functools.partial(_TracedRun, self)
        try:
            result = fn(*args, **kwargs)
        finally:
            graph._recorder = graph._observer = backend.observer = engine.observer = None
            _ACTIVE.pop()
        if self.depth:  # a backward stopped by an error that the step caught
            self.fail("an error inside backward")
        self._resolve()
        self.result = self._outputs(result)
        self.sig = self.signature() if self.reason is None else None
        # the arrays of the run are no longer needed (only their shapes, in meta)
        self.keep, self.slot_of, self.opaque, self.node_event, self.refs = [], {}, set(), {}, []
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
            return ("seq", type(value), [self._outputs(v) for v in value])
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
            fresh = g is not source and g.base is None  # the rule's own new array
            tr.events.append(("deliver", t, tr.find(g), fresh, "set" if t.grad is None else "acc"))
        super().deliver(t, g, ns, source, hooked)

    def finish(self) -> None:
        super().finish()
        if self.tr is not None:
            self.tr.depth -= 1


def _value_sig(value: Any, live: bool = False) -> Any:
    """A comparable rendering of a recorded value: arrays and tensors by content, or tensors by
    identity in the arguments of a replayed call (``live``: the call reads their values)."""
    if isinstance(value, Tensor) and live:
        return ("tensor", id(value))
    if isinstance(value, Tensor):
        return ("tensor", _array_sig(value._data), value.requires_grad)
    if backend.is_array(value):
        return _array_sig(value)
    if isinstance(value, tuple) and value and value[0] == "x" and not live:
        t = value[1]
        return ("x", id(t) if t.requires_grad else _array_sig(t._data))
    if isinstance(value, (list, tuple)):
        return tuple(_value_sig(v, live) for v in value)
    if isinstance(value, dict):
        return tuple((k, _value_sig(v, live)) for k, v in value.items())
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, (int, float, str, bool, type(None), _SlotRef, type, np.dtype)):
        return value
    return ("obj", id(value))


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
        return (kind, e[1], _value_sig(e[2], True), _value_sig(e[3], True))
    if kind == "seed":
        return (kind, e[1], _array_sig(e[2]))
    return tuple(_value_sig(v) if not isinstance(v, (int, str)) else v for v in e)


# ---------------------------------------------------------------- the plan


def _fit_array(ig: Any, shape: tuple, dtype: Any) -> Any:
    """ArrayNamespace.fit, with the input's shape and dtype as recorded."""
    if isinstance(ig, np.generic) or not hasattr(ig, "shape"):
        ig = np.asarray(ig, dtype=dtype)
    if ig.shape != shape:
        ig = backend.sum_to(ig, shape)
    return ig if ig.dtype == dtype else ig.astype(dtype)


class _Plan:
    """A trace turned into the source of one Python function, a line per event over the arrays
    of the step (``s<slot>``), compiled once; ``run(leaves)`` replays the step."""

    def __init__(self, trace: _Trace) -> None:
        self.names: dict[str, Any] = {"ns": trace.ns, "wrap": _wrap, "add": ArrayNamespace.add}
        self.lines = [("inputs", f"s{s} = leaves[{i}]{'._data' * t}") for i, s, t in trace.inputs]
        last = {e[1]: i for i, e in enumerate(trace.events) if e[0] == "rule"}  # forward: rule
        for i, e in enumerate(trace.events):
            if e[0] != "in":
                self.lines.append(self._line(trace, e, e[0] == "rule" and last[e[1]] == i))
        result = self._expr(trace.result, {slot for _, slot, _ in trace.inputs})
        # each array is let go after the line that uses it last, as eager mode frees it
        last_use = {v: i for i, (_, line) in enumerate(self.lines) for v in _SLOT.findall(line)}
        for v, i in last_use.items():
            if v not in _SLOT.findall(result):
                self.lines[i] = (self.lines[i][0], f"{self.lines[i][1]}; del {v}")
        body = "".join(f"    {line}\n" for _, line in self.lines)
        exec(_compiled(f"def run(leaves):\n{body}    return {result}"), self.names)  # names only
        self.run: Callable[[Any], Any] = self.names["run"]

    def name(self, value: Any) -> str:
        """A global name of the plan's function for ``value``."""
        self.names[f"c{len(self.names)}"] = value
        return f"c{len(self.names) - 1}"

    def _line(self, trace: _Trace, e: tuple, last: bool) -> tuple[str, str]:
        """An event as (what it does in words, a line of Python)."""
        kind, name = e[0], self.name
        if kind == "fwd":
            _, op, refs, params, out = e
            args = ["ns"] + [f"s{r[1]}" if r[0] == "s" else f"{name(r[1])}._data" for r in refs]
            for k, v in params.items():  # by keyword: a dict to unpack costs on every call
                args.append(f"{k}=s{v.slot}" if type(v) is _SlotRef else f"{k}={name(v)}")
            line = f"s{out}, k{out} = {name(op.forward)}({', '.join(args)})"
            if trace.ns is backend.NUMPY and trace.meta[out] == ():  # numpy made a scalar
                line += f"; s{out} = {name(np.asarray)}(s{out})"
            return f"{op.name} forward", line
        if kind == "rule":  # what forward saved is freed after its last rule
            _, at, g, needs, outs = e
            op, k = trace.events[at][1], f"k{trace.events[at][4]}"
            grads = "".join("_, " if s is None else f"s{s}, " for s in outs)
            line = f"{grads}= {name(op.backward)}(ns, s{g}, {k}, {name(needs)})"
            return f"{op.name} rule", line + f"; del {k}" * last
        if kind == "call":
            return e[1].__qualname__, f"{name(e[1])}(*{name(e[2])}, **{name(e[3])})"
        if kind == "deliver":
            _, t, g, fresh, mode = e
            t = name(t)
            if mode == "acc":
                return kind, f"{t}.grad = wrap(add({t}.grad._data, s{g}))"
            return kind, f"{t}.grad = wrap(s{g}{'' if fresh else '.copy()'})"
        return kind, {
            "fit": lambda: f"s{e[2]} = {name(_fit_array)}(s{e[1]}, {name(e[3])}, {name(e[4])})",
            "add": lambda: f"s{e[3]} = add(s{e[1]}, s{e[2]})",
            "move": lambda: f"s{e[3]} = {name(backend.to_device)}(s{e[1]}, {name(e[2])})",
            "draw": lambda: f"s{e[3]} = {name(backend.draw)}({name(e[1])}, *{name(e[2])})",
            "seed": lambda: f"s{e[1]} = {name(e[2])}",
        }[kind]()

    def _expr(self, spec: Any, inputs: set[int]) -> str:
        """The expression of the step's result (new tensors, a copy where it is an input)."""
        kind = spec[0]
        if kind == "s":
            return f"wrap(s{spec[1]}{'.copy()' * (spec[1] in inputs)})"
        if kind in ("x", "v"):
            return self.name(spec[1])
        if kind == "seq":
            items = "".join(f"{self._expr(s, inputs)}, " for s in spec[2])
            return f"[{items}]" if spec[1] is list else f"{self.name(spec[1])}([{items}])"
        items = "".join(f"{self.name(k)}: {self._expr(v, inputs)}, " for k, v in spec[1].items())
        return f"{{{items}}}"

    def parts(self, leaves: Any) -> list[tuple[str, Callable[[], Any]]]:
        """The lines of the plan, each to be run on its own, in order, with the step's arguments
        ``leaves`` (benchmarks/compile_parts.py): (what it does in words, a function)."""
        env = dict(self.names, leaves=leaves)
        code = [(what, builtins.compile(line, what, "exec")) for what, line in self.lines]
        return [(what, functools.partial(exec, c, env)) for what, c in code]


# ---------------------------------------------------------------- the public wrapper


@dataclasses.dataclass
class _Entry:
    """The traces and plans of one guard key."""

    leaves: list[tuple[Tensor, bool]] | None = None  # and whether its grad matters
    cared: list[Tensor] = dataclasses.field(default_factory=list)
    states: dict[tuple, Any] = dataclasses.field(default_factory=dict)


class CompiledFunction:
    """A function whose calls replay a recorded plan (see the module docstring)."""

    def __init__(self, fn: Callable, fullgraph: bool = False) -> None:
        self.fn = fn
        self.fullgraph = fullgraph
        self._entries: dict[tuple, _Entry] = {}
        self._eager_reason: str | None = None
        functools.update_wrapper(self, fn, updated=())

    def _fallback(self, reason: str) -> None:
        self._eager_reason = reason
        self._entries.clear()
        name = getattr(self.fn, "__qualname__", None) or type(self.fn).__name__
        message = f"tm.compile: {name} runs eagerly from now on: {reason}"
        if self.fullgraph:
            raise RuntimeError(message)
        warnings.warn(message, RuntimeWarning, stacklevel=3)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._eager_reason is not None or _ACTIVE:
            return self.fn(*args, **kwargs)  # inside another trace: recorded by that one
        leaves, key = _guard_key(args, kwargs)
        entry = self._entries.get(key)
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
            entry.states[pattern] = _Plan(trace)
        else:
            self._fallback(
                "a different sequence of ops or constants than on the call before, with the "
                "same inputs (data-dependent Python control flow, a changing Python value or "
                "random numbers)"
            )
        return result

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        return self if obj is None else functools.partial(self, obj)


class CompiledModule:
    """A module whose calls are compiled: replayed under no_grad (or with no parameter that
    requires grad); run eagerly when they are recorded for a backward, or inside a compiled
    training step (which then records them)."""

    def __init__(self, module: Any, **options: Any) -> None:
        object.__setattr__(self, "_orig_mod", module)
        object.__setattr__(self, "_compiled", CompiledFunction(module.__call__, **options))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        module = self._orig_mod
        recorded = _Mode.grad_enabled and (
            any(p.requires_grad for p in module.parameters())
            or any(isinstance(a, Tensor) and a.requires_grad for a in args)
        )
        if _ACTIVE or recorded:
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
    if model is None:  # used as @tm.compile(...)
        return functools.partial(compile, fullgraph=fullgraph, disable=disable)
    if disable:
        return model
    from .nn.modules.module import Module

    if isinstance(model, Module):
        return CompiledModule(model, fullgraph=fullgraph)
    if not callable(model):
        raise TypeError(f"tm.compile expects a callable or a Module, got {type(model).__name__}")
    return CompiledFunction(model, fullgraph=fullgraph)
