"""Adam and AdamW, as torch.optim."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from ..backend import array_module_of
from .optimizer import Optimizer, _hyper_parameters

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    """Adam with bias correction, optional L2 weight decay and AMSGrad, as torch.optim.Adam.

    For step t: g = g + weight_decay * p; m = beta1 * m + (1 - beta1) * g;
    v = beta2 * v + (1 - beta2) * g * g; (AMSGrad: v_max = max(v_max, v), used in place of v);
    p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps).
    """

    _state_names = frozenset({"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"})
    _required_state = frozenset({"step", "exp_avg", "exp_avg_sq"})
    _decoupled_weight_decay = False

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        maximize: bool = False,
    ) -> None:
        super().__init__(params, _hyper_parameters(locals()))

    def _check_hyper(self, group: dict[str, Any]) -> dict[str, Any]:
        group.setdefault("maximize", False)  # state saved before Adam had maximize
        return super()._check_hyper(group)

    def _init_state(self, param: Any, group: dict[str, Any]) -> dict[str, Any]:
        xp = array_module_of(param)
        state = {"step": 0, "exp_avg": xp.zeros_like(param), "exp_avg_sq": xp.zeros_like(param)}
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = xp.zeros_like(param)
        return state

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Apply one Adam (or AdamW) update to every parameter whose grad is not None."""
        loss = closure() if closure is not None else None
        # g arrives as -g if maximize, plus Adam's L2 term or after AdamW's p = p * (1 - lr * wd)
        for data, g, state, group in self._updates():
            lr = float(group["lr"])
            beta1, beta2 = group["betas"]
            beta1, beta2 = float(beta1), float(beta2)
            xp = array_module_of(data)
            t = state["step"]
            m = state["exp_avg"]
            v = state["exp_avg_sq"]
            # m = beta1 * m + (1 - beta1) * g
            # NOTE: written as m = m + (1 - beta1) * (g - m), the lerp PyTorch uses
            tmp = xp.subtract(g, m, out=xp.empty_like(m))  # an array even for 0-d m
            tmp *= 1.0 - beta1
            m += tmp
            # v = beta2 * v + (1 - beta2) * g * g
            v *= beta2
            xp.multiply(g, 1.0 - beta2, out=tmp)
            tmp *= g
            v += tmp
            if group["amsgrad"]:
                v_max = state.get("max_exp_avg_sq")
                if v_max is None:
                    v_max = state["max_exp_avg_sq"] = xp.zeros_like(data)
                xp.maximum(v_max, v, out=v_max)  # v_max = max(v_max, v)
                v = v_max
            bias1 = 1.0 - beta1**t
            bias2_sqrt = math.sqrt(1.0 - beta2**t)
            # denom = sqrt(v) / sqrt(1 - beta2^t) + eps
            # NOTE: eps is added after the bias correction, as in PyTorch's Adam; the bias
            # corrections scale the step and sqrt(v) rather than forming m_hat and v_hat
            xp.sqrt(v, out=tmp)
            tmp /= bias2_sqrt
            tmp += float(group["eps"])
            # p = p - lr / (1 - beta1^t) * m / denom
            xp.divide(m, tmp, out=tmp)
            tmp *= lr / bias1
            data -= tmp
        return loss


class AdamW(Adam):
    """Adam with decoupled weight decay, as torch.optim.AdamW.

    Each step first shrinks the parameter, p = p * (1 - lr * weight_decay), then applies Adam's
    update without any L2 term in the gradient.
    """

    _decoupled_weight_decay = True

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        maximize: bool = False,
    ) -> None:
        super().__init__(
            params,
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
        )
