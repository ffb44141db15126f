"""What the example scripts share: BLAS threads, finding the package, MLPs, metrics and plots.

Import this module before numpy: it chooses the number of BLAS threads, which OpenBLAS reads
once, when numpy first loads it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _oversubscribed() -> bool:
    """Whether more processes want to run than there are cores (1-minute load average)."""
    try:
        return os.getloadavg()[0] >= (os.cpu_count() or 1)
    except (AttributeError, OSError):  # no load average on this platform
        return False


# NOTE: OpenBLAS worker threads spin while they wait for work. On a 2-core machine that other
# programs were also using (load average above the core count), two threads ran a
# (128, 784) @ (784, 256) float32 matmul many times slower than one. On an idle machine the
# threads help, so the examples pin BLAS to one thread only when the machine is oversubscribed,
# and never when one of the variables above is set (e.g. OPENBLAS_NUM_THREADS=2).
BLAS_PINNED = not any(name in os.environ for name in BLAS_THREAD_VARIABLES) and _oversubscribed()
if BLAS_PINNED:
    os.environ["OPENBLAS_NUM_THREADS"] = "1"

if importlib.util.find_spec("tinygrad_mlp") is None:  # a checkout that was not pip-installed
    sys.path.insert(0, str(REPO_ROOT))

import tinygrad_mlp as tm  # noqa: E402
from tinygrad_mlp import nn  # noqa: E402


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """--help that keeps the description's line breaks and shows the defaults that are set."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default in (None, False, argparse.SUPPRESS) or "default" in text:
            return text
        return f"{text} (default: %(default)s)".lstrip()


THREADS_NOTE = (
    "BLAS keeps its own thread count, except on an oversubscribed machine (load average at or "
    "above the core count), where it runs on one thread: there OpenBLAS's spinning threads are "
    "much slower than one. Setting OPENBLAS_NUM_THREADS (or OMP_NUM_THREADS) decides instead."
)
ACTIVATIONS = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}
INITS = ("torch", "he", "normal0.1")


def parse_arch(text: str) -> list[int]:
    """'784-80-80-10' -> [784, 80, 80, 10], refusing anything but two or more positive ints."""
    try:
        sizes = [int(part) for part in text.split("-")]
    except ValueError:
        raise ValueError(
            f"--arch must be layer sizes joined by '-', e.g. 784-80-80-10, got {text!r}"
        ) from None
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"--arch needs two or more positive layer sizes, got {text!r}")
    return sizes


def mlp(sizes: Sequence[int], activation: str = "relu", init: str = "torch") -> nn.Sequential:
    """Linear layers of the given sizes with ``activation`` between them and none at the end.

    ``init``: 'torch' keeps Linear's default U(+-1/sqrt(n_in)); 'he' draws weights from
    N(0, 2/n_in) (randn * sqrt(2/n_in)) and zeroes the biases; 'normal0.1' draws weights from
    N(0, 0.1^2) (randn * 0.1) and zeroes the biases.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; expected one of {list(ACTIVATIONS)}")
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; expected one of {INITS}")
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=False)):
        linear = nn.Linear(n_in, n_out)
        if init == "he":
            nn.init.kaiming_normal_(linear.weight, nonlinearity="relu")
            nn.init.zeros_(linear.bias)
        elif init == "normal0.1":
            nn.init.normal_(linear.weight, 0.0, 0.1)
            nn.init.zeros_(linear.bias)
        layers.append(linear)
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


def default_mnist_dir() -> str | None:
    """../shared/datasets/mnist next to the checkout when it exists, else None (the cache)."""
    shared = REPO_ROOT.parent / "shared" / "datasets" / "mnist"
    return str(shared) if shared.is_dir() else None


def write_metrics(path: str | None, metrics: dict[str, Any]) -> None:
    """Write the results as a JSON object (nothing when path is None)."""
    if path is None:
        return
    target = Path(path)
    if target.parent != Path("."):
        target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"metrics written to {target}")


def pyplot() -> Any:
    """matplotlib.pyplot on the file-only Agg backend, or a SystemExit saying what to install."""
    try:
        import matplotlib
    except ImportError:
        raise SystemExit(
            "--plot needs matplotlib, which is not installed; install the plot extra with: "
            'pip install -e ".[plot]"  (or: pip install matplotlib)'
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def accuracy(
    model: nn.Module, x: Any, y: Any, batch_size: int = 5000, device: str = "cpu"
) -> float:
    """The fraction of rows of x whose arg-max output is y, evaluated without a graph."""
    if len(x) == 0:
        return float("nan")
    model.eval()
    correct = 0
    with tm.no_grad():
        for start in range(0, len(x), batch_size):
            out = model(tm.Tensor(x[start : start + batch_size], device=device))
            labels = tm.tensor(y[start : start + batch_size], device=device)
            correct += (out.argmax(1) == labels).sum().item()
    model.train()
    return correct / len(x)


def binary_accuracy(model: nn.Module, x: Any, y: Any) -> float:
    """The share of rows whose single logit has the sign of its 0/1 label (1: positive)."""
    with tm.no_grad():
        logits = model(tm.Tensor(x)).numpy()[:, 0]
    return float(((logits > 0) == (y[:, 0] > 0.5)).mean())
