"""Module's API as PyTorch's: registration, buffers, containers, moves, state-dict keys."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
from tensors import T

import tinygrad_mlp as tm
from tinygrad_mlp import nn

F64 = np.float64


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            OrderedDict(fc=nn.Linear(4, 6), bn=nn.BatchNorm1d(6), act=nn.ReLU())
        )
        self.blocks = nn.ModuleList([nn.Linear(6, 6), nn.LayerNorm(6)])
        self.heads = nn.ModuleDict({"cls": nn.Linear(6, 3), "reg": nn.Linear(6, 1)})
        self.emb = nn.Embedding(10, 4, padding_idx=0)
        self.scales = nn.ParameterList(
            [nn.Parameter(np.ones(6, np.float32)), nn.Parameter(np.ones(3, np.float32))]
        )
        self.extra = nn.ParameterDict({"shift": nn.Parameter(np.zeros(3, np.float32))})
        self.register_buffer("steps", tm.tensor(0))
        self.register_buffer("cache", T(np.zeros(2)), persistent=False)

    def forward(self, idx):
        h = self.features(self.emb(idx))
        for block in self.blocks:
            h = block(h) * self.scales[0]
        return self.heads["cls"](h) * self.scales[1] + self.extra["shift"]


def _torch_net(torch):
    tn = torch.nn

    class TorchNet(tn.Module):
        def __init__(self):
            super().__init__()
            self.features = tn.Sequential(
                OrderedDict(fc=tn.Linear(4, 6), bn=tn.BatchNorm1d(6), act=tn.ReLU())
            )
            self.blocks = tn.ModuleList([tn.Linear(6, 6), tn.LayerNorm(6)])
            self.heads = tn.ModuleDict({"cls": tn.Linear(6, 3), "reg": tn.Linear(6, 1)})
            self.emb = tn.Embedding(10, 4, padding_idx=0)
            self.scales = tn.ParameterList(
                [tn.Parameter(torch.ones(6)), tn.Parameter(torch.ones(3))]
            )
            self.extra = tn.ParameterDict({"shift": tn.Parameter(torch.zeros(3))})
            self.register_buffer("steps", torch.tensor(0))
            self.register_buffer("cache", torch.zeros(2), persistent=False)

        def forward(self, idx):
            h = self.features(self.emb(idx))
            for block in self.blocks:
                h = block(h) * self.scales[0]
            return self.heads["cls"](h) * self.scales[1] + self.extra["shift"]

    return TorchNet()


def test_state_dict_keys_parameters_buffers_and_modules_as_torch():
    torch = pytest.importorskip("torch")
    ours, theirs = Net(), _torch_net(torch)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()]
    # the weights go across and give the same outputs
    theirs.load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in ours.state_dict().items()})
    idx = np.array([1, 2, 0, 9, 3])
    ours.eval()
    theirs.eval()
    np.testing.assert_allclose(
        ours(tm.tensor(idx)).numpy(),
        theirs(torch.tensor(idx)).detach().numpy(),
        rtol=1e-5,
        atol=1e-6,
    )
    back = Net()
    back.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    for k, v in back.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), ours.state_dict()[k].numpy(), err_msg=k)


def test_buffers_move_and_save_but_are_not_parameters():
    net = Net()
    names = [n for n, _ in net.named_buffers()]
    assert names == [
        "steps",
        "cache",
        "features.bn.running_mean",
        "features.bn.running_var",
        "features.bn.num_batches_tracked",
    ]
    assert "cache" not in net.state_dict() and "steps" in net.state_dict()
    assert all(not isinstance(b, nn.Parameter) for b in net.buffers())
    assert not any(p is b for p in net.parameters() for b in net.buffers())
    net.to(tm.float64)
    assert net.cache.dtype == F64 and net.features.bn.running_var.dtype == F64
    assert net.steps.dtype == np.int64 and all(p.dtype == F64 for p in net.parameters())
    net.float()
    assert net.cache.dtype == np.float32
    net.half()
    assert net.features.fc.weight.dtype == np.float16
    assert net.to("cpu") is net and net.cpu() is net
    net.cache = T(np.ones(2))  # assigning a tensor to a buffer name replaces the buffer
    assert net._buffers["cache"] is net.cache
    with pytest.raises(TypeError, match="buffer"):
        net.cache = [1, 2]
    with pytest.raises(KeyError, match="already exists"):
        net.register_buffer("emb", None)
    with pytest.raises(KeyError, match="contain"):
        net.register_buffer("a.b", None)


def test_registration_through_setattr_and_by_name():
    m = nn.Module()
    m.w = nn.Parameter(np.ones(2))
    m.child = nn.Linear(2, 2)
    m.register_parameter("b", None)
    m.add_module("other", nn.ReLU())
    assert [n for n, _ in m.named_parameters()] == ["w", "child.weight", "child.bias"]
    assert [n for n, _ in m.named_children()] == ["child", "other"]
    assert m.b is None and "b" not in m.state_dict()
    with pytest.raises(TypeError, match="cannot assign 'Tensor' as parameter 'w'"):
        m.w = T(np.ones(2))
    with pytest.raises(TypeError, match="cannot assign 'int' as child module 'child'"):
        m.child = 3
    m.child = None
    assert [n for n, _ in m.named_parameters()] == ["w"]
    del m.w
    assert list(m.parameters()) == []
    assert m.get_submodule("other") is m.other
    with pytest.raises(TypeError, match="not a Module"):
        m.add_module("x", 5)


def test_apply_requires_grad_train_eval():
    net = Net()
    seen = []
    assert net.apply(lambda mod: seen.append(type(mod).__name__)) is net
    assert seen[-1] == "Net" and seen.count("Linear") == 4  # children before their parent
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())
    net.requires_grad_()
    assert all(p.requires_grad for p in net.parameters())
    net.eval()
    assert not net.training and not net.features.bn.training and not net.blocks[1].training
    net.train()
    assert all(mod.training for mod in net.modules())
    with pytest.raises(ValueError, match="boolean"):
        net.train("yes")


def test_to_double_casts_parameters_in_place_and_trains():
    tm.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    params = list(model.parameters())
    model.double()
    assert [id(p) for p in model.parameters()] == [id(p) for p in params]
    out = model(T(np.ones((2, 3))))
    assert out.dtype == F64
    out.sum().backward()
    assert all(p.grad.dtype == F64 for p in model.parameters())
    with pytest.raises(TypeError, match="floating point"):
        model.to(tm.int64)


def test_sequential_from_ordered_dict_and_editing():
    seq = nn.Sequential(OrderedDict(first=nn.Linear(2, 3), act=nn.Tanh(), last=nn.Linear(3, 1)))
    assert [n for n, _ in seq.named_parameters()] == [
        "first.weight",
        "first.bias",
        "last.weight",
        "last.bias",
    ]
    assert seq.first is seq[0] and seq[-1] is seq.last
    assert (
        repr(seq).splitlines()[1] == "  (first): Linear(in_features=2, out_features=3, bias=True)"
    )
    seq.append(nn.Sigmoid())
    assert len(seq) == 4 and isinstance(seq[3], nn.Sigmoid)
    x = T(np.ones((5, 2), np.float32))
    fused = seq(x)
    assert fused.grad_fn.op.name == "mlp"
    manual = seq[3](seq[2](seq[1](seq[0](x))))
    np.testing.assert_allclose(fused.numpy(), manual.numpy(), rtol=1e-6)
    seq[1] = nn.ReLU()
    assert isinstance(seq.act, nn.ReLU)
    seq.insert(0, nn.Identity())
    assert isinstance(seq[0], nn.Identity) and len(seq) == 5
    del seq[0]
    assert isinstance(seq[0], nn.Linear) and len(seq) == 4


def test_module_list_and_dict():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    layers.append(nn.ReLU())
    layers.extend([nn.Tanh()])
    assert len(layers) == 5 and isinstance(layers[-1], nn.Tanh)
    assert [n for n, _ in layers.named_children()] == ["0", "1", "2", "3", "4"]
    assert isinstance(layers[1:3], nn.ModuleList) and len(layers[1:3]) == 2
    layers.insert(1, nn.Identity())
    assert isinstance(layers[1], nn.Identity) and len(layers) == 6
    del layers[1]
    assert [n for n, _ in layers.named_parameters()][:2] == ["0.weight", "0.bias"]
    heads = nn.ModuleDict({"a": nn.Linear(2, 1)})
    heads["b"] = nn.Linear(2, 2)
    heads.update([("c", nn.ReLU())])
    assert list(heads) == ["a", "b", "c"] and "b" in heads and len(heads) == 3
    assert list(heads.keys()) == ["a", "b", "c"]
    assert heads.pop("c").__class__ is nn.ReLU and "c" not in heads
    with pytest.raises(NotImplementedError):
        heads(1)


def test_parameter_list_and_dict():
    plist = nn.ParameterList([np.ones(2), T(np.zeros(3))])
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in plist)
    plist.append(nn.Parameter(np.ones(1)))
    assert [n for n, _ in plist.named_parameters()] == ["0", "1", "2"]
    pdict = nn.ParameterDict({"a": np.ones(2)})
    pdict["b"] = nn.Parameter(np.zeros(1))
    assert list(pdict) == ["a", "b"] and list(pdict.state_dict()) == ["a", "b"]


def test_load_state_dict_errors_list_every_problem_as_torch_does():
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    sd = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    del sd["1.running_var"]
    sd["1.extra"] = np.zeros(1)
    sd["0.weight"] = np.zeros((2, 3), np.float32)
    with pytest.raises(RuntimeError) as info:
        model.load_state_dict(sd)
    message = str(info.value)
    assert message.startswith("Error(s) in loading state_dict for Sequential:")
    assert 'Missing key(s) in state_dict: "1.running_var"' in message
    assert 'Unexpected key(s) in state_dict: "1.extra"' in message
    assert "size mismatch for 0.weight" in message
    result = model.load_state_dict({k: v for k, v in sd.items() if k != "0.weight"}, strict=False)
    assert result.missing_keys == ["0.weight", "1.running_var"]
    assert result.unexpected_keys == ["1.extra"]


def test_state_dict_clone_and_load_round_trip():
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    model(T(np.random.default_rng(0).standard_normal((4, 2)), dtype=np.float32))
    model[0].weight.data[...] = 7.0
    assert model[1].num_batches_tracked.item() == 1
    model.load_state_dict(saved)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), saved[k].numpy(), err_msg=k)


def test_extra_repr_of_a_custom_module():
    class Scale(nn.Module):
        def __init__(self, k):
            super().__init__()
            self.k = k

        def extra_repr(self):
            return f"k={self.k}"

    class Outer(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = Scale(2)

    assert repr(Scale(3)) == "Scale(k=3)"
    assert repr(Outer()) == "Outer(\n  (inner): Scale(k=2)\n)"
