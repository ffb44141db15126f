"""PyTorch's functions and Tensor methods beyond the core arithmetic: rounding, trigonometry,
running sums and products, sorting, indexing and scattering, triangles and diagonals, shape
moves, logic, products and stacking. Each is a function ``name(input, ...)`` here, exported as
``tm.name`` and (where PyTorch has one) attached as the Tensor method ``input.name(...)``;
everything is composed from the registry's ops, so gradients come from their rules. Sorting and
indexing are written in _tensor_indexing.py and exported from here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

# the in-place, shape and reduction methods, added to Tensor before the loops below look at it
from . import _creation, _inplace, _tensor_reductions, _tensor_shapes, backend  # noqa: F401
from . import ops as O
from ._conversion import _lift, _promote
from ._function_forms import _method_function
from ._inplace import _fit_inplace
from ._tensor import Tensor, _as_float, _binary, _one_dim, _sizes, matmul, where
from ._tensor_indexing import *  # noqa: F403  (sort, topk, scatter, ...: exported, and attached below)
from ._tensor_indexing import (
    _INT64,
    _added,
    _along,
    _exact,
    _int_array,
    _tensor,
    _xp,
    _zero_grad,
    std_mean,
    var_mean,
)
from .autograd.graph import _wrap, apply
from .backend import np

# ---------------------------------------------------------------- rounding


def floor(input: Tensor) -> Tensor:
    """The largest integer not above each element (its gradient is 0)."""
    return _rounded(input, "floor")


def ceil(input: Tensor) -> Tensor:
    """The smallest integer not below each element (its gradient is 0)."""
    return _rounded(input, "ceil")


def trunc(input: Tensor) -> Tensor:
    """Each element rounded toward zero (its gradient is 0)."""
    return _rounded(input, "trunc")


fix = trunc


def _rounded(x: Tensor, how: str) -> Tensor:
    x = _tensor(x)
    if x._data.dtype.kind in "biu":
        return _wrap(x._data.copy())
    return _zero_grad(x, getattr(_xp(x), how)(x._data))


def frac(input: Tensor) -> Tensor:
    """The fractional part, x - trunc(x), with the sign of x."""
    x = _tensor(input)
    if x._data.dtype.kind in "biu":
        raise NotImplementedError(f'"frac_cpu" not implemented for {x.dtype}')
    return x - trunc(x)


# ---------------------------------------------------------------- trigonometry

_LOG2 = math.log(2)


def tan(input: Tensor) -> Tensor:
    """Elementwise tangent."""
    x = _as_float(_tensor(input))
    return _exact(x.sin() / x.cos(), _xp(x).tan(x._data))


def atan(input: Tensor) -> Tensor:
    """Elementwise inverse tangent."""
    return apply(O.ATAN, _as_float(_tensor(input)))


def asin(input: Tensor) -> Tensor:
    """Elementwise inverse sine (NaN outside [-1, 1])."""
    return apply(O.ASIN, _as_float(_tensor(input)))


def acos(input: Tensor) -> Tensor:
    """Elementwise inverse cosine (NaN outside [-1, 1])."""
    return apply(O.ACOS, _as_float(_tensor(input)))


def atan2(input: Tensor, other: Any) -> Tensor:
    """The angle of the point (other, input): atan(input / other) in the right quadrant."""
    y = _tensor(input, other if isinstance(other, Tensor) else None)
    x = _lift(other, y)
    y, x = _promote(_as_float(y), _as_float(x))
    return _binary(O.ATAN2, y, x)


def sinh(input: Tensor) -> Tensor:
    """Elementwise hyperbolic sine."""
    x = _as_float(_tensor(input))
    # NOTE: (e^x - e^-x) / 2 loses every digit near 0; there expm1 keeps them. Far from 0,
    # e^(x - log 2) overflows only where sinh itself does.
    small = x.clamp(-1.0, 1.0)
    near = (small.expm1() - (-small).expm1()) * 0.5
    far = (x - _LOG2).exp() - (-x - _LOG2).exp()
    return where((x.abs() < 1)._data, near, far)


def cosh(input: Tensor) -> Tensor:
    """Elementwise hyperbolic cosine."""
    x = _as_float(_tensor(input))
    return (x - _LOG2).exp() + (-x - _LOG2).exp()


arctan, arcsin, arccos, arctan2 = atan, asin, acos, atan2


# ---------------------------------------------------------------- running sums and products


def cumsum(input: Tensor, dim: int, *, dtype: Any = None) -> Tensor:
    """The running sum along ``dim`` (bool and int tensors sum in int64)."""
    x = _tensor(input)
    x = x if dtype is None else x.to(dtype)
    if x.ndim == 0:
        _one_dim(dim, 0)
        return x.clone() if x._data.dtype.kind == "f" else x.to(_INT64)
    d = _one_dim(dim, x.ndim)
    if x._data.dtype.kind in "biu":
        return _wrap(_xp(x).cumsum(x._data, axis=d, dtype=np.int64))
    return apply(O.CUMSUM, x, axis=d)


def cumprod(input: Tensor, dim: int, *, dtype: Any = None) -> Tensor:
    """The running product along ``dim`` (exact gradients, zeros included)."""
    x = _tensor(input)
    x = x if dtype is None else x.to(dtype)
    if x.ndim == 0:
        _one_dim(dim, 0)
        return x.clone() if x._data.dtype.kind == "f" else x.to(_INT64)
    d = _one_dim(dim, x.ndim)
    if x._data.dtype.kind in "biu":
        return _wrap(_xp(x).cumprod(x._data, axis=d, dtype=np.int64))
    # NOTE: a scan in log2(n) steps, each multiplying by the running products `step` places
    # back: products only, so the gradient is exact where elements are zero
    n, lead, out, step = x.shape[d], (slice(None),) * d, x, 1
    while step < n:
        shifted = out[lead + (slice(0, n - step),)]
        head, tail = out[lead + (slice(0, step),)], out[lead + (slice(step, n),)]
        out = _cat([head, tail * shifted], d)
        step *= 2
    return out


def _cat(parts: Sequence[Tensor], dim: int) -> Tensor:
    return _creation.cat(list(parts), dim)


# ---------------------------------------------------------------- triangles and diagonals


def _triangle(name: str, x: Tensor, diagonal: int, lower: bool) -> Tensor:
    x = _tensor(x)
    if x.ndim < 2:
        raise RuntimeError(f"{name}: input tensor must have at least 2 dimensions")
    n, m = x.shape[-2:]
    keep = _xp(x).tri(n, m, diagonal, dtype=bool)
    if not lower:
        keep = ~_xp(x).tri(n, m, diagonal - 1, dtype=bool)
    return where(_xp(x).broadcast_to(keep, x.shape), x, _lift(0, x))


def tril(input: Tensor, diagonal: int = 0) -> Tensor:
    """The lower triangle of the last two dims (on and below ``diagonal``), zeros above."""
    return _triangle("tril", input, diagonal, True)


def triu(input: Tensor, diagonal: int = 0) -> Tensor:
    """The upper triangle of the last two dims (on and above ``diagonal``), zeros below."""
    return _triangle("triu", input, diagonal, False)


def _diagonal_positions(n: int, m: int, offset: int) -> tuple[Any, Any]:
    length = max(min(n, m - offset) if offset >= 0 else min(n + offset, m), 0)
    rows = np.arange(length) + max(-offset, 0)
    return rows, rows + offset


def diagonal(input: Tensor, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    """The diagonal of the planes (dim1, dim2), as the last dimension (a view)."""
    return _tensor(input).diagonal(offset, dim1, dim2)


_diagonal_of = diagonal  # diag's argument is named diagonal, as in PyTorch


def diag(input: Tensor, diagonal: int = 0) -> Tensor:
    """A 1-D input as the diagonal ``diagonal`` of a square matrix; a 2-D input's diagonal."""
    x = _tensor(input)
    if x.ndim == 2:
        return _diagonal_of(x, diagonal)
    if x.ndim != 1:
        raise RuntimeError(f"diag(): Supports 1D or 2D tensors. Got {x.ndim}D")
    return diag_embed(x, diagonal)


def diag_embed(input: Tensor, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
    """Matrices whose diagonal ``offset`` (in the new dims ``dim1``, ``dim2``) holds the last
    dimension of the input, zeros elsewhere."""
    x = _tensor(input)
    n = x.shape[-1] + abs(offset)
    ndim = x.ndim + 1
    a, b = _one_dim(dim1, ndim), _one_dim(dim2, ndim)
    if a == b:
        raise RuntimeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    rows, cols = _diagonal_positions(n, n, offset)
    device = x.device
    index = (Ellipsis, backend.to_device(rows, device), backend.to_device(cols, device))
    out = _added(_wrap(_xp(x).zeros(x.shape[:-1] + (n, n), x.dtype)), x, index)
    # the two new dims are last: move them to dim1 and dim2
    order = list(range(ndim - 2))
    for pos, src in sorted(((a, ndim - 2), (b, ndim - 1))):
        order.insert(pos, src)
    return out.permute(*order)


# ---------------------------------------------------------------- moving elements


def roll(input: Tensor, shifts: Any, dims: Any = None) -> Tensor:
    """The elements shifted by ``shifts`` along ``dims`` (the flattened tensor when None),
    wrapping around."""
    x = _tensor(input)
    shifts = (shifts,) if isinstance(shifts, int) else tuple(shifts)
    if dims is None:
        if len(shifts) != 1:
            raise RuntimeError(f"shifts and dimensions must align. shifts: {len(shifts)}, dims:0")
        return roll(x.reshape(-1), shifts, 0).reshape(*x.shape)
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    if len(shifts) != len(dims):
        raise RuntimeError(
            f"shifts and dimensions must align. shifts: {len(shifts)}, dims:{len(dims)}"
        )
    out = x
    for s, dim in zip(shifts, dims, strict=True):
        d = _one_dim(dim, x.ndim)
        n = x.shape[d]
        if n and s % n:
            positions = backend.to_device((np.arange(n) - s) % n, x.device)
            out = out[_along(d, positions)]
    return out


def rot90(input: Tensor, k: int = 1, dims: Sequence[int] = (0, 1)) -> Tensor:
    """The tensor turned by 90 degrees ``k`` times in the plane ``dims``, from the first
    towards the second."""
    x = _tensor(input)
    dims = tuple(dims)
    if len(dims) != 2:
        raise RuntimeError(f"expected total rotation dims == 2, but got dims = {len(dims)}")
    if x.ndim < 2:
        raise RuntimeError(f"expected total dims >= 2, but got total dims = {x.ndim}")
    a, b = _one_dim(dims[0], x.ndim), _one_dim(dims[1], x.ndim)
    if a == b:
        raise RuntimeError(
            f"expected rotation dims to be different, but got dim0 = {a} and dim1 = {b}"
        )
    k %= 4
    if k == 1:
        return x.flip(b).transpose(a, b)
    if k == 2:
        return x.flip(a, b)
    if k == 3:
        return x.flip(a).transpose(a, b)
    return x.clone()


def repeat_interleave(input: Tensor, repeats: Any = None, dim: Any = None, *,
                      output_size: Any = None) -> Tensor:  # fmt: skip
    """Each element (or slice along ``dim``) repeated ``repeats`` times in place."""
    x = _tensor(input)
    if repeats is None:  # repeat_interleave(repeats): the indices, each repeated
        counts = _int_array("repeat_interleave", x, x.device)
        return _wrap(_xp(x).repeat(_xp(x).arange(len(counts)), counts))
    if dim is None:
        x, d = x.reshape(-1), 0
    else:
        d = _one_dim(dim, x.ndim)
    n = x.shape[d] if x.ndim else 1
    counts = repeats._data if isinstance(repeats, Tensor) else np.asarray(repeats)
    counts = backend.to_numpy(counts).reshape(-1)
    if counts.size not in (1, n):
        raise RuntimeError(
            f"repeats must have the same size as input along dim, but got repeats.size(0) = "
            f"{counts.size} and input.size({d}) = {n}"
        )
    if (counts < 0).any():
        raise RuntimeError("repeats can not be negative")
    positions = np.repeat(np.arange(n), counts if counts.size == n else int(counts[0]))
    if x.ndim == 0:
        x = x.reshape(1)
    return x[_along(d, backend.to_device(positions, x.device))]


def tile(input: Tensor, dims: Sequence[int]) -> Tensor:
    """The tensor repeated ``dims[i]`` times along each dimension (1s prepended as needed)."""
    x = _tensor(input)
    dims = _sizes((dims,), "tile: dims") if not isinstance(dims, int) else (dims,)
    dims = (1,) * (x.ndim - len(dims)) + tuple(dims)
    return x.repeat(*dims)


def movedim(input: Tensor, source: Any, destination: Any) -> Tensor:
    """The dims ``source`` moved to the positions ``destination``, the others in order."""
    x = _tensor(input)
    src = (source,) if isinstance(source, int) else tuple(source)
    dst = (destination,) if isinstance(destination, int) else tuple(destination)
    if len(src) != len(dst):
        raise RuntimeError(
            f"movedim: Invalid source or destination dims: source ({list(src)} dims) should "
            f"contain the same number of dims as destination ({list(dst)} dims)"
        )
    src = tuple(_one_dim(s, x.ndim) for s in src)
    dst = tuple(_one_dim(s, x.ndim) for s in dst)
    if len(set(src)) != len(src) or len(set(dst)) != len(dst):
        raise RuntimeError(f"movedim: repeated dim in source ({src}) or destination ({dst})")
    rest = iter(i for i in range(x.ndim) if i not in src)
    placed = dict(zip(dst, src, strict=True))
    order = [placed[i] if i in placed else next(rest) for i in range(x.ndim)]
    return x.permute(*order) if x.ndim else x


moveaxis = movedim


def swapdims(input: Tensor, dim0: int, dim1: int) -> Tensor:
    """``dim0`` and ``dim1`` swapped."""
    return _tensor(input).transpose(dim0, dim1)


# ---------------------------------------------------------------- logic


def _truth(x: Any, name: str) -> Any:
    if not isinstance(x, Tensor):
        raise TypeError(
            f"{name}(): argument 'other' (position 2) must be Tensor, not {type(x).__name__}"
        )
    return x._data.astype(bool, copy=False)


def logical_and(input: Tensor, other: Tensor) -> Tensor:
    """Elementwise: both nonzero (bool)."""
    return _wrap(_truth(_tensor(input), "logical_and") & _truth(other, "logical_and"))


def logical_or(input: Tensor, other: Tensor) -> Tensor:
    """Elementwise: either nonzero (bool)."""
    return _wrap(_truth(_tensor(input), "logical_or") | _truth(other, "logical_or"))


def logical_xor(input: Tensor, other: Tensor) -> Tensor:
    """Elementwise: exactly one nonzero (bool)."""
    return _wrap(_truth(_tensor(input), "logical_xor") ^ _truth(other, "logical_xor"))


# ---------------------------------------------------------------- division with remainders


def _operands(input: Any, other: Any) -> tuple[Tensor, Tensor]:
    a = input if isinstance(input, Tensor) else _lift(input, other)
    return _promote(a, _lift(other, a))


def remainder(input: Any, other: Any) -> Tensor:
    """input - floor(input / other) * other: the remainder with the sign of ``other``
    (Python's %)."""
    if isinstance(input, (bool, int, float)) and isinstance(other, Tensor):
        return other.__rmod__(input)  # a number first: no derivative, as in PyTorch
    a, b = _operands(input, other)
    return a.remainder(b)


def fmod(input: Any, other: Any) -> Tensor:
    """input - trunc(input / other) * other: the remainder with the sign of ``input``."""
    a, b = _operands(input, other)
    xp = _xp(a)
    if a._data.dtype.kind in "biu":
        O.refuse_integer_division("fmod", a._data, b._data)
        return _wrap(xp.fmod(a._data, b._data))
    quotient = _zero_grad(a, xp.trunc(a._data / b._data))
    return _exact(a - quotient * b, xp.fmod(a._data, b._data))


def floor_divide(input: Any, other: Any) -> Tensor:
    """floor(input / other), elementwise (no gradient, as in PyTorch)."""
    a, b = _operands(input, other)
    return a // b


# ---------------------------------------------------------------- products


def mv(input: Tensor, vec: Tensor) -> Tensor:
    """The product of a matrix and a vector."""
    x = _tensor(input)
    if x.ndim != 2 or getattr(vec, "ndim", 0) != 1:
        raise RuntimeError(
            f"vector + matrix @ vector expected, got {x.ndim}, {x.ndim}, {getattr(vec, 'ndim', 0)}"
        )
    if x.shape[1] != vec.shape[0]:
        raise RuntimeError(
            f"size mismatch, got input ({x.shape[0]}), mat ({x.shape[0]}x{x.shape[1]}), "
            f"vec ({vec.shape[0]})"
        )
    return matmul(x, vec)


def _scaled_sum(input: Tensor, product: Tensor, beta: Any, alpha: Any) -> Tensor:
    product = product if alpha == 1 else product * alpha
    input = _tensor(input, product)
    if beta == 0:  # PyTorch ignores the input then (NaN and inf in it do not propagate)
        return product.expand(*np.broadcast_shapes(product.shape, input.shape))
    return (input if beta == 1 else input * beta) + product


def addmm(input: Tensor, mat1: Tensor, mat2: Tensor, *, beta: Any = 1, alpha: Any = 1):
    """beta * input + alpha * (mat1 @ mat2)."""
    if getattr(mat1, "ndim", 0) != 2 or getattr(mat2, "ndim", 0) != 2:
        raise RuntimeError(
            f"addmm: mat1 and mat2 must be matrices, got {getattr(mat1, 'ndim', 0)}-D and "
            f"{getattr(mat2, 'ndim', 0)}-D"
        )
    return _scaled_sum(input, matmul(mat1, mat2), beta, alpha)


def addmv(input: Tensor, mat: Tensor, vec: Tensor, *, beta: Any = 1, alpha: Any = 1):
    """beta * input + alpha * (mat @ vec)."""
    return _scaled_sum(input, mv(mat, vec), beta, alpha)


def baddbmm(input: Tensor, batch1: Tensor, batch2: Tensor, *, beta: Any = 1, alpha: Any = 1):
    """beta * input + alpha * (batch1 @ batch2) for batches of matrices."""
    return _scaled_sum(input, _tensor(batch1).bmm(batch2), beta, alpha)


def addbmm(input: Tensor, batch1: Tensor, batch2: Tensor, *, beta: Any = 1, alpha: Any = 1):
    """beta * input + alpha * the sum over the batch of batch1 @ batch2."""
    return _scaled_sum(input, _tensor(batch1).bmm(batch2).sum(0), beta, alpha)


_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def einsum(equation: str, *operands: Any) -> Tensor:
    """The sum over the repeated subscripts of ``equation`` of the products of ``operands``
    (numpy's and PyTorch's notation, with '...' and implicit output)."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    xs = [_tensor(x) for x in operands]
    eq = equation.replace(" ", "")
    inputs, arrow, out = eq.partition("->")
    subs = inputs.split(",")
    if len(subs) != len(xs):
        raise RuntimeError(
            "einsum(): more operands were provided than specified in the equation"
            if len(xs) > len(subs)
            else "einsum(): fewer operands were provided than specified in the equation"
        )
    used = set(c for c in eq if c.isalpha())
    spare = [c for c in _LETTERS if c not in used]
    widest = 0
    for s, x in zip(subs, xs, strict=True):
        if "..." in s:
            widest = max(widest, x.ndim - (len(s) - 3))
    ell = "".join(spare[:widest])
    full = []
    for s, x in zip(subs, xs, strict=True):
        named = len(s) - 3 if "..." in s else len(s)
        if "..." in s:
            s = s.replace("...", ell[widest - (x.ndim - named) :] if x.ndim > named else "")
        if len(s) != x.ndim or not all(c.isalpha() for c in s):
            raise RuntimeError(
                f"einsum(): the number of subscripts in the equation ({named}) does not match "
                f"the number of dimensions ({x.ndim}) for operand {len(full)}"
                + ("" if "..." in eq else " and no ellipsis was given")
            )
        full.append(s)
    if arrow:
        out = out.replace("...", ell)
    else:
        counts = {c: "".join(full).count(c) for c in set("".join(full))}
        out = ell + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ell))
    for c in out:
        if not any(c in s for s in full):
            raise RuntimeError(f"einsum(): output subscript {c} does not appear in the equation")
    sizes: dict[str, int] = {}
    for s, x in zip(full, xs, strict=True):
        for c, n in zip(s, x.shape, strict=True):
            if sizes.get(c, 1) not in (1, n) and n != 1:
                raise RuntimeError(
                    f"einsum(): operands do not broadcast with remapped shapes: subscript {c} "
                    f"has sizes {sizes[c]} and {n}"
                )
            sizes[c] = max(sizes.get(c, 1), n)
    prepared = []
    for k, (s, x) in enumerate(zip(full, xs, strict=True)):
        # size-1 dims broadcast; a repeated letter takes the diagonal; a letter that only this
        # operand has (and the output lacks) is summed out first
        target = tuple(sizes[c] for c in s)
        if x.shape != target:
            x = x.expand(*target)
        while len(set(s)) != len(s):
            c = next(c for c in s if s.count(c) > 1)
            i = s.index(c)
            j = s.index(c, i + 1)
            x = diagonal(x, 0, i, j)
            s = s[:i] + s[i + 1 : j] + s[j + 1 :] + c
        others = "".join(t for i, t in enumerate(full) if i != k) + out
        alone = [i for i, c in enumerate(s) if c not in others]
        if alone:
            x = x.sum(tuple(alone))
            s = "".join(c for i, c in enumerate(s) if i not in alone)
        prepared.append((s, x))
    full = [s for s, _ in prepared]
    xs = [x for _, x in prepared]
    kinds = {x._data.dtype.kind in "f" for x in xs}
    if kinds == {False}:
        xp = _xp(xs[0])
        return _wrap(xp.einsum(",".join(full) + "->" + out, *[x._data for x in xs]))
    dtypes = {x.dtype for x in xs if x._data.dtype.kind == "f"}
    if len(dtypes) > 1:
        raise RuntimeError(
            "einsum(): expected all operands to have the same dtype, got "
            f"{sorted(map(str, dtypes))}"
        )
    dtype = dtypes.pop()
    xs = [x if x.dtype == dtype else x.to(dtype) for x in xs]
    return apply(O.EINSUM, *xs, equation=",".join(full) + "->" + out)


def tensordot(a: Tensor, b: Tensor, dims: Any = 2) -> Tensor:
    """The sum of products over the last ``dims`` dims of ``a`` and the first of ``b`` (or
    over the dims listed in a pair of lists)."""
    a, b = _tensor(a), _tensor(b)
    if isinstance(dims, int) or (isinstance(dims, Tensor) and dims.ndim == 0):
        n = int(dims)
        if n < 0:
            raise RuntimeError(f"tensordot expects dims >= 0, but got dims={n}")
        da, db = list(range(a.ndim - n, a.ndim)), list(range(n))
    else:
        da, db = ([d] if isinstance(d, int) else list(d) for d in dims)
    if len(da) != len(db):
        raise RuntimeError(
            f"both dimension lists should have same length, got {len(da)} and {len(db)}"
        )
    la, lb = _LETTERS[: a.ndim], _LETTERS[a.ndim : a.ndim + b.ndim]
    lb = list(lb)
    for i, j in zip(da, db, strict=True):
        i, j = _one_dim(i, a.ndim), _one_dim(j, b.ndim)
        if a.shape[i] != b.shape[j]:
            raise RuntimeError(
                f"contracted dimensions need to match, but first has size {a.shape[i]} in dim "
                f"{i} and second has size {b.shape[j]} in dim {j}"
            )
        lb[j] = la[i]
    contracted = set(la[_one_dim(i, a.ndim)] for i in da)
    out = "".join(c for c in la if c not in contracted) + "".join(
        c for c in lb if c not in contracted
    )
    return einsum(f"{la},{''.join(lb)}->{out}", a, b)


def kron(input: Tensor, other: Tensor) -> Tensor:
    """The Kronecker product: every element of ``input`` times the whole of ``other``."""
    a = _tensor(input)
    b = _tensor(other, a)
    n = max(a.ndim, b.ndim)
    sa, sb = (1,) * (n - a.ndim) + a.shape, (1,) * (n - b.ndim) + b.shape
    wide = a.reshape(*[d for s in sa for d in (s, 1)]) * b.reshape(*[d for s in sb for d in (1, s)])
    return wide.reshape(*[p * q for p, q in zip(sa, sb, strict=True)])


# ---------------------------------------------------------------- stacking


def atleast_1d(*tensors: Any) -> Any:
    """Each tensor with at least one dimension."""
    out = [t if t.ndim >= 1 else t.reshape(1) for t in map(_tensor, _flat(tensors))]
    return out[0] if len(out) == 1 else tuple(out)


def atleast_2d(*tensors: Any) -> Any:
    """Each tensor with at least two dimensions (a vector becomes one row)."""
    out = [t if t.ndim >= 2 else t.reshape(1, -1) for t in map(_tensor, _flat(tensors))]
    return out[0] if len(out) == 1 else tuple(out)


def atleast_3d(*tensors: Any) -> Any:
    """Each tensor with at least three dimensions (as numpy's atleast_3d)."""
    out = []
    for t in map(_tensor, _flat(tensors)):
        if t.ndim == 0:
            t = t.reshape(1, 1, 1)
        elif t.ndim == 1:
            t = t.reshape(1, -1, 1)
        elif t.ndim == 2:
            t = t.unsqueeze(-1)
        out.append(t)
    return out[0] if len(out) == 1 else tuple(out)


def _flat(tensors: tuple) -> list:
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        return list(tensors[0])
    return list(tensors)


def _sequence(name: str, tensors: Any) -> list[Tensor]:
    if isinstance(tensors, Tensor) or not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{name}(): argument 'tensors' must be a tuple or list of Tensors")
    if not tensors:
        raise RuntimeError(f"{name} expects a non-empty TensorList")
    return [_tensor(t) for t in tensors]


def hstack(tensors: Sequence[Tensor]) -> Tensor:
    """The tensors side by side: along dim 0 for vectors, dim 1 otherwise."""
    ts = [atleast_1d(t) for t in _sequence("hstack", tensors)]
    return _cat(ts, 0 if ts[0].ndim == 1 else 1)


def vstack(tensors: Sequence[Tensor]) -> Tensor:
    """The tensors one above the other (vectors as rows)."""
    return _cat([atleast_2d(t) for t in _sequence("vstack", tensors)], 0)


row_stack = vstack


def dstack(tensors: Sequence[Tensor]) -> Tensor:
    """The tensors stacked along the third dimension."""
    return _cat([atleast_3d(t) for t in _sequence("dstack", tensors)], 2)


def column_stack(tensors: Sequence[Tensor]) -> Tensor:
    """The tensors as columns side by side (vectors become columns)."""
    ts = [t.reshape(-1, 1) if t.ndim <= 1 else t for t in _sequence("column_stack", tensors)]
    return _cat(ts, 1)


def meshgrid(*tensors: Any, indexing: str | None = None) -> tuple[Tensor, ...]:
    """Coordinate grids from 1-D tensors ('ij': matrix indexing, the default; 'xy':
    Cartesian, the first two dims swapped)."""
    ts = [_tensor(t) for t in _flat(tensors)]
    indexing = "ij" if indexing is None else indexing
    if indexing not in ("ij", "xy"):
        raise RuntimeError(
            f'torch.meshgrid: indexing must be one of "xy" or "ij", but received: {indexing}'
        )
    for t in ts:
        if t.ndim > 1:
            raise RuntimeError(
                f"torch.meshgrid: Expected 0D or 1D tensor in the tensor list but got: {t.ndim}D"
            )
    ts = [t.reshape(-1) for t in ts]
    swap = indexing == "xy" and len(ts) >= 2
    order = [1, 0, *range(2, len(ts))] if swap else list(range(len(ts)))
    shape = tuple(ts[i].shape[0] for i in order)
    out = []
    for k, t in enumerate(ts):
        axis = order.index(k)
        view = [1] * len(ts)
        view[axis] = t.shape[0]
        out.append(t.reshape(*view).expand(*shape))
    return tuple(out)


# ---------------------------------------------------------------- interpolation and friends


def clamp_min(input: Tensor, min: Any) -> Tensor:
    """Elementwise max(x, min)."""
    return _tensor(input).clamp(min=min)


def clamp_max(input: Tensor, max: Any) -> Tensor:
    """Elementwise min(x, max)."""
    return _tensor(input).clamp(max=max)


def lerp(input: Tensor, end: Any, weight: Any) -> Tensor:
    """input + weight * (end - input), computed from the nearer end as PyTorch does."""
    start = _as_float(_tensor(input))
    end = _lift(end, start)
    w = _lift(weight, start)
    diff = end - start
    # NOTE: PyTorch's two-sided formula: exact at weight 0 and at weight 1
    low = (w.abs() < 0.5)._data
    return where(low, start + w * diff, end - diff * (1 - w))


def addcmul(input: Tensor, tensor1: Tensor, tensor2: Tensor, *, value: Any = 1) -> Tensor:
    """input + value * tensor1 * tensor2."""
    product = _tensor(tensor1) * tensor2
    return _tensor(input, product) + (product if value == 1 else product * value)


def addcdiv(input: Tensor, tensor1: Tensor, tensor2: Tensor, *, value: Any = 1) -> Tensor:
    """input + value * tensor1 / tensor2 (true division)."""
    t1, t2 = _tensor(tensor1), _tensor(tensor2)
    if t1._data.dtype.kind in "biu" and t2._data.dtype.kind in "biu":
        raise RuntimeError(
            "Integer division with addcdiv is no longer supported, and in a future release "
            "addcdiv will perform a true division of tensor1 and tensor2. Use addcmul(input, "
            "tensor1, 1 / tensor2) for the old behaviour"
        )
    ratio = t1 / t2
    return _tensor(input, ratio) + (ratio if value == 1 else ratio * value)


# ---------------------------------------------------------------- in place


def _in_place(name: str, fn: Any):
    """``fn`` computed out of place and written into the tensor, on the tape as PyTorch records
    an in-place op when the tensor or an argument requires grad."""
    op = f"{name}_"

    def method(self: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        if self._recorded(op, *args, *kwargs.values()):
            return self._record(op, lambda t: fn(t, *args, **kwargs), True)
        out = _fit_inplace(op, fn(self.detach(), *args, **kwargs), self)
        self._data[...] = out._data
        self._bump()
        return self

    method.__name__ = method.__qualname__ = op
    method.__doc__ = f"``{name}`` written into this tensor in place."
    return method


def _method_of(name: str) -> Any:
    return lambda self, *args, **kwargs: getattr(self, name)(*args, **kwargs)


# every function here that PyTorch also has as a Tensor method
METHODS = (
    "floor ceil trunc fix frac tan atan asin acos atan2 arctan arcsin arccos arctan2 sinh cosh "
    "cumsum cumprod sort argsort msort topk kthvalue median mode aminmax narrow select "
    "index_select masked_select take scatter scatter_add scatter_reduce index_add index_fill "
    "index_copy tril triu diagonal diag diag_embed roll rot90 repeat_interleave tile movedim "
    "moveaxis logical_and logical_or logical_xor remainder fmod floor_divide mv addmm addmv "
    "baddbmm addbmm kron clamp_min clamp_max lerp addcmul addcdiv"
).split()

# the in-place forms: f"{name}_" computes ``name`` out of place and writes it in
IN_PLACE = (
    "floor ceil trunc fix frac tan atan asin acos atan2 arctan arcsin arccos arctan2 sinh cosh "
    "cumsum cumprod scatter scatter_add scatter_reduce index_add index_fill index_copy tril triu "
    "remainder fmod floor_divide addmm addmv baddbmm addbmm clamp_min clamp_max lerp addcmul "
    "addcdiv logical_and logical_or logical_xor "
    "relu sigmoid tanh exp expm1 log log1p log2 log10 neg sqrt rsqrt abs sin cos erf sign "
    "reciprocal square"
).split()

_functions = {name: globals()[name] for name in METHODS}
# NOTE: the Tensor class's own methods (views such as narrow, the registry's remainder, the
# in-place activations) stay; the loop adds only what the class lacks
for _name in METHODS:
    if _name not in vars(Tensor):
        setattr(Tensor, _name, _functions[_name])
for _name in IN_PLACE:
    if f"{_name}_" not in vars(Tensor):
        _fn = _functions.get(_name) or _method_of(_name)
        setattr(Tensor, f"{_name}_", _in_place(_name, _fn))
Tensor.logical_not_ = _in_place("logical_not", _method_of("logical_not"))


def _swapdims_(self: Tensor, dim0: int, dim1: int) -> Tensor:
    """This tensor with dimensions ``dim0`` and ``dim1`` swapped in place (the same memory)."""
    if self._recorded("swapdims_"):
        raise RuntimeError(
            "swapdims_: an in-place transpose of a tensor inside a graph is not supported; use "
            "the out-of-place swapdims (or transpose)"
        )
    d0, d1 = _one_dim(dim0, self.ndim), _one_dim(dim1, self.ndim)
    self._data = _xp(self).swapaxes(self._data, d0, d1)
    self._bump()
    return self


Tensor.swapdims_ = Tensor.swapaxes_ = Tensor.transpose_ = _swapdims_

Tensor.negative_ = Tensor.neg_
Tensor.absolute_ = Tensor.abs_

# the in-place forms that PyTorch also has at its top level (tm.relu_(x) is x.relu_())
TOP_LEVEL_IN_PLACE = (
    "clamp_min_ clamp_max_ relu_ sigmoid_ tanh_ exp_ log_ neg_ sqrt_ abs_ floor_ ceil_ trunc_ "
    "fix_ frac_ tan_ atan_ asin_ acos_ arctan_ arcsin_ arccos_ sinh_ cosh_ addmv_"
).split()
for _name in TOP_LEVEL_IN_PLACE:
    globals()[_name] = getattr(Tensor, _name)

__all__ = [
    *METHODS,
    "swapdims",
    "std_mean",
    "var_mean",
    "einsum",
    "tensordot",
    "hstack",
    "vstack",
    "row_stack",
    "dstack",
    "column_stack",
    "meshgrid",
    "atleast_1d",
    "atleast_2d",
    "atleast_3d",
    *TOP_LEVEL_IN_PLACE,
]
del _method_function
