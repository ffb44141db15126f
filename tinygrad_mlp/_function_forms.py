"""``tm.exp(x)``, ``tm.sum(x, dim)``, ...: the functional forms of Tensor methods that PyTorch
has at its top level. (A module of their own: the names shadow builtins such as ``sum``.)"""

from __future__ import annotations

from typing import Any

from ._conversion import _lift
from ._creation import tensor
from ._tensor import Tensor


def _method_function(name: str):
    def fn(input: Any, *args: Any, **kwargs: Any) -> Any:
        if not isinstance(input, Tensor):
            other = next((a for a in args if isinstance(a, Tensor)), None)
            input = _lift(input, other) if other is not None else tensor(input)
        return getattr(input, name)(*args, **kwargs)

    fn.__name__ = name
    fn.__qualname__ = name
    fn.__doc__ = f"``tm.{name}(x, ...)`` is ``x.{name}(...)``: {getattr(Tensor, name).__doc__}"
    return fn


# the functional forms of Tensor methods that PyTorch also has at its top level
METHOD_FUNCTIONS = (
    "add sub subtract mul multiply div divide true_divide neg negative pow sqrt rsqrt square "
    "reciprocal exp expm1 log log1p log2 log10 sin cos erf abs absolute sign round relu sigmoid "
    "tanh maximum minimum clamp clip softmax log_softmax mm bmm dot outer sum mean prod amax amin "
    "max min argmax argmin var std norm logsumexp all any count_nonzero nansum reshape flatten "
    "unflatten unsqueeze squeeze permute transpose swapaxes t chunk split unbind flip gather "
    "take_along_dim masked_fill isnan isinf isfinite eq ne lt le gt ge greater less "
    "greater_equal less_equal not_equal logical_not clone detach"
).split()

for _name in METHOD_FUNCTIONS:
    globals()[_name] = _method_function(_name)
__all__ = list(METHOD_FUNCTIONS)
