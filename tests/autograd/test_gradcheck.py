"""gradcheck itself: it passes correct gradients and catches wrong ones, in full and fast mode."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
from tensors import T

import tinygrad_mlp as tm
from tinygrad_mlp import ops
from tinygrad_mlp.autograd.graph import apply


def leaf(values, dtype="float64") -> T:
    return T(np.asarray(values, dtype=float), dtype=dtype, requires_grad=True)


def _mul(xp, a, b):
    return a * b, (a, b)


def _mul_vjp_wrong_b(xp, g, saved, needs):
    # correct for a (d(ab)/da = b), but claims d(ab)/db = 2a
    a, b = saved
    return g * b, g * 2 * a


# Built locally and never registered: OPS stays as it is.
WRONG_MUL = ops.Op("wrong_mul", _mul, _mul_vjp_wrong_b, 2)


def _numbers(message: str) -> list[float]:
    return [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?", message)]


# ---------------------------------------------------------------- correct functions pass


@pytest.mark.parametrize("fast", [False, True], ids=["full", "fast"])
def test_passes_on_correct_functions(fast):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    assert tm.gradcheck(lambda x, y: (x @ y).tanh(), [leaf(a), leaf(b)], fast=fast)
    assert tm.gradcheck(lambda x: x.softmax(axis=0) * x, leaf(a), fast=fast)
    # several outputs, and an input that does not require grad
    c = T(rng.standard_normal((3, 4)), dtype="float64")
    assert tm.gradcheck(lambda x, k: (x * k, (x.exp() + k).sum()), [leaf(a), c], fast=fast)
    # an output cut from the graph whose value does not depend on the inputs
    assert tm.gradcheck(lambda x: (x * 2.0, x.argmax()), [leaf([1.0, 3.0, 2.0])], fast=fast)


def test_inputs_are_left_unchanged():
    x = leaf([[0.5, -1.5], [2.0, 3.0]])
    before = x.numpy().copy()
    tm.gradcheck(lambda t: (t * t).sum(), [x])
    tm.gradcheck(lambda t: (t * t).sum(), [x], fast=True)
    np.testing.assert_array_equal(x.numpy(), before)
    assert x.grad is None


def test_checks_non_contiguous_inputs():
    base = leaf(np.arange(6.0).reshape(2, 3))
    x = base.T.detach().requires_grad_()
    assert not x._data.flags.c_contiguous
    assert tm.gradcheck(lambda t: (t * t * t).sum(axis=0), [x])
    assert tm.gradcheck(lambda t: apply(WRONG_MUL, t, t), [x], raise_exception=False) is False


# ---------------------------------------------------------------- wrong gradients fail


def test_wrong_vjp_fails_and_names_output_input_and_both_numbers():
    a, b = leaf([2.0]), leaf([5.0])

    def fn(x, y):
        return x * 1.0, apply(WRONG_MUL, x, y)

    assert tm.gradcheck(fn, [a, b], raise_exception=False) is False
    with pytest.raises(tm.GradcheckError) as info:
        tm.gradcheck(fn, [a, b])
    message = str(info.value)
    assert "output 1" in message and "input 1" in message
    assert "numerical" in message and "analytic" in message
    # d(ab)/db = a = 2 numerically; the wrong rule says 2a = 4
    numbers = _numbers(message)
    assert any(abs(n - 2.0) < 1e-6 for n in numbers), message
    assert any(abs(n - 4.0) < 1e-6 for n in numbers), message
    assert isinstance(info.value, AssertionError)


def test_wrong_vjp_fails_in_fast_mode():
    rng = np.random.default_rng(3)
    a, b = leaf(rng.standard_normal((2, 3))), leaf(rng.standard_normal((2, 3)))
    assert (
        tm.gradcheck(lambda x, y: apply(WRONG_MUL, x, y), [a, b], fast=True, raise_exception=False)
        is False
    )
    with pytest.raises(tm.GradcheckError) as info:
        tm.gradcheck(lambda x, y: apply(WRONG_MUL, x, y), [a, b], fast=True)
    message = str(info.value)
    assert "output 0" in message and "input 1" in message
    assert "numerical" in message and "analytic" in message and len(_numbers(message)) >= 4
    # the correct rule for the first input passes on its own
    a2 = leaf(a.numpy())
    c = T(b.numpy(), dtype="float64")
    assert tm.gradcheck(lambda x: apply(WRONG_MUL, x, c), [a2], fast=True)


def test_wrong_vjp_caught_through_a_larger_graph():
    x = leaf([0.3, -0.7, 1.1])

    def fn(t):
        return apply(WRONG_MUL, t.tanh(), t.exp()).sum()

    assert tm.gradcheck(fn, [x], raise_exception=False) is False
    assert tm.gradcheck(fn, [x], fast=True, raise_exception=False) is False


def test_small_errors_beyond_the_tolerance_fail():
    def _scaled_vjp(xp, g, saved, needs):
        a, b = saved
        return g * b * 1.01, g * a * 1.01

    slightly_wrong = ops.Op("slightly_wrong_mul", _mul, _scaled_vjp, 2)
    a, b = leaf([1.5, -2.0]), leaf([0.5, 3.0])
    assert not tm.gradcheck(lambda x, y: apply(slightly_wrong, x, y), [a, b], raise_exception=False)
    assert tm.gradcheck(lambda x, y: apply(slightly_wrong, x, y), [a, b], rtol=0.05)


def test_a_graph_cut_by_detach_fails():
    x = leaf([1.0, 2.0])
    with pytest.raises(tm.GradcheckError, match="input 0"):
        tm.gradcheck(lambda t: T(t.numpy() * 2.0), [x])
    with pytest.raises(tm.GradcheckError):
        tm.gradcheck(lambda t: t.detach() * t, [x])


# ---------------------------------------------------------------- arguments


def test_warns_on_float32_inputs():
    x = T(np.array([0.5, 1.5], dtype=np.float32), requires_grad=True)
    with pytest.warns(UserWarning, match="float64"):
        tm.gradcheck(lambda t: t * 2.0, [x], raise_exception=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert tm.gradcheck(lambda t: t * 2.0, [leaf([0.5, 1.5])])


def test_needs_an_input_that_requires_grad():
    with pytest.raises(ValueError):
        tm.gradcheck(lambda t: t * 2.0, [T(np.ones(2))])


def test_outputs_must_be_tensors():
    with pytest.raises(TypeError):
        tm.gradcheck(lambda t: t.numpy(), [leaf([1.0])])


def test_registry_is_untouched():
    assert "wrong_mul" not in ops.OPS and "slightly_wrong_mul" not in ops.OPS
