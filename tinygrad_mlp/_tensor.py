"""Tensor. Every op application goes through ``apply`` and becomes a Node of the tape
(``autograd/graph.py``) that the engine (``autograd/engine.py``) walks backwards. Groups of
methods live in their own modules and are added to the class there: conversion
(``_tensor_conversion.py``), comparisons (``_tensor_comparisons.py``), in-place ops
(``_inplace.py``), shapes (``_tensor_shapes.py``), reductions (``_tensor_reductions.py``), and
the functions of ``_tensor_maths.py``."""

from __future__ import annotations

import math
import operator
from collections import namedtuple
from collections.abc import Sequence
from typing import Any

from . import _conversion, backend
from . import ops as O
from ._conversion import (
    _FLOAT_KINDS,
    _INT64,
    DEFAULT_DTYPE,
    _lift,
    _promote,
    _to_array,
    to_dtype,
)
from ._dtype import Size, wrap_dtype
from ._printing import tensor_repr
from .autograd import graph as _graph
from .autograd.grad_mode import enable_grad, is_grad_enabled, no_grad
from .autograd.graph import (
    Node,
    _new_size,
    _ShapeMismatch,
    _wrap,
    _wrap_array,
    apply,
)
from .backend import np

__all__ = [
    "Tensor",
    "apply",
    "Node",
    "DEFAULT_DTYPE",
    "to_dtype",
    "no_grad",
    "enable_grad",
    "is_grad_enabled",
]

max_result = namedtuple("max", ["values", "indices"])
min_result = namedtuple("min", ["values", "indices"])


def _binary(op: O.Op, a: Any, b: Any) -> Tensor:
    """Apply a binary op after lifting numbers and promoting dtypes as PyTorch does."""
    if type(a) is not Tensor and not isinstance(a, Tensor):
        if op is O.SUB and a.__class__ is bool:
            _refuse_bool_subtraction()
        a = _lift(a, b)
    elif type(b) is not Tensor and not isinstance(b, Tensor):
        if op is O.SUB and b.__class__ is bool:
            _refuse_bool_subtraction()
        b = _lift(b, a)
    if a._data.dtype is not b._data.dtype:
        if op is O.SUB and "b" in (a._data.dtype.kind, b._data.dtype.kind):
            _refuse_bool_subtraction()
        a, b = _promote(a, b)
    return apply(op, a, b)


def _refuse_bool_subtraction() -> None:
    raise RuntimeError(
        "Subtraction, the `-` operator, with a bool tensor is not supported. If you are "
        "trying to invert a mask, use the `~` or `logical_not()` operator instead."
    )


def _as_float(t: Tensor) -> Tensor:
    return t if t._data.dtype.kind in _FLOAT_KINDS else t._cast(DEFAULT_DTYPE)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _ints(what: str, values: Sequence[Any]) -> tuple[int, ...]:
    """Shape sizes or dims as ints, or a TypeError naming them."""
    out = []
    for v in values:
        if isinstance(v, Tensor) and v.numel() == 1 and v.dtype.kind in "iu":
            v = v.item()
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"{what} must be ints, got {tuple(values)!r}")
        out.append(int(v))
    return tuple(out)


def _sizes(args: tuple, what: str) -> tuple[int, ...]:
    """Sizes given as ``f(2, 3)`` or ``f((2, 3))``."""
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    return _ints(what, args)


def _one_dim(dim: Any, ndim: int) -> int:
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise TypeError(f"dim must be an int, got {dim!r}")
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(
            f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})"
        )
    return int(dim) % n


def _dim_args(dim: Any, keepdim: Any, axis: Any, keepdims: Any) -> tuple[Any, bool]:
    """PyTorch's dim=/keepdim= with numpy's axis=/keepdims= as aliases."""
    if axis is not None:
        if dim is not None:
            raise TypeError("give dim or its alias axis, not both")
        dim = axis
    if keepdims is not None:
        keepdim = keepdims
    if isinstance(dim, list):
        dim = tuple(dim)
    return dim, bool(keepdim)


def _index(index: Any) -> Any:
    """Replace tensors and lists inside an index with integer or bool arrays."""
    if isinstance(index, tuple):
        return tuple(_index(i) for i in index)
    if isinstance(index, Tensor):
        data = index._data
        if data.dtype.kind not in "biu":
            raise IndexError(
                f"tensors used as indices must be long, int or bool tensors, got {data.dtype}"
            )
        return data
    if isinstance(index, list):
        array = np.asarray(index)
        if array.dtype.kind not in "biu":
            raise IndexError(f"a list used as an index must hold ints or bools, got {index!r:.60}")
        return array
    return index


def _scalar_exponent(value: Any) -> float | None:
    """The exponent as a Python number (True as 1.0), or None when it is a tensor (or an
    array)."""
    if isinstance(value, Tensor):
        return None
    if not isinstance(value, (int, float, np.integer, np.floating, np.bool_)):
        if backend.is_array(value):
            return None
        raise TypeError(f"pow: the exponent must be a number or a tensor, got {value!r:.40}")
    return False if value is False else float(value)  # False: see ops._pow_vjp


# ---------------------------------------------------------------- Tensor


def _root(s: Tensor, q: float) -> Tensor:
    """s ** q for the sums of a norm, with the gradient 0 where s is 0 (the norm of zeros), as
    PyTorch's norms have it: d sqrt(s)/ds is infinite there, and 0 * inf would be NaN."""
    positive = s > 0
    safe = where(positive, s, 1.0)
    # s * 0 is 0 where s is 0 and NaN where s is NaN (a variance over one element)
    return where(positive, safe.sqrt() if q == 0.5 else safe**q, s * 0.0)


class Tensor:
    """An n-dimensional array that records the ops applied to it for reverse-mode autodiff."""

    __slots__ = ("_data", "grad", "requires_grad", "_node", "_version", "_extra", "__weakref__")
    __array_ufunc__ = None  # numpy hands `array + tensor` over to Tensor.__radd__
    __array_priority__ = 1000

    def __init__(
        self,
        *args: Any,
        requires_grad: bool = False,
        dtype: Any = None,
        device: str | None = None,
    ) -> None:
        # PyTorch's two forms: Tensor(data) and Tensor(*sizes) (zeros here, uninitialised
        # there); Tensor(data, requires_grad) is kept as this library's own older form
        if args and type(args[-1]) is bool and len(args) == 2:
            args, requires_grad = args[:1], args[1]
        if len(args) == 1:
            data = args[0]
            if type(data) is int or type(data) is np.int64:
                data = backend.get_array_module(device).zeros(int(data), np.float32)
        elif not args:
            data = ()
        elif all(type(n) is int for n in args):
            data = backend.get_array_module(device).zeros(args, np.float32)
        else:
            raise TypeError(
                f"Tensor() takes data or sizes (ints), got {len(args)} positional arguments of "
                f"types {', '.join(type(a).__name__ for a in args)}"
            )
        if (
            type(data) is np.ndarray
            and dtype is None
            and device is None
            and data.dtype == DEFAULT_DTYPE
            and backend.default_device() == "cpu"
        ):
            array = data  # the common case of a float32 batch on the CPU, without conversion
        else:
            array = _to_array(data, dtype, device, False)
        if requires_grad:
            if array.dtype.kind not in _FLOAT_KINDS:
                raise RuntimeError(
                    f"only Tensors of floating point dtype can require gradients, got {array.dtype}"
                )
            if array is data or (isinstance(data, Tensor) and array is data._data):
                array = array.copy()  # a leaf that optimizers update in place owns its memory
        self._data = array
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self._node: Node | None = None
        self._version = 0
        self._extra = None

    _wrap = staticmethod(_wrap)

    # ------------------------------------------------------------ attributes

    @property
    def data(self) -> Tensor:
        """The values as a tensor cut from the graph, sharing memory with this one (changes
        through it are not counted by the version counter, as in PyTorch)."""
        return _wrap(self._data)

    @data.setter
    def data(self, value: Any) -> None:
        array = value._data if isinstance(value, Tensor) else value
        if not (backend.is_array(array) or backend.looks_like_cupy(array)):
            raise TypeError(f"data must be a Tensor or an array, got {type(value).__name__}")
        self._data = array

    @property
    def shape(self) -> Size:
        """The sizes of the dimensions, as a ``Size``."""
        return _new_size(Size, self._data.shape)

    def size(self, dim: int | None = None) -> Any:
        """The shape (a ``Size``), or the size of dimension ``dim``."""
        shape = self._data.shape
        if dim is None:
            return _new_size(Size, shape)
        return shape[_one_dim(dim, len(shape))] if shape else 1

    @property
    def ndim(self) -> int:
        """The number of dimensions."""
        return self._data.ndim

    def dim(self) -> int:
        """The number of dimensions."""
        return self._data.ndim

    ndimension = dim

    def numel(self) -> int:
        """The number of elements."""
        return int(self._data.size)

    nelement = numel

    @property
    def dtype(self):
        """The dtype of the elements (``tm.float32``, equal to numpy.float32)."""
        return wrap_dtype(self._data.dtype)

    @property
    def itemsize(self) -> int:
        """Bytes per element."""
        return self._data.dtype.itemsize

    def element_size(self) -> int:
        """Bytes per element."""
        return self._data.dtype.itemsize

    def is_floating_point(self) -> bool:
        """True for float16, float32 and float64 tensors."""
        return self._data.dtype.kind == "f"

    @property
    def device(self) -> str:
        """'cpu' or 'cuda'."""
        return "cpu" if type(self._data) is np.ndarray else backend.device_of(self._data)

    @property
    def is_cuda(self) -> bool:
        """True on the GPU."""
        return self.device == "cuda"

    @property
    def is_leaf(self) -> bool:
        """True for tensors made by the user rather than by a recorded op."""
        return self._node is None

    @property
    def grad_fn(self) -> Node | None:
        """The recorded op that made this tensor (None for leaves)."""
        return self._node

    @property
    def op(self) -> str | None:
        """The name of the op that produced this tensor, or None for a leaf."""
        return None if self._node is None else self._node.op.name

    @property
    def retains_grad(self) -> bool:
        """True when this non-leaf keeps its ``.grad`` after backward."""
        return bool(self._get_extra("retains_grad"))

    @property
    def _version_counter(self) -> int:
        return self._version

    def _get_extra(self, key: str) -> Any:
        return None if self._extra is None else self._extra.get(key)

    def _set_extra(self, key: str, value: Any) -> None:
        if self._extra is None:
            self._extra = {}
        self._extra[key] = value

    @property
    def T(self) -> Tensor:
        """The tensor with its dimensions reversed."""
        if self.ndim < 2:
            return self
        return self.permute(*range(self.ndim - 1, -1, -1))

    @property
    def mT(self) -> Tensor:
        """The last two dimensions swapped."""
        if self.ndim == 1:  # a 0-d tensor is its own transpose
            raise RuntimeError(
                f"tensor.mT is only supported on matrices or batches of matrices. Got "
                f"{self.ndim}-D tensor."
            )
        return self.transpose(-2, -1)

    mH = mT  # the conjugate transpose: the same for real numbers

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        node = self._node
        name = None if node is None else node.name()
        return tensor_repr(self.numpy(), self.dtype, self.device, name, self.requires_grad)

    def __format__(self, spec: str) -> str:
        if self._data.ndim == 0:
            return format(self.item(), spec)  # as PyTorch: a 0-d tensor formats as its number
        if spec:
            raise TypeError(
                f"unsupported format string {spec!r} passed to Tensor.__format__ (shape "
                f"{tuple(self.shape)}; only a 0-d tensor formats as a number)"
            )
        return repr(self)

    def __array__(self, dtype=None, copy=None):
        array = self.numpy()
        return array if dtype is None else array.astype(dtype)

    def __bool__(self) -> bool:
        if self.numel() != 1:
            raise RuntimeError(
                "Boolean value of Tensor with more than one value is ambiguous "
                f"(shape {self.shape})"
            )
        return bool(self._one("bool"))

    def __float__(self) -> float:
        return float(self._one("float"))

    def __int__(self) -> int:
        return int(self._one("int"))

    def __index__(self) -> int:
        if self._data.dtype.kind not in "biu":
            raise TypeError(f"only integer tensors can be converted to an index, not {self.dtype}")
        return int(self._one("index"))

    def _one(self, what: str) -> Any:
        if self.numel() != 1:
            raise ValueError(
                f"only one element tensors can be converted to Python scalars ({what} of a tensor "
                f"of shape {self.shape})"
            )
        if _graph._observer is not None:
            _graph._observer.read(self, f"{what}()")
        return self._data.reshape(()).item()

    # ------------------------------------------------------------ autodiff

    def zero_grad(self) -> None:
        """Forget the accumulated gradient (``.grad`` becomes None)."""
        self.grad = None

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this non-leaf tensor after backward."""
        if not self.requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self._node is not None:
            self._set_extra("retains_grad", True)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set ``requires_grad`` on a leaf in place and return it."""
        if self._node is not None and not requires_grad:
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables; this tensor was made "
                f"by op '{self.op}' (use detach() to get a tensor that does not require grad)"
            )
        if requires_grad and self.dtype.kind not in _FLOAT_KINDS:
            raise RuntimeError(
                f"only Tensors of floating point dtype can require gradients, got {self.dtype}"
            )
        self.requires_grad = bool(requires_grad)
        return self

    def register_hook(self, hook) -> Any:
        """Call ``hook(grad)`` when this tensor's gradient is computed; a returned tensor
        replaces the gradient. Returns a handle whose ``remove()`` unregisters it."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        return _add_hook(self, "hooks", hook)

    def register_post_accumulate_grad_hook(self, hook) -> Any:
        """Call ``hook(tensor)`` on a leaf after its ``.grad`` has been accumulated."""
        if self._node is not None:
            raise RuntimeError(
                "post accumulate grad hooks cannot be registered on non-leaf tensors"
            )
        return _add_hook(self, "post_hooks", hook)

    def backward(
        self,
        gradient: Any = None,
        retain_graph: bool | None = None,
        create_graph: bool = False,
        inputs: Any = None,
        *,
        grad: Any = None,
    ) -> None:
        """Accumulate d(self)/d(leaf) into ``.grad`` of every leaf that requires grad."""
        if grad is not None:
            gradient = grad
        (_ENGINE or _engine()).backward([self], [gradient], retain_graph, create_graph, inputs)

    # ------------------------------------------------------------ arithmetic

    def __add__(self, other: Any) -> Tensor:
        return _binary(O.ADD, self, other)

    def __radd__(self, other: Any) -> Tensor:
        return _binary(O.ADD, other, self)

    def __sub__(self, other: Any) -> Tensor:
        return _binary(O.SUB, self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return _binary(O.SUB, other, self)

    def __mul__(self, other: Any) -> Tensor:
        return _binary(O.MUL, self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return _binary(O.MUL, other, self)

    def __truediv__(self, other: Any) -> Tensor:
        return _true_divide(self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        if _is_number(other) or isinstance(other, bool):
            # NOTE: PyTorch's number / tensor is tensor.reciprocal() * number, in value (to the
            # last bit) and in gradient (NaN at 0 / 1e-200, where 1 / x^2 overflows)
            return self.reciprocal() * other
        return _true_divide(_lift(other, self), self)

    def __floordiv__(self, other: Any) -> Tensor:
        return _binary(_FLOOR_DIVIDE, self, other)

    def __rfloordiv__(self, other: Any) -> Tensor:
        return _binary(_FLOOR_DIVIDE, other, self)

    def __mod__(self, other: Any) -> Tensor:
        return self.remainder(other)

    def __rmod__(self, other: Any) -> Tensor:
        out = _lift(other, self).remainder(self)
        if out.requires_grad:  # NOTE: PyTorch has no derivative for a number % a tensor
            return _refused_in_backward(out, _NUMBER_REMAINDER)
        return out

    def remainder(self, other: Any) -> Tensor:
        """self - other * floor(self / other), the sign of other's (gradient 1 for self)."""
        return _binary(O.REMAINDER, self, other)

    def __neg__(self) -> Tensor:
        if self._data.dtype.kind == "b":
            raise RuntimeError(
                "negation, the `-` operator, on a bool tensor is not supported; to invert a "
                "mask, use ~ or logical_not()"
            )
        return apply(O.NEG, self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return self.abs()

    def __pow__(self, exponent: Any) -> Tensor:
        return self.pow(exponent)

    def __rpow__(self, base: Any) -> Tensor:
        # NOTE: PyTorch's backward of a bool base raised to a tensor fails an internal assert
        # (even where autograd.grad does not need it); ours is that of 0.0 or 1.0 ** x
        return _lift(base, self).pow(self)

    def __matmul__(self, other: Any) -> Tensor:
        return matmul(self, _lift(other, self))

    def __rmatmul__(self, other: Any) -> Tensor:
        return matmul(_lift(other, self), self)

    # PyTorch's names for numpy's rounding divisions, in its refusals
    _ROUNDED = {"floor_divide": "div_floor", "true_divide": "div_trunc"}

    def _no_grad_binary(self, name: str, other: Any) -> Tensor:
        other = _lift(other, self)
        a, b = _promote(self, other)
        if name != "power":
            O.refuse_integer_division(self._ROUNDED[name], a._data, b._data)
        xp = backend.array_module_of(a._data)
        return _wrap(xp.asarray(getattr(xp, name)(a._data, b._data)))

    # ------------------------------------------------------------ maths

    def add(self, other: Any, *, alpha: Any = 1) -> Tensor:
        """self + alpha * other."""
        if alpha == 1:
            return self + other
        return _with_alpha(self + other, self, other, alpha, operator.add)

    def sub(self, other: Any, *, alpha: Any = 1) -> Tensor:
        """self - alpha * other."""
        if alpha == 1:
            return self - other
        return _with_alpha(self - other, self, other, alpha, operator.sub)

    subtract = sub

    def mul(self, other: Any) -> Tensor:
        """self * other."""
        return self * other

    multiply = mul

    def div(self, other: Any, *, rounding_mode: str | None = None) -> Tensor:
        """self / other (true division; 'floor' or 'trunc' rounding without gradient)."""
        if rounding_mode is None:
            return _true_divide(self, other)
        if rounding_mode not in ("floor", "trunc"):
            raise ValueError(
                f"div: rounding_mode must be None, 'floor' or 'trunc', got {rounding_mode!r}"
            )
        if rounding_mode == "floor":  # Python's //, as PyTorch's (1.0 // 0.1 is 9)
            out = self._no_grad_binary("floor_divide", other)
        else:
            q = self._no_grad_binary("true_divide", other)
            dtype = _promote(self, _lift(other, self))[0].dtype
            q = backend.array_module_of(q._data).trunc(q._data)
            out = _wrap(q.astype(dtype) if dtype.kind in "iu" else q)
        return _zero_gradient(out, self, other)

    divide = true_divide = div

    def neg(self) -> Tensor:
        """-self."""
        return -self

    negative = neg

    def pow(self, exponent: Any) -> Tensor:
        """self ** exponent, for a number or a tensor exponent."""
        c = _scalar_exponent(exponent)
        if self._data.dtype.kind in "biu":
            return _integer_pow(self, exponent, c)
        if c is None:
            return _binary(O.POW_TENSOR, self, exponent)
        return apply(O.POW, self, exponent=c)

    def sqrt(self) -> Tensor:
        """Elementwise square root."""
        return apply(O.POW, _as_float(self), exponent=0.5)

    def rsqrt(self) -> Tensor:
        """Elementwise 1 / sqrt(x) (-inf at -0.0, as PyTorch's)."""
        return self.sqrt().reciprocal()

    def square(self) -> Tensor:
        """Elementwise x ** 2."""
        x = self._cast(_INT64) if self._data.dtype.kind == "b" else self  # bool: int64
        return x * x

    def reciprocal(self) -> Tensor:
        """Elementwise 1 / x."""
        return apply(O.POW, _as_float(self), exponent=-1.0)

    def exp(self) -> Tensor:
        """Elementwise e ** x."""
        return apply(O.EXP, self if self._data.dtype.kind == "f" else _as_float(self))

    def expm1(self) -> Tensor:
        """Elementwise e ** x - 1, accurate near 0."""
        return apply(O.EXPM1, _as_float(self))

    def log(self) -> Tensor:
        """Elementwise natural logarithm."""
        return apply(O.LOG, self if self._data.dtype.kind == "f" else _as_float(self))

    def log1p(self) -> Tensor:
        """Elementwise log(1 + x), accurate near 0."""
        return apply(O.LOG1P, _as_float(self))

    def log2(self) -> Tensor:
        """Elementwise base-2 logarithm."""
        return self.log() * (1 / math.log(2))

    def log10(self) -> Tensor:
        """Elementwise base-10 logarithm."""
        return self.log() * (1 / math.log(10))

    def sin(self) -> Tensor:
        """Elementwise sine."""
        return apply(O.SIN, _as_float(self))

    def cos(self) -> Tensor:
        """Elementwise cosine."""
        return apply(O.COS, _as_float(self))

    def erf(self) -> Tensor:
        """Elementwise error function."""
        return apply(O.ERF, _as_float(self))

    def abs(self) -> Tensor:
        """Elementwise |x|."""
        if self._data.dtype.kind == "b":
            raise NotImplementedError("\"abs\" not implemented for 'Bool'")
        if self._data.dtype.kind in "biu":
            return _wrap_array(self._data, abs(self._data))
        return apply(O.ABS, self)

    absolute = abs

    def sign(self) -> Tensor:
        """Elementwise -1, 0 or 1 (its gradient is 0)."""
        if self._data.dtype.kind == "b":  # a bool is its own sign, as in PyTorch
            return _wrap(self._data.copy())
        if self._data.dtype.kind in "iu":
            return _wrap(backend.array_module_of(self._data).sign(self._data))
        return apply(O.SIGN, self)

    def round(self, decimals: int = 0) -> Tensor:
        """Elementwise rounding to ``decimals`` places, halves to even (its gradient is 0)."""
        xp = backend.array_module_of(self._data)
        if self._data.dtype.kind in "biu":
            if decimals != 0 or self._data.dtype.kind == "b":
                raise NotImplementedError(f'"round" not implemented for {self.dtype}')
            return _wrap(self._data.copy())
        out = _wrap(xp.asarray(xp.round(self._data, int(decimals))))
        if not (self.requires_grad and is_grad_enabled()):
            return out
        # NOTE: a where that never picks self records the op with a zero gradient for self
        # (as PyTorch's RoundBackward), and keeps inf and NaN as they are
        return where(_wrap(xp.zeros(self.shape, dtype=bool)), self, out)

    def relu(self) -> Tensor:
        """Elementwise max(x, 0)."""
        if self._data.dtype.kind == "b":
            raise RuntimeError("Boolean inputs not supported for relu")
        return apply(O.RELU, self)

    def sigmoid(self) -> Tensor:
        """Elementwise 1 / (1 + e ** -x), stable for large |x|."""
        return apply(O.SIGMOID, self if self._data.dtype.kind == "f" else _as_float(self))

    def tanh(self) -> Tensor:
        """Elementwise hyperbolic tangent."""
        return apply(O.TANH, self if self._data.dtype.kind == "f" else _as_float(self))

    def maximum(self, other: Any) -> Tensor:
        """Elementwise maximum; ties share the gradient equally."""
        return _binary(O.MAXIMUM, self, other)

    def minimum(self, other: Any) -> Tensor:
        """Elementwise minimum; ties share the gradient equally."""
        return _binary(O.MINIMUM, self, other)

    def clamp(self, min: Any = None, max: Any = None) -> Tensor:
        """Elementwise clip into [min, max] (numbers or tensors); the gradient is 0 where
        clipped."""
        if min is None and max is None:
            raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
        if isinstance(min, Tensor) or isinstance(max, Tensor):
            return _clamp_tensors(self, min, max)
        for name, bound in (("min", min), ("max", max)):
            if bound is not None and not (_is_number(bound) or isinstance(bound, bool)):
                raise TypeError(f"clamp: {name} must be a number, a tensor or None, got {bound!r}")
        x = self
        bools = all(b is None or isinstance(b, bool) for b in (min, max))
        if bools and self._data.dtype.kind == "b":
            which = "clamp_min" if max is None else "clamp_max" if min is None else "clamp"
            raise NotImplementedError(
                f"{which}: not implemented for a bool tensor with bool bounds (as PyTorch's); "
                "give int bounds, or use logical_and / logical_or"
            )
        if any(isinstance(b, float) for b in (min, max)) and self._data.dtype.kind in "biu":
            x = _as_float(self)
        return apply(O.CLAMP, x, low=min, high=max)

    clip = clamp

    def where(self, condition: Any, other: Any) -> Tensor:
        """``self`` where ``condition`` holds, ``other`` elsewhere."""
        return where(condition, self, other)

    def masked_fill(self, mask: Any, value: Any) -> Tensor:
        """``value`` where ``mask`` is True, this tensor elsewhere (differentiable)."""
        mask = _bool_mask("masked_fill", mask)
        return where(_wrap(mask), _lift(value, self)._cast(self.dtype), self)

    def softmax(self, dim: int = -1, dtype: Any = None, *, axis: int | None = None) -> Tensor:
        """exp(x) / sum(exp(x)) along ``dim``, with the max subtracted first."""
        x = _as_float(self if dtype is None else self.to(dtype))
        dim = dim if axis is None else axis
        return apply(O.SOFTMAX, x, axis=_one_dim(dim, self.ndim))

    def log_softmax(self, dim: int = -1, dtype: Any = None, *, axis: int | None = None) -> Tensor:
        """log(softmax(x)) along ``dim``, computed stably."""
        x = _as_float(self if dtype is None else self.to(dtype))
        dim = dim if axis is None else axis
        return apply(O.LOG_SOFTMAX, x, axis=_one_dim(dim, self.ndim))

    def matmul(self, other: Any) -> Tensor:
        """Matrix product (numpy's rules for 1-D, 2-D and batched operands)."""
        return matmul(self, other)

    def mm(self, other: Tensor) -> Tensor:
        """Product of two matrices."""
        if self.ndim != 2 or getattr(other, "ndim", 0) != 2:
            raise RuntimeError(
                f"mm: both arguments must be matrices, got shapes {self.shape} and "
                f"{getattr(other, 'shape', None)}"
            )
        return matmul(self, other)

    def bmm(self, other: Tensor) -> Tensor:
        """Batched product of (b, n, m) and (b, m, p) tensors."""
        if self.ndim != 3 or getattr(other, "ndim", 0) != 3:
            raise RuntimeError(
                f"bmm: both arguments must be 3-D, got shapes {self.shape} and "
                f"{getattr(other, 'shape', None)}"
            )
        return matmul(self, other)

    def dot(self, other: Tensor) -> Tensor:
        """Inner product of two 1-D tensors."""
        if self.ndim != 1 or getattr(other, "ndim", 0) != 1:
            raise RuntimeError(
                f"1D tensors expected, but got {self.ndim}D and {getattr(other, 'ndim', 0)}D"
            )
        return matmul(self, other)

    def outer(self, other: Tensor) -> Tensor:
        """Outer product of two 1-D tensors."""
        return self.reshape(-1, 1) * _lift(other, self).reshape(1, -1)


# NOTE: the modules split off this one make Tensors and test for them, but cannot import this
# module (it imports them): the class is handed to them here, once it exists.
_graph.Tensor = _conversion.Tensor = Tensor


def _add_methods(methods: type) -> None:
    """Give Tensor the methods written in the class body of ``methods`` (a module that imports
    this one adds a group of methods this way: conversion, comparisons, in-place ops, shapes,
    reductions)."""
    # NOTE: a class body that defines __eq__ gets __hash__ = None; Tensor keeps object's hash
    skip = ("__module__", "__qualname__", "__doc__", "__dict__", "__weakref__", "__hash__")
    for name, value in vars(methods).items():
        if name not in skip:
            value.__qualname__ = f"Tensor.{value.__name__}"  # as if written in the class
            setattr(Tensor, name, value)


# ---------------------------------------------------------------- helpers of the methods


def _engine():
    """The autograd engine module (imported on first use: it imports this module)."""
    global _ENGINE
    if _ENGINE is None:
        from .autograd import engine

        _ENGINE = engine
    return _ENGINE


_ENGINE = None


class _Handle:
    """What ``register_hook`` returns: ``remove()`` unregisters the hook."""

    def __init__(self, hooks: list, hook: Any) -> None:
        self._hooks, self._hook = hooks, hook

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


def _add_hook(t: Tensor, kind: str, hook: Any) -> _Handle:
    if not callable(hook):
        raise TypeError(f"hook must be callable, got {type(hook).__name__}")
    hooks = t._get_extra(kind)
    if hooks is None:
        hooks = []
        t._set_extra(kind, hooks)
    hooks.append(hook)
    return _Handle(hooks, hook)


def _clamp_tensors(x: Tensor, low: Any, high: Any) -> Tensor:
    """clamp with tensor bounds: min(max(x, low), high), with PyTorch's gradients: to x where
    low <= x <= high (ties included), to low where x < low < high, to high where x > high or
    high < low, to none where low == high > x."""
    bounds = (low, high)
    if any(b is not None and not isinstance(b, Tensor) for b in bounds) and all(
        b.ndim == 0 and not b.requires_grad for b in bounds if isinstance(b, Tensor)
    ):  # NOTE: PyTorch reads a 0-d tensor beside a number bound as a number
        return x.clamp(*(b.item() if isinstance(b, Tensor) else b for b in bounds))
    for name, bound in (("min", low), ("max", high)):
        if bound is not None and not isinstance(bound, Tensor):
            raise TypeError(
                f"clamp() received an invalid combination of arguments: {name} must be a tensor "
                "(or None) when the other bound is a tensor"
            )
    with no_grad():
        value = x.detach()
        value = value if low is None else value.maximum(low.detach())
        value = value if high is None else value.minimum(high.detach())
    # PyTorch's masks: a NaN in x or a bound gives no gradient to the operand it would pick
    if low is None:
        out = where(x > high, high, where(x <= high, x, value))
    elif high is None:
        out = where(x < low, low, where(x >= low, x, value))
    else:
        to_low = (x < low) & (low < high)
        to_high = (x > high) | (high < low)
        inside = (x >= low) & (x <= high)
        out = where(to_high, high, where(to_low, low, where(inside, x, value)))
    undefined = value != value
    if undefined.any():  # NaN wherever x or a bound is NaN; the gradients follow the masks
        out = out + where(undefined, value, 0)
    if out.requires_grad and low is not None and high is not None:
        # NOTE: PyTorch's backward writes the masks for x and min in place into one of the
        # shape of x and min (for max: of x and max), and fails where the third operand
        # broadcasts them further; so does ours, so that such code fails here as it will there
        checks = ((low, x.requires_grad or low.requires_grad), (high, high.requires_grad))
        for bound, needs in checks:
            kept = np.broadcast_shapes(x.shape, bound.shape)
            if needs and kept != out.shape:
                return _refused_in_backward(
                    out,
                    f"clamp: output with shape {list(kept)} doesn't match the broadcast shape "
                    f"{list(out.shape)}",
                )
    return out


def _with_alpha(plain: Tensor, a: Any, b: Any, alpha: Any, fn) -> Tensor:
    """a + alpha * b (or a - alpha * b) in the dtype of a + b, as PyTorch's."""
    if plain.dtype.kind in "biu" and isinstance(alpha, float):
        raise RuntimeError(
            "For integral input tensors, argument alpha must not be a floating point number."
        )
    out = fn(a, b * alpha)
    return out if out.dtype == plain.dtype else out._cast(plain.dtype)


def _floor_divide(ns, a, b):
    O.refuse_integer_division("div_floor", a, b)
    return a // b, None


def _floor_divide_vjp(ns, g, saved, needs):
    raise RuntimeError("the derivative for 'floor_divide' is not implemented")


# NOTE: recorded (as PyTorch records it), so that a backward through // fails, naming the op
_FLOOR_DIVIDE = O.Op("floor_divide", _floor_divide, _floor_divide_vjp, 2, saves_inputs=False)


def _integer_pow(base: Tensor, exponent: Any, c: float | None) -> Tensor:
    """base ** exponent for a bool or integer base, with PyTorch's dtypes: a bool exponent keeps
    the base's dtype, an int one gives an integer power (refused below 0 for a number; for a
    tensor 1 ** -n is 1, (-1) ** -n is +-1 and any other base gives 0), a float one gives a
    float power in the promoted dtype (float32 for a number)."""
    xp = backend.array_module_of(base._data)
    if c is not None:  # a number
        if isinstance(exponent, (bool, np.bool_)):
            return _wrap(base._data.copy() if exponent else xp.ones_like(base._data))
        if isinstance(exponent, (float, np.floating)):
            return apply(O.POW, _as_float(base), exponent=c)
        if c < 0:
            raise RuntimeError("Integers to negative integer powers are not allowed.")
        return base._no_grad_binary("power", int(c))
    a, b = _promote(base, _lift(exponent, base))
    if a._data.dtype.kind in _FLOAT_KINDS:
        return apply(O.POW_TENSOR, a, b)
    if a._data.dtype.kind == "b":
        raise NotImplementedError("\"pow\" not implemented for 'Bool'")
    x, e = a._data, b._data
    negative = e < 0
    out = xp.power(x, xp.where(negative, 0, e))
    if negative.any():
        out = xp.where(negative, xp.where(x == 1, 1, xp.where(x == -1, 1 - 2 * (e % 2), 0)), out)
    return _wrap(xp.asarray(out, dtype=x.dtype))


_NUMBER_REMAINDER = "the derivative for 'remainder' of a number by a tensor is not implemented"


def _refused_in_backward(out: Tensor, message: str) -> Tensor:
    """``out``, recorded so that a backward through it raises RuntimeError(message)."""
    return apply(_REFUSED, out, message=message)


def _refused(ns, x, message):
    return +x, message


def _refused_vjp(ns, g, message, needs):
    raise RuntimeError(message)


_REFUSED = O.Op("refused", _refused, _refused_vjp, 1)


def _need_float(x: Tensor, message: str) -> None:
    """Refuse an integer or bool tensor where PyTorch wants a floating one."""
    if x._data.dtype.kind not in _FLOAT_KINDS:
        raise RuntimeError(f"{message}. Got: {x.dtype}")


def _data_of_any(value: Any) -> Any:
    """A tensor's or an array's data, as an array (its dtype is read)."""
    return value._data if isinstance(value, Tensor) else np.asarray(value)


def _zero_gradient(out: Tensor, *inputs: Any) -> Tensor:
    """``out`` recorded with a zero gradient for each input tensor that requires one (the
    derivative of a rounding op, as PyTorch gives it)."""
    for t in inputs:
        if isinstance(t, Tensor) and t.requires_grad and is_grad_enabled():
            never = _wrap(backend.array_module_of(out._data).zeros(out.shape, dtype=bool))
            out = where(never, t, out)  # NOTE: where never picks t: its gradient is 0
    return out


def _scaled(other: Any, alpha: Any) -> Any:
    return (other._data if isinstance(other, Tensor) else other) * alpha


def _bool_mask(name: str, mask: Any) -> Any:
    data = mask._data if isinstance(mask, Tensor) else mask
    if not (backend.is_array(data) or backend.looks_like_cupy(data)):
        data = np.asarray(data)
    if data.dtype.kind != "b":
        raise RuntimeError(
            f"{name} only supports boolean masks, but got mask with dtype {data.dtype}"
        )
    return data


def _true_divide(a: Any, b: Any) -> Tensor:
    if not isinstance(a, Tensor):
        a = _lift(a, b)
    b = _lift(b, a)
    a, b = _promote(a, b)
    if a._data.dtype.kind in "biu":
        a, b = a._cast(DEFAULT_DTYPE), b._cast(DEFAULT_DTYPE)
    return apply(O.DIV, a, b)


def _extreme(x: Tensor, dim: Any, keepdim: bool, arg: str, result) -> Any:
    d = _one_dim(dim, x.ndim)
    if x.numel() == 0:
        raise IndexError(f"{arg[3:]}(): cannot reduce an empty tensor of shape {x.shape}")
    data = x._data
    xp = backend.array_module_of(data)
    if x.ndim == 0:
        return result(x, _wrap(xp.asarray(0, dtype=np.int64)))
    idx = xp.expand_dims(getattr(data, arg)(axis=d), d).astype(np.int64)
    values = x.gather(d, idx)
    if not keepdim:
        values = values.squeeze(d)
        idx = idx.squeeze(d)
    return result(_labelled(values, f"{arg[3:].capitalize()}Backward0"), _wrap(idx))


def _labelled(t: Tensor, name: str) -> Tensor:
    """``t`` with PyTorch's name (``MaxBackward1``) on its node, where the ops that made it
    would name it otherwise."""
    if t._node is not None:
        t._node.label = name
    return t


def matmul(a: Any, b: Any) -> Tensor:
    """Matrix product with numpy's rules for 1-D and 2-D operands; shapes are checked first."""
    if not isinstance(a, Tensor):
        a = _lift(a, b)
    b = _lift(b, a)
    sa, sb = a._data.shape, b._data.shape
    if not sa or not sb:
        raise RuntimeError(
            f"both arguments to matmul need to be at least 1D, but they are {len(sa)}D and "
            f"{len(sb)}D"
        )
    inner_b = sb[0] if len(sb) == 1 else sb[-2]
    if sa[-1] != inner_b:
        raise RuntimeError(
            f"mat1 and mat2 shapes cannot be multiplied ({sa} and {sb}): {sa[-1]} (last dim of "
            f"the first) != {inner_b} ({'first' if len(sb) == 1 else 'second-to-last'} dim of "
            "the second)"
        )
    try:
        np.broadcast_shapes(sa[:-2], sb[:-2])
    except ValueError:
        raise RuntimeError(
            f"matmul: the batch dims of shapes {sa} and {sb} do not broadcast"
        ) from None
    if a.dtype != b.dtype:
        if a.dtype.kind == b.dtype.kind == "f":
            raise RuntimeError(
                f"expected m1 and m2 to have the same dtype, but got: {a.dtype} != {b.dtype}; "
                "cast one with .to(dtype)"
            )
        a, b = _promote(a, b)
    return apply(O.MATMUL, a, b)


def where(condition: Any, input: Any, other: Any) -> Tensor:
    """``input`` where ``condition`` holds, ``other`` elsewhere (differentiable in both)."""
    cond = _bool_mask("where", condition)
    if not isinstance(input, Tensor) and not isinstance(other, Tensor):
        input = _wrap(_to_array(input, None, None, True))  # where(c, 1, 0) is int64
    if not isinstance(input, Tensor):
        input = _lift(input, other)
    other = _lift(other, input)
    if input._data.dtype is not other._data.dtype:
        input, other = _promote(input, other)
        if input.dtype != other.dtype:
            dtype = np.result_type(input._data, other._data)
            input, other = input._cast(dtype), other._cast(dtype)
    xp = backend.array_module_of(input._data)
    if backend.device_of(cond) != input.device:
        cond = backend.to_device(cond, input.device)
    try:
        shape = np.broadcast_shapes(cond.shape, input.shape, other.shape)  # shapes: host tuples
    except ValueError:
        raise _ShapeMismatch(
            f"where: the condition's shape {tuple(cond.shape)}, input's {tuple(input.shape)} and "
            f"other's {tuple(other.shape)} do not broadcast together"
        ) from None
    if cond.shape != shape:
        cond = xp.broadcast_to(cond, shape)
    return apply(O.WHERE, input, other, condition=cond)
