"""The reverse-mode engine: walk the tape from the outputs back to the inputs.

``_run`` pops tensors newest first from a heap keyed on each op's creation number (all users of
a tensor were created after it, so its gradient is complete when it comes out), calls the op's
rule, fits each input's gradient to the input and hands it on: into the pending sums of a
non-leaf, or to ``_Run.deliver`` (a plain backward sets a bare leaf's ``.grad`` itself). One
loop serves every order: gradients are arrays without ``create_graph`` and Tensors with it (each
rule then runs on recorded ops), and the two namespaces of ``namespace.py`` offer the loop the
same few functions. What only some nodes need sits behind three seams: ``_check_saved`` (a
released graph, a saved tensor changed in place), ``_Run.visit`` (hooks, retained and wanted
non-leaves) and ``anomaly_mode.check_gradient``.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from typing import Any

from .. import backend
from .._inplace import _inputs_then, _version_at
from .._tensor import Tensor
from ..backend import np
from . import anomaly_mode
from .grad_mode import _Mode
from .graph import Node, _wrap
from .namespace import ArrayNamespace, TensorNamespace

_ndarray = np.ndarray

__all__ = ["backward", "grad", "TensorNamespace"]


# ---------------------------------------------------------------- seeds


def _seed(out: Tensor, grad: Any, space: type) -> Any:
    """The starting gradient of backward in ``space``'s kind: ones for a one-element output,
    else a copy of the user's (a Tensor stays itself under ``create_graph``)."""
    data = out._data
    xp = np if type(data) is _ndarray else backend.array_module_of(data)
    if grad is None:
        if data.size != 1:
            raise RuntimeError(
                "grad can be implicitly created only for scalar outputs, got shape "
                f"{tuple(out.shape)}; reduce the output with .sum() or .mean(), or pass gradient="
            )
        # NOTE: array(1) is several times cheaper than ones(); the seed must be a new array
        seed = xp.array(1, dtype=data.dtype)
        if data.ndim:
            seed = seed.reshape(data.shape)
        return seed if space is ArrayNamespace else space.lift(seed)  # arrays: lift is identity
    if isinstance(grad, Tensor) and space.differentiable:  # its history is part of the graph
        g = grad if grad.dtype == out.dtype else grad.to(out.dtype)
    else:
        try:  # a private copy: the caller's array is never aliased
            g = xp.array(grad._data if isinstance(grad, Tensor) else grad, dtype=data.dtype)
        except (TypeError, ValueError) as e:
            raise TypeError(
                f"backward: gradient must be numeric, like the output {tuple(out.shape)}: {e}"
            ) from None
    if tuple(g.shape) != tuple(out.shape):
        raise RuntimeError(
            f"Mismatch in shape: grad_output has a shape of {tuple(g.shape)} and output has a "
            f"shape of {tuple(out.shape)}"
        )
    return space.lift(g) if backend.is_array(g) else g


# ---------------------------------------------------------------- the seam of saved values


def _released_error(node: Node) -> RuntimeError:
    return RuntimeError(
        f"Trying to backward through the graph a second time (op '{node.op.name}'): its saved "
        "values were freed by the first backward; pass retain_graph=True to the first backward "
        "to keep them"
    )


def _modified_error(t: Tensor, which: str, node: Node) -> RuntimeError:
    return RuntimeError(
        "one of the variables needed for gradient computation has been modified by an inplace "
        f"operation: [{t.dtype} {list(t.shape)}], which is {which} of op '{node.op.name}', is at "
        f"version {t._version}; expected version {_version_at(t, node.seq)} instead. Compute the "
        "op again after the change, or change a copy (clone()) instead"
    )


def _saves_output(saved: Any, out: Any) -> bool:
    """True when an op's forward kept its own output for the backward (exp, sigmoid, ...)."""
    return saved is out or (type(saved) is tuple and any(s is out for s in saved))


def _check_saved(t: Tensor, node: Node, ns: Any) -> None:
    """Refuse a node whose saved values were freed, or changed in place since it was made (an
    input its rule reads, or its own output); hand it its inputs as they were then."""
    if node.released and not node.inputs:  # a node that saved nothing is kept whole
        raise _released_error(node)
    if _Mode.last_inplace > node.seq:
        for i, inp in enumerate(node.inputs):
            changed = inp._get_extra("changed_at") or 0
            if changed > node.seq and ns.reads(node.op, i, node.needs):
                raise _modified_error(inp, f"input {i}", node)
        node.inputs = _inputs_then(node)  # inputs rebased since: their states back then
    if t._version and t._get_extra("changed_at") > node.seq and _saves_output(node.saved, t._data):
        raise _modified_error(t, "output 0", node)


# ---------------------------------------------------------------- delivery and the hook seam


def _run_hooks(t: Tensor, g: Any, ns: Any) -> Any:
    """``t``'s gradient hooks in turn, each on the result of the one before."""
    for hook in list(t._get_extra("hooks") or ()):
        new = hook(ns.wrap(g))
        if new is not None:
            if not isinstance(new, Tensor) or tuple(new.shape) != tuple(t.shape):
                raise RuntimeError(
                    f"hook {getattr(hook, '__name__', hook)!r} returned {type(new).__name__} "
                    f"{getattr(new, 'shape', '')}; a hook must return None or a tensor of shape "
                    f"{tuple(t.shape)}"
                )
            g = ns.unwrap(new)
    return g


class _Run:
    """The state of one backward pass: pending gradients and where results go. Its methods
    are the observer seam: a tracer's subclass (``observer``) sees each seed, rule, fit, sum
    and delivery of the one loop, and may refuse what it cannot replay."""

    def __init__(self, space: type, wanted: Sequence[Tensor] | None, accumulate: bool):
        self.space = space  # ArrayNamespace or TensorNamespace: the kind gradients travel as
        self.wanted = None if wanted is None else {id(t): t for t in wanted}
        self.accumulate = accumulate  # into .grad (backward) or into results (grad)
        self.results: dict[int, Any] = {}
        self.pending: dict[Tensor, Any] = {}
        self.heap: list[tuple[int, Tensor]] = []
        self.post: dict[int, Tensor] = {}  # leaves with post-accumulate hooks, once each
        self.held: dict[Tensor, tuple[Any, Any]] = {}  # leaves with hooks: their summed gradient

    def seed(self, out: Tensor, grad: Any) -> Any:
        """The starting gradient of ``out`` (``grad``: the user's, or None)."""
        return _seed(out, grad, self.space)

    def start(self, roots: Sequence[tuple[Tensor, Any]]) -> None:
        """Queue the seeds: a leaf's goes straight to it."""
        for t, seed in roots:  # every seed is new (see _seed)
            if t._node is not None:
                self.add(t, seed, self.space.of(seed))
            elif self.wants(t):
                self.deliver(t, seed, self.space.of(seed), None)

    # an observer's call of a node's rule, ``rule(node, ns, g)``; None: the loop calls the rule
    rule: Callable[[Node, Any, Any], tuple] | None = None

    def fit(self, ns: Any, ig: Any, data: Any, node: Node, i: int) -> Any:
        """A rule's gradient for input ``i`` (of array ``data``) made of its shape and dtype."""
        return ns.fit(ig, data, node, i)

    def add(self, t: Tensor, g: Any, ns: Any) -> None:
        """Add a gradient for a non-leaf tensor, queueing it the first time."""
        prev = self.pending.get(t)
        if prev is None:
            self.pending[t] = g
            heapq.heappush(self.heap, (-t._node.seq, t))  # seq is unique: t is never compared
        else:
            self.pending[t] = ns.add(prev, g)

    def deliver(self, t: Tensor, g: Any, ns: Any, source: Any, hooked: bool = False) -> None:
        """Hand a finished gradient to ``t``: into ``.grad``, or into the results (``source``:
        the rule's incoming gradient, which ``g`` may be or view). A leaf with hooks gets its
        edges' gradients summed first, its hooks then run once on the sum (as PyTorch runs
        them before accumulating); ``hooked``: they ran already."""
        if t._extra is not None and not hooked and t._get_extra("hooks"):
            prev = self.held.get(t)
            self.held[t] = (ns.own(g, source) if prev is None else ns.add(prev[0], g), ns)
            return
        if not self.accumulate:
            prev = self.results.get(id(t))
            self.results[id(t)] = ns.own(g, source) if prev is None else ns.add(prev, g)
            return
        prev = t.grad
        t.grad = ns.as_grad(g, source) if prev is None else ns.wrap(ns.add(ns.unwrap(prev), g))
        if t._extra is not None and t._get_extra("post_hooks"):
            self.post[id(t)] = t

    def visit(self, t: Tensor, g: Any, ns: Any) -> Any:
        """A non-leaf's gradient before its rule: through its hooks, and a copy into its
        ``.grad`` (retained) or into the results (wanted). Returns the gradient the rule gets."""
        if t._extra is not None:
            g = _run_hooks(t, g, ns)
            if self.wants(t) if self.wanted is not None else t._get_extra("retains_grad"):
                self.deliver(t, g, ns, g, hooked=True)
        elif self.wants(t):
            self.deliver(t, g, ns, g, hooked=True)
        return g

    def finish(self) -> None:
        """The hooked leaves' summed gradients through their hooks into place, then the
        post-accumulate hooks."""
        for t, (g, ns) in self.held.items():
            out = _run_hooks(t, g, ns)
            self.deliver(t, out, ns, None if out is g else out, hooked=True)
        for t in self.post.values():
            for hook in list(t._get_extra("post_hooks")):
                hook(t)

    def wants(self, t: Tensor) -> bool:
        return self.wanted is None or id(t) in self.wanted


# NOTE: the observer seam: tm.compile sets this to its subclass of _Run while it traces a step,
# so every backward of the step runs through it. None otherwise: one global read per backward.
observer: Callable[..., _Run] | None = None


def _run(roots: Sequence[tuple[Tensor, Any]], retain_graph: bool, run: _Run) -> None:
    """Propagate the seeds of ``roots`` to the leaves, newest op first."""
    space, wanted = run.space, run.wanted
    anomaly, space_of, known = _Mode.anomaly, space.of, space.known
    if anomaly:
        anomaly_mode.check_forward([t for t, _ in roots])
    # NOTE: a plain run (backward into .grad on arrays, no observer) hands a leaf with nothing
    # attached its gradient here, as _Run.deliver would: the common case without a call
    plain = type(run) is _Run and run.accumulate and wanted is None and space is ArrayNamespace
    if plain and len(roots) == 1 and roots[0][0]._node is not None:
        t, seed = roots[0]
        run.pending[t] = seed  # every seed is new (see _seed)
        run.heap.append((-t._node.seq, t))
    else:
        run.start(roots)
    heap, pending, pop, mode, rule = run.heap, run.pending, heapq.heappop, _Mode, run.rule
    arrays = space is ArrayNamespace  # a rule on arrays reads the node's saved values as they are
    while heap:
        t = pop(heap)[1]
        node, g = t._node, pending.pop(t)
        ns = known.get(type(g)) or space_of(g)
        if node.released or t._version or mode.last_inplace > node.seq:
            _check_saved(t, node, ns)
        if t._extra is not None or wanted is not None:
            g = run.visit(t, g, ns)
        op, inputs, needs = node.op, node.inputs, node.needs
        if rule is not None:
            in_grads = rule(node, ns, g)
        elif arrays:
            in_grads = op.backward(ns, g, node.saved, needs)
        else:
            in_grads = op.backward(ns, g, ns.saved(node), needs)
        if not retain_graph:
            node.release()
        fits = ns.fits_all or not op.exact
        for inp, ig, need in zip(inputs, in_grads, needs, strict=True):
            if ig is None or not need:
                continue
            data = inp._data
            if fits and (
                type(ig) is not type(data) or ig.shape != data.shape or ig.dtype != data.dtype
            ):
                ig = run.fit(ns, ig, data, node, _position(inputs, inp))
            if anomaly:
                anomaly_mode.check_gradient(ig, node, _position(inputs, inp))
            if inp._node is not None:
                run.add(inp, ig, ns)
            elif plain and inp._extra is None and inp.grad is None:
                inp.grad = _wrap(ig if ig is not g and ig.base is None else ig.copy())
            elif wanted is None or id(inp) in wanted:
                run.deliver(inp, ig, ns, g)
    if not plain or run.held or run.post:
        run.finish()


def _position(inputs: tuple, inp: Tensor) -> int:
    """Which input of a node ``inp`` is (the first, when it is there twice), for messages."""
    return next(i for i, x in enumerate(inputs) if x is inp)


# ---------------------------------------------------------------- the public calls


def _tensor_list(what: str, value: Any) -> list[Tensor]:
    """One tensor or a sequence of tensors as a list, refusing anything else by position."""
    single = isinstance(value, Tensor) or backend.is_array(value) or not hasattr(value, "__iter__")
    items = [value] if single else list(value)
    for i, t in enumerate(items):
        if not isinstance(t, Tensor):
            raise TypeError(f"{what} {i} is a {type(t).__name__}, not a Tensor")
    return items


def _grad_list(what: str, grads: Any, n: int) -> list[Any]:
    if grads is None or isinstance(grads, Tensor) or backend.is_array(grads):
        return [grads] * n if grads is None else [grads]
    grads = list(grads)
    if len(grads) != n:
        raise RuntimeError(f"{what} should be a sequence of length {n}, got {len(grads)}")
    return grads


def _roots(what: str, outs: Any, grads: Any, run: _Run) -> list[tuple[Tensor, Any]]:
    """Each output that requires grad with its seed."""
    outs = _tensor_list(f"{what}: item", outs)
    seeds = _grad_list("grad_tensors" if what == "tensors" else "grad_outputs", grads, len(outs))
    for i, o in enumerate(outs):
        if not o.requires_grad:
            raise RuntimeError(
                f"element {i} of tensors does not require grad and does not have a grad_fn (no "
                "input of its graph has requires_grad=True, or it was computed under no_grad)"
            )
    return [(o, run.seed(o, s)) for o, s in zip(outs, seeds, strict=True)]


def backward(
    tensors: Any,
    grad_tensors: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    inputs: Any = None,
) -> None:
    """Accumulate the gradients of ``tensors`` into ``.grad`` of the leaves (or of ``inputs``)."""
    if type(tensors) is list and len(tensors) == 1 and inputs is None and not create_graph:
        out = tensors[0]  # the common case, loss.backward(): no checks, grad mode as it is
        plain = type(grad_tensors) is list and len(grad_tensors) == 1 and grad_tensors[0] is None
        if plain and out._node is not None and out._data.size == 1:
            if observer is None:
                run, seed = _Run(ArrayNamespace, None, True), _seed(out, None, ArrayNamespace)
            else:
                run = observer(ArrayNamespace, None, True)
                seed = run.seed(out, None)
            return _run([(out, seed)], bool(retain_graph), run)
    space = TensorNamespace if create_graph else ArrayNamespace
    wanted = None
    if inputs is not None:
        wanted = _tensor_list("inputs: item", inputs)
        if not wanted:
            raise RuntimeError("backward: inputs= was given as an empty sequence")
    run = (observer or _Run)(space, wanted, True)
    roots = _roots("tensors", tensors, grad_tensors, run)
    with space.recording():
        _run(roots, create_graph if retain_graph is None else retain_graph, run)


def grad(
    outputs: Any,
    inputs: Any,
    grad_outputs: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool | None = None,
    materialize_grads: bool = False,
) -> tuple[Tensor | None, ...]:
    """The gradients of ``outputs`` with respect to ``inputs`` as Tensors, leaving ``.grad``
    alone; with ``create_graph=True`` they are on the tape, differentiable again."""
    space = TensorNamespace if create_graph else ArrayNamespace
    ins = _tensor_list("inputs: item", inputs)
    run = (observer or _Run)(space, ins, False)
    roots = _roots("outputs", outputs, grad_outputs, run)
    if allow_unused is None:
        allow_unused = materialize_grads
    for i, t in enumerate(ins):
        if not t.requires_grad:
            raise RuntimeError(f"grad: input {i} of shape {t.shape} does not require grad")
    with space.recording():
        _run(roots, create_graph if retain_graph is None else retain_graph, run)
    result: list[Tensor | None] = []
    for i, t in enumerate(ins):
        g = run.results.get(id(t))
        if g is None and not allow_unused:
            raise RuntimeError(
                f"One of the differentiated Tensors appears to not have been used in the graph "
                f"(input {i} of shape {t.shape}); set allow_unused=True if this is the desired "
                "behavior"
            )
        if g is None:
            zeros = backend.array_module_of(t._data).zeros_like(t._data)
            result.append(_wrap(zeros) if materialize_grads else None)
            continue
        if tuple(g.shape) != tuple(t.shape):
            g = backend.sum_to(g, t.shape)
        result.append(g if isinstance(g, Tensor) else _wrap(g))
    return tuple(result)
