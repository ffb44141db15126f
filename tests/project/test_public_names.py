"""Every public name is used by at least one test, and the names no other file exercises are
checked here against PyTorch."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import numpy as np
import pytest

import tinygrad_mlp as tm

torch = pytest.importorskip("torch")

TESTS = Path(__file__).resolve().parents[1]
MODULES = [
    "tinygrad_mlp",
    "tinygrad_mlp.nn",
    "tinygrad_mlp.nn.functional",
    "tinygrad_mlp.nn.init",
    "tinygrad_mlp.optim",
    "tinygrad_mlp.optim.lr_scheduler",
    "tinygrad_mlp.linalg",
    "tinygrad_mlp.utils.data",
    "tinygrad_mlp.autograd",
    "tinygrad_mlp.numpy",
]


def _used_names() -> str:
    """The code of every test file but this one's list of modules (a use, not a mention)."""
    return "\n".join(p.read_text() for p in TESTS.rglob("*.py") if p.name != Path(__file__).name)


@pytest.mark.parametrize("module", MODULES)
def test_every_public_name_appears_in_a_test(module):
    text = _used_names() + Path(__file__).read_text().rsplit("# ---- uses", 1)[1]
    names = importlib.import_module(module).__all__
    # a use: the name called, read as an attribute, imported, or named in a parametrised list
    unused = [
        n
        for n in names
        if not re.search(rf"(\.|\bimport |, |\(|[\"']){re.escape(n)}\b", text)
        and not re.search(rf"\b{re.escape(n)}\(", text)
    ]
    assert unused == [], f"{module}: no test uses {unused}"


# ---- uses: the names above that no other test exercised, each against PyTorch


def _both(values, dtype=np.float64):
    a = np.asarray(values, dtype=dtype)
    return tm.tensor(a), torch.tensor(a)


def _same(ours, theirs):
    assert ours.dtype == theirs.dtype or str(ours.dtype).split(".")[-1] == str(theirs.dtype)[6:]
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12, atol=1e-12)


def test_conversions_and_defaults():
    a = np.arange(6.0).reshape(2, 3)
    t = tm.as_tensor(a)
    assert tm.is_tensor(t) and not tm.is_tensor(a)
    _same(t, torch.as_tensor(a))
    assert str(tm.get_default_dtype()) == "tinygrad_mlp.float32"
    assert str(torch.get_default_dtype()) == "torch.float32"
    g = tm.Generator().manual_seed(3)
    p = tm.randperm(10, generator=g)
    assert sorted(p.tolist()) == list(range(10)) and str(p.dtype) == "tinygrad_mlp.int64"


def test_elementwise_aliases_against_torch():
    x, xt = _both([[0.5, -0.25, 0.75], [0.1, 0.9, -0.6]])
    y, yt = _both([[0.3, 0.2, -0.5], [0.7, -0.1, 0.2]])
    _same(tm.log10(x.abs()), torch.log10(xt.abs()))
    _same(tm.arcsin(x), torch.arcsin(xt))
    _same(tm.arccos(x), torch.arccos(xt))
    _same(tm.arctan2(x, y), torch.arctan2(xt, yt))
    for name in ("greater", "less", "greater_equal", "less_equal", "not_equal"):
        assert getattr(tm, name)(x, y).tolist() == getattr(torch, name)(xt, yt).tolist()


def test_reductions_and_shapes_against_torch():
    x, xt = _both([[1.0, np.nan, 0.0], [2.0, 0.0, 3.0]])
    _same(tm.nansum(x), torch.nansum(xt))
    _same(tm.nansum(x, 1), torch.nansum(xt, 1))
    assert tm.count_nonzero(x, dim=0).tolist() == torch.count_nonzero(xt, dim=0).tolist()
    z, zt = _both(np.arange(24.0).reshape(2, 12))
    _same(tm.unflatten(z, 1, (3, 4)), torch.unflatten(zt, 1, (3, 4)))
    _same(tm.swapaxes(z, 0, 1), torch.swapaxes(zt, 0, 1))
    for ours, theirs in zip(tm.unbind(z, 1), torch.unbind(zt, 1), strict=True):
        _same(ours, theirs)
    idx = np.array([[0, 5], [11, 2]])
    _same(tm.take_along_dim(z, tm.tensor(idx), 1), torch.take_along_dim(zt, torch.tensor(idx), 1))
    s, st = _both(2.0)
    assert tm.atleast_1d(s).shape == tuple(torch.atleast_1d(st).shape)
    assert tm.atleast_2d(s).shape == tuple(torch.atleast_2d(st).shape)
    _same(tm.concat([z, z], 0), torch.concat([zt, zt], 0))


def test_take_along_dim_and_unbind_gradients_against_torch():
    a = np.random.default_rng(0).standard_normal((3, 4))
    x, xt = tm.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    idx = np.array([[0, 0], [3, 1], [2, 2]])
    w = np.arange(6.0).reshape(3, 2)
    (tm.take_along_dim(x, tm.tensor(idx), 1) * tm.tensor(w)).sum().backward()
    (torch.take_along_dim(xt, torch.tensor(idx), 1) * torch.tensor(w)).sum().backward()
    _same(x.grad, xt.grad)
    x.grad = None
    xt.grad = None
    (tm.unbind(x, 0)[1] * 3).sum().backward()
    (torch.unbind(xt, 0)[1] * 3).sum().backward()
    _same(x.grad, xt.grad)


def test_set_grad_enabled_as_a_function_and_a_context():
    x = tm.ones(2, requires_grad=True)
    with tm.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert (x * 2).requires_grad
    tm.autograd.set_grad_enabled(False)
    try:
        assert not (x * 2).requires_grad
    finally:
        tm.autograd.set_grad_enabled(True)
    assert (x * 2).requires_grad


def test_linear_relu_is_relu_of_linear():
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((4, 3)), rng.standard_normal((5, 3)), rng.standard_normal(5)
    want = torch.relu(torch.nn.functional.linear(*map(torch.tensor, (x, w, b))))
    got = tm.nn.functional.linear_relu(*map(tm.tensor, (x, w, b)))
    _same(got, want)


def test_embedding_bag_against_torch():
    rng = np.random.default_rng(2)
    weight = rng.standard_normal((10, 3))
    ours, theirs = tm.nn.EmbeddingBag(10, 3, mode="mean"), torch.nn.EmbeddingBag(10, 3)
    ours.load_state_dict({"weight": tm.tensor(weight, dtype=tm.float32)})
    theirs.load_state_dict({"weight": torch.tensor(weight, dtype=torch.float32)})
    idx, offsets = [1, 2, 4, 5, 4, 3, 2, 9], [0, 4]
    got = ours(tm.tensor(idx), tm.tensor(offsets))
    want = theirs(torch.tensor(idx), torch.tensor(offsets))
    np.testing.assert_allclose(got.numpy(), want.detach().numpy(), rtol=1e-6)


def test_scheduler_base_class_and_linalg_error():
    assert issubclass(tm.optim.lr_scheduler.StepLR, tm.optim.lr_scheduler.LRScheduler)
    singular = tm.zeros(2, 2, dtype=tm.float64)
    with pytest.raises(tm.linalg.LinAlgError):
        tm.linalg.inv(singular)
    with pytest.raises(torch.linalg.LinAlgError):
        torch.linalg.inv(torch.zeros(2, 2, dtype=torch.float64))


def test_default_convert_and_sampler():
    data = tm.utils.data
    got = data.default_convert({"a": np.arange(3), "b": [np.ones(2)], "c": "text"})
    want = torch.utils.data.default_convert({"a": np.arange(3), "b": [np.ones(2)], "c": "text"})
    assert tm.is_tensor(got["a"]) and got["a"].tolist() == want["a"].tolist()
    assert tm.is_tensor(got["b"][0]) and got["c"] == want["c"]
    assert issubclass(data.RandomSampler, data.Sampler)


def test_function_ctx_is_what_a_custom_function_gets():
    seen = []

    class Double(tm.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            seen.append(isinstance(ctx, tm.autograd.FunctionCtx))
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2

    x = tm.ones(3, requires_grad=True)
    Double.apply(x).sum().backward()
    assert seen == [True] and x.grad.tolist() == [2.0, 2.0, 2.0]


@pytest.mark.parametrize(
    "name",
    ["ceil_", "trunc_", "fix_", "tan_", "atan_", "asin_", "acos_", "arctan_", "arcsin_"]
    + ["arccos_", "sinh_", "cosh_"],
)
def test_top_level_in_place_functions_against_torch(name):
    ours, theirs = _both([0.25, -0.5, 0.75])
    assert getattr(tm, name)(ours) is ours
    getattr(torch, name)(theirs)
    _same(ours, theirs)
