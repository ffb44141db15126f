"""SGD, as torch.optim.SGD."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .optimizer import Optimizer, _flag, _hyper_parameters, _number

__all__ = ["SGD"]


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, dampening, Nesterov and weight decay.

    For each parameter p with gradient g, exactly as torch.optim.SGD:
    d = -g if maximize else g; d = d + weight_decay * p;
    buf = d on the first step, then buf = momentum * buf + (1 - dampening) * d;
    d = d + momentum * buf if nesterov else buf; p = p - lr * d.
    """

    _state_names = frozenset({"momentum_buffer"})

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        maximize: bool = False,
    ) -> None:
        super().__init__(params, _hyper_parameters(locals()))

    _hyper_checks = {"dampening": _number, "nesterov": _flag}

    def _check_hyper(self, group: dict[str, Any]) -> dict[str, Any]:
        group = super()._check_hyper(group)
        if group["nesterov"] and (group["momentum"] <= 0.0 or group["dampening"] != 0.0):
            raise ValueError(
                "invalid nesterov: True needs momentum > 0 and dampening = 0, got "
                f"momentum={group['momentum']!r}, dampening={group['dampening']!r}"
            )
        return group

    def _init_state(self, param: Any, group: dict[str, Any]) -> dict[str, Any]:
        # as PyTorch, a momentum buffer only with momentum, taken from the first step's d
        return {"momentum_buffer": None} if group["momentum"] != 0.0 else {}

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Apply one SGD update to every parameter whose grad is not None."""
        loss = closure() if closure is not None else None
        groups = self.param_groups
        for group in groups:
            if group["momentum"] != 0.0 or group["weight_decay"] != 0.0 or group["maximize"]:
                break
        else:  # the common case, plain SGD: p = p - lr * g
            for group in groups:
                lr = float(group["lr"])
                for p in group["params"]:
                    g = p.grad
                    if g is not None:
                        data = p._data
                        data -= lr * g._data
            return loss
        # d arrives as -g if maximize, plus weight_decay * p (see Optimizer._updates)
        for data, d, state, group in self._updates():
            lr = float(group["lr"])
            momentum = float(group["momentum"])
            # whether d is a fresh array that may be overwritten, or the gradient itself
            fresh = group["weight_decay"] != 0.0 or group["maximize"]
            if momentum != 0.0:
                dampening = float(group["dampening"])
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state["momentum_buffer"] = d.copy()  # first step: buf = d
                else:
                    # buf = momentum * buf + (1 - dampening) * d
                    buf *= momentum
                    if dampening == 0.0:
                        buf += d
                    else:
                        buf += (1.0 - dampening) * d
                if group["nesterov"]:
                    step_dir = buf * momentum  # d = d + momentum * buf
                    step_dir += d
                    d, fresh = step_dir, True
                else:
                    d, fresh = buf, False  # d = buf
            # p = p - lr * d
            if fresh:
                d *= lr
                data -= d
            else:
                data -= lr * d
        return loss
