"""Adamax, as torch.optim.Adamax."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..backend import array_module_of
from .optimizer import Optimizer, _hyper_parameters

__all__ = ["Adamax"]


class Adamax(Optimizer):
    """Adamax (Adam with the infinity norm), exactly as torch.optim.Adamax.

    For step t: g = -g if maximize; g = g + weight_decay * p; m = m + (1 - beta1) (g - m);
    u = max(beta2 * u, |g| + eps); p = p - lr / (1 - beta1**t) * m / u.
    """

    _state_names = frozenset({"step", "exp_avg", "exp_inf"})
    _required_state = frozenset({"step", "exp_avg", "exp_inf"})

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        maximize: bool = False,
    ) -> None:
        super().__init__(params, _hyper_parameters(locals()))

    def _init_state(self, param: Any, group: dict[str, Any]) -> dict[str, Any]:
        xp = array_module_of(param)
        return {"step": 0, "exp_avg": xp.zeros_like(param), "exp_inf": xp.zeros_like(param)}

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Apply one Adamax update to every parameter whose grad is not None."""
        loss = closure() if closure is not None else None
        # g arrives as -g if maximize, plus weight_decay * p (see Optimizer._updates)
        for data, g, state, group in self._updates():
            lr, eps = group["lr"], group["eps"]
            beta1, beta2 = group["betas"]
            xp = array_module_of(data)
            t = state["step"]
            m, u = state["exp_avg"], state["exp_inf"]
            m += (1 - beta1) * (g - m)
            u *= beta2
            xp.maximum(u, xp.abs(g) + eps, out=u)
            data -= (lr / (1 - beta1**t)) * (m / u)
        return loss
