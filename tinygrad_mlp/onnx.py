"""Export a model to ONNX: run it, read its graph off the tape, lower each op to ONNX.

``export(model, example_input, path)`` has the shape of ``torch.onnx.export``. The model runs
on the example in eval mode with every op application recorded (``apply``'s recorder: ops under
``no_grad`` too; a ``detach()`` is the identity); the graph behind its output is then walked from
the inputs up, and every node is lowered to standard ONNX
operators from the registry ``tinygrad_mlp.ops.OPS`` itself: an op that names its ONNX operator
(``Op.onnx``: Relu, Softmax, ...) becomes that node, any other runs its own forward on a
namespace whose arrays are tensors of the ONNX graph (so each formula is written once, in
ops/); only reshapes, expands, indexing and the fused layers have an entry in ``LOWERINGS``.
A module listed in ``MODULE_LOWERINGS`` (BatchNorm1d) becomes one node, as PyTorch's exporter
writes it. Parameters and buffers become initializers under their ``state_dict`` names, other
constants become initializers too.

The first dimension of every input is dynamic by default (``dynamic_axes``). So that no size of
the example is baked into the file, the model also runs at two and three times the example's
batch size: a dimension that changes is ``a * batch + b``, and reshapes, expands and constants
shaped by the batch (``tm.zeros(x.shape[0], 4)``, a variance's ``n - 1`` over the batch) are
computed from the input's ``Shape`` in the file. A model whose graph changes with the batch
size, or a size that is not ``a * batch + b``, draws a warning and keeps the example's value.

Values computed outside the registry's ops (comparisons, ``argmax``, ``isfinite``, the
condition of ``where``, loss targets) are stored as constants: the exported file computes with
those fixed values. Exceptions: ``max(dim).values`` reads its ``argmax`` index as a ReduceMax,
and a constant holding one value everywhere follows the batch. Any other constant whose first
dimension is the batch size draws a warning.

Needs the ``onnx`` package (``pip install onnx``); ONNX Runtime runs the file.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from ._onnx_graph import (
    LOWERINGS,
    MODULE_LOWERINGS,
    Dim,
    _Builder,
    _Call,
    _host,
    _lower,
    _module_lowering,
    _Size,
    _uniform,
    _warn_if_batch_sized,
    lowering,  # noqa: F401  (re-exported: tinygrad_mlp.onnx.lowering registers a lowering)
)
from ._tensor import Tensor, enable_grad
from .autograd import graph as _graph
from .backend import array_module_of, np, to_numpy
from .serialization import _atomic_write, _fspath
from .viz import _auto_names, _node_of

__all__ = ["export", "LOWERINGS", "MODULE_LOWERINGS", "DEFAULT_OPSET", "SUPPORTED_OPSETS"]

DEFAULT_OPSET = 17
SUPPORTED_OPSETS = range(17, 22)


def _require_onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError(
            "tinygrad_mlp.onnx needs the onnx package: pip install onnx "
            '(or pip install -e ".[onnx]")'
        ) from None
    return onnx


# ---------------------------------------------------------------- tracing


def _as_tuple(value: Any) -> tuple:
    if isinstance(value, (tuple, list)):
        return tuple(value)
    return (value,)


def _as_input(value: Any) -> Tensor:
    """A fresh leaf for an example input; floating ones require grad so every op is recorded."""
    data = value._data if isinstance(value, Tensor) else _host(value)
    if not (hasattr(data, "dtype") and hasattr(data, "shape")):
        data = np.asarray(data, dtype=np.float32)
    floating = np.dtype(data.dtype).kind == "f"
    return Tensor(data, requires_grad=floating, dtype=data.dtype)


def _resized(x: Tensor, axes: set[int], k: int) -> Tensor:
    """``x`` with each of ``axes`` k times as long (its entries repeated in turn)."""
    data = x._data
    xp = array_module_of(data)
    for axis in sorted(axes):
        n = data.shape[axis]
        data = xp.take(data, xp.arange(n * k) % n, axis=axis)
    return Tensor(data, requires_grad=x.requires_grad, dtype=data.dtype)


@dataclass
class _Trace:
    """One run of the model: its outputs, every tensor behind them (inputs before the ops that
    read them), the modules lowered whole (id(output) -> (module, input, output)) and every op
    applied, recorded or not (id(output) -> (op, inputs, params, output))."""

    outputs: list[Tensor]
    whole: dict[int, tuple[Any, Tensor, Tensor]]
    applied: dict[int, tuple[Any, tuple, dict, Tensor]]
    inputs: dict[int, int]  # id(input) -> its position
    order: list[Tensor] = field(default_factory=list)
    by_data: dict[int, Tensor] = field(default_factory=dict)  # id(array) -> the tensor made it

    def made(self, t: Tensor) -> tuple[str, Any, list, dict] | None:
        """How ``t`` was made: ("module", module, [input], params), ("op", op, inputs, params)
        or ("detach", None, [tensor], {}) (the same values); None for an input or a leaf."""
        if id(t) in self.inputs:
            return None
        if id(t) in self.whole:
            m, x, _ = self.whole[id(t)]
            return "module", m, [x], {"module": m}
        node = _node_of(t)
        if node is not None:
            if getattr(node, "released", False):
                raise RuntimeError(
                    f"the graph behind op {node.op.name!r} was released by backward(); "
                    "export before backward"
                )
            return "op", node.op, list(node.inputs), dict(getattr(node, "params", None) or {})
        if id(t) in self.applied:  # an op on tensors that need no gradient
            op, inputs, params, _ = self.applied[id(t)]
            return "op", op, list(inputs), dict(params)
        base = t._get_extra("base")
        if isinstance(base, Tensor) and base._data is t._data:  # t = base.detach()
            return "detach", None, [base], {}
        source = self.by_data.get(id(t._data))  # a new tensor around a traced tensor's array
        return None if source is None or source is t else ("detach", None, [source], {})

    def kind(self, t: Tensor) -> tuple:
        """What made ``t`` (an input, a module, an op, a detach or nothing), and its rank."""
        if id(t) in self.inputs:
            return ("input", self.inputs[id(t)], t.ndim)
        made = self.made(t)
        if made is None:
            return ("leaf", t.ndim)
        what = made[1] if made[0] == "op" else type(made[1]).__name__
        return (made[0], getattr(what, "name", what), t.ndim)


def _trace(model: Callable[..., Any], inputs: list[Tensor]) -> _Trace:
    """Run ``model`` once on ``inputs`` in eval mode, every op application recorded."""
    modules = list(model.modules()) if hasattr(model, "modules") else []
    trace = _Trace([], {}, {}, {id(x): i for i, x in enumerate(inputs)})

    def record(m: Any, args: tuple, out: Any) -> None:
        if isinstance(out, Tensor) and args and isinstance(args[0], Tensor):
            trace.whole[id(out)] = (m, args[0], out)

    outer = _graph._recorder  # NOTE: apply's recorder sees the ops the tape leaves out

    def on_apply(op: Any, ins: tuple, params: dict, out: Tensor) -> None:
        trace.applied[id(out)] = (op, ins, params, out)
        if not any(out._data is x._data for x in ins):  # memory of its own
            trace.by_data.setdefault(id(out._data), out)
        if outer is not None:
            outer(op, ins, params, out)

    hooks = [m.register_forward_hook(record) for m in modules if _module_lowering(m)]
    modes = [(m, m.training) for m in modules]
    trace.by_data.update({id(x._data): x for x in inputs})
    try:
        for m, _ in modes:
            m.training = False  # exported in eval mode, as torch.onnx.export does
        _graph._recorder = on_apply
        with enable_grad():
            result = model(*inputs)
    finally:
        _graph._recorder = outer
        for m, mode in modes:
            m.training = mode
        for hook in hooks:
            hook.remove()
    trace.outputs = list(_as_tuple(result))
    for i, t in enumerate(trace.outputs):
        if not isinstance(t, Tensor):
            raise TypeError(f"ONNX export: output {i} is a {type(t).__name__}, not a Tensor")
    trace.order = _walk(trace)
    return trace


def _walk(trace: _Trace) -> list[Tensor]:
    """Every tensor behind the outputs, each once, inputs before the ops that read them."""
    order: list[Tensor] = []
    seen: set[int] = set()
    stack = [(t, False) for t in reversed(trace.outputs)]
    while stack:
        t, expanded = stack.pop()
        if expanded:
            order.append(t)
            continue
        if id(t) in seen:
            continue
        seen.add(id(t))
        stack.append((t, True))
        made = trace.made(t)
        for x in reversed(made[2] if made else []):
            if isinstance(x, Tensor) and id(x) not in seen:
                stack.append((x, False))
    return order


def _follow(values: Sequence[Any], sizes: Sequence[int]) -> _Size | None:
    """The values as ``a * n + c`` of the batch sizes ``sizes`` (None when they are not)."""
    a = Fraction(values[1] - values[0]) / (sizes[1] - sizes[0])
    c = values[0] - a * sizes[0]
    if a and all(a * n + c == v for n, v in zip(sizes, values, strict=True)):
        return _Size(a, c, values[0])
    return None


def _same(p: Any, q: Any) -> bool:
    """Are two recorded parameters the same (arrays by shape and values)?"""
    if isinstance(p, (tuple, list)) and isinstance(q, (tuple, list)):
        return len(p) == len(q) and all(_same(a, b) for a, b in zip(p, q, strict=True))
    if isinstance(p, dict) and isinstance(q, dict):
        return p.keys() == q.keys() and all(_same(p[k], q[k]) for k in p)
    if isinstance(p, slice) and isinstance(q, slice):
        return (p.start, p.stop, p.step) == (q.start, q.stop, q.step)
    p, q = _host(p), _host(q)
    if hasattr(p, "shape") or hasattr(q, "shape"):
        p, q = np.asarray(p), np.asarray(q)
        if p.shape == q.shape and bool(np.array_equal(p, q)):
            return True
        one = _uniform(p)  # one value everywhere, in shapes that may follow the batch
        return one is not None and one == _uniform(q) and p.ndim == q.ndim
    try:
        return bool(p == q)
    except (TypeError, ValueError):
        return p is q


class _Shapes:
    """The dimensions of every traced tensor, each fixed or following the batch size, from
    runs of the model at several batch sizes."""

    def __init__(self, traces: list[_Trace], sizes: list[int]) -> None:
        self.traces, self.sizes = traces, sizes
        self.dims: dict[int, tuple[Dim, ...]] = {}
        self.at: dict[int, int] = {}  # id(tensor of the first trace) -> its place in the order
        for i, ts in enumerate(zip(*(t.order for t in traces), strict=True)):
            self.at[id(ts[0])] = i
            self.dims[id(ts[0])] = tuple(
                self._dim(ds) for ds in zip(*(t.shape for t in ts), strict=True)
            )

    def _dim(self, values: tuple[int, ...]) -> Dim:
        if len(set(values)) == 1:
            return values[0]
        return _follow(values, self.sizes) or _Size(None, None, values[0])

    def others(self, t: Tensor) -> list[tuple[_Trace, Tensor]]:
        """The other runs, each with its tensor at ``t``'s place."""
        i = self.at[id(t)]
        return [(trace, trace.order[i]) for trace in self.traces[1:]]


def _names(given: Sequence[str] | None, n: int, stem: str) -> list[str]:
    defaults = [stem] if n == 1 else [f"{stem}_{i}" for i in range(n)]
    given = list(given or [])
    if len(given) > n or len(set(given)) != len(given):
        raise ValueError(f"{stem}_names: {given!r} must be distinct and at most {n}")
    return given + defaults[len(given) :]


def _dims(names: list[str], tensors: Sequence[Tensor], dynamic_axes: Any) -> list[list[Any]]:
    """Each tensor's shape with its dynamic axes replaced by their symbolic names."""
    out = []
    for name, t in zip(names, tensors, strict=True):
        dims: list[Any] = list(t.shape)
        spec = dynamic_axes.get(name, {})
        if isinstance(spec, (list, tuple)):
            spec = {int(a): f"{name}_dim{int(a)}" for a in spec}
        for axis, symbol in spec.items():
            dims[int(axis) % len(dims)] = str(symbol)
        out.append(dims)
    return out


def _spec(dynamic_axes: dict[str, Any], name: str, ndim: int) -> set[int]:
    spec = dynamic_axes.get(name, {})
    return {int(a) % ndim for a in spec} if ndim else set()


def _traces(
    model: Callable[..., Any], inputs: list[Tensor], axes: list[set[int]]
) -> tuple[list[_Trace], list[int]]:
    """The model run at the example and, when some axis is dynamic, at twice and three times
    its length; the batch sizes. Runs whose graphs differ from the example's are dropped."""
    first = _trace(model, inputs)
    at = next(((x, min(a)) for x, a in zip(inputs, axes, strict=True) if a), None)
    if at is None or at[0].shape[at[1]] == 0:
        return [first], [0]
    n, kinds, more = at[0].shape[at[1]], [first.kind(x) for x in first.order], []
    for k in (2, 3):
        try:
            trace = _trace(model, [_resized(x, a, k) for x, a in zip(inputs, axes, strict=True)])
        except Exception as e:  # the model's own error, whatever it is, at another batch size
            why = f"fails at batch size {k * n} ({type(e).__name__}: {e})"
        else:
            if [trace.kind(x) for x in trace.order] == kinds:
                more.append(trace)
                continue
            why = f"records a different graph at batch size {k * n}"
        warnings.warn(
            f"ONNX export: the model {why}; the file works at the example's batch size only",
            stacklevel=4,
        )
        return [first], [n]
    return [first, *more], [n, 2 * n, 3 * n]


def _build(
    model: Callable[..., Any],
    example_input: Any,
    input_names: Sequence[str] | None,
    output_names: Sequence[str] | None,
    opset_version: int | None,
    dynamic_axes: dict[str, Any] | None,
) -> Any:
    onnx = _require_onnx()
    opset = DEFAULT_OPSET if opset_version is None else int(opset_version)
    if opset not in SUPPORTED_OPSETS:
        raise ValueError(
            f"opset_version {opset} is not supported; choose one in "
            f"{SUPPORTED_OPSETS.start}..{SUPPORTED_OPSETS.stop - 1}"
        )
    inputs = [_as_input(x) for x in _as_tuple(example_input)]
    in_names = _names(input_names, len(inputs), "input")
    default_axes = dynamic_axes is None
    if default_axes:
        dynamic_axes = {n: {0: "batch"} for n, x in zip(in_names, inputs, strict=True) if x.ndim}
    axes = [_spec(dynamic_axes, n, x.ndim) for n, x in zip(in_names, inputs, strict=True)]

    traces, sizes = _traces(model, inputs, axes)
    trace = traces[0]
    outputs = trace.outputs
    out_names = _names(output_names, len(outputs), "output")
    if set(out_names) & set(in_names):
        raise ValueError("input and output names must differ")
    shapes = _Shapes(traces, sizes) if len(traces) > 1 else None
    batch_size = sizes[0] or None

    ref = next(((n, min(a)) for n, a in zip(in_names, axes, strict=True) if a), None)
    b = _Builder(onnx, opset, ref)
    b.used.update(in_names + out_names)
    names: dict[int, str] = {id(x): n for n, x in zip(in_names, inputs, strict=True)}
    b.arrays = {id(x._data): (n, x._data.dtype) for n, x in zip(in_names, inputs, strict=True)}
    # parameters and buffers keep their state_dict names: the model's, or else those of the
    # outermost module that holds them (a function that calls modules)
    for attr in ("named_buffers", "named_parameters"):
        if hasattr(model, attr):
            b.leaf_names.update({id(p): n for n, p in getattr(model, attr)()})
    leaves = [t for t in trace.order if trace.made(t) is None and id(t) not in b.leaf_names]
    b.leaf_names.update({**_auto_names(leaves), **b.leaf_names})

    def dims(t: Tensor) -> tuple[Dim, ...]:
        return shapes.dims[id(t)] if shapes is not None else tuple(t.shape)

    for t in trace.order:
        if id(t) in names:
            continue
        made = trace.made(t)
        if made is None:  # a leaf: a parameter, a buffer or a constant
            names[id(t)] = _leaf(b, t, dims(t), shapes, batch_size)
            continue
        how, op, ins, params = made
        if how == "detach":  # the same values, cut from the graph: the same tensor in the file
            names[id(t)] = names[id(ins[0])]
            continue
        varies = False
        if how == "module":
            lower, name = _module_lowering(op), type(op).__name__
        else:
            name = op.name
            if op.custom is not None:
                raise NotImplementedError(
                    f"ONNX export: no lowering for the custom op {name!r} (an autograd.Function)"
                )
            lower = functools.partial(_lower, op=op)
            others = [u.made(x)[3] for u, x in shapes.others(t)] if shapes is not None else []
            varies = not all(_same(params, p) for p in others)
            if varies and name not in ("reshape", "expand", "getitem"):  # these read the sizes
                warnings.warn(
                    f"ONNX export: the parameters of op {name!r} change with the batch size; "
                    "the file keeps the example's",
                    stacklevel=3,
                )
        call = _Call(
            b,
            [names.get(id(x), "") for x in ins],
            ins,
            params,
            t,
            [dims(x) if isinstance(x, Tensor) else () for x in ins],
            dims(t),
            batch_size,
            name,
            how == "op" and varies,
        )
        names[id(t)] = lower(call)
        b.arrays.setdefault(id(t._data), (names[id(t)], t._data.dtype))

    if default_axes:  # every output axis that follows the batch is dynamic
        for n, t in zip(out_names, outputs, strict=True):
            spec = {
                i: "batch" if d.is_batch else f"{n}_dim{i}"
                for i, d in enumerate(dims(t))
                if isinstance(d, _Size)
            }
            if spec:
                dynamic_axes = {**dynamic_axes, n: spec}
    for n, t in zip(out_names, outputs, strict=True):
        b.nodes.append(onnx.helper.make_node("Identity", [names[id(t)]], [n], b.fresh(n)))

    def value_info(name: str, t: Tensor, dims: list[Any]) -> Any:
        elem = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(t._data.dtype))
        return onnx.helper.make_tensor_value_info(name, elem, dims)

    graph = onnx.helper.make_graph(
        b.nodes,
        "tinygrad_mlp",
        [
            value_info(n, x, d)
            for n, x, d in zip(in_names, inputs, _dims(in_names, inputs, dynamic_axes), strict=True)
        ],
        [
            value_info(n, t, d)
            for n, t, d in zip(
                out_names, outputs, _dims(out_names, outputs, dynamic_axes), strict=True
            )
        ],
        b.initializers,
    )
    opsets = [onnx.helper.make_opsetid("", opset)]
    proto = onnx.helper.make_model(
        graph,
        opset_imports=opsets,
        producer_name="tinygrad_mlp",
        ir_version=onnx.helper.find_min_ir_version_for(opsets),
    )
    onnx.checker.check_model(proto)
    return proto


def _leaf(b: _Builder, t: Tensor, dims: tuple[Dim, ...], shapes: Any, batch_size: Any) -> str:
    """A parameter or buffer under its name; a constant as an initializer, or as computed from
    the batch size where the runs at other batch sizes show that it follows it."""
    if id(t) in b.leaf_names:
        return b.leaf(t)
    array = to_numpy(t._data)
    if shapes is not None:
        others = [to_numpy(u._data) for _, u in shapes.others(t)]
        one = _uniform(array)
        if (
            one is not None
            and any(isinstance(d, _Size) for d in dims)
            and all(_uniform(a) == one for a in others)
        ):  # one value repeated in a shape that follows the batch: Expand it
            return b.node("Expand", [b.scalar(one, array.dtype), b.shape(dims)])
        if array.ndim == 0 and any(a.item() != array.item() for a in others):
            size = _follow([array.item(), *(a.item() for a in others)], shapes.sizes)
            if size is not None:  # a count of the batch (a variance's n - 1)
                return b.batch_value(size, array.dtype)
            values = [array.item()] + [a.item() for a in others]
            warnings.warn(
                f"ONNX export: a constant takes the values {values} at the batch sizes "
                f"{shapes.sizes}; the file keeps {values[0]}",
                stacklevel=4,
            )
    _warn_if_batch_sized(array, batch_size, "constant tensor")
    return b.const(array, "const")


def export(
    model: Callable[..., Any],
    example_input: Any,
    path: str | os.PathLike,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    opset_version: int | None = None,
    dynamic_axes: dict[str, Any] | None = None,
) -> Any:
    """Write ``model``'s graph on ``example_input`` to the ONNX file ``path``; returns the model.

    ``example_input`` is a tensor (or array) or a tuple of them, passed to ``model`` as its
    arguments. ``dynamic_axes`` maps input and output names to the axes that stay symbolic
    (``{"input": {0: "batch"}}`` or ``{"input": [0]}``); by default the first axis of every
    input, and every output axis that follows it, is. With a dynamic axis the model also runs at
    two and three times its example length, so that sizes that follow it are computed in the
    file rather than stored. Raises NotImplementedError naming the op
    when an op has no lowering; nothing is written then, and a written file replaces ``path``
    only once complete.
    """
    target = _fspath(path)
    proto = _build(model, example_input, input_names, output_names, opset_version, dynamic_axes)
    data = proto.SerializeToString()
    _atomic_write(target, lambda f: f.write(data))
    return proto
