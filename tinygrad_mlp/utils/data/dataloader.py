"""Mini-batches over numpy arrays: one permutation per epoch, then slicing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ...backend import np

__all__ = ["DataLoader"]


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


class DataLoader:
    """Iterate (xb, yb) batches, or xb alone when y is None, reshuffled every epoch."""

    def __init__(
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

    def __len__(self) -> int:
        """The number of batches in one epoch."""
        full, rest = divmod(len(self.x), self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def __iter__(self) -> Iterator[Any]:
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
