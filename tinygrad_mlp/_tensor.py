"""Tensor, the tape it records on, and the reverse-mode engine that walks the tape backwards."""

from __future__ import annotations

import heapq
import itertools
import traceback
from collections.abc import Sequence
from operator import attrgetter, itemgetter
from typing import Any

from . import backend
from . import ops as O
from .backend import np

__all__ = [
    "Tensor",
    "apply",
    "grad",
    "no_grad",
    "enable_grad",
    "is_grad_enabled",
    "set_anomaly_detection",
    "detect_anomaly",
    "is_anomaly_enabled",
]

_FLOAT_KINDS = "f"
_NUMERIC_KINDS = "biuf"
DEFAULT_DTYPE = np.dtype(np.float32)


class _Mode:
    """Process-wide switches of the engine."""

    grad_enabled = True
    anomaly = False


# ---------------------------------------------------------------- grad mode and anomaly mode


class no_grad:
    """Context manager and decorator: ops inside record nothing and their results need no grad."""

    def __enter__(self) -> None:
        self._prev = _Mode.grad_enabled
        _Mode.grad_enabled = False

    def __exit__(self, *exc: object) -> None:
        _Mode.grad_enabled = self._prev

    def __call__(self, fn):
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)

        wrapper.__name__ = getattr(fn, "__name__", "wrapper")
        wrapper.__doc__ = getattr(fn, "__doc__", None)
        return wrapper


class enable_grad(no_grad):
    """Context manager and decorator: turn recording back on inside a ``no_grad`` block."""

    def __enter__(self) -> None:
        self._prev = _Mode.grad_enabled
        _Mode.grad_enabled = True


def is_grad_enabled() -> bool:
    """True when ops are being recorded for backward."""
    return _Mode.grad_enabled


def set_anomaly_detection(enabled: bool) -> None:
    """Make backward raise at the first op whose output or gradient holds NaN or inf, naming it."""
    _Mode.anomaly = bool(enabled)


def is_anomaly_enabled() -> bool:
    """True when anomaly detection is on."""
    return _Mode.anomaly


class detect_anomaly:
    """Context manager: anomaly detection on inside the block (see ``set_anomaly_detection``)."""

    def __enter__(self) -> None:
        self._prev = _Mode.anomaly
        _Mode.anomaly = True

    def __exit__(self, *exc: object) -> None:
        _Mode.anomaly = self._prev


# ---------------------------------------------------------------- the tape


class Node:
    """One recorded op application: the op, its input tensors and what its forward saved."""

    __slots__ = ("op", "inputs", "saved", "needs", "seq", "released", "trace")

    def __init__(self, op: O.Op, inputs: tuple, saved: Any, needs: tuple) -> None:
        self.op = op
        self.inputs = inputs
        self.saved = saved
        self.needs = needs
        self.seq = next(_creation_order)
        self.released = False
        self.trace = _creation_trace() if _Mode.anomaly else None

    def release(self) -> None:
        """Free what forward saved and the links to the inputs."""
        self.saved = None
        self.inputs = ()
        self.released = True


# NOTE: an op's output is always created after its inputs, so ordering the nodes of a graph by
# this counter (a sort in _graph, a heap in _run_backward) gives a topological order without
# recursion or a depth-first search.
_creation_order = itertools.count()
_data_of = attrgetter("_data")
_ndarray = np.ndarray
_new_tensor = object.__new__
_requires_grad_of = attrgetter("requires_grad")


def _creation_trace() -> str:
    """Where the user's code created an op, for anomaly messages."""
    frames = [f for f in traceback.extract_stack()[:-3] if "tinygrad_mlp" not in f.filename]
    return "".join(traceback.format_list(frames[-3:]))


def _lift(value: Any, like: Tensor) -> Tensor:
    """Turn a Python number or an array into a constant tensor next to ``like``."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        xp = backend.array_module_of(like._data)
        return Tensor._wrap(xp.asarray(value, dtype=like._data.dtype), False, None)
    return Tensor(value, device=like.device)


def apply(op: O.Op, *inputs: Tensor, **params: Any) -> Tensor:
    """Run an op's forward on tensors and record it on the tape when a gradient is wanted."""
    arrays = tuple(map(_data_of, inputs))
    first = arrays[0]
    if len(arrays) > 1 and len(set(map(type, arrays))) > 1:
        devices = ", ".join(f"{x.device} {x.shape}" for x in inputs)
        raise RuntimeError(
            f"{op.name}: all tensors must be on one device, got {devices}; "
            "move them with .to(device)"
        )
    xp = np if type(first) is _ndarray else backend.array_module_of(first)
    try:
        out, saved = op.forward(xp, *arrays, **params)
    except (O.ShapeError, O.DTypeError):
        raise  # the op's own message already names the op, the shapes or dtypes
    except (ValueError, TypeError) as e:
        shapes = " and ".join(str(tuple(a.shape)) for a in arrays)
        kind = ValueError if isinstance(e, ValueError) else TypeError
        raise kind(
            f"{op.name}: cannot apply to shape{'s' if len(arrays) > 1 else ''} {shapes}: {e}"
        ) from None
    if type(out) is not _ndarray and xp is np:
        out = np.asarray(out)  # NOTE: numpy turns 0-d results (a full sum) into scalars
    t = _new_tensor(Tensor)
    t._data = out
    t.grad = None
    t._retains_grad = False
    if _Mode.grad_enabled:
        needs = tuple(map(_requires_grad_of, inputs))
        if True in needs:
            t.requires_grad = True
            t._node = Node(op, inputs, saved, needs)
            return t
    t.requires_grad = False
    t._node = None
    return t


# ---------------------------------------------------------------- conversion


def _to_array(data: Any, dtype: Any, device: str | None):
    """Convert user data to a backend array following the dtype and device rules of Tensor."""
    if isinstance(data, Tensor):
        data = data._data
    if dtype is not None:
        try:
            dtype = np.dtype(dtype)
        except TypeError as e:
            raise TypeError(f"dtype {dtype!r} is not a numpy dtype: {e}") from None
        if dtype.kind not in _NUMERIC_KINDS:
            raise TypeError(f"dtype {dtype} is not numeric; use float32 or float64")
    if backend.is_array(data) or backend.looks_like_cupy(data):
        array = data
        if dtype is None and array.dtype.kind not in _FLOAT_KINDS:
            dtype = DEFAULT_DTYPE
        if array.dtype.kind not in _NUMERIC_KINDS:
            raise TypeError(f"Tensor data must be numeric, got an array of dtype {array.dtype}")
        if device is None:
            device = "cuda" if backend.looks_like_cupy(array) else backend.default_device()
        array = backend.to_device(array, device)
        return array if dtype is None or array.dtype == dtype else array.astype(dtype)
    if isinstance(data, (str, bytes)) or data is None:
        raise TypeError(f"Tensor data must be numeric, got {type(data).__name__} {data!r:.40}")
    try:
        array = np.asarray(data)
    except (ValueError, TypeError) as e:
        raise TypeError(
            f"Tensor data must be numeric (a number, nested lists or an array): {e}"
        ) from None
    if array.dtype.kind not in _NUMERIC_KINDS:
        raise TypeError(
            f"Tensor data must be numeric, got {type(data).__name__} holding dtype {array.dtype}"
        )
    array = array.astype(dtype if dtype is not None else DEFAULT_DTYPE, copy=False)
    return backend.to_device(array, device)


# ---------------------------------------------------------------- Tensor


class Tensor:
    """An n-dimensional array that records the ops applied to it for reverse-mode autodiff."""

    __slots__ = ("_data", "grad", "requires_grad", "_node", "_retains_grad", "__weakref__")
    __array_ufunc__ = None  # numpy hands `array + tensor` over to Tensor.__radd__
    __array_priority__ = 1000

    def __init__(
        self,
        data: Any,
        requires_grad: bool = False,
        dtype: Any = None,
        device: str | None = None,
    ) -> None:
        if (
            type(data) is np.ndarray
            and dtype is None
            and device is None
            and data.dtype.kind == "f"
            and backend.default_device() == "cpu"
        ):
            array = data  # the common case of a float batch on the CPU, without conversion
        else:
            array = _to_array(data, dtype, device)
        if requires_grad:
            if array.dtype.kind not in _FLOAT_KINDS:
                raise TypeError(f"only floating tensors can require grad, got dtype {array.dtype}")
            if array is data or (isinstance(data, Tensor) and array is data._data):
                array = array.copy()  # a leaf that optimizers update in place owns its memory
        self._data = array
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self._node: Node | None = None
        self._retains_grad = False

    @classmethod
    def _wrap(cls, data: Any, requires_grad: bool, node: Node | None) -> Tensor:
        """Make a tensor around an array without conversion (the engine's fast path)."""
        t = object.__new__(cls)
        t._data = data
        t.grad = None
        t.requires_grad = requires_grad
        t._node = node
        t._retains_grad = False
        return t

    # ------------------------------------------------------------ attributes

    @property
    def data(self) -> Tensor:
        """The values as a tensor cut from the graph, sharing memory with this one."""
        return Tensor._wrap(self._data, False, None)

    @data.setter
    def data(self, value: Any) -> None:
        self._data = value._data if isinstance(value, Tensor) else value

    @property
    def shape(self) -> tuple[int, ...]:
        """The array's shape."""
        return self._data.shape

    @property
    def ndim(self) -> int:
        """The number of dimensions."""
        return self._data.ndim

    @property
    def size(self) -> int:
        """The number of elements."""
        return self._data.size

    @property
    def dtype(self):
        """The numpy dtype of the elements."""
        return self._data.dtype

    @property
    def device(self) -> str:
        """'cpu' or 'cuda'."""
        return "cpu" if type(self._data) is np.ndarray else backend.device_of(self._data)

    @property
    def is_leaf(self) -> bool:
        """True for tensors made by the user rather than by an op."""
        return self._node is None

    @property
    def op(self) -> str | None:
        """The name of the op that produced this tensor, or None for a leaf."""
        return None if self._node is None else self._node.op.name

    @property
    def T(self) -> Tensor:
        """The tensor with its axes reversed."""
        return apply(O.TRANSPOSE, self, axes=None)

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    def __repr__(self) -> str:
        body = np.array2string(self.numpy(), separator=", ", prefix="Tensor(", threshold=200)
        extra = f", dtype={self.dtype}"
        if self.device != "cpu":
            extra += f", device='{self.device}'"
        if self._node is not None:
            extra += f", op='{self._node.op.name}'"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"Tensor({body}{extra})"

    def __array__(self, dtype=None, copy=None):
        array = self.numpy()
        return array if dtype is None else array.astype(dtype)

    def __bool__(self) -> bool:
        return bool(self.item())

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    # ------------------------------------------------------------ conversion

    def numpy(self):
        """The values as a host numpy array (shared with the tensor on the CPU)."""
        return backend.to_numpy(self._data)

    def tolist(self) -> Any:
        """The values as nested Python lists."""
        return self.numpy().tolist()

    def item(self) -> float:
        """The value of a one-element tensor as a Python number."""
        if self.size != 1:
            raise ValueError(f"item() needs a tensor of one element, got shape {self.shape}")
        return self._data.reshape(()).item()

    def detach(self) -> Tensor:
        """A tensor sharing the values, cut from the graph."""
        return Tensor._wrap(self._data, False, None)

    def to(self, device: str) -> Tensor:
        """This tensor on ``device`` ('cpu' or 'cuda'); itself when it is already there."""
        array = backend.to_device(self._data, device)
        if array is self._data:
            return self
        return Tensor._wrap(array, self.requires_grad, None)

    def cpu(self) -> Tensor:
        """This tensor on the CPU."""
        return self.to("cpu")

    def cuda(self) -> Tensor:
        """This tensor on the GPU."""
        return self.to("cuda")

    def astype(self, dtype: Any) -> Tensor:
        """A differentiable cast to another floating dtype (int or bool only without grad)."""
        dtype = np.dtype(dtype)
        if dtype.kind not in _NUMERIC_KINDS:
            raise TypeError(f"astype: {dtype} is not a numeric dtype; use float32 or float64")
        if dtype.kind not in _FLOAT_KINDS and self.requires_grad:
            raise TypeError(
                f"astype: a tensor that requires grad casts only to a floating dtype, not {dtype}; "
                "detach it first"
            )
        return apply(CAST, self, dtype=dtype)

    def float(self) -> Tensor:
        """A cast to float32."""
        return self.astype(np.float32)

    def double(self) -> Tensor:
        """A cast to float64."""
        return self.astype(np.float64)

    # ------------------------------------------------------------ autodiff

    def zero_grad(self) -> None:
        """Forget the accumulated gradient (``.grad`` becomes None)."""
        self.grad = None

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this non-leaf tensor after backward."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad() on a tensor that does not require grad")
        self._retains_grad = True

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set ``requires_grad`` on a leaf in place and return it."""
        if self._node is not None:
            raise RuntimeError(f"requires_grad_ on a non-leaf tensor (made by op '{self.op}')")
        if requires_grad and self.dtype.kind not in _FLOAT_KINDS:
            raise TypeError(f"only floating tensors can require grad, got dtype {self.dtype}")
        self.requires_grad = bool(requires_grad)
        return self

    def backward(self, grad: Any = None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into ``.grad`` of every leaf that requires grad."""
        if not self.requires_grad:
            raise RuntimeError(
                "backward() on a tensor that does not require grad: no input of its graph "
                "has requires_grad=True (or it was computed under no_grad)"
            )
        seed = _seed(self, grad)
        _run_backward(((self, seed),), retain_graph, None)

    # ------------------------------------------------------------ arithmetic

    def __add__(self, other: Any) -> Tensor:
        return apply(O.ADD, self, _lift(other, self))

    def __radd__(self, other: Any) -> Tensor:
        return apply(O.ADD, _lift(other, self), self)

    def __sub__(self, other: Any) -> Tensor:
        return apply(O.SUB, self, _lift(other, self))

    def __rsub__(self, other: Any) -> Tensor:
        return apply(O.SUB, _lift(other, self), self)

    def __mul__(self, other: Any) -> Tensor:
        return apply(O.MUL, self, _lift(other, self))

    def __rmul__(self, other: Any) -> Tensor:
        return apply(O.MUL, _lift(other, self), self)

    def __truediv__(self, other: Any) -> Tensor:
        return apply(O.DIV, self, _lift(other, self))

    def __rtruediv__(self, other: Any) -> Tensor:
        return apply(O.DIV, _lift(other, self), self)

    def __neg__(self) -> Tensor:
        return apply(O.NEG, self)

    def __pos__(self) -> Tensor:
        return self

    def __pow__(self, exponent: Any) -> Tensor:
        return apply(O.POW, self, exponent=_scalar_exponent(exponent))

    def __rpow__(self, base: Any) -> Tensor:
        # b^x = e^(x ln b), for a positive scalar base b
        base = _scalar_exponent(base)
        if base <= 0:
            raise ValueError(f"a scalar base of ** must be positive, got {base}")
        return (self * float(np.log(base))).exp()

    def __matmul__(self, other: Any) -> Tensor:
        return matmul(self, _lift(other, self))

    def __rmatmul__(self, other: Any) -> Tensor:
        return matmul(_lift(other, self), self)

    def __getitem__(self, index: Any) -> Tensor:
        try:
            return apply(O.GETITEM, self, index=_index(index))
        except IndexError as e:
            raise IndexError(
                f"index {index!r:.80} is invalid for shape {self.shape}: {e}"
            ) from None

    # ------------------------------------------------------------ functions

    def exp(self) -> Tensor:
        """Elementwise e**x."""
        return apply(O.EXP, self)

    def log(self) -> Tensor:
        """Elementwise natural logarithm."""
        return apply(O.LOG, self)

    def relu(self) -> Tensor:
        """Elementwise max(x, 0)."""
        return apply(O.RELU, self)

    def sigmoid(self) -> Tensor:
        """Elementwise 1 / (1 + e**-x), stable for large |x|."""
        return apply(O.SIGMOID, self)

    def tanh(self) -> Tensor:
        """Elementwise hyperbolic tangent."""
        return apply(O.TANH, self)

    def abs(self) -> Tensor:
        """Elementwise |x|."""
        return apply(O.ABS, self)

    def sqrt(self) -> Tensor:
        """Elementwise square root."""
        return apply(O.POW, self, exponent=0.5)

    def clamp(self, min: float | None = None, max: float | None = None) -> Tensor:
        """Elementwise clip into [min, max]; the gradient is 0 where clipped."""
        if min is None and max is None:
            raise ValueError("clamp needs at least one of min and max")
        for name, bound in (("min", min), ("max", max)):
            if bound is not None and not _is_number(bound):
                raise TypeError(f"clamp: {name} must be a number or None, got {bound!r}")
        return apply(O.CLAMP, self, low=min, high=max)

    clip = clamp

    def softmax(self, axis: int = -1) -> Tensor:
        """exp(x) / sum(exp(x)) along ``axis``, with the max subtracted first."""
        return apply(O.SOFTMAX, self, axis=_one_axis(axis, self.ndim))

    def log_softmax(self, axis: int = -1) -> Tensor:
        """log(softmax(x)) along ``axis``, computed stably."""
        return apply(O.LOG_SOFTMAX, self, axis=_one_axis(axis, self.ndim))

    def sum(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        """Sum over ``axis`` (all axes when None)."""
        return apply(O.SUM, self, axis=axis, keepdims=keepdims)

    def mean(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        """Mean over ``axis`` (all axes when None)."""
        return apply(O.MEAN, self, axis=axis, keepdims=keepdims)

    def max(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        """Maximum over ``axis``; tied maxima share the gradient equally."""
        if self.size == 0:
            raise ValueError(f"max of an empty tensor of shape {self.shape}")
        return apply(O.MAX, self, axis=axis, keepdims=keepdims)

    def argmax(self, axis: int | None = None) -> Tensor:
        """Indices of the maxima along ``axis`` (int64, not differentiable)."""
        if axis is not None:
            axis = _one_axis(axis, self.ndim)
        return Tensor._wrap(self._data.argmax(axis=axis), False, None)

    def reshape(self, *shape: Any) -> Tensor:
        """The same elements in a new shape (one dimension may be -1)."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        shape = _ints("reshape: the new shape", shape)
        if any(n < -1 for n in shape):
            raise ValueError(f"reshape: sizes must be >= 0 or -1, got shape {shape}")
        return apply(O.RESHAPE, self, shape=shape)

    view = reshape

    def flatten(self, start_dim: int = 0) -> Tensor:
        """Merge the dimensions from ``start_dim`` on into one."""
        if self.ndim:
            start_dim = _one_axis(start_dim, self.ndim)
        return self.reshape(*self.shape[:start_dim], -1)

    def transpose(self, *axes: Any) -> Tensor:
        """Permute the axes (reverse them when none are given), as numpy's transpose."""
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        axes = _ints("transpose: axes", axes)
        n = self.ndim
        if axes and (
            any(not -n <= a < n for a in axes) or sorted(a % n for a in axes) != list(range(n))
        ):
            raise ValueError(
                f"transpose: axes {axes} are not a permutation of the axes of shape {self.shape}"
            )
        return apply(O.TRANSPOSE, self, axes=axes or None)

    permute = transpose


# ---------------------------------------------------------------- helpers of the Tensor methods


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))


def _ints(what: str, values: Sequence[Any]) -> tuple[int, ...]:
    """Shape sizes or axes as ints, or a TypeError naming them."""
    if any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in values):
        raise TypeError(f"{what} must be ints, got {tuple(values)!r}")
    return tuple(int(v) for v in values)


def _scalar_exponent(value: Any) -> float:
    if isinstance(value, Tensor):
        if value.size != 1 or value.requires_grad:
            raise TypeError("** takes a scalar exponent (a Python number), not a tensor")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"** takes a scalar exponent (a Python number), got {type(value).__name__}")
    return float(value)


def _one_axis(axis: Any, ndim: int) -> int:
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise TypeError(f"axis must be an int, got {axis!r}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} is out of range for a tensor of {ndim} dimensions")
    return int(axis)


def _index(index: Any) -> Any:
    """Replace tensors and lists inside an index with integer arrays."""
    if isinstance(index, tuple):
        return tuple(_index(i) for i in index)
    if isinstance(index, Tensor):
        data = index._data
        if data.dtype.kind not in "biu":
            raise TypeError(
                f"an index tensor must have an integer or bool dtype, got {data.dtype}; use a "
                "numpy array or Tensor(..., dtype='int64') (float tensors are not indices)"
            )
        return data
    if isinstance(index, list):
        return np.asarray(index)
    return index


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """Matrix product with numpy's rules for 1-D and 2-D operands; shapes are checked first."""
    sa, sb = a.shape, b.shape
    if not sa or not sb:
        raise ValueError(
            f"matmul: both operands need at least one dimension, got shapes {sa} and {sb}"
        )
    inner_b = sb[0] if len(sb) == 1 else sb[-2]
    if sa[-1] != inner_b:
        raise ValueError(
            f"matmul: shapes {sa} and {sb} are not aligned: {sa[-1]} (last dim of the first) "
            f"!= {inner_b} ({'first' if len(sb) == 1 else 'second-to-last'} dim of the second)"
        )
    try:
        np.broadcast_shapes(sa[:-2], sb[:-2])
    except ValueError:
        raise ValueError(
            f"matmul: the batch dims of shapes {sa} and {sb} do not broadcast"
        ) from None
    if a.dtype != b.dtype:
        raise TypeError(f"matmul: dtypes differ ({a.dtype} and {b.dtype}); cast one with .astype")
    return apply(O.MATMUL, a, b)


def _cast(xp, x, dtype):
    return x.astype(dtype), x.dtype


def _cast_vjp(xp, g, dtype, needs):
    # a cast is the identity on values: the gradient is cast back
    return (g.astype(dtype),)


CAST = O.register(
    "cast", _cast, _cast_vjp, 1, O.Sample(params=lambda s: {"dtype": np.dtype(np.float64)})
)


_wrap = Tensor._wrap

# ---------------------------------------------------------------- the engine


def _seed(out: Tensor, grad: Any):
    """The starting gradient of backward: ones for a one-element output, else the user's."""
    if grad is None:
        if out._data.size != 1:
            raise RuntimeError(
                f"backward() without a gradient needs a scalar output, got shape {out.shape}; "
                "the output must be a scalar (reduce it with .sum() or .mean()), or pass grad="
            )
        # NOTE: array(1) is several times cheaper than ones(); the seed must be a new array
        data = out._data
        xp = np if type(data) is _ndarray else backend.array_module_of(data)
        seed = xp.array(1, dtype=data.dtype)
        return seed.reshape(data.shape) if data.ndim else seed
    g = grad._data if isinstance(grad, Tensor) else grad
    xp = backend.array_module_of(out._data)
    try:
        g = xp.array(g, dtype=out.dtype)  # a private copy: the caller's array is never aliased
    except (TypeError, ValueError) as e:
        raise TypeError(
            f"backward: grad must be numeric, like the output {out.shape}: {e}"
        ) from None
    if g.shape != out.shape:
        raise ValueError(
            f"backward: grad of shape {g.shape} does not match output shape {out.shape}"
        )
    return g


def _graph(roots: Sequence[Tensor]) -> list[Tensor]:
    """The non-leaf tensors reachable from ``roots`` through inputs that need grad, in the order
    their ops ran (so every tensor comes after the tensors it was computed from)."""
    found: list[tuple[int, Tensor]] = []
    seen: set[int] = set()
    stack: list[Tensor] = []
    for t in roots:
        if t._node is not None and id(t) not in seen:
            seen.add(id(t))
            stack.append(t)
    while stack:
        t = stack.pop()
        node = t._node
        if node.released:
            raise _released_error(node)
        found.append((node.seq, t))
        for inp, need in zip(node.inputs, node.needs, strict=True):
            if need and inp._node is not None and id(inp) not in seen:
                seen.add(id(inp))
                stack.append(inp)
    found.sort(key=itemgetter(0))
    return [t for _, t in found]


def _reduce_to(g, shape: tuple, op_name: str, i: int):
    """Sum a broadcast gradient back to its input's shape, checking that it fits."""
    extra = g.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(
        k + extra for k, n in enumerate(shape) if n == 1 and g.shape[k + extra] != 1
    )
    try:
        if extra < 0:
            raise ValueError
        out = g.sum(axis=axes, keepdims=True).reshape(shape) if axes else g.reshape(shape)
    except ValueError:
        raise RuntimeError(
            f"op '{op_name}' produced a gradient of shape {tuple(g.shape)} for its input {i} "
            f"of shape {tuple(shape)}"
        ) from None
    return out


def _check_finite(xp, g, node: Node, i: int) -> None:
    if not bool(xp.isfinite(g).all()):
        what = "nan" if bool(xp.isnan(g).any()) else "inf"
        where = f"\nthe op was created at:\n{node.trace}" if node.trace else ""
        raise RuntimeError(
            f"anomaly detected: the backward of op '{node.op.name}' produced {what} in the "
            f"gradient of its input {i}{where}"
        )


def _all_finite(array) -> bool:
    return bool(backend.array_module_of(array).isfinite(array).all())


def _check_forward(order: list[Tensor]) -> None:
    """Raise at the first op, in forward order, whose output holds NaN or inf from finite inputs."""
    for t in order:
        node = t._node
        if node is None or _all_finite(t._data) or not all(_all_finite(x._data) for x in node.inputs):
            continue
        what = "nan" if bool(backend.array_module_of(t._data).isnan(t._data).any()) else "inf"
        where = f"\nthe op was created at:\n{node.trace}" if node.trace else ""
        raise RuntimeError(
            f"anomaly detected: op '{node.op.name}' produced {what} in its forward output "
            f"(shape {tuple(t.shape)}) from finite inputs{where}"
        )


def _released_error(node: Node) -> RuntimeError:
    return RuntimeError(
        f"backward through op '{node.op.name}' a second time: its graph was released by "
        "the first backward; pass retain_graph=True to the first backward to keep it"
    )


def _run_backward(roots, retain_graph: bool, wanted: Sequence[Tensor] | None):
    """Propagate seeds from ``roots`` to the leaves, newest op first.

    A heap keyed on each op's creation number hands out the newest pending tensor: all of its
    users were created later, so its gradient is complete when it comes out. With ``wanted``
    None, gradients accumulate into ``.grad`` of leaves (and of tensors that retain grad);
    otherwise they are returned for the tensors in ``wanted`` (by id) and ``.grad`` is left alone.

    An array stored in a ``.grad`` (or returned) is never stored anywhere else: a new array that
    an op's rule made is handed over as it is, anything that may be shared is copied first.
    """
    anomaly = _Mode.anomaly
    if anomaly:
        _check_forward(_graph([t for t, _ in roots]))
    wanted_ids = None if wanted is None else {id(t) for t in wanted}
    grads: dict[Tensor, Any] = {}  # pending gradients of non-leaf tensors
    owned: set[Tensor] = set()  # tensors whose pending gradient nothing else refers to
    results: dict[int, Any] = {}  # gradients of wanted tensors, by id
    heap: list[tuple[int, Tensor]] = []  # (-creation number, tensor) of pending non-leaves
    push, pop = heapq.heappush, heapq.heappop

    for t, seed in roots:  # every seed is a new array (see _seed)
        if t._node is None:
            _deliver(t, seed, True, wanted_ids, results)
        elif t in grads:
            grads[t] = _sum_of(grads[t], seed)
        else:
            grads[t] = seed
            owned.add(t)
            push(heap, (-t._node.seq, t))
    while heap:
        t = pop(heap)[1]
        node = t._node
        if node.released:
            raise _released_error(node)
        g = grads.pop(t)
        g_owned = t in owned
        if wanted_ids is not None:
            if id(t) in wanted_ids:
                results[id(t)] = g
                g_owned = False
        elif t._retains_grad:
            _deliver(t, g, g_owned, None, None)
            g_owned = False
        xp = np if type(g) is _ndarray else backend.array_module_of(g)
        inputs, needs, op = node.inputs, node.needs, node.op
        if g_owned and op.backward_owned is not None:
            in_grads = op.backward_owned(xp, g, node.saved, needs)
        else:
            in_grads = op.backward(xp, g, node.saved, needs)
        if not retain_graph:
            node.release()
        exact = op.exact
        for inp, ig, need in zip(inputs, in_grads, needs, strict=True):
            if ig is None or not need:
                continue
            if not exact:
                data = inp._data
                if type(ig) is not type(data) or ig.shape != data.shape or ig.dtype != data.dtype:
                    ig = _fit(ig, data, op.name, inputs.index(inp))
            if anomaly:
                _check_finite(xp, ig, node, inputs.index(inp))
            producer = inp._node
            if (
                producer is None
                and wanted_ids is None
                and inp.grad is None
                and ig is not g
                and ig.base is None
            ):
                inp.grad = _wrap(ig, False, None)  # the common case: a new array for a fresh .grad
                continue
            # a new array from the rule, or g passed on to this input alone, is unshared
            if ig is not g:
                fresh = ig.base is None
            else:
                fresh = g_owned and sum(x is g for x in in_grads) == 1
            if producer is None:
                _deliver(inp, ig, fresh, wanted_ids, results)
                continue
            prev = grads.get(inp)
            if prev is None:
                grads[inp] = ig
                push(heap, (-producer.seq, inp))
                if fresh:
                    owned.add(inp)
            else:
                grads[inp] = _sum_of(prev, ig)
                owned.add(inp)
    return results


def _deliver(t: Tensor, g, fresh: bool, wanted_ids, results) -> None:
    """Add a gradient into ``t.grad`` (or, with ``wanted_ids``, into ``results``), copying an
    array that is not ``fresh`` (one that something else may refer to)."""
    if wanted_ids is None:
        prev = t.grad
        t.grad = _wrap(
            (g if fresh else g.copy()) if prev is None else _sum_of(prev._data, g), False, None
        )
    elif id(t) in wanted_ids:
        prev = results.get(id(t))
        results[id(t)] = (g if fresh else g.copy()) if prev is None else _sum_of(prev, g)


def _fit(ig, data, op_name: str, i: int):
    """A VJP's gradient made an array of its input's type, shape and dtype."""
    if isinstance(ig, np.generic):
        ig = np.asarray(ig)  # numpy returns products of 0-d arrays as scalars
    if ig.shape != data.shape:
        ig = _reduce_to(ig, data.shape, op_name, i)
    if ig.dtype != data.dtype:
        ig = ig.astype(data.dtype)
    return ig


def _sum_of(a, b):
    """a + b, kept an array: numpy returns the sum of two 0-d arrays as a scalar."""
    out = a + b
    return np.asarray(out) if isinstance(out, np.generic) else out


def _tensor_list(what: str, value: Any) -> list[Tensor]:
    """One tensor or a sequence of tensors as a list, refusing anything else by position."""
    single = isinstance(value, Tensor) or backend.is_array(value) or not hasattr(value, "__iter__")
    items = [value] if single else list(value)
    for i, t in enumerate(items):
        if not isinstance(t, Tensor):
            raise TypeError(f"grad: {what} {i} is a {type(t).__name__}, not a Tensor")
    return items


def grad(
    outputs: Tensor | Sequence[Tensor],
    inputs: Tensor | Sequence[Tensor],
    grad_outputs: Any = None,
    retain_graph: bool = False,
    allow_unused: bool = False,
) -> tuple[Any, ...]:
    """Gradients of ``outputs`` with respect to ``inputs`` as arrays, leaving ``.grad`` alone."""
    outs, ins = _tensor_list("output", outputs), _tensor_list("input", inputs)
    if grad_outputs is None or isinstance(grad_outputs, Tensor) or backend.is_array(grad_outputs):
        grad_outputs = [grad_outputs] * len(outs) if grad_outputs is None else [grad_outputs]
    if len(grad_outputs) != len(outs):
        raise ValueError(f"grad: {len(outs)} outputs but {len(grad_outputs)} grad_outputs")
    for o in outs:
        if not o.requires_grad:
            raise RuntimeError(f"grad: an output of shape {o.shape} does not require grad")
    roots = [(o, _seed(o, g)) for o, g in zip(outs, grad_outputs, strict=True)]
    found = _run_backward(roots, retain_graph, ins)
    result = []
    for i, t in enumerate(ins):
        g = found.get(id(t))
        if g is None:
            if not allow_unused:
                raise RuntimeError(f"grad: input {i} of shape {t.shape} is not used by the outputs")
        elif g.shape != t.shape:
            g = _reduce_to(g, t.shape, "grad", i)
        result.append(g)
    return tuple(result)
