"""``--distributed`` for the examples: data-parallel training over MPI, one process per rank.

    mpiexec -n 2 python examples/mnist.py --distributed

Every rank draws the same global batches (the loaders share a seed) and trains on its
DistributedSampler shard of each one, ``batch-size / world size`` images; DistributedDataParallel
averages the gradients, so the weights follow one process's training on the whole batches (to
float rounding, when the batch size divides by the number of ranks). Rank 0 alone prints and
writes files; the other ranks' standard output is discarded.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import tinygrad_mlp as tm
from tinygrad_mlp import distributed as dist
from tinygrad_mlp.nn.parallel import DistributedDataParallel
from tinygrad_mlp.utils.data import DistributedSampler


def add_argument(parser: argparse.ArgumentParser) -> None:
    """The --distributed flag."""
    parser.add_argument(
        "--distributed",
        action="store_true",
        help="data-parallel over MPI: launch with mpiexec -n N (needs pip install -e '.[mpi]')",
    )


class Single:
    """One process: every method hands its arguments back unchanged."""

    rank = 0
    world_size = 1

    def wrap(self, model: tm.nn.Module) -> tm.nn.Module:
        return model

    def shard(self, xb: Any, yb: Any) -> tuple[Any, Any]:
        return xb, yb

    def after_backward(self, model: tm.nn.Module) -> None:
        pass

    def total(self, *numbers: float) -> tuple[float, ...]:
        return numbers


class Distributed(Single):
    """One rank of an MPI job: DDP, batch shards, sums over ranks; only rank 0 speaks."""

    def __init__(self, args: argparse.Namespace) -> None:
        try:
            dist.init_process_group("mpi")
        except ImportError as e:
            raise SystemExit(f"--distributed: {e}") from None
        self.rank = dist.get_rank()
        self.world_size = dist.get_world_size()
        if args.batch_size % self.world_size:
            print(
                f"note: --batch-size {args.batch_size} does not divide by {self.world_size} "
                "ranks; the shards are padded and training differs slightly from one process",
                file=sys.stderr,
            )
        if self.rank != 0:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (kept open until exit)
            for name in ("save", "plot", "metrics"):
                if hasattr(args, name):
                    setattr(args, name, None)

    def wrap(self, model: tm.nn.Module) -> tm.nn.Module:
        return DistributedDataParallel(model)

    def shard(self, xb: Any, yb: Any) -> tuple[Any, Any]:
        index = list(DistributedSampler(range(len(xb)), self.world_size, self.rank, shuffle=False))
        return xb[index], yb[index]

    def after_backward(self, model: tm.nn.Module) -> None:
        model.sync_gradients()  # a no-op once gradient hooks have averaged them in backward

    def total(self, *numbers: float) -> tuple[float, ...]:
        t = tm.tensor(numbers, dtype=tm.float64)
        dist.all_reduce(t)
        return tuple(t.tolist())


def setup(args: argparse.Namespace) -> Single:
    """Distributed(args) with --distributed, else Single()."""
    return Distributed(args) if getattr(args, "distributed", False) else Single()
