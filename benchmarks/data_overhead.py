"""What iterating MNIST through utils.data costs, against slicing the arrays by hand.

One training epoch (784-128-128-10 ReLU MLP, SGD with momentum, batch 128, shuffled) is timed
two ways that feed the same batches to the same model:

- by hand: one permutation per epoch, then ``x[idx]``, ``y[idx]`` and ``tm.from_numpy`` per batch;
- ``DataLoader(TensorDataset(x, y), batch_size=128, shuffle=True)``.

The two take turns, epoch by epoch, so that a busy machine slows both alike; the ratio of each
pair is reported (median and range), in process CPU time and in wall time. The loop without
training (just the batches) is timed too, per batch.

    python benchmarks/data_overhead.py [--pairs 5] [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# one BLAS thread unless told otherwise: spinning OpenBLAS threads on a busy machine make the
# epochs' times swing far more than the loader could move them
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import tinygrad_mlp as tm  # noqa: E402
from tinygrad_mlp import nn  # noqa: E402
from tinygrad_mlp.utils.data import DataLoader, TensorDataset  # noqa: E402

BATCH = 128


def by_hand(x, y, rng):
    """Batches as earlier versions made them: a permutation, then one fancy index each."""
    order = rng.permutation(len(x))
    for start in range(0, len(x), BATCH):
        idx = order[start : start + BATCH]
        yield tm.from_numpy(x[idx]), tm.from_numpy(y[idx])


def epoch(model, optimizer, criterion, batches) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one training pass over ``batches``."""
    cpu, wall = time.process_time(), time.perf_counter()
    for xb, yb in batches:
        loss = criterion(model(xb), yb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return time.process_time() - cpu, time.perf_counter() - wall


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--pairs", type=int, default=5, help="epochs of each kind, taken in turns")
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "datasets" / "mnist"))
    args = p.parse_args()
    x, y, _, _ = tm.mnist(args.data_dir, download=False)
    x = x.reshape(len(x), -1).astype(np.float32) / 255
    y = y.astype(np.int64)
    dataset = TensorDataset(tm.from_numpy(x), tm.from_numpy(y))
    loader = DataLoader(dataset, batch_size=BATCH, shuffle=True, generator=0)
    tm.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                          nn.Linear(128, 10))  # fmt: skip
    optimizer = tm.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    criterion = nn.CrossEntropyLoss()
    rng = np.random.default_rng(0)

    # the batches alone: per-batch cost of each way, no training
    n_batches = len(loader)
    per_batch = {}
    for name, make in (("by hand", lambda: by_hand(x, y, rng)), ("DataLoader", lambda: loader)):
        samples = []
        for _ in range(5):
            start = time.process_time()
            for _batch in make():
                pass
            samples.append((time.process_time() - start) / n_batches * 1e6)
        per_batch[name] = statistics.median(samples)
        print(f"batches only, {name:>10}: {per_batch[name]:6.1f} us CPU per batch of {BATCH}")

    epoch(model, optimizer, criterion, loader)  # warm up
    cpu_ratios, wall_ratios, hand_cpu, loader_cpu = [], [], [], []
    for i in range(args.pairs):
        runs = [("hand", lambda: by_hand(x, y, rng)), ("loader", lambda: loader)]
        if i % 2:
            runs.reverse()
        result = {name: epoch(model, optimizer, criterion, make()) for name, make in runs}
        cpu_ratios.append(result["loader"][0] / result["hand"][0])
        wall_ratios.append(result["loader"][1] / result["hand"][1])
        hand_cpu.append(result["hand"][0])
        loader_cpu.append(result["loader"][0])
        print(
            f"pair {i + 1}: by hand {result['hand'][0]:.2f} s CPU ({result['hand'][1]:.2f} s "
            f"wall), DataLoader {result['loader'][0]:.2f} s CPU ({result['loader'][1]:.2f} s "
            f"wall): ratio {cpu_ratios[-1]:.3f} CPU, {wall_ratios[-1]:.3f} wall"
        )
    print(
        f"epoch with DataLoader / by hand, {args.pairs} pairs: CPU median "
        f"{statistics.median(cpu_ratios):.3f} (range {min(cpu_ratios):.3f}-{max(cpu_ratios):.3f})"
        f", wall median {statistics.median(wall_ratios):.3f} "
        f"(range {min(wall_ratios):.3f}-{max(wall_ratios):.3f}); median epoch CPU by hand "
        f"{statistics.median(hand_cpu):.2f} s, DataLoader {statistics.median(loader_cpu):.2f} s"
    )
    extra = (per_batch["DataLoader"] - per_batch["by hand"]) * n_batches / 1e6
    print(
        f"the loader's own extra cost: {extra * 1e3:.1f} ms CPU per epoch of {n_batches} batches, "
        f"{extra / statistics.median(hand_cpu):.2%} of the median epoch by hand"
    )


if __name__ == "__main__":
    main()
