"""Custom differentiable ops: subclass ``Function`` with static ``forward`` and ``backward``."""

from __future__ import annotations

from typing import Any

from .. import ops as O
from .._tensor import Node, Tensor, _wrap
from .grad_mode import _Mode, no_grad

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
        result = _wrap(out._data, True)
        node = Node(_op_of(cls), inputs, None, needs, {})
        node.ctx = ctx
        result._node = node
        return result


_custom_ops: dict[type, O.Op] = {}


def _op_of(cls: type) -> O.Op:
    """The (unregistered) Op that stands for a Function subclass on the tape."""
    op = _custom_ops.get(cls)
    if op is None:

        def _not_called(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError(f"{cls.__name__} runs through Function.apply")

        op = O.Op(cls.__name__, _not_called, _not_called, None, custom=cls)
        _custom_ops[cls] = op
    return op
