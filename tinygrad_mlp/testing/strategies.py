"""Hypothesis strategies for gradient checks of hand-written networks (needs ``hypothesis``).

Values are kept where central differences are accurate: away from kinks such as ReLU's and |x|'s
at 0 (``away_from=(0.0,)`` with a ``margin``), inside domain edges (``positive``,
``unit_interval``). Network parameters are drawn as a seed and filled by numpy's generator
(``network_params``), so that no pre-activation lands exactly on a kink by cancellation, as the
simple values Hypothesis prefers (0.0, 0.5, equal entries) would make it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..backend import np
from .backprop import BackpropReport, check_backprop

__all__ = [
    "hypothesis_strategies",
    "floats",
    "positive",
    "unit_interval",
    "shapes",
    "arrays",
    "broadcastable_shapes",
    "shape_pairs",
    "network_params",
    "one_hot_labels",
    "binary_labels",
    "check_backprop_property",
]


def hypothesis_strategies():
    """The ``hypothesis.strategies`` and ``hypothesis.extra.numpy`` modules, or a clear error."""
    try:
        from hypothesis import strategies as st
        from hypothesis.extra import numpy as hnp
    except ImportError as e:  # hypothesis is a dev dependency
        raise ImportError(
            "tinygrad_mlp.testing.strategies needs Hypothesis: pip install hypothesis "
            '(or pip install -e ".[dev]")'
        ) from e
    return st, hnp


def floats(
    low: float = -2.0, high: float = 2.0, away_from: Sequence[float] = (), margin: float = 0.1
):
    """Finite floats in [low, high], none closer than ``margin`` to a point of ``away_from``.

    A value inside a gap is pushed out to the gap's nearer edge (outside [low, high] only when
    the gap reaches past it).
    """
    st, _ = hypothesis_strategies()
    points = sorted(float(p) for p in away_from)

    def push(x: float) -> float:
        for p in points:
            if abs(x - p) < margin:
                x = p + margin if x >= p else p - margin
        return x

    base = st.floats(low, high, allow_nan=False, allow_infinity=False)
    return base.map(push) if points else base


def positive(low: float = 0.2, high: float = 3.0):
    """Floats in [low, high], away from 0 (inside the domain of log, sqrt, division)."""
    return floats(low, high)


def unit_interval(margin: float = 0.05):
    """Floats in [margin, 1 - margin] (probabilities for binary cross-entropy)."""
    return floats(margin, 1.0 - margin)


def shapes(min_dims: int = 1, max_dims: int = 3, min_side: int = 1, max_side: int = 4):
    """Array shapes of min_dims..max_dims dimensions, each of size min_side..max_side."""
    _, hnp = hypothesis_strategies()
    return hnp.array_shapes(
        min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side
    )


def arrays(
    shape: Any = None,
    dtype: Any = np.float64,
    elements: Any = None,
    *,
    low: float = -2.0,
    high: float = 2.0,
    away_from: Sequence[float] = (),
    margin: float = 0.1,
    max_dims: int = 3,
    max_side: int = 4,
):
    """numpy arrays of ``shape`` (a tuple, an int, a strategy, or None to draw one).

    Elements come from ``elements`` (a strategy) or from ``floats(low, high, away_from, margin)``.
    """
    st, hnp = hypothesis_strategies()
    if shape is None:
        shape = shapes(max_dims=max_dims, max_side=max_side)
    if elements is None:
        elements = floats(low, high, away_from, margin)
    return hnp.arrays(np.dtype(dtype), shape, elements=elements)


def broadcastable_shapes(
    shape: Any = None, min_dims: int = 0, max_dims: int = 3, max_side: int = 4
):
    """Shapes that broadcast to ``shape`` (drawn when None), with fewer dims or size-1 dims."""
    st, hnp = hypothesis_strategies()
    if shape is None:
        return shapes(max_dims=max_dims, max_side=max_side).flatmap(
            lambda s: broadcastable_shapes(s, min_dims, len(s), max_side)
        )
    shape = tuple(shape)
    return hnp.broadcastable_shapes(
        shape, min_dims=min_dims, max_dims=min(max_dims, len(shape)), max_side=max_side
    ).filter(lambda s: np.broadcast_shapes(s, shape) == shape)


def shape_pairs(max_dims: int = 3, max_side: int = 4):
    """Pairs of shapes that broadcast together, the first spanning the result."""
    st, _ = hypothesis_strategies()
    return shapes(max_dims=max_dims, max_side=max_side).flatmap(
        lambda s: st.tuples(st.just(s), broadcastable_shapes(s, 0, len(s), max_side))
    )


def _layer_params(
    sizes: Sequence[int], layout: str, init: str, scale: float, seed: int
) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    params = {}
    for layer, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True), start=1):
        std = {"he": np.sqrt(2.0 / n_in), "xavier": np.sqrt(1.0 / n_in), "normal": scale}[init]
        params[f"W{layer}"] = rng.standard_normal((n_out, n_in)) * std
        bias_shape = (n_out, 1) if layout == "columns" else (n_out,)
        # NOTE: biases drawn nonzero too, so a pre-activation is not exactly 0 when inputs are 0
        params[f"b{layer}"] = rng.uniform(0.05, 0.5, bias_shape) * rng.choice(
            [-1.0, 1.0], bias_shape
        )
    return params


def network_params(
    sizes: Sequence[int], layout: str = "columns", init: str = "he", scale: float = 0.1
):
    """Tutorial-style parameter dicts {"W1": (n1, n0), "b1": ..., "W2": ...} from a drawn seed.

    ``layout`` "columns" gives biases of shape (n, 1) for ``Z = W @ A + b`` (samples in columns);
    "rows" gives biases of shape (n,) for ``Z = A @ W.T + b`` (samples in rows). ``init`` is
    "he" (randn * sqrt(2 / n_in)), "xavier" (randn * sqrt(1 / n_in)) or "normal" (randn * scale).
    """
    st, _ = hypothesis_strategies()
    if layout not in ("columns", "rows"):
        raise ValueError(f"network_params: layout must be 'columns' or 'rows', got {layout!r}")
    if init not in ("he", "xavier", "normal"):
        raise ValueError(f"network_params: init must be 'he', 'xavier' or 'normal', got {init!r}")
    sizes = tuple(int(n) for n in sizes)
    return st.integers(0, 2**32 - 1).map(
        lambda seed: _layer_params(sizes, layout, init, scale, seed)
    )


def one_hot_labels(n_classes: int, n_samples: int, layout: str = "columns"):
    """One-hot float64 labels: shape (n_classes, n_samples) for "columns", transposed for "rows"."""
    st, _ = hypothesis_strategies()

    def encode(labels: list[int]) -> np.ndarray:
        y = np.eye(n_classes)[labels]
        return y.T.copy() if layout == "columns" else y

    return st.lists(st.integers(0, n_classes - 1), min_size=n_samples, max_size=n_samples).map(
        encode
    )


def binary_labels(n_samples: int, layout: str = "columns"):
    """0/1 float64 labels: shape (1, n_samples) for "columns", (n_samples, 1) for "rows"."""
    st, _ = hypothesis_strategies()
    shape = (1, n_samples) if layout == "columns" else (n_samples, 1)
    return st.lists(st.sampled_from([0.0, 1.0]), min_size=n_samples, max_size=n_samples).map(
        lambda v: np.asarray(v).reshape(shape)
    )


def _as_strategy(value: Any, what: str):
    st, _ = hypothesis_strategies()
    if isinstance(value, st.SearchStrategy):
        return value
    if isinstance(value, (list, tuple)):
        return st.tuples(*(_as_strategy(v, what) for v in value))
    if callable(value):
        return st.composite(lambda draw: value(draw))()
    return st.just(value)


def check_backprop_property(
    forward: Callable[..., Any],
    backward: Callable[..., Any],
    make_params: Any,
    make_args: Any = (),
    max_examples: int | None = None,
    shrink: bool = False,
    **check_options: Any,
) -> BackpropReport:
    """Run check_backprop on inputs that Hypothesis draws; raises on the first failure found.

    ``make_params`` is a strategy of parameter dicts or lists (e.g. ``network_params(...)``), or
    a function ``draw -> params``; ``make_args`` is a strategy of a tuple of arguments, a tuple
    of strategies (one per argument) or a function ``draw -> tuple``. ``max_examples`` defaults
    to the active Hypothesis profile's. The first failing example is reported as drawn; with
    ``shrink=True`` Hypothesis first looks for a simpler one (slow: each try is a full check).
    ``check_options`` go to check_backprop (atol, rtol,
    eps, max_elements, directions, seed). Returns the report of the last example.
    """
    st, _ = hypothesis_strategies()
    from hypothesis import HealthCheck, Phase, given, settings

    params_strategy = _as_strategy(make_params, "make_params")
    args_strategy = _as_strategy(make_args, "make_args")
    reports: list[BackpropReport] = []
    options = {
        "deadline": None,
        "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
    }
    if max_examples is not None:
        options["max_examples"] = max_examples
    if not shrink:
        options["phases"] = [Phase.explicit, Phase.reuse, Phase.generate]

    @settings(**options)
    @given(st.data())
    def run(data):
        params = data.draw(params_strategy, label="params")
        args = data.draw(args_strategy, label="args")
        args = args if isinstance(args, tuple) else (args,)
        reports.append(check_backprop(forward, backward, params, *args, **check_options))

    run()
    return reports[-1]
