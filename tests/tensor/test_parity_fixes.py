"""Gradients, values, dtypes and refusals that once differed from PyTorch, each checked against
a value worked out by hand, a numpy formula, finite differences, or PyTorch itself."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tinygrad_mlp as tm
import tinygrad_mlp.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def leaf(values, dtype=np.float64):
    return tm.tensor(np.asarray(values, dtype=dtype), requires_grad=True)


def grad_of(fn, values):
    x = leaf(values)
    fn(x).sum().backward()
    return x.grad.numpy()


# ---------------------------------------------------------------- gradients


def test_remainder_has_gradient_one_for_self_and_minus_floor_for_other():
    a, b = leaf([1.5, -2.5, 7.0]), leaf([2.0, 2.0, -3.0])
    (a % b).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [1.0, 1.0, 1.0])
    # d(a mod b)/db = -floor(a / b): floor(0.75) = 0, floor(-1.25) = -2, floor(-2.33) = -3
    np.testing.assert_array_equal(b.grad.numpy(), [0.0, 2.0, 3.0])
    x = leaf([1.5, -2.5])
    (x % 2.0).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0])


def test_reflected_remainder_of_a_number():
    np.testing.assert_array_equal((5 % tm.tensor([2.0, 3.0, -3.0])).numpy(), [1.0, 2.0, -1.0])
    out = 5 % tm.tensor([2, 3, -3])
    assert out.dtype == tm.int64 and out.tolist() == [1, 2, -1]


def test_std_of_equal_values_has_zero_gradient():
    np.testing.assert_array_equal(grad_of(lambda x: x.std(), [2.0, 2.0, 2.0]), [0.0] * 3)
    # away from the tie: d std / dx_i = (x_i - mean) / ((n - 1) std)
    x = np.array([1.0, 2.0, 4.0])
    expected = (x - x.mean()) / ((len(x) - 1) * x.std(ddof=1))
    np.testing.assert_allclose(grad_of(lambda t: t.std(), x), expected, rtol=1e-12)


@pytest.mark.parametrize("fn", ["cross_entropy", "nll_loss"])
def test_mean_loss_with_every_target_ignored_is_nan_with_zero_gradient(fn):
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    inp = x if fn == "cross_entropy" else x.log_softmax(1)
    loss = getattr(F, fn)(inp, tm.tensor([-100, -100]))
    loss.backward()
    assert math.isnan(loss.item())
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros((2, 2)))


def test_clamp_with_tensor_bounds_gives_ties_to_the_input():
    x, low = leaf([1.0, 2.0, 0.5]), leaf([1.0, 0.0, 1.0])
    x.clamp(min=low).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0, 0.0])
    np.testing.assert_array_equal(low.grad.numpy(), [0.0, 0.0, 1.0])
    x, high = leaf([1.0, 3.0]), leaf([1.0, 2.0])
    x.clamp(max=high).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 0.0])
    np.testing.assert_array_equal(high.grad.numpy(), [0.0, 1.0])


def test_clamp_with_both_tensor_bounds_matches_pytorch_when_the_bounds_cross():
    values = ([0.0, 1.0, 3.0, 0.5, 2.0], [1.0, 0.0, 1.0, 1.0, 2.0], [2.0, 2.0, 2.0, 1.0, 1.0])
    ours = [leaf(v) for v in values]
    theirs = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in values]
    out = ours[0].clamp(ours[1], ours[2])
    ref = theirs[0].clamp(theirs[1], theirs[2])
    out.sum().backward()
    ref.sum().backward()
    np.testing.assert_array_equal(out.numpy(), ref.detach().numpy())
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(a.grad.numpy(), b.grad.numpy())


def test_clamp_refuses_a_tensor_bound_with_a_number_bound():
    with pytest.raises(TypeError):
        tm.tensor([1.0]).clamp(tm.tensor([0.0]), 2.0)


def test_norm_with_p_below_one_has_zero_gradient_at_zero():
    # ||x||_p = (sum |x|^p)^(1/p); d/dx_i = sign(x_i) |x_i|^(p-1) ||x||^(1-p), 0 where x_i = 0
    x = np.array([0.0, 1.0, 4.0])
    norm = (np.abs(x) ** 0.5).sum() ** 2
    expected = np.where(x == 0, 0.0, np.abs(np.where(x == 0, 1, x)) ** -0.5 * norm**0.5)
    np.testing.assert_allclose(grad_of(lambda t: t.norm(p=0.5), x), expected, rtol=1e-12)


def test_hardswish_at_minus_infinity():
    x = leaf([-math.inf, -3.0, -1.0, 3.0, 4.0])
    out = F.hardswish(x)
    out.sum().backward()
    assert math.isnan(out.numpy()[0])  # -inf * 0, as PyTorch
    # d/dx x (x + 3) / 6 = (2x + 3) / 6 inside (-3, 3); 0 below, 1 above (0 at -3, 1 at 3)
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 0.0, 1 / 6, 1.0, 1.0], rtol=1e-12)


def test_pow_gradient_for_the_exponent_at_negative_and_zero_bases():
    a = tm.tensor([-2.0, 2.0, 0.0, 0.0])
    b = leaf([2.0, 3.0, 2.0, 0.0])
    (a**b).sum().backward()
    # d/db a^b = a^b log a: NaN for a < 0; 8 log 2 at (2, 3); 0 at a = 0 with b >= 0
    np.testing.assert_allclose(b.grad.numpy(), [math.nan, 8 * math.log(2), 0.0, 0.0])


def test_pow_gradient_for_the_base_where_the_exponent_is_zero():
    x = leaf([0.0, 2.0])
    (x**x).sum().backward()
    # d/da a^b = b a^(b-1): 0 at b = 0 (no 0 * inf); at 2: 2 * 2 + 4 log 2 (both paths)
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 4 + 4 * math.log(2)], rtol=1e-12)


def test_sqrt_gradient_keeps_the_sign_of_minus_zero():
    np.testing.assert_array_equal(grad_of(lambda x: x.sqrt(), [-0.0, 0.0]), [-math.inf, math.inf])


@pytest.mark.parametrize("name", ["elu", "selu", "celu"])
def test_second_derivative_of_exponential_units_at_zero_is_zero(name):
    x = leaf([0.0, -0.5, 0.5])
    (g,) = tm.autograd.grad(getattr(F, name)(x).sum(), x, create_graph=True)
    (h,) = tm.autograd.grad(g.sum(), x)
    scale = 1.0507009873554804934 if name == "selu" else 1.0
    alpha = 1.6732632423543772848 if name == "selu" else 1.0
    # f''(x) = scale alpha e^x below 0, 0 above, and 0 at 0 (as PyTorch); f'(0) from below
    np.testing.assert_allclose(h.numpy(), [0.0, scale * alpha * math.exp(-0.5), 0.0])
    np.testing.assert_allclose(g.numpy()[0], scale * alpha)


def test_div_with_rounding_mode_gives_zero_gradients():
    x, y = leaf([1.0, 2.0]), leaf([1.0, 3.0])
    x.div(y, rounding_mode="floor").sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0])
    np.testing.assert_array_equal(y.grad.numpy(), [0.0, 0.0])


def test_floor_division_is_recorded_and_its_backward_refused():
    x = leaf([3.0, 4.0])
    out = x // 2
    assert out.requires_grad
    with pytest.raises(RuntimeError, match="floor_divide"):
        out.sum().backward()


# ---------------------------------------------------------------- state that goes stale


def test_sequential_reads_an_activation_setting_changed_after_the_first_call():
    m = tm.nn.Sequential(tm.nn.Linear(2, 2), tm.nn.LeakyReLU(0.01))
    with tm.no_grad():
        m[0].weight.copy_(tm.tensor([[1.0, 0.0], [0.0, 1.0]]))
        m[0].bias.zero_()
    x = tm.tensor([[-1.0, 2.0]])
    np.testing.assert_allclose(m(x).numpy(), [[-0.01, 2.0]], rtol=1e-6)
    m[1].negative_slope = 0.5
    np.testing.assert_allclose(m(x).numpy(), [[-0.5, 2.0]])


@pytest.mark.parametrize("options", [{"weight_decay": 0.1}, {"maximize": True}])
def test_sgd_momentum_updates_the_buffer_of_a_0d_parameter(options):
    p = tm.nn.Parameter(tm.tensor(1.0, dtype=tm.float64))
    opt = tm.optim.SGD([p], lr=0.1, momentum=0.9, **options)
    # by hand: g = 2p (+ wd p), negated when maximizing; buf = 0.9 buf + g; p -= 0.1 buf
    value, buf = 1.0, None
    for _ in range(3):
        opt.zero_grad()
        (p * p).backward()
        opt.step()
        g = 2 * value + options.get("weight_decay", 0.0) * value
        g = -g if options.get("maximize") else g
        buf = g if buf is None else 0.9 * buf + g
        value -= 0.1 * buf
        assert p.item() == pytest.approx(value, rel=1e-12)


@pytest.mark.parametrize("cls", ["Adam", "AdamW"])
def test_adam_steps_a_0d_parameter(cls):
    p = tm.nn.Parameter(tm.tensor(1.0, dtype=tm.float64))
    q = torch.nn.Parameter(torch.tensor(1.0, dtype=torch.float64))
    ours, theirs = getattr(tm.optim, cls)([p], lr=0.1), getattr(torch.optim, cls)([q], lr=0.1)
    for _ in range(3):
        for opt, t in ((ours, p), (theirs, q)):
            opt.zero_grad()
            (t * t).backward()
            opt.step()
    assert p.item() == pytest.approx(q.item(), rel=1e-12)


# ---------------------------------------------------------------- values


def test_div_floor_rounds_like_floor_division():
    # 1.0 / 0.1 is 10 in floating point, but 0.1 is slightly above 1/10: floor(1 / 0.1) = 9
    x = tm.tensor([1.0], dtype=tm.float64)
    assert x.div(0.1, rounding_mode="floor").item() == 1.0 // 0.1 == 9.0
    assert x.div(0.1, rounding_mode="trunc").item() == 10.0


def test_pad_keeps_infinity_out_of_the_padding():
    x = leaf([math.inf, 1.0])
    out = F.pad(x, (1, 1))
    out.sum().backward()
    np.testing.assert_array_equal(out.numpy(), [0.0, math.inf, 1.0, 0.0])
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0])


def test_smooth_l1_of_a_huge_difference_is_linear():
    x = leaf([1e200, 0.5])
    out = F.smooth_l1_loss(x, tm.zeros(2, dtype=tm.float64), reduction="none")
    out.sum().backward()
    # |d| - beta / 2 for |d| >= beta, d^2 / (2 beta) below: 1e200 - 0.5 (= 1e200), 0.125
    np.testing.assert_array_equal(out.numpy(), [1e200, 0.125])
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 0.5])


def test_embedding_padding_row_with_infinity():
    w = leaf([[math.inf, 1.0], [2.0, 3.0]])
    out = F.embedding(tm.tensor([0, 1]), w, padding_idx=0)
    out.sum().backward()
    np.testing.assert_array_equal(out.numpy(), [[math.inf, 1.0], [2.0, 3.0]])
    np.testing.assert_array_equal(w.grad.numpy(), [[0.0, 0.0], [1.0, 1.0]])


def test_embedding_max_norm_renormalises_the_picked_rows_in_place():
    w = tm.tensor([[3.0, 4.0], [0.3, 0.4], [6.0, 8.0]], dtype=tm.float64)
    out = F.embedding(tm.tensor([0, 1]), w, max_norm=1.0)
    # row 0 has norm 5 > 1: scaled by 1 / (5 + 1e-7); row 1 (norm 0.5) and row 2 (not picked) stay
    scaled = np.array([3.0, 4.0]) / (5 + 1e-7)
    np.testing.assert_allclose(out.numpy(), [scaled, [0.3, 0.4]], rtol=1e-15)
    np.testing.assert_allclose(w.numpy(), [scaled, [0.3, 0.4], [6.0, 8.0]], rtol=1e-15)
    m = tm.nn.Embedding(3, 2, max_norm=1.0)
    m(tm.tensor([0, 1, 2]))
    assert (np.linalg.norm(m.weight.detach().numpy(), axis=1) <= 1.0 + 1e-6).all()


# ---------------------------------------------------------------- dtypes


def test_integer_powers_stay_int64():
    out = tm.tensor([2, 3]) ** tm.tensor([2, 1])
    assert out.dtype == tm.int64 and out.tolist() == [4, 3]
    out = 2 ** tm.tensor([2, 3])
    assert out.dtype == tm.int64 and out.tolist() == [4, 8]


def test_unsigned_sum_and_bool_nansum_are_int64():
    out = tm.tensor([200, 100], dtype=tm.uint8).sum()
    assert out.dtype == tm.int64 and out.item() == 300
    out = tm.tensor([True, True, False]).nansum()
    assert out.dtype == tm.int64 and out.item() == 2


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "smooth_l1_loss", "kl_div", "huber_loss"])
def test_losses_promote_dtypes_as_pytorch(name):
    for a, b in ((np.float32, np.float64), (np.float64, np.float32)):
        x, y = np.array([0.1, 0.2], dtype=a), np.array([0.3, 0.4], dtype=b)
        ours = getattr(F, name)(tm.tensor(x), tm.tensor(y))
        theirs = getattr(TF, name)(torch.from_numpy(x), torch.from_numpy(y))
        assert str(ours.dtype).split(".")[-1] == str(theirs.dtype).split(".")[-1]


# ---------------------------------------------------------------- 0-d tensors


def test_round_of_a_0d_tensor_that_requires_grad():
    x = tm.tensor(1.4, dtype=tm.float64, requires_grad=True)
    y = x.round()
    (y * x).backward()
    assert y.item() == 1.0 and x.grad.item() == 1.0  # d(round(x) x)/dx = round(x) = 1


def test_ops_after_a_0d_floor_division_and_remainder():
    x = tm.tensor(7.0, dtype=tm.float64)
    assert (x // 2 + tm.tensor(1.0, dtype=tm.float64)).item() == 4.0
    assert ((x % 2) * tm.tensor([1.0], dtype=tm.float64)).tolist() == [1.0]


# ---------------------------------------------------------------- refusals


def test_targets_that_require_grad_are_differentiated():
    x = [[1.0, 2.0], [3.0, 4.0]]
    t = [[0.3, 0.7], [0.5, 0.5]]
    for fn in ("cross_entropy", "binary_cross_entropy", "binary_cross_entropy_with_logits"):
        xs = np.array(x) if fn == "cross_entropy" else 1 / (1 + np.exp(-np.array(x)))
        if fn == "binary_cross_entropy_with_logits":
            xs = np.array(x)
        a, b = leaf(xs), leaf(t)
        c = torch.tensor(xs, requires_grad=True)
        d = torch.tensor(t, dtype=torch.float64, requires_grad=True)
        getattr(F, fn)(a, b).backward()
        getattr(TF, fn)(c, d).backward()
        np.testing.assert_allclose(a.grad.numpy(), c.grad.numpy(), rtol=1e-12)
        np.testing.assert_allclose(b.grad.numpy(), d.grad.numpy(), rtol=1e-12)


def test_second_backward_through_a_graph_that_saved_nothing():
    x = leaf([1.0, 2.0])
    y = (x + 1).sum()
    y.backward()
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])
    z = (x * x).sum()  # mul saves its inputs: a second backward is refused
    z.backward()
    with pytest.raises(RuntimeError, match="second time"):
        z.backward()


@pytest.mark.parametrize(
    "fn",
    [
        lambda: tm.tensor([True]) - tm.tensor([False]),
        lambda: tm.tensor([True]) - tm.tensor([1.0]),
        lambda: tm.zeros(2, 3).t().view(6),
        lambda: tm.tensor([1, 2, 3]).mean(),
        lambda: tm.tensor([1, 2, 3]).var(),
        lambda: tm.tensor([1, 2, 3]).std(),
        lambda: tm.tensor([1, 2, 3]).norm(),
        lambda: tm.tensor([True]).abs(),
        lambda: tm.tensor([1]) // tm.tensor([0]),
        lambda: tm.tensor([1]) % tm.tensor([0]),
        lambda: tm.tensor([1.0]) - True,
        lambda: False - tm.tensor([1.0]),
        lambda: tm.tensor([1.0]).sub_(True),
        lambda: tm.tensor([1]).sub_(tm.tensor([True])),
        lambda: tm.tensor([1, 2]) ** -1,
    ],
)
def test_refused_as_pytorch_refuses(fn):
    with pytest.raises(RuntimeError):
        fn()


def test_negative_embedding_index_is_refused():
    with pytest.raises(IndexError):
        F.embedding(tm.tensor([-1]), tm.ones(3, 2))


def test_view_of_a_contiguous_or_compatible_tensor_still_works():
    x = tm.arange(6.0).reshape(2, 3)
    assert x.view(3, 2).tolist() == [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]
    assert x.t().view(3, 2).tolist() == [[0.0, 3.0], [1.0, 4.0], [2.0, 5.0]]


# ---------------------------------------------------------------- second derivatives, powers


@pytest.mark.parametrize(
    "fn, first",
    [
        (lambda x: x.relu(), [0.0, 0.0, 1.0, 1.0]),
        (lambda x: F.leaky_relu(x, 0.5), [0.5, 0.5, 1.0, 1.0]),
        (lambda x: F.hardtanh(x, -1.0, 1.5), [0.0, 1.0, 1.0, 0.0]),
        (lambda x: F.relu6(x), [0.0, 0.0, 1.0, 0.0]),
        (lambda x: x**1, [1.0, 1.0, 1.0, 1.0]),
    ],
)
def test_gradient_of_a_piecewise_linear_op_stays_differentiable(fn, first):
    # (PyTorch's backward of these reads x: with create_graph the gradient requires grad, and
    # its own gradient is 0, not missing)
    x = leaf([-2.0, -0.5, 0.5, 7.0])
    (g,) = tm.autograd.grad(fn(x).sum(), x, create_graph=True)
    np.testing.assert_array_equal(g.detach().numpy(), first)  # the slopes, by hand
    assert g.requires_grad
    g.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0] * 4)


def test_second_derivative_of_zero_to_the_x_is_nan_where_pytorch_has_it():
    # d/dx 0^x = 0 for x >= 0 (a where around 0^x log 0); its derivative is 0 * log 0 = NaN there
    values = np.array([-1.0, 0.0, 2.0])
    got = leaf(values)
    (g,) = tm.autograd.grad((0.0**got).sum(), got, create_graph=True)
    g.sum().backward()
    want = torch.tensor(values, requires_grad=True)
    (h,) = torch.autograd.grad((0.0**want).sum(), want, create_graph=True)
    h.sum().backward()
    np.testing.assert_array_equal(g.detach().numpy(), h.detach().numpy())
    np.testing.assert_array_equal(got.grad.numpy(), want.grad.numpy())  # [inf, nan, nan]


def test_x_to_the_power_false():
    # PyTorch's rule reads the bool exponent False as 0 x^-1: NaN at 0, -0 below
    x = leaf([0.0, -2.0, 3.0])
    y = x**False
    np.testing.assert_array_equal(y.detach().numpy(), [1.0, 1.0, 1.0])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [math.nan, -0.0, 0.0])
    assert math.copysign(1, x.grad.numpy()[1]) == -1


def test_integer_powers_truncate_as_pytorch():
    base, exponent = tm.tensor([2, -1, -1, 1, 0, 3]), tm.tensor([-1, -1, -2, -3, 2, 2])
    out = base**exponent  # 1/2 -> 0, (-1)^-1 = -1, (-1)^-2 = 1, 1^-3 = 1, 0^2, 3^2
    assert out.dtype == tm.int64 and out.tolist() == [0, -1, 1, 1, 0, 9]
    assert (tm.tensor([1, 2]) ** True).tolist() == [1, 2]
    assert (tm.tensor([1, 2]) ** False).tolist() == [1, 1]
    flags = tm.tensor([True, False])
    assert (flags**True).tolist() == [True, False] and (flags**False).tolist() == [True, True]
    assert (flags**True).dtype == tm.bool
    with pytest.raises(NotImplementedError):
        flags**flags


def test_quotient_gradients_cancel_as_pytorch_at_tiny_values():
    # d(a/b)/db = -g (a / b) / b, as PyTorch computes it: at a = b the two gradients of a / a
    # differ only by rounding, and the same rounding as PyTorch's
    values = np.array([-2.921039368713226e-143, 1e-200, 3.5])
    got = leaf(values)
    (got / got * tm.tensor([2.5, 1.2, 0.3], dtype=tm.float64)).sum().backward()
    want = torch.tensor(values, requires_grad=True)
    (want / want * torch.tensor([2.5, 1.2, 0.3], dtype=torch.float64)).sum().backward()
    np.testing.assert_array_equal(got.grad.numpy(), want.grad.numpy())


def test_number_over_tensor_is_the_reciprocal_times_the_number():
    # 0.1 / 7 rounds to ...287, (1 / 7) * 0.1 to ...285: PyTorch's value is the second
    got = (0.1 / tm.tensor([7.0], dtype=tm.float64)).item()
    assert got == (1 / 7.0) * 0.1 == 0.014285714285714285
    assert (5 / tm.tensor([3, 7])).dtype == tm.float32


def test_zero_gradients_stay_zero_under_an_infinite_upstream_gradient():
    # sqrt'(0) = inf reaches an op whose derivative is 0 there: 0, not 0 * inf = NaN
    x, y = leaf([0.0]), leaf([0.0])
    tm.where(tm.tensor([True]), x, y).sqrt().sum().backward()
    assert x.grad.item() == math.inf and y.grad.item() == 0.0
    x = leaf([0.0, 2.0])
    (x.sign() * 0.0).sqrt().sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0])
    x = leaf([0.0, 2.0])
    (x**0 - 1).sqrt().sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0])
    x = leaf([-0.0])  # clamp(max=x) at a tie: all of it to x (not inf + 0 * inf)
    x.clamp(max=x).sqrt().sum().backward()
    assert x.grad.item() == -math.inf


def test_clamp_of_a_bool_tensor():
    flags = tm.tensor([True, False])
    with pytest.raises(NotImplementedError):
        flags.clamp(max=True)
    out = flags.clamp(max=1)  # an int bound: int64, as PyTorch
    assert out.dtype == tm.int64 and out.tolist() == [1, 0]


def test_ops_after_a_0d_result_that_numpy_made_a_scalar():
    a = tm.tensor(-3).abs()
    assert a.add(a, alpha=2).item() == 9
    assert ((tm.tensor(1.0) == 1) * tm.tensor(3.0)).item() == 3.0
    assert (tm.tensor(-2).sign() - 1).item() == -2


def test_clamp_and_bounded_activations_pass_gradients_as_pytorch_at_nan_and_inf():
    # hardtanh's gradient is g except where x <= min or x >= max: g itself at a NaN input
    x = leaf([math.nan, 0.5, 3.0])
    F.hardtanh(x, -1.0, 1.5).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0, 0.0])
    x = leaf([math.nan, 7.0, 3.0])
    F.relu6(x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 0.0, 1.0])
    # clamp's clipped entries get 0 even where the gradient coming in is inf (sqrt'(0))
    x = leaf([-0.5, 2.0])
    x.clamp(min=0.0).sqrt().sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.5 / math.sqrt(2.0)])


def test_minimum_and_maximum_give_both_sides_the_gradient_at_nan():
    # PyTorch: g where neither side is the smaller (larger) one, halves at ties
    for fn in (tm.minimum, tm.maximum):
        a, b = leaf([1.5, 2.0, math.nan]), leaf([math.nan, 2.0, 1.0])
        fn(a, b).sum().backward()
        np.testing.assert_array_equal(a.grad.numpy(), [1.0, 0.5, 1.0])
        np.testing.assert_array_equal(b.grad.numpy(), [1.0, 0.5, 1.0])
    a, b = leaf([1.0, 3.0]), leaf([2.0, 2.0])
    tm.minimum(a, b).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [1.0, 0.0])
    np.testing.assert_array_equal(b.grad.numpy(), [0.0, 1.0])


# ---------------------------------------------------------------- elementwise edge cases

INF, NAN = math.inf, math.nan


def test_sign_of_bool_is_itself_and_sign_of_nan_is_zero():
    out = tm.tensor([True, False]).sign()
    assert out.dtype == tm.bool and out.tolist() == [True, False]
    np.testing.assert_array_equal(tm.tensor([NAN, -2.0, 0.0, 3.0]).sign().numpy(), [0, -1, 0, 1])


def test_hardswish_at_nan_and_infinities():
    # x (x + 3) / 6 inside (-3, 3), 0 at and below -3 (NaN at -inf), x from 3 up and at NaN;
    # the gradient (2x + 3) / 6 inside, 0 below, 1 from 3 up and at NaN
    values = [NAN, -INF, INF, -3.0, 3.0, 0.5, -4.0]
    x = leaf(values)
    y = F.hardswish(x)
    y.sum().backward()
    np.testing.assert_array_equal(y.detach().numpy(), [NAN, NAN, INF, 0.0, 3.0, 0.5 * 3.5 / 6, 0.0])
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 0.0, 1.0, 0.0, 1.0, 4 / 6, 0.0])


@pytest.mark.parametrize(
    "fn, expected",
    [
        (lambda x: tm.where(tm.tensor([True, False, True]), x, 5.0), [INF, 0.0, INF]),
        (lambda x: x.clamp(0.0, 1.0), [0.0, INF, 0.0]),
        (lambda x: x.clamp(min=tm.tensor([0.0, 0.0, 0.0]), max=tm.tensor(1.0)), [0.0, INF, 0.0]),
        (lambda x: F.hardtanh(x, 0.0, 1.0), [0.0, INF, 0.0]),
        (lambda x: F.relu6(x * 3.0), [0.0, 3 * INF, 0.0]),
    ],
)
def test_an_infinite_gradient_gives_zero_where_the_input_is_not_picked(fn, expected):
    # x = [-1, 0.5, 2]; d loss / d out = inf everywhere: the entries clipped (or not picked)
    # get 0, never 0 * inf = NaN, as PyTorch's
    x = leaf([-1.0, 0.5, 2.0])
    (fn(x) * tm.tensor([INF, INF, INF])).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), expected)


def test_relu_passes_the_gradient_at_nan():
    np.testing.assert_array_equal(grad_of(F.relu, [NAN, -1.0, 0.0, 2.0]), [1.0, 0.0, 0.0, 1.0])


@pytest.mark.parametrize(
    "fn, dtype, expected",
    [
        (lambda: tm.tensor([True, False]) ** True, tm.bool, [True, False]),
        (lambda: tm.tensor([True, False]) ** False, tm.bool, [True, True]),
        (lambda: tm.tensor([2, -1]) ** True, tm.int64, [2, -1]),
        (lambda: tm.tensor([2, -1]) ** 2.0, tm.float32, [4.0, 1.0]),
        (lambda: tm.tensor([True, False]) ** 0.0, tm.float32, [1.0, 1.0]),
        (lambda: tm.tensor([2, 4]) ** tm.tensor(0.5, dtype=tm.float64), tm.float64, [2**0.5, 2.0]),
        (lambda: tm.tensor([2.0, -1.5]) ** True, tm.float32, [2.0, -1.5]),
        # an integer power with a negative integer exponent: 1 for base 1, +-1 for base -1,
        # 0 for any other base, as PyTorch's
        (lambda: tm.tensor([1, -1, -1, 0, 3]) ** tm.tensor([-3, -3, -2, -1, -1]), tm.int64,
         [1, -1, 1, 0, 0]),
        (lambda: 2 ** tm.tensor([3, -1]), tm.int64, [8, 0]),
        (lambda: True ** tm.tensor([3, -1]), tm.int64, [1, 1]),
        (lambda: tm.tensor([True, False]) ** tm.tensor([2, -1]), tm.int64, [1, 0]),
    ],
)  # fmt: skip
def test_pow_dtypes_of_bool_and_integer_operands(fn, dtype, expected):
    out = fn()
    assert out.dtype == dtype
    assert out.tolist() == expected


@pytest.mark.parametrize(
    "fn, error",
    [
        (lambda: tm.tensor([True]) ** tm.tensor([True]), NotImplementedError),
        (lambda: True ** tm.tensor([False]), NotImplementedError),
        (lambda: tm.tensor([2]) ** -1, RuntimeError),
        (lambda: tm.tensor([True]) ** -1, RuntimeError),
    ],
)
def test_pow_refuses_what_pytorch_refuses(fn, error):
    with pytest.raises(error):
        fn()


def test_pow_false_has_the_general_rule_derivative():
    # PyTorch differentiates x ** False by the general rule 0 * x ** -1: 0 where x is finite
    # and non-zero, NaN at 0 (and at NaN)
    np.testing.assert_array_equal(
        grad_of(lambda x: x**False, [2.0, 0.0, -INF, NAN]), [0.0, NAN, 0.0, NAN]
    )
    np.testing.assert_array_equal(grad_of(lambda x: x**0.0, [2.0, 0.0]), [0.0, 0.0])


def test_backwards_pytorch_cannot_take_are_refused():
    x = leaf([1.0, -2.0])
    y = True**x  # PyTorch: an internal assert in the backward; ours: that of 1.0 ** x, 0
    np.testing.assert_array_equal(y.detach().numpy(), [1.0, 1.0])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0])
    x.grad = None
    y = 2 % x  # PyTorch: no derivative for a number % a tensor
    np.testing.assert_array_equal(y.detach().numpy(), [0.0, -0.0])
    with pytest.raises(RuntimeError, match="remainder"):
        y.sum().backward()
    with pytest.raises(RuntimeError, match="remainder"):
        tm.remainder(2, x).sum().backward()
    (x % 2).sum().backward()  # a tensor first: the gradient 1
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0])


@pytest.mark.parametrize(
    "shapes, grads, refused",
    [
        # (x, min, max): PyTorch's backward writes the masks for x and min into one of the
        # shape of x and min (for max: of x and max); a max that broadcasts it further fails
        (((1, 3), (1, 3), (2, 1)), (True, False, False), True),
        (((1, 3), (2, 1), (2, 1)), (True, False, False), False),
        (((1, 3), (2, 1), (1, 3)), (False, False, True), True),
        (((1, 3), (2, 1), (1, 3)), (True, True, False), False),
        (((2, 3), (1, 3), (2, 1)), (True, True, True), False),
    ],
)
def test_clamp_with_tensor_bounds_refuses_the_backward_pytorch_refuses(shapes, grads, refused):
    for lib in (tm, torch):  # the expectation above is PyTorch's too
        x, low, high = (
            lib.ones(s, dtype=lib.float64).requires_grad_(g)
            for s, g in zip(shapes, grads, strict=True)
        )
        out = x.clamp(min=low, max=high)
        assert tuple(out.shape) == (2, 3)
        if refused:
            with pytest.raises(RuntimeError, match="doesn't match the broadcast shape"):
                out.sum().backward()
        else:
            out.sum().backward()


def test_zero_dim_results_of_comparisons_and_rounding_mix_with_other_tensors():
    i = tm.tensor(-1)
    out = ~i + i  # ~(-1) = 0
    assert out.dtype == tm.int64 and out.item() == -1
    x = leaf(-0.0)
    y = x.reciprocal().div(False, rounding_mode="trunc")  # trunc(-inf / 0) = -inf
    assert y.item() == -INF
    assert (tm.tensor(2.0) == 2.0).logical_not().logical_or(tm.tensor([True])).tolist() == [True]


@pytest.mark.parametrize(
    "fn",
    [lambda x: F.relu6(x), lambda x: F.hardtanh(x, -0.5, 1.5), F.elu, lambda x: F.celu(x, 0.5)],
)
def test_clipping_and_elu_activations_pass_the_gradient_at_nan(fn):
    # PyTorch's rules test "x <= lower (or x >= upper): 0, else g", so NaN gets g
    np.testing.assert_array_equal(grad_of(fn, [NAN]), [1.0])


def test_celu_with_a_negative_alpha():
    # celu(x) = max(0, x) + min(0, alpha (exp(x / alpha) - 1)); alpha = -1 at x = -1.5:
    # -(e^1.5 - 1), with the derivative exp(x / alpha) = e^1.5
    x = leaf([-1.5, 2.0])
    y = F.celu(x, -1.0)
    y.sum().backward()
    np.testing.assert_allclose(y.detach().numpy(), [-(math.exp(1.5) - 1), 2.0], rtol=1e-14)
    np.testing.assert_allclose(x.grad.numpy(), [math.exp(1.5), 1.0], rtol=1e-14)


@pytest.mark.parametrize(
    "fn",
    [lambda: tm.tensor([6.0]) - False, lambda: True - tm.tensor([1.0]),
     lambda: tm.tensor([1, 2]).sub(True)],
)  # fmt: skip
def test_subtracting_a_python_bool_is_refused_as_pytorch_refuses(fn):
    with pytest.raises(RuntimeError, match="Subtraction"):
        fn()


# ---------------------------------------------------------------- reductions, shapes, in-place


def test_var_gradient_is_two_deviations_over_the_degrees_of_freedom_even_when_g_is_infinite():
    # d var / dx_i = 2 (x_i - mean) / (n - 1): with an infinite incoming gradient each entry
    # is inf times its deviation (PyTorch's rule), never inf - inf
    x = leaf([1.0, 2.0, 4.0])
    (x.var() * math.inf).backward()
    np.testing.assert_array_equal(x.grad.numpy(), [-math.inf, -math.inf, math.inf])
    x = leaf([1.0, 2.0, 4.0])
    x.var().backward()  # mean 7/3, n - 1 = 2
    np.testing.assert_allclose(x.grad.numpy(), [-4 / 3, -1 / 3, 5 / 3], rtol=1e-12)


def test_std_and_var_over_one_element_are_nan():
    # one element and Bessel's correction: 0 / 0, NaN as PyTorch (not 0)
    x = leaf([[2.0], [3.0]])
    s = x.std(-1)
    assert np.isnan(s.numpy()).all() and np.isnan(x.var(-1).numpy()).all()
    s.sum().backward()
    assert np.isnan(x.grad.numpy()).all()
    assert x.std(-1, correction=0).tolist() == [0.0, 0.0]


@pytest.mark.parametrize(
    "fn",
    [
        lambda t: t.amax(0),
        lambda t: t.amin(),
        lambda t: t.prod(),
        lambda t: t.all(),
        lambda t: t.any(),
        lambda t: t[0].abs(),
    ],
)
def test_integer_reductions_to_0d_combine_with_other_tensors(fn):
    # a 0-d result is a 0-d array, not a numpy scalar, so it broadcasts with any tensor
    t = tm.tensor([-2, 3, 1])
    out = fn(t)
    assert out.shape == () and (out + t).shape == (3,) and (t * out).shape == (3,)


def test_flip_gather_and_permute_of_a_0d_tensor():
    x = tm.tensor(3.0)
    assert x.flip(0).item() == 3.0 and x.flip(-1).item() == 3.0
    with pytest.raises(IndexError):
        x.flip(1)
    assert x.gather(0, tm.tensor(0)).item() == 3.0
    assert x.gather(-1, tm.tensor([0, 0])).tolist() == [3.0, 3.0]
    with pytest.raises(TypeError, match="permute"):
        x.permute()


@pytest.mark.parametrize("index", [[3], [-1]])
def test_gather_refuses_an_index_out_of_bounds(index):
    with pytest.raises(RuntimeError, match="out of bounds"):
        tm.tensor([1.0, 2.0, 3.0]).gather(0, tm.tensor(index))


def test_index_assignment_with_repeated_positions_gives_every_value_its_gradient():
    # c[[1, 0, 1]] = v writes v[1] at 0 and v[2] (the last) at 1; PyTorch's index_put hands
    # each v[k] the gradient at its position all the same: g[1], g[0], g[1]
    v = leaf([1.0, 2.0, 3.0])
    c = tm.zeros(3, dtype=tm.float64)
    c[tm.tensor([1, 0, 1])] = v
    assert c.tolist() == [2.0, 3.0, 0.0]
    (c * tm.tensor([1.0, 10.0, 100.0], dtype=tm.float64)).sum().backward()
    assert v.grad.tolist() == [10.0, 1.0, 10.0]


def test_index_assignment_drops_a_values_leading_ones():
    c = tm.tensor([3, 3, 3])
    c[c > 0] = tm.tensor([[2, 0, 2]])
    assert c.tolist() == [2, 0, 2]
    h = leaf([1.0, 1.0, 1.0]) * 1
    h[tm.tensor([0, 1])] = tm.tensor([[[2.0, 5.0]]], dtype=tm.float64)
    assert h.tolist() == [2.0, 5.0, 1.0]
    with pytest.raises(RuntimeError, match="shape mismatch"):
        h[tm.tensor([0, 1])] = tm.ones(2, 2, dtype=tm.float64)


@pytest.mark.parametrize("other", [True, tm.tensor([False, True])])
def test_sub_inplace_refuses_bools(other):
    with pytest.raises(RuntimeError, match="bool"):
        tm.tensor([1.0, 2.0]).sub_(other)


def test_changing_a_kept_0d_output_in_place_refuses_the_backward():
    # tanh keeps its output; a 0-d output too (numpy hands 0-d results back as scalars)
    x = tm.tensor(-1.5, dtype=tm.float64, requires_grad=True)
    t = x.tanh()
    with tm.no_grad():
        t += 1
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        t.backward()


def test_changing_the_input_of_tanh_in_place_is_harmless():
    # tanh's derivative is 1 - tanh^2, read from its output: its input may change (PyTorch)
    x = leaf([0.5, -1.0])
    t = x.tanh()
    with tm.no_grad():
        x.fill_(2.0)
    t.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 1 - np.tanh([0.5, -1.0]) ** 2, rtol=1e-12)


def test_changing_an_integer_factor_in_place_refuses_the_backward():
    # the product keeps its integer factor (cast to float) for the other's gradient
    w, k = leaf([1.0, 2.0]), tm.tensor([3, 4])
    out = w * k
    with tm.no_grad():
        k.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.sum().backward()


def test_copy_refuses_a_source_with_more_dims():
    # (1, 3) into (3,): the broadcast shape (1, 3) is not the destination's, as PyTorch refuses
    with pytest.raises(RuntimeError, match="broadcast shape"):
        tm.zeros(3).copy_(tm.ones(1, 3))
    assert tm.zeros(2, 3).copy_(tm.tensor([1.0, 2.0, 3.0])).tolist() == [[1.0, 2.0, 3.0]] * 2
    with pytest.raises(TypeError, match="src"):
        tm.zeros(3).copy_(None)  # not NaNs


def test_product_of_all_elements_with_two_zeros_has_zero_gradient_whatever_comes_in():
    # each x_i's derivative is the product of the others, which holds a zero: exactly 0, even
    # times an infinite incoming gradient (PyTorch returns zeros here)
    x = leaf([0.0, 0.0, 3.0])
    (x.prod() * math.inf).backward()
    assert x.grad.tolist() == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("value", [1.866070178816425, 0.1, -7.77])
def test_variance_of_equal_values_is_exactly_zero(value):
    # equal values deviate by exactly 0 from their mean (PyTorch's Welford sums), so std is 0
    # and its gradient 0 (sum / n alone misses the value by a rounding: std ~ 1e-16, gradient
    # ~ 1/std times that rounding)
    x = leaf(np.full((2, 6), value))
    s = x.std(-1)
    assert s.tolist() == [0.0, 0.0]
    s.sum().backward()
    assert x.grad.tolist() == [[0.0] * 6] * 2


# ---------------------------------------------------------------- NaN and infinite gradients


def test_abs_gradient_at_nan_is_zero():
    # PyTorch: g * sgn(x), and sgn(NaN) is 0
    assert grad_of(lambda x: x.abs(), [NAN, -2.0, 3.0]).tolist() == [0.0, -1.0, 1.0]


def test_hardswish_gradient_is_one_product_so_an_infinite_g_at_zero_stays_infinite():
    # d/dx x (x + 3) / 6 = (2x + 3) / 6 = 1/2 at 0: inf * 1/2 = inf, never inf * 0
    x = leaf([0.0, 1.5, -4.0, 4.0])
    (F.hardswish(x) * tm.tensor([INF, 1.0, 1.0, 1.0], dtype=tm.float64)).sum().backward()
    assert x.grad.tolist() == [INF, 1.5 / 3 + 0.5, 0.0, 1.0]


@pytest.mark.parametrize(
    "x, low, high, value, grads",
    [
        # min(max(x, low), high) with NaN propagating; the masks x <= high, x > high, ...
        (1.0, NAN, -1.0, NAN, (0.0, 0.0, 1.0)),
        (1.0, NAN, 2.0, NAN, (0.0, 0.0, 0.0)),
        (NAN, 0.0, 2.0, NAN, (0.0, 0.0, 0.0)),
        (1.0, None, NAN, NAN, (0.0, None, 0.0)),
        (1.0, NAN, None, NAN, (0.0, 0.0, None)),
    ],
)
def test_clamp_with_a_nan_tensor_bound_is_nan_and_its_gradients_follow_the_masks(
    x, low, high, value, grads
):
    ts = [None if v is None else leaf(v) for v in (x, low, high)]
    out = tm.clamp(*ts)
    out.backward()
    assert np.isnan(out.item()) and np.isnan(value)
    got = tuple(None if t is None else (0.0 if t.grad is None else t.grad.item()) for t in ts)
    assert got == grads


def test_writing_a_value_that_requires_grad_into_an_int_tensor_is_refused():
    i = tm.zeros(2, 3, dtype=tm.int64)
    with pytest.raises(RuntimeError, match="only floating point tensors can require gradients"):
        i[0] = leaf(1.0)
    i[0] = leaf(1.0).detach()
    assert i.tolist() == [[1, 1, 1], [0, 0, 0]]


def test_relu_gradient_is_zero_where_flat_even_when_the_incoming_gradient_is_infinite():
    # relu(0) = 0, log'(0) = inf: PyTorch's rule is a where, so 0 (not inf * 0 = NaN)
    for create_graph in (False, True):
        x = leaf([0.0, -1.0, 2.0])
        (g,) = tm.autograd.grad(x.relu().log().sum(), x, create_graph=create_graph)
        assert g.tolist() == [0.0, 0.0, 0.5]


def test_elu_double_backward_where_x_is_positive_and_the_incoming_gradient_infinite_is_nan():
    # PyTorch differentiates elu's backward with its masks as factors: inf * 0 = NaN there
    x = leaf([1e-200, -1.0])
    (g,) = tm.autograd.grad(F.elu(x).reciprocal().sum(), x, create_graph=True)
    (gg,) = tm.autograd.grad(g.sum(), x)
    assert math.isnan(gg[0].item())
    # at -1: d/dx [-(e^x - 1)^-2 e^x] by hand
    e = math.exp(-1.0)
    expected = 2 * e * e / (e - 1) ** 3 - e / (e - 1) ** 2
    assert gg[1].item() == pytest.approx(expected, rel=1e-12)


def test_bitwise_ops_on_integers_and_bools_and_refused_on_floats_as_pytorch():
    i, b = tm.tensor([6, -8]), tm.tensor([True, False])
    assert (i & 3).tolist() == [6 & 3, -8 & 3] and (i | b).tolist() == [7, -8]
    assert (b ^ True).tolist() == [False, True] and (b & 1).dtype == tm.int64
    assert (i << 2).tolist() == [24, -32] and (i >> 1).tolist() == [3, -4]
    assert (1 << tm.tensor([0, 3])).tolist() == [1, 8]
    assert (64 >> tm.tensor([1, 6])).tolist() == [32, 1]
    assert (i << 64).tolist() == [0, 0] and (i >> 70).tolist() == [0, -1]  # past the width
    for refused in (
        lambda: tm.ones(2) & tm.ones(2),
        lambda: i | 1.5,
        lambda: 1 ^ tm.ones(2),
        lambda: b << tm.ones(2),
        lambda: tm.ones(2) >> 1,
    ):
        with pytest.raises(NotImplementedError, match="float32|float"):
            refused()


def test_negating_a_bool_tensor_is_a_runtime_error_as_in_pytorch():
    with pytest.raises(RuntimeError, match="bool tensor.*logical_not"):
        -tm.tensor([True, False])
