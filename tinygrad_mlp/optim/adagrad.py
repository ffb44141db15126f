"""Adagrad, as torch.optim.Adagrad."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..backend import array_module_of
from .optimizer import Optimizer, _flag, _non_negative

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    """Adagrad, exactly as torch.optim.Adagrad.

    For step t: g = -g if maximize; g = g + weight_decay * p; clr = lr / (1 + (t - 1) lr_decay);
    s = s + g * g; p = p - clr * g / (sqrt(s) + eps). The sums start at
    ``initial_accumulator_value`` when the optimizer is made, as in PyTorch.
    """

    _state_names = frozenset({"step", "sum"})
    _required_state = frozenset({"step", "sum"})

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        maximize: bool = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            lr_decay=lr_decay,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            eps=eps,
            maximize=maximize,
        )
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                state["step"] = 0
                xp = array_module_of(p._data)
                state["sum"] = xp.full_like(p._data, group["initial_accumulator_value"])

    _hyper_checks = {
        **dict.fromkeys(
            ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps"), _non_negative
        ),
        "maximize": _flag,
    }

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Apply one Adagrad update to every parameter whose grad is not None."""
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            lr, lr_decay, eps = group["lr"], group["lr_decay"], group["eps"]
            weight_decay = group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad._data
                data = p._data
                xp = array_module_of(data)
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["sum"] = xp.full_like(data, group["initial_accumulator_value"])
                state["step"] += 1
                t = state["step"]
                if group["maximize"]:
                    g = -g
                if weight_decay != 0:
                    g = g + weight_decay * data
                clr = lr / (1 + (t - 1) * lr_decay)
                s = state["sum"]
                s += g * g
                std = xp.sqrt(s)
                std += eps
                data -= clr * (g / std)
        return loss
