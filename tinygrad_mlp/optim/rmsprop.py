"""RMSprop, as torch.optim.RMSprop."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..backend import array_module_of
from .optimizer import Optimizer, _flag, _hyper_parameters, _non_negative

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    """RMSprop, exactly as torch.optim.RMSprop.

    g = -g if maximize; g = g + weight_decay * p; v = alpha * v + (1 - alpha) * g * g;
    centered: m = m + (1 - alpha) * (g - m), avg = sqrt(v - m * m) + eps, else avg = sqrt(v) + eps;
    momentum: b = momentum * b + g / avg, p = p - lr * b; else p = p - lr * g / avg.
    """

    _state_names = frozenset({"step", "square_avg", "momentum_buffer", "grad_avg"})
    _required_state = frozenset({"step", "square_avg"})

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        maximize: bool = False,
    ) -> None:
        super().__init__(params, _hyper_parameters(locals()))

    _hyper_checks = {"alpha": _non_negative, "centered": _flag}

    def _init_state(self, param: Any, group: dict[str, Any]) -> dict[str, Any]:
        xp = array_module_of(param)
        state = {"step": 0, "square_avg": xp.zeros_like(param)}
        if group["momentum"] > 0:
            state["momentum_buffer"] = xp.zeros_like(param)
        if group["centered"]:
            state["grad_avg"] = xp.zeros_like(param)
        return state

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Apply one RMSprop update to every parameter whose grad is not None."""
        loss = closure() if closure is not None else None
        # g arrives as -g if maximize, plus weight_decay * p (see Optimizer._updates)
        for data, g, state, group in self._updates():
            lr, alpha, eps, momentum = group["lr"], group["alpha"], group["eps"], group["momentum"]
            xp = array_module_of(data)
            v = state["square_avg"]
            v *= alpha
            v += (1 - alpha) * g * g  # v = alpha v + (1 - alpha) g^2
            if group["centered"]:
                m = state.setdefault("grad_avg", xp.zeros_like(data))
                m += (1 - alpha) * (g - m)  # PyTorch's lerp
                avg = xp.sqrt(v - m * m)
            else:
                avg = xp.sqrt(v)
            avg += eps
            if momentum > 0:
                buf = state.setdefault("momentum_buffer", xp.zeros_like(data))
                buf *= momentum
                buf += g / avg
                data -= lr * buf
            else:
                data -= lr * (g / avg)
        return loss
