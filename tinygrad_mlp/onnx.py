"""Export a model to ONNX: run it once, read its graph off the tape, lower each op to ONNX.

``export(model, example_input, path)`` has the shape of ``torch.onnx.export``. The model runs
once on the example (in eval mode, with grad enabled so that every op is recorded); the graph
behind its output is then walked from the inputs up, and every node is lowered by the entry for
its op in ``LOWERINGS`` (one per op of the registry ``tinygrad_mlp.ops.OPS``) to standard ONNX
operators. Parameters and buffers become initializers under their ``state_dict`` names, other
constants become initializers too. The first dimension of every input is dynamic by default
(``dynamic_axes``), and reshapes are written with 0 / -1 for it, so the file runs at any batch
size.

Values computed outside the graph (comparisons, ``argmax``, anything under ``no_grad``, the
condition of ``where``, loss targets) are stored as constants: the exported file computes with
those fixed values. A constant whose first dimension is the batch size draws a warning.

Needs the ``onnx`` package (``pip install onnx``); ONNX Runtime runs the file.
"""

from __future__ import annotations

import math
import numbers
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from . import ops
from ._tensor import Tensor, enable_grad
from .backend import looks_like_cupy, np, to_numpy
from .serialization import _atomic_write, _fspath
from .viz import _auto_names, _node_of, graph_of

__all__ = ["export", "LOWERINGS", "DEFAULT_OPSET", "SUPPORTED_OPSETS"]

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


class _Builder:
    """ONNX nodes and initializers, with fresh names and shared small constants."""

    def __init__(self, onnx: Any, opset: int) -> None:
        self.onnx = onnx
        self.opset = opset
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.used: set[str] = set()
        self._small: dict[tuple, str] = {}

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
        array = np.ascontiguousarray(array)
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def const(self, array: Any, hint: str = "const") -> str:
        return self.initializer(array, self.fresh(hint))

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
    """One recorded op as a lowering sees it."""

    b: _Builder
    names: list[str]  # the ONNX names of the input tensors
    inputs: list[Tensor]
    params: dict[str, Any]
    out: Tensor
    batched: list[bool]  # per input: does it depend on an input with a dynamic first dim?
    batch_size: int | None

    @property
    def dtype(self) -> Any:
        return self.out._data.dtype

    def shape(self, i: int) -> tuple[int, ...]:
        return tuple(self.inputs[i].shape)

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
        _warn_if_batch_sized(array, self.batch_size, f"{self.out_op} parameter")
        return self.b.const(array, hint)

    @property
    def out_op(self) -> str:
        return _node_of(self.out).op.name


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


# ---------------------------------------------------------------- activations (one table)


def _softplus(b: _Builder, x: str, dtype: Any, beta: float = 1.0, threshold: float = 20.0) -> str:
    # log(1 + e^(bx)) / b as max(bx, 0) + log(1 + e^-|bx|), as the op computes it (ONNX
    # Runtime has no float64 Softplus); x itself where bx > threshold, as PyTorch
    bx = x if beta == 1 else b.node("Mul", [x, b.scalar(beta, dtype)])
    tail = b.node("Exp", [b.node("Neg", [b.node("Abs", [bx])])])
    soft = b.node("Add", [b.node("Relu", [bx]), _log1p(b, tail, dtype)])
    if beta != 1:
        soft = b.node("Div", [soft, b.scalar(beta, dtype)])
    above = b.node("Greater", [bx, b.scalar(threshold, dtype)])
    return b.node("Where", [above, x, soft])


def _log1p(b: _Builder, x: str, dtype: Any) -> str:
    return b.node("Log", [b.node("Add", [x, b.scalar(1.0, dtype)])])


def _erf(b: _Builder, x: str, dtype: Any) -> str:
    if np.dtype(dtype) == np.float64:  # NOTE: ONNX Runtime has Erf for float32 only
        return b.cast(b.node("Erf", [b.cast(x, np.float32)]), dtype)
    return b.node("Erf", [x])


def _leaky_relu(b: _Builder, x: str, dtype: Any, negative_slope: float = 0.01) -> str:
    if np.dtype(dtype) == np.float32:
        return b.node("LeakyRelu", [x], alpha=float(negative_slope))
    # NOTE: an attribute is a float32, and ONNX Runtime runs LeakyRelu in float32 only
    scaled = b.node("Mul", [x, b.scalar(negative_slope, dtype)])
    return b.node("Where", [b.node("Greater", [x, b.scalar(0.0, dtype)]), x, scaled])


def _elu(b: _Builder, x: str, dtype: Any, alpha: float = 1.0) -> str:
    if np.dtype(dtype) == np.float32:
        return b.node("Elu", [x], alpha=float(alpha))
    # alpha (e^min(x, 0) - 1) below 0: ONNX Runtime has Elu for float32 only
    below = b.node(
        "Sub", [b.node("Exp", [b.node("Min", [x, b.scalar(0.0, dtype)])]), b.scalar(1.0, dtype)]
    )
    below = b.node("Mul", [below, b.scalar(alpha, dtype)])
    return b.node("Where", [b.node("Greater", [x, b.scalar(0.0, dtype)]), x, below])


def _gelu(b: _Builder, x: str, dtype: Any, approximate: str = "none") -> str:
    half_x = b.node("Mul", [x, b.scalar(0.5, dtype)])
    if approximate == "tanh":
        # x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        cube = b.node("Mul", [b.node("Mul", [x, x]), x])
        inner = b.node("Add", [x, b.node("Mul", [cube, b.scalar(0.044715, dtype)])])
        inner = b.node("Mul", [inner, b.scalar(math.sqrt(2 / math.pi), dtype)])
        t = b.node("Tanh", [inner])
    else:  # x/2 (1 + erf(x / sqrt 2))
        t = _erf(b, b.node("Mul", [x, b.scalar(1 / math.sqrt(2), dtype)]), dtype)
    return b.node("Mul", [half_x, b.node("Add", [t, b.scalar(1.0, dtype)])])


def _clip(b: _Builder, x: str, dtype: Any, low: Any, high: Any) -> str:
    lo = "" if low is None else b.scalar(low, dtype)
    hi = "" if high is None else b.scalar(high, dtype)
    return b.node("Clip", [x, lo, hi] if hi else [x, lo])


# name -> fn(builder, x, dtype, **params) -> output name; the activation ops and the fused
# stack both lower through this table
ACTIVATIONS: dict[str, Callable[..., str]] = {
    "relu": lambda b, x, dt: b.node("Relu", [x]),
    "sigmoid": lambda b, x, dt: b.node("Sigmoid", [x]),
    "tanh": lambda b, x, dt: b.node("Tanh", [x]),
    "leaky_relu": _leaky_relu,
    "elu": _elu,
    "gelu": _gelu,
    "silu": lambda b, x, dt: b.node("Mul", [x, b.node("Sigmoid", [x])]),
    "softplus": _softplus,
    "mish": lambda b, x, dt: b.node("Mul", [x, b.node("Tanh", [_softplus(b, x, dt)])]),
    "hardtanh": lambda b, x, dt, min_val=-1.0, max_val=1.0: _clip(b, x, dt, min_val, max_val),
    "relu6": lambda b, x, dt: _clip(b, x, dt, 0.0, 6.0),
}


def _activation(b: _Builder, x: str, dtype: Any, act: Any) -> str:
    """Apply an mlp activation (None, a name or a (name, params) pair)."""
    if act is None:
        return x
    name, params = (act, {}) if isinstance(act, str) else (act[0], dict(act[1]))
    if name not in ACTIVATIONS:
        raise NotImplementedError(f"ONNX export: no lowering for the activation {name!r}")
    return ACTIVATIONS[name](b, x, dtype, **params)


def _activation_lowering(name: str) -> Callable[[_Call], str]:
    def lower(c: _Call) -> str:
        return ACTIVATIONS[name](c.b, c.x(), c.dtype, **c.params)

    return lower


for _name in ACTIVATIONS:
    LOWERINGS[_name] = _activation_lowering(_name)


# ---------------------------------------------------------------- elementwise


def _binary(op_type: str) -> Callable[[_Call], str]:
    def lower(c: _Call) -> str:
        return c.b.node(op_type, [c.x(0), c.x(1)])

    return lower


for _name, _type in {
    "add": "Add",
    "sub": "Sub",
    "mul": "Mul",
    "div": "Div",
    "maximum": "Max",
    "minimum": "Min",
    "pow_tensor": "Pow",
}.items():
    LOWERINGS[_name] = _binary(_type)


def _unary(op_type: str) -> Callable[[_Call], str]:
    def lower(c: _Call) -> str:
        return c.b.node(op_type, [c.x()])

    return lower


for _name, _type in {
    "neg": "Neg",
    "abs": "Abs",
    "sign": "Sign",
    "exp": "Exp",
    "log": "Log",
    "sin": "Sin",
    "cos": "Cos",
}.items():
    LOWERINGS[_name] = _unary(_type)


@lowering("expm1")
def _expm1(c: _Call) -> str:
    return c.b.node("Sub", [c.b.node("Exp", [c.x()]), c.scalar(1.0)])


@lowering("log1p")
def _log1p_op(c: _Call) -> str:
    return _log1p(c.b, c.x(), c.dtype)


@lowering("erf")
def _erf_op(c: _Call) -> str:
    return _erf(c.b, c.x(), c.dtype)


@lowering("pow")
def _pow(c: _Call) -> str:
    exponent = c.params["exponent"]
    if exponent == 0.5:
        return c.b.node("Sqrt", [c.x()])
    return c.b.node("Pow", [c.x(), c.scalar(float(exponent))])


@lowering("clamp")
def _clamp(c: _Call) -> str:
    low, high = c.params["low"], c.params["high"]
    if all(v is None or isinstance(v, numbers.Real) for v in (low, high)):
        return _clip(c.b, c.x(), c.dtype, low, high)
    out = c.x()  # bounds given as arrays: a maximum and a minimum
    if low is not None:
        out = c.b.node("Max", [out, c.const(low, c.dtype, "clamp_min")])
    if high is not None:
        out = c.b.node("Min", [out, c.const(high, c.dtype, "clamp_max")])
    return out


@lowering("where")
def _where(c: _Call) -> str:
    condition = c.const(c.params["condition"], bool, "condition")
    return c.b.node("Where", [condition, c.x(0), c.x(1)])


@lowering("to_device")
def _to_device(c: _Call) -> str:
    # an ONNX runtime places tensors itself: a copy between devices is the identity
    return c.b.node("Identity", [c.names[0]])


@lowering("cast")
def _cast(c: _Call) -> str:
    return c.b.cast(c.names[0], c.dtype)


# ---------------------------------------------------------------- softmax and reductions


@lowering("softmax")
def _softmax(c: _Call) -> str:
    return c.b.node("Softmax", [c.x()], axis=int(c.params["axis"]))


@lowering("log_softmax")
def _log_softmax(c: _Call) -> str:
    return c.b.node("LogSoftmax", [c.x()], axis=int(c.params["axis"]))


def _reduction(op_type: str) -> Callable[[_Call], str]:
    def lower(c: _Call) -> str:
        axes = _axes(c.params.get("axis"), len(c.shape(0)))
        return c.b.reduce(op_type, c.x(), axes, c.params.get("keepdims", False))

    return lower


for _name, _type in {
    "sum": "ReduceSum",
    "mean": "ReduceMean",
    "amax": "ReduceMax",
    "prod": "ReduceProd",
}.items():
    LOWERINGS[_name] = _reduction(_type)


# ---------------------------------------------------------------- shapes


@lowering("reshape")
def _reshape(c: _Call) -> str:
    shape = list(c.out.shape)
    if c.batched[0] and shape and c.shape(0):
        # NOTE: the batch dimension stays symbolic: 0 copies it, -1 lets the first dim absorb it
        shape[0] = 0 if shape[0] == c.shape(0)[0] else -1
    return c.b.node("Reshape", [c.x(), c.b.ints(shape)])


@lowering("permute")
def _permute(c: _Call) -> str:
    ndim = len(c.shape(0))
    return c.b.node("Transpose", [c.x()], perm=[int(a) % ndim for a in c.params["axes"]])


@lowering("expand")
def _expand(c: _Call) -> str:
    # Expand broadcasts both ways, so a 1 keeps every dim the input already has (batch included)
    out, shape = list(c.out.shape), c.shape(0)
    lead = len(out) - len(shape)
    target = [1 if i >= lead and shape[i - lead] == n else n for i, n in enumerate(out)]
    return c.b.node("Expand", [c.x(), c.b.ints(target)])


@lowering("cat")
def _cat(c: _Call) -> str:
    axis = int(c.params["axis"])
    return c.b.node("Concat", [c.x(i) for i in range(len(c.names))], axis=axis)


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


@lowering("getitem")
def _getitem(c: _Call) -> str:
    index = c.params["index"]
    parts = index if isinstance(index, tuple) else (index,)
    out = _basic_index(c, parts)
    if out is not None:
        return out
    # any other numpy index: gather the picked elements by their flat positions (fixed shapes)
    if c.batched[0]:
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
    h = c.x(0)
    for i, act in enumerate(c.params["acts"]):
        h = _linear_layer(c.b, h, 2, c.x(2 * i + 1), c.x(2 * i + 2))
        h = _activation(c.b, h, c.dtype, act)
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
    return ops.pool_padding(
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
    inside = ops.pool_divisor(
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


# ---------------------------------------------------------------- losses


def _reduce_loss(c: _Call, losses: str) -> str:
    reduction = c.params.get("reduction", "mean")
    if reduction == "none":
        return losses
    return c.b.reduce("ReduceMean" if reduction == "mean" else "ReduceSum", losses, None, False)


@lowering("cross_entropy")
def _cross_entropy(c: _Call) -> str:
    b = c.b
    log_probs = b.node("LogSoftmax", [c.x()], axis=1)
    target = np.asarray(_host(c.params["target"]))
    if target.ndim == 1:  # class indices: -log_softmax(z)[i, target_i]
        index = c.const(target.reshape(-1, 1), np.int64, "target")
        picked = b.node("GatherElements", [log_probs, index], axis=1)
        losses = b.node("Neg", [b.node("Squeeze", [picked, b.ints([1])])])
    else:  # class probabilities: -sum_c y_c log_softmax(z)_c
        weighted = b.node("Mul", [log_probs, c.const(target, c.dtype, "target")])
        losses = b.node("Neg", [b.reduce("ReduceSum", weighted, [1], False)])
    return _reduce_loss(c, losses)


def _clamped_log(c: _Call, x: str) -> str:
    # log(x) floored at -100, x raised to 1e-45 first (as the op does)
    log = c.b.node("Log", [c.b.node("Max", [x, c.scalar(1e-45)])])
    return c.b.node("Max", [log, c.scalar(-100.0)])


@lowering("binary_cross_entropy")
def _binary_cross_entropy(c: _Call) -> str:
    b, p = c.b, c.x()
    y = c.const(c.params["y"], c.dtype, "target")
    one_minus_p = b.node("Sub", [c.scalar(1.0), p])
    one_minus_y = b.node("Sub", [c.scalar(1.0), y])
    total = b.node(
        "Add",
        [
            b.node("Mul", [_clamped_log(c, p), y]),
            b.node("Mul", [_clamped_log(c, one_minus_p), one_minus_y]),
        ],
    )
    return _reduce_loss(c, b.node("Neg", [total]))


@lowering("binary_cross_entropy_with_logits")
def _bce_with_logits(c: _Call) -> str:
    # max(z, 0) - z y + log(1 + e^-|z|)
    b, z = c.b, c.x()
    y = c.const(c.params["y"], c.dtype, "target")
    soft = b.node(
        "Log",
        [b.node("Add", [c.scalar(1.0), b.node("Exp", [b.node("Neg", [b.node("Abs", [z])])])])],
    )
    losses = b.node(
        "Add", [b.node("Sub", [b.node("Max", [z, c.scalar(0.0)]), b.node("Mul", [z, y])]), soft]
    )
    return _reduce_loss(c, losses)


@lowering("mse_loss")
def _mse_loss(c: _Call) -> str:
    diff = c.b.node("Sub", [c.x(0), c.x(1)])
    return _reduce_loss(c, c.b.node("Mul", [diff, diff]))


# ---------------------------------------------------------------- export


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

    modules = list(model.modules()) if hasattr(model, "modules") else []
    modes = [(m, m.training) for m in modules]
    try:
        for m, _ in modes:
            m.training = False  # exported in eval mode, as torch.onnx.export does
        with enable_grad():
            result = model(*inputs)
    finally:
        for m, mode in modes:
            m.training = mode
    outputs = list(_as_tuple(result))
    for i, t in enumerate(outputs):
        if not isinstance(t, Tensor):
            raise TypeError(f"ONNX export: output {i} is a {type(t).__name__}, not a Tensor")
    out_names = _names(output_names, len(outputs), "output")
    if set(out_names) & set(in_names):
        raise ValueError("input and output names must differ")

    default_axes = dynamic_axes is None
    if default_axes:
        dynamic_axes = {n: {0: "batch"} for n, x in zip(in_names, inputs, strict=True) if x.ndim}
    dynamic = {id(x) for n, x in zip(in_names, inputs, strict=True) if 0 in _spec(dynamic_axes, n)}
    batch_size = next((x.shape[0] for x in inputs if id(x) in dynamic), None)

    b = _Builder(onnx, opset)
    b.used.update(in_names + out_names)
    names: dict[int, str] = {id(x): n for n, x in zip(in_names, inputs, strict=True)}
    order = graph_of(outputs, stop=names)
    # parameters and buffers keep their state_dict names: the model's, or else those of the
    # outermost module that holds them (a function that calls modules)
    named = _auto_names([t for t in order if _node_of(t) is None and id(t) not in names])
    for attr in ("named_buffers", "named_parameters"):
        if hasattr(model, attr):
            named.update({id(p): n for n, p in getattr(model, attr)()})
    batched: dict[int, bool] = {id(x): id(x) in dynamic for x in inputs}
    for t in order:
        if id(t) in names:
            continue
        node = _node_of(t)
        if node is None:  # a leaf: a parameter, a buffer or a constant
            array = to_numpy(t._data)
            if id(t) in named:
                names[id(t)] = b.const(array, named[id(t)])
            else:
                _warn_if_batch_sized(array, batch_size, "constant tensor")
                names[id(t)] = b.const(array, "const")
            batched[id(t)] = False
            continue
        op = node.op.name
        lower = LOWERINGS.get(op)
        if lower is None:
            raise NotImplementedError(
                f"ONNX export: no lowering for op {op!r}; add one to tinygrad_mlp.onnx.LOWERINGS"
            )
        ins = [x for x in node.inputs]
        call = _Call(
            b,
            [names.get(id(x), "") for x in ins],
            ins,
            dict(getattr(node, "params", None) or {}),
            t,
            [batched.get(id(x), False) for x in ins],
            batch_size,
        )
        names[id(t)] = lower(call)
        batched[id(t)] = any(call.batched)

    if default_axes:  # outputs whose first axis is the batch follow it
        for n, t in zip(out_names, outputs, strict=True):
            if batched.get(id(t)) and t.ndim and t.shape[0] == batch_size:
                dynamic_axes = {**dynamic_axes, n: {0: "batch"}}
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


def _spec(dynamic_axes: dict[str, Any], name: str) -> set[int]:
    spec = dynamic_axes.get(name, {})
    return {int(a) for a in spec}


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
    input, and of every output that follows it, is. Raises NotImplementedError naming the op
    when an op has no lowering; nothing is written then, and a written file replaces ``path``
    only once complete.
    """
    target = _fspath(path)
    proto = _build(model, example_input, input_names, output_names, opset_version, dynamic_axes)
    data = proto.SerializeToString()
    _atomic_write(target, lambda f: f.write(data))
    return proto
