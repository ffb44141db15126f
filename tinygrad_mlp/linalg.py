"""torch.linalg: norms, inverse, determinant, solve and the decompositions (Cholesky, eigh, QR,
SVD), differentiable as in PyTorch (the decompositions where their results are unique: distinct
eigenvalues and singular values)."""

from __future__ import annotations

import math
from collections import namedtuple
from typing import Any

from . import ops as O
from ._conversion import _lift
from ._creation import cat
from ._tensor import Tensor, _as_float, _one_dim, where
from ._tensor_maths import _tensor, _xp
from .autograd.graph import _wrap, apply
from .backend import LinAlgError, np, to_device

__all__ = [
    "LinAlgError",
    "norm",
    "vector_norm",
    "matrix_norm",
    "inv",
    "det",
    "solve",
    "cholesky",
    "eigh",
    "eigvalsh",
    "qr",
    "svd",
    "svdvals",
]

eigh_result = namedtuple("eigh", ["eigenvalues", "eigenvectors"])
qr_result = namedtuple("qr", ["Q", "R"])
svd_result = namedtuple("svd", ["U", "S", "Vh"])


def _matrices(name: str, A: Any, square: bool = True) -> Tensor:
    a = _as_float(_tensor(A))
    if a.ndim < 2:
        raise RuntimeError(f"linalg.{name}: The input tensor A must have at least 2 dimensions.")
    if square and a.shape[-1] != a.shape[-2]:
        raise RuntimeError(
            f"linalg.{name}: A must be batches of square matrices, but they are "
            f"{a.shape[-2]} by {a.shape[-1]} matrices"
        )
    return a


def _triangle(uplo: str) -> str:
    if uplo not in ("L", "U"):
        raise RuntimeError(f"Expected UPLO argument to be 'L' or 'U', but got {uplo}")
    return uplo


# ---------------------------------------------------------------- norms


def vector_norm(x: Any, ord: Any = 2, dim: Any = None, keepdim: bool = False, *,
                dtype: Any = None) -> Tensor:  # fmt: skip
    """The vector ``ord``-norm over ``dim`` (all elements when None)."""
    x = _as_float(_tensor(x) if dtype is None else _tensor(x).to(dtype))
    if isinstance(dim, list):
        dim = tuple(dim)
    if isinstance(ord, str):
        raise RuntimeError(f"linalg.vector_norm: ord must be a number, got {ord!r}")
    if ord == 0:
        # NOTE: a count, with a zero gradient for x (as PyTorch records it)
        zero = where(_xp(x).zeros(x.shape, dtype=bool), x, 0.0).sum(dim, keepdim)
        return (x != 0).sum(dim, keepdim).to(x.dtype) + zero
    return x.norm(ord, dim, keepdim)


def _reduce_both(x: Tensor, first: int, second: int, largest: bool, keepdim: bool) -> Tensor:
    """The largest (or smallest) over ``second`` of the absolute sums over ``first``."""
    sums = x.abs().sum(first, keepdim=True)
    out = sums.amax(second, keepdim=True) if largest else sums.amin(second, keepdim=True)
    return out if keepdim else out.squeeze((first, second))


def matrix_norm(A: Any, ord: Any = "fro", dim: tuple = (-2, -1), keepdim: bool = False, *,
                dtype: Any = None) -> Tensor:  # fmt: skip
    """The matrix norm ``ord`` ('fro', 'nuc', 1, -1, 2, -2, inf, -inf) over the two dims."""
    a = _as_float(_tensor(A) if dtype is None else _tensor(A).to(dtype))
    if a.ndim < 2:
        raise RuntimeError(
            "linalg.matrix_norm: The input tensor A must have at least 2 dimensions."
        )
    if len(dim) != 2:
        raise RuntimeError(f"linalg.matrix_norm: dim must be a 2-tuple. Got {tuple(dim)}")
    r, c = _one_dim(dim[0], a.ndim), _one_dim(dim[1], a.ndim)
    if r == c:
        raise RuntimeError(f"linalg.matrix_norm: dims must be different. Got ({r}, {c})")
    if ord == "fro":
        return a.norm(2, (r, c), keepdim)
    if ord in ("nuc", 2, -2):
        moved = a.movedim((r, c), (-2, -1))
        s = svdvals(moved)
        out = s.sum(-1) if ord == "nuc" else (s.amax(-1) if ord == 2 else s.amin(-1))
        if keepdim:
            for d in sorted((r, c)):
                out = out.unsqueeze(d)
        return out
    if ord in (1, -1):
        return _reduce_both(a, r, c, ord == 1, keepdim)
    if ord in (math.inf, -math.inf):
        return _reduce_both(a, c, r, ord == math.inf, keepdim)
    raise RuntimeError(f"linalg.matrix_norm: Order {ord} not supported.")


def norm(A: Any, ord: Any = None, dim: Any = None, keepdim: bool = False, *,
         dtype: Any = None) -> Tensor:  # fmt: skip
    """A vector norm (1-D input or an int ``dim``) or a matrix norm (2-D input or two dims);
    with neither ``ord`` nor ``dim``, the 2-norm of all elements."""
    a = _tensor(A)
    if isinstance(dim, int):
        dim = (dim,)
    if dim is not None:
        dim = tuple(dim)
        if len(dim) == 1:
            return vector_norm(a, 2 if ord is None else ord, dim, keepdim, dtype=dtype)
        return matrix_norm(a, "fro" if ord is None else ord, dim, keepdim, dtype=dtype)
    if ord is None:
        return vector_norm(a, 2, None, keepdim, dtype=dtype)
    if a.ndim == 1:
        return vector_norm(a, ord, None, keepdim, dtype=dtype)
    if a.ndim == 2:
        return matrix_norm(a, ord, (-2, -1), keepdim, dtype=dtype)
    raise RuntimeError(
        f"linalg.norm: If dim is not specified but ord is, the input must be 1D or 2D. Got "
        f"{a.ndim}D."
    )


# ---------------------------------------------------------------- inverse, determinant, solve


def _eye_like(a: Tensor) -> Tensor:
    n = a.shape[-1]
    return _wrap(to_device(np.eye(n, dtype=a.dtype), a.device))


def inv(A: Any) -> Tensor:
    """The inverse of each square matrix (a LinAlgError, a RuntimeError, when singular)."""
    a = _matrices("inv", A)
    return apply(O.LINALG_SOLVE, a, _eye_like(a))


def det(A: Any) -> Tensor:
    """The determinant of each square matrix."""
    return apply(O.LINALG_DET, _matrices("det", A))


def solve(A: Any, B: Any, *, left: bool = True) -> Tensor:
    """X with A X = B (``left=False``: X A = B); B is a vector, or a batch of them, when it
    has one dimension fewer than A and the same leading sizes."""
    a = _matrices("solve", A)
    b = _lift(B, a)
    if b.dtype != a.dtype:
        if b.dtype.kind == "f":
            raise RuntimeError(
                f"linalg.solve: Expected A and B to have the same dtype, but found A of type "
                f"{a.dtype} and B of type {b.dtype} instead"
            )
        b = b.to(a.dtype)
    if not left:
        return solve(a.mT, b.mT).mT
    vector = b.ndim == 1 or (b.ndim == a.ndim - 1 and b.shape == a.shape[:-1])
    rhs = b.unsqueeze(-1) if vector else b
    if rhs.ndim < 2 or rhs.shape[-2] != a.shape[-1]:
        raise RuntimeError(
            f"linalg.solve: Incompatible shapes of A and B for the equation AX = B "
            f"({a.shape[-2]}x{a.shape[-1]} and {'x'.join(map(str, b.shape))})"
        )
    out = apply(O.LINALG_SOLVE, a, rhs)
    return out.squeeze(-1) if vector else out


# ---------------------------------------------------------------- decompositions


def cholesky(A: Any, *, upper: bool = False) -> Tensor:
    """The lower factor L of A = L L^T (``upper``: L^T), for symmetric positive-definite A
    (only the lower triangle is read; with ``upper`` the upper one)."""
    low = apply(O.LINALG_CHOLESKY, _matrices("cholesky", A), uplo="U" if upper else "L")
    return low.mT if upper else low


def eigh(A: Any, UPLO: str = "L") -> Any:
    """(eigenvalues, eigenvectors) of symmetric matrices, eigenvalues ascending, eigenvectors
    as columns (each with its largest entry positive); only the triangle ``UPLO`` is read."""
    packed = apply(O.LINALG_EIGH, _matrices("eigh", A), uplo=_triangle(UPLO))
    return eigh_result(packed[..., 0, :], packed[..., 1:, :])


def eigvalsh(A: Any, UPLO: str = "L") -> Tensor:
    """The eigenvalues of symmetric matrices, ascending."""
    return eigh(A, UPLO).eigenvalues


def qr(A: Any, mode: str = "reduced") -> Any:
    """(Q, R) with A = Q R, Q with orthonormal columns and R upper triangular (LAPACK's
    signs, as PyTorch's); mode 'reduced', 'complete' or 'r' (Q empty)."""
    if mode not in ("reduced", "complete", "r"):
        raise RuntimeError(
            f"qr received unrecognized mode '{mode}' but expected one of 'reduced' (default), "
            "'r', or 'complete'"
        )
    a = _matrices("qr", A, square=False)
    m, n = a.shape[-2:]
    if mode == "complete" and m > n:
        if a.requires_grad:
            raise RuntimeError(
                "The QR decomposition is not differentiable when mode='complete' and nrows > "
                "ncols; use mode='reduced', or detach the input"
            )
        xp = _xp(a)
        q, r = xp.linalg.qr(a._data, mode="complete")
        return qr_result(_wrap(q), _wrap(r))
    if m < n:
        # NOTE: A = [X | Y] with X square: X = Q R_x, and R = [R_x | Q^T Y] (differentiable)
        q, r = qr(a[..., :, :m])
        r = _cat_last(r, q.mT @ a[..., :, m:])
    else:
        q, r = O.qr_split(apply(O.LINALG_QR, a), m, n)
    if mode == "r":
        return qr_result(_wrap(_xp(a).zeros(0, a.dtype)), r)
    return qr_result(q, r)


def _cat_last(a: Tensor, b: Tensor) -> Tensor:
    return cat([a, b], -1)


def svd(A: Any, full_matrices: bool = True) -> Any:
    """(U, S, Vh) with A = U diag(S) Vh, S descending (each column of U with its largest entry
    positive). With ``full_matrices`` U and Vh are square; their extra columns (rows) carry no
    gradient, as in PyTorch."""
    a = _matrices("svd", A, square=False)
    m, n = a.shape[-2:]
    u, s, vh = O.svd_split(apply(O.LINALG_SVD, a), m, n)
    if not full_matrices or m == n:
        return svd_result(u, s, vh)
    xp = _xp(a)
    full_u, _, full_vh = xp.linalg.svd(a._data, full_matrices=True)
    k = min(m, n)
    if m > k:
        u = _cat_last(u, _wrap(full_u[..., :, k:]))
    if n > k:
        vh = _cat_last(vh.mT, _wrap(xp.swapaxes(full_vh[..., k:, :], -1, -2))).mT
    return svd_result(u, s, vh)


def svdvals(A: Any) -> Tensor:
    """The singular values of each matrix, descending."""
    a = _matrices("svdvals", A, square=False)
    m, n = a.shape[-2:]
    return O.svd_split(apply(O.LINALG_SVD, a), m, n)[1]


def _det_method(self: Tensor) -> Tensor:
    """The determinant of each square matrix."""
    return det(self)


def _inverse_method(self: Tensor) -> Tensor:
    """The inverse of each square matrix."""
    return inv(self)


Tensor.det = _det_method
Tensor.inverse = _inverse_method
