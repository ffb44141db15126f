"""More maths: inverse trigonometry, running sums, einsum and linear algebra (solve, det,
cholesky, eigh, qr, svd)."""

from __future__ import annotations

from typing import Any

from ._registry import Sample, ShapeError, norm_axes, register

# ---------------------------------------------------------------- more maths: inverse
# trigonometry, running sums, einsum and linear algebra

# NOTE: the decompositions (eigh, qr, svd) give several arrays; the registry's ops give one, so
# each packs its results into one array (eigh: the eigenvalues as row 0 above the eigenvectors;
# qr and svd: the factors flattened side by side along the last axis) that the public functions
# of ``tinygrad_mlp.linalg`` unpack by slicing, a recorded and differentiable step.


def _xp(ns):
    """The array module behind a namespace (for constants such as identity matrices)."""
    return ns.arrays.xp if ns.differentiable else ns.xp


def _eye(ns, n: int, dtype) -> Any:
    return _xp(ns).eye(n, dtype=dtype)


def _square(name: str, a) -> None:
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ShapeError(
            f"linalg.{name}: A must be batches of square matrices, but they are "
            f"{' by '.join(map(str, a.shape[-2:]))} matrices (shape {tuple(a.shape)})"
        )


def _atan(ns, x):
    return ns.arctan(x), x


def _atan_vjp(ns, g, x, needs):
    # d/dx atan x = 1 / (1 + x^2)
    return (g / (x * x + 1),)


ATAN = register("atan", _atan, _atan_vjp)


def _asin(ns, x):
    return ns.arcsin(x), x


def _asin_vjp(ns, g, x, needs):
    # d/dx asin x = 1 / sqrt(1 - x^2)
    return (g / (1 - x * x) ** 0.5,)


ASIN = register("asin", _asin, _asin_vjp, 1, Sample(domains=("unit",)))


def _acos(ns, x):
    return ns.arccos(x), x


def _acos_vjp(ns, g, x, needs):
    # d/dx acos x = -1 / sqrt(1 - x^2)
    return (-g / (1 - x * x) ** 0.5,)


ACOS = register("acos", _acos, _acos_vjp, 1, Sample(domains=("unit",)))


def _atan2(ns, y, x):
    return ns.arctan2(y, x), (y, x)


def _atan2_vjp(ns, g, saved, needs):
    # d atan2(y, x) / dy = x / (x^2 + y^2), d atan2(y, x) / dx = -y / (x^2 + y^2)
    y, x = saved
    scaled = g / (x * x + y * y)
    return (scaled * x if needs[0] else None), (-(scaled * y) if needs[1] else None)


ATAN2 = register(
    "atan2",
    _atan2,
    _atan2_vjp,
    2,
    Sample(shapes=lambda n, m: ((n, m), (n, m)), domains=("nonzero", "nonzero"), broadcast=True),
)


def _cumsum(ns, x, axis):
    (axis,) = norm_axes(axis, x.ndim) or (0,)
    return ns.cumsum(x, axis=axis), axis


def _cumsum_vjp(ns, g, axis, needs):
    # out_i = sum_{j <= i} x_j  =>  dx_j = sum_{i >= j} g_i: a running sum from the other end
    back = (slice(None),) * axis + (slice(None, None, -1),)
    return (ns.cumsum(g[back], axis=axis)[back],)


CUMSUM = register(
    "cumsum",
    _cumsum,
    _cumsum_vjp,
    1,
    Sample(params=lambda s: {"axis": 1}),
    exact=True,
    saves_inputs=False,
)


def einsum_parts(equation: str) -> tuple[list[str], str]:
    """The subscripts of each operand and of the output of an explicit einsum equation."""
    inputs, out = equation.split("->")
    return inputs.split(","), out


def _einsum(ns, *xs, equation):
    return ns.einsum(equation, *xs), (xs, equation)


def _einsum_vjp(ns, g, saved, needs):
    # out = sum over the contracted letters of prod_k x_k: the gradient of x_k contracts g with
    # every other operand back to x_k's letters (each letter of x_k appears once in x_k and
    # also in the output or another operand: tinygrad_mlp.einsum arranges that)
    xs, equation = saved
    subs, out = einsum_parts(equation)
    grads = []
    for k, need in enumerate(needs):
        if not need:
            grads.append(None)
            continue
        others = [s for i, s in enumerate(subs) if i != k]
        eq = ",".join([out, *others]) + "->" + subs[k]
        grad = ns.einsum(eq, g, *[x for i, x in enumerate(xs) if i != k])
        # NOTE: einsum broadcasts a letter of size 1 against the same letter of another size
        # (as PyTorch's does): where x_k has size 1 the gradient sums that letter, and where the
        # others have size 1 the gradient is the same along x_k's letter, so it is broadcast
        shape = tuple(xs[k].shape)
        sums = tuple(a for a, n in enumerate(shape) if n == 1 and grad.shape[a] != 1)
        if sums:
            grad = grad.sum(axis=sums, keepdims=True)
        if tuple(grad.shape) != shape:
            grad = ns.broadcast_to(grad, shape)
        grads.append(grad)
    return tuple(grads)


EINSUM = register(
    "einsum",
    _einsum,
    _einsum_vjp,
    None,
    Sample(
        shapes=lambda n, m: ((n, m), (m, 2), (2, n)),
        domains=("real",) * 3,
        params=lambda s: {"equation": "ij,jk,kl->li"},
    ),
)


def _solve(ns, a, b):
    if a.ndim < 2 or b.ndim < 2 or a.shape[-1] != a.shape[-2] or b.shape[-2] != a.shape[-1]:
        raise ShapeError(
            f"linalg.solve: A of shape {tuple(a.shape)} and B of shape {tuple(b.shape)} do not "
            "fit A X = B: A must be square matrices (..., n, n) and B (..., n, k)"
        )
    out = ns.linalg_solve(a, b)
    return out, (a, out)


def _solve_vjp(ns, g, saved, needs):
    # X = A^-1 B  =>  dB = A^-T G, dA = -dB X^T
    a, x = saved
    gb = ns.linalg_solve(ns.mT(a), g)
    return (-ns.matmul(gb, ns.mT(x)) if needs[0] else None), (gb if needs[1] else None)


LINALG_SOLVE = register(
    "linalg_solve",
    _solve,
    _solve_vjp,
    2,
    Sample(shapes=lambda n, m: ((m, m), (m, n)), domains=("matrix", "real")),
)


def _det(ns, a):
    _square("det", a)
    out = ns.linalg_det(a)
    return out, (a, out)


def _det_vjp(ns, g, saved, needs):
    # d det(A) / dA = cof(A), the cofactor matrix: det(A) A^-T (Jacobi's formula) where A is
    # invertible; where det(A) is exactly 0 (LU met a zero pivot), from A = U S Vh:
    # cof(A) = det(U) det(Vh) U diag(gamma) Vh, gamma_i = prod_{k != i} S_k (as PyTorch)
    a, out = saved
    n = a.shape[-1]
    eye = _eye(ns, n, a.dtype)
    lead = tuple(out.shape)
    scale = g.reshape(lead + (1, 1))
    singular = out == 0
    if not bool(singular.any()):
        inverse = ns.linalg_solve(a, eye)
        return (scale * out.reshape(lead + (1, 1)) * ns.mT(inverse),)
    # NOTE: each branch gets a stand-in where the other applies (the identity to invert,
    # diag(1, ..., n), whose singular values are apart, to decompose), so neither its value
    # nor its gradient at higher order is inf or NaN
    picked = singular.reshape(lead + (1, 1))
    inverse = ns.linalg_solve(ns.where(picked, eye, a), eye)
    jacobi = out.reshape(lead + (1, 1)) * ns.mT(inverse)
    apart = _xp(ns).diag(_xp(ns).arange(1, n + 1)).astype(a.dtype)
    u, s, vh = svd_split(ns.linalg_svd(ns.where(picked, a, apart)), n, n)
    others = s.reshape(lead + (1, n)) * (1 - eye) + eye  # row i: S with S_i replaced by 1
    gamma = ns.prod(others, -1)
    sign = (ns.linalg_det(u) * ns.linalg_det(vh)).reshape(lead + (1, 1))
    cofactor = sign * ns.matmul(u * gamma.reshape(lead + (1, n)), vh)
    return (scale * ns.where(picked, cofactor, jacobi),)


LINALG_DET = register(
    "linalg_det", _det, _det_vjp, 1, Sample(shapes=lambda n, m: ((m, m),), domains=("matrix",))
)


def _sym(ns, a):
    return (a + ns.mT(a)) * 0.5


def _tril_mask(ns, n: int, dtype, k: int = 0):
    return _xp(ns).tri(n, n, k, dtype=dtype)


def _cholesky(ns, a, uplo=None):
    _square("cholesky", a)
    out = ns.linalg_cholesky(a, uplo)
    return out, out


def _cholesky_vjp(ns, g, low, needs):
    # A = L L^T, read as its symmetric part: dA = L^-T Phi(L^T G) L^-1, symmetrised, where Phi
    # keeps the lower triangle and halves the diagonal
    # NOTE: with ``uplo`` the forward reads one triangle, and the gradient is still this
    # symmetric one, spread over both triangles as in PyTorch: the derivative along symmetric
    # changes of A, not along changes of the triangle read
    n = low.shape[-1]
    phi = _tril_mask(ns, n, low.dtype) - _eye(ns, n, low.dtype) * 0.5
    p = ns.matmul(ns.mT(low), g) * phi
    # L^-T P L^-1 = solve(L^T, solve(L^T, P^T)^T)
    s = ns.linalg_solve(ns.mT(low), ns.mT(ns.linalg_solve(ns.mT(low), ns.mT(p))))
    return (_sym(ns, s),)


LINALG_CHOLESKY = register(
    "linalg_cholesky",
    _cholesky,
    _cholesky_vjp,
    1,
    Sample(shapes=lambda n, m: ((m, m),), domains=("matrix",)),
    saves_inputs=False,
)


def _eigh(ns, a, uplo=None):
    _square("eigh", a)
    out = ns.linalg_eigh(a, uplo)
    return out, (out[..., 0, :], out[..., 1:, :])


def _eigh_vjp(ns, g, saved, needs):
    # A = V diag(w) V^T (A read as its symmetric part): dA = V (diag(gw) + F o K) V^T with
    # K = (V^T gV - gV^T V) / 2 and F_ij = 1 / (w_j - w_i) off the diagonal
    w, v = saved
    gw, gv = g[..., 0, :], g[..., 1:, :]
    n = w.shape[-1]
    eye = _eye(ns, n, w.dtype)
    vg = ns.matmul(ns.mT(v), gv)
    skew = (vg - ns.mT(vg)) * 0.5
    gaps = w.reshape(tuple(w.shape[:-1]) + (1, n)) - w.reshape(tuple(w.shape) + (1,)) + eye
    inner = skew / gaps + gw.reshape(tuple(gw.shape[:-1]) + (1, n)) * eye
    # NOTE: symmetric; with ``uplo`` it is spread over both triangles, as in PyTorch (see
    # _cholesky_vjp)
    return (ns.matmul(ns.matmul(v, inner), ns.mT(v)),)


LINALG_EIGH = register(
    "linalg_eigh",
    _eigh,
    _eigh_vjp,
    1,
    Sample(shapes=lambda n, m: ((m, m),), domains=("matrix",)),
    saves_inputs=False,
)


def qr_split(packed, m: int, n: int):
    """Q (..., m, k) and R (..., k, n) out of linalg_qr's packed output."""
    k = min(m, n)
    lead = tuple(packed.shape[:-1])
    return packed[..., : m * k].reshape(lead + (m, k)), packed[..., m * k :].reshape(lead + (k, n))


def _qr(ns, a):
    m, n = a.shape[-2:] if a.ndim >= 2 else (0, 1)
    if m < n:  # tinygrad_mlp.linalg.qr splits wide matrices into a square part and the rest
        raise ShapeError(
            f"linalg_qr: expected matrices with at least as many rows as columns, got shape "
            f"{tuple(a.shape)}"
        )
    out = ns.linalg_qr(a)
    return out, (qr_split(out, m, n), m, n)


def _qr_vjp(ns, g, saved, needs):
    # A = QR (reduced, m >= n): M = R gR^T - gQ^T Q, dA = (gQ + Q copyltu(M)) R^-T, where
    # copyltu copies the lower triangle of M onto its upper one
    (q, r), m, n = saved
    gq, gr = qr_split(g, m, n)
    mm = ns.matmul(r, ns.mT(gr)) - ns.matmul(ns.mT(gq), q)
    low = mm * _tril_mask(ns, n, mm.dtype, -1)
    copied = low + ns.mT(low) + mm * _eye(ns, n, mm.dtype)
    b = gq + ns.matmul(q, copied)
    # B R^-T = (R^-1 B^T)^T
    return (ns.mT(ns.linalg_solve(r, ns.mT(b))),)


LINALG_QR = register(
    "linalg_qr",
    _qr,
    _qr_vjp,
    1,
    Sample(shapes=lambda n, m: ((m + 1, m),), domains=("matrix",)),
    saves_inputs=False,
)


def svd_split(packed, m: int, n: int):
    """U (..., m, k), S (..., k) and Vh (..., k, n) out of linalg_svd's packed output."""
    k = min(m, n)
    lead = tuple(packed.shape[:-1])
    u = packed[..., : m * k].reshape(lead + (m, k))
    s = packed[..., m * k : m * k + k]
    vh = packed[..., m * k + k :].reshape(lead + (k, n))
    return u, s, vh


def _svd(ns, a):
    if a.ndim < 2:
        raise ShapeError(f"linalg_svd: expected matrices, got shape {tuple(a.shape)}")
    m, n = a.shape[-2:]
    out = ns.linalg_svd(a)
    return out, (svd_split(out, m, n), m, n)


def _svd_vjp(ns, g, saved, needs):
    # A = U S Vh (reduced, distinct singular values), with E_jk = S_k^2 - S_j^2 off the diagonal
    # and skew(X) = X - X^T:
    # dA = U [(skew(U^T gU) / E) S + S (skew(V^T gV) / E) + diag(gS)] Vh
    #      + (I - U U^T) gU S^-1 Vh + U S^-1 gVh (I - V V^T)
    (u, s, vh), m, n = saved
    gu, gs, gvh = svd_split(g, m, n)
    k = min(m, n)
    eye = _eye(ns, k, s.dtype)
    row = s.reshape(tuple(s.shape[:-1]) + (1, k))  # S_k along a row
    col = s.reshape(tuple(s.shape) + (1,))  # S_j down a column
    gaps = row * row - col * col + eye
    ug = ns.matmul(ns.mT(u), gu)
    vg = ns.matmul(vh, ns.mT(gvh))
    inner = (ug - ns.mT(ug)) / gaps * row + col * ((vg - ns.mT(vg)) / gaps)
    inner = inner + gs.reshape(tuple(gs.shape[:-1]) + (1, k)) * eye
    out = ns.matmul(ns.matmul(u, inner), vh)
    if m > k:
        rest = (gu - ns.matmul(u, ug)) / row
        out = out + ns.matmul(rest, vh)
    if n > k:
        rest = (gvh - ns.matmul(ns.mT(vg), vh)) / col
        out = out + ns.matmul(u, rest)
    return (out,)


LINALG_SVD = register(
    "linalg_svd",
    _svd,
    _svd_vjp,
    1,
    Sample(shapes=lambda n, m: ((m + 1, m),), domains=("matrix",)),
    saves_inputs=False,
)
