"""What the example scripts share: BLAS threads, finding the package, MLPs, metrics and plots.

Import this module before numpy: it sets the number of BLAS threads (--threads, 1 by default),
which OpenBLAS reads once, when numpy first loads it.
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


DEFAULT_THREADS = 1


def threads_from_argv(argv: Sequence[str]) -> int:
    """The value of --threads N (or --threads=N) on the command line, else DEFAULT_THREADS.

    Read before argparse runs, since OpenBLAS takes its thread count once, when numpy loads
    it; a malformed value is left for argparse to refuse."""
    for i, word in enumerate(argv):
        value = None
        if word == "--threads" and i + 1 < len(argv):
            value = argv[i + 1]
        elif word.startswith("--threads="):
            value = word.split("=", 1)[1]
        if value is not None:
            try:
                return max(1, int(value))
            except ValueError:
                return DEFAULT_THREADS
    return DEFAULT_THREADS


# NOTE: the number of BLAS threads can change a float32 result in its last bits (how a product's
# sums are split), and over a training run that moves the final accuracy by a tenth of a
# percent. So the examples never take it from the machine (its core count or its load): it is
# --threads N, 1 by default, set here for OpenBLAS, OpenMP and MKL before numpy loads. The
# same command then prints the same numbers on a busy machine and an idle one.
THREADS = threads_from_argv(sys.argv[1:])
if "numpy" not in sys.modules:  # imported by a script, not by a process that has numpy already
    for _name in BLAS_THREAD_VARIABLES:
        os.environ[_name] = str(THREADS)

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
    "BLAS runs on --threads threads (1 unless given), whatever the machine's cores or load, so\n"
    "the same command prints the same numbers everywhere. The option sets OPENBLAS_NUM_THREADS,\n"
    "OMP_NUM_THREADS and MKL_NUM_THREADS, replacing values in the environment."
)


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    """--threads N: the BLAS thread count (applied when the script starts, before numpy)."""
    parser.add_argument(
        "--threads",
        type=_positive_int,
        default=DEFAULT_THREADS,
        metavar="N",
        help="BLAS threads; the result can differ in its last digits with another count",
    )


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


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


def load_mnist(data_dir: str | None) -> tuple[Any, Any, Any, Any]:
    """tm.mnist(data_dir), or a SystemExit whose message tells a command-line user what to do.

    With a folder (--data-dir, or the shared one) nothing is downloaded; with None the files
    come from the library's cache, downloaded when missing."""
    if data_dir is None:
        try:
            return tm.mnist(None, download=True)
        except (OSError, ValueError) as e:  # no network, no mirror, a damaged cached file
            message = f"MNIST: {e}; or pass --data-dir DIR, a folder with the files"
            raise SystemExit(message) from None
    folder = Path(data_dir).expanduser()
    files = ", ".join(tm.datasets.MNIST_FILES)
    if not folder.is_dir():
        raise SystemExit(
            f"--data-dir {folder}: no such folder; give the folder that holds the four MNIST "
            f"files ({files}), or leave --data-dir out to use ../shared/datasets/mnist or the "
            "library's cache (downloaded on first use)"
        )
    missing = [name for name in tm.datasets.MNIST_FILES if not (folder / name).is_file()]
    if missing:
        raise SystemExit(
            f"--data-dir {folder} lacks {', '.join(missing)}; copy the missing files there "
            "(--data-dir never downloads), or leave --data-dir out to use ../shared/datasets/mnist "
            "or the library's cache (downloaded on first use)"
        )
    try:
        return tm.mnist(folder, download=False)
    except (OSError, ValueError) as e:
        raise SystemExit(f"--data-dir {folder}: {e}") from None


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
