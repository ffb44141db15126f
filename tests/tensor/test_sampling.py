"""Sampling and counting: ``multinomial`` with a ``Generator``, the global seeds, ``bincount``,
``histc`` and ``histogram`` against PyTorch."""

from __future__ import annotations

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_mlp as tm

torch = pytest.importorskip("torch")


# ---------------------------------------------------------------- generators and seeds


def test_manual_seed_returns_the_default_generator_and_reproduces_draws():
    g = tm.manual_seed(7)
    assert isinstance(g, tm.Generator) and g is tm.default_generator
    assert tm.initial_seed() == 7 == g.initial_seed()
    first = tm.randn(5).tolist()
    tm.manual_seed(7)
    assert tm.randn(5).tolist() == first


def test_seed_reseeds_from_entropy_and_reports_the_seed():
    s = tm.seed()
    assert isinstance(s, int) and tm.initial_seed() == s
    g = tm.Generator()
    assert g.seed() == g.initial_seed()
    assert tm.manual_seed(-1).initial_seed() == torch.manual_seed(-1).initial_seed()
    with pytest.raises(TypeError, match="int"):
        tm.manual_seed(1.5)


def test_a_generator_argument_gives_reproducible_draws():
    def draws(seed):
        g = tm.Generator().manual_seed(seed)
        return (
            tm.rand(3, generator=g).tolist(),
            tm.randn(3, generator=g).tolist(),
            tm.randint(0, 10, (3,), generator=g).tolist(),
            tm.multinomial(tm.ones(5), 2, generator=g).tolist(),
            tm.nn.init.normal_(tm.empty(3), generator=g).tolist(),
        )

    assert draws(2147483647) == draws(2147483647) != draws(1)


# ---------------------------------------------------------------- multinomial


def test_multinomial_with_replacement_follows_the_probabilities():
    p = tm.tensor([0.1, 0.0, 0.6, 0.3])
    g = tm.Generator().manual_seed(0)
    samples = tm.multinomial(p, 20000, replacement=True, generator=g)
    assert samples.dtype == tm.int64 and samples.shape == (20000,)
    freq = np.bincount(samples.numpy(), minlength=4) / 20000
    # 5 standard errors of a binomial proportion at n = 20000 is at most 0.018
    np.testing.assert_allclose(freq, [0.1, 0.0, 0.6, 0.3], atol=0.018)


def test_multinomial_rows_and_unnormalised_weights():
    weights = tm.tensor([[1.0, 3.0], [5.0, 0.0]])
    out = tm.multinomial(weights, 4000, replacement=True, generator=tm.Generator().manual_seed(1))
    assert out.shape == (2, 4000)
    assert abs(out[0].float().mean().item() - 0.75) < 0.04
    assert out[1].sum().item() == 0  # a zero weight is never drawn


def test_multinomial_without_replacement_draws_each_index_once():
    g = tm.Generator().manual_seed(3)
    for _ in range(20):
        out = tm.multinomial(tm.tensor([0.2, 0.3, 0.1, 0.4]), 4, generator=g).tolist()
        assert sorted(out) == [0, 1, 2, 3]
    # the first draw without replacement follows the probabilities too
    firsts = [tm.multinomial(tm.tensor([0.8, 0.2]), 1, generator=g).item() for _ in range(2000)]
    assert abs(np.mean(firsts) - 0.2) < 0.04


@pytest.mark.parametrize(
    "args",
    [
        ([1, 1], 1, False),  # integer probabilities
        ([1.0, -1.0], 1, False),
        ([1.0, float("nan")], 1, True),
        ([0.0, 0.0], 1, True),
        ([1.0, 1.0], 3, False),
        ([1.0, 1.0], 0, True),
        ([[[1.0]]], 1, True),
    ],
)
def test_multinomial_refusals_match_torch(args):
    data, n, replacement = args
    with pytest.raises(RuntimeError) as theirs:
        torch.multinomial(torch.tensor(data), n, replacement)
    message = str(theirs.value).split("(")[0].split(",")[0][:40]
    with pytest.raises(RuntimeError, match=message.replace("`", ".").replace("*", ".")):
        tm.multinomial(tm.tensor(data), n, replacement)


def test_multinomial_out_and_signature():
    out = tm.zeros(3, dtype=tm.int64)
    res = tm.multinomial(tm.tensor([0.0, 1.0]), 3, True, generator=tm.manual_seed(0), out=out)
    assert res is out and out.tolist() == [1, 1, 1]


# ---------------------------------------------------------------- counting


@settings(max_examples=25)
@given(
    hnp.arrays(np.int64, st.integers(0, 30), elements=st.integers(0, 12)),
    st.integers(0, 20),
    st.booleans(),
)
def test_bincount_matches_torch(values, minlength, weighted):
    w = np.linspace(0.5, 2.0, len(values)).astype(np.float32) if weighted else None
    ours = tm.bincount(tm.tensor(values), None if w is None else tm.tensor(w), minlength)
    theirs = torch.bincount(torch.tensor(values), None if w is None else torch.tensor(w), minlength)
    assert str(ours.dtype)[13:] == str(theirs.dtype)[6:]
    assert ours.tolist() == pytest.approx(theirs.tolist())


def test_bincount_refusals_match_torch():
    for bad in ([-1], [[1, 2]]):
        with pytest.raises(RuntimeError, match="1-d non-negative"):
            tm.bincount(tm.tensor(bad))
    with pytest.raises(NotImplementedError):
        tm.bincount(tm.tensor([1.0]))


finite = st.floats(-100, 100, width=32)


@settings(max_examples=40)
@given(
    hnp.arrays(np.float32, st.integers(0, 40), elements=finite),
    st.integers(1, 12),
    st.sampled_from([(0, 0), (-50, 50), (0, 10), (3, 3)]),
)
def test_histc_matches_torch(values, bins, limits):
    if not values.size and limits == (0, 0):
        return
    low, high = limits
    ours = tm.histc(tm.tensor(values), bins, low, high)
    theirs = torch.histc(torch.tensor(values), bins, low, high)
    assert str(ours.dtype)[13:] == str(theirs.dtype)[6:] and ours.tolist() == theirs.tolist()


@settings(max_examples=40)
@given(
    hnp.arrays(np.float32, st.integers(1, 40), elements=finite),
    st.one_of(st.integers(1, 12), st.just([-60.0, -1.0, 0.0, 2.5, 70.0])),
    st.sampled_from([None, (-50.0, 50.0), (0.0, 10.0), (1.0, 1.0)]),
    st.booleans(),
    st.booleans(),
)
def test_histogram_matches_torch(values, bins, range_, weighted, density):
    w = np.linspace(0.5, 2.0, len(values)).astype(np.float32) if weighted else None
    options = {"density": density} if range_ is None or isinstance(bins, list) else {
        "density": density, "range": range_}  # fmt: skip
    if isinstance(bins, list):
        ours_bins, their_bins = tm.tensor(bins), torch.tensor(bins)
    else:
        ours_bins = their_bins = bins
    ours = tm.histogram(tm.tensor(values), ours_bins, weight=None if w is None else tm.tensor(w),
                        **options)  # fmt: skip
    theirs = torch.histogram(torch.tensor(values), their_bins,
                             weight=None if w is None else torch.tensor(w), **options)  # fmt: skip
    np.testing.assert_allclose(ours.bin_edges.numpy(), theirs.bin_edges.numpy(), rtol=1e-6)
    np.testing.assert_allclose(ours.hist.numpy(), theirs.hist.numpy(), rtol=1e-5, atol=1e-7)
    hist, edges = ours
    assert hist is ours.hist and edges is ours.bin_edges


def test_histogram_refusals_match_torch():
    with pytest.raises(NotImplementedError):
        tm.histc(tm.tensor([1, 2]))
    with pytest.raises(NotImplementedError):
        tm.histogram(tm.tensor([1, 2]), 3)
    with pytest.raises(RuntimeError, match="max must be larger than min"):
        tm.histc(tm.tensor([1.0, 2.0]), min=3, max=1)
    with pytest.raises(RuntimeError, match="not finite"):
        tm.histc(tm.tensor([1.0, float("inf")]))
