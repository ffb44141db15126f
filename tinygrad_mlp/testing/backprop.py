"""check_backprop: a hand-derived backward pass against autodiff and central finite differences."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._tensor import Tensor
from ..autograd import grad
from ..autograd.grad_mode import no_grad
from ..backend import np

__all__ = ["check_backprop", "BackpropReport", "ParamReport"]


@dataclass
class ParamReport:
    """How one parameter's hand gradient compared: worst errors over the elements checked."""

    name: str
    shape: tuple[int, ...]
    checked: int  # elements compared with finite differences
    max_error_autodiff: float  # max |hand - autodiff| over every element
    max_error_finite_difference: float  # max |hand - finite difference| over the checked ones


@dataclass
class BackpropReport:
    """What check_backprop compared; ``str()`` prints one line per parameter."""

    loss: float
    params: dict[Any, ParamReport] = field(default_factory=dict)
    # (hand, autodiff, finite difference) directional derivatives along random directions
    directions: list[tuple[float, float, float]] = field(default_factory=list)

    @property
    def max_error(self) -> float:
        """The largest error against either reference over all parameters."""
        errors = [
            max(p.max_error_autodiff, p.max_error_finite_difference) for p in self.params.values()
        ]
        return max(errors, default=0.0)

    def __str__(self) -> str:
        lines = [f"backprop checked: loss {self.loss:.6g}"]
        for p in self.params.values():
            lines.append(
                f"  {p.name!s:>12} {str(p.shape):>14}: max |hand - autodiff| "
                f"{p.max_error_autodiff:.2e}, max |hand - finite difference| "
                f"{p.max_error_finite_difference:.2e} over {p.checked} checked"
            )
        for d, (hand, auto, fd) in enumerate(self.directions):
            lines.append(
                f"  random direction {d}: hand {hand:.10g}, autodiff {auto:.10g}, "
                f"finite difference {fd:.10g}"
            )
        return "\n".join(lines)


# ---------------------------------------------------------------- containers


def _entries(params: Any) -> tuple[list, list[np.ndarray], str]:
    """(keys, float64 copies, kind) of a dict, list or tuple of parameters."""
    if isinstance(params, Mapping):
        keys, values, kind = list(params.keys()), list(params.values()), "dict"
    elif isinstance(params, (list, tuple)):
        keys, values, kind = list(range(len(params))), list(params), type(params).__name__
    else:
        raise TypeError(
            "check_backprop: params must be a dict of arrays ({'W1': ..., 'b1': ...}) or a list "
            f"or tuple of arrays, got {type(params).__name__}"
        )
    arrays = [np.array(np.asarray(v), dtype=np.float64) for v in values]
    return keys, arrays, kind


def _rebuild(keys: list, values: list, kind: str) -> Any:
    if kind == "dict":
        return dict(zip(keys, values, strict=True))
    return tuple(values) if kind == "tuple" else list(values)


def _label(key: Any, kind: str) -> str:
    return repr(key) if kind == "dict" else f"params[{key}]"


def _float64_args(args: tuple) -> tuple:
    """Floating numpy arrays in args as float64 (the finite differences need the precision)."""
    return tuple(
        a.astype(np.float64) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a
        for a in args
    )


def _undo_d_prefix(keys: list, grads: Mapping) -> Mapping:
    """Gradients keyed "dW1", "db1" as many tutorials keep them, keyed "W1", "b1" instead.

    Used when no parameter's own key is among the gradients but some "d" + key is; the other
    "d" entries (intermediate ones such as "dA1" or "dZ2") are then left out.
    """
    names = [k for k in keys if isinstance(k, str)]
    if any(k in grads for k in keys) or not any(f"d{k}" in grads for k in names):
        return grads
    out = {k: grads[f"d{k}"] for k in names if f"d{k}" in grads}
    out.update({k: v for k, v in grads.items() if not (isinstance(k, str) and k.startswith("d"))})
    return out


def _hand_gradients(backward, keys, arrays, kind, args) -> list[np.ndarray]:
    """The hand gradients in the order of ``keys``, with missing, extra and misshapen ones named."""
    copies = _rebuild(keys, [a.copy() for a in arrays], kind)
    grads = backward(copies, *args)
    if kind == "dict":
        if not isinstance(grads, Mapping):
            raise AssertionError(
                f"check_backprop: backward returned a {type(grads).__name__}; params is a dict, "
                f"so it must return a dict with the keys {keys}"
            )
        grads = _undo_d_prefix(keys, grads)
        missing = [k for k in keys if k not in grads]
        extra = [k for k in grads if k not in keys]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"no gradient for {', '.join(map(repr, missing))}")
            if extra:
                parts.append(f"gradients for unknown keys {', '.join(map(repr, extra))}")
            raise AssertionError(
                f"check_backprop: backward returned {'; '.join(parts)} (params has {keys})"
            )
        values = [grads[k] for k in keys]
    else:
        values = list(grads) if isinstance(grads, (list, tuple)) else None
        if values is None or len(values) != len(keys):
            got = f"{len(values)} gradients" if values is not None else type(grads).__name__
            raise AssertionError(
                f"check_backprop: backward returned {got} for {len(keys)} parameters"
            )
    out = []
    for key, param, g in zip(keys, arrays, values, strict=True):
        g = np.asarray(g, dtype=np.float64)
        if g.shape != param.shape:
            hint = (
                " (transposed?)"
                if g.shape == param.shape[::-1] and g.ndim > 1
                else (" (a keepdims or a missing axis?)" if g.size == param.size else "")
            )
            raise AssertionError(
                f"check_backprop: the gradient of {_label(key, kind)} has shape {g.shape}, but "
                f"the parameter has shape {param.shape}{hint}"
            )
        out.append(g)
    return out


# ---------------------------------------------------------------- the two references


def _autodiff_gradients(forward, keys, arrays, kind, args) -> tuple[float, list[np.ndarray]]:
    tensors = [Tensor(a, requires_grad=True, dtype=a.dtype) for a in arrays]
    try:
        loss = forward(_rebuild(keys, tensors, kind), *args)
    except TypeError as e:
        if "Tensor" in str(e) or "__array_ufunc__" in str(e) or "unsupported operand" in str(e):
            raise TypeError(
                f"check_backprop: forward failed on Tensors ({e}); write it with "
                "`import tinygrad_mlp.numpy as np` instead of numpy"
            ) from e
        raise
    if not isinstance(loss, Tensor) or math.prod(loss.shape) != 1:
        what = f"shape {loss.shape}" if isinstance(loss, Tensor) else type(loss).__name__
        raise AssertionError(
            f"check_backprop: forward must return a scalar loss Tensor, got {what}; write it with "
            "`import tinygrad_mlp.numpy as np` so that numpy calls record the graph"
        )
    if not loss.requires_grad:
        grads = [np.zeros_like(a) for a in arrays]
    else:
        found = grad(loss, tensors, allow_unused=True)
        grads = [
            np.zeros_like(a) if g is None else np.asarray(g, dtype=np.float64).reshape(a.shape)
            for a, g in zip(arrays, found, strict=True)
        ]
    return float(loss.item()), grads


def _loss_function(forward, keys, kind, args) -> Callable[[list[np.ndarray]], float]:
    """The loss as a float of parameter arrays, evaluated on Tensors outside the graph."""

    def loss(values: list[np.ndarray]) -> float:
        with no_grad():
            out = forward(_rebuild(keys, [Tensor(v, dtype=v.dtype) for v in values], kind), *args)
        return float(np.asarray(out, dtype=np.float64).reshape(()))

    return loss


def _chosen_elements(size: int, max_elements: int | None, rng) -> np.ndarray:
    if max_elements is None or size <= max_elements:
        return np.arange(size)
    return np.sort(rng.choice(size, size=max_elements, replace=False))


def _central_difference(loss, values: list[np.ndarray], i: int, flat: int, eps: float) -> float:
    view = values[i].reshape(-1)
    old = view[flat]
    view[flat] = old + eps
    up = loss(values)
    view[flat] = old - eps
    down = loss(values)
    view[flat] = old
    return (up - down) / (2 * eps)


# ---------------------------------------------------------------- comparing


def _index(flat: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(flat, shape)) if shape else ()


def _close(hand, ref, atol: float, rtol: float):
    return np.abs(hand - ref) <= atol + rtol * np.abs(ref)


def _verdict(hand_ok_autodiff: bool, hand_ok_fd: bool) -> str:
    if not hand_ok_autodiff and not hand_ok_fd:
        return "the hand-derived gradient disagrees with both autodiff and finite differences"
    if not hand_ok_fd:
        return (
            "the hand-derived gradient agrees with autodiff but not with finite differences "
            "(a kink, such as ReLU at 0, within eps of the inputs, or eps too large?)"
        )
    return (
        "the hand-derived gradient agrees with finite differences but not with autodiff (does "
        "forward use something outside tinygrad_mlp.numpy, or a non-differentiable function?)"
    )


def _format_failure(label, index, hand, auto, fd, bad, total, ok_auto, ok_fd) -> str:
    return (
        f"check_backprop: gradient of {label} is wrong at index {index}: hand {hand:.10g}, "
        f"autodiff {auto:.10g}, finite difference {fd:.10g}; {_verdict(ok_auto, ok_fd)} "
        f"({bad} of {total} checked elements differ)"
    )


def check_backprop(
    forward: Callable[..., Any],
    backward: Callable[..., Any],
    params: Mapping[Any, Any] | Sequence[Any],
    *args: Any,
    atol: float = 1e-6,
    rtol: float = 1e-4,
    eps: float = 1e-6,
    max_elements: int | None = None,
    directions: int = 0,
    seed: int = 0,
) -> BackpropReport:
    """Check ``backward(params, *args)`` against autodiff and finite differences of ``forward``.

    ``forward(params, *args)`` returns the scalar loss, written with ``tinygrad_mlp.numpy``;
    ``backward(params, *args)`` returns the hand-derived gradients with the keys (a dict; "dW1"
    for "W1" works too) or the order (a list or tuple) of ``params``. Parameters are converted
    to float64. Every element of every hand gradient is compared with the autodiff gradient;
    the elements compared with central differences are all of them, or ``max_elements`` per
    parameter drawn with ``seed``.
    ``directions`` > 0 adds that many random directions v over all parameters, comparing
    hand . v with the directional difference (cheap checks of a whole large network).

    Raises AssertionError naming the parameter, the element, the hand, autodiff and finite
    difference values, and which reference disagrees; returns a BackpropReport otherwise.
    """
    keys, arrays, kind = _entries(params)
    args = _float64_args(args)
    hands = _hand_gradients(backward, keys, arrays, kind, args)
    loss_value, autos = _autodiff_gradients(forward, keys, arrays, kind, args)
    loss = _loss_function(forward, keys, kind, args)
    rng = np.random.default_rng(seed)
    values = [a.copy() for a in arrays]
    report = BackpropReport(loss=loss_value)
    failures = []
    for i, (key, hand, auto) in enumerate(zip(keys, hands, autos, strict=True)):
        label = _label(key, kind)
        chosen = _chosen_elements(hand.size, max_elements, rng)
        fd = np.array([_central_difference(loss, values, i, j, eps) for j in chosen])
        hand_flat, auto_flat = hand.reshape(-1), auto.reshape(-1)
        ok_auto_all = _close(hand_flat, auto_flat, atol, rtol)
        ok_auto = ok_auto_all[chosen]
        ok_fd = _close(hand_flat[chosen], fd, atol, rtol)
        report.params[key] = ParamReport(
            name=label,
            shape=hand.shape,
            checked=len(chosen),
            max_error_autodiff=float(np.max(np.abs(hand_flat - auto_flat), initial=0.0)),
            max_error_finite_difference=float(np.max(np.abs(hand_flat[chosen] - fd), initial=0.0)),
        )
        bad_fd = ~(ok_auto & ok_fd)
        if bad_fd.any():
            k = int(np.argmax(np.abs(hand_flat[chosen] - fd) * bad_fd + bad_fd))
            j = int(chosen[k])
            failures.append(
                _format_failure(
                    label,
                    _index(j, hand.shape),
                    hand_flat[j],
                    auto_flat[j],
                    fd[k],
                    int(bad_fd.sum()),
                    len(chosen),
                    bool(ok_auto[k]),
                    bool(ok_fd[k]),
                )
            )
        elif not ok_auto_all.all():
            # an element that finite differences did not visit disagrees with autodiff
            j = int(np.argmax(np.abs(hand_flat - auto_flat) * ~ok_auto_all))
            fd_j = _central_difference(loss, values, i, j, eps)
            failures.append(
                _format_failure(
                    label,
                    _index(j, hand.shape),
                    hand_flat[j],
                    auto_flat[j],
                    fd_j,
                    int((~ok_auto_all).sum()),
                    hand.size,
                    False,
                    bool(_close(hand_flat[j], fd_j, atol, rtol)),
                )
            )
    failures += _check_directions(
        loss, arrays, hands, autos, directions, rng, eps, atol, rtol, report.directions
    )
    if failures:
        raise AssertionError("\n".join(failures))
    return report


def _check_directions(loss, arrays, hands, autos, n, rng, eps, atol, rtol, found) -> list[str]:
    """Hand and autodiff directional derivatives against (L(p + eps v) - L(p - eps v)) / 2 eps."""
    messages = []
    for d in range(n):
        v = [rng.standard_normal(a.shape) for a in arrays]
        up = loss([a + eps * u for a, u in zip(arrays, v, strict=True)])
        down = loss([a - eps * u for a, u in zip(arrays, v, strict=True)])
        fd = (up - down) / (2 * eps)
        hand = sum(float(np.sum(h * u)) for h, u in zip(hands, v, strict=True))
        auto = sum(float(np.sum(g * u)) for g, u in zip(autos, v, strict=True))
        found.append((hand, auto, fd))
        # NOTE: a sum over many elements: the absolute tolerance grows with its size
        scale = max(abs(auto), abs(fd), 1.0)
        ok_auto = abs(hand - auto) <= atol * scale + rtol * abs(auto)
        ok_fd = abs(hand - fd) <= atol * scale + rtol * abs(fd)
        if not (ok_auto and ok_fd):
            messages.append(
                f"check_backprop: the directional derivative along random direction {d} is "
                f"wrong: hand {hand:.10g}, autodiff {auto:.10g}, finite difference {fd:.10g}; "
                f"{_verdict(ok_auto, ok_fd)}"
            )
    return messages
