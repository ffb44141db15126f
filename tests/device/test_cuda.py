"""CuPy on a GPU: tensors, an MLP against the CPU, device rules, optimizers.

The GPU tests are skipped, with the reason shown, where CuPy or a GPU is missing; the last test
checks the install hint where CuPy is not installed at all.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest
from tensors import T

import tinygrad_mlp as tm
import tinygrad_mlp.nn.functional as F
from tinygrad_mlp.autograd.graph import apply
from tinygrad_mlp.ops import OPS

HAS_CUDA = tm.cupy_available()
CUPY_INSTALLED = importlib.util.find_spec("cupy") is not None
SIMULATED = os.environ.get("TINYGRAD_MLP_SIMULATE_CUDA") == "1"

needs_cuda = pytest.mark.skipif(
    not HAS_CUDA, reason='needs CuPy and an NVIDIA GPU (pip install -e ".[cuda]")'
)


def _cupy():
    return tm.backend._load_cupy()  # CuPy, or the simulated CuPy under TINYGRAD_MLP_SIMULATE_CUDA


def _mlp(seed: int, device: str) -> tm.nn.Sequential:
    tm.manual_seed(seed)
    model = tm.nn.Sequential(
        tm.nn.Linear(6, 8, dtype="float64"),
        tm.nn.ReLU(),
        tm.nn.Linear(8, 5, dtype="float64"),
        tm.nn.Tanh(),
        tm.nn.Linear(5, 3, dtype="float64"),
    )
    return model.to(device)


@pytest.mark.cuda
@needs_cuda
def test_tensors_on_cuda():
    cp = _cupy()
    t = T([[1.0, -2.0], [3.0, 4.0]], device="cuda", requires_grad=True)
    assert t.device == "cuda" and isinstance(t._data, cp.ndarray)
    assert t.dtype == np.float32 and t.shape == (2, 2)
    assert "device='cuda:0'" in repr(t)  # as PyTorch prints it
    out = (t * 2.0 + 1.0).relu().sum()
    assert out.device == "cuda"
    assert out.item() == pytest.approx(19.0)  # relu([[3, -3], [7, 9]]) sums to 19
    out.backward()
    assert t.grad.device == "cuda" and isinstance(t.grad._data, cp.ndarray)
    np.testing.assert_array_equal(t.grad.numpy(), [[2.0, 0.0], [2.0, 2.0]])
    n = t.numpy()
    assert isinstance(n, np.ndarray)
    np.testing.assert_array_equal(n, [[1.0, -2.0], [3.0, 4.0]])
    assert T(cp.ones(3)).device == "cuda"  # a CuPy array stays on the GPU
    assert T(cp.ones(3)).dtype == np.float64


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("target", ["index", "one_hot"])
def test_mlp_forward_backward_matches_cpu(target):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((7, 6))
    labels = rng.integers(0, 3, 7)
    Y = labels if target == "index" else np.eye(3)[labels]
    losses, grads = {}, {}
    for device in ("cpu", "cuda"):
        model = _mlp(0, device)
        x = T(X, dtype="float64", device=device)
        loss = F.cross_entropy(model(x), tm.Tensor(Y, device=device) if target == "one_hot" else Y)
        assert loss.device == device
        loss.backward()
        losses[device] = loss.item()
        grads[device] = [p.grad.numpy() for p in model.parameters()]
        for p in model.parameters():
            assert p.device == device and p.grad is not None
    assert losses["cuda"] == pytest.approx(losses["cpu"], rel=1e-12)
    for g_cpu, g_gpu in zip(grads["cpu"], grads["cuda"], strict=True):
        np.testing.assert_allclose(g_gpu, g_cpu, rtol=1e-10, atol=1e-13)


@pytest.mark.cuda
@needs_cuda
def test_mixing_devices_raises_runtime_error():
    a = T([1.0, 2.0], device="cuda")
    b = T([3.0, 4.0], device="cpu")
    for fn in (lambda: a + b, lambda: b * a, lambda: a @ b):
        with pytest.raises(RuntimeError, match="device"):
            fn()
    model = _mlp(0, "cuda")
    with pytest.raises(RuntimeError):
        model(T(np.ones((2, 6)), dtype="float64", device="cpu"))


@pytest.mark.cuda
@needs_cuda
def test_to_cpu_and_back():
    cp = _cupy()
    t = T([1.5, 2.5], device="cuda", requires_grad=True)
    c = t.to("cpu")
    assert c.device == "cpu" and isinstance(c._data, np.ndarray) and c.requires_grad
    np.testing.assert_array_equal(c.numpy(), [1.5, 2.5])
    assert t.to("cuda") is t
    back = c.to("cuda")
    assert back.device == "cuda" and isinstance(back._data, cp.ndarray)
    assert t.cpu().device == "cpu" and c.cuda().device == "cuda"


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_optimizer_step_on_cuda(momentum):
    model = _mlp(1, "cuda")
    before = [p.numpy().copy() for p in model.parameters()]
    opt = tm.optim.SGD(model.parameters(), lr=0.1, momentum=momentum)
    x = T(np.random.default_rng(1).standard_normal((4, 6)), dtype="float64", device="cuda")
    F.mse_loss(model(x), T(np.zeros((4, 3)), dtype="float64", device="cuda")).backward()
    grads = [p.grad.numpy().copy() for p in model.parameters()]
    opt.step()
    for p, b, g in zip(model.parameters(), before, grads, strict=True):
        assert p.device == "cuda"
        np.testing.assert_allclose(p.numpy(), b - 0.1 * g, rtol=1e-12, atol=1e-15)
    opt.zero_grad()
    assert all(p.grad is None for p in model.parameters())


CUDA_OPS = list(OPS.values())


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("op", CUDA_OPS, ids=[op.name for op in CUDA_OPS])
def test_gradcheck_ops_on_cuda(op):
    cp = _cupy()
    rng = np.random.default_rng(2)
    shape_list = op.sample.shapes(3, 2)
    inputs = []
    for shape, domain in zip(shape_list, op.sample.domains, strict=True):
        v = rng.uniform(0.2, 0.8, shape)  # positive, nonzero, inside (0, 1), no ties
        if domain == "real":
            v -= 0.5
        if domain == "matrix":  # diag(1, 2, ...) on the last two axes, +-0.1
            v = v * 0.1
            k = min(shape[-2:])
            v[..., range(k), range(k)] += np.arange(1, k + 1)
        inputs.append(T(cp.asarray(v), requires_grad=True))

    def on_gpu(value):
        if isinstance(value, tuple):
            return tuple(on_gpu(v) for v in value)
        if isinstance(value, (list, np.ndarray)):
            array = np.asarray(value)
            if array.dtype.kind == "b":
                return cp.asarray(array)
            if array.dtype.kind in "iu" and array.ndim == 1:
                return cp.asarray(array.astype(np.int64))
            return cp.asarray(array.astype(np.float64))
        return value

    params = {k: on_gpu(v) for k, v in op.sample.params(tuple(shape_list)).items()}
    assert tm.gradcheck(lambda *xs: apply(op, *xs, **params), inputs)


@pytest.mark.skipif(
    CUPY_INSTALLED or SIMULATED,
    reason="CuPy (or the simulated CuPy) is there: the missing-CuPy hint cannot show",
)
def test_cuda_without_cupy_raises_import_error_with_the_install_hint():
    hint = 'pip install -e ".[cuda]"'
    for make in (
        lambda: T([1.0], device="cuda"),
        lambda: T([1.0]).to("cuda"),
        lambda: tm.get_array_module("cuda"),
        lambda: tm.set_default_device("cuda"),
    ):
        with pytest.raises(ImportError) as info:
            make()
        assert hint in str(info.value)
    assert not tm.cupy_available()
    assert T([1.0]).device == "cpu"  # the failed switch left the default alone
