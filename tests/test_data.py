"""Tests for DataLoader: coverage of every sample, batch counts, reproducibility, errors."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_mlp.utils.data import DataLoader


def _epoch(loader):
    return [tuple(np.array(a) for a in batch) for batch in loader]


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 70),
    batch_size=st.integers(1, 20),
    shuffle=st.booleans(),
    drop_last=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_each_sample_once_per_epoch(n, batch_size, shuffle, drop_last, seed):
    x = np.arange(n, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    y = np.arange(n)
    loader = DataLoader(x, y, batch_size, shuffle=shuffle, seed=seed, drop_last=drop_last)
    expected_batches = n // batch_size if drop_last else math.ceil(n / batch_size)
    assert len(loader) == expected_batches
    for _ in range(2):
        batches = list(loader)
        assert len(batches) == expected_batches
        seen = np.concatenate([yb for _, yb in batches]) if batches else np.array([], np.int64)
        assert len(np.unique(seen)) == len(seen)
        if drop_last:
            assert len(seen) == n // batch_size * batch_size
            assert all(len(yb) == batch_size for _, yb in batches)
        else:
            np.testing.assert_array_equal(np.sort(seen), y)
        for xb, yb in batches:
            np.testing.assert_array_equal(xb[:, 0], yb)  # x and y stay paired
            assert xb.shape[1:] == (3,)


def test_batch_counts_with_and_without_drop_last():
    x = np.zeros((10, 2))
    assert len(DataLoader(x, batch_size=3)) == 4
    assert len(DataLoader(x, batch_size=3, drop_last=True)) == 3
    assert len(DataLoader(x, batch_size=5, drop_last=True)) == 2
    assert len(DataLoader(x, batch_size=20)) == 1
    assert len(DataLoader(x, batch_size=20, drop_last=True)) == 0
    assert [len(b) for b in DataLoader(x, batch_size=3, shuffle=False)] == [3, 3, 3, 1]


def test_without_y_yields_arrays():
    x = np.arange(12).reshape(6, 2)
    batches = list(DataLoader(x, batch_size=4, shuffle=False))
    assert all(isinstance(b, np.ndarray) for b in batches)
    np.testing.assert_array_equal(np.concatenate(batches), x)


def test_unshuffled_batches_are_views_in_order():
    x = np.arange(20.0).reshape(10, 2)
    y = np.arange(10)
    batches = list(DataLoader(x, y, batch_size=4, shuffle=False))
    np.testing.assert_array_equal(np.concatenate([yb for _, yb in batches]), y)
    assert all(np.shares_memory(xb, x) for xb, _ in batches)


def test_same_seed_same_epochs_and_epochs_differ():
    x = np.arange(100)
    a = DataLoader(x, batch_size=7, seed=3)
    b = DataLoader(x, batch_size=7, seed=3)
    a1, a2 = np.concatenate(list(a)), np.concatenate(list(a))
    b1, b2 = np.concatenate(list(b)), np.concatenate(list(b))
    np.testing.assert_array_equal(a1, b1)
    np.testing.assert_array_equal(a2, b2)
    assert not np.array_equal(a1, a2)
    assert not np.array_equal(a1, x)
    other = np.concatenate(list(DataLoader(x, batch_size=7, seed=4)))
    assert not np.array_equal(a1, other)


def test_multidimensional_samples():
    x = np.random.default_rng(0).integers(0, 255, size=(50, 28, 28), dtype=np.uint8)
    y = np.arange(50)
    for xb, yb in DataLoader(x, y, batch_size=16, seed=0):
        assert xb.shape[1:] == (28, 28) and xb.dtype == np.uint8
        np.testing.assert_array_equal(xb, x[yb])


def test_lists_are_accepted():
    batches = list(DataLoader([[1, 2], [3, 4], [5, 6]], [0, 1, 0], batch_size=2, shuffle=False))
    np.testing.assert_array_equal(batches[0][0], [[1, 2], [3, 4]])
    np.testing.assert_array_equal(batches[1][1], [0])


@pytest.mark.parametrize("batch_size", [0, -3, 2.5, "8", True, None])
def test_bad_batch_size(batch_size):
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(np.zeros(4), batch_size=batch_size)


def test_length_mismatch_names_both_lengths():
    with pytest.raises(ValueError, match=r"x has 10 samples but y has 9 samples"):
        DataLoader(np.zeros((10, 2)), np.zeros(9))


def test_scalar_inputs_refused():
    with pytest.raises(ValueError, match="x must have a leading sample axis"):
        DataLoader(np.float32(3.0))
    with pytest.raises(ValueError, match="y has a scalar"):
        DataLoader(np.zeros(3), np.int64(1))
