"""Higher-level differentiation with PyTorch's signatures: jacobian, hessian, vjp, jvp, hvp, vhp.

Each is built from ``autograd.grad`` with ``create_graph=True``; jvp uses the double-vjp trick
(the vjp is linear in its vector, so differentiating it again with respect to that vector
gives J v)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._creation import stack, zeros
from .._tensor import Tensor
from .engine import grad
from .grad_mode import enable_grad

__all__ = ["jacobian", "hessian", "vjp", "jvp", "hvp", "vhp"]


def _as_tuple(value: Any, what: str) -> tuple[tuple[Tensor, ...], bool]:
    if isinstance(value, Tensor):
        return (value,), False
    items = tuple(value)
    for i, t in enumerate(items):
        if not isinstance(t, Tensor):
            raise TypeError(f"{what} {i} is a {type(t).__name__}, not a Tensor")
    return items, True


def _fresh(inputs: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    """The inputs as new leaves that require grad (so the function's graph starts there)."""
    return tuple(t.detach().requires_grad_(True) if t.is_floating_point() else t for t in inputs)


def _grads(outputs, inputs, grad_outputs, create_graph: bool, strict: bool, what: str):
    live = [(o, g) for o, g in zip(outputs, grad_outputs, strict=True) if o.requires_grad]
    if not live:
        if strict:
            raise RuntimeError(f"{what}: the output does not depend on the inputs (strict=True)")
        return tuple(t.detach() * 0 for t in inputs)
    gs = grad(
        [o for o, _ in live],
        list(inputs),
        [g for _, g in live],
        create_graph=True,
        allow_unused=True,
    )
    out = []
    for i, (t, g) in enumerate(zip(inputs, gs, strict=True)):
        if g is None:
            if strict:
                raise RuntimeError(f"{what}: output is independent of input {i} (strict=True)")
            g = t.detach() * 0
        out.append(g if create_graph else g.detach())
    return tuple(out)


def vjp(func: Callable, inputs: Any, v: Any = None, create_graph: bool = False,
        strict: bool = False):  # fmt: skip
    """(func(inputs), v^T J): the vector-Jacobian product at ``inputs``."""
    ins, multi = _as_tuple(inputs, "inputs: item")
    ins = _fresh(ins)
    with enable_grad():
        out = func(*ins)
        outs, multi_out = _as_tuple(out, "output")
        if v is None:
            if any(o.numel() != 1 for o in outs):
                raise RuntimeError("vjp: v can be omitted only for a function with scalar outputs")
            vs = tuple(o.detach() * 0 + 1 for o in outs)
        else:
            vs, _ = _as_tuple(v, "v: item")
        gs = _grads(outs, ins, vs, create_graph, strict, "vjp")
    result_out = out if create_graph else _detach(out)
    return result_out, (gs if multi else gs[0])


def jvp(func: Callable, inputs: Any, v: Any = None, create_graph: bool = False,
        strict: bool = False):  # fmt: skip
    """(func(inputs), J v): the Jacobian-vector product, by differentiating a vjp again."""
    ins, multi = _as_tuple(inputs, "inputs: item")
    ins = _fresh(ins)
    if v is None:
        if any(t.numel() != 1 for t in ins):
            raise RuntimeError("jvp: v can be omitted only for scalar inputs")
        vs = tuple(t.detach() * 0 + 1 for t in ins)
    else:
        vs, _ = _as_tuple(v, "v: item")
    with enable_grad():
        out = func(*ins)
        outs, multi_out = _as_tuple(out, "output")
        # u is a dummy cotangent: g(u) = J^T u is linear in u, so d(g . v)/du = J v
        us = tuple(o.detach() * 0 + 0 for o in outs)
        us = tuple(u.requires_grad_(True) for u in us)
        gs = _grads(outs, ins, us, True, strict, "jvp")
        total = sum(((g * w).sum() for g, w in zip(gs, vs, strict=True)), start=us[0].sum() * 0)
        jv = grad(total, list(us), create_graph=create_graph, allow_unused=True)
        jv = tuple((j if j is not None else o.detach() * 0) for j, o in zip(jv, outs, strict=True))
        if not create_graph:
            jv = tuple(j.detach() for j in jv)
    result_out = out if create_graph else _detach(out)
    return result_out, (jv if multi_out else jv[0])


def jacobian(func: Callable, inputs: Any, create_graph: bool = False, strict: bool = False,
             vectorize: bool = False, strategy: str = "reverse-mode"):  # fmt: skip
    """The Jacobian d out / d in, shaped out.shape + in.shape (nested tuples for several)."""
    ins, multi = _as_tuple(inputs, "inputs: item")
    ins = _fresh(ins)
    with enable_grad():
        out = func(*ins)
        outs, multi_out = _as_tuple(out, "output")
        rows = []
        for o in outs:
            flat = o.reshape(-1)
            per_input = [[] for _ in ins]
            for j in range(flat.numel()):
                gs = _grads((flat[j],), ins, (None,), create_graph, strict, "jacobian")
                for k, g in enumerate(gs):
                    per_input[k].append(g)
            blocks = []
            for k, t in enumerate(ins):
                if per_input[k]:
                    block = stack(per_input[k]).reshape(*o.shape, *t.shape)
                else:
                    block = zeros(*o.shape, *t.shape, dtype=t.dtype)
                blocks.append(block)
            rows.append(tuple(blocks) if multi else blocks[0])
    return tuple(rows) if multi_out else rows[0]


def hessian(func: Callable, inputs: Any, create_graph: bool = False, strict: bool = False,
            vectorize: bool = False, outer_jacobian_strategy: str = "reverse-mode"):  # fmt: skip
    """The Hessian of a scalar function: the Jacobian of its gradient."""
    ins, multi = _as_tuple(inputs, "inputs: item")

    def gradient(*args: Tensor):
        out = func(*args)
        if not isinstance(out, Tensor) or out.numel() != 1:
            raise RuntimeError("hessian: the function must return a single-element Tensor")
        gs = _grads((out.reshape(()),), args, (None,), True, strict, "hessian")
        return gs if multi else gs[0]

    return jacobian(gradient, ins if multi else ins[0], create_graph, strict)


def vhp(func: Callable, inputs: Any, v: Any = None, create_graph: bool = False,
        strict: bool = False):  # fmt: skip
    """(func(inputs), v^T H) for a scalar function."""
    ins, multi = _as_tuple(inputs, "inputs: item")
    ins = _fresh(ins)
    vs, _ = _as_tuple(v, "v: item") if v is not None else (None, False)
    if vs is None:
        if any(t.numel() != 1 for t in ins):
            raise RuntimeError("vhp: v can be omitted only for scalar inputs")
        vs = tuple(t.detach() * 0 + 1 for t in ins)
    with enable_grad():
        out = func(*ins)
        if not isinstance(out, Tensor) or out.numel() != 1:
            raise RuntimeError("vhp: the function must return a single-element Tensor")
        gs = _grads((out.reshape(()),), ins, (None,), True, strict, "vhp")
        total = sum(((g * w).sum() for g, w in zip(gs, vs, strict=True)), start=out.reshape(()) * 0)
        hv = _grads((total,), ins, (None,), create_graph, strict, "vhp")
    result_out = out if create_graph else out.detach()
    return result_out, (hv if multi else hv[0])


def hvp(func: Callable, inputs: Any, v: Any = None, create_graph: bool = False,
        strict: bool = False):  # fmt: skip
    """(func(inputs), H v) for a scalar function (H is symmetric, so H v = v^T H)."""
    return vhp(func, inputs, v, create_graph, strict)


def _detach(out: Any) -> Any:
    if isinstance(out, Tensor):
        return out.detach()
    return tuple(o.detach() for o in out)
