"""Initialisers: PyTorch's gains, fans and bounds; statistics, seeding, dtype and refusals."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_mlp as tm
from tinygrad_mlp import backend
from tinygrad_mlp.nn import init


def make_tensor(shape, dtype=np.float32):
    array = np.zeros(shape, dtype=dtype)
    if not np.issubdtype(dtype, np.floating):
        return tm.Tensor._wrap(array, False, None)  # an integer tensor keeps its dtype
    return tm.Tensor(array, requires_grad=True, dtype=dtype)


BIG = (1000, 400)  # 400,000 draws: the sample std is within ~0.2% of the true one


@pytest.mark.parametrize(
    ("name", "param", "gain"),
    [
        ("linear", None, 1.0),
        ("conv2d", None, 1.0),
        ("conv_transpose3d", None, 1.0),
        ("sigmoid", None, 1.0),
        ("tanh", None, 5.0 / 3.0),
        ("relu", None, math.sqrt(2.0)),
        ("leaky_relu", None, math.sqrt(2.0 / (1 + 0.01**2))),
        ("leaky_relu", 0.2, math.sqrt(2.0 / (1 + 0.2**2))),
        ("leaky_relu", 0, math.sqrt(2.0)),
        ("selu", None, 0.75),
    ],
)
def test_calculate_gain(name, param, gain):
    assert init.calculate_gain(name, param) == pytest.approx(gain, rel=1e-15)


def test_calculate_gain_refusals():
    with pytest.raises(ValueError, match="unsupported nonlinearity 'swish'"):
        init.calculate_gain("swish")
    with pytest.raises(ValueError, match="negative_slope True"):
        init.calculate_gain("leaky_relu", True)
    with pytest.raises(ValueError, match="negative_slope 'a'"):
        init.calculate_gain("leaky_relu", "a")


@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
@pytest.mark.parametrize("nonlinearity", ["relu", "leaky_relu", "tanh"])
def test_kaiming_normal_std(mode, nonlinearity):
    t = make_tensor(BIG)
    assert init.kaiming_normal_(t, mode=mode, nonlinearity=nonlinearity, generator=1) is t
    fan = BIG[1] if mode == "fan_in" else BIG[0]
    std = init.calculate_gain(nonlinearity, 0) / math.sqrt(fan)
    assert t.numpy().std() == pytest.approx(std, rel=0.01)
    assert abs(t.numpy().mean()) < 0.01 * std


@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
def test_kaiming_uniform_bound(mode):
    t = make_tensor(BIG)
    init.kaiming_uniform_(t, a=math.sqrt(5), mode=mode, generator=2)
    fan = BIG[1] if mode == "fan_in" else BIG[0]
    bound = math.sqrt(3.0) * math.sqrt(2.0 / (1 + 5)) / math.sqrt(fan)  # nn.Linear's default
    assert np.abs(t.numpy()).max() <= bound
    assert np.abs(t.numpy()).max() > 0.999 * bound
    assert t.numpy().std() == pytest.approx(bound / math.sqrt(3.0), rel=0.01)


def test_fans_use_the_receptive_field():
    t = make_tensor((16, 8, 3, 5))  # (out, in, kh, kw): fan_in = 8*15, fan_out = 16*15
    init.kaiming_normal_(t, nonlinearity="relu", generator=3)
    assert t.numpy().std() == pytest.approx(math.sqrt(2.0 / (8 * 15)), rel=0.05)
    init.xavier_uniform_(t, generator=3)
    bound = math.sqrt(6.0 / (8 * 15 + 16 * 15))
    assert np.abs(t.numpy()).max() <= bound
    assert np.abs(t.numpy()).max() > 0.99 * bound


def test_xavier_normal_std():
    t = make_tensor(BIG)
    init.xavier_normal_(t, gain=2.0, generator=4)
    assert t.numpy().std() == pytest.approx(2.0 * math.sqrt(2.0 / sum(BIG)), rel=0.01)


def test_xavier_uniform_bound():
    t = make_tensor(BIG)
    init.xavier_uniform_(t, gain=init.calculate_gain("tanh"), generator=5)
    bound = 5.0 / 3.0 * math.sqrt(6.0 / sum(BIG))
    assert np.abs(t.numpy()).max() <= bound
    assert np.abs(t.numpy()).max() > 0.999 * bound


def test_normal_and_uniform():
    t = make_tensor(BIG)
    init.normal_(t, mean=3.0, std=0.5, generator=6)
    assert t.numpy().mean() == pytest.approx(3.0, abs=0.005)
    assert t.numpy().std() == pytest.approx(0.5, rel=0.01)
    init.uniform_(t, a=-2.0, b=1.0, generator=6)
    assert t.numpy().min() >= -2.0 and t.numpy().max() <= 1.0
    assert t.numpy().mean() == pytest.approx(-0.5, abs=0.01)


def test_constant_zeros_ones():
    t = make_tensor((3, 4), np.float64)
    assert init.constant_(t, 2.5) is t
    np.testing.assert_array_equal(t.numpy(), np.full((3, 4), 2.5))
    init.zeros_(t)
    np.testing.assert_array_equal(t.numpy(), np.zeros((3, 4)))
    init.ones_(t)
    np.testing.assert_array_equal(t.numpy(), np.ones((3, 4)))
    ints = make_tensor((2,), np.int64)
    init.ones_(ints)
    assert ints.numpy().dtype == np.int64 and ints.numpy().tolist() == [1, 1]


FILLERS = [
    lambda t, g: init.kaiming_normal_(t, generator=g),
    lambda t, g: init.kaiming_uniform_(t, generator=g),
    lambda t, g: init.xavier_normal_(t, generator=g),
    lambda t, g: init.xavier_uniform_(t, generator=g),
    lambda t, g: init.normal_(t, generator=g),
    lambda t, g: init.uniform_(t, generator=g),
]


@pytest.mark.parametrize("fill", FILLERS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_fills_in_place_and_keeps_dtype(fill, dtype):
    t = make_tensor((5, 7), dtype)
    data = t._data
    fill(t, 0)
    assert t._data is data and t.dtype == dtype  # filled in place
    assert np.all(np.isfinite(t.numpy())) and np.unique(t.numpy()).size > 10


@pytest.mark.parametrize("fill", FILLERS)
def test_reproducible_with_seed_generator_and_manual_seed(fill):
    a, b, c, d = (make_tensor((6, 9)) for _ in range(4))
    fill(a, 123)
    fill(b, np.random.default_rng(123))
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    tm.manual_seed(7)
    fill(c, None)
    tm.manual_seed(7)
    fill(d, None)
    np.testing.assert_array_equal(c.numpy(), d.numpy())
    assert not np.array_equal(a.numpy(), c.numpy())


def test_global_generator_advances():
    tm.manual_seed(0)
    a, b = make_tensor((4, 4)), make_tensor((4, 4))
    init.normal_(a)
    init.normal_(b)
    assert not np.array_equal(a.numpy(), b.numpy())


def test_works_on_bare_arrays():
    array = np.zeros((4, 3), dtype=np.float32)
    assert init.xavier_uniform_(array, generator=0) is array
    assert np.all(array != 0)


@settings(max_examples=30, deadline=None)
@given(
    shape=st.lists(st.integers(1, 6), min_size=2, max_size=4).map(tuple),
    mode=st.sampled_from(["fan_in", "fan_out", "FAN_IN"]),
)
def test_kaiming_uniform_never_exceeds_its_bound(shape, mode):
    t = make_tensor(shape, np.float64)
    init.kaiming_uniform_(t, mode=mode, nonlinearity="relu", generator=0)
    receptive = math.prod(shape[2:])
    fan = shape[1] * receptive if mode.lower() == "fan_in" else shape[0] * receptive
    assert np.abs(t.numpy()).max() <= math.sqrt(3.0) * math.sqrt(2.0) / math.sqrt(fan)


def test_zero_element_tensor_is_left_alone():
    t = make_tensor((0, 5))
    assert init.kaiming_uniform_(t) is t
    assert init.xavier_normal_(t) is t


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    "fill",
    [init.kaiming_normal_, init.kaiming_uniform_, init.xavier_normal_, init.xavier_uniform_],
)
def test_fan_based_init_needs_two_dimensions(fill):
    with pytest.raises(ValueError, match=r"shape \(10,\)"):
        fill(make_tensor((10,)))


@pytest.mark.parametrize("fill", [init.kaiming_normal_, init.kaiming_uniform_])
def test_kaiming_refusals(fill):
    with pytest.raises(ValueError, match="mode 'fan_avg'"):
        fill(make_tensor((3, 4)), mode="fan_avg")
    with pytest.raises(ValueError, match="nonlinearity 'gelu'"):
        fill(make_tensor((3, 4)), nonlinearity="gelu")


def test_other_refusals():
    with pytest.raises(ValueError, match="std >= 0, got std=-1.0"):
        init.normal_(make_tensor((2, 2)), std=-1.0)
    with pytest.raises(ValueError, match="a <= b, got a=1.0, b=0.0"):
        init.uniform_(make_tensor((2, 2)), a=1.0, b=0.0)
    with pytest.raises(TypeError, match="dtype int64"):
        init.normal_(make_tensor((2, 2), np.int64))
    with pytest.raises(TypeError, match="generator must be"):
        init.normal_(make_tensor((2, 2)), generator="seed")
    with pytest.raises(TypeError, match="val='x'"):
        init.constant_(make_tensor((2, 2)), "x")
    with pytest.raises(TypeError, match="expected a tensor or an array, got a list"):
        init.normal_([1.0, 2.0])


@pytest.mark.cuda
def test_fills_cupy_arrays_like_host_arrays():
    if not backend.cupy_available():
        pytest.skip("needs CuPy and a GPU")
    cp = backend.get_array_module("cuda")
    gpu = cp.zeros((5, 6), dtype=cp.float32)
    host = np.zeros((5, 6), dtype=np.float32)
    init.kaiming_uniform_(gpu, generator=3)
    init.kaiming_uniform_(host, generator=3)
    assert isinstance(gpu, cp.ndarray)
    np.testing.assert_array_equal(cp.asnumpy(gpu), host)
