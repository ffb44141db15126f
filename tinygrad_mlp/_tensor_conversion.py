"""Tensor's conversion methods: to numpy, lists and Python numbers, detach and clone, moves
between devices and dtypes (``to``, ``float``, ``type``, ...), and ``new_*`` tensors like this
one. Written as the class body below, and added to Tensor from there."""

from __future__ import annotations

from typing import Any

from . import backend
from . import ops as O
from ._conversion import (
    _BOOL,
    _FLOAT_KINDS,
    _INT64,
    DEFAULT_DTYPE,
    _is_dtype_name,
    _to_array,
    to_dtype,
)
from ._tensor import Tensor, _add_methods, _sizes
from .autograd import graph as _graph
from .autograd.graph import _views_of, _wrap, apply
from .backend import np

_TYPE_NAMES = {
    "float16": "HalfTensor",
    "float32": "FloatTensor",
    "float64": "DoubleTensor",
    "int8": "CharTensor",
    "uint8": "ByteTensor",
    "int16": "ShortTensor",
    "int32": "IntTensor",
    "int64": "LongTensor",
    "bool": "BoolTensor",
}


class _Conversion:
    """Tensor's conversion methods (added to Tensor below)."""

    def numpy(self, force: bool = False):
        """The values as a host numpy array (shared with the tensor on the CPU)."""
        if _graph._observer is not None:
            _graph._observer.read(self, ".numpy()")
        return backend.to_numpy(self._data)

    def tolist(self) -> Any:
        """The values as nested Python lists (a number for a 0-d tensor)."""
        if _graph._observer is not None:
            _graph._observer.read(self, ".tolist()")
        return backend.to_numpy(self._data).tolist()

    def item(self) -> Any:
        """The value of a one-element tensor as a Python number."""
        if self.numel() != 1:
            raise RuntimeError(
                f"a Tensor with {self.numel()} elements cannot be converted to Scalar (item() "
                f"of a tensor of shape {self.shape})"
            )
        if _graph._observer is not None:
            _graph._observer.read(self, ".item()")
        return self._data.reshape(()).item()

    def detach(self) -> Tensor:
        """A tensor sharing the values (and the version counter), cut from the graph."""
        t = _wrap(self._data)
        t._extra = {"base": self}
        _views_of(self).add(t)
        return t

    def detach_(self) -> Tensor:
        """Cut this tensor from the graph in place."""
        self._node = None
        self.requires_grad = False
        return self

    def clone(self) -> Tensor:
        """A copy with its own memory, differentiable."""
        return apply(O.CAST, self, dtype=self._data.dtype)

    def contiguous(self) -> Tensor:
        """This tensor when its memory is C-contiguous, else a differentiable C-ordered copy."""
        if self._data.flags.c_contiguous:
            return self
        out = apply(O.CAST, self, dtype=self._data.dtype)  # a copy whose gradient is g itself
        out._data = backend.array_module_of(out._data).ascontiguousarray(out._data)
        return out

    def is_contiguous(self, memory_format: Any = None) -> bool:
        """True when the values lie in memory in C (row-major) order, without gaps."""
        return bool(self._data.flags.c_contiguous)

    def _cast(self, dtype: Any) -> Tensor:
        if self._data.dtype == dtype:
            return self
        if self.requires_grad and dtype.kind not in _FLOAT_KINDS:
            return _wrap(self._data.astype(dtype))  # integer results carry no gradient
        return apply(O.CAST, self, dtype=dtype)

    def to(self, *args: Any, **kwargs: Any) -> Tensor:
        """``to(device)``, ``to(dtype)``, ``to(device, dtype)`` or ``to(other)``: this tensor
        itself when nothing changes, else a differentiable copy."""
        device, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
        kwargs.pop("non_blocking", None)
        copy = bool(kwargs.pop("copy", False))
        if kwargs:
            raise TypeError(f"to() got unexpected keyword arguments {sorted(kwargs)}")
        for a in args:
            if isinstance(a, Tensor):
                device, dtype = a.device, a.dtype
            elif isinstance(a, str) and a.split(":")[0].lower() in backend.DEVICES:
                device = a
            elif isinstance(a, str) and not _is_dtype_name(a):
                raise RuntimeError(
                    f"to(): {a!r} is neither a device ({', '.join(backend.DEVICES)}) nor a dtype"
                )
            elif a is not None:
                dtype = a
        out = self
        if dtype is not None:
            out = out._cast(to_dtype(dtype))
        if device is not None:
            target = backend._normalise_device(device)
            if target != out.device:
                out = apply(O.TO_DEVICE, out, device=target)
        return out.clone() if copy and out is self else out

    def cpu(self) -> Tensor:
        """This tensor on the CPU."""
        return self.to("cpu")

    def cuda(self, device: Any = None) -> Tensor:
        """This tensor on the GPU."""
        return self.to("cuda")

    def astype(self, dtype: Any) -> Tensor:
        """numpy's name for ``to(dtype)``."""
        return self._cast(to_dtype(dtype))

    def type(self, dtype: Any = None) -> Any:
        """The dtype's name without an argument, else ``to(dtype)``."""
        if dtype is None:
            return f"tinygrad_mlp.{_TYPE_NAMES.get(self._data.dtype.name, 'Tensor')}"
        return self.to(dtype)

    def type_as(self, other: Tensor) -> Tensor:
        """This tensor cast to ``other``'s dtype."""
        return self.to(other.dtype)

    def float(self) -> Tensor:
        """A cast to float32."""
        return self._cast(DEFAULT_DTYPE)

    def double(self) -> Tensor:
        """A cast to float64."""
        return self._cast(np.dtype(np.float64))

    def half(self) -> Tensor:
        """A cast to float16."""
        return self._cast(np.dtype(np.float16))

    def long(self) -> Tensor:
        """A cast to int64."""
        return self._cast(_INT64)

    def int(self) -> Tensor:
        """A cast to int32."""
        return self._cast(np.dtype(np.int32))

    def bool(self) -> Tensor:
        """A cast to bool."""
        return self._cast(_BOOL)

    def new_tensor(self, data: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
        """A new tensor of data on this tensor's device, with this dtype by default."""
        array = _to_array(data, dtype or self.dtype, self.device, True)
        return _wrap(array.copy() if array is data else array).requires_grad_(requires_grad)

    def new_zeros(self, *size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
        """Zeros of ``size`` with this tensor's dtype and device by default."""
        return self.new_full(_sizes(size, "size"), 0, dtype=dtype, requires_grad=requires_grad)

    def new_ones(self, *size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
        """Ones of ``size`` with this tensor's dtype and device by default."""
        return self.new_full(_sizes(size, "size"), 1, dtype=dtype, requires_grad=requires_grad)

    def new_full(
        self, size: Any, fill_value: Any, dtype: Any = None, requires_grad: bool = False
    ) -> Tensor:
        """``fill_value`` everywhere in ``size``, with this tensor's dtype and device by default."""
        xp = backend.array_module_of(self._data)
        array = xp.full(_sizes((size,), "size"), fill_value, dtype=to_dtype(dtype) or self.dtype)
        return _wrap(array).requires_grad_(requires_grad)

    def new_empty(self, *size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
        """An uninitialised tensor (zeros here) of ``size``."""
        return self.new_zeros(*size, dtype=dtype, requires_grad=requires_grad)


_add_methods(_Conversion)
