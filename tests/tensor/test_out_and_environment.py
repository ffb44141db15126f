"""``out=`` on the top-level functions, and what scripts ask before choosing a device
(``tm.backends``, ``tm.accelerator``, deterministic algorithms), against PyTorch."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import tinygrad_mlp as tm
from tinygrad_mlp._out import OUT_FUNCTIONS

torch = pytest.importorskip("torch")

A = np.array([[1.0, -2.0], [3.0, 0.5]], np.float32)
B = np.array([[0.5, 4.0], [-1.0, 2.0]], np.float32)

CASES = {
    "matmul": lambda lib, a, b: (lib.matmul, (a, b), {}),
    "add": lambda lib, a, b: (lib.add, (a, b), {"alpha": 2}),
    "mul": lambda lib, a, b: (lib.mul, (a, b), {}),
    "sub": lambda lib, a, b: (lib.sub, (a, 1.5), {}),
    "div": lambda lib, a, b: (lib.div, (a, b), {}),
    "exp": lambda lib, a, b: (lib.exp, (a,), {}),
    "sqrt": lambda lib, a, b: (lib.sqrt, (b.abs(),), {}),
    "maximum": lambda lib, a, b: (lib.maximum, (a, b), {}),
    "clamp": lambda lib, a, b: (lib.clamp, (a,), {"min": 0.0}),
    "mean": lambda lib, a, b: (lib.mean, (a, 1), {}),
    "sum": lambda lib, a, b: (lib.sum, (a, 0), {}),
    "softmax": lambda lib, a, b: (lib.softmax, (a, 1), {}),
    "cat": lambda lib, a, b: (lib.cat, ([a, b],), {}),
    "stack": lambda lib, a, b: (lib.stack, ([a, b], 1), {}),
    "where": lambda lib, a, b: (lib.where, (a > 0, a, b), {}),
    "zeros": lambda lib, a, b: (lib.zeros, (2, 3), {}),
    "ones": lambda lib, a, b: (lib.ones, ((3,)), {}),
    "full": lambda lib, a, b: (lib.full, ((2, 2), 7.0), {}),
    "arange": lambda lib, a, b: (lib.arange, (0.0, 3.0), {}),
    "linspace": lambda lib, a, b: (lib.linspace, (0.0, 1.0, 5), {}),
    "eye": lambda lib, a, b: (lib.eye, (3,), {}),
    "gt": lambda lib, a, b: (lib.gt, (a, b), {}),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("same_shape", [True, False])
def test_out_writes_the_result_into_the_given_tensor(case, same_shape):
    fn, args, kwargs = CASES[case](tm, tm.tensor(A), tm.tensor(B))
    t_fn, t_args, t_kwargs = CASES[case](torch, torch.tensor(A), torch.tensor(B))
    expected = t_fn(*t_args, **t_kwargs)
    out_dtype = "bool" if expected.dtype == torch.bool else "float32"
    shape = tuple(expected.shape) if same_shape else (1,)
    out = tm.zeros(shape, dtype=getattr(tm, out_dtype))
    memory = out._data
    with pytest.warns(UserWarning, match="resized") if not same_shape else _nothing():
        result = fn(*args, out=out, **kwargs)
    assert result is out
    np.testing.assert_allclose(out.numpy(), expected.numpy(), rtol=1e-6)
    assert out.shape == tuple(expected.shape) and out.dtype == getattr(tm, out_dtype)
    if same_shape:
        assert out._data is memory  # written in place, as PyTorch writes into out's storage


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_out_casts_up_but_refuses_a_narrower_kind_as_torch():
    out = tm.zeros(2, dtype=tm.float64)
    tm.add(tm.tensor([1, 2]), 1, out=out)
    assert out.dtype == tm.float64 and out.tolist() == [2.0, 3.0]
    with pytest.raises(RuntimeError, match="can't be cast"):
        torch.add(torch.tensor([1.5]), 1, out=torch.zeros(1, dtype=torch.long))
    with pytest.raises(RuntimeError, match="can't be cast"):
        tm.add(tm.tensor([1.5]), 1, out=tm.zeros(1, dtype=tm.int64))


def test_out_is_refused_when_an_argument_requires_grad():
    x = tm.ones(2, requires_grad=True)
    t_x = torch.ones(2, requires_grad=True)
    message = "functions with out=... arguments don't support automatic differentiation"
    with pytest.raises(RuntimeError, match=message):
        torch.mul(t_x, 2, out=torch.zeros(2))
    with pytest.raises(RuntimeError, match=message):
        tm.mul(x, 2, out=tm.zeros(2))
    with tm.no_grad():
        out = tm.zeros(2)
        assert tm.mul(x, 2, out=out) is out and not out.requires_grad
    with pytest.raises(TypeError, match="must be Tensor"):
        tm.mul(tm.ones(2), 2, out=[0.0, 0.0])


def test_max_with_dim_takes_a_tuple_out():
    values, indices = tm.zeros(2), tm.zeros(2, dtype=tm.int64)
    result = tm.max(tm.tensor(A), 1, out=(values, indices))
    expected = torch.max(torch.tensor(A), 1)
    assert result.values is values and result.indices is indices
    assert values.tolist() == expected.values.tolist()
    assert indices.tolist() == expected.indices.tolist()


def test_out_is_in_the_signature_of_exactly_torchs_functions():
    for name in OUT_FUNCTIONS:
        assert "out" in inspect.signature(getattr(tm, name)).parameters, name
        schemas = torch._C._jit_get_schemas_for_operator(f"aten::{name}")
        assert any("out" in str(s) for s in schemas), name
    assert "out" not in inspect.signature(tm.reshape).parameters


# ---------------------------------------------------------------- devices and determinism


def test_backends_answer_as_on_a_machine_without_accelerators():
    assert tm.backends.mps.is_available() is torch.backends.mps.is_available() is False
    assert tm.backends.mps.is_built() is False
    assert tm.backends.cuda.is_built() is tm.cuda.is_available()
    assert tm.backends.cudnn.is_available() is tm.cuda.is_available()
    for flag in ("benchmark", "deterministic", "enabled"):
        assert getattr(tm.backends.cudnn, flag) == getattr(torch.backends.cudnn, flag)
    tm.backends.cudnn.benchmark = True
    tm.backends.cudnn.deterministic = True
    assert tm.backends.cudnn.benchmark and tm.backends.cudnn.deterministic
    tm.backends.cudnn.benchmark = tm.backends.cudnn.deterministic = False


def test_accelerator_matches_cuda_availability():
    assert tm.accelerator.is_available() is tm.cuda.is_available()
    current = tm.accelerator.current_accelerator()
    if tm.cuda.is_available():
        assert current == "cuda" and current.type == "cuda"
    else:
        assert current is None and torch.accelerator.current_accelerator() is None
    # the quickstart's device choice runs
    device = tm.accelerator.current_accelerator().type if tm.accelerator.is_available() else "cpu"
    assert tm.zeros(1, device=device).device == device


def test_use_deterministic_algorithms_is_kept():
    assert tm.are_deterministic_algorithms_enabled() is False
    tm.use_deterministic_algorithms(True, warn_only=True)
    assert tm.are_deterministic_algorithms_enabled()
    assert tm.is_deterministic_algorithms_warn_only_enabled()
    tm.use_deterministic_algorithms(False)
    assert not tm.are_deterministic_algorithms_enabled()
    with pytest.raises(TypeError):
        tm.use_deterministic_algorithms("yes")
