"""Plots for the examples' ``--plot PATH``: checked before training, drawn after it.

``check_plot(path)`` is called right after the arguments are parsed, so that a missing
matplotlib or an unusable path stops the script before any training time is spent;
``plot_curves(history, path)`` draws loss and accuracy per epoch once training is done.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

SUFFIXES = (".png", ".svg", ".pdf", ".jpg", ".jpeg")
MISSING = (
    "--plot needs matplotlib, which is not installed; install the plot extra with: "
    'pip install -e ".[plot]"  (or: pip install matplotlib)'
)


def check_plot(path: str | None) -> None:
    """Raise SystemExit now if ``--plot path`` could not be drawn after training."""
    if not path:
        return
    if importlib.util.find_spec("matplotlib") is None:
        raise SystemExit(MISSING)
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in SUFFIXES:
        raise SystemExit(f"--plot {path}: choose a file ending in one of {', '.join(SUFFIXES)}")
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise SystemExit(f"--plot {path}: it is a directory")
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise SystemExit(f"--plot {path}: {folder} is not a folder")


def pyplot() -> Any:
    """matplotlib.pyplot on the file-only Agg backend, or SystemExit saying what to install."""
    try:
        import matplotlib
    except ImportError:
        raise SystemExit(MISSING) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(history: dict[str, list[float]], path: str) -> None:
    """Training loss (left) and every ``*accuracy`` series (right) per epoch, as an image."""
    plt = pyplot()
    epochs = range(1, len(history["loss"]) + 1)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(epochs, history["loss"], marker="o")
    left.set(xlabel="epoch", ylabel="training loss", title="loss")
    for key, values in history.items():
        if key.endswith("accuracy"):
            right.plot(epochs, values, marker="o", label=key.replace("_", " "))
    right.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    right.legend()
    fig.tight_layout()
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"curves plotted to {path}")
