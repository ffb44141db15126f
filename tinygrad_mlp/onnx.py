"""Export a model to ONNX: run it, read its graph off the tape, lower each op to ONNX.

``export(model, example_input, path)`` has the shape of ``torch.onnx.export``. The model runs
on the example in eval mode with every op application recorded (``apply``'s recorder: ops under
``no_grad`` too; a ``detach()`` is the identity); the graph behind its output is then walked from
the inputs up, and every node is lowered to standard ONNX
operators from the registry ``tinygrad_mlp.ops.OPS`` itself: an op that names its ONNX operator
(``Op.onnx``: Relu, Softmax, ...) becomes that node, any other runs its own forward on a
namespace whose arrays are tensors of the ONNX graph (so each formula is written once, in
ops.py); only reshapes, expands, indexing and the fused layers have an entry in ``LOWERINGS``.
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
import inspect
import math
import numbers
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from . import _tensor
from . import ops as O
from ._tensor import Tensor, enable_grad
from .backend import array_module_of, looks_like_cupy, np, to_numpy
from .serialization import _atomic_write, _fspath
from .viz import _auto_names, _node_of

__all__ = ["export", "LOWERINGS", "MODULE_LOWERINGS", "DEFAULT_OPSET", "SUPPORTED_OPSETS"]

DEFAULT_OPSET = 17
SUPPORTED_OPSETS = range(17, 22)
_INT64_MAX = 2**63 - 1
_INT64_MIN = -(2**63)


def _require_onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError(
            "tinygrad_mlp.onnx needs the onnx package: pip install onnx "
            '(or pip install -e ".[onnx]")'
        ) from None
    return onnx


def _host(value: Any) -> Any:
    """A host numpy array for a tensor or array (other values unchanged)."""
    if isinstance(value, Tensor):
        return to_numpy(value._data)
    if hasattr(value, "__array_interface__") or looks_like_cupy(value):
        return to_numpy(value)
    return value


# ---------------------------------------------------------------- the graph under construction


@dataclass(frozen=True)
class _Size:
    """A dimension that follows the batch size ``n``: ``a * n + c`` (a and c None when it
    changes with n in another way), ``example`` at the example's batch size."""

    a: Fraction | None
    c: Fraction | None
    example: int

    @property
    def is_batch(self) -> bool:
        return self.a == 1 and self.c == 0


Dim = int | _Size  # a dimension: fixed, or following the batch size


class _Builder:
    """ONNX nodes and initializers, with fresh names and shared small constants."""

    def __init__(self, onnx: Any, opset: int, batch: tuple[str, int] | None = None) -> None:
        self.onnx = onnx
        self.opset = opset
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.used: set[str] = set()
        self._small: dict[tuple, str] = {}
        self.batch = batch  # (input name, axis) whose size is the batch size, if any
        self.leaves: dict[int, str] = {}  # id(tensor) -> initializer name, for parameters
        self.leaf_names: dict[int, str] = {}  # id(tensor) -> its state_dict name
        self.arrays: dict[int, tuple[str, Any]] = {}  # id(a traced tensor's array) -> name, dtype

    def fresh(self, hint: str) -> str:
        name, k = hint, 0
        while name in self.used:
            k += 1
            name = f"{hint}_{k}"
        self.used.add(name)
        return name

    def node(self, op_type: str, inputs: Sequence[str], **attrs: Any) -> str:
        """Add a node; the name of its output."""
        out = self.fresh(f"{op_type}_out")
        name = self.fresh(f"{op_type}_{len(self.nodes)}")
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), [out], name, **attrs))
        return out

    def initializer(self, array: Any, name: str) -> str:
        array = np.asarray(array)
        array = np.ascontiguousarray(array).reshape(array.shape)  # NOTE: 0-d stays 0-d
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def const(self, array: Any, hint: str = "const") -> str:
        return self.initializer(array, self.fresh(hint))

    def leaf(self, t: Tensor) -> str:
        """A parameter or buffer as an initializer under its state_dict name (once)."""
        if id(t) not in self.leaves:
            name = self.leaf_names.get(id(t), "const")
            self.leaves[id(t)] = self.const(to_numpy(t._data), name)
        return self.leaves[id(t)]

    def scalar(self, value: float, dtype: Any) -> str:
        """A 0-d constant of ``dtype``, shared by every use."""
        dtype = np.dtype(dtype)
        key = ("scalar", dtype.str, repr(value))
        if key not in self._small:
            self._small[key] = self.const(np.asarray(value, dtype=dtype), "scalar")
        return self._small[key]

    def ints(self, values: Sequence[int]) -> str:
        """A 1-D int64 constant (shapes, axes, slice bounds), shared by every use."""
        key = ("ints", tuple(int(v) for v in values))
        if key not in self._small:
            self._small[key] = self.const(np.asarray(key[1], dtype=np.int64), "ints")
        return self._small[key]

    def size(self, dim: Dim) -> str:
        """A dimension as a 1-D int64 tensor of one element, read off the input's shape when
        it follows the batch size."""
        if not isinstance(dim, _Size):
            return self.ints([dim])
        if dim.a is None:
            warnings.warn(
                f"ONNX export: a dimension of size {dim.example} changes with the batch size, "
                f"but not as a * batch + b; the file keeps {dim.example} there",
                stacklevel=4,
            )
            return self.ints([dim.example])
        key = ("size", dim)
        if key not in self._small:
            name, axis = self.batch
            out = self.node("Shape", [name], start=axis, end=axis + 1)
            a, c = dim.a, dim.c
            if a.numerator != 1:
                out = self.node("Mul", [out, self.ints([a.numerator])])
            if a.denominator != 1:
                out = self.node("Div", [out, self.ints([a.denominator])])
            if c:  # NOTE: c is a whole number whenever a * n + c is one at every n traced
                out = self.node("Add", [out, self.ints([int(c)])])
            self._small[key] = out
        return self._small[key]

    def shape(self, dims: Sequence[Dim]) -> str:
        """A shape as a 1-D int64 tensor: a constant, or computed from the input's shape."""
        if not any(isinstance(d, _Size) for d in dims):
            return self.ints(dims)
        return self.node("Concat", [self.size(d) for d in dims], axis=0)

    def batch_value(self, dim: _Size, dtype: Any) -> str:
        """``a * n + c`` as a 0-d tensor of ``dtype`` (a count that follows the batch size)."""
        n = self.size(_Size(Fraction(1), Fraction(0), 0))
        n = self.node("Reshape", [n, self.ints([])])
        out = self.node("Mul", [self.cast(n, dtype), self.scalar(float(dim.a), dtype)])
        return self.node("Add", [out, self.scalar(float(dim.c), dtype)]) if dim.c else out

    def reduce(self, op_type: str, x: str, axes: Sequence[int] | None, keepdims: bool) -> str:
        """A Reduce* node over ``axes`` (None: all); axes are an input from opset 18 (13 for
        ReduceSum), an attribute before."""
        attrs: dict[str, Any] = {"keepdims": int(bool(keepdims))}
        if axes is None:
            return self.node(op_type, [x], **attrs)
        if op_type == "ReduceSum" or self.opset >= 18:
            return self.node(op_type, [x, self.ints(axes)], **attrs)
        return self.node(op_type, [x], axes=list(axes), **attrs)

    def cast(self, x: str, dtype: Any) -> str:
        to = self.onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
        return self.node("Cast", [x], to=to)


@dataclass
class _Call:
    """One recorded op (or module) as a lowering sees it."""

    b: _Builder
    names: list[str]  # the ONNX names of the input tensors
    inputs: list[Tensor]
    params: dict[str, Any]
    out: Tensor
    dims: list[tuple[Dim, ...]]  # per input: its dimensions, fixed or following the batch
    out_dims: tuple[Dim, ...]
    batch_size: int | None
    op: str = ""
    varies: bool = False  # do the op's params change with the batch size?

    @property
    def dtype(self) -> Any:
        return self.out._data.dtype

    def shape(self, i: int) -> tuple[int, ...]:
        return tuple(self.inputs[i].shape)

    def dynamic(self, i: int) -> bool:
        """Does input ``i`` have a dimension that follows the batch size?"""
        return any(isinstance(d, _Size) for d in self.dims[i])

    def x(self, i: int = 0, dtype: Any = None) -> str:
        """Input ``i``'s name, cast to ``dtype`` (default: the output's) when it differs."""
        dtype = self.dtype if dtype is None else np.dtype(dtype)
        if self.inputs[i]._data.dtype != dtype:
            return self.b.cast(self.names[i], dtype)
        return self.names[i]

    def scalar(self, value: float) -> str:
        return self.b.scalar(value, self.dtype)

    def const(self, value: Any, dtype: Any = None, hint: str = "const") -> str:
        """A constant taken from a parameter (a target, a condition), as an initializer."""
        array = np.asarray(_host(value), dtype=dtype)
        _warn_if_batch_sized(array, self.batch_size, f"{self.op} parameter")
        return self.b.const(array, hint)


# The ops whose lowering is more than their forward: sizes that follow the batch (reshape,
# expand, indexing) and the fused layers as Gemm. Every other op names its one ONNX operator
# beside it in the registry (``Op.onnx``) or runs its own forward on the graph namespace below.
LOWERINGS: dict[str, Callable[[_Call], str]] = {}


def lowering(*names: str):
    """Register a function as the ONNX lowering of the ops ``names``."""

    def add(fn):
        for name in names:
            LOWERINGS[name] = fn
        return fn

    return add


def _warn_if_batch_sized(array: Any, batch_size: int | None, what: str) -> None:
    if batch_size is not None and batch_size > 1 and array.ndim and array.shape[0] == batch_size:
        warnings.warn(
            f"ONNX export: a {what} of shape {tuple(array.shape)} has the batch size as its "
            "first dimension; it is stored as fixed values, so the file uses them at every "
            "batch size",
            stacklevel=4,
        )


def _axes(axis: Any, ndim: int) -> list[int] | None:
    """A dim argument (None, int, sequence) as sorted non-negative axes, or None for all."""
    if axis is None:
        return None
    axes = list(axis) if isinstance(axis, (tuple, list)) else [axis]
    return sorted(int(a) % max(ndim, 1) for a in axes) if ndim else []


# ---------------------------------------------------------------- shapes


@lowering("reshape")
def _reshape(c: _Call) -> str:
    # NOTE: a dimension that follows the batch is copied from the input (0) where it sits at the
    # same place, left to Reshape (-1) when it is the only other one, else computed
    dims, target = c.dims[0], []
    for i, d in enumerate(c.out_dims):
        if isinstance(d, _Size) and i < len(dims) and dims[i] == d:
            target.append(0)
        else:
            target.append(d)
    if sum(isinstance(d, _Size) for d in target) == 1:
        target = [-1 if isinstance(d, _Size) else d for d in target]
    return c.b.node("Reshape", [c.x(), c.b.shape(target)])


@lowering("expand")
def _expand(c: _Call) -> str:
    # Expand broadcasts both ways, so a 1 keeps every dim the input already has (batch included)
    dims = c.dims[0]
    lead = len(c.out_dims) - len(dims)
    target = [1 if i >= lead and dims[i - lead] == d else d for i, d in enumerate(c.out_dims)]
    return c.b.node("Expand", [c.x(), c.b.shape(target)])


def _basic_index(c: _Call, parts: tuple) -> str | None:
    """Slice / Squeeze / Unsqueeze (and a Gather for one array index) for numpy's basic
    indexing; None when the index needs the general path."""
    arrays = [i for i, p in enumerate(parts) if _host(p) is not p or isinstance(p, np.ndarray)]
    if sum(p is Ellipsis for p in parts) > 1 or len(arrays) > 1:
        return None
    array_at = arrays[0] if arrays else None
    if array_at is not None:
        if np.asarray(_host(parts[array_at])).dtype.kind not in "iu":
            return None
        if any(p is None or isinstance(p, numbers.Integral) for p in parts):
            return None  # numpy moves the dims of mixed advanced indices around
    ndim = len(c.shape(0))
    used = sum(1 for p in parts if p is not None and p is not Ellipsis)
    if used > ndim:
        return None
    expanded: list[Any] = []
    for p in parts:
        expanded.extend([slice(None)] * (ndim - used) if p is Ellipsis else [p])
    expanded.extend([slice(None)] * (ndim - sum(p is not None for p in expanded)))
    starts, ends, axes, steps, squeeze, unsqueeze = [], [], [], [], [], []
    axis = out_dim = 0
    gather = None
    for p in expanded:
        if p is None:
            unsqueeze.append(out_dim)
            out_dim += 1
            continue
        if isinstance(p, numbers.Integral):
            i = int(p)
            starts.append(i), ends.append(_INT64_MAX if i == -1 else i + 1)
            axes.append(axis), steps.append(1), squeeze.append(axis)
        elif isinstance(p, slice):
            step = 1 if p.step is None else int(p.step)
            if (p.start, p.stop, step) != (None, None, 1):
                default_start, default_stop = (0, _INT64_MAX) if step > 0 else (-1, _INT64_MIN)
                starts.append(default_start if p.start is None else int(p.start))
                ends.append(default_stop if p.stop is None else int(p.stop))
                axes.append(axis), steps.append(step)
            out_dim += 1
        else:
            gather = (axis, np.asarray(_host(p), dtype=np.int64))
            out_dim += gather[1].ndim
        axis += 1
    out = c.x()
    if axes:
        out = c.b.node(
            "Slice", [out, c.b.ints(starts), c.b.ints(ends), c.b.ints(axes), c.b.ints(steps)]
        )
    if squeeze:
        out = c.b.node("Squeeze", [out, c.b.ints(squeeze)])
    if gather is not None:
        out = c.b.node("Gather", [out, c.const(gather[1], hint="index")], axis=gather[0])
    if unsqueeze:
        out = c.b.node("Unsqueeze", [out, c.b.ints(unsqueeze)])
    return out


def _extreme_along(c: _Call, index: Any) -> str | None:
    """``x.gather(d, x.argmax(d, keepdim=True))`` (what ``max(dim).values`` records) as a
    ReduceMax over d (ReduceMin for argmin): the same values at every batch size; None when
    the index is not that."""
    x = to_numpy(c.inputs[0]._data)
    if not isinstance(index, tuple) or len(index) != x.ndim or x.dtype.kind != "f" or not x.size:
        return None
    arrays = [np.asarray(_host(p)) if hasattr(_host(p), "shape") else None for p in index]
    if any(a is None or a.dtype.kind not in "iu" or a.ndim != x.ndim for a in arrays):
        return None

    def is_grid(i: int) -> bool:  # the whole of axis i, in order (as numpy's ogrid gives)
        shape = [1] * x.ndim
        shape[i] = x.shape[i]
        a = arrays[i]
        return a.shape == tuple(shape) and bool((a.reshape(-1) == np.arange(x.shape[i])).all())

    picked = [i for i in range(x.ndim) if not is_grid(i)]
    if len(picked) != 1:
        return None
    d = picked[0]
    want = list(x.shape)
    want[d] = 1
    if arrays[d].shape != tuple(want):
        return None
    for arg, op_type in (("argmax", "ReduceMax"), ("argmin", "ReduceMin")):
        if np.array_equal(arrays[d], np.expand_dims(getattr(x, arg)(axis=d), d)):
            return c.b.reduce(op_type, c.x(), [d], True)
    return None


@lowering("getitem")
def _getitem(c: _Call) -> str:
    index = c.params["index"]
    parts = index if isinstance(index, tuple) else (index,)
    if len(parts) == 1 and id(parts[0]) in c.b.arrays:  # rows picked by a traced tensor
        name, dtype = c.b.arrays[id(parts[0])]  # (an embedding's indices): a Gather of them
        if np.dtype(dtype).kind in "iu":
            return c.b.node("Gather", [c.x(), name], axis=0)
    out = _extreme_along(c, index)
    if out is not None:
        return out
    if c.varies:
        warnings.warn(
            f"ONNX export: the index {index!r:.80} changes with the batch size; the file keeps "
            "the example's",
            stacklevel=3,
        )
    out = _basic_index(c, parts)
    if out is not None:
        return out
    # any other numpy index: gather the picked elements by their flat positions (fixed shapes)
    if c.dynamic(0) and not c.varies:
        warnings.warn(
            f"ONNX export: the index {index!r} is stored as fixed positions, so this part of "
            "the file works at the example's batch size only",
            stacklevel=3,
        )
    positions = np.arange(math.prod(c.shape(0)), dtype=np.int64).reshape(c.shape(0))
    flat = c.b.node("Reshape", [c.x(), c.b.ints([-1])])
    return c.b.node("Gather", [flat, c.b.const(positions[_index(index)], "positions")], axis=0)


def _index(index: Any) -> Any:
    if isinstance(index, tuple):
        return tuple(_index(p) for p in index)
    return _host(index)


@lowering("diagonal")
def _diagonal(c: _Call) -> str:
    # the diagonal's elements picked out of the flattened input by their flat positions
    shape, p = c.shape(0), c.params
    index = O._diagonal_index(shape, p["offset"], p["dim1"], p["dim2"])
    flat = np.ravel_multi_index(np.broadcast_arrays(*index), shape)
    x = c.b.node("Reshape", [c.x(), c.b.ints([-1])])
    return c.b.node("Gather", [x, c.const(flat, np.int64, "diagonal_positions")], axis=0)


@lowering("copy_slices")
def _copy_slices(c: _Call) -> str:
    # the base with the value written at the flat positions: ScatterElements on the flat base
    b, positions = c.b, c.params["positions"]
    if positions is None:  # the value is written over all of the base
        return b.node("Identity", [c.x(1)])
    flat = b.node("Reshape", [c.x(0), b.ints([-1])])
    value = b.node("Reshape", [c.x(1), b.ints([-1])])
    positions, take = np.asarray(_host(positions)).reshape(-1), c.params.get("take")
    if take is not None:  # repeated positions: only the entries written last
        take = np.asarray(_host(take)).reshape(-1)
        value = b.node("Gather", [value, c.const(take, np.int64, "written_entries")], axis=0)
        positions = positions[take]
    where = c.const(positions, np.int64, "written_positions")
    out = b.node("ScatterElements", [flat, where, value], axis=0)
    return b.node("Reshape", [out, b.ints(list(c.shape(0)))])


@lowering("var")
def _var(c: _Call) -> str:
    # sum of squared deviations over (count - correction); the count is summed in the graph,
    # so that a reduction over the batch follows the batch size
    b, x, p = c.b, c.x(0), c.params
    axes = _axes(p.get("axis"), len(c.shape(0)))
    centred = b.node("Sub", [x, b.reduce("ReduceMean", x, axes, True)])
    squares = b.reduce("ReduceSum", b.node("Mul", [centred, centred]), axes, p.get("keepdims"))
    ones = b.node("Add", [b.node("Mul", [x, c.scalar(0.0)]), c.scalar(1.0)])
    count = b.reduce("ReduceSum", ones, axes, p.get("keepdims"))
    dof = b.node("Sub", [count, c.scalar(float(p.get("correction", 1)))])
    return b.node("Div", [squares, dof])


@lowering("remainder")
def _remainder(c: _Call) -> str:
    # Python's remainder, with the divisor's sign: a - floor(a / b) b (Mod for integers)
    b, x, y = c.b, c.x(0), c.x(1)
    if np.dtype(c.dtype).kind in "iu":
        return b.node("Mod", [x, y], fmod=0)
    quotient = b.node("Floor", [b.node("Div", [x, y])])
    return b.node("Sub", [x, b.node("Mul", [quotient, y])])


@lowering("scatter")
def _scatter(c: _Call) -> str:
    # getitem's adjoint: zeros of ``shape`` with the input added at ``index`` (fixed shapes)
    shape = tuple(c.params["shape"])
    positions = np.arange(math.prod(shape), dtype=np.int64).reshape(shape)[
        _index(c.params["index"])
    ]
    zeros = c.b.node("Expand", [c.scalar(0.0), c.b.ints([math.prod(shape)])])
    updates = c.b.node("Reshape", [c.x(), c.b.ints([-1])])
    index = c.b.const(positions.reshape(-1), "positions")
    flat = c.b.node("ScatterElements", [zeros, index, updates], axis=0, reduction="add")
    return c.b.node("Reshape", [flat, c.b.ints(shape)])


@lowering("scatter_last")
def _scatter_last(c: _Call) -> str:
    # the kept writes gathered out of the input, then written into zeros (fixed positions)
    size, last = c.params["size"], _host(c.params["last"])
    kept = c.b.node("Gather", [c.x(), c.b.const(last.astype(np.int64), "last")], axis=0)
    positions = _host(c.params["positions"])[last].astype(np.int64)
    zeros = c.b.node("Expand", [c.scalar(0.0), c.b.ints([size])])
    index = c.b.const(positions, "positions")
    return c.b.node("ScatterElements", [zeros, index, kept], axis=0)


# ---------------------------------------------------------------- inverse trigonometry, scans,
# einsum and linear algebra


def _float32_unary(op_type: str) -> Callable[[_Call], str]:
    # NOTE: ONNX Runtime has these in float32 only: a float64 file computes them in float32
    def lower(c: _Call) -> str:
        if c.dtype == np.float32:
            return c.b.node(op_type, [c.x()])
        return c.b.cast(c.b.node(op_type, [c.x(dtype=np.float32)]), c.dtype)

    return lower


for _name, _type in {"atan": "Atan", "asin": "Asin", "acos": "Acos"}.items():
    LOWERINGS[_name] = _float32_unary(_type)


@lowering("atan2")
def _atan2(c: _Call) -> str:
    # atan(y / x), moved by +-pi where x < 0 (the sign of y picks which)
    b, y, x = c.b, c.x(0), c.x(1)
    ratio = b.node("Div", [y, x])
    if c.dtype == np.float32:
        base = b.node("Atan", [ratio])
    else:  # ONNX Runtime's Atan is float32 only
        base = b.cast(b.node("Atan", [b.cast(ratio, np.float32)]), c.dtype)
    turn = b.node(
        "Where", [b.node("Less", [y, c.scalar(0.0)]), c.scalar(-math.pi), c.scalar(math.pi)]
    )
    shift = b.node("Where", [b.node("Less", [x, c.scalar(0.0)]), turn, c.scalar(0.0)])
    return b.node("Add", [base, shift])


@lowering("cumsum")
def _cumsum(c: _Call) -> str:
    return c.b.node("CumSum", [c.x(), c.b.scalar(int(c.params["axis"]), np.int64)])


@lowering("einsum")
def _einsum(c: _Call) -> str:
    inputs = [c.x(i) for i in range(len(c.names))]
    return c.b.node("Einsum", inputs, equation=c.params["equation"])


@lowering("linalg_det")
def _det(c: _Call) -> str:
    if c.dtype == np.float32:
        return c.b.node("Det", [c.x()])
    # NOTE: ONNX Runtime's Det is float32 only: a float64 file computes it in float32
    return c.b.cast(c.b.node("Det", [c.x(dtype=np.float32)]), c.dtype)


def _no_onnx_operator(c: _Call) -> str:
    raise NotImplementedError(
        f"ONNX export: ONNX has no operator for {c.op} (linalg.solve, cholesky, eigh, qr "
        "and svd cannot be exported)"
    )


for _name in ("linalg_solve", "linalg_cholesky", "linalg_eigh", "linalg_qr", "linalg_svd"):
    LOWERINGS[_name] = _no_onnx_operator


# ---------------------------------------------------------------- matrix products and layers


@lowering("matmul")
def _matmul(c: _Call) -> str:
    return c.b.node("MatMul", [c.x(0), c.x(1)])


def _linear_layer(b: _Builder, x: str, ndim: int, w: str, bias: str | None) -> str:
    if ndim == 2:
        return b.node("Gemm", [x, w] + ([bias] if bias else []), transB=1)
    out = b.node("MatMul", [x, b.node("Transpose", [w], perm=[1, 0])])
    return b.node("Add", [out, bias]) if bias else out


@lowering("linear")
def _linear(c: _Call) -> str:
    bias = c.x(2) if len(c.names) > 2 and c.inputs[2] is not None else None
    return _linear_layer(c.b, c.x(0), len(c.shape(0)), c.x(1), bias)


@lowering("mlp")
def _mlp(c: _Call) -> str:
    # the fused stack, layer by layer: Gemm(h, W, b, transB=1), then the layer's activation
    # (its own ONNX operator, or its forward from the registry run on the graph namespace)
    g, h = _Graph(c.b, c.batch_size, c.op), c.x(0)
    for i, act in enumerate(c.params["acts"]):
        h = _linear_layer(c.b, h, 2, c.x(2 * i + 1), c.x(2 * i + 2))
        spec = O.activation_spec(act)
        if spec is not None:
            entry, params = spec
            if entry.onnx is not None:
                h = c.b.node(entry.onnx, [h], **params)
            else:
                dims = (c.dims[0][0], c.shape(2 * i + 1)[0])
                h = entry.forward(g, _Sym(g, h, c.dtype, dims), **params).name
    return h


# ---------------------------------------------------------------- convolution and pooling


def _window_attrs(c: _Call, pairs: Any, stride: Any, dilation: Any = None) -> dict[str, Any]:
    attrs = {"pads": [lo for lo, _ in pairs] + [hi for _, hi in pairs], "strides": list(stride)}
    if dilation is not None:
        attrs["dilations"] = list(dilation)
    return attrs


def _one_hot_kernel(c: _Call, channels: int, kernel: Any) -> str:
    # (C K, 1, *kernel): channel c's k-th filter picks window position k, so a grouped Conv
    # with it lays the windows out as unfold does
    k = math.prod(kernel)
    eye = np.tile(
        np.eye(k, dtype=c.dtype).reshape((k, 1, *kernel)), (channels, 1) + (1,) * len(kernel)
    )
    return c.b.const(eye, "windows_kernel")


@lowering("conv")
def _conv(c: _Call) -> str:
    p = c.params
    attrs = _window_attrs(c, p["padding"], p["stride"], p["dilation"])
    ins = [c.x(0), c.x(1)] + ([c.x(2)] if len(c.names) > 2 else [])
    return c.b.node("Conv", ins, kernel_shape=list(c.shape(1)[2:]), group=p["groups"], **attrs)


def _pool_pairs(c: _Call, dilation: Any) -> Any:
    # NOTE: PyTorch's ceil mode drops a last window that would start in the right padding,
    # ONNX's does not: the exact output size comes from explicit after-padding instead
    p = c.params
    size = c.shape(0)[2:]
    return O.pool_padding(
        size, p["kernel_size"], dilation, p["padding"], p["stride"], p["ceil_mode"]
    )


@lowering("max_pool")
def _max_pool(c: _Call) -> str:
    p = c.params
    attrs = _window_attrs(c, _pool_pairs(c, p["dilation"]), p["stride"], p["dilation"])
    return c.b.node("MaxPool", [c.x()], kernel_shape=list(p["kernel_size"]), **attrs)


@lowering("avg_pool")
def _avg_pool(c: _Call) -> str:
    # the mean over the elements inside the input, rescaled to the op's divisor when it differs
    p = c.params
    nd = len(p["kernel_size"])
    attrs = _window_attrs(c, _pool_pairs(c, (1,) * nd), p["stride"])
    out = c.b.node(
        "AveragePool", [c.x()], kernel_shape=list(p["kernel_size"]), count_include_pad=0, **attrs
    )
    inside = O.pool_divisor(
        c.shape(0)[2:], p["kernel_size"], p["stride"], p["padding"], p["ceil_mode"], False
    )
    scale = inside / np.asarray(_host(p["divisor"]), dtype=np.float64)
    if np.all(scale == 1):
        return out
    return c.b.node("Mul", [out, c.const(np.broadcast_to(scale, inside.shape), c.dtype)])


@lowering("unfold")
def _unfold(c: _Call) -> str:
    p = c.params
    channels, kernel = c.shape(0)[1], p["kernel_size"]
    cols = c.b.node(
        "Conv",
        [c.x(), _one_hot_kernel(c, channels, kernel)],
        kernel_shape=list(kernel),
        group=channels,
        **_window_attrs(c, p["padding"], p["stride"], p["dilation"]),
    )
    shape = [0, channels, *kernel, *tuple(c.out.shape)[2 + len(kernel) :]]
    return c.b.node("Reshape", [cols, c.b.ints(shape)])


@lowering("fold")
def _fold(c: _Call) -> str:
    # fold is unfold's adjoint: the transposed grouped Conv with the same one-hot kernel
    p = c.params
    shape = c.shape(0)
    channels, kernel, nd = shape[1], p["kernel_size"], len(p["kernel_size"])
    counts = shape[2 + nd :]
    cols = c.b.node("Reshape", [c.x(), c.b.ints([0, channels * math.prod(kernel), *counts])])
    extra = [
        n + lo + hi - ((m - 1) * s + d * (k - 1) + 1)
        for n, (lo, hi), m, s, d, k in zip(
            p["output_size"],
            p["padding"],
            counts,
            p["stride"],
            p["dilation"],
            kernel,
            strict=True,
        )
    ]
    return c.b.node(
        "ConvTranspose",
        [cols, _one_hot_kernel(c, channels, kernel)],
        kernel_shape=list(kernel),
        group=channels,
        output_padding=extra,
        **_window_attrs(c, p["padding"], p["stride"], p["dilation"]),
    )


# ---------------------------------------------------------------- the graph namespace

# An op with no entry in LOWERINGS and no ``onnx`` operator of its own is lowered by running its
# own forward (tinygrad_mlp/ops.py) on this namespace: its arrays are _Graph tensors, whose
# operators and functions add ONNX nodes, so each op's formula is written once, in the registry.


def _broadcast(*dims: tuple[Dim, ...]) -> tuple[Dim, ...]:
    """numpy's broadcast of shapes whose dimensions may follow the batch."""
    out: list[Dim] = []
    for k in range(max(map(len, dims), default=0)):
        sizes = [d[len(d) - 1 - k] for d in dims if k < len(d)]
        grown = [s for s in sizes if s != 1]
        follows = [s for s in grown if isinstance(s, _Size)]
        out.append(follows[0] if follows else grown[0] if grown else 1)
    return tuple(reversed(out))


def _example(d: Dim) -> int:
    return d.example if isinstance(d, _Size) else d


class _Sym:
    """A tensor of the graph under construction, as an op's forward sees an array: numpy's
    operators and the few array methods the registry's forwards use, each adding nodes."""

    __array_ufunc__ = None  # numpy arrays and scalars leave the operators to this class

    def __init__(self, g: _Graph, name: str, dtype: Any, dims: tuple[Dim, ...]) -> None:
        self.g, self.name, self.dtype, self.dims = g, name, np.dtype(dtype), tuple(dims)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(map(_example, self.dims))

    @property
    def ndim(self) -> int:
        return len(self.dims)

    def __pow__(self, other: Any) -> _Sym:
        if isinstance(other, numbers.Real) and other == 0.5:
            return self.g.unary("Sqrt", self)
        return self.g.binary("Pow", self, other)

    def __neg__(self) -> _Sym:
        return self.g.unary("Neg", self)

    def __getitem__(self, index: Any) -> _Sym:
        # only what the loss forwards do: pick elements of a vector by integer positions
        index = np.asarray(_host(index))
        if self.ndim != 1 or index.dtype.kind not in "iu":
            raise NotImplementedError(f"ONNX export: the index {index!r:.60} of a graph tensor")
        picked = self.g.b.node("Gather", [self.name, self.g.const(index, np.int64)], axis=0)
        return _Sym(self.g, picked, self.dtype, index.shape)

    def sum(self, axis: Any = None, keepdims: bool = False) -> _Sym:
        return self.g.reduce("ReduceSum", self, axis, keepdims)

    def mean(self, axis: Any = None, keepdims: bool = False) -> _Sym:
        return self.g.reduce("ReduceMean", self, axis, keepdims)

    def reshape(self, shape: Any) -> _Sym:
        """A reshape inside a forward: the literal shape where nothing follows the batch or a
        -1 takes it, else 1s dropped and inserted around the same dimensions."""
        target = (shape,) if isinstance(shape, numbers.Integral) else tuple(shape)
        b, dims = self.g.b, self.dims
        grows = [d for d in dims if isinstance(d, _Size)]
        if -1 in target or not grows:
            known = max(math.prod(n for n in target if n != -1), 1)
            free: Dim = math.prod(self.shape) // known  # what -1 stands for in the example
            if len(grows) == 1 and grows[0].a is not None and grows[0].c == 0:
                rest = math.prod(d for d in dims if not isinstance(d, _Size))
                free = _Size(grows[0].a * rest / known, Fraction(0), free)
            elif grows:
                free = _Size(None, None, free)
            out = tuple(free if n == -1 else n for n in target)
            return _Sym(self.g, b.node("Reshape", [self.name, b.ints(target)]), self.dtype, out)
        squeeze, unsqueeze, out, i = [], [], [], 0
        for j, n in enumerate(target):
            while i < len(dims) and _example(dims[i]) != n and dims[i] == 1:
                squeeze.append(i)
                i += 1
            if i < len(dims) and _example(dims[i]) == n:
                out.append(dims[i])
                i += 1
            elif n == 1:
                unsqueeze.append(j)
                out.append(1)
            else:
                raise NotImplementedError(
                    f"ONNX export: a reshape from {self.shape} to {target} inside a forward"
                )
        squeeze += [k for k in range(i, len(dims)) if dims[k] == 1]
        name = self.name
        if squeeze:
            name = b.node("Squeeze", [name, b.ints(squeeze)])
        if unsqueeze:
            name = b.node("Unsqueeze", [name, b.ints(unsqueeze)])
        return _Sym(self.g, name, self.dtype, tuple(out))


def _operator(op_type: str, reflected: bool = False, out_dtype: Any = None) -> Callable:
    """numpy's operator ``op_type`` on graph tensors (``reflected``: the tensor is on the right)."""

    def method(self: _Sym, other: Any) -> _Sym:
        a, b = (other, self) if reflected else (self, other)
        return self.g.binary(op_type, a, b, out_dtype)

    return method


for _name, _type in [("add", "Add"), ("sub", "Sub"), ("mul", "Mul"), ("truediv", "Div")]:
    setattr(_Sym, f"__{_name}__", _operator(_type))
    setattr(_Sym, f"__r{_name}__", _operator(_type, reflected=True))
_Sym.__rpow__ = _operator("Pow", reflected=True)
for _name, _type in [("gt", "Greater"), ("ge", "GreaterOrEqual"), ("lt", "Less"),
                     ("le", "LessOrEqual")]:  # fmt: skip
    setattr(_Sym, f"__{_name}__", _operator(_type, out_dtype=bool))


def _elementwise(op_type: str) -> Callable:
    """The namespace function of the ONNX operator ``op_type`` of one input."""

    def function(self: _Graph, x: _Sym) -> _Sym:
        return self.unary(op_type, x)

    return function


class _Graph:
    """The namespace ``ns`` of the registry's forwards, adding ONNX nodes (see ops.py)."""

    def __init__(self, b: _Builder, batch_size: int | None, op: str) -> None:
        self.b, self.batch_size, self.op = b, batch_size, op

    def __getattr__(self, name: str) -> Any:
        raise NotImplementedError(f"ONNX export: the graph namespace has no {name!r}")

    def const(self, array: Any, dtype: Any = None) -> str:
        """A constant taken from a parameter (a target, a condition), as an initializer."""
        array = np.asarray(_host(array), dtype=dtype)
        _warn_if_batch_sized(array, self.batch_size, f"{self.op} parameter")
        return self.b.const(array, "const")

    def name_of(self, value: Any, dtype: Any) -> str:
        """A graph tensor, a number or an array as the name of a tensor of ``dtype``."""
        if isinstance(value, _Sym):
            return value.name if value.dtype == dtype else self.b.cast(value.name, dtype)
        if isinstance(value, (numbers.Number, np.generic)):
            return self.b.scalar(value, dtype)
        if id(value) in self.b.arrays:  # a parameter that is a traced tensor's values
            name, own = self.b.arrays[id(value)]
            return name if own == dtype else self.b.cast(name, dtype)
        return self.const(value, dtype)

    @staticmethod
    def dims_of(value: Any) -> tuple[Dim, ...]:
        return value.dims if isinstance(value, _Sym) else tuple(np.shape(_host(value)))

    @staticmethod
    def dtype_of(*values: Any) -> Any:
        """numpy's result type (a Python number takes the other operand's type)."""
        kinds = [v.dtype if isinstance(v, _Sym) else _host(v) for v in values]
        return np.result_type(*kinds)

    def binary(self, op_type: str, a: Any, b: Any, out_dtype: Any = None) -> _Sym:
        dtype = self.dtype_of(a, b)
        name = self.b.node(op_type, [self.name_of(a, dtype), self.name_of(b, dtype)])
        dims = _broadcast(self.dims_of(a), self.dims_of(b))
        return _Sym(self, name, dtype if out_dtype is None else out_dtype, dims)

    def unary(self, op_type: str, x: _Sym, **attrs: Any) -> _Sym:
        return _Sym(self, self.b.node(op_type, [x.name], **attrs), x.dtype, x.dims)

    def reduce(self, op_type: str, x: _Sym, axis: Any, keepdims: bool) -> _Sym:
        axes = _axes(axis, x.ndim)
        gone = set(range(x.ndim)) if axes is None else set(axes)
        dims = tuple(
            1 if i in gone else d for i, d in enumerate(x.dims) if keepdims or i not in gone
        )
        return _Sym(self, self.b.reduce(op_type, x.name, axes, keepdims), x.dtype, dims)

    exp, log, sin, cos, tanh, abs, sign = map(
        _elementwise, ["Exp", "Log", "Sin", "Cos", "Tanh", "Abs", "Sign"]
    )

    def log1p(self, x: _Sym) -> _Sym:
        return self.log(x + 1.0)

    def expm1(self, x: _Sym) -> _Sym:
        return self.exp(x) - 1.0

    def erf(self, x: _Sym) -> _Sym:
        if x.dtype == np.float64:  # NOTE: ONNX Runtime has Erf for float32 only
            return self.cast(self.unary("Erf", self.cast(x, np.float32)), np.float64)
        return self.unary("Erf", x)

    def maximum(self, a: Any, b: Any) -> _Sym:
        return self.binary("Max", a, b)

    def minimum(self, a: Any, b: Any) -> _Sym:
        return self.binary("Min", a, b)

    def where(self, condition: Any, a: Any, b: Any) -> _Sym:
        dtype = self.dtype_of(a, b)
        if not isinstance(condition, _Sym):  # a constant that holds one value: that value
            one = _uniform(_host(condition))
            shape = np.broadcast_shapes(*(tuple(map(_example, self.dims_of(v))) for v in (a, b)))
            if one is not None and np.broadcast_shapes(np.shape(_host(condition)), shape) == shape:
                condition = bool(one)
        names = [self.name_of(condition, bool), self.name_of(a, dtype), self.name_of(b, dtype)]
        dims = _broadcast(*map(self.dims_of, (condition, a, b)))
        return _Sym(self, self.b.node("Where", names), dtype, dims)

    def clip(self, x: _Sym, low: Any, high: Any) -> _Sym:
        if all(v is None or isinstance(v, numbers.Real) for v in (low, high)):
            lo, hi = ("" if v is None else self.b.scalar(v, x.dtype) for v in (low, high))
            return _Sym(self, self.b.node("Clip", [x.name, lo, hi] if hi else [x.name, lo]),
                        x.dtype, x.dims)  # fmt: skip
        out = x if low is None else self.maximum(x, low)  # bounds given as arrays
        return out if high is None else self.minimum(out, high)

    def amax(self, x: _Sym, axis: Any = None, keepdims: bool = False) -> _Sym:
        return self.reduce("ReduceMax", x, axis, keepdims)

    def prod(self, x: _Sym, axis: Any = None, keepdims: bool = False) -> _Sym:
        return self.reduce("ReduceProd", x, axis, keepdims)

    def row_max(self, x: _Sym) -> _Sym:
        return self.reduce("ReduceMax", x, 1, False)

    def row_sums(self, x: _Sym) -> _Sym:
        return self.reduce("ReduceSum", x, 1, False)

    def constant(self, kind: str, n: int, arg: Any) -> Any:
        return np.ones(n, arg) if kind == "ones" else np.arange(0, n * arg, arg)

    def matmul(self, a: _Sym, b: _Sym) -> _Sym:
        dtype = self.dtype_of(a, b)
        dims = _broadcast(a.dims[:-2], b.dims[:-2]) + a.dims[-2:-1] + b.dims[-1:]
        if b.ndim == 1:
            dims = _broadcast(a.dims[:-2]) + a.dims[-2:-1]
        if a.ndim == 1:
            dims = b.dims[:-2] + b.dims[-1:]
        name = self.b.node("MatMul", [self.name_of(a, dtype), self.name_of(b, dtype)])
        return _Sym(self, name, dtype, dims)

    mm = matmul

    def permute(self, x: _Sym, axes: Sequence[int]) -> _Sym:
        perm = [int(a) % x.ndim for a in axes]
        return _Sym(self, self.b.node("Transpose", [x.name], perm=perm), x.dtype,
                    tuple(x.dims[a] for a in perm))  # fmt: skip

    def concatenate(self, xs: Sequence[_Sym], axis: int = 0) -> _Sym:
        dtype = self.dtype_of(*xs)
        axis = int(axis) % xs[0].ndim
        sizes = [x.dims[axis] for x in xs]
        if any(isinstance(s, _Size) for s in sizes):
            grown = [
                s if isinstance(s, _Size) else _Size(Fraction(0), Fraction(s), s) for s in sizes
            ]
            ok = all(s.a is not None for s in grown)
            size: Dim = (
                _Size(sum(s.a for s in grown), sum(s.c for s in grown), sum(map(_example, sizes)))
                if ok
                else _Size(None, None, sum(map(_example, sizes)))
            )
        else:
            size = sum(sizes)
        dims = xs[0].dims[:axis] + (size,) + xs[0].dims[axis + 1 :]
        name = self.b.node("Concat", [self.name_of(x, dtype) for x in xs], axis=axis)
        return _Sym(self, name, dtype, dims)

    def cast(self, x: _Sym, dtype: Any) -> _Sym:
        return _Sym(self, self.b.cast(x.name, dtype), dtype, x.dims)

    def to_device(self, x: _Sym, device: Any) -> _Sym:
        # an ONNX runtime places tensors itself: a copy between devices is the identity
        return _Sym(self, self.b.node("Identity", [x.name]), x.dtype, x.dims)

    def device_of(self, x: _Sym) -> None:
        return None


def _from_forward(c: _Call, op: Any) -> str:
    """Lower an op by running its own forward on the graph namespace; an op with a
    ``reduction`` runs unreduced, then ReduceMean / ReduceSum (the count stays symbolic)."""
    g = _Graph(c.b, c.batch_size, c.op)
    xs = [
        _Sym(g, name, x._data.dtype, dims) if isinstance(x, Tensor) else x
        for name, x, dims in zip(c.names, c.inputs, c.dims, strict=True)
    ]
    params = dict(c.params)
    default = inspect.signature(op.forward).parameters.get("reduction")
    reduction = params.get("reduction", None if default is None else default.default)
    if reduction is not None:
        params["reduction"] = "none"
    try:
        out, _ = op.forward(g, *xs, **params)
    except (AttributeError, TypeError, NotImplementedError) as e:
        raise NotImplementedError(
            f"ONNX export: no lowering for op {op.name!r}: its forward does not run on ONNX "
            f"tensors ({e}); add one to tinygrad_mlp.onnx.LOWERINGS"
        ) from None
    name = out.name if out.dtype == c.dtype else c.b.cast(out.name, c.dtype)
    if reduction in ("mean", "sum"):
        return c.b.reduce("ReduceMean" if reduction == "mean" else "ReduceSum", name, None, False)
    return name


def _lower(c: _Call, op: Any) -> str:
    """An op's ONNX nodes: its entry in LOWERINGS, its own ONNX operator, or its forward."""
    if op.name in LOWERINGS:
        return LOWERINGS[op.name](c)
    if op.onnx is not None:  # one standard operator, the op's params as its attributes
        return c.b.node(op.onnx, [c.x(i) for i in range(len(c.names))], **c.params)
    return _from_forward(c, op)


# ---------------------------------------------------------------- modules lowered whole


def _batch_norm(c: _Call) -> str:
    # eval mode: (x - running_mean) / sqrt(running_var + eps) * weight + bias per channel (dim 1)
    m, b = c.params["module"], c.b

    def stat(t: Tensor | None, fill: float, hint: str) -> str:
        if t is None:
            return b.const(np.full(m.num_features, fill, dtype=c.dtype), hint)
        name = b.leaf(t)
        return name if t._data.dtype == c.dtype else b.cast(name, c.dtype)

    weight, bias = getattr(m, "weight", None), getattr(m, "bias", None)
    stats = [stat(weight, 1.0, "weight"), stat(bias, 0.0, "bias")]
    stats += [stat(m.running_mean, 0.0, "mean"), stat(m.running_var, 1.0, "var")]
    return b.node("BatchNormalization", [c.x(), *stats], epsilon=float(m.eps))


# module class name -> (does this instance lower whole?, its lowering): the module's forward is
# then one node, its input the module's input, as torch.onnx.export writes it
MODULE_LOWERINGS: dict[str, tuple[Callable[[Any], bool], Callable[[_Call], str]]] = {
    "BatchNorm1d": (
        lambda m: m.running_mean is not None and m.running_var is not None,
        _batch_norm,
    ),
}


def _module_lowering(m: Any) -> Callable[[_Call], str] | None:
    entry = MODULE_LOWERINGS.get(type(m).__name__)
    return entry[1] if entry is not None and entry[0](m) else None


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

    outer = _tensor._recorder  # NOTE: apply's recorder sees the ops the tape leaves out

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
        _tensor._recorder = on_apply
        with enable_grad():
            result = model(*inputs)
    finally:
        _tensor._recorder = outer
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


def _uniform(array: Any) -> Any:
    """The one value of an array that holds one value everywhere, else None."""
    flat = np.asarray(array).reshape(-1)
    return flat[0].item() if flat.size and bool((flat == flat[0]).all()) else None


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
