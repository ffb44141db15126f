"""Losses: values and gradients against their formulas in numpy, stability, errors, PyTorch.

Every loss module and function with every option: against PyTorch and values by hand."""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tensors import T

import tinygrad_mlp as tm
from tinygrad_mlp import nn
from tinygrad_mlp.nn import functional as F

REDUCTIONS = ("mean", "sum", "none")
F64 = np.float64


def tensor(array, requires_grad=True, dtype=F64):
    return T(np.asarray(array, dtype=dtype), requires_grad=requires_grad)


# ---------------------------------------------------------------- the formulas, in plain numpy


def np_softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def np_log_softmax(z):
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def np_sigmoid(z):
    return 1 / (1 + np.exp(-z))


def one_hot(labels, classes):
    return np.eye(classes)[labels]


def reduce(losses, reduction):
    if reduction == "mean":
        return losses.mean()
    return losses.sum() if reduction == "sum" else losses


def scale(g, reduction, count, ndim):
    """What each element's local derivative is multiplied by, given the upstream gradient g."""
    if reduction == "mean":
        return g / count
    if reduction == "sum":
        return g
    return g.reshape(g.shape + (1,) * (ndim - g.ndim))


# Each reference returns (per-element or per-row losses, local derivative w.r.t. the input).


def ref_cross_entropy(z, target):
    if target.ndim == 1:
        y = one_hot(target, z.shape[1])
        return -(y * np_log_softmax(z)).sum(1), np_softmax(z) - y
    return -(target * np_log_softmax(z)).sum(1), np_softmax(z) * target.sum(
        1, keepdims=True
    ) - target


def ref_nll_loss(log_probs, target):
    y = one_hot(target, log_probs.shape[1])
    return -(y * log_probs).sum(1), -y


def ref_binary_cross_entropy(p, y):
    with np.errstate(divide="ignore"):
        log_p, log_q = np.maximum(np.log(p), -100), np.maximum(np.log(1 - p), -100)
    return -(y * log_p + (1 - y) * log_q), (p - y) / np.maximum(p * (1 - p), 1e-12)


def ref_bce_with_logits(z, y):
    return np.log1p(np.exp(z)) - z * y, np_sigmoid(z) - y


def ref_mse_loss(p, y):
    return (p - y) ** 2, 2 * (p - y)


def ref_l1_loss(p, y):
    return np.abs(p - y), np.sign(p - y)


def run_loss(fn, x, target, reduction, g):
    """Value and input gradient of fn for the upstream gradient g."""
    xt = tensor(x)
    out = fn(xt, target, reduction=reduction)
    out.backward(g)
    return out.numpy(), xt.grad.numpy()


def check_against_reference(fn, ref, x, target, reduction, rows, rng):
    losses, local = ref(x, target)
    expected = reduce(losses, reduction)
    g = rng.standard_normal(np.shape(expected))
    value, grad = run_loss(fn, x, target, reduction, g)
    np.testing.assert_allclose(value, expected, rtol=1e-10, atol=1e-12)
    count = rows if local.ndim == 2 and losses.ndim == 1 else x.size
    expected_grad = local * scale(np.asarray(g), reduction, count, x.ndim)
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-9, atol=1e-12)


batches = st.tuples(st.integers(1, 8), st.integers(2, 6))
elementwise_shapes = st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple)
seeds = st.integers(0, 2**32 - 1)
reductions = st.sampled_from(REDUCTIONS)


@settings(max_examples=40, deadline=None)
@given(batch=batches, seed=seeds, reduction=reductions, soft=st.booleans())
def test_cross_entropy_matches_formula(batch, seed, reduction, soft):
    n, c = batch
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, c)) * 3
    target = rng.dirichlet(np.ones(c), n) if soft else rng.integers(0, c, n)
    check_against_reference(F.cross_entropy, ref_cross_entropy, z, target, reduction, n, rng)


@settings(max_examples=30, deadline=None)
@given(batch=batches, seed=seeds, reduction=reductions)
def test_nll_loss_matches_formula(batch, seed, reduction):
    n, c = batch
    rng = np.random.default_rng(seed)
    log_probs = np_log_softmax(rng.standard_normal((n, c)))
    target = rng.integers(0, c, n)
    check_against_reference(F.nll_loss, ref_nll_loss, log_probs, target, reduction, n, rng)


@settings(max_examples=30, deadline=None)
@given(shape=elementwise_shapes, seed=seeds, reduction=reductions, hard=st.booleans())
def test_binary_cross_entropy_matches_formula(shape, seed, reduction, hard):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.02, 0.98, shape)
    y = rng.integers(0, 2, shape).astype(F64) if hard else rng.uniform(0, 1, shape)
    check_against_reference(
        F.binary_cross_entropy, ref_binary_cross_entropy, p, y, reduction, None, rng
    )


@settings(max_examples=30, deadline=None)
@given(shape=elementwise_shapes, seed=seeds, reduction=reductions)
def test_bce_with_logits_matches_formula(shape, seed, reduction):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(shape) * 4
    y = rng.uniform(0, 1, shape)
    check_against_reference(
        F.binary_cross_entropy_with_logits, ref_bce_with_logits, z, y, reduction, None, rng
    )


@settings(max_examples=30, deadline=None)
@given(shape=elementwise_shapes, seed=seeds, reduction=reductions)
def test_mse_and_l1_match_formula(shape, seed, reduction):
    rng = np.random.default_rng(seed)
    p = rng.standard_normal(shape)
    y = p + np.sign(rng.standard_normal(shape)) * rng.uniform(0.1, 2, shape)  # |p - y| >= 0.1
    check_against_reference(F.mse_loss, ref_mse_loss, p, y, reduction, None, rng)
    check_against_reference(F.l1_loss, ref_l1_loss, p, y, reduction, None, rng)


# ---------------------------------------------------------------- the hand-derived formulas


def test_softmax_cross_entropy_gives_a_minus_y_over_m():
    rng = np.random.default_rng(0)
    m, c = 16, 10
    z = tensor(rng.standard_normal((m, c)))
    labels = rng.integers(0, c, m)
    F.cross_entropy(z, labels).backward()
    a, y = np_softmax(z.numpy()), one_hot(labels, c)
    np.testing.assert_allclose(z.grad.numpy(), (a - y) / m, rtol=1e-10, atol=1e-14)
    z2 = tensor(z.numpy())
    F.cross_entropy(z2, y).backward()  # one-hot targets give the same gradient
    np.testing.assert_allclose(z2.grad.numpy(), (a - y) / m, rtol=1e-10, atol=1e-14)


def test_sigmoid_binary_cross_entropy_gives_a_minus_y_over_m():
    rng = np.random.default_rng(1)
    m = 32
    z = tensor(rng.standard_normal((m, 1)) * 2)
    y = rng.integers(0, 2, (m, 1)).astype(F64)
    F.binary_cross_entropy(z.sigmoid(), y).backward()
    a = 1 / (1 + np.exp(-z.numpy()))
    np.testing.assert_allclose(z.grad.numpy(), (a - y) / m, rtol=1e-8, atol=1e-14)
    z2 = tensor(z.numpy())
    F.binary_cross_entropy_with_logits(z2, y).backward()
    np.testing.assert_allclose(z2.grad.numpy(), (a - y) / m, rtol=1e-8, atol=1e-14)


def test_mse_gives_two_a_minus_y_over_size_to_both_sides():
    rng = np.random.default_rng(2)
    a = tensor(rng.standard_normal((8, 3)))
    y = tensor(rng.standard_normal((8, 3)))
    F.mse_loss(a, y).backward()
    expected = 2 * (a.numpy() - y.numpy()) / a.numel()
    np.testing.assert_allclose(a.grad.numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(y.grad.numpy(), -expected, rtol=1e-12)


def test_layer_gradients_follow_the_reference_formulas():
    # Z = A_prev @ W.T + b, A = softmax(Z), cross-entropy averaged over m rows
    rng = np.random.default_rng(3)
    m, n_in, n_out = 12, 5, 4
    layer = tm.nn.Linear(n_in, n_out, dtype=F64)
    a_prev = tensor(rng.standard_normal((m, n_in)))
    labels = rng.integers(0, n_out, m)
    F.cross_entropy(layer(a_prev), labels).backward()
    w, b = layer.weight.numpy(), layer.bias.numpy()
    dz = np_softmax(a_prev.numpy() @ w.T + b) - one_hot(labels, n_out)
    np.testing.assert_allclose(layer.weight.grad.numpy(), dz.T @ a_prev.numpy() / m, rtol=1e-10)
    np.testing.assert_allclose(layer.bias.grad.numpy(), dz.sum(0) / m, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(a_prev.grad.numpy(), dz @ w / m, rtol=1e-10, atol=1e-15)


# ---------------------------------------------------------------- gradcheck in float64


def _gradcheck_cases():
    rng = np.random.default_rng(7)
    z = rng.standard_normal((4, 3))
    labels = np.array([0, 2, 1, 2])
    soft = rng.dirichlet(np.ones(3), 4)
    p = rng.uniform(0.1, 0.9, (4, 3))
    y = rng.uniform(0, 1, (4, 3))
    far = y + np.where(rng.random((4, 3)) < 0.5, -1, 1) * rng.uniform(0.2, 1, (4, 3))
    return {
        "cross_entropy-labels": (F.cross_entropy, z, labels),
        "cross_entropy-soft": (F.cross_entropy, z, soft),
        "nll_loss": (F.nll_loss, z, labels),
        "binary_cross_entropy": (F.binary_cross_entropy, p, y),
        "binary_cross_entropy_with_logits": (F.binary_cross_entropy_with_logits, z * 3, y),
        "mse_loss": (F.mse_loss, z, y),
        "l1_loss": (F.l1_loss, far, y),
    }


GRADCHECK_CASES = _gradcheck_cases()


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", list(GRADCHECK_CASES))
def test_gradcheck_loss(name, reduction):
    fn, x, target = GRADCHECK_CASES[name]
    assert tm.gradcheck(lambda x: fn(x, target, reduction=reduction), [tensor(x)])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_gradcheck_mse_through_its_target(reduction):
    rng = np.random.default_rng(8)
    a, y = tensor(rng.standard_normal((3, 2))), tensor(rng.standard_normal((3, 2)))
    assert tm.gradcheck(lambda a, y: F.mse_loss(a, y, reduction=reduction), [a, y])


def test_gradcheck_log_softmax_into_nll_is_cross_entropy():
    rng = np.random.default_rng(9)
    z = tensor(rng.standard_normal((5, 4)))
    labels = rng.integers(0, 4, 5)
    assert tm.gradcheck(lambda z: F.nll_loss(F.log_softmax(z), labels), [z])
    np.testing.assert_allclose(
        F.nll_loss(F.log_softmax(z), labels).item(), F.cross_entropy(z, labels).item(), rtol=1e-12
    )


# ---------------------------------------------------------------- stability


HUGE = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0], [1e4, 1e4, -1e4]])


@pytest.mark.parametrize("dtype", [np.float32, F64])
def test_cross_entropy_and_log_softmax_with_huge_logits(dtype):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        z = tensor(HUGE, dtype=dtype)
        loss = F.cross_entropy(z, [1, 1, 0], reduction="none")
        loss.sum().backward()
        np.testing.assert_allclose(loss.numpy(), [2e4, 0.0, np.log(2)], rtol=1e-6)
        assert np.all(np.isfinite(z.grad.numpy()))
        expected = np_softmax(HUGE) - one_hot(np.array([1, 1, 0]), 3)
        np.testing.assert_allclose(z.grad.numpy(), expected, atol=1e-6)
        z2 = tensor(HUGE, dtype=dtype)
        out = F.log_softmax(z2)
        out.backward(np.ones(HUGE.shape))
        np.testing.assert_allclose(out.numpy(), np_log_softmax(HUGE), rtol=1e-6)
        assert np.all(np.isfinite(out.numpy())) and np.all(np.isfinite(z2.grad.numpy()))


@pytest.mark.parametrize("dtype", [np.float32, F64])
def test_sigmoid_and_bce_with_logits_with_huge_logits(dtype):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        z = tensor([1e4, -1e4, 1e4, -1e4], dtype=dtype)
        s = F.sigmoid(z)
        s.backward(np.ones(4))
        np.testing.assert_array_equal(s.numpy(), [1, 0, 1, 0])
        np.testing.assert_array_equal(z.grad.numpy(), [0, 0, 0, 0])
        z2 = tensor(z.numpy(), dtype=dtype)
        loss = F.binary_cross_entropy_with_logits(z2, [1.0, 0.0, 0.0, 1.0], reduction="none")
        loss.sum().backward()
        np.testing.assert_allclose(loss.numpy(), [0, 0, 1e4, 1e4], rtol=1e-7)
        np.testing.assert_allclose(z2.grad.numpy(), [0, 0, 1, -1])


@pytest.mark.parametrize("dtype", [np.float32, F64])
def test_binary_cross_entropy_at_zero_and_one_is_clamped(dtype):
    p = tensor([0.0, 1.0, 0.0, 1.0], dtype=dtype)
    y = np.array([1.0, 0.0, 0.0, 1.0])
    loss = F.binary_cross_entropy(p, y, reduction="none")
    np.testing.assert_array_equal(loss.numpy(), [100, 100, 0, 0])  # log clamped at -100
    loss.sum().backward()
    assert np.all(np.isfinite(p.grad.numpy()))
    assert p.grad.numpy()[0] < 0 < p.grad.numpy()[1]
    np.testing.assert_array_equal(p.grad.numpy()[2:], [0, 0])
    mean = F.binary_cross_entropy(tensor(p.numpy(), dtype=dtype), y)
    np.testing.assert_allclose(mean.item(), 50, rtol=1e-6)


# ---------------------------------------------------------------- errors


def _numbers_in(message):
    return {int(n) for n in re.findall(r"-?\d+", message)}


@pytest.mark.parametrize("fn", [F.cross_entropy, F.nll_loss])
@pytest.mark.parametrize("label", [7, 4, -2])
def test_label_out_of_range_names_label_and_class_count(fn, label):
    logits = tensor(np.zeros((3, 4)))
    with pytest.raises(IndexError, match="Target") as info:  # PyTorch raises IndexError
        fn(logits, [0, label, 1])
    message = str(info.value)
    assert label in _numbers_in(message) and re.search(r"\b4 classes", message), message


@pytest.mark.parametrize("fn", [F.cross_entropy, F.nll_loss])
def test_class_targets_of_the_wrong_shape_name_both_shapes(fn):
    logits = tensor(np.zeros((5, 3)))
    with pytest.raises(ValueError) as info:
        fn(logits, np.zeros(6, dtype=np.int64))
    assert "(6,)" in str(info.value) and "(5, 3)" in str(info.value)
    with pytest.raises(ValueError, match="whole"):
        fn(logits, np.array([0.5, 1, 2, 0, 1]))
    with pytest.raises(ValueError, match=r"\(5,\)"):  # (C,) input takes one target
        fn(tensor(np.zeros(5)), [0, 1, 2, 0, 1])


def test_probability_targets_of_the_wrong_shape_name_both_shapes():
    with pytest.raises(ValueError) as info:
        F.cross_entropy(tensor(np.zeros((5, 3))), np.full((5, 4), 0.25))
    assert "(5, 4)" in str(info.value) and "(5, 3)" in str(info.value)


@pytest.mark.parametrize("fn", [F.binary_cross_entropy, F.binary_cross_entropy_with_logits])
def test_elementwise_targets_of_the_wrong_shape_name_both_shapes(fn):
    x = tensor(np.full((4, 1), 0.5))
    for target in (np.zeros(4), T(np.zeros((1, 4)))):
        with pytest.raises(ValueError) as info:  # PyTorch's type for these two
            fn(x, target)
        assert str(tuple(target.shape)) in str(info.value) and "(4, 1)" in str(info.value)


@pytest.mark.parametrize("fn", [F.mse_loss, F.l1_loss])
def test_broadcastable_targets_of_another_shape_warn_and_broadcast_as_pytorch(fn):
    x = tensor(np.array([[0.5], [1.5], [-1.0], [2.0]]))
    for target in (np.arange(4.0), T(np.arange(4.0).reshape(1, 4))):
        with pytest.warns(UserWarning) as record:
            out = fn(x, target)
        message = str(record[0].message)
        assert str(tuple(target.shape)) in message and "(4, 1)" in message
        # both broadcast to (4, 4): an independent numpy formula
        diff = x.numpy() - np.asarray(target.numpy() if isinstance(target, tm.Tensor) else target)
        expected = (diff**2 if fn is F.mse_loss else np.abs(diff)).mean()
        assert out.item() == pytest.approx(expected, rel=1e-12)
    with pytest.raises(RuntimeError, match=r"\(3, 1\).*\(4, 1\)"):
        fn(x, np.zeros((3, 1)))


ALL_LOSSES = {
    "cross_entropy": (F.cross_entropy, np.zeros((2, 3)), [0, 1]),
    "nll_loss": (F.nll_loss, np.zeros((2, 3)), [0, 1]),
    "binary_cross_entropy": (F.binary_cross_entropy, np.full(2, 0.5), [0.0, 1.0]),
    "binary_cross_entropy_with_logits": (F.binary_cross_entropy_with_logits, np.zeros(2), [0, 1]),
    "mse_loss": (F.mse_loss, np.zeros(2), [0.0, 1.0]),
    "l1_loss": (F.l1_loss, np.zeros(2), [0.0, 1.0]),
}


@pytest.mark.parametrize("name", list(ALL_LOSSES))
def test_bad_reduction_is_refused(name):
    fn, x, target = ALL_LOSSES[name]
    for bad in ("avg", "Mean", None):
        with pytest.raises(ValueError, match=re.escape(repr(bad))):
            fn(tensor(x), target, reduction=bad)


@pytest.mark.parametrize("bad", [-0.01, 1.01, np.nan])
def test_binary_cross_entropy_refuses_input_outside_unit_interval(bad):
    with pytest.raises(RuntimeError, match="between 0 and 1"):  # PyTorch's type and words
        F.binary_cross_entropy(tensor([0.5, bad]), [0.0, 1.0])


# ---------------------------------------------------------------- target types


@pytest.mark.parametrize("name", list(ALL_LOSSES))
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_targets_as_arrays_lists_and_tensors_agree(name, reduction):
    fn, _, _ = ALL_LOSSES[name]
    rng = np.random.default_rng(11)
    if name in ("cross_entropy", "nll_loss"):
        x, target = rng.standard_normal((6, 4)), [3, 0, 1, 2, 2, 0]
    else:
        x, target = rng.uniform(0.1, 0.9, (3, 2)), [[0.0, 1.0], [1.0, 1.0], [0.25, 0.0]]
    results = []
    for t in (np.array(target), target, T(np.array(target)), T(target, dtype=F64)):
        xt = tensor(x)
        out = fn(xt, t, reduction=reduction)
        out.backward(np.ones(out.shape))
        results.append((out.numpy(), xt.grad.numpy()))
    for value, grad in results[1:]:
        np.testing.assert_array_equal(value, results[0][0])
        np.testing.assert_array_equal(grad, results[0][1])


def test_float32_losses_stay_float32():
    z = tensor(np.zeros((2, 3)), dtype=np.float32)
    for out in (
        F.cross_entropy(z, [0, 1]),
        F.cross_entropy(z, np.full((2, 3), 1 / 3)),
        F.nll_loss(z, [0, 1]),
        F.mse_loss(z, np.ones((2, 3))),
        F.l1_loss(z, np.ones((2, 3))),
        F.binary_cross_entropy_with_logits(z, np.ones((2, 3))),
        F.binary_cross_entropy(z.sigmoid(), np.ones((2, 3))),
    ):
        assert out.dtype == np.float32
        out.backward()
    assert z.grad.numpy().dtype == np.float32


def test_a_float64_target_tensor_widens_a_float32_loss():
    # PyTorch's type promotion: float32 input, float64 target tensor -> a float64 loss, while
    # the input's gradient stays float32
    z = tensor(np.zeros((2, 3)), dtype=np.float32, requires_grad=True)
    y = tm.Tensor(np.ones((2, 3)), dtype=F64)
    for out in (F.mse_loss(z, y), F.l1_loss(z, y), F.smooth_l1_loss(z, y), F.kl_div(z, y)):
        assert out.dtype == np.float64
        out.backward()
    assert z.grad.numpy().dtype == np.float32


# ---------------------------------------------------------------- PyTorch


def _torch_cases(rng):
    z = rng.standard_normal((6, 5)) * 3
    labels = rng.integers(0, 5, 6)
    soft = rng.dirichlet(np.ones(5), 6)
    p = np.concatenate([rng.uniform(0.01, 0.99, 10), [0.0, 1.0, 0.0, 1.0]]).reshape(2, 7)
    y = np.concatenate([rng.uniform(0, 1, 10), [1.0, 0.0, 0.0, 1.0]]).reshape(2, 7)
    return [
        ("cross_entropy", z, labels),
        ("cross_entropy", z, soft),
        ("nll_loss", np_log_softmax(z), labels),
        ("binary_cross_entropy", p, y),
        ("binary_cross_entropy_with_logits", z * 10, rng.uniform(0, 1, z.shape)),
        ("mse_loss", z, rng.standard_normal(z.shape)),
        ("l1_loss", z, rng.standard_normal(z.shape)),
    ]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", [np.float32, F64])
def test_losses_match_torch(reduction, dtype):
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    rng = np.random.default_rng(12)
    for name, x, target in _torch_cases(rng):
        xt = tensor(x, dtype=dtype)
        out = getattr(F, name)(xt, target, reduction=reduction)
        g = rng.standard_normal(out.shape)
        out.backward(g)
        ref_x = torch.tensor(x.astype(dtype), requires_grad=True)
        ref_target = torch.from_numpy(target if target.dtype.kind == "i" else target.astype(dtype))
        ref = getattr(tf, name)(ref_x, ref_target, reduction=reduction)
        ref.backward(torch.from_numpy(g.astype(dtype)))
        tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
        assert out.dtype == dtype
        np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), err_msg=name, **tol)
        if name == "binary_cross_entropy":  # torch clamps p (1 - p) at float32(1e-12)
            tol["rtol"] = max(tol["rtol"], 1e-8)
        np.testing.assert_allclose(xt.grad.numpy(), ref_x.grad.numpy(), err_msg=name, **tol)


@pytest.mark.parametrize("transposed", [False, True])
def test_cross_entropy_gradient_does_not_depend_on_the_logits_memory_order(transposed):
    rng = np.random.default_rng(0)
    z = rng.standard_normal((5, 4))
    y = np.array([0, 3, 1, 1, 2])
    leaf = T(z.T.copy() if transposed else z, requires_grad=True)
    logits = leaf.T if transposed else leaf  # .T: a column-major view of the leaf's data
    assert logits._data.flags.c_contiguous != transposed  # numpy() copies a device array to C
    F.cross_entropy(logits, y).backward()
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    expected = (p - np.eye(4)[y]) / len(y)
    got = leaf.grad.numpy().T if transposed else leaf.grad.numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)


RNG = np.random.default_rng(3)
LOGITS = RNG.standard_normal((6, 4))
LABELS = np.array([3, 0, 1, 2, 2, 0])
IGNORED = np.array([3, -100, 1, 2, -100, 0])
PROBS = np.abs(RNG.standard_normal((6, 4)))
PROBS /= PROBS.sum(1, keepdims=True)
WEIGHT = np.array([0.2, 1.0, 2.5, 0.7])
PRED = RNG.standard_normal((5, 3)) * 2
TARGET = RNG.standard_normal((5, 3)) * 2
UNIT = 1 / (1 + np.exp(-PRED))
BINARY = (RNG.random((5, 3)) > 0.5).astype(F64)
ELEMENT_WEIGHT = RNG.random((5, 3)) + 0.5
POS_WEIGHT = np.array([0.5, 2.0, 3.0])
LOG_P = np.log(PROBS)


def t64(a, requires_grad=True):
    return T(np.asarray(a, dtype=F64), requires_grad=requires_grad)


# (module name, constructor kwargs, input, target); the torch module takes the same kwargs
CASES = [
    ("CrossEntropyLoss", {}, LOGITS, LABELS),
    ("CrossEntropyLoss", {"weight": WEIGHT}, LOGITS, LABELS),
    ("CrossEntropyLoss", {}, LOGITS, IGNORED),
    ("CrossEntropyLoss", {"ignore_index": 2}, LOGITS, LABELS),
    ("CrossEntropyLoss", {"weight": WEIGHT}, LOGITS, IGNORED),
    ("CrossEntropyLoss", {"label_smoothing": 0.1}, LOGITS, LABELS),
    ("CrossEntropyLoss", {"label_smoothing": 0.2, "weight": WEIGHT}, LOGITS, IGNORED),
    ("CrossEntropyLoss", {}, LOGITS, PROBS),
    ("CrossEntropyLoss", {"weight": WEIGHT, "label_smoothing": 0.3}, LOGITS, PROBS),
    ("CrossEntropyLoss", {}, LOGITS[0], LABELS[0]),
    ("CrossEntropyLoss", {"weight": WEIGHT}, RNG.standard_normal((2, 4, 3)), LABELS.reshape(2, 3)),
    ("NLLLoss", {}, LOG_P, LABELS),
    ("NLLLoss", {"weight": WEIGHT}, LOG_P, IGNORED),
    ("NLLLoss", {"ignore_index": 0}, LOG_P, LABELS),
    ("MSELoss", {}, PRED, TARGET),
    ("L1Loss", {}, PRED, TARGET),
    ("SmoothL1Loss", {}, PRED, TARGET),
    ("SmoothL1Loss", {"beta": 0.5}, PRED, TARGET),
    ("SmoothL1Loss", {"beta": 0.0}, PRED, TARGET),
    ("HuberLoss", {}, PRED, TARGET),
    ("HuberLoss", {"delta": 2.5}, PRED, TARGET),
    ("BCELoss", {}, UNIT, BINARY),
    ("BCELoss", {"weight": ELEMENT_WEIGHT}, UNIT, UNIT[::-1].copy()),
    ("BCEWithLogitsLoss", {}, PRED, BINARY),
    ("BCEWithLogitsLoss", {"weight": ELEMENT_WEIGHT}, PRED, BINARY),
    ("BCEWithLogitsLoss", {"pos_weight": POS_WEIGHT}, PRED, UNIT),
    ("BCEWithLogitsLoss", {"pos_weight": POS_WEIGHT, "weight": POS_WEIGHT}, PRED * 20, BINARY),
    ("KLDivLoss", {}, LOG_P, PROBS),
    ("KLDivLoss", {"log_target": True}, LOG_P, LOG_P[::-1].copy()),
]
TENSOR_ARGS = ("weight", "pos_weight")


def _ids(case):
    name, kwargs, x, _ = case
    return f"{name}-{'-'.join(sorted(kwargs))}-{np.shape(x)}"


def _reductions(name):
    return ["mean", "sum", "none"] + (["batchmean"] if name == "KLDivLoss" else [])


@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_loss_module_matches_torch_for_every_reduction(case):
    torch = pytest.importorskip("torch")
    name, kwargs, x_data, y_data = case
    for reduction in _reductions(name):
        ours = getattr(nn, name)(reduction=reduction, **kwargs)
        theirs = getattr(torch.nn, name)(
            reduction=reduction,
            **{k: torch.tensor(v) if k in TENSOR_ARGS else v for k, v in kwargs.items()},
        )
        x = t64(x_data)
        tx = torch.tensor(x_data, requires_grad=True)
        integer = np.asarray(y_data).dtype.kind == "i"
        y = tm.tensor(y_data) if integer else t64(y_data, False)
        ty = torch.tensor(y_data)
        out, tout = ours(x, y), theirs(tx, ty)
        assert out.shape == tuple(tout.shape), reduction
        np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-10, atol=1e-12)
        g = np.cos(np.arange(max(out.numel(), 1))).reshape(out.shape)
        (out * t64(g, False)).sum().backward()
        (tout * torch.tensor(g)).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-9, atol=1e-12)
        assert repr(ours) == repr(theirs)


@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_loss_module_and_function_agree_and_pass_gradcheck(case):
    name, kwargs, x_data, y_data = case
    functions = {
        "CrossEntropyLoss": F.cross_entropy,
        "NLLLoss": F.nll_loss,
        "MSELoss": F.mse_loss,
        "L1Loss": F.l1_loss,
        "SmoothL1Loss": F.smooth_l1_loss,
        "HuberLoss": F.huber_loss,
        "BCELoss": F.binary_cross_entropy,
        "BCEWithLogitsLoss": F.binary_cross_entropy_with_logits,
        "KLDivLoss": F.kl_div,
    }
    kw = {k: T(v) if k in TENSOR_ARGS else v for k, v in kwargs.items()}
    module = getattr(nn, name)(**kw)
    y = tm.tensor(y_data) if np.asarray(y_data).dtype.kind == "i" else t64(y_data, False)
    np.testing.assert_array_equal(
        module(t64(x_data), y).numpy(), functions[name](t64(x_data), y, **kw).numpy()
    )
    if name in ("L1Loss", "SmoothL1Loss", "HuberLoss"):
        return  # kinks at |x - y| = 0 or beta: checked against torch instead
    if name == "BCELoss":
        return  # the clamped log: checked against torch
    assert tm.gradcheck(lambda x: module(x, y), [t64(x_data)])


# ---------------------------------------------------------------- by hand


def _log_softmax(z):
    z = z - z.max(1, keepdims=True)
    return z - np.log(np.exp(z).sum(1, keepdims=True))


def test_weighted_cross_entropy_mean_divides_by_the_picked_weights():
    out = F.cross_entropy(t64(LOGITS), IGNORED, weight=T(WEIGHT))
    keep = IGNORED != -100
    rows = np.arange(6)[keep]
    picked = -_log_softmax(LOGITS)[rows, IGNORED[keep]] * WEIGHT[IGNORED[keep]]
    assert out.item() == pytest.approx(picked.sum() / WEIGHT[IGNORED[keep]].sum(), rel=1e-12)
    none = F.cross_entropy(t64(LOGITS), IGNORED, reduction="none")
    assert none.numpy()[1] == 0 and none.numpy()[4] == 0


def test_label_smoothing_by_hand():
    eps = 0.1
    out = F.cross_entropy(t64(LOGITS), LABELS, label_smoothing=eps).item()
    logp = _log_softmax(LOGITS)
    target = np.full((6, 4), eps / 4)
    target[np.arange(6), LABELS] += 1 - eps
    assert out == pytest.approx(-(target * logp).sum(1).mean(), rel=1e-12)


def test_probability_targets_by_hand():
    out = F.cross_entropy(t64(LOGITS), PROBS, weight=T(WEIGHT)).item()
    expected = -(PROBS * WEIGHT * _log_softmax(LOGITS)).sum() / 6  # mean over samples
    assert out == pytest.approx(expected, rel=1e-12)


def test_all_targets_ignored_gives_nan_as_torch():
    out = F.cross_entropy(t64(LOGITS[:2]), np.array([-100, -100]))
    assert math.isnan(out.item())


def test_smooth_l1_and_huber_by_hand():
    d = np.array([0.2, -0.7, 1.5, -3.0])
    x, y = t64(d), np.zeros(4)
    beta = 1.0
    expected = np.where(np.abs(d) < beta, 0.5 * d**2 / beta, np.abs(d) - 0.5 * beta)
    np.testing.assert_allclose(F.smooth_l1_loss(x, y, reduction="none").numpy(), expected)
    delta = 2.0
    huber = np.where(np.abs(d) < delta, 0.5 * d**2, delta * (np.abs(d) - 0.5 * delta))
    np.testing.assert_allclose(F.huber_loss(x, y, reduction="none", delta=delta).numpy(), huber)


def test_bce_with_logits_pos_weight_by_hand():
    z, y, pw = PRED, UNIT, POS_WEIGHT
    expected = -(pw * y * np.log(1 / (1 + np.exp(-z))) + (1 - y) * np.log(1 - 1 / (1 + np.exp(-z))))
    out = F.binary_cross_entropy_with_logits(t64(z), y, pos_weight=T(pw), reduction="none")
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10)


def test_kl_div_batchmean_and_zero_targets():
    y = PROBS.copy()
    y[0, 0] = 0.0  # 0 log 0 counts as 0
    out = F.kl_div(t64(LOG_P), y, reduction="batchmean").item()
    terms = np.where(y > 0, y * (np.log(np.where(y > 0, y, 1)) - LOG_P), 0.0)
    assert out == pytest.approx(terms.sum() / 6, rel=1e-12)
    assert F.kl_div(t64(LOG_P), y, reduction="mean").item() == pytest.approx(terms.mean())


# ---------------------------------------------------------------- refusals


def test_refusals_name_the_problem():
    with pytest.raises(ValueError, match="not a valid value for reduction"):
        nn.MSELoss(reduction="avg")
    with pytest.raises(ValueError, match="not a valid value for reduction"):
        F.kl_div(t64(LOG_P), PROBS, reduction="average")
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(t64(LOGITS), LABELS, label_smoothing=1.5)
    with pytest.raises(RuntimeError, match="weight tensor should be defined"):
        F.cross_entropy(t64(LOGITS), LABELS, weight=T(np.ones(3)))
    with pytest.raises(IndexError, match="Target 4 is out of bounds"):
        F.nll_loss(t64(LOG_P), np.array([4, 0, 0, 0, 0, 0]))
    with pytest.raises(RuntimeError, match="negative values for beta"):
        F.smooth_l1_loss(t64(PRED), TARGET, beta=-1.0)
    with pytest.raises(ValueError, match="same size"):
        F.huber_loss(t64(PRED), TARGET[:, :2])
