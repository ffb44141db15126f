"""Layers and activations: values by hand, gradients by finite differences, and PyTorch."""

from __future__ import annotations

import math

import numpy as np
import pytest
from tensors import T

import tinygrad_mlp as tm
from tinygrad_mlp import nn
from tinygrad_mlp.nn import functional as F

F64 = np.float64
RNG = np.random.default_rng(0)
Z = np.sign(RNG.standard_normal((4, 5))) * (0.05 + np.abs(RNG.standard_normal((4, 5)) * 2))


def t64(array, requires_grad=True):
    return T(np.asarray(array, dtype=F64), requires_grad=requires_grad)


def _sig(z):
    return 1 / (1 + np.exp(-z))


def _softplus(z, beta=1.0, threshold=20.0):
    return np.where(beta * z > threshold, z, np.log1p(np.exp(beta * z)) / beta)


def _phi(z):
    return 0.5 * (1 + np.vectorize(math.erf)(z / math.sqrt(2)))


# module, its value written out by hand, the matching torch module (by name and arguments)
ACTIVATIONS = [
    (nn.ReLU(), lambda z: np.maximum(z, 0), ("ReLU", {})),
    (nn.LeakyReLU(), lambda z: np.where(z > 0, z, 0.01 * z), ("LeakyReLU", {})),
    (
        nn.LeakyReLU(0.2),
        lambda z: np.where(z > 0, z, 0.2 * z),
        ("LeakyReLU", {"negative_slope": 0.2}),
    ),
    (nn.ELU(), lambda z: np.where(z > 0, z, np.expm1(z)), ("ELU", {})),
    (nn.ELU(0.5), lambda z: np.where(z > 0, z, 0.5 * np.expm1(z)), ("ELU", {"alpha": 0.5})),
    (nn.GELU(), lambda z: z * _phi(z), ("GELU", {})),
    (
        nn.GELU("tanh"),
        lambda z: 0.5 * z * (1 + np.tanh(math.sqrt(2 / math.pi) * (z + 0.044715 * z**3))),
        ("GELU", {"approximate": "tanh"}),
    ),
    (nn.SiLU(), lambda z: z * _sig(z), ("SiLU", {})),
    (nn.Softplus(), _softplus, ("Softplus", {})),
    (
        nn.Softplus(beta=2.0, threshold=1.0),
        lambda z: _softplus(z, 2.0, 1.0),
        ("Softplus", {"beta": 2.0, "threshold": 1.0}),
    ),
    (nn.Mish(), lambda z: z * np.tanh(_softplus(z)), ("Mish", {})),
    (nn.Hardtanh(), lambda z: np.clip(z, -1, 1), ("Hardtanh", {})),
    (
        nn.Hardtanh(-0.5, 2.0),
        lambda z: np.clip(z, -0.5, 2.0),
        ("Hardtanh", {"min_val": -0.5, "max_val": 2.0}),
    ),
    (nn.ReLU6(), lambda z: np.clip(z, 0, 6), ("ReLU6", {})),
    (nn.Sigmoid(), _sig, ("Sigmoid", {})),
    (nn.Tanh(), np.tanh, ("Tanh", {})),
    (
        nn.Softmax(dim=1),
        lambda z: np.exp(z) / np.exp(z).sum(1, keepdims=True),
        ("Softmax", {"dim": 1}),
    ),
    (
        nn.LogSoftmax(dim=0),
        lambda z: z - np.log(np.exp(z).sum(0, keepdims=True)),
        ("LogSoftmax", {"dim": 0}),
    ),
]
IDS = [repr(m) for m, _, _ in ACTIVATIONS]
FUNCTIONAL = {
    "ReLU": F.relu,
    "LeakyReLU": F.leaky_relu,
    "ELU": F.elu,
    "GELU": F.gelu,
    "SiLU": F.silu,
    "Softplus": F.softplus,
    "Mish": F.mish,
    "Hardtanh": F.hardtanh,
    "ReLU6": F.relu6,
    "Sigmoid": F.sigmoid,
    "Tanh": F.tanh,
    "Softmax": F.softmax,
    "LogSoftmax": F.log_softmax,
}


@pytest.mark.parametrize(("module", "by_hand", "torch_spec"), ACTIVATIONS, ids=IDS)
def test_activation_values_by_hand_and_functional_form(module, by_hand, torch_spec):
    x = t64(Z, False)
    np.testing.assert_allclose(module(x).numpy(), by_hand(Z), rtol=1e-10, atol=1e-12)
    name, kwargs = torch_spec
    np.testing.assert_allclose(
        FUNCTIONAL[name](x, **kwargs).numpy(), by_hand(Z), rtol=1e-10, atol=1e-12
    )


@pytest.mark.parametrize(("module", "by_hand", "torch_spec"), ACTIVATIONS, ids=IDS)
def test_activation_gradients_pass_gradcheck(module, by_hand, torch_spec):
    assert tm.gradcheck(module, [t64(Z)])


@pytest.mark.parametrize(("module", "by_hand", "torch_spec"), ACTIVATIONS, ids=IDS)
def test_activation_matches_torch(module, by_hand, torch_spec):
    torch = pytest.importorskip("torch")
    name, kwargs = torch_spec
    reference = getattr(torch.nn, name)(**kwargs)
    x = t64(Z)
    tx = torch.tensor(Z, requires_grad=True)
    out, tout = module(x), reference(tx)
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    weights = np.cos(np.arange(Z.size).reshape(Z.shape))
    (out * t64(weights, False)).sum().backward()
    (tout * torch.tensor(weights)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-9, atol=1e-12)
    assert repr(module) == repr(reference)


@pytest.mark.parametrize(("module", "by_hand", "torch_spec"), ACTIVATIONS, ids=IDS)
def test_every_elementwise_activation_fuses_into_the_stack_and_matches_torch(
    module, by_hand, torch_spec
):
    if isinstance(module, nn.Softmax):  # softmax and log-softmax are not elementwise
        assert getattr(module, "_fused_act", None) is None
        return
    torch = pytest.importorskip("torch")
    tm.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 6, dtype=F64), module, nn.Linear(6, 3, dtype=F64), module)
    x = t64(Z)
    fused = model(x)
    assert fused.grad_fn is not None and fused.grad_fn.op.name == "mlp"
    assert len(fused.grad_fn.inputs) == 5  # one node: x, then weight and bias twice
    weights = np.cos(np.arange(12.0)).reshape(4, 3)
    (fused * t64(weights, False)).sum().backward()

    name, kwargs = torch_spec
    act = getattr(torch.nn, name)(**kwargs)
    linears = [
        torch.nn.Linear(5, 6, dtype=torch.float64),
        torch.nn.Linear(6, 3, dtype=torch.float64),
    ]
    reference = torch.nn.Sequential(linears[0], act, linears[1], act)
    with torch.no_grad():
        for ours, theirs in zip(model[::2], linears, strict=True):
            theirs.weight.copy_(torch.from_numpy(ours.weight.numpy()))
            theirs.bias.copy_(torch.from_numpy(ours.bias.numpy()))
    tx = torch.tensor(Z, requires_grad=True)
    out = reference(tx)
    (out * torch.from_numpy(weights)).sum().backward()
    np.testing.assert_allclose(fused.numpy(), out.detach().numpy(), rtol=1e-12, atol=1e-14)
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-13)


def test_a_module_without_a_fused_form_splits_the_stack():
    class Double(nn.Module):
        def forward(self, x):
            return x * 2

    model = nn.Sequential(nn.Linear(5, 4), Double(), nn.Linear(4, 2))
    out = model(T(Z.astype(np.float32)))
    assert out.grad_fn is None or len(out.grad_fn.inputs) <= 3
    (w0, b0), (w2, b2) = ([p.numpy() for p in model[i].parameters()] for i in (0, 2))
    expected = ((Z @ w0.T + b0) * 2) @ w2.T + b2
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_activation_argument_checks():
    with pytest.raises(ValueError, match="approximate"):
        nn.GELU("fast")
    with pytest.raises(RuntimeError, match="approximate"):
        F.gelu(t64(Z), approximate="fast")
    with pytest.raises(ValueError, match="min_val cannot be greater than max_val"):
        nn.Hardtanh(1.0, -1.0)


# ---------------------------------------------------------------- BatchNorm1d


def _bn_pair(torch, **kwargs):
    ours = nn.BatchNorm1d(3, dtype=F64, **kwargs)
    theirs = torch.nn.BatchNorm1d(3, dtype=torch.float64, **kwargs)
    if ours.affine:
        ours.weight.data[...] = [0.5, 1.5, -2.0]
        with torch.no_grad():
            theirs.weight.copy_(torch.tensor([0.5, 1.5, -2.0], dtype=torch.float64))
    if ours.bias is not None:
        ours.bias.data[...] = [0.1, -0.2, 0.3]
        with torch.no_grad():
            theirs.bias.copy_(torch.tensor([0.1, -0.2, 0.3], dtype=torch.float64))
    return ours, theirs


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"momentum": 0.3, "eps": 1e-3},
        {"momentum": None},
        {"affine": False},
        {"track_running_stats": False},
        {"bias": False},
    ],
    ids=repr,
)
@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5)])
def test_batchnorm_matches_torch_over_several_steps(kwargs, shape):
    torch = pytest.importorskip("torch")
    ours, theirs = _bn_pair(torch, **kwargs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    rng = np.random.default_rng(1)
    for step in range(4):
        data = rng.standard_normal(shape) * (step + 1) + step
        x, tx = t64(data), torch.tensor(data, requires_grad=True)
        out, tout = ours(x), theirs(tx)
        np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-10, atol=1e-12)
        w = np.sin(np.arange(data.size)).reshape(shape)
        (out * t64(w, False)).sum().backward()
        (tout * torch.tensor(w)).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-9, atol=1e-12)
        if ours.affine:
            np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy())
            ours.zero_grad()
            theirs.zero_grad()
        for key, value in theirs.state_dict().items():
            np.testing.assert_allclose(ours.state_dict()[key].numpy(), value.numpy(), rtol=1e-12)
    ours.eval()
    theirs.eval()
    data = rng.standard_normal(shape)
    np.testing.assert_allclose(
        ours(t64(data)).numpy(), theirs(torch.tensor(data)).detach().numpy(), rtol=1e-10
    )


def test_batchnorm_running_statistics_by_hand():
    bn = nn.BatchNorm1d(2, momentum=0.25, dtype=F64)
    a = np.array([[1.0, 10.0], [3.0, 20.0], [5.0, 60.0]])
    out = bn(t64(a))
    mean, var = a.mean(0), a.var(0)  # normalised by the biased variance
    np.testing.assert_allclose(out.numpy(), (a - mean) / np.sqrt(var + 1e-5), rtol=1e-12)
    # running statistics: unbiased variance, r = 0.75 r + 0.25 stat
    np.testing.assert_allclose(bn.running_mean.numpy(), 0.25 * mean)
    np.testing.assert_allclose(bn.running_var.numpy(), 0.75 + 0.25 * a.var(0, ddof=1))
    assert bn.num_batches_tracked.item() == 1 and bn.num_batches_tracked.dtype == np.int64
    cumulative = nn.BatchNorm1d(2, momentum=None, dtype=F64)
    b = a * 2
    cumulative(t64(a))
    cumulative(t64(b))
    np.testing.assert_allclose(cumulative.running_mean.numpy(), (a.mean(0) + b.mean(0)) / 2)
    bn.eval()
    np.testing.assert_allclose(
        bn(t64(a)).numpy(),
        (a - bn.running_mean.numpy()) / np.sqrt(bn.running_var.numpy() + 1e-5),
        rtol=1e-12,
    )


def test_batchnorm_refusals_and_buffers():
    bn = nn.BatchNorm1d(3)
    with pytest.raises(ValueError, match="expected 2D or 3D input"):
        bn(T(np.zeros(3, np.float32)))
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        bn(T(np.zeros((1, 3), np.float32)))
    with pytest.raises(ValueError, match="3"):
        bn(T(np.zeros((4, 2), np.float32)))
    assert [n for n, _ in bn.named_buffers()] == [
        "running_mean",
        "running_var",
        "num_batches_tracked",
    ]
    assert [n for n, _ in bn.named_parameters()] == ["weight", "bias"]
    bn.double()
    assert bn.running_mean.dtype == F64 and bn.weight.dtype == F64
    assert bn.num_batches_tracked.dtype == np.int64  # integer buffers keep their dtype


# ---------------------------------------------------------------- LayerNorm, Embedding, shapes


@pytest.mark.parametrize(
    "kwargs", [{}, {"elementwise_affine": False}, {"bias": False}, {"eps": 0.1}], ids=repr
)
@pytest.mark.parametrize("shape", [(5,), (4, 5)])
def test_layernorm_matches_torch(kwargs, shape):
    torch = pytest.importorskip("torch")
    ours = nn.LayerNorm(shape, dtype=F64, **kwargs)
    theirs = torch.nn.LayerNorm(shape, dtype=torch.float64, **kwargs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    if ours.weight is not None:
        w = np.linspace(0.5, 2, math.prod(shape)).reshape(shape)
        ours.weight.data[...] = w
        with torch.no_grad():
            theirs.weight.copy_(torch.tensor(w))
    data = np.random.default_rng(2).standard_normal((3, 4, 5))
    x, tx = t64(data), torch.tensor(data, requires_grad=True)
    out, tout = ours(x), theirs(tx)
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = np.cos(np.arange(data.size)).reshape(data.shape)
    (out * t64(g, False)).sum().backward()
    (tout * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-9, atol=1e-12)
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters(), strict=True):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-9, err_msg=name)


def test_layernorm_by_hand_and_refusal():
    ln = nn.LayerNorm(3, dtype=F64)
    a = np.array([[1.0, 2.0, 6.0]])
    expected = (a - 3.0) / np.sqrt(a.var() + 1e-5)
    np.testing.assert_allclose(ln(t64(a)).numpy(), expected, rtol=1e-12)
    with pytest.raises(RuntimeError, match="normalized_shape"):
        ln(t64(np.zeros((2, 4))))


def test_embedding_rows_padding_and_gradient():
    tm.manual_seed(0)
    emb = nn.Embedding(5, 3, padding_idx=1, dtype=F64)
    np.testing.assert_array_equal(emb.weight.numpy()[1], 0)  # the padding row starts at zero
    idx = np.array([[0, 1, 4], [4, 4, 1]])
    out = emb(tm.tensor(idx))
    assert out.shape == (2, 3, 3)
    np.testing.assert_array_equal(out.numpy(), emb.weight.numpy()[idx])
    out.sum().backward()
    # each row's gradient counts its uses; the padding row gets none
    np.testing.assert_array_equal(emb.weight.grad.numpy()[:, 0], [1, 0, 0, 0, 3])
    with pytest.raises(IndexError, match="index out of range"):
        emb(tm.tensor([5]))
    with pytest.raises(RuntimeError, match="indices"):
        emb(T([0.5]))
    frozen = nn.Embedding.from_pretrained(T(np.eye(3)))
    assert not frozen.weight.requires_grad
    np.testing.assert_array_equal(frozen(tm.tensor([2, 0])).numpy(), [[0, 0, 1], [1, 0, 0]])


def test_embedding_matches_torch():
    torch = pytest.importorskip("torch")
    ours = nn.Embedding(6, 4, padding_idx=2, dtype=F64)
    theirs = torch.nn.Embedding(6, 4, padding_idx=2, dtype=torch.float64)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    theirs.load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in ours.state_dict().items()})
    idx = np.array([2, 3, 3, 5, 2, 0])
    out, tout = ours(tm.tensor(idx)), theirs(torch.tensor(idx))
    np.testing.assert_array_equal(out.numpy(), tout.detach().numpy())
    g = np.arange(24.0).reshape(6, 4)
    (out * t64(g, False)).sum().backward()
    (tout * torch.tensor(g)).sum().backward()
    np.testing.assert_array_equal(ours.weight.grad.numpy(), theirs.weight.grad.numpy())
    assert repr(ours) == repr(theirs)


def test_flatten_unflatten_identity_dropout():
    x = t64(np.arange(24.0).reshape(2, 3, 4))
    assert nn.Flatten()(x).shape == (2, 12)
    assert nn.Flatten(0, 1)(x).shape == (6, 4)
    assert nn.Flatten(start_dim=-2)(x).shape == (2, 12)
    assert nn.Unflatten(1, (3, 1))(t64(np.zeros((2, 3)))).shape == (2, 3, 1)
    assert nn.Unflatten(-1, (2, -1))(x).shape == (2, 3, 2, 2)
    with pytest.raises(RuntimeError, match="multiply up"):
        nn.Unflatten(1, (2, 2))(x)
    assert tm.gradcheck(nn.Flatten(0, 1), [x])
    assert nn.Identity(54, unused="x")(x) is x
    assert repr(nn.Flatten()) == "Flatten(start_dim=1, end_dim=-1)"


def test_linear_and_identity_repr_like_torch():
    torch = pytest.importorskip("torch")
    assert repr(nn.Linear(3, 2, bias=False)) == repr(torch.nn.Linear(3, 2, bias=False))
    assert repr(nn.Dropout(0.2)) == repr(torch.nn.Dropout(0.2))
    assert repr(nn.BatchNorm1d(4)) == repr(torch.nn.BatchNorm1d(4))
    assert repr(nn.LayerNorm(4)) == repr(torch.nn.LayerNorm(4))


# ---------------------------------------------------------------- functional extras


def test_one_hot():
    out = F.one_hot(tm.tensor([0, 2, 1]), 4)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out.numpy(), np.eye(4, dtype=np.int64)[[0, 2, 1]])
    assert F.one_hot(tm.tensor([[1], [3]])).shape == (2, 1, 4)  # num_classes = max + 1
    with pytest.raises(RuntimeError, match="smaller than num_classes"):
        F.one_hot(tm.tensor([3]), 3)
    with pytest.raises(RuntimeError, match="non-negative"):
        F.one_hot(tm.tensor([-1]))


def test_normalize_by_hand_and_torch():
    a = np.array([[3.0, 4.0], [0.0, 0.0]])
    np.testing.assert_allclose(F.normalize(t64(a)).numpy(), [[0.6, 0.8], [0, 0]])
    np.testing.assert_allclose(F.normalize(t64(a), p=1, dim=1).numpy(), [[3 / 7, 4 / 7], [0, 0]])
    torch = pytest.importorskip("torch")
    data = RNG.standard_normal((3, 4))
    x, tx = t64(data), torch.tensor(data, requires_grad=True)
    out, tout = F.normalize(x, dim=0), torch.nn.functional.normalize(tx, dim=0)
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-12)
    (out * t64(data, False)).sum().backward()
    (tout * torch.tensor(data)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("widths", [(1, 2), (0, 1, 2, 0), (-1, 1), (1, 1, 1, 1, 1, 1)])
def test_pad_matches_numpy_and_torch(widths):
    data = np.arange(24.0).reshape(2, 3, 4)
    x = t64(data)
    out = F.pad(x, widths, value=-1.0)
    torch = pytest.importorskip("torch")
    tx = torch.tensor(data, requires_grad=True)
    tout = torch.nn.functional.pad(tx, widths, value=-1.0)
    np.testing.assert_array_equal(out.numpy(), tout.detach().numpy())
    g = np.cos(np.arange(out.numel())).reshape(out.shape)
    (out * t64(g, False)).sum().backward()
    (tout * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy())


def test_functional_batch_norm_and_layer_norm_and_embedding():
    data = RNG.standard_normal((5, 3))
    mean, var = T(np.zeros(3)), T(np.ones(3))
    out = F.batch_norm(t64(data), mean, var, training=True, momentum=0.5)
    np.testing.assert_allclose(out.numpy(), (data - data.mean(0)) / np.sqrt(data.var(0) + 1e-5))
    np.testing.assert_allclose(mean.numpy(), 0.5 * data.mean(0))
    out = F.layer_norm(t64(data), (3,))
    np.testing.assert_allclose(
        out.numpy(),
        (data - data.mean(1, keepdims=True)) / np.sqrt(data.var(1, keepdims=True) + 1e-5),
    )
    w = t64(np.arange(6.0).reshape(3, 2))
    np.testing.assert_array_equal(F.embedding(tm.tensor([2, 0]), w).numpy(), [[4, 5], [0, 1]])


# ---------------------------------------------------------------- nn.utils


def _with_grads(*grads):
    params = [T(np.zeros_like(g), requires_grad=True) for g in grads]
    for p, g in zip(params, grads, strict=True):
        p.grad = T(np.array(g, dtype=F64))
    return params


def test_clip_grad_norm_by_hand():
    params = _with_grads(np.array([3.0, 0.0]), np.array([[4.0]]))
    total = nn.utils.clip_grad_norm_(params, max_norm=1.0)
    assert isinstance(total, tm.Tensor) and total.item() == pytest.approx(5.0)
    scale = 1.0 / (5.0 + 1e-6)
    np.testing.assert_allclose(params[0].grad.numpy(), [3 * scale, 0])
    np.testing.assert_allclose(params[1].grad.numpy(), [[4 * scale]])
    untouched = _with_grads(np.array([0.3, 0.4]))
    assert nn.utils.clip_grad_norm_(untouched, 1.0).item() == pytest.approx(0.5)
    np.testing.assert_array_equal(untouched[0].grad.numpy(), [0.3, 0.4])
    inf_norm = _with_grads(np.array([-3.0, 2.0]), np.array([1.0]))
    assert nn.utils.clip_grad_norm_(inf_norm, 10.0, norm_type="inf").item() == 3.0
    assert nn.utils.clip_grad_norm_(_with_grads(np.array([1.0, 2.0])), 9, 1).item() == 3.0
    bad = _with_grads(np.array([np.nan, 1.0]))
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_(bad, 1.0, error_if_nonfinite=True)


def test_clip_grad_norm_matches_torch():
    torch = pytest.importorskip("torch")
    grads = [RNG.standard_normal((3, 4)), RNG.standard_normal(5)]
    for norm_type in (2.0, 1.0, 3.0, math.inf):
        ours = _with_grads(*grads)
        theirs = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
        for t, g in zip(theirs, grads, strict=True):
            t.grad = torch.tensor(g)
        a = nn.utils.clip_grad_norm_(ours, 0.5, norm_type)
        b = torch.nn.utils.clip_grad_norm_(theirs, 0.5, norm_type)
        assert a.item() == pytest.approx(b.item(), rel=1e-12)
        for p, t in zip(ours, theirs, strict=True):
            np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-12)


def test_clip_grad_value_and_vectors():
    params = _with_grads(np.array([-3.0, 0.5]), np.array([[2.0]]))
    nn.utils.clip_grad_value_(params, 1.0)
    np.testing.assert_array_equal(params[0].grad.numpy(), [-1.0, 0.5])
    np.testing.assert_array_equal(params[1].grad.numpy(), [[1.0]])
    a, b = T(np.array([1.0, 2.0])), T(np.array([[3.0], [4.0]]))
    vec = nn.utils.parameters_to_vector([a, b])
    np.testing.assert_array_equal(vec.numpy(), [1, 2, 3, 4])
    nn.utils.vector_to_parameters(T(np.array([5.0, 6.0, 7.0, 8.0])), [a, b])
    np.testing.assert_array_equal(b.numpy(), [[7], [8]])
    with pytest.raises(RuntimeError, match="3 elements"):
        nn.utils.vector_to_parameters(T(np.zeros(3)), [a, b])
