"""Tensor's shape methods: reshape and view, flatten, squeeze, permute and transpose, expand,
repeat, chunk and split, narrow and select, diagonal, flip, gather, indexing. Written as the
class body below, and added to Tensor from there."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from . import backend
from . import ops as O
from ._conversion import to_dtype
from ._tensor import Tensor, _add_methods, _index, _ints, _one_dim, _sizes
from .autograd.graph import _wrap, apply
from .backend import np


class _Shapes:
    """Tensor's shape methods (added to Tensor below)."""

    def reshape(self, *shape: Any) -> Tensor:
        """The same elements in a new shape (one dimension may be -1)."""
        shape = _sizes(shape, "reshape: the new shape")
        if any(n < -1 for n in shape) or shape.count(-1) > 1:
            raise RuntimeError(f"reshape: invalid shape {shape}")
        if shape == self._data.shape:
            return self
        try:
            return apply(O.RESHAPE, self, shape=shape)
        except ValueError:
            raise RuntimeError(
                f"shape '{list(shape)}' is invalid for input of size {self.numel()}"
            ) from None

    def view(self, *shape: Any) -> Tensor:
        """The same memory seen in a new shape; refused where that needs a copy (reshape
        copies there)."""
        if len(shape) == 1 and not isinstance(shape[0], (int, np.integer, tuple, list)):
            dtype = to_dtype(shape[0])  # view(dtype): the same bytes read as another dtype
            if dtype.itemsize != self._data.dtype.itemsize or self.requires_grad:
                raise RuntimeError(
                    f"view(dtype): only between dtypes of one size and without grad here, got "
                    f"{self.dtype} to {dtype}"
                )
            return _wrap(self._data.view(dtype))
        sizes = _sizes(shape, "view: the new shape")
        if self.numel() and sizes != self.shape:
            try:
                backend.array_module_of(self._data).reshape(self._data, sizes, copy=False)
            except ValueError as e:
                if "copy" not in str(e):
                    raise RuntimeError(
                        f"shape '{list(sizes)}' is invalid for input of size {self.numel()}"
                    ) from None
                raise RuntimeError(
                    f"view size is not compatible with input tensor's size and stride (at least "
                    f"one dimension spans across two contiguous subspaces): shape {self.shape}, "
                    f"strides {self.stride()}, view {list(sizes)}. Use .reshape(...) instead."
                ) from None
            except TypeError:
                pass  # an array module without copy=: reshape decides
        return self.reshape(*sizes)

    def view_as(self, other: Tensor) -> Tensor:
        """This tensor in ``other``'s shape."""
        return self.reshape(other.shape)

    reshape_as = view_as

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        """Merge the dimensions from ``start_dim`` to ``end_dim`` into one."""
        if self.ndim == 0:
            return self.reshape(1)
        s, e = _one_dim(start_dim, self.ndim), _one_dim(end_dim, self.ndim)
        if s > e:
            raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
        shape = self.shape
        return self.reshape(*shape[:s], math.prod(shape[s : e + 1]), *shape[e + 1 :])

    def unflatten(self, dim: int, sizes: Sequence[int]) -> Tensor:
        """Split dimension ``dim`` into ``sizes``."""
        d = _one_dim(dim, self.ndim)
        return self.reshape(*self.shape[:d], *sizes, *self.shape[d + 1 :])

    def unsqueeze(self, dim: int) -> Tensor:
        """A new dimension of size 1 at ``dim``."""
        d = _one_dim(dim, self.ndim + 1)
        shape = self.shape
        return apply(O.RESHAPE, self, shape=shape[:d] + (1,) + shape[d:])

    def squeeze(self, dim: Any = None) -> Tensor:
        """Drop dimensions of size 1 (only ``dim`` when given; a dim of another size stays)."""
        shape = self.shape
        if dim is None:
            dims = {i for i, n in enumerate(shape) if n == 1}
        else:
            dims = set(O.norm_axes(dim, self.ndim) or ())
            dims = {d for d in dims if self.ndim and shape[d] == 1}
        new = tuple(n for i, n in enumerate(shape) if i not in dims)
        return self if new == shape else apply(O.RESHAPE, self, shape=new)

    def permute(self, *dims: Any) -> Tensor:
        """The dimensions in the order ``dims``."""
        if not dims:
            raise TypeError('permute() missing 1 required positional arguments: "dims"')
        dims = _sizes(dims, "permute: dims")
        n = self.ndim
        if len(dims) != n or sorted(d % max(n, 1) for d in dims) != list(range(n)):
            raise RuntimeError(
                f"permute(sparse_coo): number of dimensions in the tensor input does not match "
                f"the length of the desired ordering of dimensions: dims {dims} for shape "
                f"{self.shape}"
            )
        dims = tuple(d % n for d in dims)
        if dims == tuple(range(n)):
            return self
        return apply(O.PERMUTE, self, axes=dims)

    def transpose(self, dim0: int, dim1: int) -> Tensor:
        """``dim0`` and ``dim1`` swapped."""
        n = self.ndim
        if n == 0:
            return self
        a, b = _one_dim(dim0, n), _one_dim(dim1, n)
        dims = list(range(n))
        dims[a], dims[b] = dims[b], dims[a]
        return self.permute(*dims)

    swapaxes = swapdims = transpose

    def t(self) -> Tensor:
        """The transpose of a tensor of at most 2 dimensions."""
        if self.ndim > 2:
            raise RuntimeError(
                f"t() expects a tensor with <= 2 dimensions, but self is {self.ndim}D"
            )
        return self.T

    def expand(self, *sizes: Any) -> Tensor:
        """This tensor broadcast to ``sizes`` (-1 keeps a dimension)."""
        sizes = _sizes(sizes, "expand: sizes")
        shape = self.shape
        if len(sizes) < len(shape):
            raise RuntimeError(
                f"expand: the number of sizes provided ({len(sizes)}) must be greater or equal "
                f"to the number of dimensions in the tensor ({len(shape)})"
            )
        lead = len(sizes) - len(shape)
        target = tuple(
            (shape[i - lead] if n == -1 and i >= lead else n) for i, n in enumerate(sizes)
        )
        for i, n in enumerate(shape):
            if n != 1 and n != target[i + lead]:
                raise RuntimeError(
                    f"The expanded size of the tensor ({target[i + lead]}) must match the "
                    f"existing size ({n}) at non-singleton dimension {i + lead}. Target sizes: "
                    f"{list(sizes)}. Tensor sizes: {list(shape)}"
                )
        if target == shape:
            return self
        return apply(O.EXPAND, self, shape=target)

    def expand_as(self, other: Tensor) -> Tensor:
        """This tensor broadcast to ``other``'s shape."""
        return self.expand(*other.shape)

    broadcast_to = expand

    def repeat(self, *sizes: Any) -> Tensor:
        """This tensor tiled ``sizes[i]`` times along each dimension."""
        sizes = _sizes(sizes, "repeat: sizes")
        if len(sizes) < self.ndim:
            raise RuntimeError(
                "Number of dimensions of repeat dims can not be smaller than number of "
                f"dimensions of tensor ({sizes} for shape {self.shape})"
            )
        shape = (1,) * (len(sizes) - self.ndim) + self.shape
        x = self.reshape(*[d for n in shape for d in (1, n)])
        x = x.expand(*[d for r, n in zip(sizes, shape, strict=True) for d in (r, n)])
        return x.reshape(*[r * n for r, n in zip(sizes, shape, strict=True)])

    def chunk(self, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
        """Split into ``chunks`` pieces of equal size along ``dim`` (the last may be smaller)."""
        if self.ndim == 0:
            raise RuntimeError("chunk expects at least a 1-dimensional tensor")
        if chunks <= 0:
            raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
        n = self.shape[_one_dim(dim, self.ndim)]
        return self.split(max(-(-n // chunks), 1), dim)

    def split(self, split_size_or_sections: Any, dim: int = 0) -> tuple[Tensor, ...]:
        """Pieces of size ``split_size`` (the last may be smaller) or of the given sizes."""
        if self.ndim == 0:
            raise RuntimeError("split expects at least a 1-dimensional tensor")
        d = _one_dim(dim, self.ndim)
        n = self.shape[d]
        if isinstance(split_size_or_sections, (list, tuple)):
            sizes = list(_ints("split sizes", split_size_or_sections))
            if sum(sizes) != n:
                raise RuntimeError(
                    f"split_with_sizes expects split_sizes to sum exactly to {n} (input tensor's "
                    f"size at dimension {d}), but got split_sizes={sizes}"
                )
        else:
            step = int(split_size_or_sections)
            if step <= 0:
                raise RuntimeError(f"split expects split_size be non-negative, but got {step}")
            sizes = [min(step, n - i) for i in range(0, n, step)] or [0]
        out, start = [], 0
        lead = (slice(None),) * d
        for s in sizes:
            out.append(self[lead + (slice(start, start + s),)])
            start += s
        return tuple(out)

    def unbind(self, dim: int = 0) -> tuple[Tensor, ...]:
        """The slices along ``dim``, each without that dimension."""
        d = _one_dim(dim, self.ndim)
        lead = (slice(None),) * d
        return tuple(self[lead + (i,)] for i in range(self.shape[d]))

    def narrow(self, dim: int, start: int, length: int) -> Tensor:
        """The view of ``length`` elements from ``start`` along ``dim``."""
        d = _one_dim(dim, self.ndim)
        n = self.shape[d]
        if not -n <= int(start) <= n:
            raise IndexError(
                f"start out of range (expected to be in range of [{-n}, {n}], but got {start})"
            )
        start = int(start) + (n if start < 0 else 0)
        if length < 0 or start + length > n:
            raise RuntimeError(
                f"narrow(): start ({start}) + length ({length}) exceeds dimension size ({n}) "
                f"of dim {d}"
            )
        return self[(slice(None),) * d + (slice(start, start + int(length)),)]

    def select(self, dim: int, index: int) -> Tensor:
        """The view at ``index`` along ``dim``, without that dimension."""
        d = _one_dim(dim, self.ndim)
        n = self.shape[d]
        if not -n <= index < n:
            raise IndexError(
                f"select(): index {index} out of range for tensor of size {self.shape} at "
                f"dimension {d}"
            )
        return self[(slice(None),) * d + (int(index) % n,)]

    def diagonal(self, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
        """The view of the diagonal ``offset`` of dims ``dim1`` and ``dim2``, appended last."""
        a, b = _one_dim(dim1, self.ndim), _one_dim(dim2, self.ndim)
        if a == b:
            raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
        return apply(O.DIAGONAL, self, offset=int(offset), dim1=a, dim2=b)

    def stride(self, dim: int | None = None) -> Any:
        """The step, in elements, between neighbours along each dimension (or ``dim``)."""
        size = self._data.dtype.itemsize
        steps = tuple(s // size for s in self._data.strides)
        return steps if dim is None else steps[_one_dim(dim, self.ndim)]

    def flip(self, *dims: Any) -> Tensor:
        """The elements in reverse order along ``dims``."""
        dims = _sizes(dims, "flip: dims")
        if self.ndim == 0:
            for d in dims:
                _one_dim(d, 0)
            return self.clone()
        index = [slice(None)] * self.ndim
        for d in dims:
            index[_one_dim(d, self.ndim)] = slice(None, None, -1)
        return self[tuple(index)]

    def gather(self, dim: int, index: Any) -> Tensor:
        """out[i][j] = self[i][index[i][j]] along ``dim`` (differentiable)."""
        index = index._data if isinstance(index, Tensor) else index
        index = backend.to_device(
            index if backend.is_array(index) else np.asarray(index), self.device
        )
        if index.dtype.kind not in "iu":
            raise RuntimeError(f"gather(): Expected dtype int64 for index, got {index.dtype}")
        if self.ndim == 0 and index.ndim <= 1:  # a 0-d tensor gathers as a 1-element one
            _one_dim(dim, 0)
            return self.reshape(1).gather(0, index.reshape(-1)).reshape(index.shape)
        if index.ndim != self.ndim:
            raise RuntimeError(
                "Index tensor must have the same number of dimensions as input tensor "
                f"({index.ndim} and {self.ndim})"
            )
        d = _one_dim(dim, self.ndim)
        size = self.shape[d]
        if index.size and not (0 <= int(index.min()) and int(index.max()) < size):
            bad = int(index.min()) if int(index.min()) < 0 else int(index.max())
            raise RuntimeError(f"index {bad} is out of bounds for dimension {d} with size {size}")
        xp = backend.array_module_of(index)
        grid = list(xp.ogrid[tuple(slice(n) for n in index.shape)])
        grid[d] = index
        return self[tuple(grid)]

    def take_along_dim(self, indices: Any, dim: int) -> Tensor:
        """numpy's take_along_axis."""
        return self.gather(dim, indices)

    def __getitem__(self, index: Any) -> Tensor:
        idx = _index(index)
        if type(idx) is int or (type(idx) is tuple and all(type(i) is int for i in idx)):
            idx = (*idx, ...) if type(idx) is tuple else (idx, ...)  # a 0-d view, not a copy
        try:
            return apply(O.GETITEM, self, index=idx)
        except IndexError as e:
            raise IndexError(
                f"index {index!r:.80} is invalid for shape {tuple(self.shape)}: {e}"
            ) from None


_add_methods(_Shapes)
