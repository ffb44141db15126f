"""Dataset, TensorDataset, Subset, ConcatDataset and random_split, as in torch.utils.data."""

from __future__ import annotations

import bisect
import math
import numbers
from collections.abc import Iterable, Sequence
from itertools import accumulate
from typing import Any

from ... import backend
from ..._tensor import Tensor
from ...backend import np

__all__ = ["Dataset", "TensorDataset", "Subset", "ConcatDataset", "random_split"]


class Dataset:
    """A map-style data set: ``__getitem__(index)`` and, usually, ``__len__``."""

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not define __getitem__")

    def __add__(self, other: Dataset) -> ConcatDataset:
        return ConcatDataset([self, other])


def _as_tensor(value: Any) -> Tensor:
    """A Tensor as it is; an array (of any dtype) wrapped without conversion."""
    if isinstance(value, Tensor):
        return value
    array = (
        value if backend.is_array(value) or backend.looks_like_cupy(value) else np.asarray(value)
    )
    return Tensor._wrap(array, False, None)


class TensorDataset(Dataset):
    """Samples are the rows of tensors sharing their first dimension: ``ds[i]`` is
    ``(t0[i], t1[i], ...)``. Numpy arrays are accepted and wrapped as tensors."""

    def __init__(self, *tensors: Any) -> None:
        tensors = tuple(_as_tensor(t) for t in tensors)
        if any(t.ndim == 0 for t in tensors):
            raise ValueError("TensorDataset: every tensor needs a first (sample) dimension")
        if tensors and any(t.shape[0] != tensors[0].shape[0] for t in tensors):
            sizes = [t.shape[0] for t in tensors]
            raise ValueError(f"Size mismatch between tensors: first dimensions are {sizes}")
        self.tensors = tensors

    def __getitem__(self, index: Any) -> tuple[Tensor, ...]:
        return tuple(Tensor._wrap(t._data[index], False, None) for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0] if self.tensors else 0


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order."""

    def __init__(self, dataset: Any, indices: Sequence[int]) -> None:
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, idx: Any) -> Any:
        if isinstance(idx, list):
            return self.dataset[[self.indices[i] for i in idx]]
        return self.dataset[self.indices[idx]]

    def __len__(self) -> int:
        return len(self.indices)


class ConcatDataset(Dataset):
    """Data sets one after another."""

    def __init__(self, datasets: Iterable[Any]) -> None:
        self.datasets = list(datasets)
        if not self.datasets:
            raise AssertionError("datasets should not be an empty iterable")
        self.cumulative_sizes = list(accumulate(len(d) for d in self.datasets))

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx: int) -> Any:
        if idx < 0:
            if -idx > len(self):
                raise ValueError("absolute value of index should not exceed dataset length")
            idx += len(self)
        which = bisect.bisect_right(self.cumulative_sizes, idx)
        start = self.cumulative_sizes[which - 1] if which else 0
        return self.datasets[which][idx - start]


def _rng(generator: Any) -> np.random.Generator:
    """A numpy Generator from a generator argument: None (the global one seeded by
    ``tm.manual_seed``), a numpy Generator, or an int seed."""
    if generator is None:
        return backend.rng()
    if isinstance(generator, np.random.Generator):
        return generator
    if isinstance(generator, numbers.Integral) and not isinstance(generator, bool):
        return np.random.default_rng(int(generator))
    inner = getattr(generator, "_rng", None) or getattr(generator, "rng", None)
    if isinstance(inner, np.random.Generator):
        return inner
    raise TypeError(
        f"generator must be None, a numpy Generator or an int seed, got {type(generator).__name__}"
    )


def random_split(
    dataset: Any, lengths: Sequence[int | float], generator: Any = None
) -> list[Subset]:
    """Split into non-overlapping Subsets of the given lengths, or fractions summing to 1 (the
    remainder spread one by one from the first split, as PyTorch does)."""
    n = len(dataset)
    lengths = list(lengths)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        sizes = []
        for i, frac in enumerate(lengths):
            if frac < 0 or frac > 1:
                raise ValueError(f"Fraction at index {i} is not between 0 and 1")
            sizes.append(int(math.floor(n * frac)))
        for i in range(n - sum(sizes)):
            sizes[i % len(sizes)] += 1
        lengths = sizes
    if sum(lengths) != n:
        raise ValueError("Sum of input lengths does not equal the length of the input dataset!")
    order = _rng(generator).permutation(n).tolist()
    return [
        Subset(dataset, order[end - size : end])
        for end, size in zip(accumulate(lengths), lengths, strict=True)
    ]
