"""Weight initialisers shaped like torch.nn.init: each fills a tensor's array in place.

Random numbers are drawn on the host from ``generator`` (a numpy Generator or an int seed) or
else from the global generator seeded by ``manual_seed``, then cast to the tensor's dtype and
moved to its device. Each function returns the tensor it was given.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from ..backend import Generator, device_of, is_array, looks_like_cupy, np, rng, to_device

__all__ = [
    "calculate_gain",
    "uniform_",
    "normal_",
    "constant_",
    "zeros_",
    "ones_",
    "xavier_uniform_",
    "xavier_normal_",
    "kaiming_uniform_",
    "kaiming_normal_",
]

_GAIN_ONE = (
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "sigmoid",
)
_NONLINEARITIES = (*_GAIN_ONE, "tanh", "relu", "leaky_relu", "selu")

GeneratorLike = np.random.Generator | int | None


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended scale for weights feeding a nonlinearity (PyTorch's table)."""
    if nonlinearity in _GAIN_ONE:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, bool) or not isinstance(param, numbers.Real):
            raise ValueError(f"negative_slope {param!r} is not a valid number")
        else:
            slope = float(param)
        # gain = sqrt(2 / (1 + slope^2)): keeps the variance of a leaky ReLU's output
        return math.sqrt(2.0 / (1.0 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4.0
    raise ValueError(
        f"unsupported nonlinearity {nonlinearity!r}; expected one of {_NONLINEARITIES}"
    )


def _array_of(tensor: Any) -> Any:
    """The backend array to fill: the tensor's ``._data``, or the array itself."""
    if is_array(tensor) or looks_like_cupy(tensor):
        return tensor
    data = getattr(tensor, "_data", None)
    if data is not None and (is_array(data) or looks_like_cupy(data)):
        return data
    raise TypeError(f"expected a tensor or an array, got a {type(tensor).__name__}")


def _generator(generator: GeneratorLike) -> np.random.Generator:
    if generator is None:
        return rng()
    if isinstance(generator, np.random.Generator):
        return generator
    if isinstance(generator, Generator):
        return generator.rng
    if isinstance(generator, (int, np.integer)) and not isinstance(generator, bool):
        return np.random.default_rng(int(generator))
    raise TypeError(
        "generator must be a numpy Generator, an int seed or None, "
        f"got a {type(generator).__name__}"
    )


def _floating(array: Any, name: str) -> None:
    if not np.issubdtype(array.dtype, np.floating):
        raise TypeError(f"{name} fills floating-point tensors only, got dtype {array.dtype}")


def _fill(array: Any, values: np.ndarray) -> None:
    """Copy host values into the array in place, keeping its dtype and device."""
    array[...] = to_device(values.astype(array.dtype, copy=False), device_of(array))


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """fan_in = shape[1] * receptive field, fan_out = shape[0] * receptive field."""
    if len(shape) < 2:
        raise ValueError(
            f"fan in and fan out need a tensor with at least 2 dimensions, got shape {shape}"
        )
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _fan(shape: tuple[int, ...], mode: str) -> int:
    name = mode.lower() if isinstance(mode, str) else mode
    if name not in ("fan_in", "fan_out"):
        raise ValueError(f"mode {mode!r} not supported; expected 'fan_in' or 'fan_out'")
    fan_in, fan_out = _fans(shape)
    return fan_in if name == "fan_in" else fan_out


def _real(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {value!r}")
    return float(value)


def uniform_(tensor: Any, a: float = 0.0, b: float = 1.0, generator: GeneratorLike = None) -> Any:
    """Fill with values drawn from the uniform distribution U(a, b)."""
    array = _array_of(tensor)
    _floating(array, "uniform_")
    low, high = _real("a", a), _real("b", b)
    if low > high:
        raise ValueError(f"uniform_ needs a <= b, got a={a!r}, b={b!r}")
    _fill(array, _generator(generator).uniform(low, high, size=array.shape))
    return tensor


def normal_(
    tensor: Any, mean: float = 0.0, std: float = 1.0, generator: GeneratorLike = None
) -> Any:
    """Fill with values drawn from the normal distribution N(mean, std^2)."""
    array = _array_of(tensor)
    _floating(array, "normal_")
    mu, sigma = _real("mean", mean), _real("std", std)
    if sigma < 0.0:
        raise ValueError(f"normal_ needs std >= 0, got std={std!r}")
    _fill(array, _generator(generator).normal(mu, sigma, size=array.shape))
    return tensor


def constant_(tensor: Any, val: float) -> Any:
    """Fill with the value ``val``."""
    array = _array_of(tensor)
    if not isinstance(val, numbers.Number):
        raise TypeError(f"constant_ needs a number, got val={val!r}")
    array.fill(val)
    return tensor


def zeros_(tensor: Any) -> Any:
    """Fill with zeros."""
    return constant_(tensor, 0)


def ones_(tensor: Any) -> Any:
    """Fill with ones."""
    return constant_(tensor, 1)


def xavier_uniform_(tensor: Any, gain: float = 1.0, generator: GeneratorLike = None) -> Any:
    """Glorot uniform: U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out))."""
    array = _array_of(tensor)
    _floating(array, "xavier_uniform_")
    fan_in, fan_out = _fans(tuple(array.shape))
    if array.size == 0:
        return tensor
    # std = gain * sqrt(2 / (fan_in + fan_out)); a uniform on [-a, a] has std a / sqrt(3)
    std = _real("gain", gain) * math.sqrt(2.0 / (fan_in + fan_out))
    bound = math.sqrt(3.0) * std
    _fill(array, _generator(generator).uniform(-bound, bound, size=array.shape))
    return tensor


def xavier_normal_(tensor: Any, gain: float = 1.0, generator: GeneratorLike = None) -> Any:
    """Glorot normal: N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    array = _array_of(tensor)
    _floating(array, "xavier_normal_")
    fan_in, fan_out = _fans(tuple(array.shape))
    if array.size == 0:
        return tensor
    std = _real("gain", gain) * math.sqrt(2.0 / (fan_in + fan_out))
    _fill(array, _generator(generator).normal(0.0, std, size=array.shape))
    return tensor


def _kaiming_std(array: Any, a: float, mode: str, nonlinearity: str) -> float:
    fan = _fan(tuple(array.shape), mode)
    gain = calculate_gain(nonlinearity, a)
    # std = gain / sqrt(fan): keeps activations' (fan_in) or gradients' (fan_out) variance
    return gain / math.sqrt(fan) if fan > 0 else 0.0


def kaiming_uniform_(
    tensor: Any,
    a: float = 0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: GeneratorLike = None,
) -> Any:
    """He uniform: U(-bound, bound) with bound = sqrt(3) * gain / sqrt(fan)."""
    array = _array_of(tensor)
    _floating(array, "kaiming_uniform_")
    std = _kaiming_std(array, a, mode, nonlinearity)
    if array.size == 0:
        return tensor
    bound = math.sqrt(3.0) * std
    _fill(array, _generator(generator).uniform(-bound, bound, size=array.shape))
    return tensor


def kaiming_normal_(
    tensor: Any,
    a: float = 0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: GeneratorLike = None,
) -> Any:
    """He normal: N(0, std^2) with std = gain / sqrt(fan)."""
    array = _array_of(tensor)
    _floating(array, "kaiming_normal_")
    std = _kaiming_std(array, a, mode, nonlinearity)
    if array.size == 0:
        return tensor
    _fill(array, _generator(generator).normal(0.0, std, size=array.shape))
    return tensor
