"""Tensor's reductions: sums, means, products, extremes and their positions, variances, norms,
logsumexp, all/any. Written as the class body below, and added to Tensor from there."""

from __future__ import annotations

import math
from typing import Any

from . import backend
from . import ops as O
from ._conversion import _INT64
from ._tensor import (
    Tensor,
    _add_methods,
    _as_float,
    _dim_args,
    _extreme,
    _is_number,
    _labelled,
    _need_float,
    _one_dim,
    _root,
    max_result,
    min_result,
    where,
)
from .autograd.graph import _wrap, _wrap_array, apply
from .backend import np


class _Reductions:
    """Tensor's reduction methods (added to Tensor below)."""

    def sum(self, dim=None, keepdim=False, dtype=None, *, axis=None, keepdims=None) -> Tensor:
        """Sum over ``dim`` (all dims when None); bool and int tensors sum to int64."""
        dim, keepdim = _dim_args(dim, keepdim, axis, keepdims)
        x = self if dtype is None else self.to(dtype)
        if x._data.dtype.kind in "biu":
            x = x._cast(_INT64)
        return apply(O.SUM, x, axis=dim, keepdims=keepdim)

    def mean(self, dim=None, keepdim=False, dtype=None, *, axis=None, keepdims=None) -> Tensor:
        """Mean over ``dim`` (all dims when None)."""
        dim, keepdim = _dim_args(dim, keepdim, axis, keepdims)
        x = self if dtype is None else self.to(dtype)
        _need_float(x, "mean(): could not infer output dtype. Input dtype must be either a "
                    "floating point or complex dtype")  # fmt: skip
        return apply(O.MEAN, x, axis=dim, keepdims=keepdim)

    def nansum(self, dim=None, keepdim=False) -> Tensor:
        """Sum treating NaN as 0."""
        if self._data.dtype.kind in "biu":
            return self.sum(dim, keepdim)
        return where(self.isnan(), 0.0, self).sum(dim, keepdim)

    def prod(self, dim=None, keepdim=False, dtype=None, *, axis=None, keepdims=None) -> Tensor:
        """Product over ``dim`` (all dims when None)."""
        dim, keepdim = _dim_args(dim, keepdim, axis, keepdims)
        x = self if dtype is None else self.to(dtype)
        if x._data.dtype.kind in "biu":
            return _wrap_array(x._data, x._data.astype(np.int64).prod(axis=dim, keepdims=keepdim))
        return apply(O.PROD, x, axis=dim, keepdims=keepdim)

    def amax(self, dim=(), keepdim=False, *, axis=None, keepdims=None) -> Tensor:
        """Maximum over ``dim`` (all dims when empty); tied maxima share the gradient."""
        dim, keepdim = _dim_args(None if dim == () else dim, keepdim, axis, keepdims)
        if self.numel() == 0:
            raise IndexError(f"amax(): cannot reduce an empty tensor of shape {self.shape}")
        if self._data.dtype.kind in "biu":
            axes = O.norm_axes(dim, self.ndim)
            return _wrap_array(self._data, self._data.max(axis=axes, keepdims=keepdim))
        return apply(O.AMAX, self, axis=dim, keepdims=keepdim)

    def amin(self, dim=(), keepdim=False, *, axis=None, keepdims=None) -> Tensor:
        """Minimum over ``dim`` (all dims when empty); tied minima share the gradient."""
        dim, keepdim = _dim_args(None if dim == () else dim, keepdim, axis, keepdims)
        if self.numel() == 0:
            raise IndexError(f"amin(): cannot reduce an empty tensor of shape {self.shape}")
        if self._data.dtype.kind in "biu":
            axes = O.norm_axes(dim, self.ndim)
            return _wrap_array(self._data, self._data.min(axis=axes, keepdims=keepdim))
        return -apply(O.AMAX, -self, axis=dim, keepdims=keepdim)

    def max(self, dim=None, keepdim=False, *, axis=None, keepdims=None) -> Any:
        """The maximum of all elements; with ``dim``, the named tuple (values, indices); with a
        tensor, the elementwise maximum."""
        if isinstance(dim, Tensor):
            return self.maximum(dim)
        dim, keepdim = _dim_args(dim, keepdim, axis, keepdims)
        if dim is None:
            out = self.amax(keepdim=keepdim) if keepdims else self.amax()
            return _labelled(out, "MaxBackward1")
        return _extreme(self, dim, keepdim, "argmax", max_result)

    def min(self, dim=None, keepdim=False, *, axis=None, keepdims=None) -> Any:
        """The minimum of all elements; with ``dim``, the named tuple (values, indices); with a
        tensor, the elementwise minimum."""
        if isinstance(dim, Tensor):
            return self.minimum(dim)
        dim, keepdim = _dim_args(dim, keepdim, axis, keepdims)
        if dim is None:
            out = self.amin(keepdim=keepdim) if keepdims else self.amin()
            return _labelled(out, "MinBackward1")
        return _extreme(self, dim, keepdim, "argmin", min_result)

    def argmax(self, dim=None, keepdim=False, *, axis=None, keepdims=None) -> Tensor:
        """Indices of the maxima along ``dim`` (of the flattened tensor when None), int64."""
        return self._arg("argmax", dim, keepdim, axis, keepdims)

    def argmin(self, dim=None, keepdim=False, *, axis=None, keepdims=None) -> Tensor:
        """Indices of the minima along ``dim`` (of the flattened tensor when None), int64."""
        return self._arg("argmin", dim, keepdim, axis, keepdims)

    def _arg(self, name: str, dim, keepdim, axis, keepdims) -> Tensor:
        dim, keepdim = _dim_args(dim, keepdim, axis, keepdims)
        if self.numel() == 0:
            raise IndexError(f"{name}(): cannot reduce an empty tensor of shape {self.shape}")
        data = self._data
        if dim is None:
            out = getattr(data.reshape(-1), name)()
            out = out.reshape((1,) * data.ndim) if keepdim else out
        else:
            out = getattr(data, name)(axis=_one_dim(dim, data.ndim), keepdims=keepdim)
        return _wrap(backend.array_module_of(data).asarray(out, dtype=np.int64))

    def var(self, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None,
            keepdims=None) -> Tensor:  # fmt: skip
        """Variance over ``dim`` with Bessel's correction by default (``correction=1``)."""
        dim, keepdim = _dim_args(dim, keepdim, axis, keepdims)
        if correction is None:
            correction = 1 if unbiased is None or unbiased else 0
        _need_float(self, "std and var only support floating point and complex dtypes")
        return apply(O.VAR, self, axis=dim, keepdims=keepdim, correction=correction)

    def std(self, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None,
            keepdims=None) -> Tensor:  # fmt: skip
        """Standard deviation over ``dim`` (the square root of ``var``)."""
        v = self.var(dim, unbiased, keepdim, correction=correction, axis=axis, keepdims=keepdims)
        return _root(v, 0.5)  # NOTE: the gradient at a zero deviation is 0, as PyTorch's

    def norm(self, p: Any = "fro", dim=None, keepdim: bool = False, dtype=None) -> Tensor:
        """The vector p-norm over ``dim`` (all elements when None); 'fro' is the 2-norm."""
        x = self if dtype is None else self.to(dtype)
        _need_float(x, "linalg.vector_norm: Expected a floating point or complex tensor as input")
        if isinstance(dim, list):
            dim = tuple(dim)
        if p in ("fro", 2, 2.0):
            return _root((x * x).sum(dim, keepdim), 0.5)
        if p in (math.inf, "inf"):
            return x.abs().amax(() if dim is None else dim, keepdim)
        if p in (-math.inf, "-inf"):
            return x.abs().amin(() if dim is None else dim, keepdim)
        if p in (1, 1.0):
            return x.abs().sum(dim, keepdim)
        if p == 0:
            return (x != 0).sum(dim, keepdim).to(x.dtype)
        if not _is_number(p):
            raise ValueError(f"norm: unsupported p={p!r}")
        a = x.abs()
        nonzero = a > 0  # NOTE: |x|^p at 0 with a zero gradient there, as PyTorch's norms
        powered = where(nonzero, where(nonzero, a, 1.0) ** p, 0.0)
        return _root(powered.sum(dim, keepdim), 1.0 / p)

    def logsumexp(self, dim, keepdim: bool = False) -> Tensor:
        """log(sum(exp(x))) over ``dim``, computed stably."""
        x = _as_float(self)
        top = x.amax(dim, keepdim=True).detach()
        top = where(top.isfinite(), top, 0.0)
        out = (x - top).exp().sum(dim, keepdim=True).log() + top
        if not keepdim:
            axes = O.norm_axes(dim, x.ndim)
            out = out.reshape(O._dropped_shape(out.shape, axes))
        return out

    def all(self, dim=None, keepdim=False, *, axis=None, keepdims=None) -> Tensor:
        """True where every element along ``dim`` is nonzero."""
        dim, keepdim = _dim_args(dim, keepdim, axis, keepdims)
        return _wrap_array(self._data, self._data.astype(bool).all(axis=dim, keepdims=keepdim))

    def any(self, dim=None, keepdim=False, *, axis=None, keepdims=None) -> Tensor:
        """True where some element along ``dim`` is nonzero."""
        dim, keepdim = _dim_args(dim, keepdim, axis, keepdims)
        return _wrap_array(self._data, self._data.astype(bool).any(axis=dim, keepdims=keepdim))

    def count_nonzero(self, dim=None) -> Tensor:
        """The number of nonzero elements along ``dim``."""
        return (self != 0).sum(dim)


_add_methods(_Reductions)
