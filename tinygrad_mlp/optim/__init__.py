"""Optimizers with PyTorch's names, arguments and update formulas."""

from .optimizer import SGD, Adam, AdamW, Optimizer

__all__ = ["Optimizer", "SGD", "Adam", "AdamW"]
