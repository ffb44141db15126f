"""Python bytecode instructions per MNIST-shaped training step, and the functions they run in.

Counts with ``sys.settrace`` opcode events over ``steps.py``'s steps (the difference between
runs of 2 and 6 steps, so that building the model cancels out). What a step's Python costs on
a machine depends on the caches: right after a large matrix product each instruction costs
several times what it costs in a tight loop.

    python benchmarks/count_bytecodes.py [hand|tiny|module ...] [--top 12]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import steps  # noqa: E402


def count(mode: str, n: int, data: tuple) -> Counter:
    """Opcodes per function over a run of ``n`` steps of ``mode``."""
    counts: Counter = Counter()

    def tracer(frame, event, arg):
        frame.f_trace_opcodes = True
        if event == "opcode":
            code = frame.f_code
            counts[f"{Path(code.co_filename).name}:{code.co_name}"] += 1
        return tracer

    x, y, init = data
    run = steps.hand if mode == "hand" else steps.tiny
    kwargs = {} if mode == "hand" else {"module": mode == "module"}
    run(x, y, init, 2, **kwargs)  # imports and first-call caches before counting
    sys.settrace(tracer)
    try:
        run(x, y, init, n, **kwargs)
    finally:
        sys.settrace(None)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modes", nargs="*", default=["hand", "tiny", "module"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=8)
    parser.add_argument("--top", type=int, default=12, help="functions listed per mode")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    b, d, h, c = args.batch, 784, args.hidden, 10
    x = rng.random((b, d), dtype=np.float32)
    y = rng.integers(0, c, b)
    shapes = [(h, d), (h,), (h, h), (h,), (c, h), (c,)]
    init = [rng.standard_normal(s).astype(np.float32) * 0.05 for s in shapes]
    for mode in args.modes:
        few, many = count(mode, 2, (x, y, init)), count(mode, 6, (x, y, init))
        per = Counter({k: (many[k] - few.get(k, 0)) / 4 for k in many})
        print(f"{mode}: {sum(per.values()):.0f} bytecode instructions per step")
        for name, n in per.most_common(args.top):
            print(f"  {n:7.0f}  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
