"""DistributedSampler: each rank's share of a data set's indices, shaped like PyTorch's."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from ... import distributed as dist
from ...backend import np

__all__ = ["DistributedSampler"]


class DistributedSampler:
    """Indices of this rank's shard: ranks get disjoint shards of equal length.

    As in PyTorch, the (shuffled) index list is padded with its own first indices until its
    length divides by ``num_replicas`` (or, with ``drop_last``, its tail is cut off), and rank r
    takes every ``num_replicas``-th index from position r. Shuffling draws a permutation from
    numpy's generator seeded with ``seed + epoch`` (call ``set_epoch`` before each epoch): every
    rank draws the same one, but the order differs from torch's ``randperm``.
    """

    def __init__(
        self,
        dataset: Any,
        num_replicas: int | None = None,
        rank: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        if num_replicas is None or rank is None:
            if not dist.is_initialized():
                raise RuntimeError(
                    "DistributedSampler: pass num_replicas and rank, or call "
                    "tinygrad_mlp.distributed.init_process_group first"
                )
            num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
            rank = dist.get_rank() if rank is None else rank
        if num_replicas < 1:
            raise ValueError(f"num_replicas must be at least 1, got {num_replicas}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"invalid rank {rank}, rank should be in [0, {num_replicas - 1}]")
        self.dataset = dataset
        self.num_replicas = int(num_replicas)
        self.rank = int(rank)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.epoch = 0
        n = len(dataset)
        if self.drop_last and n % self.num_replicas:
            self.num_samples = math.ceil((n - self.num_replicas) / self.num_replicas)
        else:
            self.num_samples = math.ceil(n / self.num_replicas)
        self.total_size = self.num_samples * self.num_replicas

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)
        if self.shuffle:
            indices = np.random.default_rng(self.seed + self.epoch).permutation(n)
        else:
            indices = np.arange(n)
        if self.drop_last:
            indices = indices[: self.total_size]
        elif self.total_size > n:
            indices = np.resize(indices, self.total_size)  # repeats from the start
        return iter(indices[self.rank : self.total_size : self.num_replicas].tolist())

    def __len__(self) -> int:
        """The number of indices this rank gets per epoch."""
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch, so that each epoch shuffles differently (the same on every rank)."""
        self.epoch = int(epoch)
