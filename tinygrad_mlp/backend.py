"""The one place that imports numpy and CuPy: array modules, devices and random numbers."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

__all__ = [
    "np",
    "DEVICES",
    "default_device",
    "set_default_device",
    "get_array_module",
    "array_module_of",
    "device_of",
    "to_device",
    "to_numpy",
    "cupy_available",
    "manual_seed",
    "rng",
]

DEVICES = ("cpu", "cuda")
_CUDA_INSTALL_HINT = 'install the CUDA extra with: pip install -e ".[cuda]"'

_cupy: Any = None  # the imported cupy module, once asked for


def _normalise_device(device: str | None) -> str:
    """Map None, 'cpu', 'cuda' and 'cuda:0' to a device name, refusing anything else."""
    if device is None:
        return _default_device
    if not isinstance(device, str):
        raise TypeError(f"device must be a string such as 'cpu' or 'cuda', got {device!r}")
    name = device.lower()
    if name.startswith("cuda:"):
        name = "cuda"
    if name not in DEVICES:
        raise ValueError(f"unknown device {device!r}; expected one of {DEVICES}")
    return name


def _load_cupy() -> Any:
    """Import CuPy and check that a GPU is there, with an error that says what is missing."""
    global _cupy
    if _cupy is not None:
        return _cupy
    if os.environ.get("TINYGRAD_MLP_SIMULATE_CUDA") == "1":
        # NOTE: a SIMULATION of CuPy on numpy for CPU-only CI; it never counts as a GPU result
        from .testing import simulated_cuda

        _cupy = simulated_cuda
        return _cupy
    try:
        import cupy
    except ImportError as e:
        raise ImportError(
            f"device 'cuda' needs CuPy, which is not installed; {_CUDA_INSTALL_HINT}"
        ) from e
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # CuPy raises its own CUDARuntimeError when no driver is present
        raise RuntimeError(f"device 'cuda' needs an NVIDIA GPU, but CUDA reports none: {e}") from e
    if count < 1:
        raise RuntimeError("device 'cuda' needs an NVIDIA GPU, but CUDA reports none")
    _cupy = cupy
    return cupy


def cupy_available() -> bool:
    """True when CuPy is installed and can see at least one GPU."""
    try:
        _load_cupy()
    except (ImportError, RuntimeError):
        return False
    return True


def _env_default_device() -> str:
    value = os.environ.get("TINYGRAD_MLP_DEVICE", "cpu") or "cpu"
    name = value.lower()
    if name.startswith("cuda:"):
        name = "cuda"
    if name not in DEVICES:
        raise ValueError(
            f"TINYGRAD_MLP_DEVICE={value!r} is not a device; expected one of {DEVICES}"
        )
    return name


_default_device = _env_default_device()


def default_device() -> str:
    """The device new tensors go to: 'cpu' unless TINYGRAD_MLP_DEVICE or set_default_device say."""
    return _default_device


def set_default_device(device: str) -> None:
    """Set the device that new tensors go to ('cpu' or 'cuda')."""
    global _default_device
    name = _normalise_device(device)
    if name == "cuda":
        _load_cupy()
    _default_device = name


def get_array_module(device: str | None = None) -> Any:
    """The array module (numpy or cupy) for a device name."""
    name = _normalise_device(device)
    return np if name == "cpu" else _load_cupy()


def array_module_of(array: Any) -> Any:
    """The array module an array belongs to."""
    if isinstance(array, np.ndarray) or _cupy is None:
        return np
    return _cupy if isinstance(array, _cupy.ndarray) else np


def device_of(array: Any) -> str:
    """'cpu' for numpy arrays, 'cuda' for CuPy arrays."""
    if _cupy is not None and isinstance(array, _cupy.ndarray):
        return "cuda"
    return "cpu"


def is_array(obj: Any) -> bool:
    """True for numpy and CuPy arrays."""
    return isinstance(obj, np.ndarray) or (_cupy is not None and isinstance(obj, _cupy.ndarray))


def to_device(array: Any, device: str | None) -> Any:
    """Move an array to a device, copying only when it is elsewhere."""
    name = _normalise_device(device)
    here = device_of(array)
    if here == name:
        return array
    if name == "cuda":
        return _load_cupy().asarray(array)
    return _cupy.asnumpy(array)


def to_numpy(array: Any) -> np.ndarray:
    """A host numpy array for any numpy or CuPy array."""
    if _cupy is not None and isinstance(array, _cupy.ndarray):
        return _cupy.asnumpy(array)
    return np.asarray(array)


def looks_like_cupy(obj: Any) -> bool:
    """True for a CuPy array even before this module has imported CuPy."""
    module = type(obj).__module__
    return module.startswith("cupy") or module == "tinygrad_mlp.testing.simulated_cuda"


_rng = np.random.default_rng()


def manual_seed(seed: int) -> None:
    """Seed the generator behind every random initialisation and dropout mask."""
    global _rng
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    _rng = np.random.default_rng(int(seed))


def rng() -> np.random.Generator:
    """The global numpy random generator (random numbers are drawn on the host)."""
    return _rng


# ---------------------------------------------------------------- the array namespace of the rules

# NOTE: every op's forward and derivative rule is written against a namespace ``ns``: on the
# fast first-order path it is an ArrayNamespace over numpy or CuPy, and when gradients must be
# differentiable again (create_graph) it is the Tensor namespace of autograd, which offers the
# same names as recorded ops. The speed tricks below exist only here; the Tensor namespace
# implements each of them as plain differentiable ops.

_DOT_MAX = 4096  # outputs up to this many elements go through dot, larger ones through matmul


_ARRAY_FUNCTIONS = (
    "abs",
    "clip",
    "concatenate",
    "cos",
    "exp",
    "expm1",
    "log",
    "log1p",
    "matmul",
    "maximum",
    "minimum",
    "sign",
    "sin",
    "tanh",
    "where",
)


class ArrayNamespace:
    """numpy (or CuPy) plus the named helpers the derivative rules use."""

    differentiable = False

    def __init__(self, xp: Any) -> None:
        self.xp = xp
        self._constants: dict[tuple, Any] = {}
        # NOTE: the array module's functions the rules call, bound once: a lookup through
        # __getattr__ on every call cost more than some of the ops it served
        for name in _ARRAY_FUNCTIONS:
            setattr(self, name, getattr(xp, name))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.xp, name)

    def __repr__(self) -> str:
        return f"ArrayNamespace({self.xp.__name__})"

    # ------------------------------------------------------------ constants

    def constant(self, kind: str, n: int, arg: Any) -> Any:
        """A read-only vector kept between calls on the host: ``ones(n)`` of dtype ``arg``
        ("ones"), or the offsets ``0, arg, 2 arg, ...`` of the rows of an (n, arg) array
        ("starts")."""
        xp = self.xp
        if xp is not np:
            return xp.ones(n, arg) if kind == "ones" else xp.arange(0, n * arg, arg)
        key = (kind, n, arg)
        array = self._constants.get(key)
        if array is None:
            if len(self._constants) >= 64:  # batch sizes vary little; never let the cache grow
                self._constants.clear()
            array = np.ones(n, arg) if kind == "ones" else np.arange(0, n * arg, arg)
            array.flags.writeable = False
            self._constants[key] = array
        return array

    # ------------------------------------------------------------ products and sums

    def mm(self, a: Any, b: Any) -> Any:
        """The product of two 2-D arrays by the cheaper of numpy's two paths for its size."""
        # NOTE: dot costs a few microseconds less per call than matmul, but it zero-fills its
        # output before the BLAS call; past a few thousand elements that fill costs more.
        if a.shape[0] * b.shape[1] <= _DOT_MAX:
            return a.dot(b)
        return self.xp.matmul(a, b)

    def mT(self, a: Any) -> Any:
        """The last two axes swapped."""
        return self.xp.swapaxes(a, -1, -2)

    def row_sums(self, a: Any) -> Any:
        """a.sum(axis=1) of a 2-D array."""
        # NOTE: numpy reduces along the short rows of a (batch, classes) array several times
        # slower than BLAS multiplies it by a vector of ones.
        return a.dot(self.constant("ones", a.shape[1], a.dtype))

    def column_sums(self, a: Any) -> Any:
        """a.sum(axis=0) of a 2-D array (the bias gradient of a linear layer)."""
        ones = self._constants.get(("ones", a.shape[0], a.dtype))
        if ones is None:
            ones = self.constant("ones", a.shape[0], a.dtype)
        return ones.dot(a)

    def row_max(self, a: Any) -> Any:
        """a.max(axis=1) of a 2-D array; for a few columns, a maximum down a transposed copy."""
        if self.xp is np and a.shape[1] <= 64:
            return np.maximum.reduce(np.ascontiguousarray(a.T), axis=0)
        return a.max(axis=1)

    def amax(self, a: Any, axis: Any = None, keepdims: bool = False) -> Any:
        return a.max(axis=axis, keepdims=keepdims)

    def prod(self, a: Any, axis: Any = None, keepdims: bool = False) -> Any:
        return a.prod(axis=axis, keepdims=keepdims)

    def permute(self, a: Any, axes: Any) -> Any:
        return a.transpose(axes)

    def cast(self, a: Any, dtype: Any) -> Any:
        return a.astype(dtype)

    def broadcast_to(self, a: Any, shape: tuple) -> Any:
        """A writable array of ``shape`` filled by broadcasting ``a``."""
        out = self.xp.empty(shape, dtype=a.dtype)
        out[...] = a  # NOTE: cheaper than broadcast_to(...).copy()
        return out

    def expand_view(self, a: Any, shape: tuple) -> Any:
        """``a`` broadcast to ``shape`` as a view of its memory, writable where ``a`` is."""
        out = self.xp.broadcast_to(a, shape)
        if self.xp is np:
            out = np.lib.stride_tricks.as_strided(a, out.shape, out.strides)
        return out

    def sum_to(self, a: Any, shape: tuple) -> Any:
        """Sum a broadcast array back to ``shape``."""
        return sum_to(a, shape)

    def scatter(self, g: Any, index: Any, shape: tuple) -> Any:
        """zeros(shape) with ``g`` added at ``index``; repeated indices add up."""
        out = self.xp.zeros(shape, dtype=g.dtype)
        if is_advanced_index(index):
            self.xp.add.at(out, index, g)
        else:
            out[index] = g
        return out

    def erf(self, a: Any) -> Any:
        return erf(a)

    def to_device(self, a: Any, device: str) -> Any:
        return to_device(a, device)

    def device_of(self, a: Any) -> str:
        return device_of(a)

    # ------------------------------------------------------------ in-place where allowed

    def imul(self, a: Any, b: Any) -> Any:
        """a * b, written into ``a`` (a rule may pass only arrays it made itself)."""
        a *= b
        return a

    def iadd(self, a: Any, b: Any) -> Any:
        """a + b, written into ``a``."""
        a += b
        return a

    def sub_at(self, a: Any, index: Any, value: Any) -> Any:
        """``a`` with ``value`` subtracted at the (distinct) flat positions ``index``."""
        shape = a.shape
        flat = a.reshape(-1)  # a view, or a C-ordered copy when ``a`` was not C-ordered
        flat[index] -= value
        return flat.reshape(shape)

    def maximum_(self, a: Any, b: Any) -> Any:
        """max(a, b), written into ``a``."""
        return self.xp.maximum(a, b, out=a)

    def tanh_(self, a: Any) -> Any:
        """tanh(a), written into ``a``."""
        return self.xp.tanh(a, out=a)

    def clip_(self, a: Any, low: Any, high: Any) -> Any:
        """clip(a, low, high), written into ``a``."""
        return self.xp.clip(a, low, high, out=a)


def sum_to(a: Any, shape: tuple) -> Any:
    """Sum ``a`` (an array or a Tensor) over the axes that broadcasting added to ``shape``."""
    extra = a.ndim - len(shape)
    if extra < 0:
        raise ValueError(f"cannot sum shape {tuple(a.shape)} to shape {tuple(shape)}")
    axes = tuple(range(extra)) + tuple(
        k + extra for k, n in enumerate(shape) if n == 1 and a.shape[k + extra] != 1
    )
    if axes:
        a = a.sum(axis=axes, keepdims=True)
    if tuple(a.shape) != tuple(shape):
        a = a.reshape(shape)
    return a


def placeholder(shape: tuple, dtype: Any) -> np.ndarray:
    """A writable array of ``shape`` that takes the memory of one element (all its elements
    are that one): stands in for a buffer while only the sizes of buffers are wanted."""
    return np.ndarray(shape, dtype, buffer=np.empty(1, dtype), strides=(0,) * len(shape))


def aligned_block(nbytes: int, align: int = 64) -> np.ndarray:
    """``nbytes`` bytes whose first one lies on an ``align``-byte boundary."""
    raw = np.empty(nbytes + align, np.uint8)
    start = -raw.ctypes.data % align
    return raw[start : start + nbytes]


def is_advanced_index(index: Any) -> bool:
    """True when an index uses integer or boolean arrays (numpy's advanced indexing)."""
    parts = index if isinstance(index, tuple) else (index,)
    return any(not isinstance(p, (int, slice, type(None), type(Ellipsis))) for p in parts)


def _erf_scalar_table():
    import math

    return np.frompyfunc(math.erf, 1, 1)


_erf_ufunc: Any = None


def erf(a: Any) -> Any:
    """The error function, elementwise, to full double precision (math.erf per element)."""
    # NOTE: numpy has no erf; math.erf per element is exact and fast enough for the GELU
    # layers of small networks (about 50 ns an element).
    global _erf_ufunc
    if _erf_ufunc is None:
        _erf_ufunc = _erf_scalar_table()
    if _cupy is not None and isinstance(a, _cupy.ndarray):
        if getattr(_cupy, "SIMULATED", False):
            return _cupy.cupyx.scipy.special.erf(a)
        import cupyx.scipy.special as special

        return special.erf(a)
    return np.asarray(_erf_ufunc(a), dtype=a.dtype)


NUMPY = ArrayNamespace(np)
_namespaces: dict[Any, ArrayNamespace] = {np: NUMPY}


def namespace_of(array: Any) -> ArrayNamespace:
    """The ArrayNamespace of the module an array belongs to."""
    xp = array_module_of(array)
    ns = _namespaces.get(xp)
    if ns is None:
        ns = _namespaces[xp] = ArrayNamespace(xp)
    return ns


class Generator:
    """A random generator of its own, as ``torch.Generator``: ``Generator().manual_seed(0)``."""

    def __init__(self, device: str = "cpu") -> None:
        self.device = device
        self._seed = int(np.random.SeedSequence().entropy % (2**63))
        self.rng = np.random.default_rng(self._seed)

    def manual_seed(self, seed: int) -> Generator:
        """Reseed and return this generator."""
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"seed must be an int, got {type(seed).__name__}")
        self._seed = int(seed)
        self.rng = np.random.default_rng(self._seed)
        return self

    def initial_seed(self) -> int:
        """The seed this generator was last seeded with."""
        return self._seed

    def get_state(self) -> dict:
        """The state of the generator, for set_state."""
        return self.rng.bit_generator.state

    def set_state(self, state: dict) -> Generator:
        """Restore a state from get_state."""
        self.rng.bit_generator.state = state
        return self


def generator(gen: Any = None) -> np.random.Generator:
    """The numpy generator behind ``gen``: None (the global one), an int seed, a numpy
    Generator or a tinygrad_mlp Generator."""
    if gen is None:
        return _rng
    if isinstance(gen, Generator):
        return gen.rng
    if isinstance(gen, np.random.Generator):
        return gen
    if isinstance(gen, (int, np.integer)) and not isinstance(gen, bool):
        return np.random.default_rng(int(gen))
    raise TypeError(f"generator must be None, an int seed or a Generator, got {type(gen).__name__}")
