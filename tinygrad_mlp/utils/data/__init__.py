"""Data loading shaped like ``torch.utils.data``."""

from .dataloader import DataLoader

__all__ = ["DataLoader"]
