"""Tensor's comparisons and logic: ==, <, ... and their named forms, bitwise ops and shifts,
isnan/isinf/isfinite, allclose, isclose, equal. Written as the class body below, and added to
Tensor from there."""

from __future__ import annotations

import operator
from typing import Any

from . import backend
from ._conversion import _lift
from ._tensor import Tensor, _add_methods, _is_number
from .autograd.graph import _ShapeMismatch, _wrap
from .backend import np


class _Comparisons:
    """Tensor's comparison methods (added to Tensor below)."""

    def _compare(self, other: Any, fn) -> Tensor:
        if isinstance(other, Tensor):
            other = other._data
        elif not (_is_number(other) or isinstance(other, bool) or backend.is_array(other)):
            if isinstance(other, (list, tuple)):
                other = np.asarray(other)
            else:
                return NotImplemented
        try:
            return _wrap(fn(self._data, other))
        except ValueError as e:  # shapes that do not broadcast: PyTorch's RuntimeError
            raise _ShapeMismatch(f"{fn.__name__}: {e}") from None

    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return self._compare(other, operator.eq)

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return self._compare(other, operator.ne)

    def __lt__(self, other: Any) -> Tensor:
        return self._compare(other, operator.lt)

    def __le__(self, other: Any) -> Tensor:
        return self._compare(other, operator.le)

    def __gt__(self, other: Any) -> Tensor:
        return self._compare(other, operator.gt)

    def __ge__(self, other: Any) -> Tensor:
        return self._compare(other, operator.ge)

    def __invert__(self) -> Tensor:
        if self._data.dtype.kind not in "biu":
            raise TypeError(f"~ needs a bool or integer tensor, got {self.dtype}")
        return _wrap(~self._data)

    def _bitwise(self, other: Any, fn) -> Tensor:
        """&, |, ^, << or >> of bool and integer operands (PyTorch has no float kernels)."""
        try:
            return self._compare(other, fn)
        except TypeError:
            got = other.dtype if isinstance(other, Tensor) else type(other).__name__
            raise NotImplementedError(
                f"{fn.__name__}: not implemented for floating-point operands, got {self.dtype} "
                f"and {got}"
            ) from None

    def __and__(self, other: Any) -> Tensor:
        return self._bitwise(other, operator.and_)

    def __or__(self, other: Any) -> Tensor:
        return self._bitwise(other, operator.or_)

    def __xor__(self, other: Any) -> Tensor:
        return self._bitwise(other, operator.xor)

    def __lshift__(self, other: Any) -> Tensor:
        return self._bitwise(other, operator.lshift)

    def __rshift__(self, other: Any) -> Tensor:
        return self._bitwise(other, operator.rshift)

    def __rlshift__(self, other: Any) -> Tensor:
        return _lift(other, self)._bitwise(self, operator.lshift)

    def __rrshift__(self, other: Any) -> Tensor:
        return _lift(other, self)._bitwise(self, operator.rshift)

    __rand__, __ror__, __rxor__ = __and__, __or__, __xor__

    def eq(self, other: Any) -> Tensor:
        """Elementwise ==, as a bool tensor."""
        return self == other

    def ne(self, other: Any) -> Tensor:
        """Elementwise !=, as a bool tensor."""
        return self != other

    def lt(self, other: Any) -> Tensor:
        """Elementwise <, as a bool tensor."""
        return self < other

    def le(self, other: Any) -> Tensor:
        """Elementwise <=, as a bool tensor."""
        return self <= other

    def gt(self, other: Any) -> Tensor:
        """Elementwise >, as a bool tensor."""
        return self > other

    def ge(self, other: Any) -> Tensor:
        """Elementwise >=, as a bool tensor."""
        return self >= other

    greater, less, greater_equal, less_equal, not_equal = gt, lt, ge, le, ne

    def logical_not(self) -> Tensor:
        """Elementwise not, as a bool tensor."""
        return _wrap(self._data == 0)

    def isnan(self) -> Tensor:
        """Where the values are NaN."""
        return _wrap(backend.array_module_of(self._data).isnan(self._data))

    def isinf(self) -> Tensor:
        """Where the values are +-inf."""
        return _wrap(backend.array_module_of(self._data).isinf(self._data))

    def isfinite(self) -> Tensor:
        """Where the values are neither NaN nor inf."""
        return _wrap(backend.array_module_of(self._data).isfinite(self._data))

    def allclose(self, other: Any, rtol: float = 1e-5, atol: float = 1e-8, equal_nan=False):
        """True when every pair of values is close (numpy's rule, PyTorch's defaults)."""
        other = other._data if isinstance(other, Tensor) else other
        xp = backend.array_module_of(self._data)
        return bool(xp.allclose(self._data, other, rtol=rtol, atol=atol, equal_nan=equal_nan))

    def isclose(self, other: Any, rtol: float = 1e-5, atol: float = 1e-8, equal_nan=False):
        """Where |self - other| <= atol + rtol * |other| (inf equal to itself), as a bool
        tensor; the two broadcast."""
        if rtol < 0 or atol < 0:
            what, value = ("rtol", rtol) if rtol < 0 else ("atol", atol)
            raise RuntimeError(f"{what} must be greater than or equal to zero, but got {value}")
        other = other._data if isinstance(other, Tensor) else other
        xp = backend.array_module_of(self._data)
        return _wrap(xp.isclose(self._data, other, rtol=rtol, atol=atol, equal_nan=equal_nan))

    def equal(self, other: Tensor) -> bool:
        """True when both tensors have the same shape and values."""
        if self.shape != other.shape:
            return False
        return bool((self._data == other._data).all())


_add_methods(_Comparisons)
