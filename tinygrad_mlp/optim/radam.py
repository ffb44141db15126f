"""RAdam, as torch.optim.RAdam."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from ..backend import array_module_of
from .optimizer import Optimizer, _hyper_parameters

__all__ = ["RAdam"]


class RAdam(Optimizer):
    """Adam with the variance of its adaptive step rectified, exactly as torch.optim.RAdam.

    For step t: g = g + weight_decay * p (or p = p (1 - lr wd) when ``decoupled_weight_decay``);
    m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; rho_inf = 2 / (1 - b2) - 1,
    rho_t = rho_inf - 2 t b2^t / (1 - b2^t). While rho_t <= 5, p = p - lr m / (1 - b1^t); after,
    p = p - lr m / (1 - b1^t) * r_t sqrt(1 - b2^t) / (sqrt(v) + eps), with
    r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t)).
    """

    _state_names = frozenset({"step", "exp_avg", "exp_avg_sq"})
    _required_state = frozenset({"step", "exp_avg", "exp_avg_sq"})

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        decoupled_weight_decay: bool = False,
        *,
        maximize: bool = False,
    ) -> None:
        super().__init__(params, _hyper_parameters(locals()))

    def _init_state(self, param: Any, group: dict[str, Any]) -> dict[str, Any]:
        xp = array_module_of(param)
        return {"step": 0, "exp_avg": xp.zeros_like(param), "exp_avg_sq": xp.zeros_like(param)}

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Apply one RAdam update to every parameter whose grad is not None."""
        loss = closure() if closure is not None else None
        # g arrives as -g if maximize, plus weight_decay * p or after p = p * (1 - lr * wd)
        for data, g, state, group in self._updates():
            lr, eps = group["lr"], group["eps"]
            beta1, beta2 = group["betas"]
            xp = array_module_of(data)
            t = state["step"]
            m, v = state["exp_avg"], state["exp_avg_sq"]
            m += (1 - beta1) * (g - m)
            v *= beta2
            v += (1 - beta2) * g * g
            correction1, correction2 = 1 - beta1**t, 1 - beta2**t
            rho_inf = 2 / (1 - beta2) - 1
            rho_t = rho_inf - 2 * t * beta2**t / correction2
            if rho_t > 5.0:
                rect = math.sqrt(
                    (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
                )
                data -= (
                    (m / correction1) * lr * (math.sqrt(correction2) / (xp.sqrt(v) + eps)) * rect
                )
            else:
                data -= (m / correction1) * lr
        return loss
