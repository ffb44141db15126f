"""torch.nn's modules: Module and Parameter, containers, layers, activations and losses."""

from .activation import (
    CELU,
    ELU,
    GELU,
    SELU,
    Hardsigmoid,
    Hardswish,
    Hardtanh,
    LeakyReLU,
    LogSigmoid,
    LogSoftmax,
    Mish,
    ReLU,
    ReLU6,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)
from .container import (
    ModuleDict,
    ModuleList,
    ParameterDict,
    ParameterList,
    Sequential,
    _plan_stack,
)
from .conv import Conv1d, Conv2d, ConvTranspose2d
from .distance import CosineSimilarity
from .linear import Identity, Linear
from .loss import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    HuberLoss,
    KLDivLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
    SmoothL1Loss,
)
from .module import LoadResult, Module, Parameter
from .normalization import BatchNorm1d, BatchNorm2d, LayerNorm
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool1d, MaxPool2d
from .shape import Dropout, Dropout2d, Flatten, Unflatten, Upsample
from .sparse import Embedding

__all__ = [
    "Parameter",
    "Module",
    "Sequential",
    "ModuleList",
    "ModuleDict",
    "ParameterList",
    "ParameterDict",
    "Linear",
    "Identity",
    "BatchNorm1d",
    "LayerNorm",
    "Embedding",
    "Dropout",
    "Flatten",
    "Unflatten",
    "ReLU",
    "LeakyReLU",
    "GELU",
    "ELU",
    "SiLU",
    "Softplus",
    "Mish",
    "Hardtanh",
    "ReLU6",
    "LogSigmoid",
    "SELU",
    "CELU",
    "Hardsigmoid",
    "Hardswish",
    "Sigmoid",
    "Tanh",
    "Softmax",
    "LogSoftmax",
    "CosineSimilarity",
    "CrossEntropyLoss",
    "NLLLoss",
    "MSELoss",
    "L1Loss",
    "SmoothL1Loss",
    "HuberLoss",
    "BCELoss",
    "BCEWithLogitsLoss",
    "KLDivLoss",
    "Conv1d",
    "Conv2d",
    "ConvTranspose2d",
    "MaxPool1d",
    "MaxPool2d",
    "AvgPool2d",
    "AdaptiveAvgPool2d",
    "BatchNorm2d",
    "Dropout2d",
    "Upsample",
]

_ = (LoadResult, _plan_stack)
