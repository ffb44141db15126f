"""Adagrad, as torch.optim.Adagrad."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..backend import array_module_of
from .optimizer import Optimizer, _hyper_parameters, _non_negative

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
        super().__init__(params, _hyper_parameters(locals()))
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p] = self._init_state(p._data, group)

    _hyper_checks = dict.fromkeys(("lr_decay", "initial_accumulator_value"), _non_negative)

    def _init_state(self, param: Any, group: dict[str, Any]) -> dict[str, Any]:
        xp = array_module_of(param)
        return {"step": 0, "sum": xp.full_like(param, group["initial_accumulator_value"])}

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Apply one Adagrad update to every parameter whose grad is not None."""
        loss = closure() if closure is not None else None
        # g arrives as -g if maximize, plus weight_decay * p (see Optimizer._updates)
        for data, g, state, group in self._updates():
            xp = array_module_of(data)
            clr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
            s = state["sum"]
            s += g * g
            std = xp.sqrt(s)
            std += group["eps"]
            data -= clr * (g / std)
        return loss
