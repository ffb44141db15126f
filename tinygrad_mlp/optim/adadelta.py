"""Adadelta, as torch.optim.Adadelta."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..backend import array_module_of
from .optimizer import Optimizer, _hyper_parameters, _non_negative

__all__ = ["Adadelta"]


class Adadelta(Optimizer):
    """Adadelta, exactly as torch.optim.Adadelta: g = g + weight_decay * p;
    s = rho s + (1 - rho) g^2; delta = sqrt(a + eps) / sqrt(s + eps) * g;
    a = rho a + (1 - rho) delta^2; p = p - lr delta."""

    _state_names = frozenset({"step", "square_avg", "acc_delta"})
    _required_state = frozenset({"step", "square_avg", "acc_delta"})

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        *,
        maximize: bool = False,
    ) -> None:
        super().__init__(params, _hyper_parameters(locals()))

    _hyper_checks = {"rho": lambda name, value: _unit(name, value)}

    def _init_state(self, param: Any, group: dict[str, Any]) -> dict[str, Any]:
        xp = array_module_of(param)
        return {"step": 0, "square_avg": xp.zeros_like(param), "acc_delta": xp.zeros_like(param)}

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Apply one Adadelta update to every parameter whose grad is not None."""
        loss = closure() if closure is not None else None
        # g arrives as -g if maximize, plus weight_decay * p (see Optimizer._updates)
        for data, g, state, group in self._updates():
            lr, rho, eps = group["lr"], group["rho"], group["eps"]
            xp = array_module_of(data)
            square, acc = state["square_avg"], state["acc_delta"]
            square *= rho
            square += (1 - rho) * g * g
            delta = xp.sqrt(acc + eps) / xp.sqrt(square + eps) * g
            acc *= rho
            acc += (1 - rho) * delta * delta
            data -= lr * delta
        return loss


def _unit(name: str, value: Any) -> float:
    value = _non_negative(name, value)
    if value > 1:
        raise ValueError(f"invalid {name}: {value!r} (must be in [0, 1])")
    return value
