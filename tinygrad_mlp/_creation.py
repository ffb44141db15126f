"""Creating tensors: ``tm.tensor``, ``as_tensor``, ``from_numpy``, the factories (``zeros``,
``arange``, ``eye``, ``*_like``) and the random ones (``rand``, ``randn``, ``randint``,
``randperm``); joining them (``cat``, ``stack``); and the few top-level functions that go with
them (``where``, ``matmul``, ``allclose``, ``isclose``, ``equal``, ``numel``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import backend
from . import ops as O
from ._conversion import DEFAULT_DTYPE, _kind_rank, _to_array, to_dtype
from ._dtype import wrap_dtype
from ._tensor import Tensor, _sizes, matmul, where
from .autograd.graph import apply
from .backend import np

__all__ = [
    "tensor",
    "as_tensor",
    "from_numpy",
    "is_tensor",
    "zeros",
    "ones",
    "full",
    "empty",
    "arange",
    "linspace",
    "eye",
    "zeros_like",
    "ones_like",
    "full_like",
    "empty_like",
    "rand",
    "randn",
    "randint",
    "randperm",
    "rand_like",
    "randn_like",
    "cat",
    "concat",
    "stack",
    "where",
    "matmul",
    "allclose",
    "isclose",
    "equal",
    "numel",
    "get_default_dtype",
]


def tensor(data: Any, dtype: Any = None, device: str | None = None, requires_grad: bool = False):
    """A new tensor holding a copy of ``data``, with PyTorch's dtype rules: Python ints become
    int64, bools bool, floats float32; numpy arrays keep their dtype."""
    if isinstance(data, Tensor):
        data = data._data
    array = _to_array(data, dtype, device, True)
    if backend.is_array(data) and array is data:
        array = array.copy()
    return _made(array, requires_grad)


def as_tensor(data: Any, dtype: Any = None, device: str | None = None) -> Tensor:
    """``data`` as a tensor, sharing memory with an array when no conversion is needed."""
    if isinstance(data, Tensor) and dtype is None and device is None:
        return data
    return _made(_to_array(data, dtype, device, True), False)


def from_numpy(array: Any) -> Tensor:
    """A tensor sharing memory with a numpy array (same dtype)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"expected np.ndarray (got {type(array).__name__})")
    return _made(array, False)


def is_tensor(obj: Any) -> bool:
    """True for Tensors."""
    return isinstance(obj, Tensor)


def get_default_dtype():
    """The dtype of floats given without a dtype: float32."""
    return wrap_dtype(DEFAULT_DTYPE)


def numel(t: Tensor) -> int:
    """The number of elements of ``t``."""
    return t.numel()


def _made(array: Any, requires_grad: bool) -> Tensor:
    if requires_grad and array.dtype.kind != "f":
        raise RuntimeError(
            f"only Tensors of floating point dtype can require gradients, got {array.dtype}"
        )
    return Tensor._wrap(array, bool(requires_grad), None)


def _xp(device: str | None):
    return backend.get_array_module(device)


def full(size: Any, fill_value: Any, *, dtype: Any = None, device: str | None = None,
         requires_grad: bool = False) -> Tensor:  # fmt: skip
    """A tensor of ``size`` filled with ``fill_value`` (dtype inferred from it when not given)."""
    shape = _sizes((size,), "size")
    if dtype is None:
        dtype = _to_array(fill_value, None, "cpu", True).dtype
    array = _xp(device).full(shape, fill_value, dtype=to_dtype(dtype))
    return _made(array, requires_grad)


def zeros(*size: Any, dtype: Any = None, device: str | None = None,
          requires_grad: bool = False) -> Tensor:  # fmt: skip
    """A tensor of zeros (float32 unless dtype= says)."""
    return full(_sizes(size, "size"), 0, dtype=dtype or DEFAULT_DTYPE, device=device,
                requires_grad=requires_grad)  # fmt: skip


def ones(*size: Any, dtype: Any = None, device: str | None = None,
         requires_grad: bool = False) -> Tensor:  # fmt: skip
    """A tensor of ones (float32 unless dtype= says)."""
    return full(_sizes(size, "size"), 1, dtype=dtype or DEFAULT_DTYPE, device=device,
                requires_grad=requires_grad)  # fmt: skip


def empty(*size: Any, dtype: Any = None, device: str | None = None,
          requires_grad: bool = False) -> Tensor:  # fmt: skip
    """An uninitialised tensor (here: zeros)."""
    return zeros(*size, dtype=dtype, device=device, requires_grad=requires_grad)


def _like(t: Tensor, dtype: Any, device: Any) -> tuple[tuple, Any, str]:
    return t.shape, (dtype if dtype is not None else t.dtype), (device or t.device)


def zeros_like(input: Tensor, *, dtype: Any = None, device: str | None = None,
               requires_grad: bool = False) -> Tensor:  # fmt: skip
    """Zeros shaped like ``input`` (its dtype and device by default)."""
    shape, dtype, device = _like(input, dtype, device)
    return full(shape, 0, dtype=dtype, device=device, requires_grad=requires_grad)


def ones_like(input: Tensor, *, dtype: Any = None, device: str | None = None,
              requires_grad: bool = False) -> Tensor:  # fmt: skip
    """Ones shaped like ``input``."""
    shape, dtype, device = _like(input, dtype, device)
    return full(shape, 1, dtype=dtype, device=device, requires_grad=requires_grad)


def full_like(input: Tensor, fill_value: Any, *, dtype: Any = None, device: str | None = None,
              requires_grad: bool = False) -> Tensor:  # fmt: skip
    """``fill_value`` everywhere, shaped like ``input``."""
    shape, dtype, device = _like(input, dtype, device)
    return full(shape, fill_value, dtype=dtype, device=device, requires_grad=requires_grad)


def empty_like(input: Tensor, *, dtype: Any = None, device: str | None = None,
               requires_grad: bool = False) -> Tensor:  # fmt: skip
    """An uninitialised tensor shaped like ``input`` (here: zeros)."""
    return zeros_like(input, dtype=dtype, device=device, requires_grad=requires_grad)


def arange(start: Any, end: Any = None, step: Any = 1, *, dtype: Any = None,
           device: str | None = None, requires_grad: bool = False) -> Tensor:  # fmt: skip
    """Values from ``start`` up to (not including) ``end`` by ``step``; int64 for int arguments,
    float32 otherwise."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise RuntimeError("arange: step must be nonzero")
    if dtype is None:
        ints = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = np.int64 if ints else DEFAULT_DTYPE
    array = np.arange(start, end, step, dtype=np.float64).astype(to_dtype(dtype))
    return _made(backend.to_device(array, device), requires_grad)


def linspace(start: float, end: float, steps: int, *, dtype: Any = None,
             device: str | None = None, requires_grad: bool = False) -> Tensor:  # fmt: skip
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise RuntimeError(f"linspace: number of steps must be a non-negative int, got {steps!r}")
    array = np.linspace(start, end, int(steps)).astype(to_dtype(dtype) or DEFAULT_DTYPE)
    return _made(backend.to_device(array, device), requires_grad)


def eye(n: int, m: int | None = None, *, dtype: Any = None, device: str | None = None,
        requires_grad: bool = False) -> Tensor:  # fmt: skip
    """The identity matrix of n rows (and m columns)."""
    array = _xp(device).eye(n, m, dtype=to_dtype(dtype) or DEFAULT_DTYPE)
    return _made(array, requires_grad)


def _random(draw, size, dtype, device, requires_grad) -> Tensor:
    dtype = to_dtype(dtype) or DEFAULT_DTYPE
    array = draw(_sizes(size, "size")).astype(dtype)
    return _made(backend.to_device(array, device), requires_grad)


def rand(*size: Any, generator: Any = None, dtype: Any = None, device: str | None = None,
         requires_grad: bool = False) -> Tensor:  # fmt: skip
    """Draws from U[0, 1), seeded by tm.manual_seed (or ``generator``)."""
    gen = backend.generator(generator)
    return _random(lambda s: gen.random(s), size, dtype, device, requires_grad)


def randn(*size: Any, generator: Any = None, dtype: Any = None, device: str | None = None,
          requires_grad: bool = False) -> Tensor:  # fmt: skip
    """Draws from N(0, 1), seeded by tm.manual_seed (or ``generator``)."""
    gen = backend.generator(generator)
    return _random(lambda s: gen.standard_normal(s), size, dtype, device, requires_grad)


def randint(low: int, high: int | None = None, size: Any = None, *, generator: Any = None,
            dtype: Any = None, device: str | None = None,
            requires_grad: bool = False) -> Tensor:  # fmt: skip
    """Integers drawn uniformly from [low, high) (int64 unless dtype= says)."""
    if size is None:
        if high is None or not isinstance(high, (tuple, list)):
            raise TypeError(
                "randint() needs a size, e.g. randint(10, (3,)) or randint(0, 10, (3,))"
            )
        low, high, size = 0, low, high
    elif high is None:
        raise TypeError("randint() needs high")
    if isinstance(high, (tuple, list)):
        low, high, size = 0, low, high
    if high <= low:
        raise RuntimeError(
            f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}"
        )
    gen = backend.generator(generator)
    array = gen.integers(low, high, _sizes((size,), "size")).astype(to_dtype(dtype) or np.int64)
    return _made(backend.to_device(array, device), requires_grad)


def randperm(n: int, *, generator: Any = None, dtype: Any = None, device: str | None = None):
    """A random permutation of 0..n-1 (int64)."""
    array = backend.generator(generator).permutation(int(n)).astype(to_dtype(dtype) or np.int64)
    return Tensor._wrap(backend.to_device(array, device), False, None)


def rand_like(input: Tensor, *, dtype: Any = None, device: str | None = None,
              requires_grad: bool = False) -> Tensor:  # fmt: skip
    """Draws from U[0, 1) shaped like ``input``."""
    shape, dtype, device = _like(input, dtype, device)
    return rand(*shape, dtype=dtype, device=device, requires_grad=requires_grad)


def randn_like(input: Tensor, *, dtype: Any = None, device: str | None = None,
               requires_grad: bool = False) -> Tensor:  # fmt: skip
    """Draws from N(0, 1) shaped like ``input``."""
    shape, dtype, device = _like(input, dtype, device)
    return randn(*shape, dtype=dtype, device=device, requires_grad=requires_grad)


def cat(tensors: Sequence[Tensor], dim: int = 0, *, axis: int | None = None) -> Tensor:
    """The tensors joined along ``dim`` (differentiable)."""
    if axis is not None:
        dim = axis
    items = [t for t in tensors]
    if not items:
        raise RuntimeError("torch.cat(): expected a non-empty list of Tensors")
    for i, t in enumerate(items):
        if not isinstance(t, Tensor):
            raise TypeError(
                f"cat(): expected a sequence of Tensors, but item {i} is a {type(t).__name__}"
            )
    first = items[0]
    items = [t if t.ndim != 1 or t.shape != (0,) else t for t in items]
    ndim = first.ndim
    if ndim == 0:
        raise RuntimeError("zero-dimensional tensor (at position 0) cannot be concatenated")
    d = dim % ndim if -ndim <= dim < ndim else None
    if d is None:
        raise IndexError(
            f"Dimension out of range (expected to be in range of [{-ndim}, {ndim - 1}], "
            f"but got {dim})"
        )
    for i, t in enumerate(items):
        if t.ndim != ndim or any(
            a != b for k, (a, b) in enumerate(zip(t.shape, first.shape, strict=True)) if k != d
        ):
            raise RuntimeError(
                f"Sizes of tensors must match except in dimension {d}: tensor 0 has shape "
                f"{first.shape}, tensor {i} has shape {t.shape}"
            )
    # NOTE: PyTorch's promotion: the highest kind (bool < int < float) decides, so an int64
    # tensor does not widen a float32 one to float64 as numpy's result_type would
    top = max(_kind_rank(t._data.dtype) for t in items)
    dtype = np.result_type(*[t._data.dtype for t in items if _kind_rank(t._data.dtype) == top])
    items = [t._cast(dtype) if t.dtype != dtype else t for t in items]
    if len(items) == 1:
        return items[0]
    return apply(O.CAT, *items, axis=d)


concat = cat


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """The tensors (all of one shape) joined along a new dimension ``dim``."""
    items = list(tensors)
    if not items:
        raise RuntimeError("stack expects a non-empty TensorList")
    shape = items[0].shape
    for i, t in enumerate(items):
        if not isinstance(t, Tensor):
            raise TypeError(
                f"stack(): expected a sequence of Tensors, but item {i} is a {type(t).__name__}"
            )
        if t.shape != shape:
            raise RuntimeError(
                f"stack expects each tensor to be equal size, but got {shape} at entry 0 and "
                f"{t.shape} at entry {i}"
            )
    n = len(shape) + 1
    if not -n <= dim < n:
        raise IndexError(
            f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})"
        )
    return cat([t.unsqueeze(dim) for t in items], dim % n)


def allclose(input: Tensor, other: Any, rtol: float = 1e-5, atol: float = 1e-8,
             equal_nan: bool = False) -> bool:  # fmt: skip
    """True when every pair of values is close."""
    return input.allclose(other, rtol, atol, equal_nan)


def isclose(input: Tensor, other: Any, rtol: float = 1e-5, atol: float = 1e-8,
            equal_nan: bool = False) -> Tensor:  # fmt: skip
    """A bool tensor: where each pair of values is close (|a - b| <= atol + rtol * |b|)."""
    return input.isclose(other, rtol, atol, equal_nan)


def equal(input: Tensor, other: Tensor) -> bool:
    """True when both tensors have the same shape and values."""
    return input.equal(other)
