"""Differentiable numpy names for Tensors: ``import tinygrad_mlp.numpy as np``.

A tutorial's forward pass written against ``np`` runs unchanged on tensors once its module imports
this namespace instead of numpy. Each function follows numpy's signature and semantics
(``axis=``, ``keepdims=``, ``dot`` of 2-D operands is a matrix product and of 1-D ones an inner
product, ``transpose`` reverses the axes by default, ``max`` with ``axis=None`` reduces all) and is
built from Tensor methods and registry ops, so its gradient is the engine's.

Mixing: numpy arrays and Python numbers mix freely with Tensors; they become constants of the
tensors' dtype and device. When no argument is a Tensor the function is numpy's own and returns a
plain numpy result, so the same code runs on arrays too.

Constants: ``array``, ``asarray``, ``zeros``, ``ones``, ``eye``, ``zeros_like`` and ``ones_like``
return plain numpy arrays (they never require grad); ``array`` and ``asarray`` of a Tensor return
the Tensor itself (cast with ``dtype=``), so a forward pass that re-wraps its input stays
differentiable. ``argmax`` and ``argmin`` return integer numpy arrays (no gradient). ``random`` is
numpy's own ``numpy.random``.

A numpy name that is not here raises an AttributeError that names it.
"""

from __future__ import annotations

import builtins
import math
import string
from collections.abc import Sequence
from typing import Any

from ._creation import cat as _cat
from ._creation import stack as _stack
from ._tensor import Tensor
from ._tensor import where as _where
from .backend import array_module_of
from .backend import np as _np

__all__ = [
    # constants and factories (plain numpy results)
    "array",
    "asarray",
    "zeros",
    "ones",
    "zeros_like",
    "ones_like",
    "eye",
    # elementwise
    "add",
    "subtract",
    "multiply",
    "divide",
    "true_divide",
    "power",
    "negative",
    "exp",
    "log",
    "log1p",
    "expm1",
    "sqrt",
    "square",
    "abs",
    "absolute",
    "sign",
    "tanh",
    "maximum",
    "minimum",
    "clip",
    "where",
    # products
    "dot",
    "matmul",
    "outer",
    "einsum",
    # reductions
    "sum",
    "mean",
    "max",
    "min",
    "amax",
    "amin",
    "prod",
    "argmax",
    "argmin",
    # shapes
    "reshape",
    "transpose",
    "squeeze",
    "expand_dims",
    "concatenate",
    "stack",
    # submodules and constants
    "linalg",
    "random",
    "pi",
    "e",
    "inf",
    "newaxis",
    "float32",
    "float64",
    "ndarray",
]

# Functions whose value and gradient the tests check on random inputs (the factories, argmax and
# argmin, which have no gradient, are listed apart).
DIFFERENTIABLE = tuple(
    name
    for name in __all__
    if name
    not in {
        "array",
        "asarray",
        "zeros",
        "ones",
        "zeros_like",
        "ones_like",
        "eye",
        "argmax",
        "argmin",
        "linalg",
        "random",
        "pi",
        "e",
        "inf",
        "newaxis",
        "float32",
        "float64",
        "ndarray",
    }
)

pi = math.pi
e = math.e
inf = math.inf
newaxis = None
float32 = _np.float32
float64 = _np.float64
ndarray = _np.ndarray
random = _np.random

_builtin_max = builtins.max
_builtin_sum = builtins.sum


# ---------------------------------------------------------------- dispatch helpers


def _any_tensor(*values: Any) -> bool:
    return builtins.any(isinstance(v, Tensor) for v in values)


def _common_dtype(values: Sequence[Any]):
    """The tensors' floating dtype; without one, numpy's promotion of everything given."""
    floating = [_dtype(v) for v in values if isinstance(v, Tensor) and _dtype(v).kind == "f"]
    if floating:
        return _np.result_type(*floating)
    return _np.result_type(*(_array(v).dtype for v in values))


def _tensors(*values: Any) -> list[Tensor]:
    """All values as Tensors of one dtype and device (the tensors' floating dtype, if any).

    Numpy arrays and Python numbers become constants that do not require grad.
    """
    found = [v for v in values if isinstance(v, Tensor)]
    dtype = _common_dtype(values)
    device = found[0].device
    out = []
    for v in values:
        if isinstance(v, Tensor):
            out.append(_cast(v, dtype))
        else:
            out.append(Tensor(_array(v, dtype), dtype=dtype, device=device))
    return out


def _array(value: Any, dtype: Any = None):
    """A number, list or array (numpy or CuPy) as an array of its own module."""
    value = _values(value)
    return array_module_of(value).asarray(value, dtype=dtype)


def _xp(t: Tensor):
    """numpy or CuPy: the array module of a tensor's data."""
    return array_module_of(t._data)


def _dtype(t: Tensor):
    """The numpy dtype of a tensor's array (numpy's and CuPy's are numpy dtypes)."""
    return t._data.dtype


def _cast(t: Tensor, dtype) -> Tensor:
    if _dtype(t) == dtype:
        return t
    return t.astype(dtype) if hasattr(type(t), "astype") else t.to(dtype)


def _permute(t: Tensor, axes: Sequence[int]) -> Tensor:
    """The axes of t in the order ``axes`` (a whole permutation, as numpy's transpose)."""
    axes = [int(a) for a in axes]
    if axes == list(range(t.ndim)):
        return t
    return t.permute(*axes)


def _amax(t: Tensor, axis: Any, keepdims: bool) -> Tensor:
    """Maximum over ``axis`` (None: all); ties share the gradient."""
    return t.amax(axis=axis if axis is None else _axes(axis, t.ndim), keepdims=keepdims)


def _values(x: Any):
    """The raw array of a Tensor (a bool mask, an index), or the value itself."""
    return x._data if isinstance(x, Tensor) else x


def _no_out(name: str, out: Any) -> None:
    if out is not None:
        raise TypeError(f"tinygrad_mlp.numpy.{name}: out= is not supported on Tensors")


def _axes(axis: Any, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, _np.integer)) else tuple(axis)
    return tuple(int(a) % _builtin_max(ndim, 1) for a in axes)


# ---------------------------------------------------------------- constants and factories


def array(object: Any, dtype: Any = None, copy: bool = True, **kwargs: Any):
    """numpy.array for data (a constant numpy array); a Tensor stays the Tensor (cast by dtype)."""
    if isinstance(object, Tensor):
        return object if dtype is None else _cast(object, _np.dtype(dtype))
    return _np.array(object, dtype=dtype, copy=copy, **kwargs)


def asarray(a: Any, dtype: Any = None, **kwargs: Any):
    """numpy.asarray for data (a constant numpy array); a Tensor stays that Tensor."""
    if isinstance(a, Tensor):
        return array(a, dtype=dtype)
    return _np.asarray(a, dtype=dtype, **kwargs)


def zeros(shape: Any, dtype: Any = float, **kwargs: Any):
    """numpy.zeros: a constant numpy array."""
    return _np.zeros(shape, dtype=dtype, **kwargs)


def ones(shape: Any, dtype: Any = float, **kwargs: Any):
    """numpy.ones: a constant numpy array."""
    return _np.ones(shape, dtype=dtype, **kwargs)


def eye(N: int, M: int | None = None, k: int = 0, dtype: Any = float, **kwargs: Any):
    """numpy.eye: a constant numpy array."""
    return _np.eye(N, M, k, dtype=dtype, **kwargs)


def zeros_like(a: Any, dtype: Any = None, **kwargs: Any):
    """numpy.zeros_like: a constant numpy array shaped like ``a`` (a Tensor's dtype kept)."""
    if isinstance(a, Tensor):
        return _np.zeros(tuple(a.shape), dtype=dtype or _dtype(a))
    return _np.zeros_like(a, dtype=dtype, **kwargs)


def ones_like(a: Any, dtype: Any = None, **kwargs: Any):
    """numpy.ones_like: a constant numpy array shaped like ``a`` (a Tensor's dtype kept)."""
    if isinstance(a, Tensor):
        return _np.ones(tuple(a.shape), dtype=dtype or _dtype(a))
    return _np.ones_like(a, dtype=dtype, **kwargs)


# ---------------------------------------------------------------- elementwise


def _binary(name: str, combine, doc: str):
    numpy_fn = getattr(_np, name)

    def fn(x1: Any, x2: Any, out: Any = None):
        if not _any_tensor(x1, x2):
            return numpy_fn(x1, x2)
        _no_out(name, out)
        return combine(*_tensors(x1, x2))

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc
    return fn


add = _binary("add", Tensor.__add__, "x1 + x2, broadcast.")
subtract = _binary("subtract", Tensor.__sub__, "x1 - x2, broadcast.")
multiply = _binary("multiply", Tensor.__mul__, "x1 * x2, broadcast.")
divide = _binary("divide", Tensor.__truediv__, "x1 / x2, broadcast.")

true_divide = divide


def power(x1: Any, x2: Any, out: Any = None):
    """x1 ** x2, broadcast; without the core's tensor exponent, exp(x2 log x1) for x1 > 0."""
    if not _any_tensor(x1, x2):
        return _np.power(x1, x2)
    _no_out("power", out)
    if _np.ndim(_values(x2)) == 0 and not isinstance(x2, Tensor):
        return x1 ** float(x2)
    if _np.ndim(_values(x1)) == 0 and not isinstance(x1, Tensor):
        return float(x1) ** x2
    base, exponent = _tensors(x1, x2)
    try:
        return base**exponent  # the core's pow with a tensor exponent, when it has one
    except TypeError:
        # x ** y = e^(y ln x): defined for x > 0, as the derivative in y needs ln x
        return (exponent * base.log()).exp()


def negative(x: Any, out: Any = None):
    """-x."""
    if not _any_tensor(x):
        return _np.negative(x)
    _no_out("negative", out)
    return -x


def _unary(name: str, composed):
    numpy_fn = getattr(_np, name)

    def fn(x: Any, out: Any = None):
        if not isinstance(x, Tensor):
            return numpy_fn(x)
        _no_out(name, out)
        return composed(x)

    fn.__name__ = fn.__qualname__ = name
    return fn


exp = _unary("exp", Tensor.exp)
exp.__doc__ = "Elementwise e**x."
log = _unary("log", Tensor.log)
log.__doc__ = "Elementwise natural logarithm."
log1p = _unary("log1p", Tensor.log1p)
log1p.__doc__ = "Elementwise log(1 + x)."
expm1 = _unary("expm1", Tensor.expm1)
expm1.__doc__ = "Elementwise e**x - 1."
sqrt = _unary("sqrt", Tensor.sqrt)
sqrt.__doc__ = "Elementwise square root."
square = _unary("square", Tensor.square)
square.__doc__ = "Elementwise x**2."
abs = _unary("abs", Tensor.abs)
abs.__doc__ = "Elementwise |x| (gradient sign(x), 0 at 0)."
absolute = abs
sign = _unary("sign", Tensor.sign)
sign.__doc__ = "Elementwise sign(x): -1, 0 or 1 (gradient 0)."
tanh = _unary("tanh", Tensor.tanh)
tanh.__doc__ = "Elementwise hyperbolic tangent."


def where(condition: Any, x: Any = None, y: Any = None):
    """Elements of x where condition holds, else of y; the gradient goes to the chosen side."""
    if x is None and y is None:
        return _np.where(_values(condition))
    if not _any_tensor(x, y):
        return _np.where(_values(condition), x, y)
    mask = _values(condition)
    if not hasattr(mask, "dtype"):
        mask = _np.asarray(mask)
    if mask.dtype.kind != "b":
        mask = mask != 0  # numpy's where takes any truthy array
    a, b = _tensors(x, y)
    return _where(mask, a, b)


def maximum(x1: Any, x2: Any, out: Any = None):
    """Elementwise larger of x1 and x2 (the core's ``maximum`` when it has one)."""
    if not _any_tensor(x1, x2):
        return _np.maximum(x1, x2)
    _no_out("maximum", out)
    a, b = _tensors(x1, x2)
    return a.maximum(b)


def minimum(x1: Any, x2: Any, out: Any = None):
    """Elementwise smaller of x1 and x2 (the core's ``minimum`` when it has one)."""
    if not _any_tensor(x1, x2):
        return _np.minimum(x1, x2)
    _no_out("minimum", out)
    a, b = _tensors(x1, x2)
    return a.minimum(b)


def _is_scalar(v: Any) -> bool:
    return v is None or (not isinstance(v, Tensor) and _np.ndim(v) == 0)


def clip(a: Any, a_min: Any = None, a_max: Any = None, out: Any = None):
    """Clip into [a_min, a_max]; the gradient is 0 where clipped (bounds may be arrays)."""
    if not _any_tensor(a, a_min, a_max):
        return _np.clip(a, a_min, a_max)
    _no_out("clip", out)
    if a_min is None and a_max is None:
        raise ValueError("tinygrad_mlp.numpy.clip: one of a_min and a_max must be given")
    if _is_scalar(a_min) and _is_scalar(a_max) and isinstance(a, Tensor):
        low = None if a_min is None else float(a_min)
        high = None if a_max is None else float(a_max)
        return a.clamp(low, high)
    result = a
    if a_min is not None:
        result = maximum(result, a_min)
    if a_max is not None:
        result = minimum(result, a_max)
    return result


# ---------------------------------------------------------------- products


def matmul(x1: Any, x2: Any, out: Any = None):
    """Matrix product with numpy's rules for 1-D, 2-D and batched operands."""
    if not _any_tensor(x1, x2):
        return _np.matmul(x1, x2)
    _no_out("matmul", out)
    a, b = _tensors(x1, x2)
    return a @ b


def dot(a: Any, b: Any, out: Any = None):
    """numpy.dot: inner product of 1-D, matrix product of 2-D, scalar times array, N-D @ 1-D/2-D."""
    if not _any_tensor(a, b):
        return _np.dot(a, b)
    _no_out("dot", out)
    ta, tb = _tensors(a, b)
    if ta.ndim == 0 or tb.ndim == 0:
        return ta * tb
    if tb.ndim <= 2:
        return ta @ tb
    raise NotImplementedError(
        "tinygrad_mlp.numpy.dot: a second operand of more than 2 dimensions (numpy's sum over "
        "the last axis of a and the second-to-last of b) is not provided; use matmul or einsum"
    )


def outer(a: Any, b: Any, out: Any = None):
    """Outer product of the flattened a and b."""
    if not _any_tensor(a, b):
        return _np.outer(a, b)
    _no_out("outer", out)
    ta, tb = _tensors(a, b)
    return ta.reshape(-1, 1) * tb.reshape(1, -1)


def _einsum_parse(subscripts: str, n: int) -> tuple[list[str], str]:
    spec = subscripts.replace(" ", "")
    if "." in spec:
        raise NotImplementedError("tinygrad_mlp.numpy.einsum: ellipsis ('...') is not provided")
    inputs, arrow, output = spec.partition("->")
    terms = inputs.split(",")
    if len(terms) != n:
        raise ValueError(f"einsum: {len(terms)} operand subscripts in {subscripts!r}, {n} operands")
    for term in [*terms, output]:
        if builtins.any(c not in string.ascii_letters for c in term):
            raise ValueError(f"einsum: invalid subscripts {subscripts!r}")
        if len(set(term)) != len(term):
            raise NotImplementedError(
                f"einsum: a repeated index within one operand ({term!r}: a diagonal or trace) "
                "is not provided"
            )
    if not arrow:
        counts = {c: _builtin_sum(t.count(c) for t in terms) for c in set(inputs) - {","}}
        output = "".join(sorted(c for c, k in counts.items() if k == 1))
    return terms, output


def _einsum_sum_out(t: Tensor, term: str, keep: set[str]) -> tuple[Tensor, str]:
    """Sum over the indices of ``term`` that are not in ``keep``."""
    gone = tuple(i for i, c in enumerate(term) if c not in keep)
    if gone:
        t = t.sum(axis=gone)
        term = "".join(c for c in term if c in keep)
    return t, term


def _einsum_pair(a: Tensor, ta: str, b: Tensor, tb: str, keep: set[str]) -> tuple[Tensor, str]:
    """Contract two operands with one batched matmul, keeping the indices in ``keep``."""
    batch = [c for c in ta if c in tb and c in keep]
    summed = [c for c in ta if c in tb and c not in keep]
    left = [c for c in ta if c not in tb]
    right = [c for c in tb if c not in ta]
    size = {**dict(zip(ta, a.shape, strict=True)), **dict(zip(tb, b.shape, strict=True))}
    for c in set(ta) & set(tb):
        if a.shape[ta.index(c)] != b.shape[tb.index(c)]:
            raise ValueError(f"einsum: index {c!r} has sizes {size[c]} and {a.shape[ta.index(c)]}")

    def n(letters):
        return math.prod(size[c] for c in letters)

    a3 = _permute(a, [ta.index(c) for c in batch + left + summed])
    a3 = a3.reshape(n(batch), n(left), n(summed))
    b3 = _permute(b, [tb.index(c) for c in batch + summed + right])
    b3 = b3.reshape(n(batch), n(summed), n(right))
    out = (a3 @ b3).reshape(*(size[c] for c in batch + left + right))
    return out, "".join(batch + left + right)


def einsum(subscripts: str, *operands: Any):
    """Einstein summation without ellipses or repeated indices in one operand, e.g. 'ij,jk->ik'.

    Each pair of operands is contracted with one batched matmul (transposes and reshapes around
    it); indices that only one operand has and the output lacks are summed first.
    """
    if not _any_tensor(*operands):
        return _np.einsum(subscripts, *operands)
    terms, output = _einsum_parse(subscripts, len(operands))
    tensors = _tensors(*operands)
    for term, t in zip(terms, tensors, strict=True):
        if len(term) != t.ndim:
            raise ValueError(f"einsum: subscripts {term!r} for an operand of shape {t.shape}")
    result, term = tensors[0], terms[0]
    later = set("".join(terms[1:])) | set(output)
    result, term = _einsum_sum_out(result, term, later)
    for i in range(1, len(tensors)):
        keep = set("".join(terms[i + 1 :])) | set(output)
        other, other_term = _einsum_sum_out(tensors[i], terms[i], keep | set(term))
        result, term = _einsum_pair(result, term, other, other_term, keep)
    result, term = _einsum_sum_out(result, term, set(output))
    if term != output:
        result = _permute(result, [term.index(c) for c in output])
    return result


# ---------------------------------------------------------------- reductions


def _reduction(name: str, a: Any, axis: Any, dtype: Any, out: Any, keepdims: bool, **kw: Any):
    """numpy's own reduction when ``a`` is no Tensor, else the Tensor (cast by dtype) to reduce."""
    if not isinstance(a, Tensor):
        args = {"axis": axis, "keepdims": keepdims, **kw}
        if dtype is not None:
            args["dtype"] = dtype
        return getattr(_np, name)(a, **args), None
    _no_out(name, out)
    return None, a if dtype is None else _cast(a, _np.dtype(dtype))


def sum(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, keepdims: bool = False):
    """Sum over ``axis`` (all axes when None)."""
    plain, t = _reduction("sum", a, axis, dtype, out, keepdims)
    return plain if t is None else t.sum(axis=axis, keepdims=keepdims)


def mean(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, keepdims: bool = False):
    """Mean over ``axis`` (all axes when None)."""
    plain, t = _reduction("mean", a, axis, dtype, out, keepdims)
    return plain if t is None else t.mean(axis=axis, keepdims=keepdims)


def max(a: Any, axis: Any = None, out: Any = None, keepdims: bool = False):
    """Maximum over ``axis`` (all axes when None); tied maxima share the gradient equally."""
    plain, t = _reduction("max", a, axis, None, out, keepdims)
    return plain if t is None else _amax(t, axis, keepdims)


def min(a: Any, axis: Any = None, out: Any = None, keepdims: bool = False):
    """Minimum over ``axis`` (all axes when None), as -max(-a)."""
    plain, t = _reduction("min", a, axis, None, out, keepdims)
    return plain if t is None else -_amax(-t, axis, keepdims)


amax = max
amin = min


def _slice(t: Tensor, axis: int, start: int, stop: int) -> Tensor:
    index = [slice(None)] * t.ndim
    index[axis] = slice(start, stop)
    return t[tuple(index)]


def prod(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, keepdims: bool = False):
    """Product over ``axis`` (all axes when None); exact gradients also where elements are 0."""
    plain, t = _reduction("prod", a, axis, dtype, out, keepdims)
    if t is None:
        return plain
    axes = _axes(axis, t.ndim)
    if t.ndim == 0:
        return t
    return t.prod(axis=axis if axis is None else axes, keepdims=keepdims)


def argmax(a: Any, axis: int | None = None, out: Any = None, keepdims: bool = False):
    """Indices of the maxima (an integer numpy array; not differentiable)."""
    if isinstance(a, Tensor):
        return _xp(a).argmax(a._data, axis=axis, out=out, keepdims=keepdims)
    return _np.argmax(a, axis=axis, out=out, keepdims=keepdims)


def argmin(a: Any, axis: int | None = None, out: Any = None, keepdims: bool = False):
    """Indices of the minima (an integer numpy array; not differentiable)."""
    if isinstance(a, Tensor):
        return _xp(a).argmin(a._data, axis=axis, out=out, keepdims=keepdims)
    return _np.argmin(a, axis=axis, out=out, keepdims=keepdims)


# ---------------------------------------------------------------- shapes


def reshape(a: Any, newshape: Any = None, order: str = "C", *, shape: Any = None):
    """The same elements in a new shape (one size may be -1); only order 'C'."""
    new = shape if shape is not None else newshape
    if not isinstance(a, Tensor):
        return _np.reshape(a, new, order=order)
    if order != "C":
        raise NotImplementedError("tinygrad_mlp.numpy.reshape: only order='C' is provided")
    new = (new,) if isinstance(new, (int, _np.integer)) else tuple(new)
    return a.reshape(*new)


def transpose(a: Any, axes: Any = None):
    """Permute the axes; reverse them when ``axes`` is None."""
    if not isinstance(a, Tensor):
        return _np.transpose(a, axes)
    return _permute(a, range(a.ndim)[::-1] if axes is None else axes)


def squeeze(a: Any, axis: Any = None):
    """Remove size-1 axes (all of them, or those in ``axis``, which must have size 1)."""
    if not isinstance(a, Tensor):
        return _np.squeeze(a, axis=axis)
    axes = (
        tuple(i for i, s in enumerate(a.shape) if s == 1) if axis is None else _axes(axis, a.ndim)
    )
    for ax in axes:
        if a.shape[ax] != 1:
            raise ValueError(
                f"cannot select an axis to squeeze out which has size not equal to one: axis "
                f"{ax} of shape {a.shape}"
            )
    return a.reshape(*(s for i, s in enumerate(a.shape) if i not in axes))


def expand_dims(a: Any, axis: Any):
    """Insert size-1 axes at the positions ``axis`` of the result."""
    if not isinstance(a, Tensor):
        return _np.expand_dims(a, axis)
    ndim = a.ndim + (1 if isinstance(axis, (int, _np.integer)) else len(tuple(axis)))
    axes = _axes(axis, ndim)
    sizes = iter(a.shape)
    return a.reshape(*(1 if i in axes else next(sizes) for i in range(ndim)))


def concatenate(arrays: Sequence[Any], axis: int | None = 0, out: Any = None):
    """Join arrays along an existing axis (flattened first when axis is None)."""
    arrays = list(arrays)
    if not _any_tensor(*arrays):
        return _np.concatenate(arrays, axis=axis)
    _no_out("concatenate", out)
    tensors = _tensors(*arrays)
    if axis is None:
        tensors = [t.reshape(-1) for t in tensors]
        axis = 0
    ndim = tensors[0].ndim
    if ndim == 0:
        raise ValueError("zero-dimensional arrays cannot be concatenated")
    axis = int(axis) % ndim
    others = [tuple(s for i, s in enumerate(t.shape) if i != axis) for t in tensors]
    if builtins.any(t.ndim != ndim for t in tensors) or len(set(others)) != 1:
        shapes = ", ".join(str(t.shape) for t in tensors)
        raise ValueError(f"concatenate: shapes {shapes} differ outside axis {axis}")
    return _cat(tensors, axis)


def stack(arrays: Sequence[Any], axis: int = 0, out: Any = None):
    """Join arrays of one shape along a new axis."""
    arrays = list(arrays)
    if not _any_tensor(*arrays):
        return _np.stack(arrays, axis=axis)
    _no_out("stack", out)
    tensors = _tensors(*arrays)
    if len({t.shape for t in tensors}) != 1:
        raise ValueError("all input arrays must have the same shape")
    axis = int(axis) % (tensors[0].ndim + 1)
    return _stack(tensors, axis)


# ---------------------------------------------------------------- linalg


class _Linalg:
    """numpy.linalg's differentiable part: ``norm``."""

    @staticmethod
    def norm(x: Any, ord: Any = None, axis: Any = None, keepdims: bool = False):
        """Vector 2-, 1- and inf-norms, and the Frobenius norm of a matrix (the default)."""
        if not isinstance(x, Tensor):
            return _np.linalg.norm(x, ord=ord, axis=axis, keepdims=keepdims)
        vector = (axis is not None and _np.ndim(axis) == 0) or (axis is None and x.ndim == 1)
        if ord in (None, 2, "fro") and (vector or ord != 2):
            # NOTE: the derivative x / ||x|| does not exist at x = 0 (it gives nan there)
            return (x * x).sum(axis=axis, keepdims=keepdims).sqrt()
        if vector and ord == 1:
            return x.abs().sum(axis=axis, keepdims=keepdims)
        if vector and ord == _np.inf:
            return _amax(x.abs(), axis, keepdims)
        raise NotImplementedError(
            f"tinygrad_mlp.numpy.linalg.norm: ord={ord!r} on {'a vector' if vector else 'a matrix'}"
            " is not provided (vector norms 2, 1, inf and the Frobenius norm are)"
        )

    def __getattr__(self, name: str):
        raise AttributeError(
            f"tinygrad_mlp.numpy.linalg has no differentiable {name!r}; only 'norm' is provided "
            f"(use numpy.linalg.{name} on arrays outside the graph)"
        )

    def __dir__(self):
        return ["norm"]


linalg = _Linalg()


def __getattr__(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    hint = (
        f"numpy.{name} exists but has no derivative here"
        if hasattr(_np, name)
        else f"numpy has no {name!r} either"
    )
    raise AttributeError(
        f"tinygrad_mlp.numpy has no differentiable {name!r}; {hint}. Use numpy itself on arrays "
        "outside the graph, or build it from the functions in tinygrad_mlp.numpy.__all__"
    )
