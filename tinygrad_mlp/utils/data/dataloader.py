"""DataLoader and default_collate, as in torch.utils.data.

``DataLoader(dataset, batch_size=1, shuffle=False, sampler=None, batch_sampler=None,
drop_last=False, collate_fn=None, generator=None)`` yields batches of Tensors. A TensorDataset
with the default collate is batched by one fancy index per tensor per batch, not sample by
sample. Our extension: ``DataLoader(x, y=None, batch_size=32, shuffle=True, seed=None,
drop_last=False)`` with numpy arrays yields numpy batches (one permutation per epoch, then
slicing), as earlier versions did.
"""

from __future__ import annotations

import collections.abc
import numbers
from collections.abc import Callable, Iterator
from typing import Any

from ... import backend
from ..._tensor import Tensor
from ...backend import np
from .dataset import TensorDataset
from .sampler import BatchSampler, RandomSampler, SequentialSampler

__all__ = ["DataLoader", "default_collate", "default_convert"]


def _is_array(value: Any) -> bool:
    return (
        backend.is_array(value) or backend.looks_like_cupy(value) or isinstance(value, np.generic)
    )


def _wrap(array: Any) -> Tensor:
    return Tensor._wrap(array, False, None)


def default_convert(data: Any) -> Any:
    """Arrays become Tensors, inside lists, tuples and dicts too; everything else stays."""
    if _is_array(data):
        return _wrap(np.asarray(data) if isinstance(data, np.generic) else data)
    if isinstance(data, collections.abc.Mapping):
        return {k: default_convert(v) for k, v in data.items()}
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, (list, tuple)):
        return [default_convert(d) for d in data]
    return data


def default_collate(batch: list[Any]) -> Any:
    """Stack a list of samples into a batch, as PyTorch does: tensors and arrays are stacked
    into a Tensor, floats become a float64 Tensor and ints an int64 one, strings stay a list,
    and tuples, lists and dicts are collated field by field (tuples give lists)."""
    elem = batch[0]
    if isinstance(elem, Tensor) or _is_array(elem):
        arrays = [b._data if isinstance(b, Tensor) else np.asarray(b) for b in batch]
        shape = arrays[0].shape
        for i, a in enumerate(arrays):
            if a.shape != shape:
                raise RuntimeError(
                    f"stack expects each tensor to be equal size, but got {list(shape)} at "
                    f"entry 0 and {list(a.shape)} at entry {i}"
                )
        xp = backend.array_module_of(arrays[0])
        return _wrap(xp.stack(arrays))
    if isinstance(elem, bool):
        return _wrap(np.asarray(batch, dtype=np.bool_))
    if isinstance(elem, numbers.Integral):
        return _wrap(np.asarray(batch, dtype=np.int64))
    if isinstance(elem, numbers.Real):
        return _wrap(np.asarray(batch, dtype=np.float64))
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, collections.abc.Mapping):
        return {key: default_collate([d[key] for d in batch]) for key in elem}
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):
        return type(elem)(*(default_collate(list(s)) for s in zip(*batch, strict=True)))
    if isinstance(elem, collections.abc.Sequence):
        size = len(elem)
        if any(len(b) != size for b in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        return [default_collate(list(s)) for s in zip(*batch, strict=True)]
    raise TypeError(
        "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
        f"found {type(elem).__name__}"
    )


def _legacy(*args: Any, **kwargs: Any) -> bool:
    """Whether a DataLoader call is our array form ``DataLoader(x, y=None, batch_size=32, ...)``."""
    if args and _is_array(args[0]):
        return True
    if "y" in kwargs or "seed" in kwargs:
        return True
    return len(args) > 1 and args[1] is not None and not isinstance(args[1], numbers.Integral)


class DataLoader:
    """Batches of a data set (see the module docstring for both forms)."""

    def __init__(self, dataset: Any, *args: Any, **kwargs: Any) -> None:
        if _legacy(dataset, *args, **kwargs):
            self._legacy = True
            self._init_arrays(dataset, *args, **kwargs)
        else:
            self._legacy = False
            self._init_dataset(dataset, *args, **kwargs)

    # ------------------------------------------------------------ torch.utils.data's form

    def _init_dataset(
        self,
        dataset: Any,
        batch_size: int | None = 1,
        shuffle: bool | None = None,
        sampler: Any = None,
        batch_sampler: Any = None,
        num_workers: int = 0,
        collate_fn: Callable[[list[Any]], Any] | None = None,
        pin_memory: bool = False,
        drop_last: bool = False,
        timeout: float = 0,
        worker_init_fn: Any = None,
        multiprocessing_context: Any = None,
        generator: Any = None,
        *,
        prefetch_factor: int | None = None,
        persistent_workers: bool = False,
        pin_memory_device: str = "",
    ) -> None:
        if num_workers != 0:
            raise ValueError(
                f"num_workers={num_workers}: only num_workers=0 (loading in the main process) "
                "is supported"
            )
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError(
                    "batch_sampler option is mutually exclusive with batch_size, shuffle, "
                    "sampler, and drop_last"
                )
            batch_size = None
            drop_last = False
        elif batch_size is None and drop_last:
            raise ValueError(
                "batch_size=None option disables auto-batching and is mutually exclusive with "
                "drop_last"
            )
        if sampler is None:
            sampler = (
                RandomSampler(dataset, generator=generator)
                if shuffle
                else SequentialSampler(dataset)
            )
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.dataset = dataset
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.generator = generator
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.prefetch_factor = prefetch_factor
        self.persistent_workers = persistent_workers
        self._auto_collation = batch_sampler is not None
        self.collate_fn = collate_fn or (
            default_collate if self._auto_collation else default_convert
        )
        self._default_collate = collate_fn is None

    def _batches(self) -> Iterator[Any]:
        dataset, collate = self.dataset, self.collate_fn
        if not self._auto_collation:
            for i in self.sampler:
                yield collate(dataset[i])
            return
        if self._default_collate and type(dataset) is TensorDataset:
            # NOTE: one fancy index per tensor per batch instead of a stack of samples
            arrays = [t._data for t in dataset.tensors]
            chunks = (
                self.batch_sampler._chunks() if type(self.batch_sampler) is BatchSampler else None
            )
            if chunks is None:
                chunks = (np.asarray(b, dtype=np.int64) for b in self.batch_sampler)
            for index in chunks:
                if type(arrays[0]) is not np.ndarray:
                    index = backend.to_device(index, backend.device_of(arrays[0]))
                yield [_wrap(a[index]) for a in arrays]
            return
        for indices in self.batch_sampler:
            yield collate([dataset[i] for i in indices])

    # ------------------------------------------------------------ our array form

    def _init_arrays(
        self,
        x: Any,
        y: Any = None,
        batch_size: int = 32,
        shuffle: bool = True,
        seed: int | None = None,
        drop_last: bool = False,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size}")
        self.x = _array("x", x)
        self.y = None if y is None else _array("y", y)
        if self.x.ndim == 0:
            raise ValueError(
                f"x must have a leading sample axis, got a scalar of shape {self.x.shape}"
            )
        if self.y is not None and (self.y.ndim == 0 or len(self.y) != len(self.x)):
            found = "a scalar" if self.y.ndim == 0 else f"{len(self.y)} samples"
            raise ValueError(f"x has {len(self.x)} samples but y has {found}")
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.rng = np.random.default_rng(seed)

    def _array_batches(self) -> Iterator[Any]:
        """One epoch of batches; shuffling draws a fresh permutation from the loader's rng."""
        order = self.rng.permutation(len(self.x)) if self.shuffle else None
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            # without shuffling, batches are views (basic slices); with it, one fancy index each
            index = slice(start, start + self.batch_size)
            if order is not None:
                index = order[index]
            if self.y is None:
                yield self.x[index]
            else:
                yield self.x[index], self.y[index]

    # ------------------------------------------------------------ both

    def __len__(self) -> int:
        """The number of batches in one epoch."""
        if self._legacy:
            full, rest = divmod(len(self.x), self.batch_size)
            return full + (1 if rest and not self.drop_last else 0)
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        return len(self.sampler)

    def __iter__(self) -> Iterator[Any]:
        """One epoch of batches."""
        return self._array_batches() if self._legacy else self._batches()


def _array(name: str, value: Any) -> Any:
    """An array as it is, or nested lists as a numpy array; ragged lists are refused by name."""
    if hasattr(value, "shape"):
        return value
    try:
        return np.asarray(value)
    except ValueError as e:
        raise ValueError(
            f"DataLoader: {name} is not an array of one shape (pass x and y as two arguments, "
            f"not as one pair): {e}"
        ) from None
