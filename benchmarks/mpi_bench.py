"""Time gradient averaging over MPI and an MNIST epoch on 1 and 2 processes.

    python benchmarks/mpi_bench.py              # everything; prints the markdown tables
    python benchmarks/mpi_bench.py --quick      # fewer repetitions

The allreduce part runs itself under ``mpiexec -n 2`` (``--allreduce``): for each MNIST model it
times (a) one Allreduce of a flat float32 array as long as all the gradients, and (b) what
DistributedDataParallel does per step: pack the gradients into the bucket, Allreduce, divide,
unpack. The epoch part runs ``examples/mnist.py --epochs 1`` with one process, and with two
under ``mpiexec -n 2 ... --distributed``, and reads the training seconds from ``--metrics``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ARCHS = ("784-128-128-10", "784-256-256-10")


def mpiexec() -> str:
    here = Path(sys.executable).parent / "mpiexec"
    found = str(here) if here.exists() else shutil.which("mpiexec")
    if found is None:
        raise SystemExit('mpiexec not found; pip install -e ".[mpi]"')
    return found


def allreduce_worker(repeats: int) -> None:
    """Under mpiexec: time the allreduce of each model's gradients; rank 0 prints JSON."""
    import numpy as np

    import tinygrad_mlp as tm
    from tinygrad_mlp import distributed as dist
    from tinygrad_mlp.nn.parallel import DistributedDataParallel

    dist.init_process_group("mpi")
    comm = dist._current().comm
    from mpi4py import MPI

    results = {}
    for arch in ARCHS:
        sizes = [int(s) for s in arch.split("-")]
        layers = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            layers.append(tm.nn.Linear(a, b))
            if i < len(sizes) - 2:
                layers.append(tm.nn.ReLU())
        model = tm.nn.Sequential(*layers)
        ddp = DistributedDataParallel(model)
        for p in model.parameters():
            p.grad = tm.Tensor(np.ones(p.shape, dtype=np.float32))
        n = sum(p._data.size for p in model.parameters())
        flat = np.ones(n, dtype=np.float32)

        def timed(fn):
            for _ in range(10):
                fn()
            samples = []
            for _ in range(repeats):
                comm.Barrier()
                start = time.perf_counter()
                fn()
                samples.append(time.perf_counter() - start)
            worst = comm.allreduce(statistics.median(samples), op=MPI.MAX)
            return worst

        def raw(flat=flat):
            comm.Allreduce(MPI.IN_PLACE, flat)

        def reducer(ddp=ddp):
            ddp._reducer.sync()

        results[arch] = {
            "parameters": n,
            "megabytes": n * 4 / 1e6,
            "raw_allreduce_ms": timed(raw) * 1e3,
            "ddp_sync_ms": timed(reducer) * 1e3,
            "buckets": len(ddp._reducer.buckets),
        }
    if dist.get_rank() == 0:
        print(json.dumps(results))
    dist.destroy_process_group()


def epoch_seconds(arch: str, ranks: int, repeats: int) -> list[float]:
    """Training seconds of one MNIST epoch (batch 128), one run per repetition."""
    out = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            metrics = Path(tmp) / "m.json"
            args = [sys.executable, str(ROOT / "examples" / "mnist.py"), "--epochs", "1"]
            args += ["--arch", arch, "--quiet", "--metrics", str(metrics)]
            if ranks > 1:
                args = [mpiexec(), "-n", str(ranks), *args, "--distributed"]
            env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
            subprocess.run(args, check=True, capture_output=True, env=env, timeout=600)
            out.append(json.loads(metrics.read_text())["train_seconds"])
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--allreduce", action="store_true", help="(internal) the mpiexec worker")
    p.add_argument("--quick", action="store_true", help="fewer repetitions")
    p.add_argument("--repeats", type=int, default=None, help="MNIST epochs per configuration")
    args = p.parse_args()
    repeats = args.repeats or (1 if args.quick else 3)
    if args.allreduce:
        allreduce_worker(50 if args.quick else 300)
        return
    worker = [mpiexec(), "-n", "2", sys.executable, __file__, "--allreduce"]
    if args.quick:
        worker.append("--quick")
    done = subprocess.run(worker, check=True, capture_output=True, text=True, timeout=600)
    timings = json.loads(done.stdout.strip().splitlines()[-1])
    print(
        "| model | parameters | MB (float32) | buckets | one Allreduce "
        "| DDP sync (pack, reduce, unpack) |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for arch, t in timings.items():
        print(
            f"| {arch} | {t['parameters']:,} | {t['megabytes']:.2f} | {t['buckets']} | "
            f"{t['raw_allreduce_ms']:.3f} ms | {t['ddp_sync_ms']:.3f} ms |"
        )
    print()
    print("| model | 1 process | 2 processes (--distributed) | speed-up |")
    print("| --- | --- | --- | --- |")
    for arch in ARCHS:
        one = epoch_seconds(arch, 1, repeats)
        two = epoch_seconds(arch, 2, repeats)
        m1, m2 = statistics.median(one), statistics.median(two)
        spread1 = ", ".join(f"{s:.2f}" for s in one)
        spread2 = ", ".join(f"{s:.2f}" for s in two)
        print(f"| {arch} | {m1:.2f} s ({spread1}) | {m2:.2f} s ({spread2}) | {m1 / m2:.2f} |")


if __name__ == "__main__":
    main()
