"""Custom differentiable ops: subclass ``Function`` with static ``forward`` and ``backward``."""

from __future__ import annotations

from typing import Any

from .. import backend
from .. import ops as O
from .._tensor import Tensor
from ..backend import np
from .grad_mode import _Mode, no_grad
from .graph import Node, _wrap

__all__ = ["Function", "FunctionCtx"]


class FunctionCtx:
    """What ``forward`` and ``backward`` of a Function share: saved tensors and flags."""

    def __init__(self) -> None:
        self.saved_tensors: tuple[Tensor, ...] = ()
        self.needs_input_grad: tuple[bool, ...] = ()
        self.materialize_grads = True
        self._tensor_positions: list[int] = []
        self._n_args = 0

    def save_for_backward(self, *tensors: Any) -> None:
        """Keep tensors (or None) for ``backward``, as ``ctx.saved_tensors``."""
        for i, t in enumerate(tensors):
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(
                    f"save_for_backward can only save tensors (or None), but argument {i} is a "
                    f"{type(t).__name__}; keep other values as attributes of ctx"
                )
        self.saved_tensors = tuple(tensors)

    def mark_non_differentiable(self, *tensors: Any) -> None:
        """Accepted for compatibility: integer outputs never carry gradients here."""

    def set_materialize_grads(self, value: bool) -> None:
        """Accepted for compatibility (gradients reaching backward are always tensors)."""
        self.materialize_grads = bool(value)


class Function:
    """A custom op: ``forward(ctx, *args)`` computes with tensor ops (not recorded) and
    ``backward(ctx, grad_output)`` returns one gradient per argument of forward (None for
    non-tensor arguments). A backward written with tensor ops is itself differentiable."""

    @staticmethod
    def forward(ctx: FunctionCtx, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("a Function subclass must implement forward(ctx, ...)")

    @staticmethod
    def backward(ctx: FunctionCtx, *grad_outputs: Any) -> Any:
        raise NotImplementedError("a Function subclass must implement backward(ctx, ...)")

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> Any:
        """Run ``forward`` and record one node whose backward is ``cls.backward``."""
        ctx = FunctionCtx()
        positions = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        ctx._tensor_positions = positions
        ctx._n_args = len(args)
        ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        with no_grad():
            out = cls.forward(ctx, *args, **kwargs)
        if isinstance(out, tuple):
            raise NotImplementedError(
                f"{cls.__name__}.forward returned {len(out)} outputs; a Function here returns "
                "exactly one tensor"
            )
        if not isinstance(out, Tensor):
            raise TypeError(
                f"{cls.__name__}.forward must return a Tensor, got {type(out).__name__}"
            )
        inputs = tuple(args[i] for i in positions)
        needs = tuple(t.requires_grad for t in inputs)
        if not (_Mode.grad_enabled and True in needs):
            return out
        return _wrap(out._data, True, Node(_op_of(cls), inputs, ctx, needs, {}))


_custom_ops: dict[type, O.Op] = {}


def _op_of(cls: type) -> O.Op:
    """The (unregistered) Op that stands for a Function subclass on the tape: what its forward
    saved is the ctx, and its rule is ``cls.backward`` on Tensors, in either namespace."""
    op = _custom_ops.get(cls)
    if op is None:

        def forward(ns: Any, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError(f"{cls.__name__} runs through Function.apply")

        def backward(ns: Any, g: Any, ctx: FunctionCtx, needs: tuple) -> tuple:
            return _backward(cls, ns, g, ctx, needs)

        op = O.Op(cls.__name__, forward, backward, None, custom=cls)
        _custom_ops[cls] = op
    return op


def _backward(cls: type, ns: Any, g: Any, ctx: FunctionCtx, needs: tuple) -> tuple:
    """``cls.backward`` on the incoming gradient as a Tensor; one gradient per tensor argument
    of forward, in ``ns``'s kind."""
    with ns.recording():
        out = cls.backward(ctx, ns.wrap(g))
    out = out if isinstance(out, tuple) else (out,)
    positions = ctx._tensor_positions
    if len(out) != ctx._n_args and (len(out) > ctx._n_args or len(out) <= max(positions)):
        raise RuntimeError(
            f"function {cls.__name__}Backward returned an incorrect number of gradients "
            f"(expected {ctx._n_args}, got {len(out)})"
        )
    grads = []
    for k, pos in enumerate(positions):
        gk = out[pos] if pos < len(out) else None
        if gk is None or not needs[k]:
            grads.append(None)
            continue
        if not isinstance(gk, Tensor):
            gk = _wrap(gk if backend.is_array(gk) else np.asarray(gk))
        value = ns.unwrap(gk)
        grads.append(ns.own(value, value))  # the user's memory is never handed on as it is
    return tuple(grads)
