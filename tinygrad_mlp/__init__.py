"""tinygrad_mlp: a small, fast reverse-mode autodiff framework for neural networks."""

from . import autograd, backend, datasets, nn, ops, optim, utils
from .backend import cupy_available, get_array_module, manual_seed, set_default_device
from .classifier import NNClassifier as NNClassifier
from .datasets import image_folder, make_moons, make_xor, mnist
from .autograd import GradcheckError, gradcheck
from .nn import functional
from .serialization import load, save
from .utils.data import DataLoader
from ._tensor import (
    Tensor,
    detect_anomaly,
    enable_grad,
    grad,
    is_anomaly_enabled,
    is_grad_enabled,
    no_grad,
    set_anomaly_detection,
)

float32 = backend.np.dtype("float32")
float64 = backend.np.dtype("float64")

__version__ = "0.1.0"
__all__ = [
    "Tensor",
    "no_grad",
    "enable_grad",
    "is_grad_enabled",
    "grad",
    "gradcheck",
    "GradcheckError",
    "set_anomaly_detection",
    "detect_anomaly",
    "is_anomaly_enabled",
    "manual_seed",
    "set_default_device",
    "get_array_module",
    "cupy_available",
    "float32",
    "float64",
    "save",
    "load",
    "DataLoader",
    "mnist",
    "make_moons",
    "make_xor",
    "image_folder",
    "nn",
    "optim",
    "autograd",
    "utils",
    "datasets",
    "functional",
    "ops",
    "backend",
]
