"""Neural-network building blocks: Module, layers, initialisers and the functional API."""

from . import functional
from . import init
from . import parallel
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
    "parallel",
]
