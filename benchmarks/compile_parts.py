"""Where the time of a compiled MNIST training step goes, part by part.

Times, per step of the MNIST MLP (784-128-128-10, batch 128, float32, plain SGD), in one
process with one BLAS thread: numpy by hand, the GEMM floor (the step's 8 matrix products
alone), the eager and the compiled user's-own-Module step, and then every step of the compiled
plan called on its own (best of the repetitions), grouped by what it does. What is left above
the floor is the work no matrix product does: bias adds, activations, the loss, the update.

    python benchmarks/compile_parts.py [--steps 200] [--repeats 7] [--batch 128]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import mnist_bench as mnist  # noqa: E402
import numpy as np  # noqa: E402

import tinygrad_mlp as tm  # noqa: E402


def per_step(contender, steps: int, batch: int, repeats: int) -> float:
    """Best over ``repeats`` of the time of ``steps`` steps, divided by ``steps`` (seconds)."""
    rows = steps * batch
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        contender.epoch(rows)
        best = min(best, time.perf_counter() - start)
    return best / steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="steps per timed run")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs (the best is kept)")
    parser.add_argument("--batch", type=int, default=mnist.BATCH)
    args = parser.parse_args(argv)
    x, y = mnist.synthetic_mnist(args.steps * args.batch)
    init = mnist.init_weights(mnist.MNIST_SIZES, mnist.SEED)
    contenders = {
        "numpy by hand": mnist.NumpyMnist(np, x, y, batch=args.batch),
        "GEMM floor": mnist.GemmFloor(np, x, y, batch=args.batch),
        "eager module": mnist.TinyMnist(tm, x, y, "cpu", module=True),
        "compiled module": mnist.TinyMnist(tm, x, y, "cpu", module=True, compiled=True),
    }
    if args.batch != mnist.BATCH:
        for name in ("eager module", "compiled module"):
            contenders[name] = None
    times = {}
    for c in contenders.values():
        if c is None:
            continue
        c.reset(init)
        c.epoch(4 * args.batch)  # warm-up: a compiled step traces twice and replays
    for name, c in contenders.items():  # the same order twice: the second run is kept
        if c is not None:
            times[name] = per_step(c, args.steps, args.batch, args.repeats)
    for name, c in contenders.items():
        if c is not None:
            times[name] = min(times[name], per_step(c, args.steps, args.batch, args.repeats))
    print(f"per step of batch {args.batch} (best of {args.repeats} runs of {args.steps} steps):")
    hand = times["numpy by hand"]
    floor = times["GEMM floor"]
    for name, t in times.items():
        print(
            f"  {name:<16} {t * 1e6:8.1f} us   {t / hand:5.3f} x numpy by hand   "
            f"{t / floor:5.3f} x the floor   {(t - floor) * 1e6:7.1f} us above it"
        )
    compiled = contenders["compiled module"]
    if compiled is None:
        return 0
    plans = [
        s
        for e in compiled.step._entries.values()
        for s in e.states.values()
        if type(s).__name__ == "_Plan"
    ]
    if not plans:
        print("the compiled step did not replay: no plan to take apart")
        return 1
    steps = plans[0].parts([tm.Tensor(x[: args.batch]), y[: args.batch]])
    parts: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    for label, _ in steps:
        counts[label] += 1
    # each part timed inside whole replays (a part reads what the parts before it left, so it
    # cannot run on its own): the best of the repeats of the per-step mean
    best: dict[str, float] = {}
    for _ in range(args.repeats):
        spent: dict[str, float] = defaultdict(float)
        for _ in range(args.steps):
            for label, step in steps:
                start = time.perf_counter()
                step()
                spent[label] += time.perf_counter() - start
        for label, t in spent.items():
            best[label] = min(best.get(label, math.inf), t / args.steps)
    parts.update(best)
    total = sum(parts.values())
    print(f"\nthe compiled step's {len(steps)} parts, each called on its own:")
    for label, t in sorted(parts.items(), key=lambda kv: -kv[1]):
        print(f"  {label:<24} x{counts[label]}  {t * 1e6:8.1f} us")
    print(f"  {'sum of the parts':<27} {total * 1e6:8.1f} us")
    print(
        f"\nabove the floor: numpy by hand {(hand - floor) * 1e6:.1f} us, compiled module "
        f"{(times['compiled module'] - floor) * 1e6:.1f} us; a compiled step at 0.90 x numpy by "
        f"hand would leave {(0.9 * hand - floor) * 1e6:.1f} us above the floor"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
