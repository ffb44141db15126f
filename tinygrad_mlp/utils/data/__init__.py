"""Data loading shaped like ``torch.utils.data``."""

from .dataloader import DataLoader
from .distributed import DistributedSampler

__all__ = ["DataLoader", "DistributedSampler"]
