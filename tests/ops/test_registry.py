"""Every registered op, parametrised over ``ops.OPS``: forward values against independent numpy
formulas, gradients at first, second and third order against finite differences (create_graph's
first order against differences of the numpy formula), shared incoming gradients, and the fused
ops against their composition from primitive Tensor ops.

The check functions (``sample``, ``check_first``, ``check_second``, ``check_third``,
``check_shared``, ``check_graph_first``) are also what ``benchmarks/mutate.py`` runs against
spoiled derivative rules.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from strategies import arrays_of_shapes, broadcastable_pairs, sizes
from tensors import T

import tinygrad_mlp as tm
import tinygrad_mlp.nn.functional as F
from tinygrad_mlp import ops as O
from tinygrad_mlp.autograd.graph import apply

ALL_OPS = list(O.OPS.values())
IDS = [op.name for op in ALL_OPS]
# the fused stack's seven inputs make 30 drawn examples of its second order take ~15 s
DRAWN_OPS = [
    pytest.param(op, marks=pytest.mark.slow)
    if op.arity is None and len(op.sample.domains) > 3
    else op
    for op in ALL_OPS
]
BROADCAST_OPS = [op for op in ALL_OPS if op.sample.broadcast]


# ---------------------------------------------------------------- sample inputs


def _domain_values(rng, shape, domain: str) -> np.ndarray:
    """Deterministic float64 values of ``shape`` in one of ops.Sample's domains."""
    n = math.prod(shape)
    if domain == "real":
        v = rng.uniform(-2, 2, n)
    elif domain == "positive":
        v = rng.uniform(0.2, 3, n)
    elif domain == "nonzero":
        v = rng.choice([-1.0, 1.0], n) * rng.uniform(0.1, 2, n)
    elif domain == "unit":
        v = rng.uniform(0.05, 0.95, n)
    elif domain == "distinct":
        v = (rng.permutation(n) - n / 2) * 0.5 + rng.uniform(-0.1, 0.1, n)
    elif domain == "grid":
        v = rng.integers(-4, 5, n) / 2 + rng.uniform(-0.05, 0.05, n)
    elif domain == "offgrid":
        v = rng.integers(-4, 4, n) / 2 + 0.25 + rng.uniform(-0.05, 0.05, n)
    elif domain == "matrix":
        return near_diagonal(rng.uniform(-0.1, 0.1, shape))
    else:
        raise ValueError(f"unknown domain {domain!r}")
    return v.reshape(shape)


def near_diagonal(noise: np.ndarray) -> np.ndarray:
    """diag(1, 2, 3, ...) on the last two axes plus ``noise`` (|noise| <= 0.1): invertible,
    positive-definite in its symmetric part, with eigenvalues and singular values apart."""
    v = np.array(noise, dtype=np.float64)
    k = min(v.shape[-2:])
    v[..., range(k), range(k)] += np.arange(1, k + 1)
    return v


def sample(op: O.Op, n: int = 2, m: int = 3, seed: int = 0, shape_list=None):
    """(values, params): float64 inputs for ``op`` from its Sample (or the given shapes)."""
    rng = np.random.default_rng(seed)
    shape_list = tuple(shape_list or op.sample.shapes(n, m))
    values = [_domain_values(rng, s, d) for s, d in zip(shape_list, op.sample.domains, strict=True)]
    return values, op.sample.params(shape_list)


def leaves(values) -> list[T]:
    return [T(np.array(v, dtype=np.float64), requires_grad=True) for v in values]


def on_device(params: dict) -> dict:
    """Array parameters moved to the default device, where the inputs are made."""
    device = tm.backend.default_device()
    return {
        k: tm.backend.to_device(v, device) if isinstance(v, np.ndarray) else v
        for k, v in params.items()
    }


def op_fn(op: O.Op, params: dict):
    params = on_device(params)

    def fn(*xs):
        return apply(op, *xs, **params)

    return fn


def _weights(shape, seed: int = 7) -> T:
    return T(np.random.default_rng(seed).standard_normal(shape))


# ---------------------------------------------------------------- the checks


def check_first(op, values, params) -> bool:
    """First-order gradients of every input against central differences."""
    return tm.autograd.gradcheck(op_fn(op, params), leaves(values), raise_exception=False)


def check_second(op, values, params) -> bool:
    """Second-order: the create_graph gradients, differentiated again."""
    return tm.autograd.gradgradcheck(op_fn(op, params), leaves(values), raise_exception=False)


def check_third(op, values, params) -> bool:
    """Third-order: gradcheck of a second-order gradient computed with create_graph twice."""
    fn = op_fn(op, params)
    with tm.no_grad():
        out_shape = fn(*[T(v) for v in values]).shape
    w = _weights(out_shape, 11)
    vs = [_weights(np.shape(v), 12 + i) for i, v in enumerate(values)]

    def second(*xs):
        with tm.enable_grad():  # gradcheck evaluates fn under no_grad for its differences
            gs = tm.autograd.grad(fn(*xs), xs, w, create_graph=True, materialize_grads=True)
            total = sum((g * v).sum() for g, v in zip(gs, vs, strict=True))
            if not total.requires_grad:  # an op linear in all its inputs: its Hessian is 0
                return tuple(x * 0 for x in xs)
            return tm.autograd.grad(total, xs, create_graph=True, materialize_grads=True)

    return tm.autograd.gradcheck(second, leaves(values), raise_exception=False)


def _grads(fn, xs, w):
    return [g.numpy() for g in tm.autograd.grad(fn(*xs), xs, w, allow_unused=True)]


def _fresh(op, values, params, w, factor=1.0):
    xs = leaves(values)
    return [g * factor for g in _grads(op_fn(op, params), xs, w)]


def _close(a, b) -> bool:
    return all(np.allclose(x, y, rtol=1e-10, atol=1e-12) for x, y in zip(a, b, strict=True))


def check_shared(op, values, params) -> list[str]:
    """Graphs that share an incoming gradient; returns the names of the graphs that fail."""
    fn = op_fn(op, params)
    failed = []
    with tm.no_grad():
        out_shape = fn(*[T(v) for v in values]).shape
    w = _weights(out_shape)
    fresh = _fresh(op, values, params, w)

    xs = leaves(values)
    if not _close(_grads(lambda *a: fn(*a) + fn(*a) * 2, xs, w), [g * 3 for g in fresh]):
        failed.append("f(x) + f(x) * 2")

    def twice(*a):
        y = fn(*a)
        return y + y

    if not _close(_grads(twice, leaves(values), w), [g * 2 for g in fresh]):
        failed.append("y = f(x); y + y")

    if tuple(out_shape) == tuple(np.shape(values[0])):
        expected = [fresh[0] + w.numpy()] + fresh[1:]
        if not _close(_grads(lambda *a: a[0] + fn(*a), leaves(values), w), expected):
            failed.append("x + f(x)")

    xs = leaves(values)
    y = fn(*xs)
    y.retain_grad()
    ((y * w).sum() + (y * w * 2).sum()).backward()
    if not np.allclose(y.grad.numpy(), w.numpy() * 3) or not _close(
        [x.grad.numpy() for x in xs], [g * 3 for g in fresh]
    ):
        failed.append("retain_grad")

    xs = leaves(values)
    for _ in range(2):
        fn(*xs).backward(w)
    if not _close([x.grad.numpy() for x in xs], [g * 2 for g in fresh]):
        failed.append(".grad accumulation")

    return failed


def reference_vjp(op, values, params, w: np.ndarray) -> list[np.ndarray]:
    """The gradient of sum(w * f(x)) for each input, by central differences of the independent
    numpy formula ``REFERENCES[op.name]`` (none of tinygrad_mlp's code runs)."""
    formula, eps = REFERENCES[op.name], 1e-6
    grads = []
    for i, v in enumerate(values):
        grad = np.zeros(np.shape(v))
        for k in np.ndindex(grad.shape):
            moved = [np.array(x, dtype=np.float64) for x in values]
            moved[i][k] = v[k] + eps
            up = np.sum(w * formula(*moved, **params))
            moved[i][k] = v[k] - eps
            grad[k] = (up - np.sum(w * formula(*moved, **params))) / (2 * eps)
        grads.append(grad)
    return grads


def check_graph_first(op, values, params) -> bool:
    """create_graph's first-order gradients against differences of the reference formula."""
    fn = op_fn(op, params)
    xs = leaves(values)
    out = fn(*xs)
    w = _weights(out.shape)
    grads = tm.autograd.grad(out, xs, w, create_graph=True, materialize_grads=True)
    expected = reference_vjp(op, values, params, w.numpy())
    return all(
        g.shape == np.shape(e) and np.allclose(g.numpy(), e, rtol=1e-5, atol=1e-6)
        for g, e in zip(grads, expected, strict=True)
    )


def check_all(op, values, params) -> dict[str, bool]:
    """Every check of one op on one sample: name -> passed (used by benchmarks/mutate.py)."""
    return {
        "first": check_first(op, values, params),
        "second": check_second(op, values, params),
        "shared": not check_shared(op, values, params),
        "graph first": check_graph_first(op, values, params),
    }


# ---------------------------------------------------------------- independent references


def _sig(x):
    return 1 / (1 + np.exp(-x))


_erf = np.vectorize(math.erf)


def _softplus(x, beta=1.0, threshold=20.0):
    return np.where(x * beta > threshold, x, np.log(1 + np.exp(x * beta)) / beta)


def _scatter(g, index, shape):
    out = np.zeros(shape)
    np.add.at(out, index, g)
    return out


def _scatter_last(src, positions, last, size):
    out = np.zeros(size)
    for i in sorted(last):  # the kept write of each position, in order
        out[positions[i]] = src[i]
    return out


def _copy_slices_ref(base, value, positions, keep):
    out = base.copy().ravel()
    for p, v in zip(positions.ravel(), value.ravel(), strict=True):
        out[p] = v
    return out.reshape(base.shape)


def _diagonal_ref(x, offset, dim1, dim2):
    assert (dim1, dim2) == (0, 1) and offset >= 0  # the sample's case
    n = min(x.shape[0], x.shape[1] - offset)
    return np.moveaxis(np.array([x[i, i + offset] for i in range(n)]), 0, -1)


def _mlp_ref(x, *params, acts):
    h = x
    for w, b, act in zip(params[::2], params[1::2], acts, strict=True):
        h = h @ w.T + b
        if act is not None:
            name, p = (act, {}) if isinstance(act, str) else act
            h = REFERENCES[name](h, **p)
    return h


def _reduce(losses, reduction):
    return {"mean": np.mean, "sum": np.sum, "none": lambda a: a}[reduction](losses)


def _cross_entropy_ref(z, target, reduction="mean"):
    logp = np.log(np.exp(z) / np.exp(z).sum(axis=1, keepdims=True))
    if target.ndim == 1:
        return _reduce(-logp[np.arange(len(z)), target], reduction)
    return _reduce(-(logp * target).sum(axis=1), reduction)


def _pool_size(n, k, s, p, d=1, ceil=False):
    """PyTorch's pooling output length along one dim."""
    top = n + 2 * p - d * (k - 1) - 1
    out = -(-top // s) + 1 if ceil else top // s + 1
    return out - 1 if ceil and (out - 1) * s >= n + p else out


def _windows_ref(x, kernel_size, dilation, padding, stride, fill=0.0, counts=None):
    """(N, C, kh, kw, oh, ow) windows, one output position at a time."""
    (lo0, hi0), (lo1, hi1) = padding
    big = 8  # room for the windows of ceil mode past the padding
    xp = np.pad(x, ((0, 0), (0, 0), (lo0, hi0 + big), (lo1, hi1 + big)), constant_values=fill)
    if counts is None:
        counts = [
            (n + lo + hi - d * (k - 1) - 1) // s + 1
            for n, k, d, (lo, hi), s in zip(
                x.shape[2:], kernel_size, dilation, padding, stride, strict=True
            )
        ]
    out = np.zeros(x.shape[:2] + tuple(kernel_size) + tuple(counts))
    (dh, dw), (sh, sw) = dilation, stride
    for y in range(counts[0]):
        for z in range(counts[1]):
            rows = y * sh + dh * np.arange(kernel_size[0])
            cols = z * sw + dw * np.arange(kernel_size[1])
            out[:, :, :, :, y, z] = xp[:, :, rows][:, :, :, cols]
    return out


def _fold_ref(cols, output_size, kernel_size, dilation, padding, stride):
    """The transpose of _windows_ref, as a matrix built column by column."""
    x_size = cols.shape[:2] + tuple(output_size)
    flat = np.zeros((math.prod(x_size), cols.size))
    for i in range(flat.shape[0]):
        e = np.zeros(flat.shape[0])
        e[i] = 1
        flat[i] = _windows_ref(e.reshape(x_size), kernel_size, dilation, padding, stride).ravel()
    return (flat @ cols.ravel()).reshape(x_size)


def _conv_ref(x, w, b=None, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1):
    cols = _windows_ref(x, w.shape[2:], dilation, padding, stride)
    xs = np.split(cols, groups, axis=1)
    ws = np.split(w, groups, axis=0)
    out = np.concatenate(
        [np.einsum("ncijyz,ocij->noyz", a, v) for a, v in zip(xs, ws, strict=True)], axis=1
    )
    return out + (0 if b is None else b[:, None, None])


def _pool_ref(x, kernel_size, stride, padding, dilation=(1, 1), ceil_mode=False, fill=0.0):
    counts = [
        _pool_size(n, k, s, p, d, ceil_mode)
        for n, k, s, p, d in zip(x.shape[2:], kernel_size, stride, padding, dilation, strict=True)
    ]
    pairs = [(p, p) for p in padding]
    return _windows_ref(x, kernel_size, dilation, pairs, stride, fill, counts)


def _max_pool_ref(x, kernel_size, stride, padding, dilation, ceil_mode=False):
    return _pool_ref(x, kernel_size, stride, padding, dilation, ceil_mode, -np.inf).max(axis=(2, 3))


def _avg_pool_ref(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor):
    sums = _pool_ref(x, kernel_size, stride, padding, ceil_mode=ceil_mode).sum(axis=(2, 3))
    ones = _pool_ref(np.ones(x.shape), kernel_size, stride, padding, ceil_mode=ceil_mode)
    assert not count_include_pad  # the sample's option: divide by the elements inside
    return sums / ones.sum(axis=(2, 3))


def _cholesky_ref(a):
    # Cholesky-Banachiewicz, row by row, on the symmetric part
    a = (a + a.T) / 2
    n = len(a)
    low = np.zeros_like(a)
    for i in range(n):
        for j in range(i + 1):
            rest = a[i, j] - low[i, :j] @ low[j, :j]
            low[i, j] = math.sqrt(rest) if i == j else rest / low[j, j]
    return low


def _signs(v):
    # each column's largest entry positive; the R of a QR with a nonnegative diagonal
    return np.where(v[np.argmax(np.abs(v), axis=0), range(v.shape[1])] < 0, -1.0, 1.0)


def _packed_eigh_ref(a):
    # numpy's LAPACK routine, packed as the op packs it (the invariants of the decompositions
    # are checked against PyTorch in test_breadth_ops.py)
    w, v = np.linalg.eigh((a + a.T) / 2)
    return np.vstack([w, v * _signs(v)])


def _packed_ref(name, a):
    if name == "qr":
        parts = np.linalg.qr(a)  # LAPACK's signs, kept as they come (PyTorch's too)
    else:
        u, s, vh = np.linalg.svd(a, full_matrices=False)
        parts = (u * _signs(u), s, vh * _signs(u)[:, None])
    return np.concatenate([p.reshape(-1) for p in parts])


REFERENCES = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "remainder": lambda a, b: a - b * np.floor(a / b),
    "neg": lambda x: 0 - x,
    "pow": lambda x, exponent: np.exp(exponent * np.log(x)),
    "pow_tensor": lambda a, b: np.exp(b * np.log(a)),
    "abs": lambda x: np.sqrt(x * x),
    "sign": lambda x: np.where(x > 0, 1.0, np.where(x < 0, -1.0, 0.0)),
    "clamp": lambda x, low, high: np.where(x < low, low, np.where(x > high, high, x)),
    "maximum": lambda a, b: np.where(a > b, a, b),
    "minimum": lambda a, b: np.where(a < b, a, b),
    "where": lambda a, b, condition: np.select([condition], [a], b),
    "exp": lambda x: math.e**x,
    "expm1": lambda x: math.e**x - 1,
    "log": lambda x: np.log2(x) * math.log(2),
    "log1p": lambda x: np.log(1 + x),
    "sin": lambda x: np.imag(np.exp(1j * x)),
    "cos": lambda x: np.real(np.exp(1j * x)),
    "erf": _erf,
    "relu": lambda x: x * (x > 0),
    "sigmoid": _sig,
    "tanh": lambda x: (np.exp(2 * x) - 1) / (np.exp(2 * x) + 1),
    "leaky_relu": lambda x, negative_slope=0.01: np.where(x > 0, x, negative_slope * x),
    "elu": lambda x, alpha=1.0: np.where(x > 0, x, alpha * (np.exp(x) - 1)),
    "gelu": lambda x, approximate="none": x * 0.5 * (1 + _erf(x / math.sqrt(2))),
    "silu": lambda x: x / (1 + np.exp(-x)),
    "softplus": _softplus,
    "mish": lambda x: x * np.tanh(np.log(1 + np.exp(x))),
    "hardtanh": lambda x, min_val=-1.0, max_val=1.0: np.minimum(np.maximum(x, min_val), max_val),
    "relu6": lambda x: np.minimum(np.maximum(x, 0), 6),
    "hardswish": lambda x: x * np.minimum(np.maximum(x + 3, 0), 6) / 6,
    "softmax": lambda x, axis: np.exp(x) / np.exp(x).sum(axis=axis, keepdims=True),
    "log_softmax": lambda x, axis: x - np.log(np.exp(x).sum(axis=axis, keepdims=True)),
    "sum": lambda x, axis=None, keepdims=False: np.add.reduce(x, axis=axis, keepdims=keepdims),
    "mean": lambda x, axis=None, keepdims=False: (
        np.add.reduce(x, axis=axis, keepdims=keepdims) / x.shape[axis]
    ),
    "amax": lambda x, axis=None, keepdims=False: np.sort(x, axis=axis).take(-1, axis=axis),
    "var": lambda x, axis=None, keepdims=False, correction=1: (
        np.var(x, axis=axis, keepdims=keepdims) * x.shape[axis] / (x.shape[axis] - correction)
    ),
    "prod": lambda x, axis=None, keepdims=False: (
        np.exp(np.log(np.abs(x)).sum(axis=axis))
        * np.where((x < 0).sum(axis=axis) % 2 == 1, -1.0, 1.0)
    ),
    "reshape": lambda x, shape: np.ravel(x),
    "permute": lambda x, axes: np.einsum("ijk->jki", x),
    "expand": lambda x, shape: x + np.zeros(shape),
    "getitem": lambda x, index: x[index],
    "scatter": _scatter,
    "scatter_last": _scatter_last,
    "copy_slices": _copy_slices_ref,
    "diagonal": _diagonal_ref,
    "cat": lambda *xs, axis=0: np.hstack(xs),
    "cast": lambda x, dtype: x.astype(dtype),
    "to_device": lambda x, device: x.copy(),
    "matmul": lambda a, b: np.einsum("ik,kj->ij", a, b),
    "linear": lambda x, w, b=None: np.einsum("nk,ok->no", x, w) + (0 if b is None else b),
    "mlp": _mlp_ref,
    "cross_entropy": _cross_entropy_ref,
    "binary_cross_entropy": lambda p, y, reduction="mean": _reduce(
        -(y * np.log(p) + (1 - y) * np.log(1 - p)), reduction
    ),
    "binary_cross_entropy_with_logits": lambda z, y, reduction="mean": _reduce(
        -(y * np.log(_sig(z)) + (1 - y) * np.log(1 - _sig(z))), reduction
    ),
    "mse_loss": lambda p, y, reduction="mean": _reduce((p - y) ** 2, reduction),
    "unfold": _windows_ref,
    "fold": _fold_ref,
    "conv": _conv_ref,
    "max_pool": _max_pool_ref,
    "avg_pool": _avg_pool_ref,
    "atan": lambda x: np.angle(1 + 1j * x),
    "asin": lambda x: np.angle(np.sqrt(1 - x * x) + 1j * x),
    "acos": lambda x: np.angle(x + 1j * np.sqrt(1 - x * x)),
    "atan2": lambda y, x: np.angle(x + 1j * y),
    "cumsum": lambda x, axis: x @ np.triu(np.ones((x.shape[1], x.shape[1]))),
    "einsum": lambda a, b, c, equation: (a @ b @ c).T,
    "linalg_solve": lambda a, b: np.linalg.inv(a) @ b,
    "linalg_det": lambda a: np.prod(np.linalg.eigvals(a)).real,
    "linalg_cholesky": _cholesky_ref,
    "linalg_eigh": _packed_eigh_ref,
    "linalg_qr": lambda a: _packed_ref("qr", a),
    "linalg_svd": lambda a: _packed_ref("svd", a),
}


def test_every_activation_has_an_op():
    assert set(O.ACTIVATIONS) <= set(O.OPS)


@pytest.mark.parametrize("op", ALL_OPS, ids=IDS)
@pytest.mark.parametrize("seed", [0, 1])
def test_forward_matches_an_independent_formula(op, seed):
    assert op.name in REFERENCES, f"op {op.name!r} has no reference formula in test_registry.py"
    values, params = sample(op, 2 + seed, 3, seed)
    out = apply(op, *[T(v) for v in values], **on_device(params))
    expected = np.asarray(REFERENCES[op.name](*values, **params))
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- gradients, every order


_EDGE_PARAMS = ("low", "high", "min_val", "max_val")


def _draw(op, data, pair: bool = False):
    if pair:
        shape_list = data.draw(broadcastable_pairs(), label="shapes")
    else:
        # ops of many inputs (linear, mlp, cat) draw smaller sizes: their Jacobians grow fast
        side = sizes if len(op.sample.domains) <= 2 else st.integers(1, 2)
        n, m = data.draw(side, label="n"), data.draw(side, label="m")
        shape_list = op.sample.shapes(n, m)
    values = data.draw(arrays_of_shapes(shape_list, op.sample.domains), label="inputs")
    params = op.sample.params(tuple(shape_list))
    # the edges of clamp and hardtanh are kinks that the "nonzero" domain does not avoid
    edges = [v for k, v in params.items() if k in _EDGE_PARAMS and v is not None]
    assume(all(np.abs(x - e).min(initial=1.0) > 0.01 for x in values for e in edges))
    return list(values), params


@pytest.mark.parametrize("op", DRAWN_OPS, ids=IDS)
@given(data=st.data())
def test_gradcheck_and_gradgradcheck(op, data):
    values, params = _draw(op, data)
    fn, xs = op_fn(op, params), leaves(values)
    assert tm.autograd.gradcheck(fn, xs)
    assert tm.autograd.gradgradcheck(fn, xs)


@pytest.mark.parametrize("op", BROADCAST_OPS, ids=[op.name for op in BROADCAST_OPS])
@given(data=st.data())
def test_gradcheck_and_gradgradcheck_broadcasting(op, data):
    values, params = _draw(op, data, pair=True)
    fn, xs = op_fn(op, params), leaves(values)
    assert tm.autograd.gradcheck(fn, xs)
    assert tm.autograd.gradgradcheck(fn, xs)


@pytest.mark.parametrize("op", ALL_OPS, ids=IDS)
def test_third_order(op):
    values, params = sample(op, 2, 2, seed=3)
    assert check_third(op, values, params)


@pytest.mark.parametrize("op", ALL_OPS, ids=IDS)
def test_shared_incoming_gradients(op):
    values, params = sample(op, 2, 3, seed=4)
    assert check_shared(op, values, params) == []


@pytest.mark.parametrize("op", ALL_OPS, ids=IDS)
def test_create_graph_first_order_matches_differences_of_the_formula(op):
    values, params = sample(op, 3, 2, seed=5)
    assert check_graph_first(op, values, params)


# ---------------------------------------------------------------- fused ops against composition

_ACT_SPECS = [None, *O.ACTIVATIONS, ("leaky_relu", {"negative_slope": 0.2})]
_ACT_SPECS += [("elu", {"alpha": 0.5}), ("softplus", {"beta": 2.0})]
_ACT_SPECS += [("hardtanh", {"min_val": -0.5, "max_val": 0.7}), ("gelu", {"approximate": "tanh"})]


def _composed_activation(h, act):
    if act is None:
        return h
    name, p = (act, {}) if isinstance(act, str) else act
    if name == "relu":
        return h * (h > 0)
    if name == "sigmoid":
        return 1 / (1 + (-h).exp())
    if name == "tanh":
        return ((h * 2).exp() - 1) / ((h * 2).exp() + 1)
    if name == "leaky_relu":
        return tm.where(h > 0, h, h * p.get("negative_slope", 0.01))
    if name == "elu":
        return tm.where(h > 0, h, (h.exp() - 1) * p.get("alpha", 1.0))
    if name == "gelu":
        if p.get("approximate") == "tanh":
            c = math.sqrt(2 / math.pi)
            inner = (h + h**3 * 0.044715) * c
            return h * 0.5 * (1 + ((inner * 2).exp() - 1) / ((inner * 2).exp() + 1))
        return h * 0.5 * (1 + (h / math.sqrt(2)).erf())
    if name == "silu":
        return h / (1 + (-h).exp())
    if name == "softplus":
        beta = p.get("beta", 1.0)
        return (1 + (h * beta).exp()).log() / beta
    if name == "mish":
        sp = (1 + h.exp()).log()
        return h * ((sp * 2).exp() - 1) / ((sp * 2).exp() + 1)
    if name == "hardtanh":
        lo, hi = p.get("min_val", -1.0), p.get("max_val", 1.0)
        return tm.where(h < lo, h * 0 + lo, tm.where(h > hi, h * 0 + hi, h))
    if name == "relu6":
        return tm.where(h < 0, h * 0, tm.where(h > 6, h * 0 + 6, h))
    if name == "hardswish":
        return h * tm.where(h < -3, h * 0, tm.where(h > 3, h * 0 + 6, h + 3)) / 6
    raise AssertionError(f"activation {name!r} has no composition in test_registry.py")


def _mlp_inputs(seed: int = 0):
    rng = np.random.default_rng(seed)
    shapes = [(4, 3), (5, 3), (5,), (2, 5), (2,)]
    # small weights: pre-activations stay inside hardtanh's range and away from kinks
    return [rng.uniform(-1, 1, s) * (0.5 if i else 1.0) for i, s in enumerate(shapes)]


def _assert_same_derivatives(fused, composed, values, second: bool = True):
    xs, ys = leaves(values), leaves(values)
    a, b = fused(*xs), composed(*ys)
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-12)
    w = _weights(a.shape)
    ga = tm.autograd.grad(a, xs, w, create_graph=True)
    gb = tm.autograd.grad(b, ys, w, create_graph=True)
    for p, q in zip(ga, gb, strict=True):
        np.testing.assert_allclose(p.numpy(), q.numpy(), rtol=1e-9, atol=1e-11)
    if not second:
        return
    vs = [_weights(np.shape(v), 3 + i) for i, v in enumerate(values)]
    sa = sum((g * v).sum() for g, v in zip(ga, vs, strict=True))
    sb = sum((g * v).sum() for g, v in zip(gb, vs, strict=True))
    ha = tm.autograd.grad(sa, xs, materialize_grads=True)
    hb = tm.autograd.grad(sb, ys, materialize_grads=True)
    for p, q in zip(ha, hb, strict=True):
        np.testing.assert_allclose(p.numpy(), q.numpy(), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("act", _ACT_SPECS, ids=str)
def test_mlp_matches_its_composition(act):
    acts = (act, None)

    def fused(x, *params):
        return apply(O.MLP, x, *params, acts=acts)

    def composed(x, w1, b1, w2, b2):
        return _composed_activation(x @ w1.T + b1, act) @ w2.T + b2

    values = _mlp_inputs()
    _assert_same_derivatives(fused, composed, values)
    assert tm.autograd.gradcheck(fused, leaves(values))


def test_linear_matches_its_composition():
    values = _mlp_inputs()[:3]
    _assert_same_derivatives(F.linear, lambda x, w, b: x @ w.T + b, values)
    _assert_same_derivatives(F.linear, lambda x, w: x @ w.T, values[:2])


def _log_softmax_composed(z):
    return z - z.exp().sum(dim=1, keepdim=True).log()


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_matches_its_composition(reduction):
    z = np.random.default_rng(0).standard_normal((4, 3))
    target = np.array([0, 2, 1, 2])
    probs = np.random.default_rng(1).dirichlet(np.ones(3), 4)
    one_hot = np.eye(3)[target]

    def composed(y):
        def f(z):
            losses = -(_log_softmax_composed(z) * T(y)).sum(dim=1)
            return {"mean": losses.mean(), "sum": losses.sum(), "none": losses}[reduction]

        return f

    idx = T(target)
    _assert_same_derivatives(
        lambda z: F.cross_entropy(z, idx, reduction=reduction), composed(one_hot), [z]
    )
    _assert_same_derivatives(
        lambda z: F.cross_entropy(z, T(probs), reduction=reduction), composed(probs), [z]
    )


def test_binary_cross_entropies_and_mse_match_their_composition():
    rng = np.random.default_rng(2)
    p, z, y = rng.uniform(0.1, 0.9, (3, 2)), rng.uniform(-2, 2, (3, 2)), rng.uniform(0, 1, (3, 2))
    ty = T(y)
    _assert_same_derivatives(
        lambda p: F.binary_cross_entropy(p, ty),
        lambda p: -(ty * p.log() + (1 - ty) * (1 - p).log()).mean(),
        [p],
    )

    def bce_logits_composed(z):
        s = 1 / (1 + (-z).exp())
        return -(ty * s.log() + (1 - ty) * (1 - s).log()).mean()

    _assert_same_derivatives(
        lambda z: F.binary_cross_entropy_with_logits(z, ty), bce_logits_composed, [z]
    )
    _assert_same_derivatives(
        lambda a, b: F.mse_loss(a, b), lambda a, b: ((a - b) * (a - b)).mean(), [p, y]
    )
    _assert_same_derivatives(
        lambda a, b: F.mse_loss(a, b, reduction="sum"),
        lambda a, b: ((a - b) * (a - b)).sum(),
        [p, y],
    )
