"""NAdam, as torch.optim.NAdam."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..backend import array_module_of
from .optimizer import Optimizer, _hyper_parameters, _non_negative

__all__ = ["NAdam"]


class NAdam(Optimizer):
    """Adam with Nesterov momentum, exactly as torch.optim.NAdam.

    For step t: mu_t = beta1 (1 - 0.5 * 0.96**(t * momentum_decay)), prod = prod * mu_t;
    g = g + weight_decay * p (or p = p (1 - lr wd) when ``decoupled_weight_decay``);
    m = m + (1 - beta1) (g - m); v = beta2 v + (1 - beta2) g^2;
    d = sqrt(v / (1 - beta2**t)) + eps;
    p = p - lr (1 - mu_t) / (1 - prod) g / d - lr mu_{t+1} / (1 - prod mu_{t+1}) m / d.
    """

    _state_names = frozenset({"step", "mu_product", "exp_avg", "exp_avg_sq"})
    _required_state = frozenset({"step", "mu_product", "exp_avg", "exp_avg_sq"})
    _scalar_state = frozenset({"mu_product"})

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
        maximize: bool = False,
    ) -> None:
        super().__init__(params, _hyper_parameters(locals()))

    _hyper_checks = {"momentum_decay": _non_negative}

    def _init_state(self, param: Any, group: dict[str, Any]) -> dict[str, Any]:
        xp = array_module_of(param)
        zeros = xp.zeros_like
        return {"step": 0, "mu_product": 1.0, "exp_avg": zeros(param), "exp_avg_sq": zeros(param)}

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Apply one NAdam update to every parameter whose grad is not None."""
        loss = closure() if closure is not None else None
        # g arrives as -g if maximize, plus weight_decay * p or after p = p * (1 - lr * wd)
        for data, g, state, group in self._updates():
            lr, eps = group["lr"], group["eps"]
            beta1, beta2 = group["betas"]
            decay = group["momentum_decay"]
            xp = array_module_of(data)
            t = state["step"]
            mu = beta1 * (1.0 - 0.5 * 0.96 ** (t * decay))
            mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * decay))
            # NOTE: PyTorch keeps mu_product as a float32 tensor (the default dtype's), so the
            # product is rounded to float32 at every step
            mu_product = float(xp.float32(state["mu_product"]) * xp.float32(mu))
            state["mu_product"] = mu_product
            m, v = state["exp_avg"], state["exp_avg_sq"]
            m += (1 - beta1) * (g - m)
            v *= beta2
            v += (1 - beta2) * g * g
            denom = xp.sqrt(v / (1 - beta2**t))
            denom += eps
            data -= (lr * (1.0 - mu) / (1.0 - mu_product)) * (g / denom)
            data -= (lr * mu_next / (1.0 - mu_product * mu_next)) * (m / denom)
        return loss
