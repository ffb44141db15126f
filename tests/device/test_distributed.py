"""tinygrad_mlp.distributed, DistributedDataParallel and DistributedSampler.

The MPI checks run as ``mpiexec -n 2 python tests/mpi_scripts/run.py CHECK`` under a timeout,
so a hang fails instead of stalling the suite; they skip without mpi4py or mpiexec. The sampler
is pure Python and is tested here directly.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_mlp as tm
from tinygrad_mlp import distributed as dist
from tinygrad_mlp.utils.data import DistributedSampler

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "mpi_scripts" / "run.py"
TIMEOUT = 120


def _mpiexec() -> str | None:
    """mpiexec next to this Python (the mpich wheel puts it there), else the one on PATH."""
    here = Path(sys.executable).parent / "mpiexec"
    return str(here) if here.exists() else shutil.which("mpiexec")


MPIEXEC = _mpiexec()
needs_mpi = pytest.mark.skipif(
    importlib.util.find_spec("mpi4py") is None or MPIEXEC is None,
    reason='needs mpi4py and mpiexec: pip install -e ".[mpi]"',
)


def mpirun(*args: str, n: int = 2, timeout: int = TIMEOUT) -> subprocess.CompletedProcess:
    """Run ``python args...`` on n ranks; a job that outlives the timeout fails the test."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [MPIEXEC, "-n", str(n), sys.executable, *args]
    try:
        return subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{' '.join(cmd)} still running after {timeout} s (a hang?): {e.stdout}")


def run_check(name: str) -> str:
    result = mpirun(str(SCRIPT), name)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    if f"SKIP {name}" in output:  # the ranks' lines may interleave: keep the first message
        pytest.skip(output.split("SKIP ")[1].split("\n")[0])
    for rank in (0, 1):
        assert f"OK {name} rank {rank}" in output, output
    return output


# ---------------------------------------------------------------- without MPI


def test_collectives_before_init_raise():
    assert not dist.is_initialized()
    for call in (dist.get_rank, dist.get_world_size, dist.barrier):
        with pytest.raises(RuntimeError, match="init_process_group"):
            call()
    with pytest.raises(RuntimeError, match="init_process_group"):
        dist.all_reduce(tm.Tensor([1.0]))
    with pytest.raises(RuntimeError, match="init_process_group"):
        tm.nn.parallel.DistributedDataParallel(tm.nn.Linear(2, 2))


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="mpi"):
        dist.init_process_group("nccl")


def test_sampler_needs_a_group_or_explicit_ranks():
    with pytest.raises(RuntimeError, match="init_process_group"):
        DistributedSampler(range(10))
    with pytest.raises(ValueError, match="rank"):
        DistributedSampler(range(10), num_replicas=2, rank=2)


@given(
    n=st.integers(0, 300),
    replicas=st.integers(1, 9),
    shuffle=st.booleans(),
    drop_last=st.booleans(),
    seed=st.integers(0, 2**16),
    epoch=st.integers(0, 5),
)
def test_sampler_shards_are_disjoint_complete_and_padded_as_pytorch(
    n, replicas, shuffle, drop_last, seed, epoch
):
    shards = []
    for rank in range(replicas):
        s = DistributedSampler(
            range(n), replicas, rank, shuffle=shuffle, seed=seed, drop_last=drop_last
        )
        s.set_epoch(epoch)
        shards.append(list(s))
        assert len(shards[-1]) == len(s)
    lengths = {len(s) for s in shards}
    assert len(lengths) == 1
    per_rank = lengths.pop()
    # interleave back: position i * replicas + r holds shard r's i-th index
    full = [shards[r][i] for i in range(per_rank) for r in range(replicas)]
    if drop_last:
        assert per_rank == n // replicas
        assert len(set(full)) == len(full)  # disjoint
    else:
        assert per_rank == -(-n // replicas)
        head, pad = full[:n], full[n:]
        assert sorted(head) == list(range(n))  # the whole data set, each index once
        assert pad == (head * (len(pad) // max(n, 1) + 1))[: len(pad)]  # repeated from the start
    if not shuffle:
        assert full[: min(n, len(full))] == list(range(min(n, len(full))))


def test_sampler_is_the_same_on_every_rank_and_changes_with_the_epoch():
    a = DistributedSampler(range(100), 2, 0, seed=3)
    b = DistributedSampler(range(100), 2, 0, seed=3)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first and sorted(a) != sorted(range(0, 100, 2))


@pytest.mark.parametrize("n", [0, 1, 5, 10, 11, 17])
@pytest.mark.parametrize("replicas", [1, 2, 3, 4])
@pytest.mark.parametrize("drop_last", [False, True])
def test_sampler_without_shuffle_equals_torch(n, replicas, drop_last):
    torch_data = pytest.importorskip("torch.utils.data")
    for rank in range(replicas):
        ours = DistributedSampler(range(n), replicas, rank, shuffle=False, drop_last=drop_last)
        theirs = torch_data.DistributedSampler(
            range(n), replicas, rank, shuffle=False, drop_last=drop_last
        )
        assert list(ours) == list(theirs) and len(ours) == len(theirs)


# ---------------------------------------------------------------- on two ranks


@needs_mpi
def test_all_reduce_broadcast_all_gather_values():
    run_check("collectives")


@needs_mpi
def test_ddp_matches_one_process_on_whole_batches():
    run_check("ddp_matches_single")


@needs_mpi
def test_ddp_averages_in_backward_through_hooks():
    run_check("ddp_hooks")


@needs_mpi
def test_ddp_no_sync_accumulates_then_averages():
    run_check("ddp_no_sync")


@needs_mpi
def test_ddp_ranks_from_different_weights_end_equal():
    run_check("ddp_different_init")


@needs_mpi
def test_ddp_broadcasts_buffers_from_rank_0():
    run_check("ddp_buffers")


@needs_mpi
def test_ddp_parameter_shape_mismatch_is_refused_on_every_rank():
    output = run_check("ddp_mismatch")
    for rank in (0, 1):
        assert f"rank {rank} refused: DistributedDataParallel: parameter '0.weight'" in output
    assert "rank 0 has shape (32, 12)" in output and "rank 1 has shape (33, 12)" in output


@needs_mpi
def test_a_failing_rank_stops_the_job_with_its_error():
    result = mpirun(str(SCRIPT), "crash", timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "ValueError: rank 1 fails on purpose" in output
    assert "rank 0 was not stopped" not in output


MNIST_DIR = ROOT.parent / "shared" / "datasets" / "mnist"


@pytest.mark.slow
@needs_mpi
@pytest.mark.skipif(
    not all((MNIST_DIR / name).is_file() for name in tm.datasets.MNIST_FILES),
    reason=f"the MNIST files are not in {MNIST_DIR}",
)
def test_mnist_example_distributed_matches_one_process(tmp_path):
    common = ["--epochs", "1", "--train-limit", "4096", "--arch", "784-64-10", "--quiet"]
    mnist = str(ROOT / "examples" / "mnist.py")
    one = mpirun(mnist, *common, "--metrics", str(tmp_path / "one.json"), n=1)
    two = mpirun(mnist, "--distributed", *common, "--metrics", str(tmp_path / "two.json"))
    assert one.returncode == 0, one.stdout + one.stderr
    assert two.returncode == 0, two.stdout + two.stderr
    assert two.stdout.count("test accuracy") == 1  # rank 0 alone prints
    a = json.loads((tmp_path / "one.json").read_text())
    b = json.loads((tmp_path / "two.json").read_text())
    assert abs(a["test_accuracy"] - b["test_accuracy"]) <= 0.002, (a, b)
    assert abs(a["final_loss"] - b["final_loss"]) <= 1e-4, (a, b)
    assert b["test_accuracy"] > 0.7
