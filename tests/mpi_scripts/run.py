"""Checks that run under ``mpiexec -n 2 python tests/mpi_scripts/run.py [CHECK ...]``.

With no CHECK, every check but ``crash`` runs.

Each check prints ``OK CHECK rank R`` on every rank that passes; tests/device/test_distributed.py
launches them and reads the output. A failed assertion is an uncaught exception, which aborts
the whole job (the process group's excepthook), so a failure never hangs.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402

import tinygrad_mlp as tm  # noqa: E402
from tinygrad_mlp import distributed as dist  # noqa: E402
from tinygrad_mlp import nn  # noqa: E402
from tinygrad_mlp.nn import functional as F  # noqa: E402
from tinygrad_mlp.nn.parallel import DistributedDataParallel as DDP  # noqa: E402
from tinygrad_mlp.utils.data import DistributedSampler  # noqa: E402


def state(model: nn.Module) -> dict[str, np.ndarray]:
    """The state dict as host arrays (its values may be tensors or arrays)."""
    out = {}
    for k, v in model.state_dict().items():
        out[k] = v.numpy() if isinstance(v, tm.Tensor) else np.asarray(v)
    return out


def ok(name: str) -> None:
    print(f"OK {name} rank {dist.get_rank()}", flush=True)


def check_uninitialised() -> None:
    """Before init_process_group the collectives say what to call (checked before init)."""
    try:
        dist.get_rank()
    except RuntimeError as e:
        assert "init_process_group" in str(e), e
    else:
        raise AssertionError("get_rank before init_process_group did not raise")


def check_collectives() -> None:
    rank, world = dist.get_rank(), dist.get_world_size()
    assert world == 2 and dist.is_initialized() and dist.get_backend() == "mpi"
    t = tm.Tensor(np.arange(6, dtype=np.float32).reshape(2, 3) + rank)
    dist.all_reduce(t)
    expected = sum(np.arange(6, dtype=np.float32).reshape(2, 3) + r for r in range(world))
    np.testing.assert_array_equal(t.numpy(), expected)
    for op, fn in (
        (dist.ReduceOp.MAX, np.maximum.reduce),
        (dist.ReduceOp.MIN, np.minimum.reduce),
        (dist.ReduceOp.PRODUCT, np.multiply.reduce),
    ):
        t = tm.tensor(np.array([1.0, -2.0, 3.0], dtype=np.float64) * (rank + 2))
        dist.all_reduce(t, op=op)
        want = fn([np.array([1.0, -2.0, 3.0]) * (r + 2) for r in range(world)])
        np.testing.assert_array_equal(t.numpy(), want)
    t = tm.Tensor(np.full(4, float(rank + 1), dtype=np.float32))
    dist.all_reduce(t, op=dist.ReduceOp.AVG)
    np.testing.assert_allclose(t.numpy(), np.full(4, 1.5))
    # a non-contiguous view and float16 are staged through a copy and written back
    base = np.zeros((3, 4), dtype=np.float32) + rank + 1
    view = tm.Tensor(base[:, ::2], device="cpu")  # shares base's memory: a host check
    dist.all_reduce(view)
    np.testing.assert_array_equal(base[:, ::2], 3.0)
    np.testing.assert_array_equal(base[:, 1::2], rank + 1)
    half = tm.tensor(np.full(3, rank + 0.5, dtype=np.float16))
    dist.all_reduce(half)
    assert half.dtype == np.float16
    np.testing.assert_array_equal(half.numpy(), 2.0)
    ints = tm.tensor(np.array([rank, 10 * rank]), dtype="int64")
    dist.all_reduce(ints)
    np.testing.assert_array_equal(ints.numpy(), [1, 10])

    b = tm.Tensor(np.full((2, 2), 7.0 if rank == 1 else -1.0, dtype=np.float32))
    dist.broadcast(b, src=1)
    np.testing.assert_array_equal(b.numpy(), 7.0)

    gathered = [tm.Tensor(np.zeros(3, dtype=np.float32)) for _ in range(world)]
    dist.all_gather(gathered, tm.Tensor(np.array([rank, rank + 1, rank + 2], dtype=np.float32)))
    for r, g in enumerate(gathered):
        np.testing.assert_array_equal(g.numpy(), [r, r + 1, r + 2])
    objects: list = [None] * world
    dist.all_gather_object(objects, {"rank": rank})
    assert objects == [{"rank": r} for r in range(world)], objects
    dist.barrier()
    ok("collectives")


class TwoBranch(nn.Module):
    """Two Sequential stacks and a parameter that the loss never uses."""

    def __init__(self) -> None:
        self.body = nn.Sequential(nn.Linear(12, 16), nn.Tanh(), nn.Linear(16, 8), nn.ReLU())
        self.head = nn.Linear(8, 4)
        self.unused = nn.Parameter(np.ones(5, dtype=np.float32))

    def forward(self, x):
        return self.head(self.body(x))


def make_model(kind: str, seed: int) -> nn.Module:
    tm.manual_seed(seed)
    if kind == "sequential":
        return nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 4))
    return TwoBranch()


def make_optimizer(name: str, params) -> tm.optim.Optimizer:
    if name == "sgd":
        return tm.optim.SGD(params, lr=0.1, momentum=0.9)
    return tm.optim.Adam(params, lr=0.01)


def global_batches(steps: int = 6, batch: int = 16):
    rng = np.random.default_rng(123)
    for _ in range(steps):
        x = rng.standard_normal((batch, 12)).astype(np.float32)
        y = rng.integers(0, 4, size=batch)
        yield x, y


def train(model, optimizer, shard, sync=None) -> None:
    for x, y in global_batches():
        index = list(shard(len(x)))
        loss = F.cross_entropy(model(tm.Tensor(x[index])), y[index])
        optimizer.zero_grad()
        loss.backward()
        if sync is not None:
            sync()
        optimizer.step()


def check_ddp_matches_single() -> None:
    """DDP on each rank's half of every batch ends where one process on whole batches does."""
    rank, world = dist.get_rank(), dist.get_world_size()
    for kind in ("sequential", "twobranch"):
        for opt_name in ("sgd", "adam"):
            for bucket_cap_mb in (25, 0.0005):  # one bucket, or one per parameter or two
                reference = make_model(kind, seed=0)
                train(reference, make_optimizer(opt_name, reference.parameters()), range)
                model = make_model(kind, seed=0)
                ddp = DDP(model, bucket_cap_mb=bucket_cap_mb, find_unused_parameters=True)
                if bucket_cap_mb < 1:
                    assert len(ddp._reducer.buckets) > 1, len(ddp._reducer.buckets)
                else:
                    assert len(ddp._reducer.buckets) == 1

                def shard(n):
                    return DistributedSampler(range(n), world, rank, shuffle=False)

                train(ddp, make_optimizer(opt_name, ddp.parameters()), shard, ddp.sync_gradients)
                ref_state, got = state(reference), state(model)
                for name, value in ref_state.items():
                    np.testing.assert_allclose(
                        got[name], value, rtol=0, atol=1e-5, err_msg=f"{kind} {opt_name} {name}"
                    )
                if kind == "twobranch":
                    assert model.unused.grad is None, "a parameter no rank used got a gradient"
                assert list(ddp.state_dict()) == ["module." + k for k in got]
    ok("ddp_matches_single")


def check_ddp_hooks() -> None:
    """With engine hooks, backward alone averages (no sync_gradients call)."""
    if not hasattr(tm.Tensor, "register_post_accumulate_grad_hook"):
        rank = dist.get_rank()
        print(f"SKIP ddp_hooks rank {rank}: no Tensor.register_post_accumulate_grad_hook yet")
        return
    rank, world = dist.get_rank(), dist.get_world_size()
    reference = make_model("sequential", seed=0)
    train(reference, make_optimizer("sgd", reference.parameters()), range)
    model = make_model("sequential", seed=0)
    ddp = DDP(model)
    assert ddp._hooks

    def shard(n):
        return range(rank, n, world)

    train(ddp, make_optimizer("sgd", ddp.parameters()), shard)
    for name, value in state(reference).items():
        np.testing.assert_allclose(state(model)[name], value, rtol=0, atol=1e-5)
    # a parameter outside the loss, without find_unused_parameters: the next forward says so
    ddp = DDP(make_model("twobranch", seed=0))
    x, y = next(global_batches())
    F.cross_entropy(ddp(tm.Tensor(x)), y).backward()
    try:
        ddp(tm.Tensor(x))
    except RuntimeError as e:
        assert "'unused'" in str(e) and "find_unused_parameters=True" in str(e), e
    else:
        raise AssertionError("an unfinished reduction went unnoticed")
    ok("ddp_hooks")


def check_ddp_no_sync() -> None:
    """Gradients accumulated under no_sync are averaged by the next backward outside it."""
    rank, world = dist.get_rank(), dist.get_world_size()
    reference = make_model("twobranch", seed=0)
    ref_opt = make_optimizer("sgd", reference.parameters())
    model = make_model("twobranch", seed=0)
    ddp = DDP(model, find_unused_parameters=True)
    opt = make_optimizer("sgd", ddp.parameters())
    batches = list(global_batches(steps=6))
    for first, second in zip(batches[::2], batches[1::2], strict=True):
        ref_opt.zero_grad()
        for x, y in (first, second):
            F.cross_entropy(reference(tm.Tensor(x)), y).backward()
        ref_opt.step()
        opt.zero_grad()
        with ddp.no_sync():
            x, y = first
            F.cross_entropy(ddp(tm.Tensor(x[rank::world])), y[rank::world]).backward()
            ddp.sync_gradients()  # a no-op inside no_sync
        x, y = second
        F.cross_entropy(ddp(tm.Tensor(x[rank::world])), y[rank::world]).backward()
        ddp.sync_gradients()
        opt.step()
    for name, value in state(reference).items():
        np.testing.assert_allclose(state(model)[name], value, rtol=0, atol=1e-5)
    ok("ddp_no_sync")


def check_ddp_different_init() -> None:
    """Ranks that start from different weights hold rank 0's after construction and stay equal."""
    rank = dist.get_rank()
    model = make_model("sequential", seed=100 + rank)
    ddp = DDP(model)
    opt = make_optimizer("adam", ddp.parameters())
    train(ddp, opt, lambda n: range(rank, n, 2), ddp.sync_gradients)
    mine = np.concatenate([v.ravel() for v in state(model).values()])
    everyone = [tm.Tensor(np.zeros_like(mine)) for _ in range(dist.get_world_size())]
    dist.all_gather(everyone, tm.Tensor(mine))
    for other in everyone[1:]:
        np.testing.assert_array_equal(other.numpy(), everyone[0].numpy())
    rank0_start = make_model("sequential", seed=100)
    assert not np.allclose(state(rank0_start)["0.weight"], state(model)["0.weight"])
    ok("ddp_different_init")


def check_ddp_buffers() -> None:
    """Buffers (BatchNorm's running statistics, an int64 counter) take rank 0's values too."""
    rank = dist.get_rank()
    tm.manual_seed(rank)
    bn = nn.BatchNorm1d(8)
    model = nn.Sequential(nn.Linear(12, 8), bn, nn.ReLU(), nn.Linear(8, 4))
    bn.running_mean._data[...] = rank + 1.0
    bn.num_batches_tracked._data[...] = 5 * rank + 3
    DDP(model)
    np.testing.assert_array_equal(bn.running_mean.numpy(), 1.0)
    assert int(bn.num_batches_tracked.numpy()) == 3
    assert bn.num_batches_tracked.dtype == np.int64
    ok("ddp_buffers")


def check_ddp_mismatch() -> None:
    """A parameter shaped differently on rank 1 is refused at construction, on every rank."""
    rank = dist.get_rank()
    hidden = 32 if rank == 0 else 33
    tm.manual_seed(0)
    model = nn.Sequential(nn.Linear(12, hidden), nn.ReLU(), nn.Linear(hidden, 4))
    try:
        DDP(model)
    except RuntimeError as e:
        print(f"rank {rank} refused: {e}", flush=True)
        ok("ddp_mismatch")
    else:
        raise AssertionError("DDP accepted models of different shapes")


def check_crash() -> None:
    """Rank 1 raises while rank 0 waits in a collective: the job must stop, not hang."""
    if dist.get_rank() == 1:
        raise ValueError("rank 1 fails on purpose")
    dist.all_reduce(tm.Tensor(np.zeros(3, dtype=np.float32)))
    print("rank 0 was not stopped", flush=True)


CHECKS = {
    "collectives": check_collectives,
    "ddp_matches_single": check_ddp_matches_single,
    "ddp_hooks": check_ddp_hooks,
    "ddp_no_sync": check_ddp_no_sync,
    "ddp_different_init": check_ddp_different_init,
    "ddp_buffers": check_ddp_buffers,
    "ddp_mismatch": check_ddp_mismatch,
    "crash": check_crash,
}


def main(names: list[str]) -> None:
    check_uninitialised()
    dist.init_process_group("mpi")
    for name in names or [n for n in CHECKS if n != "crash"]:  # crash ends the job
        CHECKS[name]()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1:])
