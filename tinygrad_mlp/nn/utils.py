"""torch.nn.utils: gradient clipping and flattening parameters into one vector."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from .. import backend
from .._tensor import Tensor
from ..autograd.graph import replayable

__all__ = [
    "clip_grad_norm_",
    "clip_grad_value_",
    "parameters_to_vector",
    "vector_to_parameters",
]


def _params(parameters: Any) -> list[Tensor]:
    if isinstance(parameters, Tensor):
        return [parameters]
    return list(parameters)


@replayable
def clip_grad_norm_(
    parameters: Iterable[Tensor] | Tensor,
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach: Any = None,
) -> Tensor:
    """Scale all gradients together so that their joint ``norm_type``-norm is at most
    ``max_norm``; return the norm before clipping (a 0-d tensor), as PyTorch does.

    The scale is max_norm / (norm + 1e-6), applied only when it is below 1.
    """
    grads = [p.grad._data for p in _params(parameters) if p.grad is not None]
    if not grads:
        return Tensor(0.0)
    xp = backend.array_module_of(grads[0])
    norm_type = float(norm_type)
    if math.isinf(norm_type):
        norms = [xp.abs(g).max() if g.size else xp.asarray(0.0, g.dtype) for g in grads]
        total = xp.max(xp.stack(norms))
    else:
        # the norm of the per-parameter norms is the norm of all elements together
        norms = [(xp.abs(g) ** norm_type).sum() ** (1.0 / norm_type) for g in grads]
        total = (xp.stack(norms).astype(grads[0].dtype) ** norm_type).sum() ** (1.0 / norm_type)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, "
            "so it cannot be clipped. To disable this error and scale the gradients by the "
            "non-finite norm anyway, set `error_if_nonfinite=False`"
        )
    coef = float(max_norm) / (float(total) + 1e-6)
    if coef < 1.0:
        for g in grads:
            g *= coef
    return Tensor._wrap(xp.asarray(total), False, None)


@replayable
def clip_grad_value_(parameters: Iterable[Tensor] | Tensor, clip_value: float, foreach=None):
    """Clip every gradient elementwise into [-clip_value, clip_value], in place."""
    clip_value = float(clip_value)
    for p in _params(parameters):
        if p.grad is not None:
            g = p.grad._data
            backend.array_module_of(g).clip(g, -clip_value, clip_value, out=g)


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """All parameters flattened and joined into one 1-D tensor (a copy, outside the graph)."""
    params = _params(parameters)
    if not params:
        raise RuntimeError("parameters_to_vector: no parameters given")
    xp = backend.array_module_of(params[0]._data)
    devices = {p.device for p in params}
    if len(devices) > 1:
        raise TypeError(
            "Found two parameters on different devices, this is currently not supported."
        )
    return Tensor._wrap(xp.concatenate([p._data.reshape(-1) for p in params]), False, None)


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Copy consecutive pieces of the 1-D ``vec`` into the parameters, in place."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected torch.Tensor, but got: {type(vec).__name__}")
    data = vec._data
    if data.ndim != 1:
        raise RuntimeError(f"vector_to_parameters: vec must be 1-D, got shape {tuple(data.shape)}")
    params = _params(parameters)
    total = sum(p._data.size for p in params)
    if total != data.size:
        raise RuntimeError(
            f"vector_to_parameters: vec has {data.size} elements, the parameters {total}"
        )
    start = 0
    for p in params:
        n = p._data.size
        p._data[...] = data[start : start + n].reshape(p._data.shape)
        start += n
