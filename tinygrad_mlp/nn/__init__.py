"""Neural-network building blocks: Module, layers, initialisers and the functional API."""

from .. import functional
from .modules import (
    Dropout,
    Flatten,
    Identity,
    Linear,
    LogSoftmax,
    Module,
    Parameter,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    Tanh,
)

try:  # initialisers live in nn/init.py
    from . import init
except ImportError:  # pragma: no cover - only while the module is missing
    init = None

__all__ = [
    "Module",
    "Parameter",
    "Linear",
    "Sequential",
    "ReLU",
    "Sigmoid",
    "Tanh",
    "Softmax",
    "LogSoftmax",
    "Identity",
    "Flatten",
    "Dropout",
    "functional",
    "init",
]
