"""PyTorch's ``dtype`` and ``Size``: element types that print as ``tinygrad_mlp.float32`` and a
shape that prints as ``tinygrad_mlp.Size([3, 4])``, both still usable wherever numpy takes a
dtype or a shape."""

from __future__ import annotations

import math
from typing import Any

from .backend import np

__all__ = ["dtype", "Size", "DTYPES", "wrap_dtype"]


class dtype:  # noqa: N801  (PyTorch's name)
    """An element type: prints as ``tinygrad_mlp.float32``, compares equal to numpy's dtype and
    goes wherever numpy takes a dtype (numpy reads its ``.dtype`` attribute)."""

    __slots__ = ("dtype",)

    def __init__(self, np_dtype: Any) -> None:
        self.dtype = np.dtype(np_dtype)

    def __repr__(self) -> str:
        return f"tinygrad_mlp.{self.dtype.name}"

    __str__ = __repr__

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, dtype):
            return self.dtype == other.dtype
        if other is None:
            return False  # NOTE: numpy reads None as float64; PyTorch's dtype never equals None
        try:
            return self.dtype == np.dtype(other)
        except TypeError:
            return NotImplemented

    def __ne__(self, other: Any) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __hash__(self) -> int:
        return hash(self.dtype)

    def __reduce__(self) -> tuple:
        return (wrap_dtype, (self.dtype.name,))

    @property
    def __numpy_dtype__(self) -> Any:
        """numpy's dtype, read by numpy 2.4 and later wherever a dtype is taken."""
        return self.dtype

    def __getattr__(self, name: str) -> Any:
        # numpy's attributes (kind, name, char, type, str) stay readable
        return getattr(object.__getattribute__(self, "dtype"), name)

    @property
    def is_floating_point(self) -> bool:
        """True for float16, float32 and float64."""
        return self.dtype.kind == "f"

    @property
    def is_complex(self) -> bool:
        """Always False: complex dtypes are not supported."""
        return False

    @property
    def is_signed(self) -> bool:
        """True for the floating and signed integer dtypes."""
        return self.dtype.kind in "fi"

    @property
    def itemsize(self) -> int:
        """Bytes per element."""
        return self.dtype.itemsize


DTYPES: dict[Any, dtype] = {}
for _name in ("float16", "float32", "float64", "int8", "uint8", "int16", "int32", "int64", "bool"):
    DTYPES[np.dtype(_name)] = dtype(_name)


def wrap_dtype(np_dtype: Any) -> dtype:
    """The ``dtype`` object for a numpy dtype (one object per dtype)."""
    key = np.dtype(np_dtype)
    out = DTYPES.get(key)
    if out is None:
        out = DTYPES[key] = dtype(key)
    return out


class Size(tuple):
    """The shape of a tensor, as PyTorch's ``Size``: a tuple of ints printed as
    ``tinygrad_mlp.Size([3, 4])``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"tinygrad_mlp.Size([{', '.join(map(str, self))}])"

    __str__ = __repr__

    def __getitem__(self, index: Any) -> Any:
        out = tuple.__getitem__(self, index)
        return Size(out) if isinstance(index, slice) else out

    def __add__(self, other: Any) -> Size:
        if not isinstance(other, tuple):
            return NotImplemented
        return Size(tuple(self) + other)

    def __mul__(self, times: Any) -> Size:
        return Size(tuple(self) * times)

    __rmul__ = __mul__

    def numel(self) -> int:
        """The number of elements of a tensor of this shape."""
        return math.prod(self)

    def __reduce__(self) -> tuple:
        return (Size, (tuple(self),))
