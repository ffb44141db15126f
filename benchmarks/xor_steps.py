"""Run N training steps of the XOR network (2-8-1, tanh then sigmoid, binary cross-entropy, SGD)
through tinygrad_mlp, for counting instructions per step under valgrind, where Python overhead
is everything:

    bash benchmarks/count_instructions.sh --xor        # or by hand:
    valgrind --tool=callgrind --callgrind-out-file=/dev/null python benchmarks/xor_steps.py 50 seq

``seq`` builds the model as nn.Sequential (one fused mlp node); ``ops`` calls the layers and the
activations one by one (one node per op).
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tinygrad_mlp as tm  # noqa: E402
from tinygrad_mlp import nn  # noqa: E402


def main() -> None:
    """Run the steps named on the command line."""
    steps, kind = int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "seq"
    tm.manual_seed(0)
    x = tm.Tensor(np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32))
    y = np.array([[0], [1], [1], [0]], np.float32)
    l1, l2 = nn.Linear(2, 8), nn.Linear(8, 1)
    if kind == "seq":
        model = nn.Sequential(l1, nn.Tanh(), l2, nn.Sigmoid())
        forward = model
    else:
        model = nn.Sequential(l1, l2)

        def forward(x):
            return l2(l1(x).tanh()).sigmoid()

    opt = tm.optim.SGD(model.parameters(), lr=1.0)
    gc.collect()  # the steps start from the same collector state in every run
    for _ in range(steps):
        loss = tm.nn.functional.binary_cross_entropy(forward(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()


if __name__ == "__main__":
    main()
