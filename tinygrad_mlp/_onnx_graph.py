"""The ONNX graph under construction and the lowering of ops and modules into it.

``_Builder`` holds the nodes, initializers and names of the graph being written; ``LOWERINGS``
maps the ops whose lowering is more than their forward (reshapes, expands, indexing, the fused
layers) to their lowering; every other op names its ONNX operator in the registry or runs its
own forward on the graph namespace (``_Graph``) here. ``MODULE_LOWERINGS`` lists the modules
lowered whole. tinygrad_mlp.onnx traces a model and calls ``_lower`` on each recorded op.
"""

from __future__ import annotations

import inspect
import math
import numbers
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from . import ops as O
from ._tensor import Tensor
from .backend import looks_like_cupy, np, to_numpy

_INT64_MAX = 2**63 - 1
_INT64_MIN = -(2**63)


def _host(value: Any) -> Any:
    """A host numpy array for a tensor or array (other values unchanged)."""
    if isinstance(value, Tensor):
        return to_numpy(value._data)
    if hasattr(value, "__array_interface__") or looks_like_cupy(value):
        return to_numpy(value)
    return value


def _uniform(array: Any) -> Any:
    """The one value of an array that holds one value everywhere, else None."""
    flat = np.asarray(array).reshape(-1)
    return flat[0].item() if flat.size and bool((flat == flat[0]).all()) else None


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
# own forward (tinygrad_mlp/ops/) on this namespace: its arrays are _Graph tensors, whose
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
    """The namespace ``ns`` of the registry's forwards, adding ONNX nodes (see ops/)."""

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
    def scalar(value: float, like: Any) -> float:
        """A constant operand: the number itself, which takes the other operand's dtype."""
        return value

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
