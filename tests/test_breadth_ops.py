"""PyTorch's wider set of functions and Tensor methods (rounding, trigonometry, scans, sorting,
indexing and scattering, triangles, shape moves, logic, products, stacking, in-place forms and
torch.linalg) against PyTorch itself: values, dtypes, gradients through torch's autograd, and
the exception types of refusals. Each case is written once as ``fn(lib, *tensors)`` and run
with ``lib`` = tinygrad_mlp and ``lib`` = torch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_mlp as tm

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(0)
X34 = RNG.normal(size=(3, 4))
Y34 = RNG.normal(size=(3, 4))
POS34 = RNG.uniform(0.5, 2.0, size=(3, 4))
TIES = np.array([[3.0, 1.0, 2.0, 1.0, 3.0], [0.0, 0.0, 5.0, -1.0, 5.0]])
V3 = RNG.normal(size=3)
M33 = RNG.normal(size=(3, 3))
B234 = RNG.normal(size=(2, 3, 4))


def _np_dtype(t) -> np.dtype:
    if isinstance(t, torch.Tensor):
        return torch.empty(0, dtype=t.dtype).numpy().dtype
    return np.dtype(t.dtype)


def _outputs(out) -> list:
    if isinstance(out, (tuple, list)):
        return [o for item in out for o in _outputs(item)]
    return [out]


def compare(fn, *arrays, grad: bool = True, rtol: float = 1e-7, atol: float = 1e-9):
    """Run ``fn`` with both libraries; the values, dtypes and (for float inputs) the gradients of
    a weighted sum of the float outputs must agree."""
    ours = [tm.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays]
    theirs = [torch.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays]
    got, want = _outputs(fn(tm, *ours)), _outputs(fn(torch, *theirs))
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert tuple(g.shape) == tuple(w.shape)
        assert _np_dtype(g) == _np_dtype(w), (g.dtype, w.dtype)
        # float32 kernels (numpy's, PyTorch's) may differ in the last place: 2 ulps of float32
        tol = max(rtol, 2.4e-7) if w.dtype == torch.float32 else rtol
        np.testing.assert_allclose(g.numpy(), w.detach().numpy(), rtol=tol, atol=atol)
    if not grad or not any(a.dtype.kind == "f" for a in arrays):
        return
    weights = [np.random.default_rng(i).normal(size=tuple(w.shape)) for i, w in enumerate(want)]
    pairs = [
        (g, w, k)
        for g, w, k in zip(got, want, weights, strict=True)
        if w.requires_grad and w.dtype.is_floating_point
    ]
    if not pairs:
        return
    sum(((w * torch.tensor(k)).sum() for _, w, k in pairs)).backward()
    sum(((g * tm.tensor(k)).sum() for g, _, k in pairs)).backward()
    for o, t in zip(ours, theirs, strict=True):
        if not t.requires_grad:
            continue
        expected = np.zeros(t.shape) if t.grad is None else t.grad.numpy()
        actual = np.zeros(o.shape) if o.grad is None else o.grad.numpy()
        np.testing.assert_allclose(actual, expected, rtol=1e-6, atol=1e-8)


def idx(values) -> np.ndarray:
    return np.asarray(values, dtype=np.int64)


# (id, fn(lib, *tensors), arrays): each runs with tinygrad_mlp and with torch
CASES = [
    # rounding and trigonometry
    ("floor", lambda m, x: m.floor(x * 3), [X34]),
    ("ceil", lambda m, x: x.ceil(), [X34 * 3]),
    ("trunc", lambda m, x: m.trunc(x * 3), [X34]),
    ("fix", lambda m, x: m.fix(x * 3), [X34]),
    ("frac", lambda m, x: m.frac(x * 3), [X34]),
    ("floor_int", lambda m, x: m.floor(x), [idx([[1, -2], [3, 4]])]),
    ("tan", lambda m, x: m.tan(x), [X34]),
    ("atan", lambda m, x: x.atan(), [X34 * 3]),
    ("arctan", lambda m, x: m.arctan(x), [X34]),
    ("asin", lambda m, x: m.asin(x * 0.4), [X34]),
    ("acos", lambda m, x: x.acos(), [X34 * 0.4]),
    ("atan2", lambda m, y, x: m.atan2(y, x), [X34, Y34]),
    ("atan2_broadcast", lambda m, y, x: y.atan2(x), [X34, Y34[0]]),
    ("atan2_int", lambda m, y, x: m.atan2(y, x), [idx([1, -2, 0]), idx([3, -1, -2])]),
    ("sinh", lambda m, x: m.sinh(x), [np.array([-40.0, -3.0, -1e-9, 0.0, 0.5, 1.5, 30.0])]),
    ("cosh", lambda m, x: x.cosh(), [np.array([-40.0, -3.0, 0.0, 0.5, 1.5, 30.0])]),
    ("sin_int", lambda m, x: m.tan(x), [idx([1, 2])]),
    # scans
    ("cumsum0", lambda m, x: m.cumsum(x, 0), [X34]),
    ("cumsum-1", lambda m, x: x.cumsum(-1), [B234]),
    ("cumsum_int", lambda m, x: m.cumsum(x, 0), [idx([1, 2, 3])]),
    ("cumsum_bool", lambda m, x: m.cumsum(x, 0), [np.array([True, False, True])]),
    ("cumsum_dtype", lambda m, x: m.cumsum(x, 1, dtype=m.float64), [idx([[1, 2, 3]])]),
    ("cumprod", lambda m, x: m.cumprod(x, 1), [X34]),
    ("cumprod_zeros", lambda m, x: x.cumprod(0), [np.array([2.0, 0.0, 3.0, 0.0, 1.5, 2.0])]),
    ("cumprod_one_zero", lambda m, x: x.cumprod(0), [np.array([2.0, 0.5, 0.0, 4.0, 1.5])]),
    ("cumprod_int", lambda m, x: m.cumprod(x, 0), [idx([1, 2, 3])]),
    # sorting and selection
    ("sort", lambda m, x: m.sort(x), [TIES]),
    ("sort_desc", lambda m, x: x.sort(dim=0, descending=True), [X34]),
    ("sort_stable", lambda m, x: m.sort(x, stable=True), [TIES]),
    ("sort_stable_desc", lambda m, x: m.sort(x, descending=True, stable=True), [TIES]),
    ("argsort", lambda m, x: m.argsort(x, dim=1, descending=True, stable=True), [TIES]),
    ("argsort_int", lambda m, x: x.argsort(stable=True), [idx([3, 1, 2, 1])]),
    ("msort", lambda m, x: m.msort(x), [X34]),
    ("topk", lambda m, x: m.topk(x, 2), [X34]),
    ("topk_smallest", lambda m, x: x.topk(2, dim=0, largest=False), [X34]),
    ("kthvalue", lambda m, x: m.kthvalue(x, 2, 1), [X34]),
    ("kthvalue_keepdim", lambda m, x: x.kthvalue(3, 0, keepdim=True), [X34]),
    ("median", lambda m, x: m.median(x), [X34]),
    ("median_dim", lambda m, x: x.median(1), [X34]),
    ("median_dim_even", lambda m, x: m.median(x, 0, keepdim=True), [X34[:2]]),
    ("mode", lambda m, x: m.mode(x), [TIES]),
    ("mode_dim0", lambda m, x: x.mode(0), [np.array([[1.0, 2.0], [1.0, 3.0], [2.0, 3.0]])]),
    ("aminmax", lambda m, x: m.aminmax(x), [X34]),
    ("aminmax_dim", lambda m, x: x.aminmax(dim=1, keepdim=True), [X34]),
    ("std_mean", lambda m, x: m.std_mean(x, 1), [X34]),
    ("var_mean", lambda m, x: m.var_mean(x, correction=0), [X34]),
    # indexing
    ("narrow", lambda m, x: m.narrow(x, 1, 1, 2), [X34]),
    ("narrow_negative", lambda m, x: x.narrow(0, -2, 2), [X34]),
    ("select", lambda m, x: m.select(x, 1, -1), [X34]),
    ("index_select", lambda m, x, i: m.index_select(x, 1, i), [X34, idx([3, 0, 3])]),
    ("index_select0", lambda m, x, i: x.index_select(0, i), [X34, idx([2, 2])]),
    ("masked_select", lambda m, x: m.masked_select(x, x > 0), [X34]),
    ("masked_select_bc", lambda m, x: x.masked_select(m.tensor([True, False, True, True])), [X34]),
    ("take", lambda m, x, i: m.take(x, i), [X34, idx([[0, 11], [-1, 5]])]),
    # scattering
    (
        "scatter",
        lambda m, x, i, s: m.scatter(x, 1, i, s),
        [X34, idx([[0, 2], [1, 3], [3, 0]]), Y34[:, :2]],
    ),
    ("scatter_dim0", lambda m, x, i, s: x.scatter(0, i, s), [X34, idx([[0, 2, 1, 1]]), Y34[:1]]),
    ("scatter_value", lambda m, x, i: m.scatter(x, 1, i, 2.5), [X34, idx([[0], [3], [1]])]),
    (
        "scatter_reduce_add",
        lambda m, x, i, s: x.scatter(1, i, s, reduce="add"),
        [X34, idx([[0, 0], [1, 3], [3, 3]]), Y34[:, :2]],
    ),  # fmt: skip
    (
        "scatter_add",
        lambda m, x, i, s: m.scatter_add(x, 1, i, s),
        [X34, idx([[0, 0, 2], [1, 3, 1], [3, 3, 3]]), Y34[:, :3]],
    ),  # fmt: skip
    (
        "index_add",
        lambda m, x, i, s: m.index_add(x, 1, i, s, alpha=2.0),
        [X34, idx([3, 0, 3]), Y34[:, :3]],
    ),  # fmt: skip
    ("index_add0", lambda m, x, i, s: x.index_add(0, i, s), [X34, idx([1, 1]), Y34[:2]]),
    ("index_fill", lambda m, x, i: m.index_fill(x, 1, i, -2.0), [X34, idx([0, 2])]),
    ("index_copy", lambda m, x, i, s: m.index_copy(x, 1, i, s), [X34, idx([3, 0]), Y34[:, :2]]),
    ("index_copy0", lambda m, x, i, s: x.index_copy(0, i, s), [X34, idx([2, 0]), Y34[:2]]),
    # triangles and diagonals
    ("tril", lambda m, x: m.tril(x), [X34]),
    ("tril_k", lambda m, x: x.tril(-1), [B234]),
    ("triu", lambda m, x: m.triu(x, 1), [X34]),
    ("triu_neg", lambda m, x: x.triu(-1), [B234]),
    ("diag_1d", lambda m, x: m.diag(x), [V3]),
    ("diag_1d_k", lambda m, x: x.diag(-2), [V3]),
    ("diag_2d", lambda m, x: m.diag(x, 1), [X34]),
    ("diag_2d_neg", lambda m, x: x.diag(-1), [X34]),
    ("diagonal", lambda m, x: m.diagonal(x), [X34]),
    ("diagonal_dims", lambda m, x: x.diagonal(1, 2, 0), [B234]),
    ("diagonal_neg", lambda m, x: m.diagonal(x, -1, -1, -2), [B234]),
    ("diag_embed", lambda m, x: m.diag_embed(x), [X34]),
    ("diag_embed_k", lambda m, x: x.diag_embed(1, 0, 2), [X34]),
    ("diag_embed_neg", lambda m, x: m.diag_embed(x, -2, -1, 0), [V3]),
    # moving elements
    ("roll", lambda m, x: m.roll(x, 2), [X34]),
    ("roll_dims", lambda m, x: x.roll((1, -3), (0, 1)), [X34]),
    ("roll_dim", lambda m, x: m.roll(x, -1, 2), [B234]),
    ("rot90", lambda m, x: m.rot90(x), [X34]),
    ("rot90_k2", lambda m, x: x.rot90(2, (1, 0)), [X34]),
    ("rot90_k3", lambda m, x: m.rot90(x, 3, (0, 2)), [B234]),
    ("rot90_kneg", lambda m, x: m.rot90(x, -1), [X34]),
    ("repeat_interleave", lambda m, x: m.repeat_interleave(x, 2), [X34]),
    ("repeat_interleave_dim", lambda m, x: x.repeat_interleave(2, dim=1), [X34]),
    (
        "repeat_interleave_t",
        lambda m, x, r: m.repeat_interleave(x, r, dim=0),
        [X34, idx([1, 0, 3])],
    ),  # fmt: skip
    ("repeat_interleave_idx", lambda m, r: m.repeat_interleave(r), [idx([2, 0, 1])]),
    ("tile", lambda m, x: m.tile(x, (2,)), [X34]),
    ("tile_more", lambda m, x: x.tile((2, 1, 2)), [X34]),
    ("movedim", lambda m, x: m.movedim(x, 0, -1), [B234]),
    ("movedim_many", lambda m, x: x.movedim((0, 1), (2, 0)), [B234]),
    ("moveaxis", lambda m, x: m.moveaxis(x, 2, 0), [B234]),
    ("swapdims", lambda m, x: m.swapdims(x, 0, 2), [B234]),
    # logic
    ("logical_and", lambda m, a, b: m.logical_and(a > 0, b), [X34, idx([[0, 1, 2, 0]] * 3)]),
    ("logical_or", lambda m, a, b: a.logical_or(b > 0), [idx([0, 2, 0]), V3]),
    ("logical_xor", lambda m, a, b: m.logical_xor(a, b), [X34 > 0, Y34]),
    ("logical_not", lambda m, a: m.logical_not(a), [idx([0, 2])]),
    # division with remainders
    ("remainder", lambda m, a, b: m.remainder(a * 4, b), [X34, Y34]),
    ("remainder_scalar", lambda m, a: a.remainder(-1.5), [X34 * 4]),
    ("remainder_int", lambda m, a, b: m.remainder(a, b), [idx([5, -5, 7]), idx([3, 3, -2])]),
    ("fmod", lambda m, a, b: m.fmod(a * 4, b), [X34, Y34]),
    ("fmod_int", lambda m, a: a.fmod(3), [idx([5, -5, 7])]),
    ("floor_divide", lambda m, a, b: m.floor_divide(a, b), [idx([5, -5, 7]), idx([3, 3, -2])]),
    ("floor_divide_f", lambda m, a: m.floor_divide(a, 0.7), [X34]),
    # products
    ("mv", lambda m, a, v: m.mv(a, v), [X34.T, V3]),
    ("addmm", lambda m, c, a, b: m.addmm(c, a, b), [V3, X34, Y34.T]),
    ("addmm_scaled", lambda m, c, a, b: c.addmm(a, b, beta=0.5, alpha=-2.0), [M33, X34, Y34.T]),
    (
        "addmm_beta0",
        lambda m, a, b: m.addmm(m.full((3,), np.nan, dtype=m.float64), a, b, beta=0),
        [X34, Y34.T],
    ),
    ("addmv", lambda m, c, a, v: m.addmv(c, a, v, alpha=3), [RNG.normal(size=4), X34.T, V3]),
    (
        "baddbmm",
        lambda m, c, a, b: m.baddbmm(c, a, b, beta=2.0),
        [RNG.normal(size=(2, 3, 3)), B234, B234.transpose(0, 2, 1)],
    ),  # fmt: skip
    ("addbmm", lambda m, c, a, b: c.addbmm(a, b), [M33, B234, B234.transpose(0, 2, 1)]),
    ("tensordot", lambda m, a, b: m.tensordot(a, b), [B234, RNG.normal(size=(3, 4, 2))]),
    (
        "tensordot_lists",
        lambda m, a, b: m.tensordot(a, b, dims=([0, 2], [2, 1])),
        [B234, RNG.normal(size=(3, 4, 2))],
    ),  # fmt: skip
    ("tensordot0", lambda m, a, b: m.tensordot(a, b, 0), [V3, X34]),
    ("kron", lambda m, a, b: m.kron(a, b), [X34[:2, :2], M33]),
    ("kron_mixed", lambda m, a, b: m.kron(a, b), [V3, X34]),
    # stacking
    ("hstack", lambda m, a, b: m.hstack([a, b]), [X34, Y34]),
    ("hstack_1d", lambda m, a, b: m.hstack((a, b)), [V3, V3]),
    ("vstack", lambda m, a, b: m.vstack([a, b]), [X34[0], Y34]),
    ("row_stack", lambda m, a, b: m.row_stack([a, b]), [V3, V3]),
    ("dstack", lambda m, a, b: m.dstack([a, b]), [X34, Y34]),
    ("dstack_1d", lambda m, a, b: m.dstack([a, b]), [V3, V3]),
    ("column_stack", lambda m, a, b: m.column_stack([a, b]), [X34[0], X34.T]),
    ("meshgrid_ij", lambda m, a, b: m.meshgrid(a, b, indexing="ij"), [V3, X34[0]]),
    ("meshgrid_xy", lambda m, a, b, c: m.meshgrid([a, b, c], indexing="xy"), [V3, X34[0], V3[:2]]),
    ("atleast_3d", lambda m, a: m.atleast_3d(a), [X34]),
    # clamps and combinations
    ("clamp_min", lambda m, x: m.clamp_min(x, 0.1), [X34]),
    ("clamp_max", lambda m, x: x.clamp_max(-0.2), [X34]),
    ("clamp_min_tensor", lambda m, x, y: x.clamp_min(y), [X34, Y34]),
    ("lerp", lambda m, a, b: m.lerp(a, b, 0.3), [X34, Y34]),
    ("lerp_high", lambda m, a, b: a.lerp(b, 0.8), [X34, Y34]),
    ("lerp_tensor", lambda m, a, b, w: m.lerp(a, b, w), [X34, Y34, RNG.uniform(-0.5, 1.5, 4)]),
    ("addcmul", lambda m, a, b, c: m.addcmul(a, b, c, value=0.5), [X34, Y34, V3[:, None]]),
    ("addcdiv", lambda m, a, b, c: a.addcdiv(b, c, value=-2), [X34, Y34, POS34]),
]


# PyTorch has no derivative for these (it raises at backward): values and dtypes only
NO_TORCH_DERIVATIVE = {"scatter_reduce_add", "floor_divide_f"}


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_matches_torch(case):
    name, fn, arrays = case
    compare(fn, *arrays, grad=name not in NO_TORCH_DERIVATIVE)


# ---------------------------------------------------------------- scatter_reduce

_SRC = RNG.normal(size=(3, 4)).round(1)
_REPEATS = idx([[0, 0, 2, 0], [1, 3, 1, 1], [3, 3, 3, 2]])


@pytest.mark.parametrize("reduce", ["sum", "prod", "mean", "amax", "amin"])
@pytest.mark.parametrize("include_self", [True, False])
def test_scatter_reduce_matches_torch(reduce, include_self):
    x = X34.round(1)
    src = _SRC.copy()
    src[0, 1] = src[0, 0]  # a tie inside one position
    src[2, 3] = 0.0  # a zero factor for prod

    def fn(m, x, i, s):
        return m.scatter_reduce(x, 1, i, s, reduce, include_self=include_self)

    compare(fn, x, _REPEATS, src)
    compare(lambda m, x, i, s: x.scatter_reduce(0, i, s, reduce), x, idx([[2, 0, 2, 1]]), src[:1])


def test_scatter_reduce_ints():
    x, src = idx([[1, 2, 3]]), idx([[4, 5, 6]])
    for reduce in ["sum", "prod", "mean", "amax", "amin"]:
        compare(
            lambda m, x, i, s, r=reduce: m.scatter_reduce(x, 1, i, s, r), x, idx([[0, 0, 2]]), src
        )


REPEATS = [
    ("vector", 0, V3, idx([0, 0, 2, 0]), X34[0]),
    ("rows", 0, X34, idx([[0, 1, 2, 0], [0, 1, 2, 2], [1, 1, 1, 1]]), Y34),
    ("columns", 1, X34, idx([[0, 0, 3], [2, 2, 2], [1, 3, 1]]), Y34[:, :3]),
    ("value", 1, X34, idx([[0, 0], [1, 1], [3, 0]]), None),
]


@pytest.mark.parametrize("case", REPEATS, ids=[c[0] for c in REPEATS])
def test_scatter_with_repeated_indices_matches_torch(case):
    # the values of a repeated index are those of PyTorch on the CPU (the last write wins); the
    # gradient of src is PyTorch's grad.gather(dim, index), every repeat included, and the
    # input's is zero where anything is written
    _, dim, x, index, src = case
    if src is None:
        compare(lambda m, x, i: m.scatter(x, dim, i, value=-2.0), x, index)
        return
    compare(lambda m, x, i, s: m.scatter(x, dim, i, s), x, index, src)
    compare(lambda m, x, i, s: x.clone().scatter_(dim, i, s), x, index, src, grad=False)


def test_scatter_with_repeated_indices_second_order_matches_torch():
    index = idx([[0, 1, 2, 0], [0, 1, 2, 2], [1, 1, 1, 1]])
    grads = []
    for lib in (tm, torch):
        x = lib.tensor(X34, requires_grad=True)
        s = lib.tensor(Y34, requires_grad=True)
        out = lib.scatter(x * x, 0, lib.tensor(index), s * s * s)
        gx, gs = lib.autograd.grad((out * out).sum(), (x, s), create_graph=True)
        (gx.sum() + (gs * gs).sum()).backward()
        grads.append([x.grad.detach().numpy(), s.grad.detach().numpy()])
    for ours, theirs in zip(*grads, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- einsum

EINSUMS = [
    ("ij,jk->ik", [(3, 4), (4, 2)]),
    ("ij,jk", [(3, 4), (4, 2)]),
    ("ii->i", [(3, 3)]),
    ("ii", [(3, 3)]),
    ("iji->j", [(3, 2, 3)]),
    ("ij->", [(3, 4)]),
    ("ij->ji", [(3, 4)]),
    ("i,i->", [(3,), (3,)]),
    ("i,j->ij", [(3,), (2,)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("...ij,...jk->...ik", [(2, 3, 4), (4, 5)]),
    ("...i,...i", [(2, 3), (1, 3)]),
    ("b i j, b j -> b i", [(2, 3, 4), (2, 4)]),
    ("ij,ij,ij->i", [(3, 4), (3, 4), (3, 4)]),
    ("ijk,k->", [(2, 3, 4), (4,)]),
    ("ab,cd->abcd", [(2, 1), (1, 3)]),
    ("i,j", [(2,), (3,)]),
]


@pytest.mark.parametrize(("equation", "shapes"), EINSUMS, ids=[e for e, _ in EINSUMS])
def test_einsum_matches_torch(equation, shapes):
    arrays = [RNG.normal(size=s) for s in shapes]
    compare(lambda m, *xs: m.einsum(equation, *xs), *arrays)
    compare(lambda m, *xs: m.einsum(equation, list(xs)), *arrays)


def test_einsum_second_order_against_finite_differences():
    a, b = (tm.tensor(RNG.normal(size=s), requires_grad=True) for s in [(3, 3), (3, 2)])
    assert tm.autograd.gradgradcheck(lambda a, b: tm.einsum("ii,ij->j", a, b), [a, b])


@settings(max_examples=15, deadline=None)
@given(
    st.lists(st.integers(1, 3), min_size=2, max_size=3),
    st.integers(0, 2),
    st.booleans(),
)
def test_sort_cumsum_and_cumprod_drawn_shapes(shape, dim, descending):
    dim = dim % len(shape)
    x = np.random.default_rng(sum(shape)).integers(-3, 4, size=shape).astype(np.float64)
    compare(lambda m, x: m.sort(x, dim=dim, descending=descending, stable=True), x)
    compare(lambda m, x: m.cumsum(x, dim), x)
    compare(lambda m, x: m.cumprod(x, dim), x)
    compare(lambda m, x: m.tril(x.reshape(shape[0], -1), dim - 1), x)


# ---------------------------------------------------------------- in-place forms

IN_PLACE = [
    ("floor_", lambda x: x.floor_(), X34 * 3),
    ("frac_", lambda x: x.frac_(), X34 * 3),
    ("relu_", lambda x: x.relu_(), X34),
    ("sigmoid_", lambda x: x.sigmoid_(), X34),
    ("tanh_", lambda x: x.tanh_(), X34),
    ("exp_", lambda x: x.exp_(), X34),
    ("log_", lambda x: x.log_(), POS34),
    ("neg_", lambda x: x.neg_(), X34),
    ("sqrt_", lambda x: x.sqrt_(), POS34),
    ("abs_", lambda x: x.abs_(), X34),
    ("pow_", lambda x: x.pow_(2), X34),
    ("clamp_min_", lambda x: x.clamp_min_(0.2), X34),
    ("clamp_max_", lambda x: x.clamp_max_(0.2), X34),
    ("lerp_", lambda x: x.lerp_(x * 0 + 1, 0.25), X34),
    ("addcmul_", lambda x: x.addcmul_(x, x, value=2), X34),
    ("addcdiv_", lambda x: x.addcdiv_(x, x + 5, value=2), X34),
    ("tril_", lambda x: x.tril_(), X34),
    ("cumsum_", lambda x: x.cumsum_(1), X34),
    ("remainder_", lambda x: x.remainder_(0.5), X34),
]


def _scatter_cases(lib):
    i = lib.tensor(idx([[0, 2], [1, 3], [3, 0]]))
    i1 = lib.tensor(idx([3, 0]))
    s = lib.tensor(Y34)
    return [
        ("scatter_", lambda x: x.scatter_(1, i, s)),
        ("scatter_value", lambda x: x.scatter_(1, i, -1.0)),
        ("scatter_add_", lambda x: x.scatter_add_(1, i, s)),
        ("scatter_reduce_", lambda x: x.scatter_reduce_(1, i, s, "amax", include_self=False)),
        ("index_add_", lambda x: x.index_add_(1, i1, s[:, :2], alpha=-1)),
        ("index_fill_", lambda x: x.index_fill_(1, i1, 7.0)),
        ("index_copy_", lambda x: x.index_copy_(1, i1, s[:, :2])),
    ]


@pytest.mark.parametrize(
    ("fn", "array"), [(c[1], c[2]) for c in IN_PLACE], ids=[c[0] for c in IN_PLACE]
)
def test_in_place_forms_match_torch(fn, array):
    ours, theirs = tm.tensor(array), torch.tensor(array)
    version = ours._version
    assert fn(ours) is ours and fn(theirs) is theirs
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-7, atol=1e-9)
    assert ours._version > version
    leaf, torch_leaf = tm.tensor(array, requires_grad=True), torch.tensor(array, requires_grad=True)
    with pytest.raises(RuntimeError):
        fn(torch_leaf)
    with pytest.raises(RuntimeError, match="leaf"):
        fn(leaf)


@pytest.mark.parametrize("k", range(7))
def test_scatter_in_place_forms_match_torch(k):
    name, ours_fn = _scatter_cases(tm)[k]
    _, theirs_fn = _scatter_cases(torch)[k]
    ours, theirs = tm.tensor(X34), torch.tensor(X34)
    assert ours_fn(ours) is ours and theirs_fn(theirs) is theirs
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-7, atol=1e-9)


def test_in_place_float_result_into_an_int_tensor_is_refused():
    for lib in (tm, torch):
        with pytest.raises(RuntimeError, match="can't be cast"):
            lib.tensor([1, 2]).sigmoid_()


def test_top_level_in_place_functions():
    x = tm.tensor([-1.0, 2.0])
    assert tm.relu_(x) is x and x.tolist() == [0.0, 2.0]
    assert tm.clamp_min_(x, 1.0).tolist() == [1.0, 2.0]


# ---------------------------------------------------------------- refusals

REFUSALS = [
    ("frac_int", lambda m: m.frac(m.tensor([1, 2])), NotImplementedError),
    ("kthvalue_k", lambda m: m.kthvalue(m.tensor([1.0, 2.0]), 3), RuntimeError),
    ("topk_k", lambda m: m.topk(m.tensor([1.0, 2.0]), 3), RuntimeError),
    ("narrow_length", lambda m: m.narrow(m.arange(5), 0, 3, 3), RuntimeError),
    ("select_index", lambda m: m.select(m.arange(5), 0, 5), IndexError),
    ("select_dim", lambda m: m.select(m.arange(5), 1, 0), IndexError),
    ("index_select_float", lambda m: m.index_select(m.arange(5), 0, m.tensor([1.0])), RuntimeError),
    (
        "masked_select_float",
        lambda m: m.masked_select(m.arange(3), m.tensor([1.0, 0, 1])),
        RuntimeError,
    ),
    (
        "scatter_dims",
        lambda m: m.zeros(3, 3).scatter(0, m.tensor([0, 1]), m.ones(3, 3)),
        RuntimeError,
    ),
    (
        "scatter_reduce_kind",
        lambda m: m.ones(3).scatter_reduce(0, m.tensor([0]), m.ones(1), "add"),
        RuntimeError,
    ),
    (
        "scatter_dtype",
        lambda m: m.zeros(3).scatter(0, m.tensor([0]), m.ones(1, dtype=m.float64)),
        RuntimeError,
    ),
    ("tril_1d", lambda m: m.tril(m.arange(5)), RuntimeError),
    ("diag_3d", lambda m: m.diag(m.ones(2, 2, 2)), RuntimeError),
    ("diagonal_same", lambda m: m.diagonal(m.ones(2, 2), 0, 1, 1), RuntimeError),
    ("rot90_1d", lambda m: m.rot90(m.ones(2)), RuntimeError),
    ("rot90_dims", lambda m: m.rot90(m.ones(2, 2), 1, (0, 0)), RuntimeError),
    ("roll_align", lambda m: m.roll(m.ones(2, 3), (1, 2), (0,)), RuntimeError),
    (
        "repeat_interleave_size",
        lambda m: m.repeat_interleave(m.ones(3), m.tensor([1, 2])),
        RuntimeError,
    ),
    ("movedim_len", lambda m: m.movedim(m.ones(2, 3), (0, 1), (0,)), RuntimeError),
    ("logical_xor_int", lambda m: m.logical_xor(m.tensor([1, 0]), 1), TypeError),
    ("mv_size", lambda m: m.mv(m.ones(2, 2), m.ones(3)), RuntimeError),
    ("addmm_dims", lambda m: m.addmm(m.ones(2), m.ones(2), m.ones(2, 2)), RuntimeError),
    ("einsum_operands", lambda m: m.einsum("ij,jk->ik", m.ones(2, 2)), RuntimeError),
    ("einsum_dims", lambda m: m.einsum("ijk->i", m.ones(2, 2)), RuntimeError),
    ("einsum_sizes", lambda m: m.einsum("ij,jk->ik", m.ones(2, 2), m.ones(3, 2)), RuntimeError),
    (
        "einsum_dtypes",
        lambda m: m.einsum("i,i", m.ones(2), m.ones(2, dtype=m.float64)),
        RuntimeError,
    ),
    ("tensordot_sizes", lambda m: m.tensordot(m.ones(2, 3), m.ones(3, 2)), RuntimeError),
    (
        "addcdiv_ints",
        lambda m: m.addcdiv(m.tensor([1]), m.tensor([1]), m.tensor([1])),
        RuntimeError,
    ),
    ("meshgrid_2d", lambda m: m.meshgrid(m.ones(2, 2), m.ones(2), indexing="ij"), RuntimeError),
    ("meshgrid_indexing", lambda m: m.meshgrid(m.ones(2), indexing="xx"), RuntimeError),
    ("hstack_empty", lambda m: m.hstack([]), RuntimeError),
]


@pytest.mark.parametrize(
    ("fn", "kind"), [(c[1], c[2]) for c in REFUSALS], ids=[c[0] for c in REFUSALS]
)
def test_refusals_match_torch(fn, kind):
    with pytest.raises(kind):
        fn(torch)
    with pytest.raises(kind):
        fn(tm)


def test_floor_divide_is_recorded_and_its_backward_refused():
    for lib in (tm, torch):
        x = lib.tensor([1.5, -2.5], requires_grad=True)
        y = lib.floor_divide(x, 2)
        assert y.requires_grad
        with pytest.raises(RuntimeError, match="floor_divide"):
            y.sum().backward()


# ---------------------------------------------------------------- torch.linalg

SQ = np.eye(3) * 2 + RNG.normal(size=(3, 3)) * 0.5
BSQ = np.eye(3) * 2 + RNG.normal(size=(2, 3, 3)) * 0.5

LINALG = [
    ("vector_norm", lambda m, x: m.linalg.vector_norm(x), [X34]),
    ("vector_norm_1", lambda m, x: m.linalg.vector_norm(x, 1, dim=1), [X34]),
    ("vector_norm_inf", lambda m, x: m.linalg.vector_norm(x, float("inf"), dim=(0,)), [X34]),
    ("vector_norm_-inf", lambda m, x: m.linalg.vector_norm(x, -float("inf")), [X34]),
    ("vector_norm_0", lambda m, x: m.linalg.vector_norm(x, 0, 1, keepdim=True), [X34]),
    ("vector_norm_3", lambda m, x: m.linalg.vector_norm(x, 3, -1), [X34]),
    ("vector_norm_-1", lambda m, x: m.linalg.vector_norm(x, -1, 0), [X34]),
    ("matrix_norm_fro", lambda m, x: m.linalg.matrix_norm(x), [B234]),
    ("matrix_norm_nuc", lambda m, x: m.linalg.matrix_norm(x, "nuc"), [B234]),
    ("matrix_norm_2", lambda m, x: m.linalg.matrix_norm(x, 2, keepdim=True), [B234]),
    ("matrix_norm_-2", lambda m, x: m.linalg.matrix_norm(x, -2, dim=(0, 2)), [B234]),
    ("matrix_norm_1", lambda m, x: m.linalg.matrix_norm(x, 1), [B234]),
    ("matrix_norm_-1", lambda m, x: m.linalg.matrix_norm(x, -1, dim=(2, 1)), [B234]),
    ("matrix_norm_inf", lambda m, x: m.linalg.matrix_norm(x, float("inf"), keepdim=True), [B234]),
    ("matrix_norm_-inf", lambda m, x: m.linalg.matrix_norm(x, -float("inf")), [B234]),
    ("norm", lambda m, x: m.linalg.norm(x), [B234]),
    ("norm_ord_2d", lambda m, x: m.linalg.norm(x, 1), [X34]),
    ("norm_ord_1d", lambda m, x: m.linalg.norm(x, 3), [V3]),
    ("norm_dim", lambda m, x: m.linalg.norm(x, dim=1), [X34]),
    ("norm_dims", lambda m, x: m.linalg.norm(x, "nuc", dim=(1, 2)), [B234]),
    ("inv", lambda m, a: m.linalg.inv(a), [SQ]),
    ("inv_batch", lambda m, a: m.linalg.inv(a), [BSQ]),
    ("inverse", lambda m, a: a.inverse(), [SQ]),
    ("det", lambda m, a: m.linalg.det(a), [SQ]),
    ("det_batch", lambda m, a: a.det(), [BSQ]),
    ("solve", lambda m, a, b: m.linalg.solve(a, b), [SQ, X34[:, :2]]),
    ("solve_vector", lambda m, a, b: m.linalg.solve(a, b), [SQ, V3]),
    ("solve_batch_vector", lambda m, a, b: m.linalg.solve(a, b), [BSQ, X34[:2, :3]]),
    ("solve_broadcast", lambda m, a, b: m.linalg.solve(a, b), [BSQ, X34[:, :2]]),
    ("solve_right", lambda m, a, b: m.linalg.solve(a, b, left=False), [SQ, X34.T]),
    (
        "cholesky_of_product",
        lambda m, x: m.linalg.cholesky(x @ x.mT + m.eye(3, dtype=m.float64)),
        [X34],
    ),  # fmt: skip
    ("cholesky_upper", lambda m, x: m.linalg.cholesky(x @ x.mT + 0.5, upper=True), [B234]),
    ("cholesky_symmetric_leaf", lambda m, a: m.linalg.cholesky(a), [SQ @ SQ.T]),
    ("eigvalsh", lambda m, a: m.linalg.eigvalsh(a + a.mT), [B234[:, :, :3]]),
    ("svdvals", lambda m, x: m.linalg.svdvals(x), [B234]),
    ("svdvals_wide", lambda m, x: m.linalg.svdvals(x.mT), [X34]),
]


@pytest.mark.parametrize("case", LINALG, ids=[c[0] for c in LINALG])
def test_linalg_matches_torch(case):
    _, fn, arrays = case
    compare(fn, *arrays, rtol=1e-6, atol=1e-8)


def _column_signs(u):
    """+-1 per column that makes the column's largest entry positive (our convention)."""
    big = torch.gather(u, -2, u.abs().argmax(-2, keepdim=True))
    return torch.where(big < 0, -1.0, 1.0).to(u.dtype).detach()


def _eigh_fixed(m, a):
    w, v = a if isinstance(a, tuple) else m.linalg.eigh(a)
    if m is torch:
        v = v * _column_signs(v)
    return w, v


def _svd_fixed(m, a, full_matrices=False):
    u, s, vh = m.linalg.svd(a, full_matrices=full_matrices)
    if m is torch:
        k = s.shape[-1]
        d = _column_signs(u[..., :k])
        u = torch.cat([u[..., :k] * d, u[..., k:]], -1)
        vh = torch.cat([vh[..., :k, :] * d.mT, vh[..., k:, :]], -2)
    return u, s, vh


DECOMPOSITIONS = [
    ("eigh", lambda m, a: _eigh_fixed(m, a + a.mT), [SQ]),
    ("eigh_batch", lambda m, a: _eigh_fixed(m, a @ a.mT), [BSQ]),
    ("eigh_upper", lambda m, a: m.linalg.eigh(a + a.mT, UPLO="U")[0], [BSQ]),
    ("qr_tall", lambda m, a: m.linalg.qr(a), [X34.T]),
    ("qr_square_batch", lambda m, a: m.linalg.qr(a), [BSQ]),
    ("qr_wide", lambda m, a: m.linalg.qr(a), [X34]),
    ("qr_r", lambda m, a: m.linalg.qr(a, "r")[1], [X34.T]),
    ("svd_tall", lambda m, a: _svd_fixed(m, a), [X34.T]),
    ("svd_wide_batch", lambda m, a: _svd_fixed(m, a), [B234]),
    ("svd_full_tall", lambda m, a: _svd_fixed(m, a, True)[1:], [X34.T]),
    ("svd_full_square", lambda m, a: _svd_fixed(m, a, True), [SQ]),
]


@pytest.mark.parametrize("case", DECOMPOSITIONS, ids=[c[0] for c in DECOMPOSITIONS])
def test_decompositions_match_torch_up_to_signs(case):
    # the sign of an eigenvector or singular vector is arbitrary, and PyTorch's LAPACK (MKL)
    # picks other signs than numpy's: torch's are flipped to our convention (each column's
    # largest entry positive) first. QR is compared as it comes: Householder QR fixes the
    # signs, and both give the same. (PyTorch has no derivative for mode='r', where ours
    # differentiates R.)
    name, fn, arrays = case
    compare(fn, *arrays, grad=name != "qr_r", rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", ["reduced", "complete", "r"])
def test_qr_values_equal_torchs_without_sign_changes(dtype, mode):
    rng = np.random.default_rng(7)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    for shape in [(3, 3), (6, 4), (4, 6), (2, 7, 3), (3, 3, 8), (2, 2, 5, 5)]:
        for _ in range(5):
            a = rng.normal(size=shape).astype(dtype)
            q, r = tm.linalg.qr(tm.tensor(a), mode)
            tq, tr = torch.linalg.qr(torch.tensor(a), mode)
            assert q.shape == tuple(tq.shape) and r.dtype == tm.tensor(a).dtype
            np.testing.assert_allclose(q.numpy(), tq.numpy(), atol=tol)
            np.testing.assert_allclose(r.numpy(), tr.numpy(), atol=tol)


def _lopsided(rng, shape):
    """Symmetric positive-definite matrices whose upper triangle is then changed: only the
    triangle read decides the values."""
    a = rng.normal(size=shape)
    a = a @ np.swapaxes(a, -1, -2) + shape[-1] * np.eye(shape[-1])
    n = shape[-1]
    upper = np.triu(np.ones((n, n), bool), 1)
    return np.where(upper, a + rng.normal(size=shape), a), np.where(upper.T, a - 1, a)


@pytest.mark.parametrize("shape", [(3, 3), (2, 4, 4)])
def test_decompositions_of_non_symmetric_input_match_torch(shape):
    # the values come from one triangle; the gradient is PyTorch's symmetric one, over both
    low_read, up_read = _lopsided(np.random.default_rng(3), shape)
    compare(lambda m, a: m.linalg.cholesky(a), low_read, rtol=1e-6, atol=1e-8)
    compare(lambda m, a: m.linalg.cholesky(a, upper=True), up_read, rtol=1e-6, atol=1e-8)
    compare(lambda m, a: _eigh_fixed(m, a), low_read, rtol=1e-6, atol=1e-8)
    compare(lambda m, a: _eigh_fixed(m, m.linalg.eigh(a, UPLO="U")), up_read, rtol=1e-6, atol=1e-8)
    compare(lambda m, a: m.linalg.eigvalsh(a, UPLO="U"), up_read, rtol=1e-6, atol=1e-8)


def test_decompositions_of_non_symmetric_input_second_order_match_torch():
    low_read, _ = _lopsided(np.random.default_rng(4), (3, 3))
    grads = []
    for lib in (tm, torch):
        a = lib.tensor(low_read, requires_grad=True)
        out = lib.linalg.cholesky(a).sum() + (lib.linalg.eigvalsh(a) ** 2).sum()
        (g,) = lib.autograd.grad(out, a, create_graph=True)
        (g * g).sum().backward()
        grads.append(a.grad.detach().numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-8, atol=1e-10)


def test_full_svd_has_orthonormal_extra_columns():
    a = tm.tensor(X34.T, requires_grad=True)
    u, s, vh = tm.linalg.svd(a)
    assert u.shape == (4, 4) and vh.shape == (3, 3)
    np.testing.assert_allclose((u.mT @ u).numpy(), np.eye(4), atol=1e-12)
    sigma = np.zeros((4, 3))
    sigma[:3, :3] = np.diag(s.detach().numpy())
    np.testing.assert_allclose(u.detach().numpy() @ sigma @ vh.detach().numpy(), X34.T, atol=1e-12)
    (u.sum() + s.sum()).backward()  # the extra columns carry no gradient, as in PyTorch
    assert a.grad is not None


def _gauge_free(fn):
    """Quantities that do not depend on the signs of vectors: the reconstruction and V o V."""

    def out(a):
        parts = fn(a)
        return tuple(p * p if p.ndim >= 2 else p for p in parts)

    return out


@pytest.mark.parametrize(
    "fn",
    [
        lambda a: tm.linalg.eigh(a[:, :3] + a[:, :3].mT),
        lambda a: tm.linalg.qr(a.mT),
        lambda a: tm.linalg.qr(a),
        lambda a: tm.linalg.svd(a, full_matrices=False),
        lambda a: (tm.linalg.cholesky(a @ a.mT + tm.eye(3, dtype=tm.float64)),),
        lambda a: (tm.linalg.inv(a[:, :3] + 2 * tm.eye(3, dtype=tm.float64)),),
        lambda a: (tm.linalg.det(a[:, :3]),),
    ],
    ids=["eigh", "qr_tall", "qr_wide", "svd", "cholesky", "inv", "det"],
)
def test_decompositions_first_and_second_order_against_finite_differences(fn):
    a = tm.tensor(X34, requires_grad=True)
    f = _gauge_free(fn)
    assert tm.autograd.gradcheck(f, [a])
    assert tm.autograd.gradgradcheck(f, [a])


LINALG_REFUSALS = [
    ("inv_square", lambda m: m.linalg.inv(m.ones(2, 3)), RuntimeError),
    ("inv_singular", lambda m: m.linalg.inv(m.zeros(2, 2)), RuntimeError),
    ("inv_1d", lambda m: m.linalg.inv(m.ones(2)), RuntimeError),
    ("cholesky_not_pd", lambda m: m.linalg.cholesky(-m.eye(2)), RuntimeError),
    ("solve_shapes", lambda m: m.linalg.solve(m.eye(2), m.ones(3)), RuntimeError),
    ("solve_dtypes", lambda m: m.linalg.solve(m.eye(2), m.ones(2, dtype=m.float64)), RuntimeError),
    ("qr_mode", lambda m: m.linalg.qr(m.ones(2, 2), "full"), RuntimeError),
    ("norm_3d_ord", lambda m: m.linalg.norm(m.ones(2, 2, 2), 2), RuntimeError),
    ("matrix_norm_ord", lambda m: m.linalg.matrix_norm(m.ones(2, 2), 3), RuntimeError),
    ("matrix_norm_1d", lambda m: m.linalg.matrix_norm(m.ones(2)), RuntimeError),
    ("eigh_uplo", lambda m: m.linalg.eigh(m.eye(2), "X"), RuntimeError),
]


@pytest.mark.parametrize("case", LINALG_REFUSALS, ids=[c[0] for c in LINALG_REFUSALS])
def test_linalg_refusals_match_torch(case):
    _, fn, kind = case
    with pytest.raises(kind):
        fn(torch)
    with pytest.raises(kind):
        fn(tm)


SINGULAR = [
    np.array([[1.0, 2.0], [2.0, 4.0]]),
    np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]),
    np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [0.0, 1.0, 1.0]]),
    np.array([[[2.0, 1.0], [1.0, 3.0]], [[1.0, 2.0], [2.0, 4.0]]]),  # one invertible, one not
]


def _det_cofactor_by_differences(a, h=1e-4):
    """d det / dA by central differences (det is a polynomial in A: exact up to rounding)."""
    out = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        up, down = a.copy(), a.copy()
        up[i] += h
        down[i] -= h
        out[i] = (np.linalg.det(up).sum() - np.linalg.det(down).sum()) / (2 * h)
    return out


@pytest.mark.parametrize("k", range(len(SINGULAR)))
def test_det_gradient_at_a_singular_matrix_is_the_cofactor_matrix(k):
    # PyTorch's gradient with create_graph=True (its rule through the singular values) and
    # finite differences; PyTorch's first-order shortcut gives zeros there instead
    a = SINGULAR[k]
    assert np.any(np.linalg.det(a) == 0)
    x, t = tm.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    (gx,) = tm.autograd.grad(tm.linalg.det(x).sum(), x, create_graph=True)
    (gt,) = torch.autograd.grad(torch.linalg.det(t).sum(), t, create_graph=True)
    np.testing.assert_allclose(gx.detach().numpy(), gt.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(gx.detach().numpy(), _det_cofactor_by_differences(a), atol=1e-6)
    y = tm.tensor(a, requires_grad=True)
    (tm.linalg.det(y) * 1.5).sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), 1.5 * gt.detach().numpy(), atol=1e-12)
    # second order
    (gx * gx).sum().backward()
    (gt * gt).sum().backward()
    assert np.all(np.isfinite(x.grad.numpy()))
    np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-9, atol=1e-10)


def test_complete_qr_of_a_tall_matrix_refuses_a_gradient():
    q, r = tm.linalg.qr(tm.tensor(X34.T), mode="complete")
    assert q.shape == (4, 4) and r.shape == (4, 3)
    np.testing.assert_allclose((q @ r).numpy(), X34.T, atol=1e-12)
    with pytest.raises(RuntimeError, match="not differentiable"):
        tm.linalg.qr(tm.tensor(X34.T, requires_grad=True), mode="complete")


# ---------------------------------------------------------------- nn.functional and nn modules

FUNCTIONAL = [
    ("softmin", lambda m, x: m.nn.functional.softmin(x, dim=1), [X34]),
    ("glu", lambda m, x: m.nn.functional.glu(x), [X34]),
    ("glu_dim0", lambda m, x: m.nn.functional.glu(x, 0), [B234]),
    ("threshold", lambda m, x: m.nn.functional.threshold(x, 0.2, -3.0), [X34]),
    ("prelu", lambda m, x, w: m.nn.functional.prelu(x, w), [B234, np.array([0.1, -0.3, 2.0])]),
    ("prelu_one", lambda m, x, w: m.nn.functional.prelu(x, w), [X34, np.array([0.25])]),
    (
        "bilinear",
        lambda m, a, b, w, c: m.nn.functional.bilinear(a, b, w, c),
        [X34, Y34[:, :3], RNG.normal(size=(2, 4, 3)), V3[:2]],
    ),  # fmt: skip
    ("pairwise_distance", lambda m, a, b: m.nn.functional.pairwise_distance(a, b), [X34, Y34]),
    (
        "pairwise_distance_p1",
        lambda m, a, b: m.nn.functional.pairwise_distance(a, b, 1.0, 0.0, True),
        [X34, Y34[0]],
    ),  # fmt: skip
    (
        "group_norm",
        lambda m, x, w, b: m.nn.functional.group_norm(x, 2, w, b),
        [RNG.normal(size=(2, 4, 3)), RNG.normal(size=4), RNG.normal(size=4)],
    ),  # fmt: skip
    (
        "group_norm_plain",
        lambda m, x: m.nn.functional.group_norm(x, 1, eps=0.1),
        [RNG.normal(size=(2, 3, 2, 2))],
    ),  # fmt: skip
    ("instance_norm", lambda m, x: m.nn.functional.instance_norm(x), [RNG.normal(size=(2, 3, 5))]),
    (
        "instance_norm_affine",
        lambda m, x, w, b: m.nn.functional.instance_norm(x, weight=w, bias=b),
        [RNG.normal(size=(2, 3, 2, 2)), V3, V3 + 1],
    ),  # fmt: skip
]


@pytest.mark.parametrize("case", FUNCTIONAL, ids=[c[0] for c in FUNCTIONAL])
def test_functional_matches_torch(case):
    _, fn, arrays = case
    compare(fn, *arrays, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bag_matches_torch(mode):
    weight = RNG.normal(size=(6, 3))
    flat, offsets = idx([1, 2, 4, 5, 4, 3, 2, 9 % 6]), idx([0, 2, 2, 5])

    def bags(m, w):
        F = m.nn.functional
        return (
            F.embedding_bag(m.tensor(flat), w, m.tensor(offsets), mode=mode),
            F.embedding_bag(m.tensor(flat.reshape(2, 4)), w, mode=mode),
            F.embedding_bag(m.tensor(flat), w, m.tensor(offsets), mode=mode, padding_idx=4),
            F.embedding_bag(
                m.tensor(flat), w, m.tensor(idx([0, 3, 8])), mode=mode, include_last_offset=True
            ),
        )

    compare(bags, weight)


def test_embedding_bag_per_sample_weights_match_torch():
    def fn(m, w, s):
        return m.nn.functional.embedding_bag(
            m.tensor(idx([0, 2, 1, 2])), w, m.tensor(idx([0, 1])), mode="sum", per_sample_weights=s
        )

    compare(fn, RNG.normal(size=(3, 2)), RNG.normal(size=4))


def _copy_parameters(ours, theirs):
    with torch.no_grad():
        for name, p in theirs.named_parameters():
            p.copy_(torch.tensor(dict(ours.named_parameters())[name].numpy()))


MODULES = [
    ("PReLU", lambda m: m.nn.PReLU(), (3, 4)),
    ("PReLU3", lambda m: m.nn.PReLU(3, init=0.1), (2, 3, 4)),
    ("Softmin", lambda m: m.nn.Softmin(dim=0), (3, 4)),
    ("GLU", lambda m: m.nn.GLU(1), (3, 4)),
    ("Threshold", lambda m: m.nn.Threshold(0.1, 20), (3, 4)),
    ("GroupNorm", lambda m: m.nn.GroupNorm(2, 4), (3, 4, 5)),
    ("GroupNorm_plain", lambda m: m.nn.GroupNorm(4, 4, affine=False), (3, 4, 2, 2)),
    ("InstanceNorm1d", lambda m: m.nn.InstanceNorm1d(3), (2, 3, 5)),
    ("InstanceNorm1d_unbatched", lambda m: m.nn.InstanceNorm1d(3, affine=True), (3, 5)),
    ("InstanceNorm2d", lambda m: m.nn.InstanceNorm2d(3, affine=True), (2, 3, 2, 3)),
    ("PairwiseDistance", lambda m: m.nn.PairwiseDistance(), (3, 4)),
    ("Bilinear", lambda m: m.nn.Bilinear(4, 4, 2), (3, 4)),
    ("Unflatten", lambda m: m.nn.Unflatten(1, (2, 2)), (3, 4)),
    ("Identity", lambda m: m.nn.Identity(54, unused="x"), (3, 4)),
]


@pytest.mark.parametrize("case", MODULES, ids=[c[0] for c in MODULES])
def test_modules_match_torch(case):
    name, make, shape = case
    tm.manual_seed(0)
    ours, theirs = make(tm).double(), make(torch).double()
    _copy_parameters(ours, theirs)
    assert repr(ours) == repr(theirs)
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict())
    x = RNG.normal(size=shape)
    two = name in ("PairwiseDistance", "Bilinear")
    a, b = tm.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out = ours(a, a * 2) if two else ours(a)
    want = theirs(b, b * 2) if two else theirs(b)
    np.testing.assert_allclose(out.detach().numpy(), want.detach().numpy(), rtol=1e-7, atol=1e-9)
    w = RNG.normal(size=tuple(want.shape))
    (out * tm.tensor(w)).sum().backward()
    (want * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-7, atol=1e-9)
    for (n, p), q in zip(ours.named_parameters(), theirs.parameters(), strict=True):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-7, atol=1e-9, err_msg=n)


def test_instance_norm_running_statistics_match_torch():
    ours = tm.nn.InstanceNorm1d(3, track_running_stats=True)
    theirs = torch.nn.InstanceNorm1d(3, track_running_stats=True)
    for seed in range(3):
        x = np.random.default_rng(seed).normal(size=(4, 3, 5)).astype(np.float32)
        ours(tm.tensor(x)), theirs(torch.tensor(x))
    np.testing.assert_allclose(ours.running_mean.numpy(), theirs.running_mean.numpy(), rtol=1e-5)
    np.testing.assert_allclose(ours.running_var.numpy(), theirs.running_var.numpy(), rtol=1e-5)
    ours.eval(), theirs.eval()
    x = np.random.default_rng(9).normal(size=(2, 3, 5)).astype(np.float32)
    np.testing.assert_allclose(
        ours(tm.tensor(x)).numpy(), theirs(torch.tensor(x)).numpy(), rtol=1e-5, atol=1e-6
    )


NN_REFUSALS = [
    ("glu_odd", lambda m: m.nn.functional.glu(m.ones(3, 3)), RuntimeError),
    ("group_norm_groups", lambda m: m.nn.functional.group_norm(m.ones(2, 3, 4), 2), RuntimeError),
    ("GroupNorm_groups", lambda m: m.nn.GroupNorm(2, 3), ValueError),
    ("prelu_channels", lambda m: m.nn.functional.prelu(m.ones(2, 3), m.ones(2)), RuntimeError),
    (
        "embedding_bag_mode",
        lambda m: m.nn.functional.embedding_bag(
            m.tensor([0, 1]), m.ones(3, 2), m.tensor([0]), mode="min"
        ),
        ValueError,
    ),  # fmt: skip
    (
        "embedding_bag_weights",
        lambda m: m.nn.functional.embedding_bag(
            m.tensor([0, 1]), m.ones(3, 2), m.tensor([0]), per_sample_weights=m.ones(2)
        ),
        NotImplementedError,
    ),  # fmt: skip
    (
        "embedding_bag_2d_offsets",
        lambda m: m.nn.functional.embedding_bag(m.tensor([[0, 1]]), m.ones(3, 2), m.tensor([0])),
        ValueError,
    ),  # fmt: skip
]


@pytest.mark.parametrize("case", NN_REFUSALS, ids=[c[0] for c in NN_REFUSALS])
def test_nn_refusals_match_torch(case):
    _, fn, kind = case
    with pytest.raises(kind):
        fn(torch)
    with pytest.raises(kind):
        fn(tm)


# ---------------------------------------------------------------- LBFGS


@pytest.mark.parametrize(
    "kw",
    [
        dict(),
        dict(lr=0.5, max_iter=5, history_size=3),
        dict(line_search_fn="strong_wolfe"),
        dict(line_search_fn="strong_wolfe", max_iter=4, history_size=2, tolerance_change=1e-12),
    ],
    ids=["plain", "short", "strong_wolfe", "strong_wolfe_short"],
)
def test_lbfgs_matches_torch(kw):
    data = np.random.default_rng(3)
    a, target = data.normal(size=(6, 3)), data.normal(size=6)
    w0, b0 = data.normal(size=3), np.array([0.3])

    def run(lib):
        w, b = lib.tensor(w0, requires_grad=True), lib.tensor(b0, requires_grad=True)
        opt = lib.optim.LBFGS([w, b], **kw)
        x, y = lib.tensor(a), lib.tensor(target)

        def closure():
            opt.zero_grad()
            # a smooth non-quadratic loss: the line search has work to do
            loss = ((x @ w + b - y) ** 2).mean() + (w**4).sum() * 0.1 + (b * w[0]).sin().sum()
            loss.backward()
            return loss

        trace = []
        for _ in range(3):
            loss = opt.step(closure)
            trace.append((float(loss), w.detach().numpy().copy(), b.detach().numpy().copy()))
        return trace, opt.state[opt.param_groups[0]["params"][0]]

    ours, ours_state = run(tm)
    theirs, theirs_state = run(torch)
    for (lo, wo, bo), (lt, wt, bt) in zip(ours, theirs, strict=True):
        assert lo == pytest.approx(lt, rel=1e-9, abs=1e-12)
        np.testing.assert_allclose(wo, wt, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(bo, bt, rtol=1e-8, atol=1e-10)
    assert ours_state["func_evals"] == theirs_state["func_evals"]
    assert ours_state["n_iter"] == theirs_state["n_iter"]


def test_lbfgs_refusals_match_torch():
    for lib in (tm, torch):
        p = lib.tensor([1.0], requires_grad=True)

        def closure(p=p):
            loss = (p * p).sum()
            loss.backward()
            return loss

        with pytest.raises(RuntimeError):
            lib.optim.LBFGS([p], line_search_fn="backtracking").step(closure)
        with pytest.raises(ValueError):
            lib.optim.LBFGS([{"params": [p]}, {"params": [lib.tensor([2.0], requires_grad=True)]}])


NAMES = (
    "floor ceil trunc frac tan atan atan2 asin acos sinh cosh cumsum cumprod sort argsort topk "
    "kthvalue median mode narrow select index_select masked_select take scatter scatter_add "
    "scatter_reduce index_add index_fill index_copy tril triu diag diagonal diag_embed roll flip "
    "rot90 repeat_interleave tile movedim swapdims logical_and logical_or logical_not "
    "logical_xor remainder fmod floor_divide mv addmm addmv baddbmm einsum tensordot kron hstack "
    "vstack dstack column_stack meshgrid std_mean var_mean aminmax clamp_min clamp_max lerp "
    "addcmul addcdiv det inverse"
).split()


@pytest.mark.parametrize("name", NAMES + [n + "_" for n in NAMES] + ["relu_", "sigmoid_"])
def test_the_name_is_where_pytorch_has_it(name):
    assert hasattr(tm, name) == hasattr(torch, name)
    assert hasattr(tm.Tensor, name) == hasattr(torch.Tensor, name)


@pytest.mark.parametrize("name", ["swapdims_", "swapaxes_", "transpose_"])
def test_swapdims_in_place_matches_torch(name):
    ours, theirs = tm.tensor(B234), torch.tensor(B234)
    assert getattr(ours, name)(0, -1) is ours
    getattr(theirs, name)(0, -1)
    assert tuple(ours.shape) == tuple(theirs.shape) == (4, 3, 2)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    base, tbase = tm.tensor(X34), torch.tensor(X34)
    view, tview = base[1:], tbase[1:]
    getattr(view, name)(0, 1)
    getattr(tview, name)(0, 1)
    view.mul_(2.0)  # still the base's memory
    tview.mul_(2.0)
    np.testing.assert_array_equal(base.numpy(), tbase.numpy())
    assert tuple(base.shape) == (3, 4) and tuple(view.shape) == (4, 2)
    for lib in (tm, torch):
        with pytest.raises(RuntimeError):
            getattr(lib.tensor(X34, requires_grad=True), name)(0, 1)
        with pytest.raises(IndexError):
            getattr(lib.tensor(X34), name)(0, 2)


def test_sampling_and_counting_methods_match_torch():
    values = RNG.normal(size=50)
    counts = RNG.integers(0, 6, size=30)
    weights = RNG.uniform(size=30)
    for args in [(), (weights,)]:
        want = torch.tensor(counts).bincount(*map(torch.tensor, args), minlength=8)
        got = tm.tensor(counts).bincount(*map(tm.tensor, args), minlength=8)
        assert got.dtype == tm.tensor(want.numpy()).dtype
        np.testing.assert_allclose(got.numpy(), want.numpy())
    for dtype in (np.float32, np.float64):
        x = values.astype(dtype)
        got = tm.tensor(x).histc(bins=7, min=-1, max=1)
        np.testing.assert_array_equal(got.numpy(), torch.tensor(x).histc(bins=7, min=-1, max=1))
        got = tm.tensor(x).histogram(5)
        want = torch.tensor(x).histogram(5)
        np.testing.assert_allclose(got.hist.numpy(), want.hist.numpy())
        np.testing.assert_allclose(got.bin_edges.numpy(), want.bin_edges.numpy(), rtol=1e-6)
    probs = np.array([[0.0, 1.0, 3.0, 0.0], [2.0, 0.0, 0.0, 1.0]])
    tm.manual_seed(0)
    ours = tm.tensor(probs).multinomial(2)
    theirs = torch.tensor(probs).multinomial(2)
    assert tuple(ours.shape) == tuple(theirs.shape) and ours.dtype == tm.int64
    # the only two categories of nonzero weight in each row, each drawn once
    assert sorted(ours.numpy()[0].tolist()) == sorted(theirs.numpy()[0].tolist()) == [1, 2]
    assert sorted(ours.numpy()[1].tolist()) == sorted(theirs.numpy()[1].tolist()) == [0, 3]
    drawn = tm.tensor(probs[0]).multinomial(500, replacement=True).numpy()
    assert set(drawn.tolist()) <= {1, 2} and 300 < (drawn == 2).sum() < 450


@pytest.mark.parametrize("name", tm._tensor_maths.TOP_LEVEL_IN_PLACE)
def test_top_level_in_place_functions_match_torch(name):
    if name == "addmv_":
        array, args = V3, [X34[:, :3], V3]
    else:
        array, args = np.abs(X34) * 0.3 + 0.1, [0.1] if name.startswith("clamp") else []
    ours, theirs = tm.tensor(array), torch.tensor(array)
    wrap = [(tm.tensor(a), torch.tensor(a)) if isinstance(a, np.ndarray) else (a, a) for a in args]
    assert getattr(tm, name)(ours, *[w[0] for w in wrap]) is ours
    getattr(torch, name)(theirs, *[w[1] for w in wrap])
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-7, atol=1e-9)


@settings(max_examples=15, deadline=None)
@given(
    st.lists(st.integers(1, 4), min_size=1, max_size=3),
    st.integers(0, 2),
    st.integers(0, 10**6),
)
def test_index_and_scatter_ops_drawn_shapes(shape, dim, seed):
    dim %= len(shape)
    gen = np.random.default_rng(seed)
    x = gen.normal(size=shape)
    n = shape[dim]
    picks = idx(gen.integers(0, n, size=gen.integers(1, 4)))
    compare(lambda m, x, i: m.index_select(x, dim, i), x, picks)
    rows = list(shape)
    rows[dim] = len(picks)
    compare(lambda m, x, i, s: m.index_add(x, dim, i, s), x, picks, gen.normal(size=rows))
    where = idx(gen.integers(0, n, size=shape))
    compare(lambda m, x, i, s: m.scatter_add(x, dim, i, s), x, where, gen.normal(size=shape))
    compare(lambda m, x, i: m.gather(x, dim, i), x, where)
    compare(lambda m, x: m.roll(x, int(seed % 5) - 2, dim), x)
    compare(lambda m, x: m.movedim(x, dim, -1), x)


def test_lbfgs_state_dict_round_trip_resumes_exactly():
    def make(values):
        w = tm.tensor(values, requires_grad=True)
        opt = tm.optim.LBFGS([w], max_iter=3, history_size=2)

        def closure():
            opt.zero_grad()
            loss = ((w - 1) ** 4).sum() + (w**2).sum()
            loss.backward()
            return loss

        return w, opt, closure

    w, opt, closure = make(V3)
    opt.step(closure)
    w2, opt2, closure2 = make(w.detach().numpy())
    opt2.load_state_dict(opt.state_dict())
    opt.step(closure)
    opt2.step(closure2)
    np.testing.assert_array_equal(w.detach().numpy(), w2.detach().numpy())


def test_embedding_bag_module_matches_torch():
    ours = tm.nn.EmbeddingBag(5, 3, mode="max", padding_idx=1).double()
    theirs = torch.nn.EmbeddingBag(5, 3, mode="max", padding_idx=1).double()
    assert ours.weight.numpy()[1].tolist() == [0.0, 0.0, 0.0]
    _copy_parameters(ours, theirs)
    assert repr(ours) == repr(theirs)
    flat, offsets = idx([0, 1, 4, 4, 2, 1]), idx([0, 2, 3])
    out = ours(tm.tensor(flat), tm.tensor(offsets))
    want = theirs(torch.tensor(flat), torch.tensor(offsets))
    np.testing.assert_allclose(out.detach().numpy(), want.detach().numpy(), rtol=1e-12)
    w = RNG.normal(size=tuple(want.shape))
    (out * tm.tensor(w)).sum().backward()
    (want * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-12)
