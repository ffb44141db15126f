"""One training epoch of the MNIST CNN (examples/mnist_cnn.py's network) over a fixed subset of
MNIST: tinygrad_mlp against PyTorch CPU eager, each in its own process on one thread.

    python benchmarks/cnn_bench.py                      # 2,048 images, 5 repetitions
    python benchmarks/cnn_bench.py --images 640 --repeats 1 --json out.json

Every repetition starts one process per contender, in turns (the order alternates), with
OPENBLAS_NUM_THREADS, OMP_NUM_THREADS and MKL_NUM_THREADS set to 1 and OPENBLAS_CORETYPE and
OPENBLAS_L2_SIZE removed, so that each library picks its own kernels for this CPU. A process
loads the images, builds the network from the same initial weights (numpy, seeded), runs two
untimed steps, then times one epoch (Adam lr 0.001, batch 64, dropout on, as the example trains)
and prints its time (wall clock and CPU time of the process), its losses and the BLAS that ran
(threadpoolctl, when installed). The ratio is the median over the repetitions of tinygrad_mlp's
wall-clock time over PyTorch's in the same repetition; the same ratio of CPU times is printed
beside it, as it varies less when other jobs share the machine. As a guard, both start from
the same loss (eval mode, same weights).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CONTENDERS = ("tinygrad_mlp", "pytorch")
TARGET = 1.0  # tinygrad_mlp / PyTorch, CNN epoch time
BATCH = 64
CHANNELS = (16, 32)
BATCH_NORM = False  # the example's default network; True: nn.BatchNorm2d after each conv
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
UNSET_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def _images(data_dir: str | None, n: int) -> tuple[Any, Any, str]:
    """The first n MNIST training images (normalised, (n, 1, 28, 28)) and labels, or seeded
    random ones when the files are not there."""
    import numpy as np

    folder = Path(data_dir) if data_dir else ROOT.parent / "shared" / "datasets" / "mnist"
    if folder.is_dir():
        sys.path.insert(0, str(ROOT))
        from tinygrad_mlp.datasets import mnist

        x, y, _, _ = mnist(str(folder), download=False)
        x = ((x[:n].reshape(-1, 1, 28, 28).astype(np.float32) / 255 - 0.1307) / 0.3081).astype(
            np.float32
        )
        return x, y[:n].astype(np.int64), f"MNIST from {folder}"
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 1, 28, 28)).astype(np.float32)
    return x, rng.integers(0, 10, n).astype(np.int64), "synthetic (no MNIST files)"


def _initial_weights() -> dict[str, Any]:
    """The network's weights in PyTorch's layout, drawn as PyTorch's defaults are (seeded)."""
    import numpy as np

    rng = np.random.default_rng(1)
    shapes = {
        "conv1.weight": (CHANNELS[0], 1, 3, 3),
        "conv1.bias": (CHANNELS[0],),
        "conv2.weight": (CHANNELS[1], CHANNELS[0], 3, 3),
        "conv2.bias": (CHANNELS[1],),
        "fc1.weight": (128, CHANNELS[1] * 49),
        "fc1.bias": (128,),
        "fc2.weight": (10, 128),
        "fc2.bias": (10,),
    }
    fan_in = {"conv1": 9, "conv2": CHANNELS[0] * 9, "fc1": CHANNELS[1] * 49, "fc2": 128}
    return {
        k: rng.uniform(-1, 1, s).astype(np.float32) / np.sqrt(fan_in[k.split(".")[0]])
        for k, s in shapes.items()
    }


def _blas() -> list[str]:
    """The BLAS libraries loaded, with their kernels (threadpoolctl), or why not known."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return ["unknown: threadpoolctl is not installed"]
    return [
        f"{p.get('internal_api')} {p.get('version')} {p.get('architecture', '')} "
        f"threads={p.get('num_threads')} ({Path(p.get('filepath', '?')).name})"
        for p in threadpool_info()
    ]


def run_one(contender: str, images: int, data_dir: str | None) -> dict[str, Any]:
    """Time one epoch of ``contender`` in this process; the result as a dict."""
    import numpy as np

    x, y, source = _images(data_dir, images)
    weights = _initial_weights()
    if contender == "pytorch":
        import torch

        torch.set_num_threads(1)
        torch.manual_seed(0)
        lib, nn, F = torch, torch.nn, torch.nn.functional
        tensor = torch.from_numpy
        version = torch.__version__
    else:
        sys.path.insert(0, str(ROOT))
        import tinygrad_mlp as lib
        from tinygrad_mlp import nn
        from tinygrad_mlp.nn import functional as F

        lib.manual_seed(0)
        tensor = lib.from_numpy
        version = getattr(lib, "__version__", "?")

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(1, CHANNELS[0], 3, 1, padding=1)
            self.conv2 = nn.Conv2d(CHANNELS[0], CHANNELS[1], 3, 1, padding=1)
            norm = nn.BatchNorm2d if BATCH_NORM else (lambda c: nn.Identity())
            self.bn1, self.bn2 = norm(CHANNELS[0]), norm(CHANNELS[1])
            self.dropout1, self.dropout2 = nn.Dropout(0.25), nn.Dropout(0.5)
            self.fc1, self.fc2 = nn.Linear(CHANNELS[1] * 49, 128), nn.Linear(128, 10)

        def forward(self, x: Any) -> Any:
            x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
            x = self.dropout1(F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2))
            x = self.dropout2(F.relu(self.fc1(lib.flatten(x, 1))))
            return F.log_softmax(self.fc2(x), dim=1)

    model = Net()
    # the batch norms keep their defaults (weight 1, bias 0, running mean 0, variance 1)
    model.load_state_dict({k: tensor(v.copy()) for k, v in weights.items()}, strict=False)
    optimizer = lib.optim.Adam(model.parameters(), lr=1e-3)
    model.eval()
    with lib.no_grad():
        start_loss = float(F.nll_loss(model(tensor(x[:256])), tensor(y[:256])).item())
    model.train()
    batches = [
        (tensor(x[i : i + BATCH]), tensor(y[i : i + BATCH])) for i in range(0, len(x), BATCH)
    ]

    def step(xb: Any, yb: Any) -> float:
        optimizer.zero_grad()
        loss = F.nll_loss(model(xb), yb)
        loss.backward()
        optimizer.step()
        return float(loss.item())

    for xb, yb in batches[:2]:  # untimed: first calls allocate and warm the caches
        step(xb, yb)
    begin, cpu_begin = time.perf_counter(), time.process_time()
    losses = [step(xb, yb) for xb, yb in batches]
    seconds = time.perf_counter() - begin
    cpu_seconds = time.process_time() - cpu_begin
    return {
        "contender": contender,
        "version": version,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "steps": len(batches),
        "images": len(x),
        "data": source,
        "start_loss": start_loss,
        "mean_loss": float(np.mean(losses)),
        "numpy": np.__version__,
        "blas": _blas(),
    }


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in UNSET_VARS}
    env.update({k: "1" for k in THREAD_VARS})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def compare(images: int, repeats: int, data_dir: str | None = None) -> dict[str, Any]:
    """Run both contenders ``repeats`` times in separate processes; times, ratio, BLAS."""
    runs: dict[str, list[dict[str, Any]]] = {c: [] for c in CONTENDERS}
    for r in range(repeats):
        order = CONTENDERS if r % 2 == 0 else CONTENDERS[::-1]
        for contender in order:
            cmd = [sys.executable, __file__, "--run", contender, "--images", str(images)]
            if data_dir:
                cmd += ["--data-dir", data_dir]
            proc = subprocess.run(cmd, env=_child_env(), capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"{contender} failed:\n{proc.stdout}{proc.stderr}")
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            runs[contender].append(result)
            print(f"  repetition {r + 1}: {contender} {result['seconds']:.2f} s", flush=True)
    ours = [run["seconds"] for run in runs["tinygrad_mlp"]]
    theirs = [run["seconds"] for run in runs["pytorch"]]
    ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
    cpu = {c: [run["cpu_seconds"] for run in runs[c]] for c in CONTENDERS}
    cpu_ratios = [a / b for a, b in zip(cpu["tinygrad_mlp"], cpu["pytorch"], strict=True)]
    first = {c: runs[c][0] for c in CONTENDERS}
    start = [first[c]["start_loss"] for c in CONTENDERS]
    return {
        "images": images,
        "steps": first["pytorch"]["steps"],
        "data": first["pytorch"]["data"],
        "seconds": {"tinygrad_mlp": ours, "pytorch": theirs},
        "median": {"tinygrad_mlp": statistics.median(ours), "pytorch": statistics.median(theirs)},
        "ratio": statistics.median(ratios),
        "ratios": ratios,
        "cpu_seconds": cpu,
        "cpu_ratio": statistics.median(cpu_ratios),
        "target": TARGET,
        "same_start_loss": abs(start[0] - start[1]) <= 1e-4 * max(1.0, abs(start[1])),
        "start_loss": start,
        "mean_loss": [first[c]["mean_loss"] for c in CONTENDERS],
        "versions": {c: first[c]["version"] for c in CONTENDERS},
        "numpy": first["tinygrad_mlp"]["numpy"],
        "blas": {c: first[c]["blas"] for c in CONTENDERS},
        "unset": list(UNSET_VARS),
    }


def print_result(result: dict[str, Any]) -> None:
    """The comparison as a few lines."""
    med = result["median"]
    print(
        f"CNN epoch ({result['images']} images, {result['steps']} steps of {BATCH}, "
        f"{result['data']}), one thread each:"
    )
    for c in CONTENDERS:
        runs = ", ".join(f"{t:.2f}" for t in result["seconds"][c])
        print(f"  {c:13s} median {med[c]:.2f} s  (runs: {runs})")
    verdict = "PASS" if result["ratio"] <= TARGET else "FAIL"
    print(f"  tinygrad_mlp / pytorch = {result['ratio']:.3f} (target <= {TARGET}): {verdict}")
    ours, theirs = (result["cpu_seconds"][c] for c in CONTENDERS)
    cpu = ", ".join(f"{a:.2f}/{b:.2f}" for a, b in zip(ours, theirs, strict=True))
    print(
        f"  CPU time of the epoch (process time, less sensitive to other jobs): "
        f"ratio {result['cpu_ratio']:.3f} (runs, ours/theirs: {cpu})"
    )
    print(f"  same start loss: {result['same_start_loss']} {result['start_loss']}")
    print(f"  numpy {result['numpy']}; torch {result['versions']['pytorch']}")
    for c in CONTENDERS:
        for line in result["blas"][c]:
            print(f"  BLAS in the {c} process: {line}")


def main(argv: list[str] | None = None) -> int:
    """Compare (default) or, with --run, time one contender and print its result as JSON."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=2048, help="training images in the epoch")
    ap.add_argument("--repeats", type=int, default=5, help="processes per contender")
    ap.add_argument("--data-dir", default=None, help="MNIST folder (default: ../shared/...)")
    ap.add_argument("--json", default=None, metavar="PATH", help="also write the result")
    ap.add_argument("--run", choices=CONTENDERS, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.images < BATCH or args.repeats < 1:
        ap.error(f"--images must be at least {BATCH} and --repeats at least 1")
    if args.run:
        print(json.dumps(run_one(args.run, args.images, args.data_dir)))
        return 0
    result = compare(args.images, args.repeats, args.data_dir)
    print_result(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
