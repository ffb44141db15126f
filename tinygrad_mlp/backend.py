"""The one place that imports numpy and CuPy: array modules, devices and random numbers."""

from __future__ import annotations

import itertools
import math
import os
import sys
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
    "seed",
    "initial_seed",
    "default_generator",
    "rng",
]

DEVICES = ("cpu", "cuda")
_CUDA_INSTALL_HINT = 'install the CUDA extra with: pip install -e ".[cuda]"'

_cupy: Any = None  # the imported cupy module, once asked for
# Array modules that simulate a device's own (CuPy's, for 'cuda') when
# TINYGRAD_MLP_SIMULATE_CUDA=1, by device name; a simulation registers itself on import
# (``tinygrad_mlp.testing.simulated_cuda``, which ``tinygrad_mlp.testing`` imports).
_simulations: dict[str, Any] = {}


def register_simulated_device(name: str, module: Any) -> None:
    """Use ``module`` (CuPy's interface on the host) as device ``name``'s array module whenever
    ``TINYGRAD_MLP_SIMULATE_CUDA=1``."""
    if name != "cuda":
        raise ValueError(f"only device 'cuda' can be simulated, not {name!r}")
    _simulations[name] = module


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
        if "cuda" not in _simulations:
            raise RuntimeError(
                "TINYGRAD_MLP_SIMULATE_CUDA=1, but no simulated 'cuda' device is registered; "
                "import tinygrad_mlp.testing.simulated_cuda"
            )
        _cupy = _simulations["cuda"]
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
    out = _load_cupy().asarray(array) if name == "cuda" else _cupy.asnumpy(array)
    if observer is not None:
        observer.moved(array, device, out)
    return out


def to_numpy(array: Any) -> np.ndarray:
    """A host numpy array for any numpy or CuPy array."""
    if _cupy is not None and isinstance(array, _cupy.ndarray):
        return _cupy.asnumpy(array)
    return np.asarray(array)


def looks_like_cupy(obj: Any) -> bool:
    """True for a CuPy array even before this module has imported CuPy."""
    module = type(obj).__module__
    return module.startswith("cupy") or any(module == m.__name__ for m in _simulations.values())


def _checked_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    seed = int(seed)
    if not -(2**63) <= seed < 2**64:
        raise RuntimeError(f"seed {seed} is out of range: it must fit in 64 bits")
    return seed % 2**64  # NOTE: as PyTorch, a negative seed wraps around to 2**64 + seed


class Generator:
    """A random generator of its own, as ``torch.Generator``: ``Generator().manual_seed(0)``."""

    def __init__(self, device: str = "cpu") -> None:
        self.device = device
        self.seed()

    def manual_seed(self, seed: int) -> Generator:
        """Reseed and return this generator."""
        self._seed = _checked_seed(seed)
        self.rng = np.random.default_rng(self._seed)
        return self

    def seed(self) -> int:
        """Reseed from the operating system's entropy and return the new seed."""
        self._seed = int(np.random.SeedSequence().entropy % (2**63))
        self.rng = np.random.default_rng(self._seed)
        return self._seed

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


default_generator = Generator()


def manual_seed(seed: int) -> Generator:
    """Seed the generator behind every random initialisation and dropout mask; returns it."""
    return default_generator.manual_seed(seed)


def seed() -> int:
    """Seed the global generator from the operating system's entropy; returns the seed."""
    return default_generator.seed()


def initial_seed() -> int:
    """The seed the global generator was last seeded with."""
    return default_generator.initial_seed()


def rng() -> np.random.Generator:
    """The global numpy random generator (random numbers are drawn on the host)."""
    if observer is not None:
        observer.rng()
    return default_generator.rng


def draw(fn: Any, *args: Any) -> Any:
    """``fn(generator, *args)``: an array of random numbers from the global generator, drawn so
    that a compiled step sees the call (and draws again, with the same arguments, each replay)."""
    out = fn(default_generator.rng, *args)
    if observer is not None:
        observer.drew(fn, args, out)
    return out


# NOTE: the tracer of tm.compile while it traces a step: told of moves between devices, of draws
# (``draw``) and of any other use of the global generator. None otherwise.
observer = None


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


_SCALARS: dict[tuple, Any] = {}


def scalar(value: float, like: Any) -> Any:
    """``value`` as a read-only 0-d array of ``like``'s dtype when ``like`` is a numpy array:
    numpy computes with one several times faster than with a Python number, to the same result
    (a Python number takes the array's dtype); elsewhere ``value`` itself."""
    if type(like) is not np.ndarray:
        return value
    key = (value, like.dtype)
    array = _SCALARS.get(key)
    if array is None:
        if len(_SCALARS) >= 64:
            _SCALARS.clear()
        array = _SCALARS[key] = np.asarray(value, like.dtype)
        array.flags.writeable = False
    return array


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

    def kept(self, g: Any, keep: Any) -> Any:
        """``g`` where ``keep`` holds, else 0 (also where g is inf or NaN, as a where gives).
        On the host, for float g and a boolean keep of g's shape, g's bits are and-ed with a
        mask of all ones or zeros (much faster than a where on a random mask); else a product
        whose sum tells (cheaply) whether an inf * 0 made a NaN, and only then the where runs."""
        if self.xp is np:
            if (
                type(g) is np.ndarray
                and g.dtype.kind == "f"
                and type(keep) is np.ndarray
                and keep.dtype == np.bool_
                and keep.shape == g.shape
            ):
                bits = np.dtype(f"i{g.itemsize}")
                mask = keep.view(np.int8).astype(bits)
                np.negative(mask, out=mask)  # 1 -> all bits set
                mask &= g.view(bits)
                return mask.view(g.dtype)
            out = g * keep
            if np.isfinite(out.sum()):
                return out
        return self.xp.where(keep, g, 0)

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

    scalar = staticmethod(scalar)

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

    # ------------------------------------------------------------ linear algebra

    def _column_signs(self, v: Any) -> Any:
        """+-1 per column (shape (..., 1, k)) that makes each column's largest entry positive."""
        # NOTE: eigenvectors and singular vectors are defined up to sign; LAPACK's choice may
        # flip between nearby matrices, this one does not (short of a tie in magnitude)
        xp = self.xp
        big = xp.take_along_axis(v, xp.argmax(xp.abs(v), axis=-2)[..., None, :], axis=-2)
        return xp.where(big < 0, -1.0, 1.0).astype(v.dtype)

    def linalg_solve(self, a: Any, b: Any) -> Any:
        """X with A X = B for square A (..., n, n) and B (..., n, k)."""
        return _linalg(self.xp, "solve", a, b)

    def linalg_det(self, a: Any) -> Any:
        """The determinant of each square matrix."""
        return self.xp.linalg.det(a)

    def _symmetric(self, a: Any, uplo: str | None) -> Any:
        """The symmetric matrix that the triangle ``uplo`` ("L" or "U") of each matrix
        describes; None: the symmetric part of each matrix."""
        if uplo is None:
            return (a + self.mT(a)) * 0.5
        keep = self.xp.tri(a.shape[-1], dtype=bool)
        return self.xp.where(keep if uplo == "L" else keep.T, a, self.mT(a))

    def linalg_cholesky(self, a: Any, uplo: str | None = None) -> Any:
        """The lower Cholesky factor of each matrix, read as ``_symmetric`` reads it."""
        return _linalg(self.xp, "cholesky", self._symmetric(a, uplo))

    def linalg_eigh(self, a: Any, uplo: str | None = None) -> Any:
        """Eigenvalues (row 0, ascending) above the eigenvectors (as columns) of each matrix,
        read as ``_symmetric`` reads it, in one array of shape (..., n + 1, n)."""
        w, v = _linalg(self.xp, "eigh", self._symmetric(a, uplo))
        v = v * self._column_signs(v)
        return self.xp.concatenate([w[..., None, :], v], axis=-2)

    def linalg_qr(self, a: Any) -> Any:
        """The reduced Q and R of each matrix, flattened side by side along the last axis."""
        # NOTE: LAPACK's Householder QR, signs as they come: the same as PyTorch's
        q, r = self.xp.linalg.qr(a, mode="reduced")
        lead = a.shape[:-2]
        return self.xp.concatenate([q.reshape(lead + (-1,)), r.reshape(lead + (-1,))], axis=-1)

    def linalg_svd(self, a: Any) -> Any:
        """The reduced U, S and Vh of each matrix, flattened side by side along the last axis."""
        u, s, vh = _linalg(self.xp, "svd", a, full_matrices=False)
        signs = self._column_signs(u)
        u, vh = u * signs, vh * self.mT(signs)
        lead = a.shape[:-2]
        parts = [u.reshape(lead + (-1,)), s, vh.reshape(lead + (-1,))]
        return self.xp.concatenate(parts, axis=-1)

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

    # ------------------------------------------------------------ sliding windows

    def windows(self, x: Any, *geometry: Any, batch_inside: bool = False) -> Any:
        """The zero-padded sliding windows of x (N, C, *size) as a new (N, C, *kernel, *out),
        or (C, *kernel, N, *out) with ``batch_inside``."""
        return windows(x, *geometry, batch_inside=batch_inside)

    def fold_windows(
        self, cols: Any, size: tuple, kernel_size: tuple, dilation: tuple, padding: tuple, stride
    ) -> Any:
        """Windows (N, C, *kernel, *out) added back into (N, C, *size): windows' adjoint."""
        return fold_windows(cols, size, kernel_size, dilation, padding, stride)

    def max_windows(self, x: Any, kernel_size: tuple, dilation: tuple, padding: tuple, stride):
        """The maximum of each window and the (first) position in the window that holds it."""
        return max_windows(x, kernel_size, dilation, padding, stride)

    def spread_max(self, g: Any, arg: Any, size: tuple, *geometry: Any) -> Any:
        """Each element of g put at the position ``arg`` of its window (max pooling's VJP)."""
        return spread_max(g, arg, size, *geometry)


class LinAlgError(RuntimeError):
    """A matrix that a decomposition or a solve cannot take (singular, not positive-definite,
    no convergence): a RuntimeError, as PyTorch's torch.linalg.LinAlgError."""


def _linalg(xp: Any, name: str, *args: Any, **kwargs: Any) -> Any:
    """``xp.linalg.<name>``, with numpy's LinAlgError raised as a RuntimeError naming the op."""
    try:
        return getattr(xp.linalg, name)(*args, **kwargs)
    except xp.linalg.LinAlgError as e:
        raise LinAlgError(f"linalg.{name}: {e}") from None


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


# ---------------------------------------------------------------- sliding windows

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
_malloc_settled = False


def keep_freed_memory() -> bool:
    """Ask glibc's malloc (once per process) to keep up to 128 MiB of freed memory for reuse
    and to serve blocks of up to 32 MiB from its heap, rather than give the pages back to the
    system and fault them in afresh (zeroed) on the next allocation. Convolution and pooling
    call it: each step of a CNN frees and allocates again arrays of a few MiB, and by default
    those pages are returned and refilled every step (about a quarter of a step's time on
    MNIST-sized batches). True when the setting is in force; nothing happens with another libc
    or where TINYGRAD_MLP_KEEP_FREED_MEMORY=0."""
    global _malloc_settled
    if _malloc_settled:
        return _malloc_settled is True
    _malloc_settled = "tried"
    if os.environ.get("TINYGRAD_MLP_KEEP_FREED_MEMORY", "1") == "0":
        return False
    try:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    ok = mallopt(_M_MMAP_THRESHOLD, 32 << 20) == 1 and mallopt(_M_TRIM_THRESHOLD, 128 << 20) == 1
    _malloc_settled = True if ok else "tried"
    return ok


# NOTE: ``padding`` is one (before, after) pair per spatial dim; the windows of a dim of padded
# size P start at 0, stride, 2 stride, ... while a whole window (dilation (k - 1) + 1) fits.


def window_counts(size: tuple, kernel_size: tuple, dilation: tuple, padding: tuple, stride):
    """The number of windows along each spatial dim."""
    return tuple(
        (n + lo + hi - d * (k - 1) - 1) // s + 1
        for n, k, d, (lo, hi), s in zip(size, kernel_size, dilation, padding, stride, strict=True)
    )


def _padded(x: Any, padding: tuple, value: float) -> Any:
    """x with its spatial dims padded by ``value`` (x itself when there is no padding)."""
    if not any(lo or hi for lo, hi in padding):
        return x
    xp = array_module_of(x)
    size = x.shape[2:]
    shape = x.shape[:2] + tuple(n + lo + hi for n, (lo, hi) in zip(size, padding, strict=True))
    out = xp.full(shape, value, dtype=x.dtype)
    out[
        (Ellipsis,) + tuple(slice(lo, lo + n) for n, (lo, _) in zip(size, padding, strict=True))
    ] = x
    return out


def _offset_slices(offset: tuple, dilation: tuple, stride: tuple, counts: tuple) -> tuple:
    """The index of the elements at kernel position ``offset`` of every window."""
    return (Ellipsis,) + tuple(
        slice(i * d, i * d + s * (m - 1) + 1, s)
        for i, d, s, m in zip(offset, dilation, stride, counts, strict=True)
    )


def _offsets(kernel_size: tuple):
    """Every position in a window, in row-major order."""
    return itertools.product(*map(range, kernel_size))


def windows(
    x: Any,
    kernel_size: tuple,
    dilation: tuple,
    padding: tuple,
    stride: tuple,
    batch_inside: bool = False,
    copy: bool = True,
) -> Any:
    """The zero-padded sliding windows of x (N, C, *size) as a new (N, C, *kernel, *out) array,
    or (C, *kernel, N, *out) with ``batch_inside`` (one matrix product for the whole batch);
    with ``copy=False`` a numpy x may give a read-only strided view instead."""
    if not _malloc_settled:
        keep_freed_memory()
    nd = len(kernel_size)
    counts = window_counts(x.shape[2:], kernel_size, dilation, padding, stride)
    xpad = _padded(x, padding, 0)
    shape = x.shape[:2] + tuple(kernel_size) + counts
    order = (1, *range(2, 2 + nd), 0, *range(2 + nd, 2 + 2 * nd)) if batch_inside else None
    if isinstance(xpad, np.ndarray):
        # NOTE: one strided view (every window without a copy) and one copy of it, in the
        # order wanted: faster than a copy per kernel offset
        st = xpad.strides[2:]
        strides = xpad.strides[:2] + tuple(a * d for a, d in zip(st, dilation, strict=True))
        strides += tuple(a * s for a, s in zip(st, stride, strict=True))
        view = np.lib.stride_tricks.as_strided(xpad, shape, strides, writeable=False)
        view = view if order is None else view.transpose(order)
        return view.copy() if copy else view
    xp = array_module_of(x)
    out = xp.empty(shape, dtype=x.dtype)
    for offset in _offsets(kernel_size):
        out[(slice(None), slice(None)) + offset] = xpad[
            _offset_slices(offset, dilation, stride, counts)
        ]
    return out if order is None else xp.ascontiguousarray(out.transpose(order))


def fold_windows(
    cols: Any, size: tuple, kernel_size: tuple, dilation: tuple, padding: tuple, stride: tuple
) -> Any:
    """Windows (N, C, *kernel, *out) summed back into (N, C, *size): the adjoint of windows."""
    nd = len(size)
    counts = tuple(cols.shape[2 + nd :])
    lead = tuple(cols.shape[:2])
    padded = tuple(n + lo + hi for n, (lo, hi) in zip(size, padding, strict=True))
    xp = array_module_of(cols)
    spans = [d * (k - 1) + 1 for k, d in zip(kernel_size, dilation, strict=True)]
    apart = all(s >= span for s, span in zip(stride, spans, strict=True))
    if isinstance(cols, np.ndarray) and cols.strides[1] > cols.strides[0]:
        # NOTE: windows laid out channel by channel (a convolution's input gradient): the sum
        # is laid out the same way, so that the additions walk both in memory order
        out = np.zeros((lead[1], lead[0]) + padded, dtype=cols.dtype).swapaxes(0, 1)
    else:
        out = xp.zeros(lead + padded, dtype=cols.dtype)
    for offset in _offsets(kernel_size):
        place = _offset_slices(offset, dilation, stride, counts)
        if apart:  # NOTE: windows that do not overlap (pooling): copies, no additions
            out[place] = cols[(slice(None), slice(None)) + offset]
        else:
            out[place] += cols[(slice(None), slice(None)) + offset]
    if not any(lo or hi for lo, hi in padding):
        return out
    return out[
        (Ellipsis,) + tuple(slice(lo, lo + n) for n, (lo, _) in zip(size, padding, strict=True))
    ]


_CHUNK_BYTES = 1 << 20  # the per-image work of a convolution kept in cache at once


def _images_per_chunk(n: int, per_image: int) -> int:
    """How many images at a time (in chunks of about equal size) keep ``per_image`` bytes
    each within _CHUNK_BYTES."""
    most = max(1, _CHUNK_BYTES // max(1, per_image))
    return -(-n // -(-n // most)) if n else 1


def _window_view(source: Any, shape: tuple, geometry: tuple) -> Any:
    """Every window of a padded input as a read-only strided view (no copy): (N, H', W', kH,
    kW, C) of a channels-last source (N, H, W, C), else (C, kH, kW, N, H', W') of (N, C, H, W)."""
    (kh, kw), (dh, dw), _, (s_h, s_w) = geometry
    ho, wo, c, by_rows = shape
    if not by_rows:
        unpadded = ((0, 0), (0, 0))
        return windows(source, (kh, kw), (dh, dw), unpadded, (s_h, s_w), True, copy=False)
    sn, sh, sw, sc = source.strides
    return np.lib.stride_tricks.as_strided(
        source,
        (source.shape[0], ho, wo, kh, kw, c),
        (sn, sh * s_h, sw * s_w, sh * dh, sw * dw, sc),
        writeable=False,
    )


def _window_matrix(view: Any, start: int, end: int, by_rows: bool, ones: bool) -> Any:
    """The windows of images start:end of a _window_view as the rows of a matrix (their
    N H' W', kH kW C [+ 1]), the last column ones when ``ones``: copied as rows from a
    channels-last view (runs of kW C elements), or as the columns of a (C kH kW [+ 1], N H' W')
    array (its transpose returned) from the other (runs of W')."""
    if by_rows:
        part = view[start:end]
        k, rows = math.prod(part.shape[3:]), math.prod(part.shape[:3])
        cols = np.empty((rows, k + ones), view.dtype)
        cols[:, :k].reshape(part.shape, copy=False)[...] = part
        if ones:
            cols[:, k] = 1
        return cols
    part = view[:, :, :, start:end]
    k, rows = math.prod(part.shape[:3]), math.prod(part.shape[3:])
    cols = np.empty((k + ones, rows), view.dtype)
    cols[:k].reshape(part.shape, copy=False)[...] = part
    if ones:
        cols[k] = 1
    return cols.T


def conv2d_channels_last(x: Any, w: Any, b: Any, geometry: tuple) -> Any:
    """A 2-D convolution (one group) of numpy arrays with a channels-last output, or None for
    other arrays: the product of the windows, (N H' W', K), with the weight as (K, O), the bias
    fused in as a column of ones in the windows and a row of the weight, a few images at a time
    (their windows are still in cache when the product reads them). The output (N, O, H', W')
    is a view of (N, H', W', O) memory; the ReLU, pooling and next convolution after it read
    that order as it is. The windows are copied as rows from a channels-last input, as
    columns from any other (_window_matrix). Returns (out, saved): the padded input and its
    layout, from which the weight's gradient takes the windows again."""
    if type(x) is not np.ndarray or type(w) is not np.ndarray or x.ndim != 4 or not x.size:
        return None
    if not _malloc_settled:
        keep_freed_memory()
    kernel_size, dilation, padding, stride = geometry
    n, c, h, wd = x.shape
    o, (kh, kw) = w.shape[0], kernel_size
    ho, wo = window_counts((h, wd), kernel_size, dilation, padding, stride)
    k = c * kh * kw
    ones = b is not None
    by_rows = c > 1 and x.strides[1] < min(x.strides[2:])
    if by_rows:
        (top, bottom), (left, right) = padding
        source = x.transpose(0, 2, 3, 1)
        if top or bottom or left or right:
            padded = np.zeros((n, h + top + bottom, wd + left + right, c), x.dtype)
            padded[:, top : top + h, left : left + wd] = source
            source = padded
        wk = w.transpose(0, 2, 3, 1).reshape((o, k))
    else:
        source = _padded(x, padding, 0)
        wk = w.reshape((o, k))
    weight = np.empty((k + ones, o), x.dtype)
    weight[:k] = wk.T
    if ones:
        weight[k] = b
    shape = (ho, wo, c, by_rows)
    out = np.empty((n * ho * wo, o), x.dtype)
    view = _window_view(source, shape, geometry)
    step = _images_per_chunk(n, ho * wo * (k + ones) * x.itemsize)
    for start in range(0, n, step):
        end = min(n, start + step)
        # NOTE: the long dim (N H' W') as the rows of the product: BLAS runs it faster so
        matrix = _window_matrix(view, start, end, by_rows, ones)
        np.matmul(matrix, weight, out=out[start * ho * wo : end * ho * wo])
    return out.reshape((n, ho, wo, o)).transpose(0, 3, 1, 2), (source, shape)


def _inside(first: int, stride: int, count: int, size: int) -> tuple | None:
    """Of ``count`` windows along a dim whose element at one kernel position lies at ``first``,
    ``first + stride``, ... (padding makes ``first`` negative): the slice of those windows
    whose element lies inside the dim's ``size`` elements and the slice of those elements;
    None when there are none."""
    low = max(0, -(first // stride)) if first < 0 else 0
    high = min(count, (size - 1 - first) // stride + 1) if first < size else 0
    if high <= low:
        return None
    return slice(low, high), slice(first + low * stride, first + (high - 1) * stride + 1, stride)


def conv2d_channels_last_grads(g: Any, w: Any, saved: Any, size: tuple, geometry: tuple, needs):
    """The gradients (input, weight, bias; None where not needed) of conv2d_channels_last, each
    a few images at a time (what it makes is still in cache when it is used): the input's
    from one product per kernel position, (N H' W', O) by (O, C), each added into the
    channels-last input at that position's offset (runs of W' C elements, clipped to the
    input); the weight's and the bias's as G^T times the windows (their column of ones gives
    G's sums), taken again from the saved input."""
    source, shape = saved
    by_rows = shape[-1]
    kernel_size, dilation, padding, stride = geometry
    n, o, ho, wo = g.shape
    (kh, kw), c = kernel_size, w.shape[1]
    g2 = g.transpose(0, 2, 3, 1).reshape((n * ho * wo, o))  # a view when g is channels-last
    gx = gw = gb = None
    if needs[0]:
        wk = w.transpose(2, 3, 0, 1).reshape((kh * kw, o, c))
        h, wd = size
        # NOTE: added straight into the unpadded channels-last gradient, each kernel position's
        # products clipped to the windows that reach inside it: no padded copy to cut out, and
        # the gradient comes out dense (pooling's gradient before it reads it as it lies)
        places = []
        for i, j in _offsets(kernel_size):
            rows = _inside(i * dilation[0] - padding[0][0], stride[0], ho, h)
            cols = _inside(j * dilation[1] - padding[1][0], stride[1], wo, wd)
            places.append((rows, cols) if rows and cols else None)
        gx = np.zeros((n, h, wd, c), g.dtype)
        # NOTE: a few images at a time, so that the products (kH kW times the input gradient)
        # are still in cache when they are added: over the whole batch they went to memory
        # and were read back
        step = _images_per_chunk(n, kh * kw * ho * wo * c * g.itemsize)
        for start in range(0, n, step):
            end = min(n, start + step)
            per_offset = np.matmul(g2[start * ho * wo : end * ho * wo], wk)
            per_offset = per_offset.reshape((kh * kw, end - start, ho, wo, c))
            part = gx[start:end]
            for k, place in enumerate(places):
                if place is not None:
                    (src_rows, dst_rows), (src_cols, dst_cols) = place
                    part[:, dst_rows, dst_cols] += per_offset[k][:, src_rows, src_cols]
        gx = gx.transpose(0, 3, 1, 2)
    bias = len(needs) > 2 and needs[2]
    if needs[1] or bias:
        k = c * kh * kw
        both = np.zeros((o, k + 1), g.dtype)
        view = _window_view(source, shape, geometry)
        step = _images_per_chunk(n, ho * wo * (k + 1) * g.itemsize)
        for start in range(0, n, step):
            end = min(n, start + step)
            matrix = _window_matrix(view, start, end, by_rows, True)
            # NOTE: (windows^T G)^T: BLAS is faster with the long dim inside the product
            both += np.matmul(matrix.T, g2[start * ho * wo : end * ho * wo]).T
        if needs[1]:
            gw = both[:, :k]
            if by_rows:
                gw = gw.reshape((o, kh, kw, c)).transpose(0, 3, 1, 2)
            gw = np.ascontiguousarray(gw).reshape(w.shape)
        if bias:
            gb = both[:, k].copy()
    return gx, gw, gb


def _max_tree(xp: Any, values: list, first: int, nan: bool, index: Any) -> tuple[Any, Any]:
    """The maximum over ``values`` and the position (from ``first``) of the first one that holds
    it, by halves; with ``nan`` a NaN wins over numbers and a later NaN over an earlier one."""
    if len(values) == 1:
        return values[0], index(first)
    half = len(values) // 2
    a, where_a = _max_tree(xp, values[:half], first, nan, index)
    b, where_b = _max_tree(xp, values[half:], first + half, nan, index)
    later = b > a
    if nan:
        later |= b != b
    top = xp.where(later, b, a) if nan else xp.maximum(a, b)
    return top, xp.where(later, where_b, where_a)


def _tiled(kernel_size: tuple, dilation: tuple, padding: tuple, stride: tuple) -> bool:
    """True when the windows of a 1-D or 2-D pooling tile the input: side by side (stride equal
    to the kernel size), no dilation, no padding, more than one element each."""
    return (
        len(kernel_size) <= 2
        and math.prod(kernel_size) > 1
        and tuple(stride) == tuple(kernel_size)
        and all(d == 1 for d in dilation)
        and not any(lo or hi for lo, hi in padding)
    )


def _as_planes(x: Any, nd: int) -> Any:
    """(N, C, L) seen as (N, C, 1, L); (N, C, H, W) as it is."""
    return x if nd == 2 else x.reshape(x.shape[:2] + (1,) + x.shape[2:])


def _dims_by_stride(a: Any) -> list:
    """The dims of ``a`` from the outermost in memory to the innermost (ties: in dim order)."""
    return sorted(range(a.ndim), key=lambda k: -a.strides[k] if a.shape[k] > 1 else 0)


def _empty_in_order_of(like: Any, shape: tuple, dtype: Any, zero: bool) -> np.ndarray:
    """An array of ``shape`` (as many dims as ``like``) laid out in memory with its dims in the
    order of like's strides, so that elementwise work on the two walks both in order."""
    order = _dims_by_stride(like)
    alloc = np.zeros if zero else np.empty
    return alloc(tuple(shape[k] for k in order), dtype).transpose(np.argsort(order))


def _first_max_along(v: Any, k: int, index: Any) -> tuple[Any, Any]:
    """The maximum over the last axis (length k) of v and the first position that holds it."""
    top = np.maximum(v[..., 0], v[..., 1])
    arg = np.greater(v[..., 1], v[..., 0]).view(index) if index == np.int8 else None
    if arg is None:
        arg = np.greater(v[..., 1], v[..., 0]).astype(index)
    for j in range(2, k):
        # NOTE: a later position wins only where it is strictly greater than all before it;
        # j exceeds every earlier position, so the maximum of the indices is the winner's
        later = np.greater(v[..., j], top)
        np.maximum(top, v[..., j], out=top)
        np.maximum(arg, later.view(np.int8).astype(index) * index(j), out=arg)
    return top, arg


def _max_tiles(x: np.ndarray, kernel_size: tuple, counts: tuple, index: Any):
    """max_windows where the windows tile x: the maximum along each window's rows first, then
    over its rows (a row holding the maximum first also holds the first one in row-major
    order), both by strided views of x without a copy."""
    nd = len(kernel_size)
    kh, kw = (1,) * (2 - nd) + tuple(kernel_size)
    ho, wo = (1,) * (2 - nd) + tuple(counts)
    x4 = _as_planes(x, nd)[:, :, : ho * kh, : wo * kw]
    n, c = x4.shape[:2]
    if kw > 1:
        rows, argw = _first_max_along(x4.reshape((n, c, ho * kh, wo, kw)), kw, index)
    else:
        rows, argw = x4, None
    stack = rows.reshape((n, c, ho, kh, wo))
    if kh > 1:
        out, argh = _first_max_along(stack.transpose(0, 1, 2, 4, 3), kh, index)
    else:
        out, argh = stack[:, :, :, 0], np.zeros((n, c, ho, wo), index)
    if argw is None:
        arg = argh
    else:
        # the position along the row of the row that won, then its flat index in the window
        aw = argw.reshape((n, c, ho, kh, wo))
        if kh == 2 and kw == 2 and index == np.int8:
            # NOTE: bits: the winning row's bit (the second row's where argh is 1), plus 2 argh
            arg = np.bitwise_xor(aw[:, :, :, 0], aw[:, :, :, 1])
            arg &= argh
            arg ^= aw[:, :, :, 0]
            arg |= argh << 1
            shape = x.shape[:2] + tuple(counts)
            return out.reshape(shape), arg.reshape(shape)
        arg = aw[:, :, :, 0].copy(order="K")
        for i in range(1, kh):
            arg += (argh == i).view(np.int8).astype(index) * (aw[:, :, :, i] - aw[:, :, :, 0])
        arg += argh * index(kw)
    shape = x.shape[:2] + tuple(counts)
    return out.reshape(shape), arg.reshape(shape)


def _spread_pairs(g4: np.ndarray, arg4: np.ndarray, gx: np.ndarray, kh: int) -> None:
    """_spread_tiles for float32 windows two wide (rows of an even length): the two elements of
    a window's row read as one 64-bit word, into which g's bits go shifted to the half that
    holds the maximum (the first float of a pair is the low half on a little-endian machine);
    each window row gets that word or zero. Whole-word writes, where the float products would
    write every other element."""
    n, c, ho, wo = g4.shape
    pairs = gx[:, :, : ho * kh, : wo * 2].view(np.uint64)
    pairs = pairs.reshape((n, c, ho, kh, wo), copy=False)
    word = g4.view(np.uint32).astype(np.uint64)
    shift = np.bitwise_and(arg4, 1).astype(np.uint64)
    shift <<= np.uint64(5)
    word <<= shift
    if kh == 1:
        pairs[:, :, :, 0] = word
        return
    row = np.right_shift(arg4, 1)
    for i in range(kh):
        np.multiply(word, (row == i).astype(np.uint64), out=pairs[:, :, :, i])


_window_starts: dict[tuple, np.ndarray] = {}  # (shape, strides, kernel) -> flat offsets


def _memory_order_flat(a: np.ndarray) -> np.ndarray | None:
    """The elements of ``a`` in memory order as a 1-D view, or None when ``a`` is not a dense
    array with its dims permuted (a transposed view of contiguous memory)."""
    t = a.transpose(_dims_by_stride(a))
    return t.reshape(-1) if t.flags.c_contiguous else None


def _spread_by_index(g4: np.ndarray, arg4: np.ndarray, full: tuple, kh: int, kw: int):
    """_spread_tiles by one scatter: the flat position (in memory) of each window's maximum is
    its window's first element plus the offset of its kernel position ``arg``; g is written
    there into zeros. Elementwise products would walk the windows in runs as short as a
    channels-last input's channel count; the scatter's index and g are read in whole runs.
    None when arg is not a dense (permuted) array."""
    flat_arg = _memory_order_flat(arg4)
    if flat_arg is None:
        return None
    gx = _empty_in_order_of(arg4, full, g4.dtype, zero=True)
    step = [s // gx.itemsize for s in gx.strides]
    key = (arg4.shape, arg4.strides, tuple(gx.strides), kh, kw)
    starts = _window_starts.get(key)
    if starts is None:
        n, c, ho, wo = arg4.shape
        grid = np.zeros((n, c, ho, wo), np.intp)
        grid += (np.arange(n) * step[0]).reshape((n, 1, 1, 1))
        grid += (np.arange(c) * step[1]).reshape((c, 1, 1))
        grid += (np.arange(ho) * (kh * step[2])).reshape((ho, 1))
        grid += np.arange(wo) * (kw * step[3])
        # NOTE: in arg's memory order, as the index it is added to
        starts = np.ascontiguousarray(grid.transpose(_dims_by_stride(arg4))).reshape(-1)
        if len(_window_starts) >= 8:
            _window_starts.clear()
        _window_starts[key] = starts
    offsets = np.array([i * step[2] + j * step[3] for i in range(kh) for j in range(kw)], np.intp)
    index = np.take(offsets, flat_arg)
    index += starts
    values = g4.transpose(_dims_by_stride(arg4)).reshape(-1)  # a copy unless g is laid out so
    _memory_order_flat(gx)[index] = values
    return gx


def _spread_tiles(g: np.ndarray, arg: Any, size: tuple, kernel_size: tuple) -> np.ndarray:
    """spread_max where the windows tile the input: each g goes to its row of the window, then
    to its place in the row (elementwise products with masks, written through strided views)."""
    nd = len(kernel_size)
    kh, kw = (1,) * (2 - nd) + tuple(kernel_size)
    g4, arg4 = _as_planes(g, nd), _as_planes(arg, nd)
    n, c, ho, wo = g4.shape
    if _dims_by_stride(g4) != _dims_by_stride(arg4):
        # NOTE: one copy of g into the memory order of the windows (that of the input)
        # costs less than elementwise work that walks two orders at once
        like = _empty_in_order_of(arg4, g4.shape, g.dtype, zero=False)
        like[...] = g4
        g4 = like
    full = (n, c) + (1,) * (2 - nd) + tuple(size)
    if _dims_by_stride(arg4)[-1] != 3:
        # NOTE: a channels-last input: the products would walk runs of C elements
        scattered = _spread_by_index(g4, arg4, full, kh, kw)
        if scattered is not None:
            return scattered.reshape(g.shape[:2] + tuple(size))
    whole = full[2] == ho * kh and full[3] == wo * kw
    gx = _empty_in_order_of(arg4, full, g.dtype, zero=not whole)
    pairs = kw == 2 and g.dtype == np.float32 and full[3] % 2 == 0 and gx.strides[3] == 4
    if pairs and sys.byteorder == "little":
        _spread_pairs(g4, arg4, gx, kh)
        return gx.reshape(g.shape[:2] + tuple(size))
    tiles = gx[:, :, : ho * kh, : wo * kw].reshape((n, c, ho, kh, wo, kw), copy=False)
    index = arg4.dtype.type
    col = arg4
    if kh > 1:
        rows = _empty_in_order_of(arg4, (n, c, ho * kh, wo), g.dtype, zero=False)
        stack = rows.reshape((n, c, ho, kh, wo), copy=False)
        col = arg4.copy(order="K")
        for i in range(kh):
            at_row = (arg4 >= i * kw) & (arg4 < (i + 1) * kw)
            # NOTE: masks as floats: a product with booleans casts them in small buffers
            np.multiply(g4, at_row.astype(g.dtype), out=stack[:, :, :, i])
            if i:
                col -= at_row.view(np.int8).astype(index) * index(i * kw)
    else:
        stack = g4.reshape((n, c, ho, 1, wo))
    cols = col.reshape((n, c, ho, 1, wo))
    for j in range(kw):
        np.multiply(stack, (cols == j).astype(g.dtype), out=tiles[..., j])
    return gx.reshape(g.shape[:2] + tuple(size))


def max_windows(x: Any, kernel_size: tuple, dilation: tuple, padding: tuple, stride: tuple):
    """The maximum of each window of x (N, C, *size), padded by -inf, and the first position in
    the window (a flat kernel index) that holds it; the last NaN wins, as in PyTorch."""
    if not _malloc_settled:
        keep_freed_memory()
    xp = array_module_of(x)
    if isinstance(x, np.ndarray) and _tiled(kernel_size, dilation, padding, stride):
        counts = window_counts(x.shape[2:], kernel_size, dilation, padding, stride)
        index = np.int8 if math.prod(kernel_size) < 128 else np.int64
        out, arg = _max_tiles(x, kernel_size, counts, index)
        if x.dtype.kind != "f" or not bool(np.isnan(out).any()):
            return out, arg
    counts = window_counts(x.shape[2:], kernel_size, dilation, padding, stride)
    low = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
    xpad = _padded(x, padding, low)
    values = [xpad[_offset_slices(o, dilation, stride, counts)] for o in _offsets(kernel_size)]
    index = np.int8 if len(values) < 128 else np.int64
    # NOTE: pairs of halves compared elementwise: a few passes over output-sized arrays; NaN
    # needs one more pass per pair, so it is looked for only when the maximum holds one
    out, arg = _max_tree(xp, values, 0, False, index)
    if x.dtype.kind == "f" and bool(xp.isnan(out).any()):
        out, arg = _max_tree(xp, values, 0, True, index)
    if len(values) == 1:
        out, arg = out.copy(), xp.zeros(out.shape, dtype=index)
    return out, arg


def spread_max(
    g: Any, arg: Any, size: tuple, kernel_size: tuple, dilation: tuple, padding: tuple, stride
) -> Any:
    """(N, C, *size): each element of g (N, C, *out) at the position ``arg`` of its window."""
    if (
        isinstance(g, np.ndarray)
        and isinstance(arg, np.ndarray)
        and _tiled(kernel_size, dilation, padding, stride)
    ):
        return _spread_tiles(g, arg, size, kernel_size)
    xp = array_module_of(g)
    counts = tuple(g.shape[2:])
    padded = tuple(n + lo + hi for n, (lo, hi) in zip(size, padding, strict=True))
    spans = [d * (k - 1) + 1 for k, d in zip(kernel_size, dilation, strict=True)]
    apart = all(s >= span for s, span in zip(stride, spans, strict=True))
    out = xp.zeros(g.shape[:2] + padded, dtype=g.dtype)
    for k, offset in enumerate(_offsets(kernel_size)):
        place = out[_offset_slices(offset, dilation, stride, counts)]
        if apart:  # NOTE: windows that do not overlap: each element is written once
            xp.multiply(g, arg == k, out=place)
        else:
            place += xp.where(arg == k, g, 0)
    if not any(lo or hi for lo, hi in padding):
        return out
    return out[
        (Ellipsis,) + tuple(slice(lo, lo + n) for n, (lo, _) in zip(size, padding, strict=True))
    ]


def window_one_hot(arg: Any, kernel_size: tuple) -> Any:
    """(N, C, *kernel, *out) booleans: True at the window position ``arg`` (N, C, *out) names."""
    xp = array_module_of(arg)
    k = math.prod(kernel_size)
    lead, counts = arg.shape[:2], arg.shape[2:]
    positions = xp.arange(k).reshape((1, 1, k) + (1,) * len(counts))
    hot = arg.reshape(lead + (1,) + counts) == positions
    return hot.reshape(lead + tuple(kernel_size) + counts)


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


def generator(gen: Any = None) -> np.random.Generator:
    """The numpy generator behind ``gen``: None (the global one), an int seed, a numpy
    Generator or a tinygrad_mlp Generator."""
    if gen is None:
        return rng()
    if isinstance(gen, Generator):
        return gen.rng
    if isinstance(gen, np.random.Generator):
        return gen
    if isinstance(gen, (int, np.integer)) and not isinstance(gen, bool):
        return np.random.default_rng(int(gen))
    raise TypeError(f"generator must be None, an int seed or a Generator, got {type(gen).__name__}")
