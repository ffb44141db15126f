"""Tests for DataLoader: coverage of every sample, batch counts, reproducibility, errors."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_mlp as tm
from tinygrad_mlp.utils.data import (
    BatchSampler,
    ConcatDataset,
    DataLoader,
    Dataset,
    RandomSampler,
    SequentialSampler,
    Subset,
    SubsetRandomSampler,
    TensorDataset,
    default_collate,
    random_split,
)


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


# ---------------------------------------------------------------- torch.utils.data's form


class Squares(Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return np.array([i, i * i], dtype=np.float32), i


def test_tensor_dataset_batches_are_tensors_from_one_fancy_index():
    x = tm.Tensor(np.arange(20.0).reshape(10, 2))
    y = tm.tensor(np.arange(10))
    ds = TensorDataset(x, y)
    assert len(ds) == 10
    xi, yi = ds[3]
    np.testing.assert_array_equal(xi.numpy(), [6.0, 7.0]) and yi.item() == 3
    batches = list(tm.utils.data.DataLoader(ds, batch_size=4))
    assert [len(b[1]) for b in batches] == [4, 4, 2]
    xb, yb = batches[0]
    assert isinstance(xb, tm.Tensor) and isinstance(yb, tm.Tensor)
    assert yb.dtype == np.int64 and xb.dtype == x.dtype
    np.testing.assert_array_equal(xb.numpy(), x.numpy()[:4])
    with pytest.raises(ValueError, match="Size mismatch"):
        TensorDataset(x, tm.tensor(np.arange(9)))


def test_tensor_dataset_fast_path_equals_the_sample_by_sample_path():
    x = np.random.default_rng(0).standard_normal((23, 3))
    y = np.arange(23)
    ds = TensorDataset(x, y)
    for shuffle, drop_last in ((False, False), (True, True), (True, False)):
        fast = DataLoader(ds, batch_size=5, shuffle=shuffle, drop_last=drop_last, generator=7)
        slow = DataLoader(
            ds, batch_size=5, shuffle=shuffle, drop_last=drop_last, generator=7,
            collate_fn=default_collate,
        )  # fmt: skip
        a, b = list(fast), list(slow)
        assert len(a) == len(b) == len(fast)
        for (xa, ya), (xb, yb) in zip(a, b, strict=True):
            np.testing.assert_array_equal(xa.numpy(), xb.numpy())
            np.testing.assert_array_equal(ya.numpy(), yb.numpy())
            np.testing.assert_array_equal(xa.numpy(), x[ya.numpy()])  # y holds each row's index


def test_shuffle_covers_every_sample_and_follows_manual_seed():
    ds = TensorDataset(np.arange(50))
    tm.manual_seed(3)
    first = np.concatenate([b[0].numpy() for b in DataLoader(ds, batch_size=8, shuffle=True)])
    tm.manual_seed(3)
    again = np.concatenate([b[0].numpy() for b in DataLoader(ds, batch_size=8, shuffle=True)])
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(np.sort(first), np.arange(50))
    assert not np.array_equal(first, np.arange(50))
    seeded = DataLoader(ds, batch_size=50, shuffle=True, generator=5)
    one, two = (next(iter(seeded))[0].numpy() for _ in range(2))
    assert not np.array_equal(one, two)  # a seed gives a new order every epoch
    again = DataLoader(ds, batch_size=50, shuffle=True, generator=5)
    np.testing.assert_array_equal(next(iter(again))[0].numpy(), one)


def test_map_style_dataset_with_default_collate():
    loader = DataLoader(Squares(5), batch_size=2)
    assert len(loader) == 3
    xb, yb = next(iter(loader))
    np.testing.assert_array_equal(xb.numpy(), [[0, 0], [1, 1]])
    assert yb.dtype == np.int64 and yb.tolist() == [0, 1]
    single = list(DataLoader(Squares(3), batch_size=None))
    assert isinstance(single[2][0], tm.Tensor) and single[2][1] == 2


def test_default_collate_like_torch():
    out = default_collate([{"a": 1.0, "b": (np.ones(2), "x")}, {"a": 2.0, "b": (np.zeros(2), "y")}])
    assert out["a"].dtype == np.float64 and out["a"].tolist() == [1.0, 2.0]
    assert out["b"][0].shape == (2, 2) and out["b"][1] == ["x", "y"]
    with pytest.raises(RuntimeError, match="equal size"):
        default_collate([np.ones(2), np.ones(3)])


def test_samplers_and_batch_sampler():
    assert list(SequentialSampler(range(4))) == [0, 1, 2, 3]
    order = list(RandomSampler(range(10), generator=np.random.default_rng(0)))
    assert sorted(order) == list(range(10))
    draws = list(RandomSampler(range(3), replacement=True, num_samples=20, generator=1))
    assert len(draws) == 20 and set(draws) <= {0, 1, 2}
    assert sorted(SubsetRandomSampler([5, 7, 9], generator=2)) == [5, 7, 9]
    batches = list(BatchSampler(SequentialSampler(range(7)), 3, drop_last=False))
    assert batches == [[0, 1, 2], [3, 4, 5], [6]]
    assert len(BatchSampler(range(7), 3, drop_last=True)) == 2
    loader = DataLoader(Squares(6), batch_sampler=BatchSampler(range(6), 4, False))
    assert [len(b[1]) for b in loader] == [4, 2]
    with pytest.raises(ValueError, match="batch_size should be a positive integer"):
        BatchSampler(range(3), 0, False)
    with pytest.raises(ValueError, match="mutually exclusive with shuffle"):
        DataLoader(Squares(3), sampler=SequentialSampler(range(3)), shuffle=True)
    with pytest.raises(ValueError, match="mutually exclusive with batch_size"):
        DataLoader(Squares(3), batch_size=2, batch_sampler=[[0, 1]])
    with pytest.raises(ValueError, match="num_samples"):
        RandomSampler([], generator=0)


def test_random_split_lengths_fractions_and_subsets():
    parts = random_split(range(10), [3, 7], generator=0)
    assert [len(p) for p in parts] == [3, 7]
    assert sorted(list(parts[0]) + list(parts[1])) == list(range(10))
    assert [len(p) for p in random_split(range(10), [0.33, 0.33, 0.34], generator=0)] == [4, 3, 3]
    assert [len(p) for p in random_split(range(5), [0.5, 0.5], generator=0)] == [3, 2]
    with pytest.raises(ValueError, match="Sum of input lengths"):
        random_split(range(10), [3, 3])
    sub = Subset(Squares(10), [9, 2])
    assert sub[0][1] == 9 and len(sub) == 2
    both = ConcatDataset([Squares(2), Squares(3)])
    assert len(both) == 5 and both[3][1] == 1 and (Squares(1) + Squares(1))[1][1] == 0


def test_random_split_matches_torch_lengths():
    torch = pytest.importorskip("torch")
    for lengths in ([0.1, 0.2, 0.7], [0.25, 0.25, 0.25, 0.25], [0.5, 0.3, 0.2]):
        ours = [len(p) for p in random_split(range(13), lengths, generator=0)]
        theirs = [len(p) for p in torch.utils.data.random_split(range(13), lengths)]
        assert ours == theirs
