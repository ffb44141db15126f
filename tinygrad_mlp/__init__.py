"""tinygrad_mlp: a small, fast reverse-mode autodiff framework for neural networks."""

# The autograd package first: the Tensor module imports its grad modes (which import nothing of
# ours), and the package's other modules import the Tensor module.
from . import autograd  # isort: split

# Then the modules that add groups of methods to Tensor (conversion, comparisons, in-place ops,
# shapes, reductions): the modules below read Tensor's methods as they are imported.
from . import (  # noqa: F401
    _inplace,
    _tensor_comparisons,
    _tensor_conversion,
    _tensor_reductions,
    _tensor_shapes,
)

# isort: split

from . import (
    _creation,
    _function_forms,
    _tensor_maths,
    accelerator,
    backend,
    backends,
    cuda,
    datasets,
    distributed,
    linalg,
    nn,
    onnx,
    ops,
    optim,
    testing,
    utils,
    viz,
)
from . import numpy as numpy  # the differentiable numpy namespace (tm.numpy)
from ._creation import *  # noqa: F403  (tm.tensor, tm.zeros, tm.rand, tm.cat, ...)
from ._device import device
from ._dtype import Size, dtype, wrap_dtype
from ._function_forms import *  # noqa: F403  (tm.exp(x), tm.sum(x, dim), ...)
from ._out import OUT_FUNCTIONS, with_out
from ._printing import set_printoptions
from ._sampling import bincount, histc, histogram, multinomial
from ._tensor import Tensor
from ._tensor_maths import *  # noqa: F403  (tm.floor, tm.sort, tm.scatter, tm.einsum, ...)
from .autograd import (
    Function,
    GradcheckError,
    detect_anomaly,
    enable_grad,
    grad,
    gradcheck,
    gradgradcheck,
    inference_mode,
    is_anomaly_enabled,
    is_grad_enabled,
    is_inference_mode_enabled,
    no_grad,
    set_anomaly_detection,
    set_grad_enabled,
)
from .backend import (
    Generator,
    cupy_available,
    default_generator,
    get_array_module,
    initial_seed,
    manual_seed,
    seed,
    set_default_device,
)
from .backends import (
    are_deterministic_algorithms_enabled,
    is_deterministic_algorithms_warn_only_enabled,
    use_deterministic_algorithms,
)
from .classifier import NNClassifier as NNClassifier
from .compile import compile  # noqa: A004  (PyTorch's name: tm.compile(fn), tm.compile(model))
from .datasets import image_folder, make_moons, make_xor, mnist
from .linalg import det
from .linalg import inv as inverse
from .nn import functional
from .serialization import load, save
from .utils.data import DataLoader

float16 = half = wrap_dtype("float16")
float32 = float = wrap_dtype("float32")
float64 = double = wrap_dtype("float64")
int8 = wrap_dtype("int8")
uint8 = wrap_dtype("uint8")
int16 = short = wrap_dtype("int16")
int32 = int = wrap_dtype("int32")
int64 = long = wrap_dtype("int64")
bool = wrap_dtype("bool")  # noqa: A001  (PyTorch's name, shadowing the builtin only here)

# out= on the functions that take it in PyTorch (the registry-facing functions stay as they are)
multinomial, histc, histogram = with_out(multinomial), with_out(histc), with_out(histogram)
for _name in OUT_FUNCTIONS:
    globals()[_name] = with_out(globals()[_name])

__version__ = "0.1.0"
__all__ = [
    *_creation.__all__,
    *_function_forms.__all__,
    *_tensor_maths.__all__,
    "Tensor",
    "Size",
    "set_printoptions",
    "multinomial",
    "histogram",
    "histc",
    "bincount",
    "backends",
    "accelerator",
    "use_deterministic_algorithms",
    "are_deterministic_algorithms_enabled",
    "is_deterministic_algorithms_warn_only_enabled",
    "seed",
    "initial_seed",
    "default_generator",
    "Function",
    "Generator",
    "device",
    "cuda",
    "compile",
    "gradgradcheck",
    "set_grad_enabled",
    "inference_mode",
    "float16",
    "half",
    "float",
    "double",
    "int8",
    "uint8",
    "int16",
    "short",
    "int32",
    "int",
    "int64",
    "long",
    "bool",
    "dtype",
    "no_grad",
    "enable_grad",
    "is_grad_enabled",
    "is_inference_mode_enabled",
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
    "linalg",
    "det",
    "inverse",
    "utils",
    "distributed",
    "onnx",
    "viz",
    "testing",
    "datasets",
    "functional",
    "ops",
    "backend",
]
