"""Hypothesis strategies: small shapes, broadcastable pairs, and float64 arrays per value domain.

The domains are those named by ``ops.Sample``. Every domain keeps its values away from kinks and
domain edges, so that central differences with eps = 1e-6 are accurate:

- "real": [-2, 2];
- "positive": [0.2, 3];
- "nonzero": |x| in [0.1, 2] (away from the kinks of relu and abs at 0);
- "unit": [0.05, 0.95] (inside the domain of binary cross-entropy);
- "distinct": no two values closer than 0.3 (so the max has no near-ties);
- "grid" and "offgrid": multiples of 0.5 in [-2, 2], the latter moved by 0.25, each with a jitter
  of at most 0.05: a "grid" value and an "offgrid" value are at least 0.15 apart (so maximum
  and minimum of the two never meet a near-tie).
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

DOMAINS = ("real", "positive", "nonzero", "unit", "distinct", "grid", "offgrid", "matrix")

# The side lengths and the numbers of dimensions that tests draw: small, so Jacobians are cheap.
sizes = st.integers(min_value=1, max_value=4)


def shapes(min_dims: int = 1, max_dims: int = 3, max_side: int = 4) -> st.SearchStrategy:
    """Array shapes with dims 1..max_side and ndim min_dims..max_dims."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=max_side)


@st.composite
def broadcastable_pairs(draw, max_dims: int = 3, max_side: int = 4) -> tuple[tuple, tuple]:
    """Two shapes that broadcast together, often of different ndim and with size-1 dims."""
    result = draw(shapes(min_dims=1, max_dims=max_dims, max_side=max_side))

    def operand():
        ndim = draw(st.integers(0, len(result)))
        kept = result[len(result) - ndim :]
        return tuple(1 if draw(st.booleans()) else n for n in kept)

    a, b = operand(), operand()
    if np.broadcast_shapes(a, b) != result:
        # make the pair span the result: the first operand takes the full shape
        a = result
    return a, b


def _floats(low: float, high: float) -> st.SearchStrategy:
    return st.floats(low, high, allow_nan=False, allow_infinity=False)


_ELEMENTS = {
    "real": _floats(-2.0, 2.0),
    "positive": _floats(0.2, 3.0),
    "nonzero": st.tuples(st.sampled_from([-1.0, 1.0]), _floats(0.1, 2.0)).map(
        lambda sv: sv[0] * sv[1]
    ),
    "unit": _floats(0.05, 0.95),
    "grid": st.tuples(st.integers(-4, 4), _floats(-0.05, 0.05)).map(lambda kj: kj[0] / 2 + kj[1]),
    "offgrid": st.tuples(st.integers(-4, 3), _floats(-0.05, 0.05)).map(
        lambda kj: kj[0] / 2 + 0.25 + kj[1]
    ),
}


@st.composite
def _distinct(draw, shape: tuple[int, ...]) -> np.ndarray:
    """Values 0.5 apart in a random order, each moved by at most 0.1: the gaps stay >= 0.3."""
    n = int(np.prod(shape))
    order = draw(st.permutations(range(n)))
    jitter = draw(hnp.arrays(np.float64, n, elements=_floats(-0.1, 0.1)))
    values = (np.asarray(order, dtype=np.float64) - n / 2) * 0.5 + jitter
    return values.reshape(shape)


def _near_diagonal(noise: np.ndarray) -> np.ndarray:
    v = np.array(noise, dtype=np.float64)
    k = min(v.shape[-2:])
    v[..., range(k), range(k)] += np.arange(1, k + 1)
    return v


def arrays(shape: tuple[int, ...], domain: str = "real") -> st.SearchStrategy:
    """float64 arrays of ``shape`` with values in ``domain`` (one of DOMAINS)."""
    shape = tuple(shape)
    if domain == "distinct":
        return _distinct(shape)
    if domain == "matrix":
        # NOTE: no noise of exactly 0: LAPACK's QR (PyTorch's too) flips the sign of a column
        # whose part below the diagonal is exactly zero, a jump no derivative describes
        noise = st.one_of(_floats(-0.1, -0.01), _floats(0.01, 0.1))
        return hnp.arrays(np.float64, shape, elements=noise).map(_near_diagonal)
    if domain not in _ELEMENTS:
        raise ValueError(f"unknown domain {domain!r}; expected one of {DOMAINS}")
    return hnp.arrays(np.float64, shape, elements=_ELEMENTS[domain])


def arrays_of_shapes(shape_list, domain_list) -> st.SearchStrategy:
    """A tuple of float64 arrays, one per (shape, domain)."""
    return st.tuples(*(arrays(s, d) for s, d in zip(shape_list, domain_list, strict=True)))
