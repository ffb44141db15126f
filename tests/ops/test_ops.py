"""The registry's rules (shapes, dtypes, inputs left alone), Tensor methods' values against
numpy, and dtype rules; every op's gradients at every order are in test_registry.py."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import arrays, broadcastable_pairs, shapes, sizes
from tensors import T

import tinygrad_mlp as tm
from tinygrad_mlp.autograd.graph import apply
from tinygrad_mlp.backend import NUMPY
from tinygrad_mlp.ops import OPS

ALL_OPS = list(OPS.values())
BROADCAST_OPS = [op for op in ALL_OPS if op.sample.broadcast]

# Parameters whose integer lists are indices (numpy needs int64 arrays for them).
_INDEX_KEYS = ("index", "indices")


def _param(key: str, value):
    """A sample parameter as the forward expects it: lists become numpy arrays.

    Integer lists are int64 when they index (an ``index`` or class-index ``target``, which is
    1-D); every other list holds values (e.g. binary targets) and becomes float64.
    """
    if isinstance(value, tuple):
        return tuple(_param(key, v) for v in value)
    if isinstance(value, list):
        array = np.asarray(value)
        is_index = key in _INDEX_KEYS or (key == "target" and array.ndim == 1)
        if array.dtype.kind in "iu" and is_index:
            return array.astype(np.int64)
        return array.astype(np.float64)
    return value


def _params(op, shape_list) -> dict:
    return {k: _param(k, v) for k, v in op.sample.params(tuple(shape_list)).items()}


def _leaves(values) -> list[T]:
    return [T(v, requires_grad=True, dtype="float64") for v in values]


# ---------------------------------------------------------------- the registry's rules


def test_registry_is_not_empty_and_samples_fit_arity():
    assert len(OPS) >= 20
    for name, op in OPS.items():
        assert op.name == name
        shape_list = op.sample.shapes(2, 3)
        assert len(shape_list) == len(op.sample.domains), name
        assert op.arity in (None, len(shape_list)), name  # None: any number of inputs


# Every op's gradients at every order: tests/ops/test_registry.py.


@pytest.mark.parametrize("op", ALL_OPS, ids=[op.name for op in ALL_OPS])
def test_backward_leaves_g_and_saved_alone(op):
    """A rule must not write into the incoming gradient or into what forward saved."""
    rng = np.random.default_rng(0)
    shape_list = op.sample.shapes(3, 2)
    values = []
    for shape, domain in zip(shape_list, op.sample.domains, strict=True):
        v = rng.uniform(0.2, 0.8, shape)
        if domain == "real":
            v = v - 0.5
        values.append(v)
    params = _params(op, shape_list)
    out, saved = op.forward(NUMPY, *values, **params)
    g = rng.standard_normal(np.shape(out))
    g_copy = g.copy()
    first = op.backward(NUMPY, g, saved, (True,) * len(values))
    second = op.backward(NUMPY, g, saved, (True,) * len(values))
    np.testing.assert_array_equal(g, g_copy)
    assert len(first) == len(values)
    for a, b, v in zip(first, second, values, strict=True):
        np.testing.assert_array_equal(a, b)
        assert np.broadcast_shapes(np.shape(a), np.shape(v)) == np.shape(v)


EXACT_OPS = [op for op in ALL_OPS if op.exact]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", EXACT_OPS, ids=[op.name for op in EXACT_OPS])
@given(n=sizes, m=sizes)
def test_exact_rules_return_each_input_shape_and_dtype(op, dtype, n, m):
    """An op marked exact skips the engine's fitting: its rule must get shapes and dtypes right."""
    shape_list = op.sample.shapes(n, m)
    rng = np.random.default_rng(n * 10 + m)
    values = [rng.uniform(0.2, 0.8, shape).astype(dtype) for shape in shape_list]
    out, saved = op.forward(NUMPY, *values, **_params(op, shape_list))
    g = rng.standard_normal(np.shape(out)).astype(dtype)
    grads = op.backward(NUMPY, g, saved, (True,) * len(values))
    for i, (gi, v) in enumerate(zip(grads, values, strict=True)):
        assert type(gi) is np.ndarray and gi.shape == v.shape and gi.dtype == v.dtype, (op, i)


# ---------------------------------------------------------------- matmul in all 1-D / 2-D forms


@pytest.mark.parametrize(
    "sa, sb",
    [((3,), (3,)), ((3,), (3, 4)), ((4, 3), (3,)), ((2, 3), (3, 4))],
    ids=["1d@1d", "1d@2d", "2d@1d", "2d@2d"],
)
def test_matmul_forms(sa, sb):
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    out = T(a, dtype="float64") @ T(b, dtype="float64")
    if len(sa) == 1 and len(sb) == 1:
        expected = sum(a[k] * b[k] for k in range(3))
    elif len(sa) == 1:
        expected = np.array([sum(a[k] * b[k, j] for k in range(3)) for j in range(sb[1])])
    elif len(sb) == 1:
        expected = np.array([sum(a[i, k] * b[k] for k in range(3)) for i in range(sa[0])])
    else:
        expected = np.array(
            [[sum(a[i, k] * b[k, j] for k in range(3)) for j in range(sb[1])] for i in range(sa[0])]
        )
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12)
    assert tm.gradcheck(lambda x, y: x @ y, _leaves([a, b]))


def test_matmul_with_numpy_on_either_side():
    a = np.arange(6.0).reshape(2, 3)
    b = np.arange(12.0).reshape(3, 4)
    np.testing.assert_allclose((T(a, dtype="float64") @ b).numpy(), a @ b)
    np.testing.assert_allclose((a @ T(b, dtype="float64")).numpy(), a @ b)


# ---------------------------------------------------------------- forward values against numpy


def _sig(x):
    return 1 / (1 + np.exp(-x))


UNARY = {
    "neg": (lambda t: -t, lambda x: -x, "real"),
    "exp": (lambda t: t.exp(), np.exp, "real"),
    "log": (lambda t: t.log(), np.log, "positive"),
    "relu": (lambda t: t.relu(), lambda x: np.where(x > 0, x, 0.0), "real"),
    "sigmoid": (lambda t: t.sigmoid(), _sig, "real"),
    "tanh": (lambda t: t.tanh(), lambda x: (np.exp(2 * x) - 1) / (np.exp(2 * x) + 1), "real"),
    "abs": (lambda t: t.abs(), lambda x: np.where(x < 0, -x, x), "real"),
    "pow2": (lambda t: t**2, lambda x: x * x, "real"),
    "pow-1.5": (lambda t: t**-1.5, lambda x: 1 / (x * np.sqrt(x)), "positive"),
    "sqrt": (lambda t: t.sqrt(), np.sqrt, "positive"),
    "clamp": (lambda t: t.clamp(-0.5, 1.0), lambda x: np.minimum(np.maximum(x, -0.5), 1.0), "real"),
    "clamp-min": (lambda t: t.clamp(min=0.3), lambda x: np.where(x < 0.3, 0.3, x), "real"),
    "clamp-max": (lambda t: t.clamp(max=0.3), lambda x: np.where(x > 0.3, 0.3, x), "real"),
}


@pytest.mark.parametrize("name", list(UNARY))
@given(data=st.data())
def test_unary_values(name, data):
    method, reference, domain = UNARY[name]
    x = data.draw(shapes().flatmap(lambda s: arrays(s, domain)))
    out = method(T(x, dtype="float64"))
    assert out.shape == x.shape and out.dtype == np.float64
    np.testing.assert_allclose(out.numpy(), reference(x), rtol=1e-12, atol=1e-14)


BINARY = {
    "add": (lambda a, b: a + b, lambda a, b: a + b),
    "sub": (lambda a, b: a - b, lambda a, b: a - b),
    "mul": (lambda a, b: a * b, lambda a, b: a * b),
    "div": (lambda a, b: a / b, lambda a, b: a / b),
}


@pytest.mark.parametrize("name", list(BINARY))
@given(pair=broadcastable_pairs(), data=st.data())
def test_binary_values_tensor_numpy_and_scalar_operands(name, pair, data):
    method, reference = BINARY[name]
    a = data.draw(arrays(pair[0], "nonzero"))
    b = data.draw(arrays(pair[1], "nonzero"))
    ta, tb = T(a, dtype="float64"), T(b, dtype="float64")
    expected = reference(a, b)
    for out in (method(ta, tb), method(ta, b), method(a, tb)):
        assert isinstance(out, tm.Tensor)
        assert out.shape == expected.shape
        np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12)
    for s in (2.5, -3):
        np.testing.assert_allclose(method(ta, s).numpy(), reference(a, float(s)), rtol=1e-12)
        np.testing.assert_allclose(method(s, ta).numpy(), reference(float(s), a), rtol=1e-12)


def test_sigmoid_is_finite_at_large_magnitudes():
    x = np.array([-1000.0, -40.0, 0.0, 40.0, 1000.0])
    for dtype in ("float32", "float64"):
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            t = T(x, dtype=dtype, requires_grad=True)
            s = t.sigmoid()
            s.sum().backward()
        out = s.numpy()
        assert np.isfinite(out).all() and np.isfinite(t.grad.numpy()).all()
        assert out[0] == 0.0 and out[-1] == 1.0 and out[2] == 0.5
        np.testing.assert_allclose(out[1], np.exp(-40.0), rtol=1e-5)
        np.testing.assert_allclose(t.grad.numpy()[[0, 2, 4]], [0.0, 0.25, 0.0])


def test_softmax_and_log_softmax_of_huge_logits_are_finite():
    z = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        ls = T(z, dtype="float64").log_softmax(axis=1).numpy()
        s = T(z, dtype="float64").softmax(axis=1).numpy()
    # row 0: the first logit dominates; row 1: three equal logits
    np.testing.assert_allclose(ls[0], [0.0, -2e4, -1e4], atol=1e-9)
    np.testing.assert_allclose(ls[1], [-np.log(3)] * 3, rtol=1e-12)
    np.testing.assert_allclose(s, [[1.0, 0.0, 0.0], [1 / 3] * 3], atol=1e-15)
    z32 = T(z, dtype="float32")
    assert np.isfinite(z32.log_softmax().numpy()).all()
    assert np.isfinite(z32.softmax().numpy()).all()


@pytest.mark.parametrize("axis", [0, 1, -1])
@given(x=st.tuples(sizes, sizes).flatmap(lambda s: arrays(s, "real")))
def test_softmax_and_log_softmax_values(axis, x):
    e = np.exp(x)
    expected = e / e.sum(axis=axis, keepdims=True)
    np.testing.assert_allclose(T(x, dtype="float64").softmax(axis).numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(
        T(x, dtype="float64").log_softmax(axis).numpy(), np.log(expected), rtol=1e-10, atol=1e-12
    )


REDUCTIONS = {"sum": np.sum, "mean": np.mean, "amax": np.max}


@pytest.mark.parametrize("name", list(REDUCTIONS))
@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 2)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_reduction_values_and_gradients(name, axis, keepdims):
    rng = np.random.default_rng(2)
    x = rng.permutation(24).reshape(2, 3, 4) * 0.25 - 3.0  # distinct values: no ties in max
    t = T(x, dtype="float64", requires_grad=True)
    out = getattr(t, name)(axis=axis, keepdims=keepdims)
    expected = REDUCTIONS[name](x, axis=axis, keepdims=keepdims)
    assert out.shape == np.shape(expected)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12)
    out.sum().backward()
    axes = range(3) if axis is None else ((axis,) if isinstance(axis, int) else axis)
    count = int(np.prod([x.shape[a] for a in axes]))
    if name == "sum":
        expected_grad = np.ones_like(x)
    elif name == "mean":
        expected_grad = np.full_like(x, 1 / count)
    else:
        expected_grad = (x == np.max(x, axis=axis, keepdims=True)).astype(float)
    np.testing.assert_array_equal(t.grad.numpy(), expected_grad)


def test_amax_ties_share_the_gradient_and_max_dim_routes_it_to_the_index():
    t = T([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]], dtype="float64", requires_grad=True)
    t.amax(dim=1).sum().backward()
    np.testing.assert_allclose(t.grad.numpy(), [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    t.grad = None
    values, indices = t.max(dim=1)  # as PyTorch: (values, indices), the gradient at the index
    np.testing.assert_array_equal(values.numpy(), [3.0, 2.0])
    values.sum().backward()
    np.testing.assert_array_equal(t.grad.numpy()[np.arange(2), indices.numpy()], [1.0, 1.0])
    assert t.grad.numpy().sum() == 2.0


def test_reshape_transpose_and_T():
    x = np.arange(24.0).reshape(2, 3, 4)
    t = T(x, dtype="float64", requires_grad=True)
    np.testing.assert_array_equal(t.reshape(4, 6).numpy(), x.reshape(4, 6))
    np.testing.assert_array_equal(t.reshape((6, -1)).numpy(), x.reshape(6, 4))
    np.testing.assert_array_equal(t.permute(2, 0, 1).numpy(), np.moveaxis(x, 2, 0))
    np.testing.assert_array_equal(t.transpose(0, 2).numpy(), x.transpose(2, 1, 0))
    np.testing.assert_array_equal(t.transpose(-1, 1).numpy(), x.transpose(0, 2, 1))
    np.testing.assert_array_equal(t.T.numpy(), x.transpose(2, 1, 0))
    m = T(x[0], dtype="float64")
    assert m.T.shape == (4, 3)
    np.testing.assert_array_equal(m.T.numpy(), [[x[0, i, j] for i in range(3)] for j in range(4)])
    w = np.arange(24.0).reshape(4, 3, 2)
    (t.permute(2, 1, 0) * w).sum().backward()
    np.testing.assert_array_equal(t.grad.numpy(), w.transpose(2, 1, 0))
    assert tm.gradcheck(lambda a: a.T * a.T, _leaves([x[0]]))
    assert tm.gradcheck(lambda a: a.reshape(3, 2, 4).permute(1, 2, 0), _leaves([x]))
    assert tm.gradcheck(lambda a: a.transpose(0, 1) * 2, _leaves([x]))


def test_getitem_slices():
    x = np.arange(20.0).reshape(4, 5)
    t = T(x, dtype="float64", requires_grad=True)
    np.testing.assert_array_equal(t[1:3].numpy(), x[1:3])
    np.testing.assert_array_equal(t[:, ::2].numpy(), x[:, ::2])
    np.testing.assert_array_equal(t[-1].numpy(), x[3])
    assert t[2, 3].item() == 13.0
    t[1:, ::2].sum().backward()
    expected = np.zeros((4, 5))
    expected[1:, [0, 2, 4]] = 1
    np.testing.assert_array_equal(t.grad.numpy(), expected)


def test_getitem_repeated_integer_indices_accumulate():
    x = np.arange(12.0).reshape(4, 3)
    t = T(x, dtype="float64", requires_grad=True)
    rows = np.array([0, 2, 0, 0, 3])
    out = t[rows]
    np.testing.assert_array_equal(out.numpy(), np.stack([x[r] for r in rows]))
    out.sum().backward()
    np.testing.assert_array_equal(t.grad.numpy()[:, 0], [3, 0, 1, 1])
    t.zero_grad()
    # pairs of (row, column), one pair repeated, lists and tensors as indices
    t[[1, 1, 2], T([0, 0, 2], dtype="int64")].sum().backward()
    expected = np.zeros((4, 3))
    expected[1, 0], expected[2, 2] = 2, 1
    np.testing.assert_array_equal(t.grad.numpy(), expected)
    assert tm.gradcheck(lambda a: a[np.array([0, 2, 0])] * a[np.array([1, 1, 3])], _leaves([x]))


# ---------------------------------------------------------------- dtype rules


def test_float32_stays_float32_with_python_scalars():
    t = T(np.ones((2, 2), dtype=np.float32), requires_grad=True)
    outs = [t + 1, 1 + t, t - 2.5, 2.5 - t, t * 3, 3.0 * t, t / 2, 2 / t, -t, t**2, t.exp()]
    outs += [t.sigmoid(), t.softmax(), t.log_softmax(), t.mean(), t.max(), 2.0**t]
    for out in outs:
        assert out.dtype == np.float32, out.op
    sum(o.sum() for o in outs).backward()
    assert t.grad.dtype == np.float32


def test_dtype_rules_of_construction():
    torch = pytest.importorskip("torch")
    # the Tensor class makes float32 of any array, as torch.Tensor does
    cases = [np.ones(3), np.ones(3, dtype=np.float32), np.ones(3, dtype=np.float16)]
    cases += [[1, 2, 3], [1.5, 2.5], np.arange(3), np.array([True, False])]
    for data in cases:
        ours, theirs = tm.Tensor(data), torch.Tensor(data)
        assert str(ours.dtype).replace("tinygrad_mlp.", "torch.") == str(theirs.dtype), data
    array = np.ones(2, dtype=np.float32)
    shared = tm.Tensor(array)
    array[0] = 5.0
    if shared.device == "cpu":  # on a device the array is copied there
        assert shared.tolist() == [5.0, 1.0]  # a float32 array is shared, not copied
    assert tm.Tensor(tm.zeros(2, dtype=tm.float64)).dtype == tm.float64  # a Tensor keeps its own
    assert tm.Tensor(3).dtype == np.float32
    assert tm.Tensor(2.5).shape == ()
    assert tm.Tensor([1, 2], dtype="float64").dtype == np.float64
    assert tm.Tensor(np.ones(2, dtype=np.float32), dtype="float64").dtype == np.float64
    assert tm.Tensor(np.ones(2), dtype=tm.float64).dtype == tm.float64
    assert (tm.Tensor(np.ones(2), dtype=tm.float64) + 1).dtype == np.float64


@pytest.mark.parametrize("bad", ["abc", b"xy", None, ["a", "b"], {"a": 1}, object()])
def test_non_numeric_data_raises_type_error(bad):
    with pytest.raises(TypeError):
        T(bad)


def test_non_numeric_dtype_raises_type_error():
    with pytest.raises(TypeError):
        T([1.0], dtype="U3")
    with pytest.raises(RuntimeError, match="floating point"):
        T([1, 2], dtype="int64", requires_grad=True)


@pytest.mark.parametrize("c, expected", [(0, [0.0, 0.0]), (1, [1.0, 1.0]), (2, [0.0, 4.0])])
def test_integer_powers_have_finite_gradients_at_zero(c, expected):
    z = T([0.0, 2.0], dtype="float64", requires_grad=True)
    out = z**c
    np.testing.assert_array_equal(out.numpy(), [0.0**c, 2.0**c])
    out.sum().backward()
    np.testing.assert_array_equal(z.grad.numpy(), expected)


def test_mlp_refuses_an_unknown_activation():
    x = T(np.ones((2, 3), np.float32))
    w, b = T(np.ones((4, 3), np.float32)), T(np.ones(4, np.float32))
    with pytest.raises(ValueError, match="unknown activation"):
        apply(OPS["mlp"], x, w, b, acts=("swish_unknown",))
