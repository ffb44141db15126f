"""Data and dtypes: user data as a backend array (``_to_array``), dtype arguments
(``to_dtype``), and PyTorch's promotion of the operands of a binary op (``_lift`` makes a number
a tensor, ``_promote`` casts the operand of the lower kind).
"""

from __future__ import annotations

from typing import Any

from . import backend
from .autograd.grad_mode import _Mode
from .autograd.graph import _constant, _views_of
from .backend import np

_FLOAT_KINDS = "f"
_NUMERIC_KINDS = "biuf"
DEFAULT_DTYPE = np.dtype(np.float32)
_INT64 = np.dtype(np.int64)
_BOOL = np.dtype(bool)

# NOTE: the Tensor class, set by _tensor.py once it has defined it (this module cannot import
# _tensor.py, which imports it).
Tensor: Any = None


def to_dtype(dtype: Any) -> Any:
    """A dtype argument (tm.float32, 'float64', float, ...) as a numpy dtype, or None."""
    if dtype is None:
        return None
    try:
        out = np.dtype(dtype)
    except TypeError as e:
        raise TypeError(f"dtype {dtype!r} is not a dtype: {e}") from None
    if out.kind not in _NUMERIC_KINDS:
        raise TypeError(f"dtype {out} is not supported; use a float, int or bool dtype")
    return out


def _is_dtype_name(name: str) -> bool:
    try:
        np.dtype(name)
    except TypeError:
        return False
    return True


def _infer_dtype(array: Any) -> Any:
    """PyTorch's dtype for data given without dtype=: ints int64, bools bool, floats float32."""
    kind = array.dtype.kind
    if kind == "b":
        return _BOOL
    if kind in "iu":
        return _INT64
    return DEFAULT_DTYPE


def _to_array(data: Any, dtype: Any, device: str | None, infer: bool):
    """User data as a backend array. ``infer``: PyTorch's ``tensor()`` rules (numpy arrays keep
    their dtype, Python ints become int64, bools bool); otherwise (the ``Tensor`` class) every
    array becomes float32, as ``torch.Tensor`` makes (a Tensor given keeps its dtype)."""
    keep = infer or isinstance(data, Tensor)
    if isinstance(data, Tensor):
        data = data._data
    dtype = to_dtype(dtype)
    if backend.is_array(data) or backend.looks_like_cupy(data):
        array = data
        if array.dtype.kind not in _NUMERIC_KINDS:
            raise TypeError(f"tensor data must be numeric, got an array of dtype {array.dtype}")
        if dtype is None and not keep:
            dtype = DEFAULT_DTYPE
        if device is None:
            device = "cuda" if backend.looks_like_cupy(array) else backend.default_device()
        array = backend.to_device(array, device)
        return array if dtype is None or array.dtype == dtype else array.astype(dtype)
    if isinstance(data, (str, bytes)) or data is None:
        raise TypeError(f"tensor data must be numeric, got {type(data).__name__} {data!r:.40}")
    if isinstance(data, (list, tuple)) and any(isinstance(d, Tensor) for d in data):
        data = [d.tolist() if isinstance(d, Tensor) else d for d in data]
    try:
        array = np.asarray(data)
    except (ValueError, TypeError) as e:
        raise TypeError(
            f"tensor data must be numeric (a number, nested lists or an array): {e}"
        ) from None
    if array.dtype.kind not in _NUMERIC_KINDS:
        raise TypeError(
            f"tensor data must be numeric, got {type(data).__name__} holding dtype {array.dtype}"
        )
    if dtype is None and infer and isinstance(data, np.generic):
        dtype = array.dtype  # a numpy scalar keeps its dtype, as numpy arrays do
    if dtype is None:
        dtype = _infer_dtype(array) if infer else DEFAULT_DTYPE
    array = array.astype(dtype, copy=False)
    return backend.to_device(array, device)


def _kind_rank(dtype: Any) -> int:
    kind = dtype.kind
    return 0 if kind == "b" else (1 if kind in "iu" else 2)


def _lift(value: Any, like: Tensor) -> Tensor:
    """A Python number or an array as a constant tensor next to ``like``, with PyTorch's rules:
    a number takes the tensor's dtype unless it is of a higher kind (a float with an int
    tensor gives float32)."""
    if isinstance(value, Tensor):
        return value
    dtype = like._data.dtype
    if isinstance(value, bool):
        kind = 0
    elif isinstance(value, (int, np.integer)):
        kind = 1
    elif isinstance(value, (float, np.floating)):
        kind = 2
    else:
        return _constant(_to_array(value, None, like.device, True))
    if kind > _kind_rank(dtype):
        dtype = DEFAULT_DTYPE if kind == 2 else _INT64
    xp = backend.array_module_of(like._data)
    return _constant(xp.asarray(value, dtype=dtype))


def _promote(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Cast the operand of the lower kind (bool < int < float) to the other's dtype."""
    ra, rb = _kind_rank(a._data.dtype), _kind_rank(b._data.dtype)
    if ra < rb:
        return _cast_operand(a, b), b
    if rb < ra:
        return a, _cast_operand(b, a)
    # NOTE: as in PyTorch, a 0-d operand of the same kind takes the other's dtype (a float32
    # batch times a float64 0-d tensor stays float32)
    if a._data.ndim == 0 and b._data.ndim:
        return _cast_operand(a, b), b
    if b._data.ndim == 0 and a._data.ndim:
        return a, _cast_operand(b, a)
    return a, b


def _cast_operand(t: Tensor, other: Tensor) -> Tensor:
    """``t`` cast to ``other``'s dtype for a binary op. Where the op may keep the cast for its
    backward, an in-place change of ``t`` counts as a change of the cast (PyTorch keeps ``t``
    itself, so that its backward then refuses)."""
    out = t._cast(other._data.dtype)
    if _Mode.grad_enabled and (t.requires_grad or other.requires_grad):
        _views_of(t).add(out)  # shares t's versions, as a detached alias does
    return out
