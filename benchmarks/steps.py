"""Run N MNIST-shaped training steps, by hand in numpy or through tinygrad_mlp, for counting.

Meant to run under ``valgrind --tool=callgrind`` (see ``count_instructions.sh``): instruction
counts repeat from run to run where wall time on a shared machine does not.

    python benchmarks/steps.py hand|tiny|module STEPS [--batch 128] [--hidden 128]

``tiny`` is ``nn.Sequential`` (one fused node per step); ``module`` is a user's own
``nn.Module`` calling its layers one by one, as bench.py's "tinygrad_mlp module".
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    """Parse the arguments and run the steps."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["hand", "tiny", "module"])
    parser.add_argument("steps", type=int)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=128)
    args = parser.parse_args()
    run(args.mode, make_data(args.batch, args.hidden), args.steps)


def make_data(batch: int, hidden: int) -> tuple:
    """(x, y, initial weights) of the 784-hidden-hidden-10 network, seeded."""
    rng = np.random.default_rng(0)
    b, d, h, c = batch, 784, hidden, 10
    x = rng.random((b, d), dtype=np.float32)
    y = rng.integers(0, c, b)
    shapes = [(h, d), (h,), (h, h), (h,), (c, h), (c,)]
    init = [rng.standard_normal(s).astype(np.float32) * 0.05 for s in shapes]
    return x, y, init


def run(mode: str, data: tuple, steps: int) -> None:
    """``steps`` training steps of ``mode`` (hand, tiny or module) from ``data``."""
    x, y, init = data
    if mode == "hand":
        hand(x, y, init, steps)
    else:
        tiny(x, y, init, steps, module=mode == "module")


def hand(x, y, init, steps: int, lr: float = 0.1) -> None:
    """The numpy-by-hand step of bench.py."""
    w1, b1, w2, b2, w3, b3 = [p.copy() for p in init]
    rows = np.arange(len(x))
    for _ in range(steps):
        z1 = x @ w1.T
        z1 += b1
        a1 = np.maximum(z1, 0, out=z1)
        z2 = a1 @ w2.T
        z2 += b2
        a2 = np.maximum(z2, 0, out=z2)
        z3 = a2 @ w3.T
        z3 += b3
        z3 -= z3.max(axis=1, keepdims=True)
        p = np.exp(z3)
        s = p.sum(axis=1, keepdims=True)
        _ = (np.log(s[:, 0]) - z3[rows, y]).mean()
        p /= s
        p[rows, y] -= 1
        p /= len(x)
        dw3, db3, da2 = p.T @ a2, p.sum(axis=0), p @ w3
        da2 *= a2 > 0
        dw2, db2, da1 = da2.T @ a1, da2.sum(axis=0), da2 @ w2
        da1 *= a1 > 0
        dw1, db1 = da1.T @ x, da1.sum(axis=0)
        for param, grad in ((w1, dw1), (b1, db1), (w2, dw2), (b2, db2), (w3, dw3), (b3, db3)):
            param -= lr * grad


def tiny(x, y, init, steps: int, lr: float = 0.1, module: bool = False) -> None:
    """The same step through tinygrad_mlp's public API."""
    import tinygrad_mlp as tm

    nn = tm.nn
    d, h, c = init[0].shape[1], init[0].shape[0], init[4].shape[0]

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1, self.fc2, self.fc3 = nn.Linear(d, h), nn.Linear(h, h), nn.Linear(h, c)

        def forward(self, x):
            return self.fc3(self.fc2(self.fc1(x).relu()).relu())

    if module:
        model = Net()
    else:
        model = nn.Sequential(
            nn.Linear(d, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, c)
        )
    for param, value in zip(model.parameters(), init, strict=True):
        param.data[...] = value
    opt = tm.optim.SGD(model.parameters(), lr=lr)
    for _ in range(steps):
        loss = tm.functional.cross_entropy(model(tm.Tensor(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()


if __name__ == "__main__":
    main()
