"""Anomaly mode (``tm.autograd.detect_anomaly``): the engine's checks for NaN and inf.

With anomaly mode on, backward first looks for the first op, in forward order, whose output
holds NaN or inf although its inputs are finite, and then checks every gradient a rule
returns. Each error names the op and, recorded when the op ran, where the user's code made it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import backend
from .._tensor import Tensor
from .grad_mode import detect_anomaly, is_anomaly_enabled, set_anomaly_detection
from .graph import Node

__all__ = ["detect_anomaly", "is_anomaly_enabled", "set_anomaly_detection"]


def _non_finite(array: Any) -> str | None:
    """'nan' or 'inf' when ``array`` holds one (nan first), else None."""
    xp = backend.array_module_of(array)
    if bool(xp.isfinite(array).all()):
        return None
    return "nan" if bool(xp.isnan(array).any()) else "inf"


def _anomaly(node: Node, what: str) -> RuntimeError:
    where = f"\nthe op was created at:\n{node.trace}" if node.trace else ""
    return RuntimeError(f"anomaly detected: {what}{where}")


def check_forward(roots: Sequence[Tensor]) -> None:
    """Raise at the first op, in forward order, whose output holds NaN or inf from finite inputs."""
    found, seen, stack = [], set(), [t for t in roots if t._node is not None]
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        found.append((t._node.seq, t))
        stack.extend(i for i in t._node.inputs if i._node is not None)
    for _, t in sorted(found, key=lambda p: p[0]):
        node = t._node
        what = _non_finite(t._data)
        if what is None or any(_non_finite(x._data) for x in node.inputs):
            continue
        raise _anomaly(
            node,
            f"op '{node.op.name}' produced {what} in its forward output (shape "
            f"{tuple(t.shape)}) from finite inputs",
        )


def check_gradient(ig: Any, node: Node, i: int) -> None:
    """Raise when the gradient ``ig`` that ``node``'s rule gave its input ``i`` is not finite."""
    what = _non_finite(ig._data if isinstance(ig, Tensor) else ig)
    if what is not None:
        raise _anomaly(
            node,
            f"the backward of op '{node.op.name}' produced {what} in the gradient of its input {i}",
        )
