"""A SIMULATED CuPy for tests: CuPy's host/device rules on numpy arrays, with no GPU at all.

THIS IS A SIMULATION. Nothing that runs on it is a GPU result: it measures no GPU speed, runs
no CUDA kernel and checks no GPU numerics. It exists so that CPU-only CI can run the whole test
suite with ``device="cuda"`` and catch the bugs that only show on a device: host and device
arrays mixed in one expression, numpy called on device data, a target, a constant or a random
draw left on the host. Select it with the environment variable ``TINYGRAD_MLP_SIMULATE_CUDA=1``
(this module registers itself with ``tinygrad_mlp.backend`` on import, and the backend then
returns it instead of importing CuPy), e.g.::

    TINYGRAD_MLP_DEVICE=cuda TINYGRAD_MLP_SIMULATE_CUDA=1 python -m pytest

What it copies from CuPy (each rule raises TypeError, as CuPy's does):

- ``SimulatedArray`` (``ndarray`` here) is a distinct type that is not a ``numpy.ndarray``;
  ``np.asarray(device_array)`` (and every implicit conversion: ``host[...] = device_array``,
  ``host_array.dot(device_array)``) raises "Implicit conversion to a NumPy array is not
  allowed"; ``.get()``, ``asnumpy()``, ``.item()``, ``.tolist()``, ``float()`` copy to the host.
- arithmetic and this module's functions refuse host ``numpy.ndarray`` operands
  ("Unsupported type"); Python and numpy scalars are accepted; ``asarray``/``array`` copy host
  data to the device; indices and ``__setitem__`` values may be host arrays or lists (CuPy
  copies them over).
- reductions return 0-d device arrays, never host scalars.

Where it is stricter than CuPy: numpy's own functions and ufuncs refuse device arrays
(``np.exp(device_array)`` raises here; CuPy would dispatch it back to ``cupy.exp``), so code
must reach device arrays through the array module (``xp``), as tinygrad_mlp's backend rule
says; only the dtype and shape queries in ``_NUMPY_FUNCTIONS_ALLOWED`` pass.
Where it is looser: it has no streams, no memory pool, no asynchronous errors, and numpy's full
function list (except ``_NOT_IN_CUPY``), where CuPy lacks a few numpy functions.
"""

from __future__ import annotations

import builtins
import operator
import sys
import types
from typing import Any

import numpy as np

from ..backend import register_simulated_device as _register_simulated_device

__all__ = ["SIMULATED", "SimulatedArray", "ndarray", "asarray", "array", "asnumpy"]

SIMULATED = True  # backend.py and tests recognise the simulation by this flag
__version__ = "13.0.0-simulated"

_IMPLICIT = (
    "Implicit conversion to a NumPy array is not allowed. "
    "Please use `.get()` to construct a NumPy array explicitly."
)
# numpy functions that only read dtypes or shapes: CuPy answers them too, so they pass here
_NUMPY_FUNCTIONS_ALLOWED = frozenset({"result_type", "can_cast", "shape", "ndim", "size"})
# numpy names refused, to catch their use on a device: frompyfunc and the object and string
# dtypes (CuPy has none), broadcast_shapes (not assured in CuPy 13; shapes are host tuples, so
# numpy's serves)
_NOT_IN_CUPY = frozenset({"frompyfunc", "broadcast_shapes", "object_", "str_"})
_SCALARS = (bool, int, float, complex, np.generic)


class SimulatedArray:
    """An array "on the simulated GPU": numpy memory behind CuPy's rules of conversion."""

    __slots__ = ("_host", "__weakref__")
    __array_ufunc__ = None  # numpy ufuncs refuse it; ``host + device`` defers to __radd__
    __array_priority__ = 100.0
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, host: np.ndarray) -> None:
        object.__setattr__(self, "_host", host)

    # ---------------------------------------------------------------- conversions
    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise TypeError(_IMPLICIT)

    def __array_function__(self, func: Any, types_: Any, args: Any, kwargs: Any) -> Any:
        name = getattr(func, "__name__", str(func))
        if name in _NUMPY_FUNCTIONS_ALLOWED:
            return func(*_unwrap(args, allow_host=True), **_unwrap(kwargs, allow_host=True))
        raise TypeError(
            f"numpy.{name} was given a (simulated) device array; call it through the array "
            f"module (xp.{name}) or copy the array to the host with .get()"
        )

    def get(self, stream: Any = None, order: str = "C", out: Any = None) -> np.ndarray:
        """A host copy (numpy array), as ``cupy.ndarray.get``."""
        if out is not None:
            out[...] = self._host
            return out
        return np.array(self._host, order=order, copy=True)

    def item(self, *args: Any) -> Any:
        return self._host.item(*args)

    def tolist(self) -> Any:
        return self._host.tolist()

    def __float__(self) -> float:
        return float(self._host)

    def __int__(self) -> int:
        return int(self._host)

    def __complex__(self) -> complex:
        return complex(self._host)

    def __bool__(self) -> bool:
        return bool(self._host)

    def __index__(self) -> int:
        return operator.index(self._host)

    def __len__(self) -> int:
        return len(self._host)

    def __iter__(self):
        if self._host.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        for row in self._host:
            yield _wrap(row)

    def __repr__(self) -> str:
        return repr(self._host)

    def __str__(self) -> str:
        return str(self._host)

    def __format__(self, spec: str) -> str:
        return format(self._host, spec)

    def __reduce__(self) -> Any:
        return (_from_host, (self._host.copy(),))

    def __copy__(self) -> SimulatedArray:
        return SimulatedArray(self._host.copy())

    def __deepcopy__(self, memo: Any) -> SimulatedArray:
        return SimulatedArray(self._host.copy())

    # ---------------------------------------------------------------- attributes and methods
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in _HOST_ONLY_ATTRIBUTES:
            # NOTE: no __array_interface__, buffer or ctypes: numpy must not read device memory
            raise AttributeError(f"'ndarray' (simulated CuPy) object has no attribute {name!r}")
        host = object.__getattribute__(self, "_host")
        value = getattr(host, name)
        if callable(value):
            method = _device_function(value, name)

            def same(*args: Any, **kwargs: Any) -> Any:
                result = method(*args, **kwargs)
                # a method that hands back its array (astype(copy=False)) hands back this one
                same_array = isinstance(result, SimulatedArray) and result._host is host
                return self if same_array else result

            same.__name__ = same.__qualname__ = name
            return same
        return _wrap(value)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("shape", "strides"):
            setattr(self._host, name, value)
            return
        raise AttributeError(f"cannot set attribute {name!r} of a (simulated) device array")

    def __getitem__(self, key: Any) -> Any:
        return _wrap(self._host[_unwrap_index(key)])

    def __setitem__(self, key: Any, value: Any) -> None:
        self._host[_unwrap_index(key)] = _unwrap(value, allow_host=True)

    # ---------------------------------------------------------------- operators (set below)


_HOST_ONLY_ATTRIBUTES = frozenset({"ctypes", "data", "tofile"})


def _from_host(host: np.ndarray) -> SimulatedArray:
    return SimulatedArray(host)


def _wrap(value: Any) -> Any:
    """numpy results as device arrays; numpy scalars as 0-d device arrays (CuPy's reductions)."""
    if isinstance(value, np.ndarray):
        return SimulatedArray(value)
    if isinstance(value, np.generic):
        return SimulatedArray(np.asarray(value))
    if isinstance(value, tuple):
        return tuple(_wrap(v) for v in value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


def _unwrap(value: Any, allow_host: bool = False) -> Any:
    """Device arrays as their numpy memory; a host ndarray is refused unless ``allow_host``."""
    if isinstance(value, SimulatedArray):
        return value._host
    if isinstance(value, np.ndarray):
        if allow_host:
            return value
        raise TypeError(f"Unsupported type {type(value)}")
    if isinstance(value, (tuple, list)):
        return type(value)(_unwrap(v, allow_host) for v in value)
    if isinstance(value, dict):
        return {k: _unwrap(v, allow_host) for k, v in value.items()}
    return value


def _unwrap_index(key: Any) -> Any:
    # NOTE: CuPy copies host arrays and lists used as indices to the device
    if isinstance(key, tuple):
        return tuple(_unwrap(k, allow_host=True) for k in key)
    return _unwrap(key, allow_host=True)


def _device_function(fn: Any, name: str) -> Any:
    """``fn`` on device arrays: device arguments in, device arrays out, host arrays refused."""

    def call(*args: Any, **kwargs: Any) -> Any:
        out = kwargs.get("out")
        result = fn(*_unwrap(args), **_unwrap(kwargs))
        if isinstance(out, SimulatedArray):
            return out
        return _wrap(result)

    call.__name__ = call.__qualname__ = name
    call.__doc__ = f"Simulated cupy.{name} (numpy.{name} on device arrays)."
    return call


def _operand(other: Any) -> Any:
    if isinstance(other, SimulatedArray):
        return other._host
    if isinstance(other, _SCALARS):
        return other
    raise TypeError(f"Unsupported type {type(other)}")


def _binary(name: str, reflected: bool) -> Any:
    op = getattr(operator, name)

    def method(self: SimulatedArray, other: Any) -> Any:
        try:
            b = _operand(other)
        except TypeError:
            if isinstance(other, np.ndarray):
                raise  # host and device mixed: CuPy's TypeError
            return NotImplemented  # a Tensor, say: let it handle the operation
        return _wrap(op(b, self._host) if reflected else op(self._host, b))

    return method


def _inplace(name: str) -> Any:
    op = getattr(operator, name)

    def method(self: SimulatedArray, other: Any) -> Any:
        op(self._host, _operand(other))
        return self

    return method


for _name in (
    "add sub mul truediv floordiv mod pow matmul and or xor lshift rshift lt le gt ge eq ne"
).split():
    _op = f"__{_name}__"
    setattr(SimulatedArray, _op, _binary(_op, reflected=False))
    if _name not in ("lt", "le", "gt", "ge", "eq", "ne"):
        setattr(SimulatedArray, f"__r{_name}__", _binary(_op, reflected=True))
        setattr(SimulatedArray, f"__i{_name}__", _inplace(f"__i{_name}__"))
for _name in ("neg", "pos", "abs", "invert"):
    setattr(
        SimulatedArray,
        f"__{_name}__",
        (lambda op: lambda self: _wrap(op(self._host)))(getattr(operator, _name)),
    )
SimulatedArray.__divmod__ = lambda self, other: _wrap(divmod(self._host, _operand(other)))

ndarray = SimulatedArray  # ``cupy.ndarray``


# -------------------------------------------------------------------- the module's functions


def asarray(a: Any, dtype: Any = None, order: Any = None) -> SimulatedArray:
    """Host data (or a device array) as a device array, copying host data over."""
    if isinstance(a, SimulatedArray):
        if dtype is None or np.dtype(dtype) == a.dtype:
            return a
        return SimulatedArray(a._host.astype(dtype))
    return SimulatedArray(np.array(_unwrap(a, allow_host=True), dtype=dtype, order=order))


def array(obj: Any, dtype: Any = None, copy: bool = True, order: str = "K", ndmin: int = 0):
    """A new device array from host or device data."""
    return SimulatedArray(
        np.array(_unwrap(obj, allow_host=True), dtype=dtype, copy=copy, order=order, ndmin=ndmin)
    )


def asnumpy(a: Any, stream: Any = None, order: str = "C", out: Any = None) -> np.ndarray:
    """A host numpy array of ``a``, as ``cupy.asnumpy``."""
    if isinstance(a, SimulatedArray):
        return a.get(order=order, out=out)
    return np.asarray(a, order=order)


def get_array_module(*args: Any) -> Any:
    """This module if any argument is a device array, else numpy (``cupy.get_array_module``)."""
    import sys

    if any(isinstance(a, SimulatedArray) for a in args):
        return sys.modules[__name__]
    return np


class _Ufunc:
    """A numpy ufunc on device arrays, with ``at``, ``reduce``, ``accumulate`` and ``outer``."""

    def __init__(self, ufunc: np.ufunc) -> None:
        self._ufunc = ufunc
        self.__name__ = ufunc.__name__
        self.nin, self.nout = ufunc.nin, ufunc.nout

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _device_function(self._ufunc, self.__name__)(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return _device_function(getattr(self._ufunc, name), f"{self.__name__}.{name}")

    def at(self, a: SimulatedArray, indices: Any, b: Any = None) -> None:
        if not isinstance(a, SimulatedArray):
            raise TypeError(f"Unsupported type {type(a)}")
        args = () if b is None else (_unwrap(b, allow_host=True),)
        self._ufunc.at(a._host, _unwrap_index(indices), *args)

    def __repr__(self) -> str:
        return f"<simulated ufunc '{self.__name__}'>"


class _Grid:
    def __init__(self, grid: Any) -> None:
        self._grid = grid

    def __getitem__(self, key: Any) -> Any:
        return _wrap(self._grid[key])


class _Namespace(types.SimpleNamespace):
    """A numpy submodule (linalg, random, ...) whose functions take and give device arrays."""

    def __init__(self, module: Any, prefix: str) -> None:
        super().__init__()
        object.__setattr__(self, "_module", module)
        object.__setattr__(self, "_prefix", prefix)

    def __getattr__(self, name: str) -> Any:
        value = getattr(object.__getattribute__(self, "_module"), name)
        if callable(value) and not isinstance(value, type):
            return _device_function(value, f"{self._prefix}.{name}")
        return value


def _device_count() -> int:
    return 1


def _synchronize() -> None:
    return None


cuda = types.SimpleNamespace(
    runtime=types.SimpleNamespace(getDeviceCount=_device_count),
    Device=lambda device=0: types.SimpleNamespace(id=device, synchronize=_synchronize),
    is_available=lambda: True,
    get_current_stream=lambda: types.SimpleNamespace(synchronize=_synchronize),
    Stream=types.SimpleNamespace(null=types.SimpleNamespace(synchronize=_synchronize)),
)
linalg = _Namespace(np.linalg, "linalg")
random = _Namespace(np.random, "random")


def _erf(a: Any) -> SimulatedArray:
    import math

    host = _unwrap(a)
    table = np.frompyfunc(math.erf, 1, 1)
    return SimulatedArray(np.asarray(table(host), dtype=host.dtype))


# ``cupyx.scipy.special.erf`` (the backend reaches cupyx through this name when simulated)
cupyx = types.SimpleNamespace(scipy=types.SimpleNamespace(special=types.SimpleNamespace(erf=_erf)))

_cache: dict[str, Any] = {}


def __getattr__(name: str) -> Any:
    """numpy's names, made to act on device arrays (the way ``cupy.<name>`` does)."""
    if name in _cache:
        return _cache[name]
    if name.startswith("__") or name in _NOT_IN_CUPY or not hasattr(np, name):
        raise AttributeError(f"module 'cupy' (simulated) has no attribute {name!r}")
    value = getattr(np, name)
    if isinstance(value, np.ufunc):
        value = _Ufunc(value)
    elif isinstance(value, (type, np.dtype, builtins.float, builtins.int)) or value is None:
        pass  # dtypes, scalar types and constants are CuPy's too
    elif name in ("ogrid", "mgrid"):
        value = _Grid(value)
    elif callable(value):
        value = _device_function(value, name)
    else:
        raise AttributeError(f"module 'cupy' (simulated) has no attribute {name!r}")
    _cache[name] = value
    return value


def broadcast_to(array: Any, shape: Any) -> SimulatedArray:
    """CuPy's broadcast_to: a view of the same memory, writable as every CuPy array is (numpy's
    is read-only)."""
    host = _unwrap(array)
    out = np.broadcast_to(host, shape)
    return SimulatedArray(np.lib.stride_tricks.as_strided(host, out.shape, out.strides))


_register_simulated_device("cuda", sys.modules[__name__])
