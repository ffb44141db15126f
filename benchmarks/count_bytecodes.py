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

    steps.run(mode, data, 2)  # imports and first-call caches before counting
    sys.settrace(tracer)
    try:
        steps.run(mode, data, n)
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
    data = steps.make_data(args.batch, args.hidden)
    for mode in args.modes:
        few, many = count(mode, 2, data), count(mode, 6, data)
        per = Counter({k: (many[k] - few.get(k, 0)) / 4 for k in many})
        print(f"{mode}: {sum(per.values()):.0f} bytecode instructions per step")
        for name, n in per.most_common(args.top):
            print(f"  {n:7.0f}  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
