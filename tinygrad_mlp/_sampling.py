"""Drawing from and counting into categories: ``multinomial``, ``bincount``, ``histc`` and
``histogram`` (none of them differentiable, as in PyTorch)."""

from __future__ import annotations

from collections import namedtuple
from typing import Any

from . import backend
from ._tensor import Tensor
from .autograd.graph import _wrap
from .backend import np

__all__ = ["multinomial", "bincount", "histc", "histogram"]

histogram_result = namedtuple("histogram", ["hist", "bin_edges"])


def _host(t: Any, name: str, what: str = "input") -> Any:
    if not isinstance(t, Tensor):
        raise TypeError(f"{name}(): argument '{what}' must be Tensor, not {type(t).__name__}")
    return backend.to_numpy(t._data)


def _on(array: Any, like: Tensor) -> Tensor:
    return _wrap(backend.to_device(array, like.device))


def _kernel_error(name: str, dtype: Any) -> NotImplementedError:
    return NotImplementedError(f'"{name}" not implemented for {str(dtype)!r} tensors')


def multinomial(input: Tensor, num_samples: int, replacement: bool = False, *,
                generator: Any = None) -> Tensor:  # fmt: skip
    """``num_samples`` category indices per row of ``input``, drawn with probabilities
    proportional to the row's (non-negative) weights; without ``replacement`` each index is
    drawn at most once per row."""
    probs = _host(input, "multinomial")
    if probs.dtype.kind != "f":
        raise RuntimeError(
            f"multinomial only supports floating-point dtypes for input, got: {input.dtype}"
        )
    if probs.ndim not in (1, 2):
        raise RuntimeError(f"prob_dist must be 1 or 2 dim, got shape {tuple(probs.shape)}")
    n = int(num_samples)
    if n <= 0:
        raise RuntimeError(f"cannot sample n_sample <= 0 samples (num_samples={num_samples})")
    categories = probs.shape[-1]
    if not replacement and n > categories:
        raise RuntimeError(
            f"cannot sample n_sample > prob_dist.size(-1) samples without replacement "
            f"({n} > {categories})"
        )
    rows = probs.reshape(-1, categories).astype(np.float64)
    if not np.all(np.isfinite(rows)) or np.any(rows < 0):
        raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")
    totals = rows.sum(axis=1)
    if np.any(totals <= 0):
        raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")
    rng = backend.generator(generator)
    if replacement:
        # inverse of the cumulative distribution at uniform draws in (0, 1]: the first slot
        # whose cumulative probability reaches the draw (never a zero-probability slot)
        cumulative = np.cumsum(rows / totals[:, None], axis=1)
        cumulative[:, -1] = 1.0
        draws = 1.0 - rng.random((len(rows), n))
        pairs = zip(cumulative, draws, strict=True)
        picks = np.stack([np.searchsorted(c, d, side="left") for c, d in pairs])
    else:
        # NOTE: the n largest of p / E with E ~ Exp(1) are a draw without replacement in
        # proportion to p (the exponential form of the Gumbel top-k trick)
        keys = rows / rng.standard_exponential(rows.shape)
        picks = np.argsort(-keys, axis=1, kind="stable")[:, :n]
    picks = picks.astype(np.int64).reshape((*probs.shape[:-1], n))
    return _on(picks, input)


def bincount(input: Tensor, weights: Tensor | None = None, minlength: int = 0) -> Tensor:
    """How often each value 0, 1, ... occurs in a 1-D tensor of non-negative ints (with
    ``weights``, the sum of their weights); at least ``minlength`` bins."""
    values = _host(input, "bincount")
    if values.dtype.kind not in "biu":
        raise _kernel_error("bincount_cpu", input.dtype)
    if values.ndim != 1 or (values.size and values.min() < 0):
        raise RuntimeError(
            "bincount only supports 1-d non-negative integral inputs "
            f"(got shape {tuple(values.shape)})"
        )
    if minlength < 0:
        raise RuntimeError(f"minlength should be >= 0, got {minlength}")
    if weights is None:
        return _on(np.bincount(values, minlength=minlength).astype(np.int64), input)
    w = _host(weights, "bincount", "weights")
    if w.shape != values.shape:
        raise RuntimeError(
            f"weights should be 1-d and have the same length as input (input shape "
            f"{tuple(values.shape)}, weights shape {tuple(w.shape)})"
        )
    dtype = w.dtype if w.dtype.kind == "f" else np.float64
    return _on(np.bincount(values, w.astype(np.float64), minlength).astype(dtype), input)


def _outer_edges(values: Any, low: Any, high: Any, name: str, widen: float) -> tuple:
    """The range of the bins: the given one, else (when it is empty) the data's, widened when
    that is empty too. (histc replaces an empty range by the data's; histogram widens it.)"""
    if low == high and values.size and (widen == 1 or (low, high) == (None, None)):
        low, high = values.min(), values.max()
    low, high = values.dtype.type(low), values.dtype.type(high)
    if not (np.isfinite(low) and np.isfinite(high)):
        raise RuntimeError(f"{name}: range of [{low}, {high}] is not finite")
    if low > high:
        raise RuntimeError(f"{name}: max must be larger than min (min={low}, max={high})")
    if low == high:
        low, high = low - values.dtype.type(widen), high + values.dtype.type(widen)
    return low, high


def histc(input: Tensor, bins: int = 100, min: Any = 0, max: Any = 0) -> Tensor:  # noqa: A002
    """Counts of the elements in ``bins`` equal-width bins between ``min`` and ``max`` (the
    data's range when both are 0); elements outside the range and NaNs are left out."""
    values = _host(input, "histc").reshape(-1)
    if values.dtype.kind != "f":
        raise _kernel_error("histogram_cpu", input.dtype)
    if bins <= 0:
        raise RuntimeError(f"torch.histc: bins must be > 0, but got {bins}")
    low, high = _outer_edges(values, min, max, "torch.histc", 1)
    inside = values[(values >= low) & (values <= high)]
    # NOTE: the bin index is computed in the input's precision, as PyTorch does
    position = ((inside - low) * values.dtype.type(bins) / (high - low)).astype(np.int64)
    counts = np.bincount(np.minimum(position, bins - 1), minlength=bins)
    return _on(counts.astype(values.dtype), input)


def _uniform_edges(low: Any, high: Any, bins: int, dtype: Any) -> Any:
    """``bins + 1`` equally spaced edges, each computed from the nearer end (as linspace)."""
    # NOTE: the step is rounded to the dtype, the products and sums are not (as PyTorch's
    # kernel, whose float32 edges can differ from numpy's linspace in the last bit)
    step = np.float64((high - low) / dtype.type(bins))
    i = np.arange(bins + 1, dtype=np.float64)
    from_low = np.float64(low) + step * i
    from_high = np.float64(high) - step * (bins - i)
    return np.where(i < (bins + 1) // 2, from_low, from_high).astype(dtype)


def histogram(input: Tensor, bins: Any, *, range: Any = None, weight: Tensor | None = None,  # noqa: A002
              density: bool = False) -> Any:  # fmt: skip
    """The named tuple (hist, bin_edges): counts (or summed ``weight``) of the elements in each
    bin, with ``bins`` equal-width bins over ``range`` (the data's by default) or the given
    increasing edges; with ``density``, normalised to integrate to one."""
    values = _host(input, "histogram").reshape(-1)
    if values.dtype.kind != "f":
        raise _kernel_error("histogramdd", input.dtype)
    if isinstance(bins, Tensor):
        edges = backend.to_numpy(bins._data).astype(values.dtype)
        if edges.ndim != 1 or edges.size < 2:
            raise RuntimeError(
                f"torch.histogram: bins must be a 1-d tensor of at least 2 edges, got shape "
                f"{tuple(edges.shape)}"
            )
    else:
        if int(bins) <= 0:
            raise RuntimeError(f"torch.histogram: bins must be > 0, but got {bins}")
        low, high = (None, None) if range is None else range
        low, high = _outer_edges(values, low, high, "torch.histogram", 0.5)
        edges = _uniform_edges(low, high, int(bins), values.dtype)
    w = None if weight is None else _host(weight, "histogram", "weight").reshape(-1)
    if w is not None and w.shape != values.shape:
        raise RuntimeError(
            f"torch.histogram: weight should have the same shape as input, got "
            f"{tuple(weight.shape)} and {tuple(input.shape)}"
        )
    keep = (values >= edges[0]) & (values <= edges[-1])
    slot = np.searchsorted(edges, values[keep], side="right") - 1
    slot = np.minimum(slot, len(edges) - 2)  # the last edge belongs to the last bin
    counts = np.bincount(slot, None if w is None else w[keep], minlength=len(edges) - 1)
    hist = counts.astype(values.dtype)
    if density:
        with np.errstate(invalid="ignore", divide="ignore"):  # no element in range: NaNs
            hist = (hist / (hist.sum() * np.diff(edges))).astype(values.dtype)
    return histogram_result(_on(hist, input), _on(edges, input))


# the Tensor methods PyTorch also has (x.multinomial(2) is tm.multinomial(x, 2))
Tensor.multinomial = multinomial
Tensor.bincount = bincount
Tensor.histc = histc
Tensor.histogram = histogram
