"""Check analytic gradients against central finite differences."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

from .. import backend
from .._tensor import Tensor
from ..backend import np
from .engine import grad
from .grad_mode import enable_grad, no_grad

__all__ = ["gradcheck", "gradgradcheck", "GradcheckError"]


class GradcheckError(AssertionError):
    """Raised by ``gradcheck`` when an analytic gradient disagrees with finite differences."""


def _outputs(fn: Callable[..., Any], inputs: Sequence[Tensor]) -> list[Tensor]:
    out = fn(*inputs)
    outs = [out] if isinstance(out, Tensor) else list(out)
    for i, o in enumerate(outs):
        if not isinstance(o, Tensor):
            raise TypeError(f"gradcheck: output {i} of fn is a {type(o).__name__}, not a Tensor")
    return outs


def _values(fn: Callable[..., Any], inputs: Sequence[Tensor]) -> list[Any]:
    """The outputs of fn as float64 host arrays, with nothing recorded."""
    with no_grad():
        return [backend.to_numpy(o._data).astype(np.float64) for o in _outputs(fn, inputs)]


def _close(analytic, numerical, atol: float, rtol: float):
    return np.abs(analytic - numerical) <= atol + rtol * np.abs(numerical)


def _fail(msg: str, raise_exception: bool) -> bool:
    if raise_exception:
        raise GradcheckError(msg)
    return False


def gradcheck(
    fn: Callable[..., Any],
    inputs: Tensor | Sequence[Tensor],
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    fast: bool = False,
    raise_exception: bool = True,
    seed: int = 0,
) -> bool:
    """Compare the vector-Jacobian products of ``fn`` with central differences in float64.

    Every input with ``requires_grad`` is checked against every output. With ``fast=True``
    random projections u^T J v are compared instead of whole Jacobians. Returns True when all
    agree; otherwise raises ``GradcheckError`` naming the output, input and element that disagree
    with both values (or returns False when ``raise_exception`` is False).
    """
    ins = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    checked = [i for i, t in enumerate(ins) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True")
    for i in checked:
        if ins[i].dtype != np.float64:
            warnings.warn(
                f"gradcheck: input {i} is {ins[i].dtype}, not float64; finite differences "
                "with eps=1e-6 are unreliable in lower precision",
                UserWarning,
                stacklevel=2,
            )
    outs = _outputs(fn, ins)
    rng = np.random.default_rng(seed)
    for oi, out in enumerate(outs):
        if not out.requires_grad:
            ok = _check_constant(fn, ins, oi, checked, eps, atol, raise_exception)
        elif fast:
            ok = _check_fast(fn, ins, outs, oi, checked, eps, atol, rtol, rng, raise_exception)
        else:
            ok = _check_full(fn, ins, outs, oi, checked, eps, atol, rtol, raise_exception)
        if not ok:
            return False
    return True


def _numerical_column(fn, ins, t: Tensor, flat_index: int, direction, eps: float, oi: int):
    """d out[oi] / d t along ``direction`` (one element when direction is None), by differences."""
    original = t._data.copy()
    # NOTE: index the array itself: reshape(-1) copies a non-contiguous array, and a step
    # written into that copy would never reach fn.
    where = tuple(int(i) for i in np.unravel_index(flat_index, t.shape))
    xp = backend.array_module_of(t._data)
    step = eps if direction is None else xp.asarray(direction * eps, dtype=t.dtype).reshape(t.shape)
    try:
        if direction is None:
            t._data[where] = original[where] + eps
        else:
            t._data[...] = original + step
        plus = _values(fn, ins)[oi]
        if direction is None:
            t._data[where] = original[where] - eps
        else:
            t._data[...] = original - step
        minus = _values(fn, ins)[oi]
    finally:
        t._data[...] = original
    return (plus - minus) / (2 * eps)


def _check_constant(fn, ins, oi, checked, eps, atol, raise_exception) -> bool:
    """An output cut from the graph has a zero analytic Jacobian: the numerical one must be 0."""
    for i in checked:
        t = ins[i]
        for k in range(t.numel()):
            column = np.abs(_numerical_column(fn, ins, t, k, None, eps, oi))
            if not (column <= atol).all():
                return _fail(
                    f"gradcheck: output {oi} does not require grad, so its analytic derivative "
                    f"with respect to input {i} is 0, but d out / d in[{_unravel(k, t.shape)}] "
                    f"is numerically {float(column.max()):.8g} (was the graph cut by detach?)",
                    raise_exception,
                )
    return True


def _check_full(fn, ins, outs, oi, checked, eps, atol, rtol, raise_exception) -> bool:
    out = outs[oi]
    n_out = out.numel()
    analytic = {i: np.zeros((n_out, ins[i].numel())) for i in checked}
    xp = backend.array_module_of(out._data)
    for j in range(n_out):
        seed = xp.zeros(out.numel(), dtype=out.dtype)
        seed[j] = 1
        gs = grad(
            out,
            [ins[i] for i in checked],
            seed.reshape(out.shape),
            retain_graph=True,
            allow_unused=True,
        )
        for i, g in zip(checked, gs, strict=True):
            if g is not None:
                analytic[i][j] = backend.to_numpy(g._data).astype(np.float64).reshape(-1)
    for i in checked:
        t = ins[i]
        numerical = np.zeros((n_out, t.numel()))
        for k in range(t.numel()):
            numerical[:, k] = _numerical_column(fn, ins, t, k, None, eps, oi).reshape(-1)
        ok = _close(analytic[i], numerical, atol, rtol)
        if not ok.all():
            j, k = np.argwhere(~ok)[0]
            return _fail(
                f"gradcheck: Jacobian mismatch for output {oi} with respect to input {i}: "
                f"d out[{_unravel(j, out.shape)}] / d in[{_unravel(k, t.shape)}]: "
                f"numerical {numerical[j, k]:.8g} vs analytic {analytic[i][j, k]:.8g} "
                f"({int((~ok).sum())} of {ok.size} entries differ)",
                raise_exception,
            )
    return True


def _check_fast(fn, ins, outs, oi, checked, eps, atol, rtol, rng, raise_exception) -> bool:
    out = outs[oi]
    u = rng.standard_normal(out.shape)
    xp = backend.array_module_of(out._data)
    gs = grad(
        out,
        [ins[i] for i in checked],
        xp.asarray(u, dtype=out.dtype),
        retain_graph=True,
        allow_unused=True,
    )
    for i, g in zip(checked, gs, strict=True):
        t = ins[i]
        v = rng.standard_normal(t.shape)
        analytic = (
            0.0 if g is None else float((backend.to_numpy(g._data).astype(np.float64) * v).sum())
        )
        numerical = float((_numerical_column(fn, ins, t, 0, v, eps, oi) * u).sum())
        if not _close(analytic, numerical, atol, rtol):
            return _fail(
                f"gradcheck (fast): u^T J v mismatch for output {oi} with respect to input {i}: "
                f"numerical {numerical:.8g} vs analytic {analytic:.8g}",
                raise_exception,
            )
    return True


def _unravel(k: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(x) for x in np.unravel_index(int(k), shape)) if shape else ()


def gradgradcheck(
    fn: Callable[..., Any],
    inputs: Tensor | Sequence[Tensor],
    grad_outputs: Any = None,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    fast: bool = False,
    raise_exception: bool = True,
    seed: int = 0,
) -> bool:
    """Check second derivatives: gradcheck the first-order gradients of ``fn`` (with
    ``create_graph=True``, contracted with ``grad_outputs`` or random ones) against central
    differences of themselves, in float64."""
    ins = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    checked = [t for t in ins if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradgradcheck: no input has requires_grad=True")
    with enable_grad():
        outs = _outputs(fn, ins)
    rng = np.random.default_rng(seed + 1)
    if grad_outputs is None:
        vs = [Tensor(rng.standard_normal(o.shape), dtype=o.dtype, device=o.device) for o in outs]
    else:
        vs = [grad_outputs] if isinstance(grad_outputs, Tensor) else list(grad_outputs)
        if len(vs) != len(outs):
            raise ValueError(f"gradgradcheck: {len(outs)} outputs but {len(vs)} grad_outputs")
    live = [(o, v) for o, v in zip(outs, vs, strict=True) if o.requires_grad]
    if not live:
        raise ValueError("gradgradcheck: no output of fn requires grad")

    def first_order(*args: Tensor) -> tuple[Tensor, ...]:
        with enable_grad():
            os = [o for o in _outputs(fn, args)]
            pairs = [(o, v) for o, v in zip(os, vs, strict=True) if o.requires_grad]
            wrt = [a for a in args if isinstance(a, Tensor) and a.requires_grad]
            return grad(
                [o for o, _ in pairs],
                wrt,
                [v for _, v in pairs],
                create_graph=True,
                materialize_grads=True,
            )

    return gradcheck(first_order, ins, eps, atol, rtol, fast, raise_exception, seed)
