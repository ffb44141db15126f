"""tinygrad_mlp.numpy: every function's value against numpy and its gradient against differences.

The cases are parametrised over ``tinygrad_mlp.numpy.DIFFERENTIABLE`` (plus ``linalg.norm``): a
function added to the namespace without a case here fails ``test_value_and_gradient``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tensors import T

import tinygrad_mlp as tm
import tinygrad_mlp.numpy as tnp
from tinygrad_mlp.testing import strategies as tms


@dataclass
class Case:
    """Inputs as (shape, domain) pairs; ``call(f, *inputs)`` applies the function ``f``."""

    inputs: tuple
    call: Callable = staticmethod(lambda f, *xs: f(*xs))
    label: str = ""


def _c(*inputs, call=None, label=""):
    return Case(inputs, call or (lambda f, *xs: f(*xs)), label)


R, P, N, U, D = "real", "positive", "nonzero", "unit", "distinct"
MASK = numpy.array([[True, False, True, True], [False, False, True, False], [True] * 4])
LOW = numpy.array([-0.5, -1.0, 0.0, -2.0])


def _elementwise_binary(b_domain=R):
    return [
        _c(((3, 4), R), ((4,), b_domain)),
        _c(((2, 1), R), ((1, 3), b_domain)),
        _c(((3,), R), call=lambda f, a: f(a, 2.5), label="number right"),
        _c(((3,), b_domain), call=lambda f, b: f(numpy.array([1.5, -2.0, 0.5]), b), label="array"),
    ]


def _unary(domain=R):
    return [_c(((3, 4), domain)), _c(((), domain), label="0-d")]


def _pair(f, x):
    return f(x[0], x[1])


def _reductions(domain=R):
    return [
        _c(((3, 4, 2), domain)),
        _c(((3, 4), domain), call=lambda f, x: f(x, axis=0)),
        _c(((3, 4), domain), call=lambda f, x: f(x, axis=-1, keepdims=True)),
        _c(((2, 3, 2), domain), call=lambda f, x: f(x, axis=(0, 2))),
        _c(((4,), domain), call=lambda f, x: f(x, axis=None, keepdims=True)),
    ]


CASES: dict[str, list[Case]] = {
    "add": _elementwise_binary(),
    "subtract": _elementwise_binary(),
    "multiply": _elementwise_binary(),
    "divide": _elementwise_binary(P),
    "true_divide": _elementwise_binary(P)[:2],
    "power": [
        _c(((3, 4), P), call=lambda f, x: f(x, 2.5)),
        _c(((3, 4), R), call=lambda f, x: f(x, 3)),
        _c(((3, 4), P), ((4,), R)),
        _c(((3,), R), call=lambda f, x: f(2.0, x), label="number base"),
    ],
    "negative": _unary(),
    "exp": _unary(),
    "log": _unary(P),
    "log1p": _unary(P),
    "expm1": _unary(),
    "sqrt": _unary(P),
    "square": _unary(),
    "abs": _unary(N),
    "absolute": _unary(N),
    "sign": _unary(N),
    "tanh": _unary(),
    "maximum": [
        _c(((3, 4), N), call=lambda f, x: f(x, 0), label="relu"),
        _c(((3, 4), N), call=lambda f, x: f(0.0, x), label="number first"),
        _c(((2, 3, 4), D), call=_pair, label="two tensors"),
    ],
    "minimum": [
        _c(((3, 4), N), call=lambda f, x: f(x, 0)),
        _c(((2, 3, 4), D), call=_pair, label="two tensors"),
    ],
    "clip": [
        _c(((3, 4), D), call=lambda f, x: f(x, -1.05, 1.05)),
        _c(((3, 4), D), call=lambda f, x: f(x, None, 0.55), label="upper only"),
        _c(((3, 4), D), call=lambda f, x: f(x, LOW + 0.05, 1.55), label="array bound"),
    ],
    "where": [
        _c(((3, 4), R), ((3, 4), R), call=lambda f, a, b: f(MASK, a, b)),
        _c(((3, 4), R), call=lambda f, a: f(MASK, a, 0.0), label="number side"),
        _c(((4,), R), call=lambda f, a: f(MASK, numpy.ones((3, 4)), a), label="array side"),
    ],
    "dot": [
        _c(((3, 4), R), ((4, 2), R)),
        _c(((4,), R), ((4,), R), label="inner"),
        _c(((3, 4), R), ((4,), R)),
        _c(((4,), R), ((4, 3), R)),
        _c(((2, 3, 4), R), ((4, 2), R), label="N-D by 2-D"),
        _c(((3,), R), call=lambda f, x: f(2.0, x), label="scalar"),
    ],
    "matmul": [
        _c(((3, 4), R), ((4, 2), R)),
        _c(((2, 3, 4), R), ((2, 4, 5), R), label="batched"),
        _c(((2, 3, 4), R), ((4,), R)),
        _c(((4,), R), ((4,), R)),
        _c(((3, 4), R), call=lambda f, a: f(a, numpy.ones((4, 2))), label="array"),
    ],
    "outer": [_c(((3,), R), ((4,), R)), _c(((2, 2), R), ((3,), R), label="flattened")],
    "einsum": [
        _c(((3, 4), R), ((4, 2), R), call=lambda f, a, b: f("ij,jk->ik", a, b)),
        _c(((3, 4), R), call=lambda f, a: f("ij->ji", a)),
        _c(((4,), R), ((4,), R), call=lambda f, a, b: f("i,i->", a, b)),
        _c(((3, 4), R), ((3, 4), R), call=lambda f, a, b: f("ij,ij->i", a, b)),
        _c(((2, 3, 4), R), ((2, 4, 5), R), call=lambda f, a, b: f("bij,bjk->bik", a, b)),
        _c(((3, 4), R), call=lambda f, a: f("ij->", a)),
        _c(((3, 4), R), ((4,), R), call=lambda f, a, b: f("ij,j->i", a, b)),
        _c(((3, 4), R), ((4, 2), R), call=lambda f, a, b: f("ij,jk", a, b), label="implicit"),
        _c(((3,), R), ((4,), R), call=lambda f, a, b: f("i,j->ij", a, b)),
        _c(
            ((2, 3), R),
            ((3, 4), R),
            ((4,), R),
            call=lambda f, a, b, c: f("ij,jk,k->i", a, b, c),
            label="three",
        ),
    ],
    "sum": _reductions(),
    "mean": _reductions(),
    "max": _reductions(D),
    "min": _reductions(D),
    "amax": _reductions(D)[:2],
    "amin": _reductions(D)[:2],
    "prod": _reductions(N) + [_c(((3, 5), N), call=lambda f, x: f(x, axis=1), label="odd")],
    "reshape": [
        _c(((3, 4), R), call=lambda f, x: f(x, (2, 6))),
        _c(((3, 4), R), call=lambda f, x: f(x, -1)),
    ],
    "transpose": [
        _c(((2, 3, 4), R)),
        _c(((2, 3, 4), R), call=lambda f, x: f(x, (1, 0, 2))),
    ],
    "squeeze": [
        _c(((1, 3, 1), R)),
        _c(((1, 3, 1), R), call=lambda f, x: f(x, axis=0)),
        _c(((1, 3, 1), R), call=lambda f, x: f(x, axis=(0, -1))),
    ],
    "expand_dims": [
        _c(((3, 4), R), call=lambda f, x: f(x, 0)),
        _c(((3, 4), R), call=lambda f, x: f(x, -1)),
        _c(((3, 4), R), call=lambda f, x: f(x, (0, 2))),
    ],
    "concatenate": [
        _c(((2, 3), R), ((4, 3), R), call=lambda f, a, b: f([a, b])),
        _c(((2, 3), R), ((2, 1), R), call=lambda f, a, b: f((a, b), axis=1)),
        _c(((2, 3), R), ((3,), R), call=lambda f, a, b: f([a, b], axis=None)),
        _c(((2,), R), call=lambda f, a: f([a, numpy.ones(3), a]), label="array"),
        _c(((2, 2, 3), R), ((2, 1, 3), R), call=lambda f, a, b: f([a, b], axis=-2)),
    ],
    "stack": [
        _c(((2, 3), R), ((2, 3), R), call=lambda f, a, b: f([a, b])),
        _c(((2, 3), R), ((2, 3), R), call=lambda f, a, b: f([a, b], axis=1)),
        _c(((2, 3), R), ((2, 3), R), call=lambda f, a, b: f([a, b, a], axis=-1)),
    ],
    "linalg.norm": [
        _c(((4,), N)),
        _c(((3, 4), N), label="frobenius"),
        _c(((3, 4), N), call=lambda f, x: f(x, axis=1)),
        _c(((3, 4), N), call=lambda f, x: f(x, axis=0, keepdims=True)),
        _c(((4,), N), call=lambda f, x: f(x, ord=1)),
        _c(((4,), D), call=lambda f, x: f(x, ord=numpy.inf)),
    ],
}

FUNCTIONS = (*tnp.DIFFERENTIABLE, "linalg.norm")
PARAMS = [
    pytest.param(name, i, id=f"{name}-{i}{'-' + case.label if case.label else ''}")
    for name in FUNCTIONS
    for i, case in enumerate(CASES.get(name, [None]) or [None])
    if case is not None
] + [pytest.param(name, None, id=f"{name}-missing") for name in FUNCTIONS if name not in CASES]


def _resolve(module, dotted: str):
    return functools.reduce(getattr, dotted.split("."), module)


def _distinct(shape):
    """Values at least 0.3 apart and at least 0.05 from 0, in a drawn order."""
    n = int(numpy.prod(shape))

    def build(args):
        order, jitter = args
        values = (numpy.asarray(order, dtype=float) - n / 2 + 0.25) * 0.5 + jitter
        return values.reshape(shape)

    jitter = tms.arrays((n,), low=-0.1, high=0.1) if n else st.just(numpy.zeros(0))
    return st.tuples(st.permutations(range(n)), jitter).map(build)


def _input(shape, domain):
    if domain == D:
        return _distinct(shape)
    elements = {
        R: tms.floats(-2.0, 2.0),
        P: tms.positive(),
        N: tms.floats(-2.0, 2.0, away_from=(0.0,), margin=0.2),
        U: tms.unit_interval(),
    }[domain]
    return tms.arrays(shape, elements=elements)


def _finite_difference(fn, arrays, eps=1e-6):
    grads = []
    for x in arrays:
        g = numpy.zeros_like(x)
        for j in range(x.size):
            old = x.flat[j]
            x.flat[j] = old + eps
            up = fn(*arrays)
            x.flat[j] = old - eps
            down = fn(*arrays)
            x.flat[j] = old
            g.flat[j] = (up - down) / (2 * eps)
        grads.append(g)
    return grads


@pytest.mark.parametrize("name, index", PARAMS)
@settings(max_examples=6)
@given(data=st.data())
def test_value_and_gradient(name, index, data):
    assert index is not None, f"tinygrad_mlp.numpy.{name} has no case in tests/ops/test_numpy.py"
    case = CASES[name][index]
    arrays = [data.draw(_input(s, d), label=f"input {i}") for i, (s, d) in enumerate(case.inputs)]
    ours, theirs = _resolve(tnp, name), _resolve(numpy, name)
    tensors = [T(a.copy(), requires_grad=True) for a in arrays]
    out = case.call(ours, *tensors)
    expected = numpy.asarray(case.call(theirs, *arrays))
    assert isinstance(out, tm.Tensor), f"{name} returned {type(out).__name__}"
    assert out.shape == expected.shape
    assert numpy.asarray(out).dtype == numpy.float64
    numpy.testing.assert_allclose(numpy.asarray(out), expected, rtol=1e-10, atol=1e-12)
    # the plain numpy path: no Tensor in, numpy's own result out
    plain = case.call(ours, *arrays)
    assert not isinstance(plain, tm.Tensor)
    numpy.testing.assert_allclose(plain, expected, rtol=1e-12, atol=0)

    weights = numpy.random.default_rng(0).standard_normal(expected.shape)
    if out.requires_grad:
        loss = (out * T(weights)).sum()
        found = tm.autograd.grad(loss, tensors, allow_unused=True)
        grads = [
            numpy.zeros_like(a) if g is None else numpy.asarray(g)
            for a, g in zip(arrays, found, strict=True)
        ]
    else:
        grads = [numpy.zeros_like(a) for a in arrays]

    def reference(*xs):
        return float(numpy.sum(numpy.asarray(case.call(theirs, *xs)) * weights))

    for i, (g, fd) in enumerate(zip(grads, _finite_difference(reference, arrays), strict=True)):
        numpy.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-6, err_msg=f"input {i} of {name}")


def test_every_case_names_a_public_function():
    assert set(CASES) <= set(FUNCTIONS)
    assert set(tnp.DIFFERENTIABLE) <= set(tnp.__all__)


# ---------------------------------------------------------------- constants and the rest


def test_constants():
    assert tnp.pi == numpy.pi and tnp.e == numpy.e and tnp.newaxis is None
    assert tnp.float32 is numpy.float32 and tnp.float64 is numpy.float64
    assert tnp.random is numpy.random
    assert tnp.inf == numpy.inf


@pytest.mark.parametrize("name", ["zeros", "ones"])
def test_factories_are_plain_arrays(name):
    out = getattr(tnp, name)((2, 3))
    assert type(out) is numpy.ndarray and out.shape == (2, 3) and out.dtype == numpy.float64
    like = getattr(tnp, f"{name}_like")(T(numpy.zeros((2, 1), dtype=numpy.float32)))
    assert type(like) is numpy.ndarray and like.shape == (2, 1) and like.dtype == numpy.float32
    assert type(getattr(tnp, f"{name}_like")(numpy.ones(3))) is numpy.ndarray


def test_eye_and_arrays():
    numpy.testing.assert_array_equal(tnp.eye(3), numpy.eye(3))
    assert type(tnp.array([1.0, 2.0])) is numpy.ndarray
    assert type(tnp.asarray([1, 2])) is numpy.ndarray
    t = T([1.0, 2.0], requires_grad=True)
    assert tnp.asarray(t) is t and tnp.array(t) is t
    assert numpy.asarray(tnp.asarray(t, dtype=numpy.float64)).dtype == numpy.float64


def test_argmax_and_argmin_are_integer_arrays():
    x = numpy.array([[0.1, 3.0, -1.0], [2.0, -4.0, 0.5]])
    t = T(x, requires_grad=True)
    for name in ("argmax", "argmin"):
        for kwargs in ({}, {"axis": 0}, {"axis": 1}, {"axis": 1, "keepdims": True}):
            out = getattr(tnp, name)(t, **kwargs)
            assert tm.backend.is_array(out) or isinstance(out, numpy.integer)
            want = getattr(numpy, name)(x, **kwargs)
            numpy.testing.assert_array_equal(tm.backend.to_numpy(out), want)


def test_a_float32_tensor_takes_numpy_constants_in_its_dtype():
    t = T(numpy.ones((2, 3), dtype=numpy.float32), requires_grad=True)
    out = tnp.add(tnp.dot(t, numpy.ones((3, 2))), numpy.ones(2))
    assert numpy.asarray(out).dtype == numpy.float32
    assert numpy.asarray(tnp.maximum(t, numpy.zeros(3))).dtype == numpy.float32


def test_a_tutorial_forward_runs_on_both():
    def forward(W, b, X):
        return tnp.mean(tnp.tanh(tnp.dot(W, X) + b) ** 2)

    rng = numpy.random.default_rng(0)
    W, b, X = rng.normal(size=(3, 2)), rng.normal(size=(3, 1)), rng.normal(size=(2, 5))
    plain = forward(W, b, X)
    assert isinstance(plain, (float, numpy.floating))
    t = forward(T(W, requires_grad=True), b, X)
    assert isinstance(t, tm.Tensor) and t.requires_grad
    assert t.item() == pytest.approx(plain, rel=1e-12)


@pytest.mark.parametrize("name", ["fft", "linalg_inv", "sort", "nonexistent_function"])
def test_missing_functions_say_so(name):
    with pytest.raises(AttributeError, match=f"tinygrad_mlp.numpy has no differentiable '{name}'"):
        getattr(tnp, name)


def test_missing_linalg_function():
    with pytest.raises(
        AttributeError, match="tinygrad_mlp.numpy.linalg has no differentiable 'inv'"
    ):
        tnp.linalg.inv  # noqa: B018


def test_unsupported_variants_raise_clearly():
    t = T(numpy.ones((2, 3)), requires_grad=True)
    with pytest.raises(NotImplementedError, match="dot"):
        tnp.dot(t, numpy.ones((2, 3, 4)))
    with pytest.raises(NotImplementedError, match="repeated index"):
        tnp.einsum("ii->i", T(numpy.ones((2, 2))))
    with pytest.raises(NotImplementedError, match="ellipsis"):
        tnp.einsum("...i->i", t)
    with pytest.raises(NotImplementedError, match="ord=2 on a matrix"):
        tnp.linalg.norm(t, ord=2)
    with pytest.raises(TypeError, match="out="):
        tnp.add(t, 1.0, out=numpy.empty((2, 3)))
    with pytest.raises(ValueError, match="squeeze"):
        tnp.squeeze(t, axis=0)
    with pytest.raises(ValueError, match="differ outside axis"):
        tnp.concatenate([t, T(numpy.ones((3, 2)))], axis=0)


def test_where_with_only_a_condition_is_numpy_nonzero():
    out = tnp.where(numpy.array([0, 1, 1]))
    numpy.testing.assert_array_equal(out[0], [1, 2])


def test_prod_with_a_zero_has_the_exact_gradient():
    x = T(numpy.array([2.0, 0.0, 3.0]), requires_grad=True)
    (g,) = tm.autograd.grad(tnp.prod(x), [x])
    numpy.testing.assert_array_equal(numpy.asarray(g), [0.0, 6.0, 0.0])


def test_where_with_a_tensor_condition_as_a_leaky_relu():
    z = numpy.array([[-1.5, 0.3], [2.0, -0.2]])
    t = T(z, requires_grad=True)
    out = tnp.where(t > 0, t, 0.01 * t)
    numpy.testing.assert_allclose(numpy.asarray(out), numpy.where(z > 0, z, 0.01 * z))
    (g,) = tm.autograd.grad(tnp.sum(out), [t])
    numpy.testing.assert_allclose(numpy.asarray(g), numpy.where(z > 0, 1.0, 0.01))


@pytest.mark.parametrize("name", [n for n in tnp.__all__ if callable(getattr(tnp, n))])
def test_every_public_function_has_a_docstring(name):
    assert (getattr(tnp, name).__doc__ or "").strip(), f"tinygrad_mlp.numpy.{name}"
