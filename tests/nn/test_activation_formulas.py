"""logsigmoid, selu, celu, hardsigmoid, hardswish and cosine_similarity (functions and modules),
Tensor.round, is_contiguous, tm.isclose and tm.is_inference_mode_enabled: values against
formulas written out in numpy, gradients against central differences in float64."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tinygrad_mlp as tm
import tinygrad_mlp.nn.functional as F
from tinygrad_mlp import nn

F64 = np.float64
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def t64(array, requires_grad=True):
    """A float64 tensor that gradcheck perturbs."""
    return tm.tensor(np.asarray(array, dtype=F64), requires_grad=requires_grad)


def _away_from_kinks(shape, seed):
    """Draws in (-5, 5) kept 0.1 away from the kinks at -3, 0 and 3."""
    z = np.random.default_rng(seed).uniform(-5, 5, shape)
    for kink in (-3.0, 0.0, 3.0):
        near = np.abs(z - kink) < 0.1
        z[near] = kink + 0.2 * np.sign(z[near] - kink + 1e-12)
    return z


def _grad(fn, values):
    x = t64(values)
    fn(x).sum().backward()
    return x.grad.numpy()


# ---------------------------------------------------------------- activations

Z = np.array([-40.0, -5.0, -3.0, -1.5, -1e-3, 0.0, 1e-3, 0.7, 3.0, 4.0, 40.0])


def _np_logsigmoid(z):
    return -np.log1p(np.exp(-np.abs(z))) + np.minimum(z, 0)


def _np_celu(z, alpha):
    return np.maximum(z, 0) + np.minimum(0, alpha * (np.exp(np.minimum(z, 0) / alpha) - 1))


def _np_hardsigmoid(z):
    return np.clip(z + 3, 0, 6) / 6


FORMULAS = {
    "logsigmoid": (F.logsigmoid, _np_logsigmoid),
    "selu": (
        F.selu,
        lambda z: SELU_SCALE * np.where(z > 0, z, SELU_ALPHA * (np.exp(np.minimum(z, 0)) - 1)),
    ),
    "celu": (F.celu, lambda z: _np_celu(z, 1.0)),
    "celu_alpha": (lambda x: F.celu(x, alpha=0.4), lambda z: _np_celu(z, 0.4)),
    "hardsigmoid": (F.hardsigmoid, _np_hardsigmoid),
    "hardswish": (F.hardswish, lambda z: z * _np_hardsigmoid(z)),
}


@pytest.mark.parametrize("name", list(FORMULAS))
def test_activation_values_match_numpy(name):
    fn, formula = FORMULAS[name]
    np.testing.assert_allclose(fn(t64(Z, False)).numpy(), formula(Z), rtol=1e-12, atol=1e-15)
    out32 = fn(tm.tensor(Z.astype(np.float32)))
    assert out32.dtype == tm.float32
    np.testing.assert_allclose(out32.numpy(), formula(Z), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("channels_last", [False, True])
def test_relu_of_a_large_array_with_special_values(dtype, channels_last):
    # the gradient on the host by a bit mask, over both memory layouts; NaN passes through
    # with its gradient, inf and -0.0 as numbers, an infinite or NaN g gives 0 below the kink,
    # as a where would
    rng = np.random.default_rng(3)
    z = rng.standard_normal((4, 8, 48, 48)).astype(dtype)
    g = rng.standard_normal(z.shape).astype(dtype)
    z.reshape(-1)[:6] = [np.nan, np.inf, -np.inf, -0.0, 0.0, -1.0]
    g.reshape(-1)[:8] = [1.0, 2.0, np.inf, np.nan, -np.inf, np.inf, 5.0, np.nan]
    x = tm.tensor(z, requires_grad=True)
    y = x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2) if channels_last else x
    out = F.relu(y)
    want = np.where(z != z, z, np.where(z > 0, z, 0)).astype(dtype)
    np.testing.assert_array_equal(out.numpy(), want)
    assert not np.signbit(out.numpy()[~np.isnan(want)]).any()  # 0, never -0.0
    out.backward(tm.tensor(g))
    want_grad = np.where((z > 0) | (z != z), g, 0).astype(dtype)
    np.testing.assert_array_equal(x.grad.numpy(), want_grad)
    assert not np.signbit(x.grad.numpy()[want_grad == 0]).any()


def test_logsigmoid_is_finite_for_large_inputs():
    x = tm.tensor([-1000.0, -100.0, 100.0, 1000.0], dtype=tm.float64, requires_grad=True)
    out = F.logsigmoid(x)
    np.testing.assert_allclose(out.numpy(), [-1000.0, -100.0, -math.exp(-100.0), 0.0], rtol=1e-12)
    out.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 1.0, math.exp(-100.0), 0.0], rtol=1e-12)


@pytest.mark.parametrize("name", list(FORMULAS))
def test_activation_gradcheck(name):
    fn = FORMULAS[name][0]
    assert tm.gradcheck(fn, [t64(_away_from_kinks((3, 5), 0))])


@pytest.mark.parametrize("name", ["logsigmoid", "selu", "celu_alpha", "hardswish"])
def test_activation_gradgradcheck(name):
    fn = FORMULAS[name][0]
    assert tm.gradgradcheck(fn, [t64(_away_from_kinks((2, 4), 1))])


def test_activation_gradients_at_the_kinks_are_pytorchs():
    # PyTorch's one-sided choices: hardsigmoid' = 1/6 strictly inside (-3, 3); hardswish' is 0
    # at -3 and 1 at 3; celu'(0) = 1; selu'(0) = scale * alpha
    edges = [-3.0, 0.0, 3.0]
    np.testing.assert_allclose(_grad(F.hardsigmoid, edges), [0.0, 1 / 6, 0.0], rtol=1e-15)
    np.testing.assert_allclose(_grad(F.hardswish, edges), [0.0, 0.5, 1.0], rtol=1e-15)
    np.testing.assert_allclose(_grad(F.celu, [0.0]), [1.0], rtol=1e-15)
    np.testing.assert_allclose(_grad(F.selu, [0.0]), [SELU_SCALE * SELU_ALPHA], rtol=1e-15)


def test_activation_gradients_match_the_derivatives_written_out():
    z = _away_from_kinks((20,), 2)
    s = 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(_grad(F.logsigmoid, z), 1 - s, rtol=1e-12)
    np.testing.assert_allclose(
        _grad(F.selu, z), SELU_SCALE * np.where(z > 0, 1, SELU_ALPHA * np.exp(z)), rtol=1e-12
    )
    np.testing.assert_allclose(
        _grad(lambda x: F.celu(x, 0.4), z), np.where(z > 0, 1, np.exp(z / 0.4)), rtol=1e-12
    )
    inside = (z > -3) & (z < 3)
    np.testing.assert_allclose(_grad(F.hardsigmoid, z), inside / 6, rtol=1e-12)
    hardswish = np.where(z <= -3, 0, np.where(z >= 3, 1, z / 3 + 0.5))
    np.testing.assert_allclose(_grad(F.hardswish, z), hardswish, rtol=1e-12)


def test_inplace_writes_into_the_input():
    for fn in (F.selu, F.celu, F.hardsigmoid, F.hardswish):
        x = t64(Z, False)
        want = fn(x).numpy()
        out = fn(x, inplace=True)
        assert out is x  # as PyTorch: the input itself, changed
        np.testing.assert_array_equal(x.numpy(), want)


def test_celu_refuses_alpha_zero():
    with pytest.raises(RuntimeError, match="alpha cannot be 0"):
        F.celu(t64(Z, False), alpha=0.0)


MODULES = [
    (nn.LogSigmoid(), F.logsigmoid, "LogSigmoid()"),
    (nn.SELU(), F.selu, "SELU()"),
    (nn.SELU(inplace=True), F.selu, "SELU(inplace=True)"),
    (nn.CELU(), F.celu, "CELU(alpha=1.0)"),
    (nn.CELU(0.4, inplace=True), lambda x: F.celu(x, 0.4), "CELU(alpha=0.4, inplace=True)"),
    (nn.Hardsigmoid(), F.hardsigmoid, "Hardsigmoid()"),
    (nn.Hardswish(inplace=True), F.hardswish, "Hardswish()"),
]


@pytest.mark.parametrize(("module", "fn", "text"), MODULES, ids=lambda v: str(v)[:20])
def test_activation_modules(module, fn, text):
    x = t64(_away_from_kinks((3, 4), 3))
    # an in-place module writes into its input: on a leaf that requires grad PyTorch refuses
    # that, so it runs on a copy inside the graph
    run = (lambda t: module(t.clone())) if getattr(module, "inplace", False) else module
    np.testing.assert_array_equal(run(x).numpy(), fn(x).numpy())
    assert repr(module) == text
    assert not list(module.parameters())
    assert tm.gradcheck(run, [x])
    model = nn.Sequential(nn.Linear(4, 3, dtype=F64), module, nn.Linear(3, 2, dtype=F64))
    assert model(x).shape == (3, 2)


def test_new_names_are_exported():
    for name in ("LogSigmoid", "SELU", "CELU", "Hardsigmoid", "Hardswish", "CosineSimilarity"):
        assert name in nn.__all__ and name in nn.modules.__all__ and getattr(nn, name).__doc__
    for name in ("logsigmoid", "selu", "celu", "hardsigmoid", "hardswish", "cosine_similarity"):
        assert name in F.__all__ and getattr(F, name).__doc__
    for name in ("isclose", "round", "is_inference_mode_enabled"):
        assert name in tm.__all__ and getattr(tm, name).__doc__
    assert tm.autograd.is_inference_mode_enabled is tm.is_inference_mode_enabled
    assert tm.Tensor.round.__doc__ and tm.Tensor.is_contiguous.__doc__


# ---------------------------------------------------------------- cosine_similarity


def _np_cosine(a, b, dim=1, eps=1e-8):
    a, b = np.broadcast_arrays(a, b)
    na = np.maximum(np.sqrt((a * a).sum(dim, keepdims=True)), eps)
    nb = np.maximum(np.sqrt((b * b).sum(dim, keepdims=True)), eps)
    return ((a / na) * (b / nb)).sum(dim)


COSINE_SHAPES = [((4, 3), (4, 3), 1), ((2, 1, 3), (4, 3), -1), ((3,), (5, 3), -1),
                 ((3, 4, 2), (3, 4, 2), 0), ((5,), (5,), 0), ((4, 1), (1, 3), 0)]  # fmt: skip


@pytest.mark.parametrize(("s1", "s2", "dim"), COSINE_SHAPES)
def test_cosine_similarity_values_and_gradients(s1, s2, dim):
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal(s1), rng.standard_normal(s2)
    out = F.cosine_similarity(t64(a, False), t64(b, False), dim=dim)
    expected = _np_cosine(a, b, dim)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-15)
    assert tm.gradcheck(lambda x, y: F.cosine_similarity(x, y, dim), [t64(a), t64(b)])
    module = nn.CosineSimilarity(dim=dim)
    np.testing.assert_array_equal(module(t64(a), t64(b)).numpy(), out.numpy())


def test_cosine_similarity_default_dim_and_module_repr():
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    cos = (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1))
    np.testing.assert_allclose(F.cosine_similarity(t64(a), t64(b)).numpy(), cos, rtol=1e-12)
    np.testing.assert_allclose(nn.CosineSimilarity()(t64(a), t64(b)).numpy(), cos, rtol=1e-12)
    assert repr(nn.CosineSimilarity(0, 1e-6)) == "CosineSimilarity()"
    assert tm.gradgradcheck(lambda x, y: F.cosine_similarity(x, y), [t64(a), t64(b)])


def test_cosine_similarity_of_zero_vectors_is_zero_with_finite_gradients():
    rng = np.random.default_rng(6)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    a[0] = 0.0
    b[1] = 0.0
    a[2] = b[2] = 0.0
    x1, x2 = t64(a), t64(b)
    out = F.cosine_similarity(x1, x2)
    np.testing.assert_array_equal(out.numpy(), [0.0, 0.0, 0.0])
    g = np.array([1.0, -2.0, 0.5])
    out.backward(tm.tensor(g))
    assert np.isfinite(x1.grad.numpy()).all() and np.isfinite(x2.grad.numpy()).all()
    # d/dx1 sum(x1/max(|x1|, eps) * u2) at x1 = 0 is u2 / eps (the norm's gradient is 0 there),
    # and nothing reaches x2 when x1 = 0; both are 0 when both vectors are 0
    eps = 1e-8
    unit_b0 = b[0] / np.linalg.norm(b[0])
    unit_a1 = a[1] / np.linalg.norm(a[1])
    np.testing.assert_allclose(x1.grad.numpy()[0], g[0] * unit_b0 / eps, rtol=1e-12)
    np.testing.assert_allclose(x2.grad.numpy()[1], g[1] * unit_a1 / eps, rtol=1e-12)
    np.testing.assert_array_equal(x2.grad.numpy()[0], 0.0)
    np.testing.assert_array_equal(x1.grad.numpy()[1], 0.0)
    np.testing.assert_array_equal(x1.grad.numpy()[2], 0.0)
    np.testing.assert_array_equal(x2.grad.numpy()[2], 0.0)


def test_cosine_similarity_floors_each_norm_at_eps():
    # a vector shorter than eps counts as eps long: the cosine shrinks by |x1| / eps
    a = np.full((1, 3), 1e-10 / math.sqrt(3))
    b = np.array([[1e3, 0.0, 0.0]])
    out = F.cosine_similarity(t64(a, False), t64(b, False))
    np.testing.assert_allclose(out.numpy(), [(1 / math.sqrt(3)) * 1e-10 / 1e-8], rtol=1e-12)


def test_cosine_similarity_refusals():
    with pytest.raises(IndexError):
        F.cosine_similarity(t64(np.ones(3)), t64(np.ones(3)))  # dim=1 of a 1-D pair
    with pytest.raises(RuntimeError):
        F.cosine_similarity(t64(np.ones((2, 3))), t64(np.ones((4, 3))))
    with pytest.raises(RuntimeError, match="floating point"):
        F.cosine_similarity(tm.tensor([1, 2]), tm.tensor([2, 3]), dim=0)


# ---------------------------------------------------------------- round and contiguity


def test_round_values_halves_to_even():
    x = tm.tensor([0.5, 1.5, 2.5, -0.5, -1.5, 0.49, -2.51], dtype=tm.float64)
    np.testing.assert_array_equal(x.round().numpy(), [0.0, 2.0, 2.0, -0.0, -2.0, 0.0, -3.0])
    y = tm.tensor([1234.5678, 0.125, -15.0, 2.675], dtype=tm.float64)
    # scaled by 10**decimals, rounded and scaled back, as PyTorch: 2.675 * 100 is 267.5, so
    # 2.68 (Python's round(2.675, 2), exact in decimal, gives 2.67)
    np.testing.assert_allclose(y.round(decimals=2).numpy(), [1234.57, 0.12, -15.0, 2.68])
    np.testing.assert_array_equal(y.round(decimals=-1).numpy(), [1230.0, 0.0, -20.0, 0.0])
    np.testing.assert_array_equal(tm.round(y, decimals=-2).numpy(), [1200.0, 0.0, -0.0, 0.0])
    special = tm.tensor([np.inf, -np.inf, np.nan], requires_grad=True).round()
    np.testing.assert_array_equal(special.numpy(), [np.inf, -np.inf, np.nan])
    assert tm.round(tm.tensor([1.4, 2.6])).dtype == tm.float32
    ints = tm.tensor([1, -25])
    assert ints.round().dtype == tm.int64 and ints.round().tolist() == [1, -25]
    with pytest.raises(NotImplementedError):
        ints.round(decimals=1)


def test_round_has_a_zero_gradient():
    x = t64([[0.3, 1.7], [-2.5, 4.0]])
    out = x.round(decimals=1)
    assert out.requires_grad and out.grad_fn is not None
    (out * t64([[1.0, 2.0], [3.0, 4.0]], False)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros((2, 2)))
    assert tm.gradcheck(lambda t: t.round() + t * 2, [t64([0.3, 1.2, -0.8])])
    with tm.no_grad():
        assert not x.round().requires_grad
    assert not t64([0.5], False).round().requires_grad


def test_is_contiguous_and_contiguous():
    x = t64(np.arange(12.0).reshape(3, 4))
    assert x.is_contiguous() and x[1].is_contiguous() and x[1:].is_contiguous()
    assert tm.tensor(3.0).is_contiguous()
    for view in (x.T, x[:, 0], x[:, ::2], x.permute(1, 0)):
        assert not view.is_contiguous()
        c = view.contiguous()
        assert c.is_contiguous() and c.shape == view.shape
        np.testing.assert_array_equal(c.numpy(), view.numpy())
    assert x.contiguous() is x
    weights = t64(np.arange(12.0).reshape(4, 3), False)
    (x.T.contiguous() * weights).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), weights.numpy().T)


# ---------------------------------------------------------------- isclose


def test_isclose_values_against_the_formula():
    rng = np.random.default_rng(7)
    a = rng.standard_normal((4, 5))
    b = a + rng.choice([0.0, 1e-9, 1e-6, 1e-4, 1e-2], size=(4, 5)) * rng.choice([-1, 1], (4, 5))
    out = tm.isclose(t64(a, False), t64(b, False))
    assert out.dtype == tm.bool and out.shape == (4, 5)
    np.testing.assert_array_equal(out.numpy(), np.abs(a - b) <= 1e-8 + 1e-5 * np.abs(b))
    loose = tm.isclose(t64(a, False), t64(b, False), rtol=0.0, atol=1e-3)
    np.testing.assert_array_equal(loose.numpy(), np.abs(a - b) <= 1e-3)
    np.testing.assert_array_equal(t64(a, False).isclose(t64(b, False)).numpy(), out.numpy())


def test_isclose_special_values_broadcasting_and_refusals():
    nan, inf = float("nan"), float("inf")
    a = tm.tensor([1.0, nan, inf, -inf, inf])
    b = tm.tensor([1.0, nan, inf, -inf, -inf])
    assert tm.isclose(a, b).tolist() == [True, False, True, True, False]
    assert tm.isclose(a, b, equal_nan=True).tolist() == [True, True, True, True, False]
    grid = tm.isclose(tm.tensor([[1.0, 2.0]]), tm.tensor([[1.0], [2.0]]))
    assert grid.tolist() == [[True, False], [False, True]]
    assert tm.isclose(tm.tensor([1, 2]), tm.tensor([1, 3])).tolist() == [True, False]
    with pytest.raises(RuntimeError, match="rtol"):
        tm.isclose(a, b, rtol=-1.0)
    with pytest.raises(RuntimeError, match="atol"):
        tm.isclose(a, b, atol=-1.0)


# ---------------------------------------------------------------- inference mode


def test_is_inference_mode_enabled_tracks_the_blocks():
    assert not tm.is_inference_mode_enabled()
    with tm.inference_mode():
        assert tm.is_inference_mode_enabled() and not tm.is_grad_enabled()
        with tm.inference_mode(False):
            assert not tm.is_inference_mode_enabled() and tm.is_grad_enabled()
        with tm.no_grad():
            assert tm.is_inference_mode_enabled()
        assert tm.is_inference_mode_enabled()
    assert not tm.is_inference_mode_enabled() and tm.is_grad_enabled()
    with tm.no_grad():
        assert not tm.is_inference_mode_enabled()


def test_is_inference_mode_enabled_in_decorators_and_after_errors():
    @tm.inference_mode
    def bare():
        return tm.is_inference_mode_enabled()

    @tm.inference_mode()
    def called():
        return tm.is_inference_mode_enabled()

    @tm.inference_mode(False)
    def off():
        return tm.is_inference_mode_enabled()

    assert bare() and called()
    with tm.inference_mode():
        assert not off()
    assert not tm.is_inference_mode_enabled()
    with pytest.raises(ValueError):
        with tm.inference_mode():
            raise ValueError
    assert not tm.is_inference_mode_enabled() and tm.is_grad_enabled()
