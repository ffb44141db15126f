"""Behaviour a PyTorch script relies on, each checked against values worked out by hand: the
legacy Tensor constructor, norms at zero, BCE-with-logits' pos_weight at zero, hooks that fire
once per backward, devices, grad-mode decorators, copies, and state dicts of shared modules."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_mlp as tm
from tinygrad_mlp import nn

F = tm.functional


def test_tensor_takes_sizes_or_data():
    assert tm.Tensor(2, 3).shape == (2, 3) and tm.Tensor(2, 3).dtype == tm.float32
    assert tm.Tensor(5).shape == (5,)
    assert tm.Tensor().shape == (0,)
    assert np.array_equal(tm.Tensor((2, 3)).numpy(), [2.0, 3.0])  # a tuple is data
    assert tm.Tensor(0.5).shape == () and tm.Tensor(0.5).item() == 0.5
    assert tm.Tensor([1.0], True).requires_grad  # the older (data, requires_grad) form
    p = nn.Parameter(tm.Tensor(4, 3))
    nn.init.kaiming_uniform_(p)
    assert p.shape == (4, 3) and p.requires_grad and np.abs(p.numpy()).max() > 0
    with pytest.raises(TypeError, match="sizes"):
        tm.Tensor(2, "3")


def test_norms_have_a_zero_gradient_at_zero():
    w = tm.zeros(3, requires_grad=True)
    w.norm().backward()
    assert np.array_equal(w.grad.numpy(), [0.0, 0.0, 0.0])
    x = tm.tensor([[3.0, 4.0], [0.0, 0.0]], requires_grad=True)
    x.norm(dim=1).sum().backward()
    assert np.allclose(x.grad.numpy(), [[0.6, 0.8], [0.0, 0.0]])  # x / |x|, and 0 at 0
    x = tm.tensor([[0.0, 0.0], [1.0, -2.0]], requires_grad=True)
    x.norm(p=3, dim=1).sum().backward()
    # d/dx (sum |x|^3)^(1/3) = x |x| / n^2, n = 9^(1/3)
    n = 9.0 ** (1 / 3)
    assert np.allclose(x.grad.numpy(), [[0.0, 0.0], [1 / n**2, -4 / n**2]], atol=1e-6)
    x = tm.tensor([[3.0, 4.0], [0.0, 0.0]], requires_grad=True)
    F.normalize(x).sum().backward()
    g = x.grad.numpy()
    assert np.all(np.isfinite(g)) and np.allclose(g[1], 1e12, rtol=1e-5)  # x / eps there


def test_bce_with_logits_pos_weight_gradient_at_zero():
    # d/dx [(1 - y) x + (1 + (w - 1) y) softplus(-x)] = (1 - y) - (1 + (w - 1) y) sigmoid(-x)
    x = tm.zeros(2, requires_grad=True)
    y, w = np.array([1.0, 0.3], np.float32), np.array([3.0, 2.0], np.float32)
    F.binary_cross_entropy_with_logits(x, tm.tensor(y), pos_weight=tm.tensor(w)).backward()
    expected = ((1 - y) - (1 + (w - 1) * y) * 0.5) / 2
    assert np.allclose(x.grad.numpy(), expected)  # (-0.75, 0.025)


def test_a_post_accumulate_hook_fires_once_per_backward():
    x = tm.tensor([1.0, 2.0, 3.0], requires_grad=True)
    calls = []
    x.register_post_accumulate_grad_hook(lambda p: calls.append(p.grad.numpy().copy()))
    (x * x * x + x).sum().backward()  # four edges into x
    assert len(calls) == 1 and np.allclose(calls[0], 3 * np.array([1, 4, 9]) + 1)


def test_device_objects_go_where_device_names_go():
    device = tm.device("cuda" if tm.cuda.is_available() else "cpu")
    assert device == tm.backend.default_device() or device == "cuda"
    assert repr(tm.device("cpu")) == "device(type='cpu')"
    d = tm.device("cuda", 0)
    assert (d.type, d.index, str(d)) == ("cuda", 0, "cuda:0")
    assert repr(d) == "device(type='cuda', index=0)"
    cpu = tm.device("cpu")
    x = tm.zeros(2, 3, device=cpu).to(cpu)
    assert x.device == "cpu" and nn.Linear(3, 1).to(cpu)(x).shape == (2, 1)
    with pytest.raises(RuntimeError, match="tpu"):
        tm.device("tpu")
    assert isinstance(tm.cuda.device_count(), int)


def test_grad_mode_decorators_with_and_without_the_call():
    @tm.no_grad
    def bare(x):
        return x * 2

    @tm.inference_mode
    def bare_inference(x):
        return x * 2

    @tm.no_grad()
    def gen():
        yield tm.is_grad_enabled()
        yield tm.is_grad_enabled()

    x = tm.ones(1, requires_grad=True)
    assert not bare(x).requires_grad and not bare_inference(x).requires_grad
    assert bare.__name__ == "bare"
    assert list(gen()) == [False, False] and tm.is_grad_enabled()
    with tm.no_grad():
        assert tm.enable_grad(lambda t: t * 2)(x).requires_grad


def test_to_with_copy_makes_a_copy():
    x = tm.ones(2)
    y = x.to(tm.float32, copy=True)
    y[0] = 5.0
    assert np.array_equal(x.numpy(), [1.0, 1.0]) and x.to(tm.float32) is x


def test_a_shared_submodule_is_saved_under_each_name():
    layer = nn.Linear(2, 2)
    model = nn.Sequential(layer, nn.ReLU(), layer)
    state = model.state_dict()
    assert list(state) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert len(list(model.parameters())) == 2  # parameters() still counts each once
    state = {k: v.numpy() + 1 for k, v in state.items()}
    result = model.load_state_dict(state)
    assert not result.missing_keys and not result.unexpected_keys
    assert np.array_equal(layer.weight.detach().numpy(), state["2.weight"])


def test_sgd_has_pytorchs_default_lr_and_refuses_a_non_leaf():
    w = nn.Parameter(tm.ones(2))
    opt = tm.optim.SGD([w])
    assert opt.param_groups[0]["lr"] == 1e-3
    w.sum().backward()
    opt.step()
    assert np.allclose(w.detach().numpy(), 1 - 1e-3)
    with pytest.raises(ValueError, match="non-leaf"):
        tm.optim.SGD([nn.Parameter(tm.ones(2)) * 2], lr=0.1)
