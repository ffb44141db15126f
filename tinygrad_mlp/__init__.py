"""tinygrad_mlp: a small, fast reverse-mode autodiff framework for neural networks."""

from .backend import manual_seed

__version__ = "0.1.0"
__all__ = ["manual_seed"]
