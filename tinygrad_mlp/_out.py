"""``out=``: the keyword PyTorch's functions take to write their result into a given tensor,
added to the ``tm.*`` functions that have it in PyTorch."""

from __future__ import annotations

import functools
import inspect
import warnings
from typing import Any

from ._conversion import _kind_rank
from ._tensor import Tensor
from .autograd.grad_mode import is_grad_enabled, no_grad

__all__ = ["OUT_FUNCTIONS", "with_out"]

# the tm.* functions whose PyTorch counterparts take out=
OUT_FUNCTIONS = (
    "add sub subtract mul multiply div divide true_divide neg negative pow sqrt rsqrt square "
    "reciprocal exp expm1 log log1p log2 log10 sin cos erf abs absolute sign round sigmoid tanh "
    "maximum minimum clamp clip softmax log_softmax mm bmm dot outer sum mean prod amax amin max "
    "min argmax argmin var std norm logsumexp all any nansum gather take_along_dim eq ne lt le gt "
    "ge greater less greater_equal less_equal not_equal logical_not zeros ones full empty arange "
    "linspace eye rand randn randint randperm cat concat stack where matmul"
).split()

_TYPE_NAMES = {"b": "Bool", "i": "Long", "u": "Byte", "f": "Float"}


def _tensors_in(values: Any) -> list[Tensor]:
    found = []
    for v in values:
        if isinstance(v, Tensor):
            found.append(v)
        elif isinstance(v, (list, tuple)):
            found.extend(t for t in v if isinstance(t, Tensor))
    return found


def _write(name: str, out: Any, result: Any) -> Any:
    """Copy ``result`` into ``out`` (resizing it as PyTorch does) and return ``out``."""
    if isinstance(result, tuple):
        if not isinstance(out, (tuple, list)) or len(out) != len(result):
            raise TypeError(f"{name}(): out= must be a tuple of {len(result)} tensors")
        written = [_write(name, o, r) for o, r in zip(out, result, strict=True)]
        return type(result)(*written) if hasattr(result, "_fields") else tuple(written)
    if not isinstance(out, Tensor):
        raise TypeError(f"{name}(): argument 'out' must be Tensor, not {type(out).__name__}")
    if not isinstance(result, Tensor):
        raise TypeError(f"{name}(): out= needs a tensor result, got {type(result).__name__}")
    source, target = result._data.dtype, out._data.dtype
    if _kind_rank(source) > _kind_rank(target):
        raise RuntimeError(
            f"{name}(): result type {_TYPE_NAMES[source.kind]} ({source}) can't be cast to the "
            f"desired output type {_TYPE_NAMES[target.kind]} ({target})"
        )
    if result.device != out.device:
        raise RuntimeError(
            f"{name}(): expected out on device {result.device}, but it is on {out.device}"
        )
    if out._data.shape == result._data.shape:
        out._data[...] = result._data
    else:
        if out._data.size:
            warnings.warn(
                f"{name}(): an output with one or more elements was resized since it had shape "
                f"{list(out._data.shape)}, which does not match the required output shape "
                f"{list(result._data.shape)}",
                UserWarning,
                stacklevel=3,
            )
        out._data = result._data.astype(target, copy=True)
    out._bump()
    return out


def with_out(fn: Any) -> Any:
    """``fn`` taking PyTorch's keyword ``out=``: the result is written into that tensor, which is
    returned; refused when an argument requires grad in grad mode, as in PyTorch."""
    name = fn.__name__

    @functools.wraps(fn)
    def wrapper(*args: Any, out: Any = None, **kwargs: Any) -> Any:
        if out is None:
            return fn(*args, **kwargs)
        outs = out if isinstance(out, (tuple, list)) else (out,)
        if is_grad_enabled() and any(
            t.requires_grad for t in _tensors_in((*args, *kwargs.values(), *outs))
        ):
            raise RuntimeError(
                f"{name}(): functions with out=... arguments don't support automatic "
                "differentiation, but one of the arguments requires grad."
            )
        with no_grad():
            result = fn(*args, **kwargs)
        return _write(name, out, result)

    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return wrapper
    params = list(signature.parameters.values())
    keyword = inspect.Parameter("out", inspect.Parameter.KEYWORD_ONLY, default=None)
    at = next((i for i, p in enumerate(params) if p.kind is p.VAR_KEYWORD), len(params))
    wrapper.__signature__ = signature.replace(parameters=[*params[:at], keyword, *params[at:]])
    return wrapper
