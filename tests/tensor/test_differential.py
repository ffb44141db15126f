"""Differential test: small generated programs run on tinygrad_mlp and on PyTorch, compared.

A program is data: input arrays plus a list of steps ``(name, args)``; one interpreter runs it
with either library (``lib`` is the module ``tinygrad_mlp`` or ``torch``). An argument
``("v", k)`` names an earlier value, anything else is passed as it is. Every value a step makes
is compared (values, dtype, shape, requires_grad), then the gradients of every leaf, and
whether a step raised: both libraries raise, or neither, and where both raise, ours is an
instance of the built-in exception type PyTorch raises. A refusal on one side only must be one
of the kinds listed in KNOWN_REFUSALS (each explained in docs/tensor.md's "What still differs
from PyTorch"); a silent difference always fails.

Inputs are float64 (with int64, bool and 0-d operands and Python numbers among them). Each test
function runs its ``max_examples`` programs; TINYGRAD_MLP_DIFF_SCALE scales them all (e.g. 0.05
while editing). With ``-s`` each function prints its counts.
"""

from __future__ import annotations

import math
import operator
import os
import warnings
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinygrad_mlp as tm

torch = pytest.importorskip("torch")

SCALE = float(os.environ.get("TINYGRAD_MLP_DIFF_SCALE", "1"))
RTOL, ATOL = 1e-7, 1e-10

# one-sided refusals that are known and explained in the README (kind: why), by step name and
# by the side that refuses
_FLOAT_ONLY = "PyTorch refuses integer input; ours computes in float32"
KNOWN_REFUSALS = {
    # PyTorch refuses a second backward through any node that saved tensors; ours refuses only
    # where the rule reads saved arrays (where's mask and an index are kept)
    ("backward2", "torch"): "a second backward through where / advanced indexing",
    **{
        (name, "torch"): _FLOAT_ONLY
        for name in (
            "gelu",
            "gelu_tanh",
            "mish",
            "silu",
            "selu",
            "elu",
            "celu",
            "leaky_relu",
            "softplus",
            "logsigmoid",
            "hardswish",
            "hardsigmoid",
            "relu6",
            "relu",
            "hardtanh",
            "softmax",
            "log_softmax",
            "logsumexp",
            "tanh",
            "sigmoid",
            "exp",
            "log",
            "sqrt",
            "rsqrt",
            "sin",
            "cos",
            "erf",
            "expm1",
            "log1p",
            "log2",
            "reciprocal",
        )
    },  # fmt: skip
    ("masked_fill", "torch"): "a value of a higher kind than the tensor, or a value with dims",
    ("masked_fill_", "torch"): "a value of a higher kind than the tensor",
    ("maximum", "torch"): "maximum/minimum given Python numbers or mixed dtypes",
    ("minimum", "torch"): "maximum/minimum given Python numbers or mixed dtypes",
    ("where", "torch"): "where given two Python numbers of different kinds",
    ("clamp", "torch"): "clamp of a bool tensor, or int bounds mixed with a tensor",
    ("clamp_", "torch"): "clamp_ of an int tensor with float bounds",
    ("argmax", "torch"): "argmax/argmin of a bool tensor",
    ("argmin", "torch"): "argmax/argmin of a bool tensor",
    ("sub_alpha", "torch"): "a float alpha with integer tensors",
    ("add_alpha", "torch"): "a float alpha with integer tensors",
    ("prod", "torch"): "prod of a bool tensor over a tuple of dims",
    ("mean", "torch"): "mean with dim=() or a repeated dim",
    # PyTorch's own gaps, named by _refusal from its message (never a step's or mode's name)
    ("bool base", "torch"): "the backward of a Python bool raised to a tensor power fails an "
    "internal assert in PyTorch (c10's Scalar of a bool); ours is that of 0.0 or 1.0 ** x",
    ("hardsigmoid double backward", "torch"): "PyTorch has no derivative of hardsigmoid's "
    "backward; ours is 0 (hardsigmoid is piecewise linear)",
    # ours, named by _refusal from our message: PyTorch accepts it and fails in the backward
    ("grad into an integer tensor", "tinygrad_mlp"): "writing a value that requires grad into an "
    "integer or bool tensor (PyTorch marks that tensor as requiring grad; its backward fails)",
}

# a piece of PyTorch's message: the name its refusal is listed under in KNOWN_REFUSALS
_TORCH_GAPS = {
    "unknown ivalue tag": "bool base",
    "derivative for aten::hardsigmoid_backward is not implemented": "hardsigmoid double backward",
    "only floating point tensors can require gradients": "grad into an integer tensor",
}


def _refusal(name: str, e: Exception) -> tuple:
    """The record of a refusal: one of PyTorch's own gaps by its name, else the step's name;
    then the exception's type and its message."""
    message = str(e)
    for piece, gap in _TORCH_GAPS.items():
        if piece in message:
            return ("raised", gap, type(e), message)
    return ("raised", name, type(e), message)


def _same_refusal(ours: type, theirs: type) -> bool:
    """Ours is an instance of the built-in type PyTorch raises (the first in its MRO)."""
    return issubclass(ours, next(c for c in theirs.__mro__ if c.__module__ == "builtins"))


COUNTS: Counter = Counter()
# TINYGRAD_MLP_DIFF_COLLECT=1: record differences instead of failing at the first (for a survey)
COLLECT = os.environ.get("TINYGRAD_MLP_DIFF_COLLECT") == "1"
FOUND: list = []


def _fail(message: str) -> None:
    if COLLECT:
        FOUND.append(message)
        return
    pytest.fail(message)


def _settings(n: int):
    return settings(
        max_examples=max(1, int(n * SCALE)),
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


# ---------------------------------------------------------------- the interpreter


class Refused(Exception):
    """A step raised in exactly one library."""


def _is_tensor(lib, v) -> bool:
    return isinstance(v, lib.Tensor)


def _dtype_name(dtype) -> str:
    return str(dtype).split(".")[-1]


def _record(lib, v):
    """A comparable form of a step's value."""
    if v is None:
        return None
    if _is_tensor(lib, v):
        data = v.detach()
        # a copy: a later in-place step must not change it (force: PyTorch's gradient of zeros
        # through abs or sign may be a ZeroTensor, which numpy() refuses without it)
        array = np.array(data.numpy(force=True) if lib is torch else data.numpy())
        return ("tensor", _dtype_name(v.dtype), tuple(v.shape), bool(v.requires_grad), array)
    if isinstance(v, (bool, int, float)):
        return ("number", type(v).__name__, float(v))
    if isinstance(v, (tuple, list)):
        return ("seq", len(v))
    return ("other", type(v).__name__)


def _close(a, b) -> bool:
    if a is None or b is None:
        return a is b
    if a[0] != b[0]:
        return False
    if a[0] == "number":
        return a[1] == b[1] and (
            a[2] == b[2] or (math.isnan(a[2]) and math.isnan(b[2])) or _near(a[2], b[2])
        )
    if a[0] != "tensor":
        return a == b
    if a[1:4] != b[1:4]:
        return False
    x, y = a[4], b[4]
    if np.array_equal(x, y):
        return True
    if x.dtype.kind in "biu" or y.dtype.kind in "biu":
        return False
    rtol, atol = (RTOL, ATOL) if x.dtype == np.float64 else (1e-5, 1e-6)
    return bool(np.allclose(x, y, rtol=rtol, atol=atol, equal_nan=True))


def _near(x: float, y: float) -> bool:
    return abs(x - y) <= ATOL + RTOL * abs(y)


def _arg(vals, a):
    if isinstance(a, tuple) and len(a) == 2 and a[0] == "v":
        return vals[a[1] % len(vals)]
    if isinstance(a, list):
        return [_arg(vals, x) for x in a]
    return a


def _make_inputs(lib, inputs):
    out = []
    for kind, shape, values, grad in inputs:
        n = math.prod(shape)
        flat = np.resize(np.asarray(values, dtype=np.float64), n)
        if kind == "f64":
            arr = flat.reshape(shape)
        elif kind == "i64":
            arr = np.round(np.clip(np.where(flat == flat, flat, 0), -9, 9)).astype(np.int64)
            arr = arr.reshape(shape)
        else:
            arr = (flat > 0).reshape(shape)
        t = torch.from_numpy(arr) if lib is torch else tm.tensor(arr)
        out.append(t.requires_grad_(True) if grad and kind == "f64" else t)
    return out


def run(lib, inputs, steps, table, finish=None):
    """Run a program with ``lib``: (records of each value, or a Refused/None marker per step,
    and the leaves' gradients)."""
    vals = _make_inputs(lib, inputs)
    leaves = list(vals)
    records = []
    for name, args in steps:
        fn = table[name]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with np.errstate(all="ignore"):
                    out = fn(lib, *[_arg(vals, a) for a in args])
        except Exception as e:  # noqa: BLE001 - any refusal is compared with the other side's
            records.append(_refusal(name, e))
            vals.append(None)
            continue
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        for o in outs:
            records.append((name, _record(lib, o)))
            vals.append(o)
    if finish is not None:
        records.extend(finish(lib, vals, leaves))
    return records


def _loss_of(lib, vals):
    """The sum of every float value that requires grad, each weighted by a fixed pattern."""
    total = None
    for v in vals:
        if _is_tensor(lib, v) and v.requires_grad and v.dtype in (lib.float64, lib.float32):
            term = (v * _weight(lib, tuple(v.shape), v.dtype)).sum()
            total = term if total is None else total + term
    return total


_WEIGHTS: dict = {}


def _weight(lib, shape, dtype):
    """A fixed, uneven weighting of a value's elements (so that misplaced gradients show)."""
    key = (lib.__name__, shape, str(dtype))
    w = _WEIGHTS.get(key)
    if w is None:
        arr = (np.cos(np.arange(math.prod(shape))) + 1.5).reshape(shape)
        w = _WEIGHTS[key] = (torch.from_numpy(arr) if lib is torch else tm.tensor(arr)).to(dtype)
    return w


def _backward_records(lib, vals, leaves):
    loss = _loss_of(lib, vals)
    if loss is None:
        return []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with np.errstate(all="ignore"):
                loss.backward()
    except Exception as e:  # noqa: BLE001
        return [_refusal("backward", e)]
    return [("grad", _record(lib, leaf.grad)) for leaf in leaves]


def compare(inputs, steps, table, finish=_backward_records, family: str = ""):
    """Run on both libraries and compare; counts what it sees."""
    COUNTS[f"{family}: programs"] += 1
    COUNTS["programs"] += 1
    ours = run(tm, inputs, steps, table, finish)
    theirs = run(torch, inputs, steps, table, finish)
    for k in range(max(len(ours), len(theirs))):
        a = ours[k] if k < len(ours) else None
        b = theirs[k] if k < len(theirs) else None
        a_raised = a is not None and a[0] == "raised"
        b_raised = b is not None and b[0] == "raised"
        if a_raised and b_raised:
            COUNTS["both refused"] += 1
            if not _same_refusal(a[2], b[2]):
                kind = f"{a[1]} ({a[2].__name__} vs {b[2].__name__})"
                COUNTS[f"refusal types differ: {kind}"] += 1
                return _fail(
                    f"refusal types differ at step {k}, {kind}: ours {a[3]!r}, theirs {b[3]!r}"
                    f"\ninputs={inputs}\nsteps={steps}"
                )
            continue
        if a_raised or b_raised:
            name = (a if a_raised else b)[1]
            side = "tinygrad_mlp" if a_raised else "torch"
            kind = (name, side)
            COUNTS[f"refused by {side} only: {name}"] += 1
            if kind in KNOWN_REFUSALS:
                return
            return _fail(
                f"refused by {side} only at step {k} ({name}): ours={a} theirs={b}\n"
                f"inputs={inputs}\nsteps={steps}"
            )
        if a is None or b is None or a[0] != b[0] or not _close(a[1], b[1]):
            COUNTS["silent differences"] += 1
            return _fail(
                f"silent difference at record {k}:\n ours  ={a}\n theirs={b}\n"
                f"inputs={inputs}\nsteps={steps}"
            )


@pytest.fixture(scope="module", autouse=True)
def _print_counts():
    """With ``-s``: the programs run, the refusals on both sides and on one side by kind."""
    yield
    print("\n[differential] " + "; ".join(f"{k}: {COUNTS[k]}" for k in sorted(COUNTS)))
    for message in FOUND:
        print("[differential] " + message.replace("\n", " | "))


# ---------------------------------------------------------------- inputs

SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 3.0, -3.0, 6.0, 1.5, -1.5, 0.25]
FINITE = st.one_of(st.sampled_from(SPECIAL), st.floats(-4, 4, allow_nan=False, width=64))
WILD = st.one_of(FINITE, st.sampled_from([math.inf, -math.inf, math.nan, 1e200, -1e200]))
SHAPES = [(), (3,), (1, 3), (2, 3), (2, 1), (2, 1, 3), (1,)]


def _inputs(kinds=("f64", "f64", "f64", "i64", "bool"), values=FINITE, shapes=SHAPES, n=(1, 4)):
    one = st.tuples(
        st.sampled_from(kinds),
        st.sampled_from(shapes),
        st.lists(values, min_size=1, max_size=6),
        st.booleans(),
    )
    return st.lists(one, min_size=n[0], max_size=n[1]).map(
        lambda xs: [(k, s, v, g or k == "f64" and i == 0) for i, (k, s, v, g) in enumerate(xs)]
    )


def V(k: int):
    return ("v", k)


REF = st.integers(0, 30).map(V)
NUMBER = st.sampled_from([0, 1, 2, -1, 3, 0.5, -1.5, 2.0, 0.0, True, False, 1e-3])


# ---------------------------------------------------------------- elementwise maths


def _F(lib):
    return lib.nn.functional


_OPERATORS = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "truediv": operator.truediv,
    "floordiv": operator.floordiv,
    "mod": operator.mod,
    "pow": operator.pow,
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
    "and": operator.and_,
    "or": operator.or_,
    "xor": operator.xor,
}


def _operator(f):
    return lambda lib, a, b: f(a, b)


ELEMENTWISE = {name: _operator(f) for name, f in _OPERATORS.items()}
ELEMENTWISE["neg"] = lambda lib, a: -a
ELEMENTWISE["invert"] = lambda lib, a: ~a
ELEMENTWISE.update(
    {
        "add_alpha": lambda lib, a, b: a.add(b, alpha=2),
        "sub_alpha": lambda lib, a, b: a.sub(b, alpha=0.5),
        "maximum": lambda lib, a, b: lib.maximum(a, b),
        "minimum": lambda lib, a, b: lib.minimum(a, b),
        "div_floor": lambda lib, a, b: a.div(b, rounding_mode="floor"),
        "div_trunc": lambda lib, a, b: a.div(b, rounding_mode="trunc"),
        "remainder": lambda lib, a, b: a.remainder(b),
        "clamp": lambda lib, a, lo, hi: a.clamp(min=lo, max=hi),
        "clamp_min": lambda lib, a, lo: a.clamp(min=lo),
        "clamp_max_t": lambda lib, a, hi: a.clamp(max=hi),
        "where": lambda lib, c, a, b: lib.where(c > 0, a, b),
        "masked_fill": lambda lib, a, c, v: a.masked_fill(c > 0, v),
        "abs": lambda lib, a: a.abs(),
        "exp": lambda lib, a: a.exp(),
        "log": lambda lib, a: a.log(),
        "sqrt": lambda lib, a: a.sqrt(),
        "rsqrt": lambda lib, a: a.rsqrt(),
        "sin": lambda lib, a: a.sin(),
        "cos": lambda lib, a: a.cos(),
        "tanh": lambda lib, a: a.tanh(),
        "sigmoid": lambda lib, a: a.sigmoid(),
        "relu": lambda lib, a: a.relu(),
        "sign": lambda lib, a: a.sign(),
        "round": lambda lib, a: a.round(),
        "square": lambda lib, a: a.square(),
        "reciprocal": lambda lib, a: a.reciprocal(),
        "expm1": lambda lib, a: a.expm1(),
        "log1p": lambda lib, a: a.log1p(),
        "log2": lambda lib, a: a.log2(),
        "erf": lambda lib, a: a.erf(),
        "logical_not": lambda lib, a: a.logical_not(),
        "isnan": lambda lib, a: a.isnan(),
        "isinf": lambda lib, a: a.isinf(),
        "float": lambda lib, a: a.float(),
        "double": lambda lib, a: a.double(),
        "long": lambda lib, a: a.long(),
        "bool": lambda lib, a: a.bool(),
        "pow_scalar": lambda lib, a, c: a**c,
        "rpow_scalar": lambda lib, a, c: c**a,
        "leaky_relu": lambda lib, a, s: _F(lib).leaky_relu(a, float(s)),
        "elu": lambda lib, a, s: _F(lib).elu(a, float(s) or 1.0),
        "selu": lambda lib, a: _F(lib).selu(a),
        "celu": lambda lib, a, s: _F(lib).celu(a, float(s) or 1.0),
        "gelu": lambda lib, a: _F(lib).gelu(a),
        "gelu_tanh": lambda lib, a: _F(lib).gelu(a, approximate="tanh"),
        "silu": lambda lib, a: _F(lib).silu(a),
        "softplus": lambda lib, a, b: _F(lib).softplus(a, beta=float(b) or 1.0, threshold=2.0),
        "mish": lambda lib, a: _F(lib).mish(a),
        "hardtanh": lambda lib, a: _F(lib).hardtanh(a, -0.5, 1.5),
        "relu6": lambda lib, a: _F(lib).relu6(a),
        "logsigmoid": lambda lib, a: _F(lib).logsigmoid(a),
        "hardsigmoid": lambda lib, a: _F(lib).hardsigmoid(a),
        "hardswish": lambda lib, a: _F(lib).hardswish(a),
    }
)

_UNARY = [k for k, f in ELEMENTWISE.items() if f.__code__.co_argcount == 2]
_BINARY = [k for k, f in ELEMENTWISE.items() if f.__code__.co_argcount == 3]
_TERNARY = [k for k, f in ELEMENTWISE.items() if f.__code__.co_argcount == 4]
_OPERAND = st.one_of(REF, REF, REF, NUMBER)
_ELEMENTWISE_STEP = st.one_of(
    st.tuples(st.sampled_from(_UNARY), st.tuples(REF)),
    st.tuples(st.sampled_from(_BINARY), st.tuples(_OPERAND, _OPERAND)),
    st.tuples(st.sampled_from(_TERNARY), st.tuples(REF, _OPERAND, _OPERAND)),
)
_SCALAR_ARG = {"pow_scalar", "rpow_scalar", "leaky_relu", "elu", "celu", "softplus"}


def _fix_scalar_args(steps):
    """Ops whose second argument is a number by their signature get a number."""
    out = []
    for name, args in steps:
        if name in _SCALAR_ARG and isinstance(args[1], tuple):
            args = (args[0], 0.5 + (args[1][1] % 4))
        out.append((name, args))
    return out


ELEMENTWISE_PROGRAMS = st.tuples(
    _inputs(), st.lists(_ELEMENTWISE_STEP, min_size=1, max_size=5).map(_fix_scalar_args)
)


@_settings(6000)
@given(ELEMENTWISE_PROGRAMS)
def test_elementwise_programs(program):
    inputs, steps = program
    compare(inputs, steps, ELEMENTWISE, family="elementwise")


@pytest.mark.slow
@_settings(1500)
@given(st.tuples(_inputs(values=WILD), st.lists(_ELEMENTWISE_STEP, min_size=1, max_size=4)))
def test_elementwise_programs_with_inf_and_nan(program):
    inputs, steps = program
    compare(inputs, _fix_scalar_args(steps), ELEMENTWISE, family="elementwise-wild")


# ---------------------------------------------------------------- reductions

DIMS = st.sampled_from([None, 0, 1, -1, (0, 1), 2, (0, -1)])
REDUCTIONS = {
    "sum": lambda lib, a, d, k: a.sum() if d is None else a.sum(d, keepdim=k),
    "mean": lambda lib, a, d, k: a.mean() if d is None else a.mean(d, keepdim=k),
    "prod": lambda lib, a, d, k: a.prod() if not isinstance(d, int) else a.prod(d, keepdim=k),
    "amax": lambda lib, a, d, k: a.amax() if d is None else a.amax(d, keepdim=k),
    "amin": lambda lib, a, d, k: a.amin() if d is None else a.amin(d, keepdim=k),
    "max": lambda lib, a, d, k: a.max() if not isinstance(d, int) else tuple(a.max(d, k)),
    "min": lambda lib, a, d, k: a.min() if not isinstance(d, int) else tuple(a.min(d, k)),
    "argmax": lambda lib, a, d, k: a.argmax() if not isinstance(d, int) else a.argmax(d, k),
    "argmin": lambda lib, a, d, k: a.argmin() if not isinstance(d, int) else a.argmin(d, k),
    "var": lambda lib, a, d, k: a.var() if d is None else a.var(d, keepdim=k),
    "var0": lambda lib, a, d, k: a.var(d, correction=0, keepdim=k),
    "std": lambda lib, a, d, k: a.std() if d is None else a.std(d, keepdim=k),
    "norm": lambda lib, a, d, k: a.norm(dim=d, keepdim=k),
    "norm1": lambda lib, a, d, k: a.norm(1, dim=d, keepdim=k),
    "norm3": lambda lib, a, d, k: a.norm(3, dim=d, keepdim=k),
    "norm_half": lambda lib, a, d, k: a.norm(0.5, dim=d, keepdim=k),
    "norm_inf": lambda lib, a, d, k: a.norm(math.inf, dim=d, keepdim=k),
    "logsumexp": lambda lib, a, d, k: a.logsumexp(0 if d is None else d, keepdim=k),
    "softmax": lambda lib, a, d, k: a.softmax(-1 if d is None or isinstance(d, tuple) else d),
    "log_softmax": lambda lib, a, d, k: a.log_softmax(0 if not isinstance(d, int) else d),
    "all": lambda lib, a, d, k: a.all() if not isinstance(d, int) else a.all(d, keepdim=k),
    "any": lambda lib, a, d, k: a.any() if not isinstance(d, int) else a.any(d, keepdim=k),
    "count_nonzero": lambda lib, a, d, k: a.count_nonzero(d),
    "nansum": lambda lib, a, d, k: a.nansum() if d is None else a.nansum(d, keepdim=k),
    "item": lambda lib, a, d, k: a.sum().item(),
}
_REDUCTION_STEP = st.one_of(
    st.tuples(st.sampled_from(sorted(REDUCTIONS)), st.tuples(REF, DIMS, st.booleans())),
    st.tuples(st.sampled_from(["exp", "abs", "mul", "sub", "round"]), st.tuples(REF, REF)).map(
        lambda s: (s[0], s[1][:1]) if s[0] in ("exp", "abs", "round") else s
    ),
)
_REDUCTION_TABLE = {**ELEMENTWISE, **REDUCTIONS}


@pytest.mark.slow
@_settings(3000)
@given(
    _inputs(shapes=[(), (3,), (2, 3), (2, 1), (2, 2, 3), (1, 3)]),
    st.lists(_REDUCTION_STEP, min_size=1, max_size=4),
)
def test_reduction_programs(inputs, steps):
    compare(inputs, steps, _REDUCTION_TABLE, family="reductions")


# ---------------------------------------------------------------- views, shapes and indexing

INDICES = st.sampled_from(
    [0, -1, 1, slice(None), slice(1, None), slice(None, None, 2), (0, 1), (slice(None), 0),
     (Ellipsis, 0), (None, 0), [0, 0, 1], (slice(None), [1, 0]), "mask", "long"]
)  # fmt: skip


def _index(lib, a, i):
    if i == "mask":
        return a > 0
    if i == "long":
        return lib.tensor([1, 0, 1])
    return i


SHAPE_OPS = {
    "reshape": lambda lib, a, n: a.reshape(-1) if n % 2 else a.reshape(1, -1),
    "view": lambda lib, a, n: a.view(-1) if n % 2 else a.view(-1, 1),
    "transpose": lambda lib, a, n: a.transpose(0, -1),
    "permute": lambda lib, a, n: a.permute(*reversed(range(a.dim()))),
    "t": lambda lib, a, n: a.t(),
    "T": lambda lib, a, n: a.T,
    "mT": lambda lib, a, n: a.mT,
    "flatten": lambda lib, a, n: a.flatten(),
    "unsqueeze": lambda lib, a, n: a.unsqueeze(n % 3 - 1),
    "squeeze": lambda lib, a, n: a.squeeze() if n % 2 else a.squeeze(0),
    "expand": lambda lib, a, n: a.expand(2, *a.shape) if n % 2 else a.expand(-1, 3),
    "repeat": lambda lib, a, n: a.repeat(2, *([1] * a.dim())),
    "chunk": lambda lib, a, n: a.chunk(2, n % 2),
    "split": lambda lib, a, n: a.split(1 + n % 2, -1),
    "unbind": lambda lib, a, n: a.unbind(n % 2),
    "flip": lambda lib, a, n: a.flip(0) if n % 2 else a.flip(-1),
    "cat": lambda lib, a, n: lib.cat([a, a * 2], n % 2),
    "stack": lambda lib, a, n: lib.stack([a, a + 1], n % 2),
    "contiguous": lambda lib, a, n: a.contiguous(),
    "clone": lambda lib, a, n: a.clone(),
    "detach": lambda lib, a, n: a.detach(),
    "gather": lambda lib, a, n: a.gather(-1, lib.zeros_like(a, dtype=lib.int64)),
}
SHAPE_OPS["getitem"] = lambda lib, a, i: a[_index(lib, a, i)]


def _setitem(lib, a, i, v):
    c = a.detach().clone()
    c[_index(lib, c, i)] = v
    return c


SHAPE_OPS["setitem"] = _setitem
SHAPE_OPS["where"] = ELEMENTWISE["where"]
SHAPE_OPS["mul"] = ELEMENTWISE["mul"]
_SHAPE_STEP = st.one_of(
    st.tuples(st.sampled_from(sorted(k for k in SHAPE_OPS if k not in ("getitem", "setitem",
              "where", "mul"))), st.tuples(REF, st.integers(0, 3))),
    st.tuples(st.just("getitem"), st.tuples(REF, INDICES)),
    st.tuples(st.just("setitem"), st.tuples(REF, INDICES, st.one_of(NUMBER, REF))),
    st.tuples(st.just("mul"), st.tuples(REF, REF)),
)  # fmt: skip


@_settings(3000)
@given(
    _inputs(kinds=("f64", "f64", "i64", "bool"), shapes=[(3,), (2, 3), (1, 3), (2, 1, 3), ()]),
    st.lists(_SHAPE_STEP, min_size=1, max_size=5),
)
def test_shape_and_index_programs(inputs, steps):
    compare(inputs, steps, SHAPE_OPS, family="shapes")


# ---------------------------------------------------------------- in-place ops on leaves


def _no_grad(fn):
    def run(lib, *args):
        with lib.no_grad():
            return fn(lib, *args)

    return run


INPLACE = {
    "add_": lambda lib, a, b: a.add_(b),
    "sub_": lambda lib, a, b: a.sub_(b, alpha=2),
    "mul_": lambda lib, a, b: a.mul_(b),
    "div_": lambda lib, a, b: a.div_(b),
    "clamp_": lambda lib, a, b: a.clamp_(-0.5, 1.5),
    "fill_": lambda lib, a, b: a.fill_(2.5),
    "zero_": lambda lib, a, b: a.zero_(),
    "copy_": lambda lib, a, b: a.copy_(b),
    "masked_fill_": lambda lib, a, b: a.masked_fill_(a > 0, 0.5),
    "setitem": lambda lib, a, b: a.__setitem__(0, b) or a,
    "iadd": lambda lib, a, b: a.__iadd__(b),
    "imul": lambda lib, a, b: a.__imul__(b),
}
INPLACE = {k: _no_grad(f) for k, f in INPLACE.items()}
INPLACE.update({k: ELEMENTWISE[k] for k in ("mul", "add", "exp", "sin", "tanh", "where")})
_INPLACE_STEP = st.one_of(
    st.tuples(st.sampled_from(sorted(k for k in INPLACE if k.endswith("_") or k in
              ("setitem", "iadd", "imul"))), st.tuples(REF, st.one_of(NUMBER, REF))),
    st.tuples(st.sampled_from(["mul", "add"]), st.tuples(REF, REF)),
    st.tuples(st.sampled_from(["exp", "sin", "tanh"]), st.tuples(REF)),
)  # fmt: skip


@_settings(2000)
@given(
    _inputs(kinds=("f64", "f64", "f64", "i64"), shapes=[(3,), (2, 3), (1, 3), ()]),
    st.lists(_INPLACE_STEP, min_size=1, max_size=5),
)
def test_inplace_on_leaves_under_no_grad(inputs, steps):
    compare(inputs, steps, INPLACE, family="in-place on leaves")


# in grad mode, in-place ops on intermediates and on views (recorded and rebased, as PyTorch)
INPLACE_GRAPH = {
    "add_": lambda lib, a, b: (a * 1).add_(b),
    "mul_": lambda lib, a, b: (a * 1).mul_(b),
    "relu_": lambda lib, a, b: _F(lib).relu(a * 1, inplace=True),
    "view_mul_": lambda lib, a, b: _view_mul(a * 1, b),
    "setitem": lambda lib, a, b: _set0(a * 1, b),
    "clamp_": lambda lib, a, b: (a * 1).clamp_(-0.5, 1.5),
    "iadd_alias": lambda lib, a, b: _iadd_alias(a * 2, b),
}


def _view_mul(h, b):
    v = h[0]
    v.mul_(b)
    return h, v


def _set0(h, b):
    h[0] = b
    return h


def _iadd_alias(h, b):
    alias = h
    h += b
    return alias


INPLACE_GRAPH.update({k: ELEMENTWISE[k] for k in ("mul", "exp")})


@_settings(300)
@given(
    _inputs(kinds=("f64",), shapes=[(3,), (2, 3)], n=(2, 3)),
    st.lists(
        st.tuples(st.sampled_from(sorted(INPLACE_GRAPH)), st.tuples(REF, st.one_of(NUMBER, REF))),
        min_size=1,
        max_size=4,
    ).map(lambda xs: [(k, a[:1]) if k == "exp" else (k, a) for k, a in xs]),
)
def test_inplace_on_intermediates_and_views_in_grad_mode(inputs, steps):
    compare(inputs, steps, INPLACE_GRAPH, family="in-place in graphs")


# ---------------------------------------------------------------- losses, with every option

REDUCTION = st.sampled_from(["mean", "sum", "none"])


def _probs(lib, x):
    return x.softmax(-1).detach()


LOSSES = {
    "mse": lambda lib, x, y, r, o: _F(lib).mse_loss(x, y, reduction=r),
    "l1": lambda lib, x, y, r, o: _F(lib).l1_loss(x, y, reduction=r),
    "smooth_l1": lambda lib, x, y, r, o: _F(lib).smooth_l1_loss(x, y, reduction=r, beta=o % 3),
    "huber": lambda lib, x, y, r, o: _F(lib).huber_loss(x, y, reduction=r, delta=0.5 + o % 2),
    "kl_div": lambda lib, x, y, r, o: _F(lib).kl_div(
        x.log_softmax(-1), _probs(lib, y), reduction="batchmean" if o % 2 else r
    ),
    "kl_div_log": lambda lib, x, y, r, o: _F(lib).kl_div(
        x.log_softmax(-1), y.log_softmax(-1).detach(), reduction=r, log_target=True
    ),
    "bce": lambda lib, x, y, r, o: _F(lib).binary_cross_entropy(
        x.sigmoid(), y.sigmoid().detach(), reduction=r,
        weight=(y.detach().abs() + 0.5) if o % 2 else None
    ),
    "bce_soft_target": lambda lib, x, y, r, o: _F(lib).binary_cross_entropy(
        x.sigmoid(), y.sigmoid(), reduction=r
    ),
    "bce_logits": lambda lib, x, y, r, o: _F(lib).binary_cross_entropy_with_logits(
        x, (y.detach() > 0).to(x.dtype), reduction=r,
        pos_weight=(lib.ones(x.shape[-1], dtype=x.dtype) * (1 + o)) if o % 3 == 1 else None,
        weight=(y.detach().abs() + 0.5) if o % 3 == 2 else None,
    ),
    "bce_logits_soft": lambda lib, x, y, r, o: _F(lib).binary_cross_entropy_with_logits(
        x, y.sigmoid(), reduction=r
    ),
    "cross_entropy": lambda lib, x, y, r, o: _F(lib).cross_entropy(
        x, _labels(lib, x, o), reduction=r, label_smoothing=(o % 3) * 0.1,
        ignore_index=o % 4 if o % 5 == 0 else -100,
        weight=(lib.arange(x.shape[-1], dtype=x.dtype) + 1) if o % 2 else None,
    ),
    "cross_entropy_probs": lambda lib, x, y, r, o: _F(lib).cross_entropy(
        x, _probs(lib, y), reduction=r, label_smoothing=(o % 2) * 0.2
    ),
    "cross_entropy_soft_grad": lambda lib, x, y, r, o: _F(lib).cross_entropy(
        x, y.softmax(-1), reduction=r
    ),
    "nll": lambda lib, x, y, r, o: _F(lib).nll_loss(
        x.log_softmax(-1), _labels(lib, x, o), reduction=r,
        ignore_index=o % 4 if o % 3 == 0 else -100,
        weight=(lib.arange(x.shape[-1], dtype=x.dtype) + 1) if o % 2 else None,
    ),
    "module_ce": lambda lib, x, y, r, o: lib.nn.CrossEntropyLoss(reduction=r)(
        x, _labels(lib, x, o)
    ),
    "module_mse": lambda lib, x, y, r, o: lib.nn.MSELoss(reduction=r)(x, y),
}  # fmt: skip


def _labels(lib, x, o):
    n, c = (1, x.shape[0]) if x.dim() == 1 else (x.shape[0], x.shape[-1])
    labels = (np.arange(n) * (o + 1) + o) % c
    t = lib.tensor(labels)
    return t[0] if x.dim() == 1 else t


@_settings(3000)
@given(
    st.sampled_from(sorted(LOSSES)),
    st.sampled_from([(3,), (2, 3), (3, 4), (1, 2)]),
    st.lists(FINITE, min_size=2, max_size=12),
    REDUCTION,
    st.integers(0, 29),
    st.booleans(),
)
def test_loss_programs(name, shape, values, reduction, option, target_grad):
    inputs = [("f64", shape, values, True), ("f64", shape, values[::-1] + [0.3], target_grad)]
    steps = [(name, (V(0), V(1), reduction, option))]
    compare(inputs, steps, LOSSES, family="losses")


# ---------------------------------------------------------------- modules from one state dict

ACTIVATIONS = ["ReLU", "Tanh", "Sigmoid", "LeakyReLU", "ELU", "GELU", "SiLU", "Softplus", "Mish",
               "Hardtanh", "ReLU6", "SELU", "CELU", "Hardsigmoid", "Hardswish",
               "LogSigmoid"]  # fmt: skip


def _build(lib, kind: str, option: int):
    nn = lib.nn
    if kind == "linear":
        return nn.Linear(3, 2, bias=bool(option % 2))
    if kind == "mlp":
        act = getattr(nn, ACTIVATIONS[option % len(ACTIVATIONS)])()
        return nn.Sequential(nn.Linear(3, 4), act, nn.Linear(4, 2))
    if kind == "layer_norm":
        return nn.LayerNorm(3, elementwise_affine=bool(option % 2), eps=1e-5 * (1 + option))
    if kind == "batch_norm":
        m = nn.BatchNorm1d(3, affine=bool(option % 2), momentum=0.1 * (1 + option % 3))
        return m.train() if option % 4 < 2 else m.eval()
    if kind == "embedding":
        return nn.Embedding(5, 3, padding_idx=option % 5 if option % 2 else None)
    if kind == "softmax":
        return nn.Sequential(nn.Linear(3, 3), nn.LogSoftmax(dim=-1))
    raise ValueError(kind)


def _module_finish(kind: str, option: int):
    def finish(lib, vals, leaves):
        torch.manual_seed(option)
        m = _build(torch, kind, option).double()  # PyTorch's initial state, loaded into ours
        if lib is tm:
            state = {k: tm.tensor(v.detach().numpy()) for k, v in m.state_dict().items()}
            m = _build(tm, kind, option).to(tm.float64)
            m.load_state_dict(state)
        x = leaves[0]
        if kind == "embedding":
            x = lib.tensor([[0, 1], [4, option % 5]])
        out = m(x)
        records = [("out", _record(lib, out))]
        out.backward(_weight(lib, tuple(out.shape), out.dtype))
        for name, p in sorted(m.named_parameters()):
            records.append((f"grad {name}", _record(lib, p.grad)))
        for name, b in sorted(m.named_buffers()):
            records.append((f"buffer {name}", _record(lib, b)))
        if kind != "embedding":
            records.append(("input grad", _record(lib, leaves[0].grad)))
        return records

    return finish


@pytest.mark.slow
@_settings(1000)
@given(
    st.sampled_from(["linear", "mlp", "layer_norm", "batch_norm", "embedding", "softmax"]),
    st.integers(0, 40),
    st.sampled_from([(4, 3), (2, 3)]),
    st.lists(FINITE, min_size=3, max_size=12),
)
def test_module_programs(kind, option, shape, values):
    inputs = [("f64", shape, values, True)]
    compare(inputs, [], {}, finish=_module_finish(kind, option), family="modules")


# ---------------------------------------------------------------- optimizers and schedulers

OPTIMIZERS = {
    "sgd": lambda o, ps, k: o.SGD(ps, lr=0.1, momentum=0.9 * (k % 2), weight_decay=0.01 * (k % 3),
                                  nesterov=k % 4 == 1, maximize=k % 5 == 0,
                                  dampening=0.1 * (k % 4 == 3)),
    "adam": lambda o, ps, k: o.Adam(ps, lr=0.05, weight_decay=0.01 * (k % 2), amsgrad=k % 3 == 0,
                                    maximize=k % 5 == 0),
    "adamw": lambda o, ps, k: o.AdamW(ps, lr=0.05, weight_decay=0.1 * (k % 3), amsgrad=k % 2 == 0),
    "rmsprop": lambda o, ps, k: o.RMSprop(ps, lr=0.01, momentum=0.5 * (k % 2),
                                          centered=k % 3 == 0, weight_decay=0.01 * (k % 4 == 1)),
    "adagrad": lambda o, ps, k: o.Adagrad(ps, lr=0.1, lr_decay=0.01 * (k % 2),
                                          weight_decay=0.01 * (k % 3 == 0)),
    "adamax": lambda o, ps, k: o.Adamax(ps, lr=0.05, weight_decay=0.01 * (k % 2)),
    "nadam": lambda o, ps, k: o.NAdam(ps, lr=0.05, weight_decay=0.01 * (k % 2)),
}  # fmt: skip
SCHEDULERS = {
    "none": None,
    "step": lambda s, opt: s.StepLR(opt, step_size=2, gamma=0.5),
    "multistep": lambda s, opt: s.MultiStepLR(opt, milestones=[1, 3], gamma=0.3),
    "exponential": lambda s, opt: s.ExponentialLR(opt, gamma=0.9),
    "cosine": lambda s, opt: s.CosineAnnealingLR(opt, T_max=3, eta_min=0.001),
    "linear": lambda s, opt: s.LinearLR(opt, start_factor=0.5, total_iters=3),
    "constant": lambda s, opt: s.ConstantLR(opt, factor=0.5, total_iters=2),
    "onecycle": lambda s, opt: s.OneCycleLR(
        opt, max_lr=0.2, total_steps=10, cycle_momentum="betas" in opt.defaults
    ),
    "warm_restarts": lambda s, opt: s.CosineAnnealingWarmRestarts(opt, T_0=2),
    "plateau": lambda s, opt: s.ReduceLROnPlateau(opt, patience=0, factor=0.5),
}


def _optimizer_finish(name: str, k: int, scheduler: str, steps: int, accumulate: bool):
    def finish(lib, vals, leaves):
        params = [p for p in leaves if p.requires_grad]
        opt = OPTIMIZERS[name](lib.optim, params, k)
        make = SCHEDULERS[scheduler]
        sched = make(lib.optim.lr_scheduler, opt) if make else None
        records = []
        for _ in range(steps):
            opt.zero_grad()
            for _ in range(2 if accumulate else 1):  # gradients accumulate before the step
                loss = sum(((p - 0.3) ** 2 * _weight(lib, tuple(p.shape), p.dtype)).sum()
                           + p.sin().sum() for p in params)  # fmt: skip
                loss.backward()
            opt.step()
            if sched is not None:
                sched.step(loss.item()) if scheduler == "plateau" else sched.step()
            records.append(("lr", ("number", "float", float(opt.param_groups[0]["lr"]))))
            records.extend(("param", _record(lib, p)) for p in params)
        return records

    return finish


@pytest.mark.slow
@_settings(1500)
@given(
    st.sampled_from(sorted(OPTIMIZERS)),
    st.integers(0, 59),
    st.sampled_from(sorted(SCHEDULERS)),
    st.integers(1, 4),
    st.booleans(),
    st.lists(FINITE, min_size=3, max_size=8),
)
def test_optimizer_programs(name, k, scheduler, steps, accumulate, values):
    inputs = [("f64", (2, 3), values, True), ("f64", (3,), values[1:], True),
              ("f64", (), values[2:], True)]  # fmt: skip
    finish = _optimizer_finish(name, k, scheduler, steps, accumulate)
    compare(inputs, [], {}, finish=finish, family="optimizers")


# ---------------------------------------------------------------- retain_graph, double backward


def _autograd_finish(mode: str):
    def finish(lib, vals, leaves):
        loss = _loss_of(lib, vals)
        if loss is None:
            return []
        x = leaves[0]
        if mode == "retain":  # two backwards through one graph accumulate
            loss.backward(retain_graph=True)
            loss.backward()
        elif mode == "grad":  # autograd.grad leaves .grad alone
            (g,) = lib.autograd.grad(loss, x, allow_unused=True)
            return [("grad", _record(lib, g)), ("x.grad", _record(lib, x.grad))]
        elif mode == "double":  # the gradient of a gradient
            (g,) = lib.autograd.grad(loss, x, create_graph=True, allow_unused=True)
            if g is None or not g.requires_grad:
                return [("grad", _record(lib, g))]
            (g * _weight(lib, tuple(g.shape), g.dtype)).sum().backward()
        elif mode == "backward2":  # a second backward without retain_graph
            loss.backward()
            loss.backward()
        return [("grad", _record(lib, leaf.grad)) for leaf in leaves]

    def guarded(lib, vals, leaves):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with np.errstate(all="ignore"):
                    return finish(lib, vals, leaves)
        except Exception as e:  # noqa: BLE001
            return [_refusal(mode, e)]

    return guarded


_SMOOTH = [k for k in _UNARY + _BINARY if k not in ("floordiv", "div_floor", "div_trunc", "round",
           "sign", "mod", "remainder")] + ["pow_scalar"]  # fmt: skip


@pytest.mark.slow
@_settings(1500)
@given(
    _inputs(kinds=("f64", "f64", "i64")),
    st.lists(
        st.one_of(
            st.tuples(st.sampled_from([k for k in _SMOOTH if k in _UNARY]), st.tuples(REF)),
            st.tuples(
                st.sampled_from([k for k in _SMOOTH if k in _BINARY]), st.tuples(_OPERAND, _OPERAND)
            ),
        ),  # fmt: skip
        min_size=1,
        max_size=4,
    ).map(_fix_scalar_args),
    st.sampled_from(["retain", "grad", "double", "backward2"]),
)
def test_autograd_programs(inputs, steps, mode):
    compare(inputs, steps, ELEMENTWISE, finish=_autograd_finish(mode), family="autograd")
