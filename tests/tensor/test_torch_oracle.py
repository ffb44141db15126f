"""Values and gradients of the Tensor surface against PyTorch itself, on random inputs.

Every entry of CASES runs the same function on ``tinygrad_mlp`` and on ``torch`` (the module
is the function's first argument), then compares every output and the gradient of a random
weighted sum of the float outputs with respect to every float input."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tinygrad_mlp as tm

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]
TOLERANCE = {"float64": 1e-10, "float32": 1e-5}

# name: (function of (lib, *inputs), input shapes, domain of the inputs)
# domains: "any" N(0, 1); "pos" U(0.5, 2); "idx" int64 indices below the first size of the
# first input; "mask" a bool mask shaped like the first input
CASES = {
    # unary maths
    "exp": (lambda lib, x: x.exp(), [(3, 4)], "any"),
    "tm.exp": (lambda lib, x: lib.exp(x), [(3, 4)], "any"),
    "log": (lambda lib, x: x.log(), [(3, 4)], "pos"),
    "log1p": (lambda lib, x: x.log1p(), [(3, 4)], "pos"),
    "expm1": (lambda lib, x: x.expm1(), [(3, 4)], "any"),
    "sin": (lambda lib, x: x.sin(), [(3, 4)], "any"),
    "cos": (lambda lib, x: lib.cos(x), [(3, 4)], "any"),
    "abs": (lambda lib, x: x.abs(), [(3, 4)], "any"),
    "sign": (lambda lib, x: x.sign() * x, [(3, 4)], "any"),
    "neg": (lambda lib, x: -x + x.neg(), [(3, 4)], "any"),
    "sqrt": (lambda lib, x: x.sqrt(), [(3, 4)], "pos"),
    "rsqrt": (lambda lib, x: lib.rsqrt(x), [(3, 4)], "pos"),
    "square": (lambda lib, x: x.square(), [(3, 4)], "any"),
    "reciprocal": (lambda lib, x: x.reciprocal(), [(3, 4)], "pos"),
    "pow-2": (lambda lib, x: x.pow(2), [(3, 4)], "any"),
    "pow-half": (lambda lib, x: x**0.5, [(3, 4)], "pos"),
    "pow-neg": (lambda lib, x: lib.pow(x, -1.5), [(3, 4)], "pos"),
    "pow-tensor": (lambda lib, x, y: x.pow(y), [(3, 4), (4,)], "pos"),
    "rpow": (lambda lib, x: 2.0**x, [(3, 4)], "any"),
    "tanh": (lambda lib, x: x.tanh(), [(3, 4)], "any"),
    "sigmoid": (lambda lib, x: x.sigmoid(), [(3, 4)], "any"),
    "relu": (lambda lib, x: x.relu(), [(3, 4)], "any"),
    # binary maths with broadcasting
    "add": (lambda lib, x, y: x + y, [(3, 4), (4,)], "any"),
    "add-alpha": (lambda lib, x, y: lib.add(x, y, alpha=2.5), [(3, 1), (1, 4)], "any"),
    "sub": (lambda lib, x, y: x.sub(y), [(3, 1), (1, 4)], "any"),
    "rsub": (lambda lib, x: 1.5 - x, [(3, 4)], "any"),
    "mul": (lambda lib, x, y: lib.mul(x, y), [(2, 3, 4), (3, 1)], "any"),
    "div": (lambda lib, x, y: x.div(y), [(3, 4), (4,)], "pos"),
    "rdiv": (lambda lib, x: 2.0 / x, [(3, 4)], "pos"),
    "maximum": (lambda lib, x, y: lib.maximum(x, y), [(3, 4), (4,)], "any"),
    "minimum": (lambda lib, x, y: lib.minimum(x, y), [(3, 4), (3, 1)], "any"),
    "matmul": (lambda lib, x, y: x @ y, [(3, 4), (4, 2)], "any"),
    "tm.matmul-batched": (lambda lib, x, y: lib.matmul(x, y), [(2, 3, 4), (4, 5)], "any"),
    "matmul-vector": (lambda lib, x, y: x.matmul(y), [(3, 4), (4,)], "any"),
    "mm": (lambda lib, x, y: lib.mm(x, y.t()), [(3, 4), (2, 4)], "any"),
    # reductions
    "sum": (lambda lib, x: x.sum(), [(3, 4)], "any"),
    "sum-dim": (lambda lib, x: x.sum(dim=1), [(3, 4)], "any"),
    "sum-dims-keepdim": (lambda lib, x: x.sum(dim=(0, 2), keepdim=True), [(2, 3, 4)], "any"),
    "sum-neg-dim": (lambda lib, x: lib.sum(x, -1), [(2, 3, 4)], "any"),
    "mean": (lambda lib, x: x.mean(), [(3, 4)], "any"),
    "mean-dim-keepdim": (lambda lib, x: x.mean(dim=0, keepdim=True), [(3, 4)], "any"),
    "prod": (lambda lib, x: x.prod(), [(2, 3)], "pos"),
    "prod-dim": (lambda lib, x: x.prod(dim=1, keepdim=True), [(3, 4)], "any"),
    "amax": (lambda lib, x: x.amax(dim=1), [(3, 4)], "any"),
    "amin-keepdim": (lambda lib, x: x.amin(dim=0, keepdim=True), [(3, 4)], "any"),
    "max": (lambda lib, x: x.max(), [(3, 4)], "any"),
    "min": (lambda lib, x: lib.min(x), [(3, 4)], "any"),
    "max-dim": (lambda lib, x: tuple(x.max(dim=1)), [(3, 4)], "any"),
    "max-dim-keepdim": (lambda lib, x: tuple(x.max(dim=0, keepdim=True)), [(3, 4)], "any"),
    "min-dim": (lambda lib, x: tuple(lib.min(x, 1)), [(2, 3, 4)], "any"),
    "argmax": (lambda lib, x: (x.argmax(), x.argmax(dim=1), x.argmax(0, True)), [(3, 4)], "any"),
    "argmin": (lambda lib, x: (x.argmin(), x.argmin(dim=0)), [(3, 4)], "any"),
    "std": (lambda lib, x: x.std(), [(3, 4)], "any"),
    "std-dim": (lambda lib, x: x.std(dim=1), [(3, 4)], "any"),
    "std-correction0": (lambda lib, x: x.std(dim=0, correction=0), [(3, 4)], "any"),
    "std-keepdim": (lambda lib, x: x.std(dim=(0, 1), keepdim=True), [(2, 3, 4)], "any"),
    "var": (lambda lib, x: x.var(), [(3, 4)], "any"),
    "var-unbiased-false": (lambda lib, x: x.var(dim=1, unbiased=False), [(3, 4)], "any"),
    "var-correction2": (lambda lib, x: x.var(dim=1, correction=2), [(3, 5)], "any"),
    "norm": (lambda lib, x: x.norm(), [(3, 4)], "any"),
    "norm-1": (lambda lib, x: x.norm(p=1), [(3, 4)], "any"),
    "norm-2-dim": (lambda lib, x: x.norm(p=2, dim=1), [(3, 4)], "any"),
    "norm-inf": (lambda lib, x: x.norm(p=math.inf), [(3, 4)], "any"),
    "norm-inf-dim": (lambda lib, x: x.norm(p=float("inf"), dim=0), [(3, 4)], "any"),
    "norm-3": (lambda lib, x: x.norm(p=3), [(3, 4)], "any"),
    "norm-3-keepdim": (lambda lib, x: x.norm(3, dim=1, keepdim=True), [(3, 4)], "any"),
    "logsumexp": (lambda lib, x: x.logsumexp(dim=1), [(3, 4)], "any"),
    "logsumexp-keepdim": (lambda lib, x: lib.logsumexp(x, 0, keepdim=True), [(3, 4)], "any"),
    "softmax": (lambda lib, x: x.softmax(dim=1), [(3, 4)], "any"),
    "softmax-dim0": (lambda lib, x: lib.softmax(x, dim=0), [(3, 4)], "any"),
    "log_softmax": (lambda lib, x: x.log_softmax(dim=-1), [(3, 4)], "any"),
    "F.softmax": (lambda lib, x: lib.nn.functional.softmax(x, dim=1), [(3, 4)], "any"),
    "F.log_softmax": (lambda lib, x: lib.nn.functional.log_softmax(x, dim=1), [(3, 4)], "any"),
    "all-any": (
        lambda lib, x: ((x > 0).all(), (x > 0).any(dim=1), (x > 0).all(0)),
        [(3, 4)],
        "any",
    ),
    # comparisons and selection
    "comparisons": (
        lambda lib, x, y: (x == y, x != y, x < y, x <= y, x > y, x >= y, x.gt(0), x.le(y)),
        [(3, 4), (4,)],
        "any",
    ),
    "where": (lambda lib, x, y: lib.where(x > 0, x, y), [(3, 4), (4,)], "any"),
    "where-scalar": (lambda lib, x: lib.where(x > 0, x, 0.0), [(3, 4)], "any"),
    "masked_fill": (lambda lib, x: x.masked_fill(x < 0, 0.5), [(3, 4)], "any"),
    "clamp": (lambda lib, x: x.clamp(-0.5, 0.5), [(3, 4)], "any"),
    "clamp-min": (lambda lib, x: x.clamp(min=0.1), [(3, 4)], "any"),
    "clamp-tensor": (lambda lib, x, lo: lib.clamp(x, min=lo, max=lo + 1), [(3, 4), (4,)], "any"),
    # shapes
    "view": (lambda lib, x: x.view(4, 3), [(3, 4)], "any"),
    "view-neg": (lambda lib, x: x.view(-1, 6), [(2, 3, 2)], "any"),
    "reshape": (lambda lib, x: x.reshape(2, -1), [(3, 4)], "any"),
    "flatten": (lambda lib, x: x.flatten(1, 2), [(2, 3, 4, 2)], "any"),
    "permute": (lambda lib, x: x.permute(2, 0, 1), [(2, 3, 4)], "any"),
    "transpose": (lambda lib, x: x.transpose(0, 2), [(2, 3, 4)], "any"),
    "t-and-T": (lambda lib, x: (x.t(), x.T * 2), [(3, 4)], "any"),
    "unsqueeze-squeeze": (
        lambda lib, x: (x.unsqueeze(1), x.unsqueeze(-1).squeeze()),
        [(3, 4)],
        "any",
    ),
    "expand": (lambda lib, x: x.expand(2, 3, 4), [(3, 1)], "any"),
    "expand_as": (lambda lib, x, y: x.expand_as(y) * y, [(1, 4), (3, 4)], "any"),
    "repeat": (lambda lib, x: x.repeat(2, 3), [(2, 3)], "any"),
    "chunk": (lambda lib, x: x.chunk(3, dim=1), [(2, 7)], "any"),
    "split": (lambda lib, x: x.split(2), [(5, 3)], "any"),
    "split-sections": (lambda lib, x: x.split([1, 3], dim=1), [(2, 4)], "any"),
    "cat": (lambda lib, x, y: lib.cat([x, y, x]), [(2, 3), (1, 3)], "any"),
    "cat-dim1": (lambda lib, x, y: lib.cat([x, y], dim=1), [(2, 3), (2, 1)], "any"),
    "stack": (lambda lib, x, y: lib.stack([x, y]), [(2, 3), (2, 3)], "any"),
    "stack-dim": (lambda lib, x, y: lib.stack([x, y], dim=-1), [(2, 3), (2, 3)], "any"),
    "clone": (lambda lib, x: x.clone() * x, [(3, 4)], "any"),
    # indexing
    "index-int": (lambda lib, x: (x[1], x[-1, 2]), [(3, 4)], "any"),
    "index-slices": (lambda lib, x: x[1:, ::2], [(3, 4)], "any"),
    "index-none-ellipsis": (lambda lib, x: x[None, ..., 1], [(2, 3, 4)], "any"),
    "index-tensor": (lambda lib, x, i: x[i], [(4, 3), (5,)], "idx"),
    "index-two-tensors": (lambda lib, x, i: x[i, i % 3], [(4, 3), (5,)], "idx"),
    "index-mask": (lambda lib, x, m: x[m], [(3, 4), (3, 4)], "mask"),
    "index-mask-rows": (lambda lib, x: x[x[:, 0] > 0], [(6, 3)], "any"),
    # composite expressions as a user writes them
    "mlp": (
        lambda lib, x, w, b: lib.nn.functional.log_softmax((x @ w + b).relu(), dim=1),
        [(5, 4), (4, 3), (3,)],
        "any",
    ),
    "normalise": (lambda lib, x: (x - x.mean(0)) / (x.std(0) + 1e-5), [(5, 3)], "any"),
}


def _inputs(shapes, domain, dtype, seed):
    gen = np.random.default_rng(seed)
    out = []
    for k, shape in enumerate(shapes):
        if domain == "idx" and k == 1:
            out.append(gen.integers(0, shapes[0][0], shape))
        elif domain == "mask" and k == 1:
            out.append(gen.random(shape) > 0.4)
        elif domain == "pos":
            out.append(gen.uniform(0.5, 2.0, shape).astype(dtype))
        else:
            out.append(gen.standard_normal(shape).astype(dtype))
    return out


def _numpy(t):
    return t.detach().numpy()


def _run(lib, fn, arrays, seed):
    xs = [lib.tensor(a.copy(), requires_grad=a.dtype.kind == "f") for a in arrays]
    out = fn(lib, *xs)
    outs = out if isinstance(out, tuple) else (out,)
    gen = np.random.default_rng(seed + 1)
    loss = None
    for o in outs:
        if o.dtype in (lib.float32, lib.float64) and o.requires_grad:
            weight = lib.tensor(gen.standard_normal(tuple(o.shape)).astype(arrays[0].dtype))
            term = (o * weight).sum()
            loss = term if loss is None else loss + term
    if loss is not None:
        loss.backward()
    grads = [None if x.grad is None else _numpy(x.grad) for x in xs]
    return [_numpy(o) for o in outs], grads


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", list(CASES))
def test_values_and_gradients_match_torch(name, dtype):
    fn, shapes, domain = CASES[name]
    arrays = _inputs(shapes, domain, dtype, seed=len(name))
    ours, our_grads = _run(tm, fn, arrays, len(name))
    theirs, their_grads = _run(torch, fn, arrays, len(name))
    tol = TOLERANCE[dtype]
    assert len(ours) == len(theirs)
    for k, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        assert a.shape == b.shape, f"output {k}: shape {a.shape} != torch's {b.shape}"
        assert a.dtype == b.dtype, f"output {k}: dtype {a.dtype} != torch's {b.dtype}"
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol, err_msg=f"output {k}")
    for k, (a, b) in enumerate(zip(our_grads, their_grads, strict=True)):
        assert (a is None) == (b is None), f"gradient of input {k}: {a} vs torch's {b}"
        if a is not None:
            assert a.dtype == b.dtype
            np.testing.assert_allclose(a, b, rtol=tol, atol=tol, err_msg=f"gradient {k}")


# ---------------------------------------------------------------- dtypes of results

PROMOTION = {
    "int-times-float": lambda lib, i, f, b: i * 2.5,
    "int-times-int": lambda lib, i, f, b: i * 3,
    "int-plus-float-tensor": lambda lib, i, f, b: i + f,
    "float-plus-int-tensor": lambda lib, i, f, b: f + i,
    "bool-plus-int": lambda lib, i, f, b: b + i,
    "bool-times-float": lambda lib, i, f, b: b * 1.5,
    "int-true-division": lambda lib, i, f, b: i / (i.abs() + 1),
    "int-division-by-number": lambda lib, i, f, b: i / 4,
    "int-floor-division": lambda lib, i, f, b: i // 2,
    "sum-of-bools": lambda lib, i, f, b: b.sum(),
    "sum-of-bools-dim": lambda lib, i, f, b: b.sum(dim=0),
    "sum-of-ints": lambda lib, i, f, b: i.sum(dim=1),
    "mean-of-float-mask": lambda lib, i, f, b: b.float().mean(),
    "compare-int-float": lambda lib, i, f, b: i > f,
    "compare-int-number": lambda lib, i, f, b: i == 1,
    "argmax-of-ints": lambda lib, i, f, b: i.argmax(dim=1),
    "max-of-ints": lambda lib, i, f, b: i.max(),
    "long-int-bool-float-double": lambda lib, i, f, b: (f.long(), f.int(), f.bool(), i.float()),
    "double": lambda lib, i, f, b: i.double() + f.double(),
    "where-int-float": lambda lib, i, f, b: lib.where(b, i, f),
    "cat-int": lambda lib, i, f, b: lib.cat([i, i]),
    "index-by-bool": lambda lib, i, f, b: i[b],
    "neg-int": lambda lib, i, f, b: -i,
    "abs-int": lambda lib, i, f, b: i.abs(),
    "clamp-int": lambda lib, i, f, b: i.clamp(-1, 1),
    "int-pow": lambda lib, i, f, b: i.abs() ** 2,
    "float32-times-0d-float64": lambda lib, i, f, b: f * lib.tensor(2.5, dtype=lib.float64),
    "0d-float64-plus-float32": lambda lib, i, f, b: lib.tensor(0.5, dtype=lib.float64) + f,
    "int32-plus-0d-int64": lambda lib, i, f, b: i.int() + lib.tensor(3),
    "int-times-0d-float64": lambda lib, i, f, b: i * lib.tensor(0.5, dtype=lib.float64),
    "float32-plus-float64": lambda lib, i, f, b: f + f.double(),
    "0d-float32-times-0d-float64": lambda lib, i, f, b: f[0, 0] * f.double()[0, 1],
    "cat-int-float": lambda lib, i, f, b: lib.cat([i, f]),
    "cat-bool-int32": lambda lib, i, f, b: lib.cat([b, i.int()]),
    "cat-half-int": lambda lib, i, f, b: lib.cat([f.half(), i]),
    "where-numbers": lambda lib, i, f, b: (lib.where(b, 1, 0), lib.where(b, 1.0, 0)),
    "where-0d-float64": lambda lib, i, f, b: lib.where(b, f, lib.tensor(2.0, dtype=lib.float64)),
}


@pytest.mark.parametrize("name", list(PROMOTION))
def test_dtype_promotion_matches_torch(name):
    gen = np.random.default_rng(0)
    ints = gen.integers(-3, 4, (3, 4))
    floats = gen.standard_normal((3, 4)).astype(np.float32) * 3
    bools = gen.random((3, 4)) > 0.5
    results = []
    for lib in (tm, torch):
        i, f, b = lib.tensor(ints), lib.tensor(floats), lib.tensor(bools)
        out = PROMOTION[name](lib, i, f, b)
        results.append([_numpy(o) for o in (out if isinstance(out, tuple) else (out,))])
    for a, b in zip(*results, strict=True):
        assert a.dtype == b.dtype, f"dtype {a.dtype} != torch's {b.dtype}"
        np.testing.assert_allclose(a, b, rtol=1e-6)


@pytest.mark.parametrize(
    "data",
    [3, 2.5, True, [1, 2], [1.5, 2], [True, False], [[1, 2], [3, 4]], np.int32(3), np.float64(2)],
)
def test_inferred_dtypes_match_torch(data):
    ours, theirs = tm.tensor(data), torch.tensor(data)
    assert ours.numpy().dtype == theirs.numpy().dtype
    assert ours.tolist() == theirs.tolist()


def test_numpy_arrays_keep_their_dtype_as_in_torch():
    for dtype in (np.float16, np.float32, np.float64, np.int32, np.int64, np.bool_):
        a = np.ones(2, dtype=dtype)
        assert tm.tensor(a).numpy().dtype == torch.tensor(a).numpy().dtype == dtype
        assert tm.from_numpy(a).numpy().dtype == torch.from_numpy(a).numpy().dtype


# ---------------------------------------------------------------- the Python protocol


@pytest.mark.parametrize("data", [0.25, -3.0, 7, True, [[1.5]], [2]])
def test_python_protocol_matches_torch(data):
    ours, theirs = tm.tensor(data), torch.tensor(data)
    assert ours.item() == theirs.item() and type(ours.item()) is type(theirs.item())
    assert ours.tolist() == theirs.tolist()
    assert float(ours) == float(theirs) and int(ours) == int(theirs)
    assert bool(ours) == bool(theirs)
    assert np.array_equal(ours.numpy(), theirs.numpy())
    if ours.dim() == 0:  # torch refuses format specs on other shapes; we format the item
        for spec in (".4f", ".2e", "g", "8.3f"):
            assert format(ours, spec) == format(theirs, spec)
    assert ours.size() == tuple(theirs.size()) and ours.numel() == theirs.numel()
    assert ours.dim() == theirs.dim()


def test_format_of_a_loss_matches_torch():
    for value in (0.123456789, 12.5, 1e-7):
        a, b = tm.tensor(value), torch.tensor(value)
        assert f"{a:.4f}" == f"{b:.4f}" and f"{a:8.3e}" == f"{b:8.3e}"


# ---------------------------------------------------------------- refusals


REFUSALS = {
    "broadcast": lambda lib: lib.ones(2) + lib.ones(3),
    "matmul-shapes": lambda lib: lib.ones(2, 3) @ lib.ones(2, 3),
    "view-size": lambda lib: lib.ones(2, 3).view(4),
    "dim-out-of-range": lambda lib: lib.ones(2, 3).sum(dim=2),
    "size-out-of-range": lambda lib: lib.ones(2, 3).size(2),
    "index-out-of-range": lambda lib: lib.ones(2, 3)[2],
    "float-index": lambda lib: lib.ones(3)[lib.tensor([0.5])],
    "int-requires-grad": lambda lib: lib.tensor([1, 2], requires_grad=True),
    "leaf-inplace": lambda lib: lib.ones(2, requires_grad=True).add_(1),
    "leaf-setitem": lambda lib: lib.ones(2, requires_grad=True).__setitem__(0, 1.0),
    "backward-non-scalar": lambda lib: (lib.ones(2, requires_grad=True) * 2).backward(),
    "backward-no-grad": lambda lib: lib.ones(2).sum().backward(),
    "bool-ambiguous": lambda lib: bool(lib.ones(2)),
    "cat-shapes": lambda lib: lib.cat([lib.ones(2, 3), lib.ones(2, 4)]),
    "stack-shapes": lambda lib: lib.stack([lib.ones(2), lib.ones(3)]),
    "masked-fill-int-mask": lambda lib: lib.ones(2).masked_fill(lib.tensor([1, 0]), 0.0),
    "inplace-cast": lambda lib: lib.tensor([1, 2]).add_(0.5),
    "from-numpy-list": lambda lib: lib.from_numpy([1.0]),
    "retain-grad-no-grad": lambda lib: lib.ones(1).retain_grad(),
}


@pytest.mark.parametrize("name", list(REFUSALS))
def test_refusals_raise_torchs_exception_type(name):
    with pytest.raises(Exception) as theirs:
        REFUSALS[name](torch)
    with pytest.raises(Exception) as ours:
        REFUSALS[name](tm)
    assert isinstance(ours.value, theirs.type), f"{ours.type.__name__}: {ours.value}"


def test_a_saved_tensor_changed_in_place_is_refused_as_in_torch():
    for lib in (tm, torch):
        w, c = lib.ones(2, requires_grad=True), lib.ones(2)
        y = w * c
        c.add_(1)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.sum().backward()
        x = lib.zeros(2, requires_grad=True)
        y = x.exp()  # exp saves its output for the backward
        with lib.no_grad():
            y.mul_(2)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            y.sum().backward()
        x = lib.ones(2, requires_grad=True)
        y = x + c  # add saves nothing: changing c afterwards is harmless
        c.mul_(3)
        y.sum().backward()
        assert x.grad.tolist() == [1.0, 1.0]


# ---------------------------------------------------------------- the MNIST script

MNIST = ROOT.parent / "shared" / "datasets" / "mnist"
SCRIPT = ROOT / "examples" / "pytorch_mnist.py"


def _run_script(script: Path, steps: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    args = [sys.executable, str(script), "--steps", str(steps), "--seed", "0", "--train", "2000"]
    args += ["--test", "500", "--data", str(MNIST), "--log-every", "25", "--print-predictions"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    out = {"losses": [], "output": done.stdout}
    for line in done.stdout.splitlines():
        words = line.split()
        if line.startswith("step"):
            out["losses"].append(float(words[words.index("loss") + 1]))
        elif line.startswith("test loss"):
            out["test_loss"] = float(words[2])
        elif line.startswith("test accuracy"):
            out["accuracy"] = float(words[-1])
        elif line.startswith("predictions"):
            out["predictions"] = np.array([int(w) for w in words[1:]])
    return out


@pytest.mark.slow
@pytest.mark.skipif(
    not all((MNIST / name).is_file() for name in tm.datasets.MNIST_FILES),
    reason=f"the MNIST files are not in {MNIST}",
)
def test_the_pytorch_mnist_script_gives_torchs_numbers(tmp_path):
    source = SCRIPT.read_text()
    first, rest = source.split("\n", 1)
    assert first.startswith("import tinygrad_mlp as torch")
    on_torch = tmp_path / "pytorch_mnist_on_torch.py"
    on_torch.write_text("import torch\n" + rest)  # the same script, only the import changed
    ours = _run_script(SCRIPT, 200)
    theirs = _run_script(on_torch, 200)
    assert len(ours["losses"]) == len(theirs["losses"]) == 9
    np.testing.assert_allclose(ours["losses"], theirs["losses"], rtol=1e-4)
    np.testing.assert_allclose(ours["test_loss"], theirs["test_loss"], rtol=1e-4)
    assert abs(ours["accuracy"] - theirs["accuracy"]) <= 0.004  # at most 2 of 500 images
    assert np.mean(ours["predictions"] == theirs["predictions"]) >= 0.99
    assert ours["accuracy"] > 0.8  # it trains
