"""nn modules: parameter discovery, state dicts, modes, layers, repr and gradient checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tensors import T

import tinygrad_mlp as tm
from tinygrad_mlp import nn

F64 = np.float64


def t64(array, requires_grad=True):
    """A float64 tensor that gradcheck perturbs."""
    return T(np.asarray(array, dtype=F64), requires_grad=requires_grad)


class Block(nn.Module):
    """A custom module written the PyTorch way, holding modules in every supported container."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(np.ones(3), dtype=np.float32)
        self.stem = nn.Linear(4, 3)
        self.hidden = [nn.Linear(3, 3), nn.Tanh(), [nn.Linear(3, 2)]]
        self.heads = {"a": nn.Linear(2, 1), "b": {"inner": nn.Linear(2, 2, bias=False)}}
        self.act = nn.ReLU()
        self.drop = nn.Dropout(0.5)
        # things that are not parameters or modules are ignored
        self.width = 3
        self.constant = T(np.zeros(2))
        self.table = np.ones(4)

    def forward(self, x, extra=0.0):
        x = self.act(self.stem(x) * self.scale)
        x = self.hidden[2][0](self.hidden[1](self.hidden[0](x)))
        return self.heads["a"](self.drop(x)) + extra


BLOCK_NAMES = [
    "scale",
    "stem.weight",
    "stem.bias",
    "hidden.0.weight",
    "hidden.0.bias",
    "hidden.2.0.weight",
    "hidden.2.0.bias",
    "heads.a.weight",
    "heads.a.bias",
    "heads.b.inner.weight",
]


def small_model(seed=0, dtype=None):
    tm.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(6, 8, dtype=dtype),
        nn.ReLU(),
        nn.Linear(8, 4, dtype=dtype),
        nn.Tanh(),
        nn.Linear(4, 3, dtype=dtype),
        nn.LogSoftmax(),
    )


def batch(n=5, features=6, seed=1, dtype=np.float32):
    return T(np.random.default_rng(seed).standard_normal((n, features)), dtype=dtype)


# ---------------------------------------------------------------- discovery and names


def test_parameters_found_in_attributes_lists_and_nested_dicts():
    block = Block()
    names = [n for n, _ in block.named_parameters()]
    assert names == BLOCK_NAMES
    params = list(block.parameters())
    assert [id(p) for p in params] == [id(p) for _, p in block.named_parameters()]
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in params)
    assert params[0] is block.scale
    assert params[5] is block.hidden[2][0].weight
    assert params[9] is block.heads["b"]["inner"].weight


def test_parameters_of_a_module_nested_in_a_module():
    class Outer(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = [Block(), Block()]
            self.out = nn.Linear(1, 1)

    outer = Outer()
    names = [n for n, _ in outer.named_parameters()]
    expected = [f"blocks.{i}.{n}" for i in range(2) for n in BLOCK_NAMES]
    # registered children first (PyTorch's order), then modules found in plain lists
    assert names == ["out.weight", "out.bias"] + expected


def test_a_shared_module_is_counted_once():
    shared = nn.Linear(2, 2)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias"]
    assert len(list(model.parameters())) == 2


def test_children_are_the_direct_submodules():
    block = Block()
    kids = list(block.children())
    # registered submodules in assignment order (as PyTorch), then those in plain containers
    assert kids == [
        block.stem,
        block.act,
        block.drop,
        *block.hidden[:2],
        block.hidden[2][0],
        block.heads["a"],
        block.heads["b"]["inner"],
    ]
    model = small_model()
    assert list(model.children()) == list(model)
    assert list(nn.Linear(2, 2).children()) == []


def test_sequential_names_and_custom_forward_through_call():
    model = small_model()
    names = [n for n, _ in model.named_parameters()]
    assert names == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]
    block = Block().eval()
    x = batch(5, 4)
    out = block(x, extra=10.0)
    np.testing.assert_allclose(out.numpy(), block.forward(x).numpy() + 10.0, rtol=1e-6)


def test_module_without_forward_says_so():
    class Empty(nn.Module):
        pass

    with pytest.raises(NotImplementedError, match="Empty"):
        Empty()(1)


# ---------------------------------------------------------------- grads, modes, devices


def test_zero_grad_clears_or_zeros_every_gradient():
    model = small_model()
    model(batch()).sum().backward()
    assert all(p.grad is not None and np.any(p.grad.numpy() != 0) for p in model.parameters())
    model.zero_grad(set_to_none=False)
    for p in model.parameters():
        assert p.grad is not None and p.grad.numpy().shape == p.shape and not np.any(p.grad.numpy())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_train_and_eval_reach_every_module():
    block = Block()
    modules = list(block.modules())
    assert len(modules) == 9  # the block and its 8 submodules, lists and dicts included
    assert all(m.training for m in modules)
    assert block.eval() is block
    assert not any(m.training for m in modules)
    assert block.train() is block
    assert all(m.training for m in modules)
    block.train(False)
    assert not any(m.training for m in modules)


def test_to_cpu_keeps_the_parameters_in_place():
    model = small_model().to("cpu")
    before = model.state_dict()
    arrays = [p._data for p in model.parameters()]
    assert model.to("cpu") is model
    assert all(p.device == "cpu" for p in model.parameters())
    assert all(p._data is a for p, a in zip(model.parameters(), arrays, strict=True))
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k].numpy())


@pytest.mark.cuda
@pytest.mark.skipif(not tm.cupy_available(), reason="needs CuPy and a GPU")
def test_to_cuda_and_load_keeps_the_device():
    model = small_model().to("cuda")
    assert all(p.device == "cuda" for p in model.parameters())
    sd = {k: v.numpy().astype(F64) for k, v in small_model(seed=3).state_dict().items()}
    model.load_state_dict(sd)
    assert all(p.device == "cuda" and p.dtype == np.float32 for p in model.parameters())
    for k, v in model.state_dict().items():
        assert isinstance(v, tm.Tensor) and v.device == "cuda"
        np.testing.assert_array_equal(v.cpu().numpy(), sd[k].astype(np.float32))


# ---------------------------------------------------------------- state dicts


def test_state_dict_holds_detached_tensors_sharing_memory():
    # as PyTorch: values are detached tensors viewing the parameters (copy them to keep them)
    model = small_model()
    sd = model.state_dict()
    assert list(sd) == [n for n, _ in model.named_parameters()]
    for (name, p), value in zip(model.named_parameters(), sd.values(), strict=True):
        assert isinstance(value, tm.Tensor) and not isinstance(value, nn.Parameter), name
        assert value.dtype == p.dtype and value.shape == p.shape
        assert not value.requires_grad and value.is_leaf
        if p.device == "cpu":  # numpy() copies a device array: the write below checks sharing
            assert np.shares_memory(value.numpy(), p.numpy()), name
    model[0].weight.data[...] = -1.0
    assert np.all(sd["0.weight"].numpy() == -1.0)
    kept = {k: v.numpy().copy() for k, v in sd.items()}
    model[0].weight.data[...] = 5.0
    assert np.all(kept["0.weight"] == -1.0)
    assert list(model.state_dict(keep_vars=True).values()) == list(model.parameters())


def test_state_dict_round_trip_through_a_file_is_exact(tmp_path):
    model = small_model(seed=0)
    x = batch()
    expected = model(x).numpy()
    path = tmp_path / "model.npz"
    tm.save(model.state_dict(), path)
    loaded = tm.load(path)
    assert list(loaded) == list(model.state_dict())
    for k, v in model.state_dict().items():
        assert loaded[k].dtype == v.dtype
        np.testing.assert_array_equal(loaded[k], v.numpy())
    fresh = small_model(seed=99)
    assert not np.array_equal(fresh(x).numpy(), expected)
    fresh.load_state_dict(loaded)
    np.testing.assert_array_equal(fresh(x).numpy(), expected)


def test_float64_round_trip_through_a_file_is_exact(tmp_path):
    model = small_model(seed=4, dtype=F64)
    tm.save(model.state_dict(), tmp_path / "m64.npz")
    loaded = tm.load(tmp_path / "m64.npz")
    fresh = small_model(seed=5, dtype=F64)
    fresh.load_state_dict(loaded)
    for (k, v), p in zip(model.state_dict().items(), fresh.parameters(), strict=True):
        assert p.dtype == F64
        np.testing.assert_array_equal(p.numpy(), v.numpy(), err_msg=k)


@pytest.mark.parametrize("model_dtype, file_dtype", [(np.float32, F64), (F64, np.float32)])
def test_load_state_dict_keeps_the_parameter_dtype(model_dtype, file_dtype):
    model = small_model(seed=0, dtype=model_dtype)
    source = {
        k: v.numpy().astype(file_dtype)
        for k, v in small_model(seed=7, dtype=F64).state_dict().items()
    }
    result = model.load_state_dict(source)
    assert result.missing_keys == [] and result.unexpected_keys == []
    for name, p in model.named_parameters():
        assert p.dtype == model_dtype and p.device == tm.backend.default_device()
        np.testing.assert_array_equal(p.numpy(), source[name].astype(model_dtype))
        assert not np.shares_memory(p.numpy(), source[name])
    source["0.weight"][...] = 5.0
    assert not np.any(model[0].weight.numpy() == 5.0)


def test_load_state_dict_accepts_tensors_and_lists():
    model = nn.Linear(2, 2)
    model.load_state_dict({"weight": T([[1.0, 2.0], [3.0, 4.0]]), "bias": [5, 6]})
    np.testing.assert_array_equal(model.weight.numpy(), [[1, 2], [3, 4]])
    np.testing.assert_array_equal(model.bias.numpy(), [5, 6])
    assert model.weight.dtype == np.float32 and model.bias.dtype == np.float32


def _snapshot(model):
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


def _assert_unchanged(model, before):
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k], err_msg=k)


def test_missing_key_raises_runtimeerror_naming_it_and_changes_nothing():
    model = small_model()
    before = _snapshot(model)
    sd = {k: v + 1 for k, v in before.items()}
    del sd["2.bias"]
    with pytest.raises(RuntimeError, match=r'Missing key\(s\) in state_dict: "2\.bias"'):
        model.load_state_dict(sd)
    _assert_unchanged(model, before)


def test_unexpected_key_raises_runtimeerror_naming_it_and_changes_nothing():
    model = small_model()
    before = _snapshot(model)
    sd = {k: v + 1 for k, v in before.items()}
    sd["6.weight"] = np.zeros((3, 3))
    with pytest.raises(RuntimeError, match=r'Unexpected key\(s\) in state_dict: "6\.weight"'):
        model.load_state_dict(sd)
    _assert_unchanged(model, before)


def test_wrong_shape_names_key_and_both_shapes_and_changes_nothing():
    model = small_model()
    before = _snapshot(model)
    sd = {k: v + 1 for k, v in before.items()}
    sd["2.weight"] = np.zeros((8, 4), np.float32)  # transposed: the model holds (4, 8)
    with pytest.raises(RuntimeError) as info:  # PyTorch raises RuntimeError, strict or not
        model.load_state_dict(sd)
    message = str(info.value)
    assert "size mismatch for 2.weight" in message and "(8, 4)" in message
    assert "(4, 8)" in message
    _assert_unchanged(model, before)
    with pytest.raises(RuntimeError, match=r"\(4, 8\)"):
        model.load_state_dict(sd, strict=False)
    _assert_unchanged(model, before)


def test_non_numeric_value_is_refused_and_changes_nothing():
    model = nn.Linear(2, 2)
    before = _snapshot(model)
    with pytest.raises(TypeError, match="bias"):
        model.load_state_dict({"weight": np.zeros((2, 2)), "bias": np.array(["a", "b"])})
    _assert_unchanged(model, before)


def test_non_strict_load_reports_and_loads_the_rest():
    model = small_model()
    before = _snapshot(model)
    sd = {k: v + 1 for k, v in before.items() if k != "4.bias"}
    sd["extra.weight"] = np.zeros(2)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert missing == ["4.bias"] and unexpected == ["extra.weight"]
    after = _snapshot(model)
    np.testing.assert_array_equal(after["4.bias"], before["4.bias"])
    for k in sd:
        if k in after:
            np.testing.assert_array_equal(after[k], before[k] + 1)


# ---------------------------------------------------------------- Linear


@settings(max_examples=30, deadline=None)
@given(
    n_in=st.integers(1, 9),
    n_out=st.integers(1, 9),
    lead=st.lists(st.integers(1, 4), max_size=2),
    bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_linear_shapes_and_formula(n_in, n_out, lead, bias, seed):
    tm.manual_seed(seed)
    layer = nn.Linear(n_in, n_out, bias=bias)
    assert layer.weight.shape == (n_out, n_in) and layer.weight.dtype == np.float32
    assert (layer.bias is not None) == bias
    names = [n for n, _ in layer.named_parameters()]
    assert names == (["weight", "bias"] if bias else ["weight"])
    x = np.random.default_rng(seed).standard_normal((*lead, n_in)).astype(np.float32)
    out = layer(T(x))
    assert out.shape == (*lead, n_out) and out.dtype == np.float32
    expected = x @ layer.weight.numpy().T + (layer.bias.numpy() if bias else 0)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_linear_default_init_is_uniform_within_one_over_sqrt_in():
    tm.manual_seed(0)
    layer = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    for p in (layer.weight.numpy(), layer.bias.numpy()):
        assert np.all(np.abs(p) <= bound)
        assert p.max() > 0.95 * bound and p.min() < -0.95 * bound
    w = layer.weight.numpy()
    assert abs(w.mean()) < 0.01 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.01 * bound  # the std of U(-a, a)


def test_init_is_reproducible_with_manual_seed():
    tm.manual_seed(5)
    first = nn.Linear(10, 4).state_dict()
    tm.manual_seed(5)
    second = nn.Linear(10, 4).state_dict()
    tm.manual_seed(6)
    third = nn.Linear(10, 4).state_dict()
    for k in first:
        np.testing.assert_array_equal(first[k].numpy(), second[k].numpy())
    assert not np.array_equal(first["weight"].numpy(), third["weight"].numpy())


def test_linear_dtype_float64_and_argument_checks():
    layer = nn.Linear(3, 2, dtype=F64)
    assert layer.weight.dtype == F64 and layer.bias.dtype == F64
    assert layer(t64(np.ones((4, 3)), False)).dtype == F64
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="in_features"):
            nn.Linear(bad, 2)
        with pytest.raises(ValueError, match="out_features"):
            nn.Linear(2, bad)
    with pytest.raises(ValueError, match="in_features = 3"):
        layer(t64(np.ones((4, 2)), False))


# ---------------------------------------------------------------- Sequential and repr


def test_sequential_indexing_len_iteration_and_slicing():
    model = small_model()
    assert len(model) == 6
    assert isinstance(model[0], nn.Linear) and isinstance(model[-1], nn.LogSoftmax)
    assert [type(m).__name__ for m in model] == [
        "Linear",
        "ReLU",
        "Linear",
        "Tanh",
        "Linear",
        "LogSoftmax",
    ]
    head = model[:2]
    assert isinstance(head, nn.Sequential) and len(head) == 2
    assert head[0] is model[0]
    tail = model[2:]  # a slice keeps the layers' names, as in PyTorch
    assert [n for n, _ in tail.named_parameters()] == ["2.weight", "2.bias", "4.weight", "4.bias"]
    assert tail[0].weight is model[2].weight
    x = batch()
    np.testing.assert_allclose(tail(head(x)).numpy(), model(x).numpy(), rtol=1e-6)
    manual = x
    for m in model:
        manual = m(manual)
    np.testing.assert_array_equal(manual.numpy(), model(x).numpy())
    with pytest.raises(IndexError):
        model[6]
    with pytest.raises(TypeError):
        nn.Sequential(nn.ReLU(), lambda x: x)


def test_reprs():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Dropout(0.25), nn.Linear(3, 1, bias=False))
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Linear(in_features=2, out_features=3, bias=True)\n"
        "  (1): ReLU()\n"
        "  (2): Dropout(p=0.25, inplace=False)\n"
        "  (3): Linear(in_features=3, out_features=1, bias=False)\n"
        ")"
    )

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(1, 1), nn.Sigmoid())
            self.head = nn.Softmax()

    assert repr(Net()) == (
        "Net(\n"
        "  (body): Sequential(\n"
        "    (0): Linear(in_features=1, out_features=1, bias=True)\n"
        "    (1): Sigmoid()\n"
        "  )\n"
        "  (head): Softmax(dim=None)\n"
        ")"
    )
    assert repr(nn.Parameter(np.zeros(1))).startswith("Parameter containing:\n")


# ---------------------------------------------------------------- activations and Dropout


def test_activation_modules_match_numpy():
    z = np.random.default_rng(0).standard_normal((4, 5))
    x = t64(z, False)
    e = np.exp(z - z.max(1, keepdims=True))
    softmax = e / e.sum(1, keepdims=True)
    cases = {
        nn.ReLU(): np.maximum(z, 0),
        nn.Sigmoid(): 1 / (1 + np.exp(-z)),
        nn.Tanh(): np.tanh(z),
        nn.Softmax(): softmax,
        nn.LogSoftmax(): np.log(softmax),
        nn.Identity(): z,
    }
    for module, expected in cases.items():
        np.testing.assert_allclose(module(x).numpy(), expected, rtol=1e-12, err_msg=repr(module))
    e0 = np.exp(z - z.max(0, keepdims=True))
    np.testing.assert_allclose(nn.Softmax(0)(x).numpy(), e0 / e0.sum(0), rtol=1e-12)
    assert nn.Flatten()(t64(np.zeros((2, 3, 4)), False)).shape == (2, 12)


def test_dropout_statistics_in_training():
    p = 0.3
    drop = nn.Dropout(p)
    tm.manual_seed(0)
    out = drop(T(np.ones((200, 500)))).numpy()
    dropped = out == 0
    assert abs(dropped.mean() - p) < 0.01  # ~7 standard deviations of the mean of 1e5 draws
    np.testing.assert_allclose(out[~dropped], 1 / (1 - p), rtol=1e-6)
    assert abs(out.mean() - 1) < 0.02  # inverted dropout keeps the expectation


def test_dropout_is_the_identity_in_eval_and_reproducible_with_seed():
    drop = nn.Dropout(0.5)
    x = T(np.random.default_rng(0).standard_normal((50, 40)), dtype=np.float32)
    tm.manual_seed(11)
    a = drop(x).numpy()
    tm.manual_seed(11)
    b = drop(x).numpy()
    c = drop(x).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    drop.eval()
    np.testing.assert_array_equal(drop(x).numpy(), x.numpy())
    model = nn.Sequential(nn.Linear(40, 40), nn.Dropout(0.9)).eval()
    np.testing.assert_array_equal(model(x).numpy(), model[0](x).numpy())


def test_dropout_extremes_gradient_and_checks():
    x = T(np.ones((30, 30)), requires_grad=True)
    np.testing.assert_array_equal(nn.Dropout(0.0)(x).numpy(), x.numpy())
    assert not np.any(nn.Dropout(1.0)(x).numpy())
    tm.manual_seed(2)
    out = nn.Dropout(0.4)(x)
    out.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), (out.numpy() != 0) / 0.6, rtol=1e-6)
    for bad in (-0.1, 1.5, "0.5"):
        with pytest.raises(ValueError):
            nn.Dropout(bad)


# ---------------------------------------------------------------- gradient checks in float64


def _away_from_zero(shape, seed):
    z = np.random.default_rng(seed).standard_normal(shape)
    return np.sign(z) * (0.1 + np.abs(z))


ACTIVATIONS = [
    nn.ReLU(),
    nn.Sigmoid(),
    nn.Tanh(),
    nn.Softmax(),
    nn.Softmax(0),
    nn.LogSoftmax(),
    nn.LogSoftmax(0),
    nn.Identity(),
    nn.Softmin(1),
    nn.GLU(),
    nn.Threshold(0.3, -1.0),
]


@pytest.mark.parametrize("module", ACTIVATIONS, ids=lambda m: repr(m))
def test_gradcheck_activation(module):
    x = t64(_away_from_zero((3, 4), 0))
    assert tm.gradcheck(module, [x])


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(4, 3), (3,), (2, 2, 3)])
def test_gradcheck_linear(bias, shape):
    tm.manual_seed(1)
    layer = nn.Linear(3, 2, bias=bias, dtype=F64)
    x = t64(np.random.default_rng(2).standard_normal(shape))
    assert tm.gradcheck(lambda x, *params: layer(x), [x, *layer.parameters()])


def test_gradcheck_flatten_and_dropout():
    x = t64(np.random.default_rng(3).standard_normal((2, 3, 2)))
    assert tm.gradcheck(nn.Flatten(), [x])
    drop = nn.Dropout(0.5)

    def fixed_mask(x):
        tm.manual_seed(4)  # the same mask on every evaluation
        return drop(x)

    assert tm.gradcheck(fixed_mask, [x])
    drop.eval()
    assert tm.gradcheck(drop, [x])


def test_gradcheck_sequential_with_its_parameters():
    tm.manual_seed(8)
    model = nn.Sequential(
        nn.Linear(6, 8, dtype=F64),
        nn.ReLU(),
        nn.Linear(8, 4, dtype=F64),
        nn.Sigmoid(),
        nn.Linear(4, 3, dtype=F64),
        nn.Tanh(),
        nn.Linear(3, 3, dtype=F64),
        nn.Softmax(),
        nn.LogSoftmax(),
    )
    x = t64(np.random.default_rng(9).standard_normal((3, 6)))
    assert tm.gradcheck(lambda x, *params: model(x), [x, *model.parameters()])


def test_gradcheck_custom_module():
    tm.manual_seed(3)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = [nn.Linear(3, 4, dtype=F64), {"out": nn.Linear(4, 2, dtype=F64)}]
            self.gain = nn.Parameter(np.array([1.5, -0.5]), dtype=F64)

        def forward(self, x):
            return self.layers[1]["out"](self.layers[0](x).tanh()) * self.gain

    net = Net()
    assert len(list(net.parameters())) == 5
    x = t64(np.random.default_rng(4).standard_normal((2, 3)))
    assert tm.gradcheck(lambda x, *params: net(x), [x, *net.parameters()])


# ---------------------------------------------------------------- PyTorch interchange


def _torch_model(torch):
    tn = torch.nn
    return tn.Sequential(
        tn.Linear(6, 8),
        tn.ReLU(),
        tn.Linear(8, 4),
        tn.Tanh(),
        tn.Linear(4, 3),
        tn.LogSoftmax(dim=-1),
    )


def test_state_dict_loads_into_torch_and_back():
    torch = pytest.importorskip("torch")
    model = small_model(seed=0)
    reference = _torch_model(torch)
    assert list(reference.state_dict()) == list(model.state_dict())
    reference.load_state_dict(
        {k: torch.from_numpy(v.numpy()) for k, v in model.state_dict().items()}
    )
    x = batch(7)
    target = np.array([0, 1, 2, 2, 1, 0, 1])
    out = model(x)
    expected = reference(torch.from_numpy(x.numpy()))
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-5, atol=1e-6)
    # and the gradients of a loss on top agree too
    tm.nn.functional.nll_loss(out, target).backward()
    torch.nn.functional.nll_loss(expected, torch.from_numpy(target)).backward()
    for (name, p), q in zip(model.named_parameters(), reference.parameters(), strict=True):
        np.testing.assert_allclose(
            p.grad.numpy(), q.grad.numpy(), rtol=1e-4, atol=1e-6, err_msg=name
        )
    # back: a model trained in torch runs here
    torch.manual_seed(0)
    reference = _torch_model(torch)
    fresh = small_model(seed=1)
    fresh.load_state_dict({k: v.detach().numpy() for k, v in reference.state_dict().items()})
    expected = reference(torch.from_numpy(x.numpy())).detach().numpy()
    np.testing.assert_allclose(fresh(x).numpy(), expected, rtol=1e-5, atol=1e-6)


ACTIVATION_MODULES = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, None: None}


def _stack(widths, acts, breaks, biases):
    """Linear layers of the given widths, each followed by its activation module (if any) and,
    where ``breaks`` says so, by a module that the fused op does not cover (Identity)."""
    layers = []
    for i, act in enumerate(acts):
        layers.append(nn.Linear(widths[i], widths[i + 1], bias=biases[i]))
        if ACTIVATION_MODULES[act] is not None:
            layers.append(ACTIVATION_MODULES[act]())
        if breaks[i]:
            layers.append(nn.Identity())
    return nn.Sequential(*layers)


def _torch_twin(torch, model):
    """The same stack in PyTorch, holding copies of ``model``'s parameters."""
    layers = []
    for m in model:
        if type(m) is nn.Linear:
            twin = torch.nn.Linear(m.in_features, m.out_features, bias=m.bias is not None)
            with torch.no_grad():
                for ours, theirs in zip(m.parameters(), twin.parameters(), strict=True):
                    theirs.copy_(torch.from_numpy(ours.numpy()))
                    theirs.requires_grad_(ours.requires_grad)
            layers.append(twin)
        else:
            layers.append(getattr(torch.nn, type(m).__name__)())
    return torch.nn.Sequential(*layers)


@settings(max_examples=40)
@given(
    depth=st.integers(1, 4),
    data=st.data(),
    batch=st.integers(1, 6),
    input_grad=st.booleans(),
    frozen=st.integers(-1, 3),
)
def test_sequential_fused_stack_matches_torch(depth, data, batch, input_grad, frozen):
    torch = pytest.importorskip("torch")
    widths = data.draw(st.lists(st.integers(1, 6), min_size=depth + 1, max_size=depth + 1))
    acts = data.draw(
        st.lists(st.sampled_from(list(ACTIVATION_MODULES)), min_size=depth, max_size=depth)
    )
    breaks = data.draw(st.lists(st.booleans(), min_size=depth, max_size=depth))
    # mostly with biases: a Linear without one runs its stack module by module
    biases = data.draw(
        st.lists(st.sampled_from([True] * 5 + [False]), min_size=depth, max_size=depth)
    )
    tm.manual_seed(data.draw(st.integers(0, 99)))
    model = _stack(widths, acts, breaks, biases)
    if 0 <= frozen < depth:  # a frozen layer: the gradient still has to pass through it
        linears = [m for m in model if type(m) is nn.Linear]
        for p in linears[frozen].parameters():
            p.requires_grad = False
    reference = _torch_twin(torch, model)
    x_data = np.random.default_rng(1).standard_normal((batch, widths[0])).astype(np.float32)
    seed = np.random.default_rng(2).standard_normal((batch, widths[-1])).astype(np.float32)

    x = T(x_data, requires_grad=input_grad)
    fused = model(x)
    tx = torch.tensor(x_data, requires_grad=input_grad)
    expected = reference(tx)
    if not breaks[-1] and all(biases):
        assert fused.op == "mlp" or not fused.requires_grad
    np.testing.assert_allclose(fused.numpy(), expected.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert fused.requires_grad == expected.requires_grad
    if not fused.requires_grad:  # the one layer is frozen and x needs no gradient
        return
    fused.backward(seed)
    expected.backward(torch.from_numpy(seed))
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        if q.grad is None:
            assert p.grad is None
        else:
            np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-4, atol=1e-5)
    if input_grad:
        np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-5)
    else:
        assert x.grad is None


def test_sequential_fuses_each_run_of_linear_layers_into_one_node():
    model = nn.Sequential(
        nn.Linear(4, 5),
        nn.ReLU(),
        nn.Linear(5, 5),
        nn.Tanh(),
        nn.Dropout(0.0),
        nn.Linear(5, 3),
        nn.Linear(3, 2),
        nn.Sigmoid(),
    )
    out = model(T(np.ones((2, 4), np.float32)))
    assert out.op == "mlp" and len(out._node.inputs) == 1 + 2 * 2  # x, then W and b twice
    below = out._node.inputs[0]  # Dropout(0.0) returns its input: the output of the first run
    assert below.op == "mlp" and len(below._node.inputs) == 1 + 2 * 2


def test_sequential_stack_gradients_pass_finite_differences():
    tm.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(3, 4, dtype=F64), nn.Tanh(),
        nn.Linear(4, 4, dtype=F64), nn.Sigmoid(),
        nn.Linear(4, 2, dtype=F64),
    )  # fmt: skip
    x = t64(np.random.default_rng(0).standard_normal((5, 3)))
    params = [x, *model.parameters()]
    assert model(x).op == "mlp"
    tm.gradcheck(lambda x, *ps: model(x), params)


def test_sequential_stack_refuses_mismatched_input_naming_the_layer():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    # the error names the user's layer, not the fused op
    message = r"Sequential layer 0 \(Linear\): .*input of shape \(2, 5\) does not fit weight"
    with pytest.raises(ValueError, match=message):
        model(T(np.ones((2, 5), np.float32)))
    message = r"Sequential layer 0 \(Linear\): .*input dtype float64 differs from weight dtype"
    with pytest.raises(TypeError, match=message):
        model(T(np.ones((2, 4)), dtype=np.float64))
    wide = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(5, 2))
    with pytest.raises(ValueError, match=r"Sequential layer 2 \(Linear\): .*\(2, 3\)"):
        wide(T(np.ones((2, 4), np.float32)))
    with pytest.raises(TypeError, match="must be a Tensor"):
        model(np.ones((2, 4), np.float32))
    # a single sample (1-D) runs module by module, as PyTorch allows
    assert model(T(np.ones(4, np.float32))).shape == (2,)
