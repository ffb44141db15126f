"""ASGD, as torch.optim.ASGD."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..backend import array_module_of
from .optimizer import Optimizer, _hyper_parameters, _number

__all__ = ["ASGD"]


class ASGD(Optimizer):
    """Averaged SGD, exactly as torch.optim.ASGD: for step t, g = g + weight_decay * p;
    p = p (1 - lambd eta) - eta g; ax = p while mu = 1, else ax = ax + mu (p - ax); then
    eta = lr / (1 + lambd lr t)^alpha and mu = 1 / max(1, t - t0). ``ax`` is the average."""

    _state_names = frozenset({"step", "eta", "mu", "ax"})
    _required_state = frozenset({"step", "eta", "mu", "ax"})
    _scalar_state = frozenset({"eta", "mu"})

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        lambd: float = 1e-4,
        alpha: float = 0.75,
        t0: float = 1e6,
        weight_decay: float = 0.0,
        *,
        maximize: bool = False,
    ) -> None:
        super().__init__(params, _hyper_parameters(locals()))

    _hyper_checks = dict.fromkeys(("lambd", "alpha", "t0"), _number)

    def _init_state(self, param: Any, group: dict[str, Any]) -> dict[str, Any]:
        xp = array_module_of(param)
        return {"step": 0, "eta": float(group["lr"]), "mu": 1.0, "ax": xp.zeros_like(param)}

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Apply one ASGD update to every parameter whose grad is not None."""
        loss = closure() if closure is not None else None
        # g arrives as -g if maximize, plus weight_decay * p (see Optimizer._updates)
        for data, g, state, group in self._updates():
            lr, lambd, alpha, t0 = group["lr"], group["lambd"], group["alpha"], group["t0"]
            t = state["step"]
            eta = state["eta"]
            data *= 1 - lambd * eta
            data -= eta * g
            ax = state["ax"]
            if state["mu"] != 1:
                ax += (data - ax) * state["mu"]
            else:
                ax[...] = data
            state["eta"] = lr / ((1 + lambd * lr * t) ** alpha)
            state["mu"] = 1 / max(1, t - t0)
        return loss
