"""ASGD, as torch.optim.ASGD."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..backend import array_module_of
from .optimizer import Optimizer, _flag, _non_negative, _number

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
        defaults = dict(
            lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay, maximize=maximize
        )
        super().__init__(params, defaults)

    _hyper_checks = {
        "lr": _non_negative,
        "lambd": _number,
        "alpha": _number,
        "t0": _number,
        "weight_decay": _non_negative,
        "maximize": _flag,
    }

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Apply one ASGD update to every parameter whose grad is not None."""
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            lr, lambd, alpha, t0 = group["lr"], group["lambd"], group["alpha"], group["t0"]
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
                    state["eta"] = float(lr)
                    state["mu"] = 1.0
                    state["ax"] = xp.zeros_like(data)
                state["step"] += 1
                t = state["step"]
                if group["maximize"]:
                    g = -g
                if weight_decay != 0:
                    g = g + weight_decay * data
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
