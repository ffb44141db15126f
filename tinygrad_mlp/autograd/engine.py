"""The reverse-mode engine: walk the tape from the outputs back to the inputs.

Traversal and delivery are separate: ``_run`` pops tensors newest first from a heap keyed on
each op's creation number (all users of a tensor were created after it, so its gradient is
complete when it comes out), calls the op's rule, and hands each input's gradient to
``_Pending.add`` (non-leaves, kept until popped) or ``_deliver`` (leaves and wanted tensors).

Gradients travel as arrays on the first-order path. With ``create_graph=True`` they travel as
Tensors, and each op's forward and rule are re-run with the ``TensorNamespace`` below, whose
functions are recorded ops: the gradient is then itself on the tape, differentiable again.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from typing import Any

from .. import backend
from .. import ops as O
from .._tensor import Node, Tensor, _binary, _inputs_then, _version_at, _wrap, apply, where
from ..backend import np
from .grad_mode import _Mode, enable_grad, no_grad

__all__ = ["backward", "grad", "TensorNamespace"]

_ndarray = np.ndarray
_NUMPY = backend.NUMPY


# ---------------------------------------------------------------- the Tensor namespace


class TensorNamespace:
    """The names of ``backend.ArrayNamespace``, as recorded ops on Tensors."""

    differentiable = True

    def __init__(self, arrays: backend.ArrayNamespace) -> None:
        self.arrays = arrays  # for constants (index offsets, ones) on the right device

    @staticmethod
    def _t(x: Any, like: Any = None) -> Tensor:
        if isinstance(x, Tensor):
            return x
        if isinstance(like, Tensor):
            return _binary_lift(x, like)
        return _wrap(x if backend.is_array(x) else np.asarray(x))

    # elementwise functions
    def exp(self, x):
        return self._t(x).exp()

    def expm1(self, x):
        return self._t(x).expm1()

    def log(self, x):
        return self._t(x).log()

    def log1p(self, x):
        return self._t(x).log1p()

    def sin(self, x):
        return self._t(x).sin()

    def cos(self, x):
        return self._t(x).cos()

    def tanh(self, x):
        return self._t(x).tanh()

    def erf(self, x):
        return self._t(x).erf()

    def abs(self, x):
        return self._t(x).abs()

    def sign(self, x):
        return self._t(x).sign()

    def clip(self, x, low, high):
        return apply(O.CLAMP, self._t(x), low=low, high=high)

    def maximum(self, a, b):
        return _binary(O.MAXIMUM, a, b)

    def minimum(self, a, b):
        return _binary(O.MINIMUM, a, b)

    def where(self, condition, a, b):
        return where(condition, a, b)

    def arctan(self, x):
        return apply(O.ATAN, x)

    def arcsin(self, x):
        return apply(O.ASIN, x)

    def arccos(self, x):
        return apply(O.ACOS, x)

    def arctan2(self, y, x):
        return _binary(O.ATAN2, y, x)

    def cumsum(self, x, axis):
        return apply(O.CUMSUM, x, axis=axis)

    def einsum(self, equation, *xs):
        return apply(O.EINSUM, *[self._t(x) for x in xs], equation=equation)

    # linear algebra
    def linalg_solve(self, a, b):
        return apply(O.LINALG_SOLVE, self._t(a), self._t(b, a))

    def linalg_det(self, a):
        return apply(O.LINALG_DET, a)

    def linalg_cholesky(self, a, uplo=None):
        return apply(O.LINALG_CHOLESKY, a, uplo=uplo)

    def linalg_eigh(self, a, uplo=None):
        return apply(O.LINALG_EIGH, a, uplo=uplo)

    def linalg_qr(self, a):
        return apply(O.LINALG_QR, a)

    def linalg_svd(self, a):
        return apply(O.LINALG_SVD, a)

    # reductions and shapes
    def amax(self, x, axis=None, keepdims=False):
        return apply(O.AMAX, x, axis=axis, keepdims=keepdims)

    def prod(self, x, axis=None, keepdims=False):
        return apply(O.PROD, x, axis=axis, keepdims=keepdims)

    def permute(self, x, axes):
        return apply(O.PERMUTE, x, axes=tuple(axes))

    def broadcast_to(self, x, shape):
        x = self._t(x)
        return x if tuple(x.shape) == tuple(shape) else apply(O.EXPAND, x, shape=tuple(shape))

    def sum_to(self, x, shape):
        return backend.sum_to(x, shape)

    def scatter(self, g, index, shape):
        return apply(O.SCATTER, g, index=index, shape=tuple(shape))

    def concatenate(self, xs, axis=0):
        return apply(O.CAT, *xs, axis=axis)

    def cast(self, x, dtype):
        return x if x.dtype == dtype else apply(O.CAST, x, dtype=dtype)

    def to_device(self, x, device):
        return x if x.device == device else apply(O.TO_DEVICE, x, device=device)

    def device_of(self, x):
        return x.device

    # products and the speed-trick names, as plain ops
    def mm(self, a, b):
        return apply(O.MATMUL, a, b)

    def matmul(self, a, b):
        return apply(O.MATMUL, a, b)

    def mT(self, x):
        return x.transpose(-2, -1)

    def row_sums(self, a):
        return a.sum(axis=1)

    def column_sums(self, a):
        return a.sum(axis=0)

    def row_max(self, a):
        return apply(O.AMAX, a.detach(), axis=1)  # only ever a shift that cancels out

    def constant(self, kind, n, arg):
        return self.arrays.constant(kind, n, arg)

    def iadd(self, a, b):
        return a + b

    def imul(self, a, b):
        return a * b

    def sub_at(self, a, index, value):
        flat = a.reshape(-1)
        ones = self.arrays.scatter(
            self.arrays.xp.full(len(index), value, dtype=a.dtype), index, flat.shape
        )
        return (flat - ones).reshape(a.shape)

    def maximum_(self, a, b):
        return self.maximum(a, b)

    def tanh_(self, a):
        return a.tanh()

    def clip_(self, a, low, high):
        return self.clip(a, low, high)

    # sliding windows
    def windows(self, x, kernel_size, dilation, padding, stride, batch_inside=False):
        params = dict(kernel_size=kernel_size, dilation=dilation, padding=padding, stride=stride)
        cols = apply(O.UNFOLD, x, **params)
        if not batch_inside:
            return cols
        nd = len(kernel_size)
        return self.permute(cols, (1, *range(2, 2 + nd), 0, *range(2 + nd, 2 + 2 * nd)))

    def fold_windows(self, cols, size, kernel_size, dilation, padding, stride):
        params = dict(kernel_size=kernel_size, dilation=dilation, padding=padding, stride=stride)
        return apply(O.FOLD, cols, output_size=tuple(size), **params)

    def max_windows(self, x, kernel_size, dilation, padding, stride):
        # the maxima as constants: a rule reads only the positions of the maxima
        return backend.max_windows(x._data, kernel_size, dilation, padding, stride)

    def spread_max(self, g, arg, size, kernel_size, dilation, padding, stride):
        # g at the window position arg: g times a constant one-hot, folded back into place
        hot = backend.window_one_hot(arg, kernel_size)
        nd = len(size)
        spread = g.reshape(tuple(g.shape[:2]) + (1,) * nd + tuple(g.shape[2:])) * hot
        return self.fold_windows(spread, size, kernel_size, dilation, padding, stride)


def _binary_lift(x: Any, like: Tensor) -> Tensor:
    from .._tensor import _lift

    return _lift(x, like)


_tensor_namespaces: dict[int, TensorNamespace] = {}


def _tensor_namespace(array: Any) -> TensorNamespace:
    arrays = backend.namespace_of(array)
    ns = _tensor_namespaces.get(id(arrays))
    if ns is None:
        ns = _tensor_namespaces[id(arrays)] = TensorNamespace(arrays)
    return ns


# ---------------------------------------------------------------- seeds and checks


def _seed(out: Tensor, grad: Any, create_graph: bool):
    """The starting gradient of backward: ones for a one-element output, else the user's."""
    data = out._data
    if grad is None:
        if data.size != 1:
            raise RuntimeError(
                "grad can be implicitly created only for scalar outputs, got shape "
                f"{tuple(out.shape)}; "
                "reduce the output with .sum() or .mean(), or pass gradient="
            )
        # NOTE: array(1) is several times cheaper than ones(); the seed must be a new array
        xp = np if type(data) is _ndarray else backend.array_module_of(data)
        seed = xp.array(1, dtype=data.dtype)
        seed = seed.reshape(data.shape) if data.ndim else seed
        return _wrap(seed) if create_graph else seed
    if isinstance(grad, Tensor):
        if grad.shape != out.shape:
            raise RuntimeError(
                f"Mismatch in shape: grad_output has a shape of {grad.shape} and output has a "
                f"shape of {out.shape}"
            )
        if create_graph:
            return grad if grad.dtype == out.dtype else grad.to(out.dtype)
        grad = grad._data
    xp = backend.array_module_of(data)
    try:
        g = xp.array(grad, dtype=data.dtype)  # a private copy: the caller's array is never aliased
    except (TypeError, ValueError) as e:
        raise TypeError(
            f"backward: gradient must be numeric, like the output {tuple(out.shape)}: {e}"
        ) from None
    if g.shape != out.shape:
        raise RuntimeError(
            f"Mismatch in shape: grad_output has a shape of {g.shape} and output has a shape of "
            f"{out.shape}"
        )
    return _wrap(g) if create_graph else g


def _released_error(node: Node) -> RuntimeError:
    return RuntimeError(
        f"Trying to backward through the graph a second time (op '{node.op.name}'): its saved "
        "values were freed by the first backward; pass retain_graph=True to the first backward "
        "to keep them"
    )


def _check_versions(node: Node, create_graph: bool) -> None:
    """Refuse a backward through an op whose saved input was changed in place since."""
    op = node.op
    if not (op.saves_inputs or create_graph or op.custom is not None):
        return
    for i, inp in enumerate(node.inputs):
        if (inp._get_extra("changed_at") or 0) > node.seq and (
            create_graph or op.custom is not None or _reads_input(op.name, i, node.needs)
        ):
            raise _modified_error(inp, f"input {i}", node)


def _reads_input(name: str, i: int, needs: tuple) -> bool:
    """Whether the rule reads input ``i``'s value: a product's factor only for the gradient
    of the other factor, a quotient's numerator only for the denominator's, an activation's
    input only where its derivative is written in it (not tanh's or sigmoid's)."""
    if name in ("mul", "matmul"):
        return needs[1 - i]
    if name == "div":
        return i == 1 or needs[1]
    act = O.ACTIVATIONS.get(name)
    return act is None or act.needs_input


def _saves_output(saved: Any, out: Any) -> bool:
    """True when an op's forward kept its own output for the backward (exp, sigmoid, ...)."""
    return saved is out or (type(saved) is tuple and any(s is out for s in saved))


def _modified_error(t: Tensor, which: str, node: Node) -> RuntimeError:
    return RuntimeError(
        "one of the variables needed for gradient computation has been modified by an inplace "
        f"operation: [{t.dtype} {list(t.shape)}], which is {which} of op '{node.op.name}', is at "
        f"version {t._version}; expected version {_version_at(t, node.seq)} instead. Compute the "
        "op again after the change, or change a copy (clone()) instead"
    )


def _is_finite(array) -> bool:
    return bool(backend.array_module_of(array).isfinite(array).all())


def _anomaly(node: Node, what: str) -> RuntimeError:
    where_ = f"\nthe op was created at:\n{node.trace}" if node.trace else ""
    return RuntimeError(f"anomaly detected: {what}{where_}")


def _check_forward(roots: Sequence[Tensor]) -> None:
    """Raise at the first op, in forward order, whose output holds NaN or inf from finite inputs."""
    found, seen, stack = [], set(), [t for t in roots if t._node is not None]
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        found.append((t._node.seq, t))
        stack.extend(i for i in t._node.inputs if i._node is not None)
    for _, t in sorted(found, key=lambda p: p[0]):
        node = t._node
        if _is_finite(t._data) or not all(_is_finite(x._data) for x in node.inputs):
            continue
        what = "nan" if bool(backend.array_module_of(t._data).isnan(t._data).any()) else "inf"
        raise _anomaly(
            node,
            f"op '{node.op.name}' produced {what} in its forward output (shape "
            f"{tuple(t.shape)}) from finite inputs",
        )


# ---------------------------------------------------------------- calling a rule


def _rule(node: Node, g: Any, create_graph: bool) -> tuple:
    """The gradients of a node's inputs: the op's rule on arrays, or on Tensors."""
    op = node.op
    if op.custom is not None:
        return _custom_rule(node, g, create_graph)
    if not create_graph:
        data = g
        ns = backend.NUMPY if type(data) is _ndarray else backend.namespace_of(data)
        return op.backward(ns, g, node.saved, node.needs)
    ns = _tensor_namespace(node.inputs[0]._data)
    with enable_grad():
        _, saved = op.forward(ns, *node.inputs, **node.params)
        return op.backward(ns, g, saved, node.needs)


def _custom_rule(node: Node, g: Any, create_graph: bool) -> tuple:
    """The backward of an autograd.Function, on Tensors."""
    op, ctx = node.op, node.ctx
    g_t = g if isinstance(g, Tensor) else _wrap(g)
    mode = enable_grad() if create_graph else no_grad()
    with mode:
        out = op.custom.backward(ctx, g_t)
    out = out if isinstance(out, tuple) else (out,)
    positions = ctx._tensor_positions
    if len(out) != ctx._n_args and (len(out) > ctx._n_args or len(out) <= max(positions)):
        raise RuntimeError(
            f"function {op.name}Backward returned an incorrect number of gradients (expected "
            f"{ctx._n_args}, got {len(out)})"
        )
    grads = []
    for k, pos in enumerate(positions):
        gk = out[pos] if pos < len(out) else None
        if gk is None or not node.needs[k]:
            grads.append(None)
            continue
        if not isinstance(gk, Tensor):
            gk = _wrap(gk if backend.is_array(gk) else np.asarray(gk))
        grads.append(gk if create_graph else gk._data)
    return tuple(grads)


def _fit(ig, data, node: Node, i: int, create_graph: bool):
    """A rule's gradient made an array (or Tensor) of its input's type, shape and dtype."""
    if create_graph:
        if not isinstance(ig, Tensor):
            ig = _wrap(ig if backend.is_array(ig) else np.asarray(ig, dtype=data.dtype))
        if tuple(ig.shape) != tuple(data.shape):
            ig = _sum_to(ig, data.shape, node, i)
        return ig if ig.dtype == data.dtype else ig.to(data.dtype)
    if isinstance(ig, np.generic) or not hasattr(ig, "shape"):
        ig = np.asarray(ig, dtype=data.dtype)  # numpy returns products of 0-d arrays as scalars
    if type(ig) is not type(data) and backend.device_of(ig) != backend.device_of(data):
        ig = backend.to_device(ig, backend.device_of(data))
    if ig.shape != data.shape:
        ig = _sum_to(ig, data.shape, node, i)
    if ig.dtype != data.dtype:
        ig = ig.astype(data.dtype)
    return ig


def _sum_to(ig, shape, node: Node, i: int):
    try:
        return backend.sum_to(ig, shape)
    except ValueError:
        raise RuntimeError(
            f"op '{node.op.name}' produced a gradient of shape {tuple(ig.shape)} for its input "
            f"{i} of shape {tuple(shape)}"
        ) from None


def _add(a, b):
    """a + b, kept an array: numpy returns the sum of two 0-d arrays as a scalar."""
    out = a + b
    return np.asarray(out) if isinstance(out, np.generic) else out


# ---------------------------------------------------------------- delivery


def _no_hooks(extra: dict) -> bool:
    """True when a tensor's extras (an in-place stamp, views) hold no gradient hook."""
    return not (extra.get("hooks") or extra.get("post_hooks"))


def _run_hooks(t: Tensor, g: Any, create_graph: bool) -> Any:
    hooks = t._get_extra("hooks")
    if not hooks:
        return g
    for hook in list(hooks):
        g_t = g if isinstance(g, Tensor) else _wrap(g)
        new = hook(g_t)
        if new is not None:
            if not isinstance(new, Tensor) or tuple(new.shape) != tuple(t.shape):
                raise RuntimeError(
                    f"hook {getattr(hook, '__name__', hook)!r} returned {type(new).__name__} "
                    f"{getattr(new, 'shape', '')}; a hook must return None or a tensor of shape "
                    f"{tuple(t.shape)}"
                )
            g = new if create_graph else new._data
    return g


class _Run:
    """The state of one backward pass: pending gradients and where results go."""

    def __init__(self, create_graph: bool, wanted: Sequence[Tensor] | None, accumulate: bool):
        self.create_graph = create_graph
        self.wanted = None if wanted is None else {id(t): t for t in wanted}
        self.accumulate = accumulate  # into .grad (backward) or into results (grad)
        self.results: dict[int, Any] = {}
        self.pending: dict[Tensor, Any] = {}
        self.heap: list[tuple[int, Tensor]] = []
        self.post: dict[int, Tensor] = {}  # leaves with post-accumulate hooks, once each
        self.held: dict[Tensor, tuple[Any, bool]] = {}  # leaves with hooks: their summed gradient

    def add(self, t: Tensor, g: Any) -> None:
        """Add a gradient for a non-leaf tensor, queueing it the first time."""
        prev = self.pending.get(t)
        if prev is None:
            self.pending[t] = g
            heapq.heappush(self.heap, (-t._node.seq, t))  # seq is unique: t is never compared
        else:
            self.pending[t] = _add(prev, g)

    def deliver(self, t: Tensor, g: Any, fresh: bool, hooked: bool = False) -> None:
        """Hand a finished gradient to ``t``: into ``.grad``, or into the results. A leaf with
        hooks gets its edges' gradients summed first, its hooks then run once on the sum (as
        PyTorch runs them before accumulating); ``hooked``: they ran already."""
        if not hooked and t._extra is not None and t._get_extra("hooks"):
            prev = self.held.get(t)
            if prev is None:
                self.held[t] = (g, fresh)
            else:
                total = prev[0] + g if self.create_graph else _add(prev[0], g)
                self.held[t] = (total, True)
            return
        if not self.accumulate:
            prev = self.results.get(id(t))
            if prev is None:
                self.results[id(t)] = g if (fresh or self.create_graph) else g.copy()
            else:
                self.results[id(t)] = _add(prev, g)
            return
        prev = t.grad
        if self.create_graph:
            t.grad = g if prev is None else prev + g
        elif prev is None:
            t.grad = _wrap(g if fresh else g.copy())
        else:
            t.grad = _wrap(_add(prev._data, g))
        if t._extra is not None and t._get_extra("post_hooks"):
            self.post[id(t)] = t

    def deliver_held(self) -> None:
        """The hooked leaves' summed gradients, through their hooks, into place."""
        held, self.held = self.held, {}
        for t, (g, fresh) in held.items():
            out = _run_hooks(t, g, self.create_graph)
            self.deliver(t, out, fresh and out is g, hooked=True)

    def wants(self, t: Tensor) -> bool:
        return self.wanted is None or id(t) in self.wanted


def _run(roots: Sequence[tuple[Tensor, Any]], retain_graph: bool, run: _Run) -> None:
    """Propagate the seeds of ``roots`` to the leaves, newest op first."""
    if _Mode.anomaly:
        _check_forward([t for t, _ in roots])
    for t, seed in roots:  # every seed is a new array (see _seed)
        if t._node is None:
            if run.wants(t):
                run.deliver(t, seed, True)
        else:
            run.add(t, seed)
    heap, pending, pop, mode = run.heap, run.pending, heapq.heappop, _Mode
    create_graph, wanted = run.create_graph, run.wanted
    plain = wanted is None and not create_graph  # a leaf may take a rule's new array as .grad
    while heap:
        t = pop(heap)[1]
        node = t._node
        g = pending.pop(t)
        if (
            node.released
            or t._extra is not None
            or wanted is not None
            or t._version
            or mode.last_inplace > node.seq
        ):
            g = _before_rule(run, t, node, g)
        op, inputs, needs = node.op, node.inputs, node.needs
        if create_graph or op.custom is not None:
            in_grads, own = (
                _rule(node, g, create_graph),
                False,
            )  # a custom rule's arrays may be the user's
        else:
            ns = _NUMPY if type(g) is _ndarray else backend.namespace_of(g)
            in_grads, own = op.backward(ns, g, node.saved, needs), plain
        if not retain_graph:
            node.release()
        _pass_on(run, node, g, inputs, in_grads, needs, own)
    if run.held:
        run.deliver_held()
    for t in run.post.values():
        for hook in list(t._get_extra("post_hooks")):
            hook(t)


def _before_rule(run: _Run, t: Tensor, node: Node, g: Any) -> Any:
    """What comes before a node's rule, when anything does: refusing a released graph or a
    saved tensor changed in place, running ``t``'s hooks, handing a retained or wanted non-leaf
    its gradient. Returns the gradient the rule gets."""
    if node.released and not node.inputs:  # a node that saved nothing is kept whole
        raise _released_error(node)
    create_graph, wanted = run.create_graph, run.wanted
    if t._extra is not None:
        g = _run_hooks(t, g, create_graph)
        if (wanted is not None and id(t) in wanted) or (
            wanted is None and t._get_extra("retains_grad")
        ):
            run.deliver(t, g if create_graph else g.copy(), True, hooked=True)
    elif wanted is not None and id(t) in wanted:
        run.deliver(t, g, False, hooked=True)
    if _Mode.last_inplace > node.seq:
        _check_versions(node, create_graph)
        node.inputs = _inputs_then(node)  # inputs rebased since: their states back then
    if t._version and t._get_extra("changed_at") > node.seq and _saves_output(node.saved, t._data):
        raise _modified_error(t, "output 0", node)
    return g


def _pass_on(run: _Run, node: Node, g: Any, inputs: tuple, in_grads: Any, needs: tuple, own: bool):
    """Each input's gradient (fitted to the input) into the pending sums, or into a leaf's
    ``.grad``; ``own``: a leaf may keep a new array from the rule as it is."""
    create_graph, wanted, op = run.create_graph, run.wanted, node.op
    fits, anomaly = create_graph or not op.exact, _Mode.anomaly
    for inp, ig, need in zip(inputs, in_grads, needs, strict=True):
        if ig is None or not need:
            continue
        raw = ig
        if fits:
            data = inp._data
            if (
                create_graph
                or type(ig) is not type(data)
                or ig.shape != data.shape
                or ig.dtype != data.dtype
            ):
                ig = _fit(ig, data, node, _position(inputs, inp, raw, in_grads), create_graph)
        if anomaly:
            _check_gradient(ig, node, _position(inputs, inp, raw, in_grads))
        if inp._node is not None:
            run.add(inp, ig)
        elif (
            own
            and inp.grad is None
            and ig is not g
            and ig.base is None
            and (inp._extra is None or _no_hooks(inp._extra))
        ):
            inp.grad = _wrap(ig)  # the common case: a new array for a fresh .grad
        elif wanted is None or id(inp) in wanted:
            # a new array from the rule may go into .grad as it is; g or a view is copied
            fresh = create_graph or (ig is not g and op.custom is None and ig.base is None)
            run.deliver(inp, ig, fresh)


def _position(inputs: tuple, inp: Any, ig: Any, grads: Any) -> int:
    """Which input of a node ``inp`` (with gradient ``ig``) is, for messages."""
    for i, (x, g) in enumerate(zip(inputs, grads, strict=True)):
        if x is inp and g is ig:
            return i
    return inputs.index(inp)


def _check_gradient(ig, node: Node, i: int) -> None:
    data = ig._data if isinstance(ig, Tensor) else ig
    if not _is_finite(data):
        what = "nan" if bool(backend.array_module_of(data).isnan(data).any()) else "inf"
        raise _anomaly(
            node,
            f"the backward of op '{node.op.name}' produced {what} in the gradient of its input {i}",
        )


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


def backward(
    tensors: Any,
    grad_tensors: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    inputs: Any = None,
) -> None:
    """Accumulate the gradients of ``tensors`` into ``.grad`` of the leaves (or of ``inputs``)."""
    if (
        type(tensors) is list
        and len(tensors) == 1
        and type(grad_tensors) is list
        and grad_tensors[0] is None
        and not create_graph
        and inputs is None
        and not _Mode.anomaly
    ):
        out = tensors[0]  # the common case: loss.backward()
        if out.requires_grad and out._data.size == 1 and out._node is not None:
            # NOTE: rules on arrays record nothing, so grad mode may stay as it is
            _run([(out, _seed(out, None, False))], bool(retain_graph), _Run(False, None, True))
            return
    outs = _tensor_list("tensors: item", tensors)
    seeds = _grad_list("grad_tensors", grad_tensors, len(outs))
    if retain_graph is None:
        retain_graph = create_graph
    for o in outs:
        if not o.requires_grad:
            raise RuntimeError(
                "element 0 of tensors does not require grad and does not have a grad_fn (no "
                "input of its graph has requires_grad=True, or it was computed under no_grad)"
            )
    wanted = None
    if inputs is not None:
        wanted = _tensor_list("inputs: item", inputs)
        if not wanted:
            raise RuntimeError("backward: inputs= was given as an empty sequence")
    roots = [(o, _seed(o, s, create_graph)) for o, s in zip(outs, seeds, strict=True)]
    with enable_grad() if create_graph else no_grad():
        _run(roots, retain_graph, _Run(create_graph, wanted, True))


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
    outs, ins = _tensor_list("outputs: item", outputs), _tensor_list("inputs: item", inputs)
    seeds = _grad_list("grad_outputs", grad_outputs, len(outs))
    if retain_graph is None:
        retain_graph = create_graph
    if allow_unused is None:
        allow_unused = materialize_grads
    for i, o in enumerate(outs):
        if not o.requires_grad:
            raise RuntimeError(
                f"element {i} of tensors does not require grad and does not have a grad_fn"
            )
    for i, t in enumerate(ins):
        if not t.requires_grad:
            raise RuntimeError(f"grad: input {i} of shape {t.shape} does not require grad")
    roots = [(o, _seed(o, s, create_graph)) for o, s in zip(outs, seeds, strict=True)]
    run = _Run(create_graph, ins, False)
    with enable_grad() if create_graph else no_grad():
        _run(roots, retain_graph, run)
    result: list[Tensor | None] = []
    for i, t in enumerate(ins):
        g = run.results.get(id(t))
        if g is None:
            if not allow_unused:
                raise RuntimeError(
                    f"One of the differentiated Tensors appears to not have been used in the "
                    f"graph (input {i} of shape {t.shape}); set allow_unused=True if this is the "
                    "desired behavior"
                )
            if materialize_grads:
                g = backend.array_module_of(t._data).zeros_like(t._data)
                result.append(_wrap(g))
            else:
                result.append(None)
            continue
        if tuple(g.shape) != tuple(t.shape):
            g = backend.sum_to(g, t.shape)
        result.append(g if isinstance(g, Tensor) else _wrap(g))
    return tuple(result)
