"""Convolution, pooling, unfold/fold, dropout2d and interpolation against PyTorch: values and
gradients over drawn shapes and options, the modules' parameters, repr and state dicts, the
refusals, ONNX export of a CNN and the MNIST CNN example."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_mlp as tm
from tinygrad_mlp import nn
from tinygrad_mlp.nn import functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

ROOT = Path(__file__).resolve().parents[2]
MNIST_DIR = Path(os.environ.get("TINYGRAD_MLP_DATA", ROOT.parent / "shared" / "datasets" / "mnist"))
DRAWN = settings(max_examples=25, deadline=None)


def _values(shape, seed: int, distinct: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if distinct:  # no ties: the maximum of every window is unique
        n = int(np.prod(shape))
        return (rng.permutation(n) / n - 0.5).reshape(shape)
    return rng.standard_normal(shape)


def compare(ours, theirs, arrays, *, rtol=1e-9, atol=1e-10, seed=0):
    """Run ``ours`` on tinygrad_mlp tensors and ``theirs`` on torch tensors made from the same
    float64 arrays; compare the values and the gradients of every input."""
    xs = [tm.tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, want = ours(*xs), theirs(*ts)
    assert tuple(out.shape) == tuple(want.shape)
    np.testing.assert_allclose(out.numpy(), want.detach().numpy(), rtol=rtol, atol=atol)
    w = np.random.default_rng(seed + 99).standard_normal(tuple(want.shape))
    (out * tm.tensor(w)).sum().backward()
    (want * torch.tensor(w)).sum().backward()
    for x, t in zip(xs, ts, strict=True):
        np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=rtol, atol=atol)


# ---------------------------------------------------------------- convolution


@st.composite
def conv_cases(draw, nd: int):
    groups = draw(st.integers(1, 3))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    padding = draw(
        st.one_of(
            st.just("same"),
            st.just("valid"),
            st.tuples(*[st.integers(0, 2)] * nd),
            st.integers(0, 2),
        )
    )
    stride = (1,) * nd if padding == "same" else tuple(draw(st.integers(1, 3)) for _ in range(nd))
    size = tuple(
        draw(st.integers(d * (k - 1) + 1, d * (k - 1) + 6))
        for k, d in zip(kernel, dilation, strict=True)
    )
    shapes = [(draw(st.integers(1, 2)), c_in, *size), (c_out, c_in // groups, *kernel)]
    if draw(st.booleans()):
        shapes.append((c_out,))
    params = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    return shapes, params


@pytest.mark.parametrize("nd", [1, 2])
@DRAWN
@given(case=st.data())
def test_conv_matches_torch(nd, case):
    shapes, params = case.draw(conv_cases(nd))
    arrays = [_values(s, i) for i, s in enumerate(shapes)]
    ours = {1: F.conv1d, 2: F.conv2d}[nd]
    theirs = {1: TF.conv1d, 2: TF.conv2d}[nd]
    compare(lambda *a: ours(*a, **params), lambda *a: theirs(*a, **params), arrays)


@DRAWN
@given(case=st.data())
def test_conv2d_of_channels_last_input_matches_torch(case):
    # an input laid out channels-last in memory, as a convolution's output is here: the
    # windows are then copied by rows of channels
    shapes, params = case.draw(conv_cases(2))
    arrays = [_values(s, i) for i, s in enumerate(shapes)]

    def ours(x, *rest):
        x = x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
        return F.conv2d(x, *rest, **params)

    compare(ours, lambda *a: TF.conv2d(*a, **params), arrays)


@DRAWN
@given(case=st.data())
def test_conv2d_one_image_at_a_time_matches_torch(case):
    # a batch of several images, worked through one image at a time (as large batches are, so
    # that each piece stays in cache), from both input layouts
    shapes, params = case.draw(conv_cases(2))
    shapes[0] = (case.draw(st.integers(2, 5)),) + tuple(shapes[0][1:])
    arrays = [_values(s, i) for i, s in enumerate(shapes)]
    last = case.draw(st.booleans())

    def ours(x, *rest):
        if last:
            x = x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
        return F.conv2d(x, *rest, **params)

    with mock.patch.object(tm.backend, "_CHUNK_BYTES", 1):
        compare(ours, lambda *a: TF.conv2d(*a, **params), arrays)


def test_two_convolutions_in_a_row_match_torch():
    x, w1, b1, w2, b2 = (
        _values(s, i) for i, s in enumerate([(2, 3, 9, 8), (4, 3, 3, 3), (4,), (5, 4, 2, 3), (5,)])
    )
    for kw in (dict(padding=1), dict(stride=2, dilation=(1, 2), padding=(0, 2))):
        compare(
            lambda a, p, q, r, s, kw=kw: F.conv2d(F.relu(F.conv2d(a, p, q, padding=1)), r, s, **kw),
            lambda a, p, q, r, s, kw=kw: TF.conv2d(
                TF.relu(TF.conv2d(a, p, q, padding=1)), r, s, **kw
            ),
            [x, w1, b1, w2, b2],
        )


def test_conv2d_unbatched_input_and_float32():
    x = _values((3, 7, 6), 0).astype(np.float32)
    w = _values((4, 3, 3, 2), 1).astype(np.float32)
    out = F.conv2d(tm.tensor(x), tm.tensor(w), stride=2, padding=1)
    want = TF.conv2d(torch.tensor(x), torch.tensor(w), stride=2, padding=1)
    assert out.dtype == np.float32 and tuple(out.shape) == tuple(want.shape)
    np.testing.assert_allclose(out.numpy(), want.numpy(), rtol=1e-5, atol=1e-5)


@DRAWN
@given(data=st.data())
def test_conv_transpose2d_matches_torch(data):
    groups = data.draw(st.integers(1, 2))
    c_in, c_out = groups * data.draw(st.integers(1, 2)), groups * data.draw(st.integers(1, 2))
    kernel = tuple(data.draw(st.integers(1, 3)) for _ in range(2))
    stride = tuple(data.draw(st.integers(1, 3)) for _ in range(2))
    dilation = tuple(data.draw(st.integers(1, 2)) for _ in range(2))
    padding = tuple(data.draw(st.integers(0, 1)) for _ in range(2))
    extra = tuple(
        data.draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation, strict=True)
    )
    size = tuple(data.draw(st.integers(1, 4)) for _ in range(2))
    for n, s, p, d, k, e in zip(size, stride, padding, dilation, kernel, extra, strict=True):
        if (n - 1) * s - 2 * p + d * (k - 1) + e + 1 < 1:
            return  # no output: both refuse
    shapes = [(2, c_in, *size), (c_in, c_out // groups, *kernel), (c_out,)]
    arrays = [_values(s, i) for i, s in enumerate(shapes)]
    params = dict(stride=stride, padding=padding, output_padding=extra, groups=groups)
    params["dilation"] = dilation
    compare(
        lambda *a: F.conv_transpose2d(*a, **params),
        lambda *a: TF.conv_transpose2d(*a, **params),
        arrays,
    )


def test_conv_second_order_through_conv_and_pooling():
    x = tm.tensor(_values((1, 2, 5, 5), 0), requires_grad=True)
    w = tm.tensor(_values((2, 2, 2, 2), 1), requires_grad=True)

    def f(x, w):
        return F.max_pool2d(F.conv2d(x, w, padding=1), 2, stride=1).tanh()

    assert tm.autograd.gradgradcheck(f, (x, w))


# ---------------------------------------------------------------- pooling


@st.composite
def pool_cases(draw, nd: int, dilated: bool = True):
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) if dilated else 1 for _ in range(nd))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)  # PyTorch's limit
    size = tuple(
        draw(st.integers(d * (k - 1) + 1, d * (k - 1) + 5))
        for k, d in zip(kernel, dilation, strict=True)
    )
    return (
        (draw(st.integers(1, 2)), draw(st.integers(1, 3)), *size),
        kernel,
        stride,
        padding,
        (
            dilation,
            draw(st.booleans()),
        ),
    )


@pytest.mark.parametrize("nd", [1, 2])
@DRAWN
@given(data=st.data())
def test_max_pool_matches_torch(nd, data):
    shape, kernel, stride, padding, (dilation, ceil_mode) = data.draw(pool_cases(nd))
    params = dict(kernel_size=kernel, stride=stride, padding=padding, dilation=dilation)
    params["ceil_mode"] = ceil_mode
    ours, theirs = {1: (F.max_pool1d, TF.max_pool1d), 2: (F.max_pool2d, TF.max_pool2d)}[nd]
    x = _values(shape, 0, distinct=True)
    compare(lambda a: ours(a, **params), lambda a: theirs(a, **params), [x])
    out, idx = ours(tm.tensor(x), return_indices=True, **params)
    want, want_idx = theirs(torch.tensor(x), return_indices=True, **params)
    np.testing.assert_array_equal(idx.numpy(), want_idx.numpy())
    assert idx.dtype == np.int64


def test_max_pool_ties_go_to_the_first_maximum_as_in_torch():
    x = np.maximum(_values((2, 3, 6, 6), 0), 0)  # ReLU output: many tied zeros
    x[0, 0, :2, :2] = 1.0
    compare(lambda a: F.max_pool2d(a, 2), lambda a: TF.max_pool2d(a, 2), [x])
    compare(lambda a: F.max_pool2d(a, 3, 1, 1), lambda a: TF.max_pool2d(a, 3, 1, 1), [x])
    _, idx = F.max_pool2d(tm.tensor(x), 2, return_indices=True)
    np.testing.assert_array_equal(
        idx.numpy(), TF.max_pool2d(torch.tensor(x), 2, return_indices=True)[1]
    )


@pytest.mark.parametrize(
    "shape, kernel",
    [
        ((2, 3, 8, 8), (2, 2)),
        ((2, 3, 7, 9), (2, 2)),
        ((3, 2, 9, 8), (3, 2)),
        ((2, 2, 5, 7), (1, 3)),
        ((2, 2, 7, 4), (3, 1)),
        ((2, 3, 9), (3,)),
        ((2, 3, 8), (2,)),
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["channel-major", "channels-last"])
def test_max_pool_with_windows_side_by_side_matches_torch(shape, kernel, dtype, layout):
    # windows that tile the input (stride = kernel, no padding): ties among few distinct values
    # (ReLU zeros and repeats), rows and columns left over, in the memory orders that a
    # convolution's output has: channel-major, or channels-last (its gradient is scattered)
    x = np.maximum(np.round(_values(shape, 1) * 2), 0).astype(dtype)
    if layout == "channel-major":
        x = np.ascontiguousarray(np.swapaxes(x, 0, 1)).swapaxes(0, 1)
    else:
        x = np.moveaxis(np.ascontiguousarray(np.moveaxis(x, 1, -1)), -1, 1)
    ours, theirs = {1: (F.max_pool1d, TF.max_pool1d), 2: (F.max_pool2d, TF.max_pool2d)}[len(kernel)]
    tol = dict(rtol=1e-6, atol=1e-7) if dtype == np.float32 else {}
    compare(lambda a: ours(a, kernel), lambda a: theirs(a, kernel), [x], **tol)
    # the same with the input's memory order kept (from_numpy does not copy)
    a = tm.from_numpy(x).requires_grad_()
    assert a._data.strides == x.strides
    t = torch.tensor(x, requires_grad=True)
    w = np.random.default_rng(5).standard_normal(tuple(theirs(t, kernel).shape)).astype(dtype)
    (ours(a, kernel) * tm.from_numpy(w)).sum().backward()  # both on the CPU
    (theirs(t, kernel) * torch.tensor(w)).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), t.grad.numpy())
    out, idx = ours(tm.tensor(x), kernel, return_indices=True)
    want, want_idx = theirs(torch.tensor(x), kernel, return_indices=True)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out.numpy(), want.numpy())
    np.testing.assert_array_equal(idx.numpy(), want_idx.numpy())


def test_max_pool_propagates_nan_as_torch():
    x = _values((1, 1, 4, 4), 0)
    x[0, 0, 1, 0] = x[0, 0, 0, 1] = np.nan
    out, idx = F.max_pool2d(tm.tensor(x), 2, return_indices=True)
    want, want_idx = TF.max_pool2d(torch.tensor(x), 2, return_indices=True)
    np.testing.assert_array_equal(out.numpy(), want.numpy())
    np.testing.assert_array_equal(idx.numpy(), want_idx.numpy())


@pytest.mark.parametrize("nd", [1, 2])
@DRAWN
@given(data=st.data())
def test_avg_pool_matches_torch(nd, data):
    shape, kernel, stride, padding, (_, ceil_mode) = data.draw(pool_cases(nd, dilated=False))
    params = dict(kernel_size=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode)
    params["count_include_pad"] = data.draw(st.booleans())
    if nd == 2 and data.draw(st.booleans()):
        params["divisor_override"] = data.draw(st.integers(1, 5))
    ours, theirs = {1: (F.avg_pool1d, TF.avg_pool1d), 2: (F.avg_pool2d, TF.avg_pool2d)}[nd]
    compare(lambda a: ours(a, **params), lambda a: theirs(a, **params), [_values(shape, 1)])


@pytest.mark.parametrize(
    "size, output_size",
    [
        ((6, 8), (1, 1)),
        ((6, 8), 1),
        ((6, 8), (3, 4)),
        ((7, 9), (3, 4)),
        ((5, 5), (None, 2)),
        ((4, 3), (6, 5)),
    ],
)
def test_adaptive_avg_pool2d_matches_torch(size, output_size):
    x = _values((2, 3, *size), 2)
    compare(
        lambda a: F.adaptive_avg_pool2d(a, output_size),
        lambda a: TF.adaptive_avg_pool2d(a, output_size),
        [x],
    )


# ---------------------------------------------------------------- unfold, fold, interpolate


@DRAWN
@given(data=st.data())
def test_unfold_and_fold_match_torch(data):
    kernel = tuple(data.draw(st.integers(1, 3)) for _ in range(2))
    dilation = tuple(data.draw(st.integers(1, 2)) for _ in range(2))
    padding = tuple(data.draw(st.integers(0, 2)) for _ in range(2))
    stride = tuple(data.draw(st.integers(1, 3)) for _ in range(2))
    size = tuple(
        data.draw(st.integers(d * (k - 1) + 1, d * (k - 1) + 5))
        for k, d in zip(kernel, dilation, strict=True)
    )
    params = dict(kernel_size=kernel, dilation=dilation, padding=padding, stride=stride)
    x = _values((2, 2, *size), 3)
    compare(lambda a: F.unfold(a, **params), lambda a: TF.unfold(a, **params), [x])
    cols = TF.unfold(torch.tensor(x), **params).numpy()
    compare(lambda a: F.fold(a, size, **params), lambda a: TF.fold(a, size, **params), [cols])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "kwargs",
    [
        dict(size=(13, 5)),
        dict(scale_factor=2),
        dict(scale_factor=(1.7, 0.6)),
        dict(size=(13, 5), mode="bilinear"),
        dict(size=(4, 11), mode="bilinear", align_corners=True),
        dict(scale_factor=(2.5, 0.5), mode="bilinear"),
        dict(scale_factor=0.7, mode="bilinear", recompute_scale_factor=True),
    ],
)
def test_interpolate_matches_torch(kwargs, dtype):
    x = _values((2, 3, 9, 8), 4).astype(dtype)
    tol = 1e-9 if dtype == np.float64 else 2e-6
    xs, ts = tm.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, want = F.interpolate(xs, **kwargs), TF.interpolate(ts, **kwargs)
    np.testing.assert_allclose(out.numpy(), want.detach().numpy(), rtol=tol, atol=tol)
    assert out.dtype == dtype
    w = _values(tuple(want.shape), 5).astype(dtype)
    (out * tm.tensor(w)).sum().backward()
    (want * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(xs.grad.numpy(), ts.grad.numpy(), rtol=tol * 10, atol=tol * 10)
    module = nn.Upsample(**kwargs)
    np.testing.assert_allclose(module(tm.tensor(x)).numpy(), out.numpy())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "kwargs",
    [
        dict(size=13),
        dict(size=(4,)),
        dict(scale_factor=2),
        dict(scale_factor=(0.6,)),
        dict(scale_factor=1.7, recompute_scale_factor=True),
        dict(size=13, mode="linear"),
        dict(size=4, mode="linear", align_corners=True),
        dict(size=1, mode="linear", align_corners=True),
        dict(scale_factor=2.5, mode="linear"),
        dict(scale_factor=0.7, mode="linear", recompute_scale_factor=True),
        dict(scale_factor=3, mode="linear", align_corners=True),
    ],
)
def test_interpolate_1d_matches_torch(kwargs, dtype):
    # (N, C, L) input: 'nearest' and 'linear', values and gradients, and nn.Upsample
    x = _values((2, 3, 9), 6).astype(dtype)
    tol = 1e-9 if dtype == np.float64 else 2e-6
    xs, ts = tm.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, want = F.interpolate(xs, **kwargs), TF.interpolate(ts, **kwargs)
    assert tuple(out.shape) == tuple(want.shape) and out.dtype == dtype
    np.testing.assert_allclose(out.numpy(), want.detach().numpy(), rtol=tol, atol=tol)
    w = _values(tuple(want.shape), 7).astype(dtype)
    (out * tm.tensor(w)).sum().backward()
    (want * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(xs.grad.numpy(), ts.grad.numpy(), rtol=tol * 10, atol=tol * 10)
    module, theirs = nn.Upsample(**kwargs), torch.nn.Upsample(**kwargs)
    np.testing.assert_allclose(module(tm.tensor(x)).numpy(), out.numpy())
    assert repr(module) == repr(theirs)


def test_dropout2d_zeroes_whole_channels():
    tm.manual_seed(0)
    x = tm.tensor(np.ones((50, 40, 3, 3)), requires_grad=True)
    out = F.dropout2d(x, 0.3)
    values = out.numpy()
    per_channel = values.reshape(50, 40, 9)
    assert np.all(per_channel.min(axis=2) == per_channel.max(axis=2))  # a channel is all or none
    assert set(np.unique(values)) <= {0.0, 1 / 0.7}
    assert abs((values == 0).mean() - 0.3) < 0.03
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), values)
    drop = nn.Dropout2d(0.3)
    drop.eval()
    assert drop(x) is x
    assert repr(drop) == repr(torch.nn.Dropout2d(0.3))


# ---------------------------------------------------------------- modules


MODULES = [
    "Conv1d(2, 4, 3)",
    "Conv1d(2, 4, 3, stride=2, padding='same', bias=False)",
    "Conv2d(1, 32, 3, 1)",
    "Conv2d(4, 8, (3, 5), stride=2, padding=(1, 2), dilation=2, groups=2, bias=False)",
    "Conv2d(3, 6, 3, padding='same')",
    "Conv2d(3, 6, 3, padding='valid')",
    "ConvTranspose2d(4, 2, 3, stride=2, output_padding=1)",
    "ConvTranspose2d(4, 6, (2, 3), stride=(2, 1), padding=1, groups=2, dilation=2)",
    "MaxPool1d(3, 2)",
    "MaxPool2d(2)",
    "MaxPool2d((3, 2), stride=1, padding=1, dilation=1, ceil_mode=True)",
    "AvgPool2d(2)",
    "AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False)",
    "AdaptiveAvgPool2d((1, 1))",
    "AdaptiveAvgPool2d(3)",
    "BatchNorm2d(3)",
    "Dropout2d(0.25)",
    "Upsample(scale_factor=2)",
    "Upsample(size=(5, 4), mode='bilinear', align_corners=True)",
]


@pytest.mark.parametrize("spec", MODULES)
def test_modules_print_parameters_and_run_as_torch(spec):
    if "stride=2, padding='same'" in spec:
        with pytest.raises(ValueError, match="strided"):
            eval(f"nn.{spec}")
        with pytest.raises(ValueError, match="strided"):
            eval(f"torch.nn.{spec}")
        return
    ours, theirs = eval(f"nn.{spec}"), eval(f"torch.nn.{spec}").double()
    assert repr(ours) == repr(theirs)
    ours_state, their_state = ours.state_dict(), theirs.state_dict()
    assert list(ours_state) == list(their_state)
    for name, value in their_state.items():
        assert tuple(ours_state[name].shape) == tuple(value.shape)
    ours.load_state_dict({k: tm.tensor(v.numpy()) for k, v in their_state.items()})
    ours.double()
    ours.eval(), theirs.eval()  # dropout draws differ; batch norm uses its running statistics
    nd = 1 if "1d" in spec else 2
    channels = getattr(theirs, "in_channels", getattr(theirs, "num_features", 4))
    x = _values((2, channels, *(7,) * nd), 6)
    with tm.no_grad():
        out = ours(tm.tensor(x))
    with torch.no_grad():
        want = theirs(torch.tensor(x))
    np.testing.assert_allclose(out.numpy(), want.numpy(), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize(
    "make", [lambda m: m.Conv2d(6, 8, (3, 2), groups=2), lambda m: m.ConvTranspose2d(6, 4, 3)]
)
def test_conv_weights_start_uniform_in_one_over_sqrt_fan_in(make):
    tm.manual_seed(0)
    ours, theirs = make(nn), make(torch.nn)
    fan_in = theirs.weight.shape[1] * theirs.weight.shape[2] * theirs.weight.shape[3]
    bound = 1 / np.sqrt(fan_in)
    for name in ("weight", "bias"):
        values = getattr(ours, name).numpy()
        assert values.shape == tuple(getattr(theirs, name).shape)
        assert values.dtype == np.float32
        assert np.abs(values).max() <= bound and np.abs(values).max() > 0.8 * bound


def test_batchnorm2d_trains_and_evaluates_as_torch():
    ours, theirs = nn.BatchNorm2d(3), torch.nn.BatchNorm2d(3).double()
    x = _values((4, 3, 5, 5), 7) * 3 + 1
    compare(lambda a: ours.double()(a), lambda a: theirs(a), [x])
    np.testing.assert_allclose(ours.running_mean.numpy(), theirs.running_mean.numpy())
    np.testing.assert_allclose(ours.running_var.numpy(), theirs.running_var.numpy())
    ours.eval(), theirs.eval()
    compare(lambda a: ours(a), lambda a: theirs(a), [x])
    with pytest.raises(ValueError, match="expected 4D input"):
        ours(tm.tensor(np.zeros((2, 3, 4))))


# ---------------------------------------------------------------- refusals


def _x(*shape):
    return tm.tensor(np.zeros(shape, np.float32))


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: nn.Conv2d(2, 4, 3, padding_mode="circular"), NotImplementedError, "circular"),
        (lambda: nn.Conv2d(2, 4, 3, padding_mode="wrap"), ValueError, "padding_mode"),
        (lambda: nn.Conv2d(2, 4, 3, padding="full"), ValueError, "Invalid padding string"),
        (lambda: nn.Conv2d(3, 4, 3, groups=2), ValueError, "in_channels must be divisible"),
        (lambda: nn.Conv2d(2, 3, 3, groups=2), ValueError, "out_channels must be divisible"),
        (lambda: F.conv2d(_x(1, 2, 5, 5), _x(4, 3, 3, 3)), RuntimeError, r"\[1, 2, 5, 5\]"),
        (lambda: F.conv2d(_x(1, 2, 2, 2), _x(4, 2, 3, 3)), RuntimeError, "Kernel size"),
        (lambda: F.conv2d(_x(1, 2, 5, 5), _x(4, 2, 3)), RuntimeError, r"\[4, 2, 3\]"),
        (lambda: F.conv2d(_x(5, 5), _x(4, 2, 3, 3)), RuntimeError, "Expected 3D"),
        (lambda: F.conv2d(_x(1, 2, 5, 5), _x(4, 2, 3, 3), _x(3)), RuntimeError, r"\[3\]"),
        (
            lambda: F.conv2d(_x(1, 2, 5, 5), _x(4, 2, 3, 3), stride=2, padding="same"),
            ValueError,
            "strided",
        ),
        (lambda: F.conv2d(_x(1, 2, 5, 5), _x(4, 2, 3, 3), stride=0), RuntimeError, "stride"),
        (lambda: F.conv2d(_x(1, 2, 5, 5), tm.tensor(np.zeros((4, 2, 3, 3)))), RuntimeError, "type"),
        (lambda: F.max_pool2d(_x(1, 1, 4, 4), 2, padding=2), RuntimeError, "pad should be"),
        (lambda: F.avg_pool2d(_x(1, 1, 4, 4), 2, padding=2), RuntimeError, "pad should be"),
        (lambda: F.max_pool2d(_x(1, 1, 1, 1), 2), RuntimeError, "too small"),
        (lambda: F.max_pool2d(_x(4, 4), 2), RuntimeError, "Expected 3D"),
        (
            lambda: F.interpolate(_x(1, 1, 4, 4), size=3, mode="bicubic"),
            NotImplementedError,
            "bicubic",
        ),
        (lambda: F.interpolate(_x(1, 1, 4, 4), size=3, mode="cubic"), NotImplementedError, "cubic"),
        (
            lambda: F.interpolate(_x(1, 1, 4), size=3, mode="bilinear"),
            NotImplementedError,
            "Got 3D input, but bilinear mode needs 4D input",
        ),
        (
            lambda: F.interpolate(_x(1, 1, 4, 4), size=3, mode="linear"),
            NotImplementedError,
            "Got 4D input, but linear mode needs 3D input",
        ),
        (lambda: F.interpolate(_x(1, 1, 4), size=(3, 3)), ValueError, "spatial dimensions"),
        (lambda: F.interpolate(_x(1, 1, 4, 4), size=(3, 3, 3)), ValueError, "output size"),
        (lambda: F.interpolate(_x(1, 1, 4, 4), size=3, scale_factor=2), ValueError, "only one"),
        (
            lambda: F.interpolate(_x(1, 1, 4, 4), size=3, align_corners=True),
            ValueError,
            "align_corners",
        ),
        (lambda: F.fold(_x(1, 9, 5), (4, 4), 3), RuntimeError, r"\[1, 9, 5\]"),
        (
            lambda: F.conv_transpose2d(_x(1, 2, 3, 3), _x(2, 2, 3, 3), stride=2, output_padding=2),
            RuntimeError,
            "output padding",
        ),
    ],
)
def test_refusals_name_what_is_wrong(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ---------------------------------------------------------------- ONNX and the example


class SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 6, 3, stride=1, padding="same", groups=2)
        self.pool = nn.AvgPool2d(2)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(6, 3)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2, ceil_mode=True)
        x = self.pool(F.relu(self.conv2(x)))
        return self.fc(tm.flatten(self.gap(x), 1))


def test_a_cnn_exports_to_onnx_and_runs_in_onnxruntime(tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from tinygrad_mlp import onnx as tm_onnx

    tm.manual_seed(0)
    model = SmallCNN()
    model.eval()
    x = _values((2, 1, 9, 9), 8).astype(np.float32)
    path = tmp_path / "cnn.onnx"
    tm_onnx.export(model, (tm.tensor(x),), path, input_names=["x"])
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    kinds = {node.op_type for node in proto.graph.node}
    assert {"Conv", "MaxPool", "AveragePool"} <= kinds
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (x, np.concatenate([x, x, x])[:5]):
        (got,) = session.run(None, {"x": batch})
        with tm.no_grad():
            want = model(tm.tensor(batch)).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_mnist_cnn_example_help_and_a_small_run(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    script = str(ROOT / "examples" / "mnist_cnn.py")
    help_text = subprocess.run(
        [sys.executable, script, "--help"], env=env, capture_output=True, text=True, timeout=60
    )
    assert help_text.returncode == 0 and "--metrics" in help_text.stdout
    if not MNIST_DIR.is_dir():
        pytest.skip(f"the MNIST files are not in {MNIST_DIR}")
    metrics_path = tmp_path / "metrics.json"
    args = ["--data-dir", str(MNIST_DIR), "--epochs", "1", "--train-limit", "640"]
    args += ["--test-limit", "500", "--log-interval", "5", "--threads", "1"]
    args += ["--metrics", str(metrics_path)]
    proc = subprocess.run(
        [sys.executable, script, *args], env=env, capture_output=True, text=True, timeout=240
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "epoch 1 [   320/640]" in proc.stdout  # progress within the epoch
    metrics = json.loads(metrics_path.read_text())
    assert metrics["train_images"] == 640 and metrics["test_images"] == 500
    assert metrics["threads"] == 1
    assert 0.3 < metrics["test_accuracy"] <= 1.0  # 10 Adam steps are far above chance


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.confstr("CS_GNU_LIBC_VERSION") is None,
    reason="glibc's mallopt",
)
@pytest.mark.parametrize("setting, kept", [(None, True), ("0", False)])
def test_convolution_asks_malloc_to_keep_freed_memory_unless_told_not_to(setting, kept):
    # in a child process: the setting is process-wide; it is made by the first convolution or
    # pooling, and TINYGRAD_MLP_KEEP_FREED_MEMORY=0 leaves malloc as it is
    code = (
        "import tinygrad_mlp as tm\n"
        "from tinygrad_mlp import backend\n"
        "from tinygrad_mlp.nn import functional as F\n"
        "before = backend._malloc_settled\n"
        "F.conv2d(tm.ones(1, 1, 4, 4), tm.ones(1, 1, 3, 3))\n"
        "print(before, backend._malloc_settled, backend.keep_freed_memory())\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TINYGRAD_MLP_KEEP_FREED_MEMORY"}
    if setting is not None:
        env["TINYGRAD_MLP_KEEP_FREED_MEMORY"] = setting
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", str(kept) if kept else "tried", str(kept)]
