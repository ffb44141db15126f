"""tm.compile: a compiled step gives eager mode's results bit for bit (and PyTorch's, within
rounding: an independent reference for the replayed forwards and rules), re-traces when its
guards change, falls back to eager (with one warning) for what it cannot capture, and keeps no
memory between replays."""

from __future__ import annotations

import gc
import tracemalloc
import warnings

import numpy as np
import pytest

import tinygrad_mlp as tm
from tinygrad_mlp import nn
from tinygrad_mlp.compile import CompiledModule, _Plan
from tinygrad_mlp.compile import compile as tm_compile

F = tm.functional
try:
    import torch
except ImportError:  # the tests against PyTorch skip
    torch = None

OPTIMIZERS = [name for name in tm.optim.__all__ if name not in ("Optimizer", "lr_scheduler")]
OPTIMIZER_ARGS = {
    "SGD": [dict(lr=0.1), dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)],
    "Adam": [dict(lr=0.01), dict(lr=0.01, amsgrad=True, weight_decay=0.1)],
}
ACTIVATIONS = [nn.ReLU, nn.Tanh, nn.Sigmoid, nn.LeakyReLU, nn.GELU, nn.ELU, nn.Softplus]


class TwoLayer(nn.Module):
    """A user's own module: nothing fuses it."""

    def __init__(self, n_in: int, hidden: int, n_out: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(n_in, hidden)
        self.fc2 = nn.Linear(hidden, n_out)

    def forward(self, x):
        return self.fc2(self.fc1(x).relu())


class WithDropout(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(6, 16)
        self.drop = nn.Dropout(0.3)
        self.fc2 = nn.Linear(16, 4)

    def forward(self, x):
        return self.fc2(self.drop(self.fc1(x).tanh()))


def _sequential(rng: np.random.Generator, n_in: int, n_out: int):
    depth = int(rng.integers(1, 4))
    sizes = [n_in] + [int(rng.integers(3, 20)) for _ in range(depth)] + [n_out]
    layers = []
    for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if k < depth or rng.random() < 0.5:  # hidden layers, and the output half the time
            layers.append(ACTIVATIONS[int(rng.integers(len(ACTIVATIONS)))]())
    return nn.Sequential(*layers)


def _data(seed: int, n: int, n_in: int, n_out: int):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, n_in)).astype(np.float32)
    labels = rng.integers(0, n_out, n)
    targets = rng.random((n, n_out)).astype(np.float32)
    return x, labels, targets


def _train(build, make_opt, compiled: bool, steps: int, loss_kind: str = "ce", batch: int = 8):
    """Parameters, gradients and losses after ``steps`` steps, eager or compiled."""
    tm.manual_seed(123)
    model = build()
    opt = make_opt(model.parameters())
    n_in = next(iter(model.parameters())).shape[1]
    n_out = list(model.parameters())[-1].shape[0]
    x, labels, targets = _data(7, batch * steps, n_in, n_out)

    def closure(xb, yb):
        opt.zero_grad()
        out = model(xb)
        loss = F.cross_entropy(out, yb) if loss_kind == "ce" else F.mse_loss(out, yb)
        loss.backward()
        return loss

    def step(xb, yb):
        if isinstance(opt, tm.optim.LBFGS):  # its step takes the closure, as PyTorch's does
            return opt.step(lambda: closure(xb, yb))
        loss = closure(xb, yb)
        opt.step()
        return loss

    fn = tm_compile(step) if compiled else step
    losses = []
    for i in range(steps):
        xb = tm.Tensor(x[i * batch : (i + 1) * batch])
        rows = slice(i * batch, (i + 1) * batch)
        yb = labels[rows] if loss_kind == "ce" else tm.Tensor(targets[rows])
        losses.append(fn(xb, yb).item())
    state = [p.detach().numpy().copy() for p in model.parameters()]
    grads = [p.grad.numpy().copy() for p in model.parameters()]
    return state, grads, losses, fn


def _assert_same(eager, compiled):
    for a, b in zip(eager[0] + eager[1], compiled[0] + compiled[1], strict=True):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert eager[2] == compiled[2]


def _plans(fn) -> list:
    return [s for e in fn._entries.values() for s in e.states.values() if type(s) is _Plan]


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("loss_kind", ["ce", "mse"])
def test_random_sequential_models_match_eager_bit_for_bit(seed, loss_kind):
    def build():
        return _sequential(np.random.default_rng(seed), 5, 3)

    def make_opt(p):
        return tm.optim.SGD(p, lr=0.1)

    eager = _train(build, make_opt, False, 7, loss_kind)
    compiled = _train(build, make_opt, True, 7, loss_kind)
    _assert_same(eager, compiled)
    assert _plans(compiled[3]), "the step should have been replayed"


def _torch_training(build, steps: int, loss_kind: str, batch: int = 8):
    """What ``_train`` computes, from the same initial weights, by PyTorch in float64."""
    tm.manual_seed(123)
    ours = build()
    layers = []
    for m in ours:
        if isinstance(m, nn.Linear):
            layer = torch.nn.Linear(m.in_features, m.out_features).double()
            with torch.no_grad():
                layer.weight.copy_(torch.from_numpy(m.weight.detach().numpy().astype(np.float64)))
                layer.bias.copy_(torch.from_numpy(m.bias.detach().numpy().astype(np.float64)))
            layers.append(layer)
        else:
            layers.append(getattr(torch.nn, type(m).__name__)())
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    params = list(ours.parameters())
    x, labels, targets = _data(7, batch * steps, params[0].shape[1], params[-1].shape[0])
    losses = []
    for i in range(steps):
        rows = slice(i * batch, (i + 1) * batch)
        out = model(torch.from_numpy(x[rows]).double())
        if loss_kind == "ce":
            loss = torch.nn.functional.cross_entropy(out, torch.from_numpy(labels[rows]))
        else:
            loss = torch.nn.functional.mse_loss(out, torch.from_numpy(targets[rows]).double())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    state = [p.detach().numpy() for p in model.parameters()]
    return state, [p.grad.numpy() for p in model.parameters()], losses


@pytest.mark.skipif(torch is None, reason="needs PyTorch")
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("loss_kind", ["ce", "mse"])
def test_random_sequential_models_train_as_pytorch_does(seed, loss_kind):
    """An independent reference for the replayed steps (the kernels' and the registry's): the
    same training by PyTorch in float64."""

    def build():
        return _sequential(np.random.default_rng(seed), 5, 3)

    state, grads, losses, fn = _train(build, lambda p: tm.optim.SGD(p, lr=0.1), True, 7, loss_kind)
    assert _plans(fn), "the step should have been replayed"
    ref_state, ref_grads, ref_losses = _torch_training(build, 7, loss_kind)
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-4, atol=1e-5)
    for ours, theirs in zip(state + grads, ref_state + ref_grads, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-5)


def _optimizer_cases():
    for name in OPTIMIZERS:
        for kwargs in OPTIMIZER_ARGS.get(name, [dict(lr=0.01)]):
            yield pytest.param(name, kwargs, id=f"{name}-{sorted(kwargs.items())}")


@pytest.mark.parametrize("name,kwargs", list(_optimizer_cases()))
@pytest.mark.parametrize("model", ["module", "sequential"])
@pytest.mark.filterwarnings("ignore:tm.compile.*optimizer.step.closure.:RuntimeWarning")
def test_every_optimizer_matches_eager(name, kwargs, model):
    def build():
        if model == "module":
            return TwoLayer(5, 9, 3)
        return nn.Sequential(nn.Linear(5, 9), nn.Tanh(), nn.Linear(9, 3))

    def make_opt(p):
        return getattr(tm.optim, name)(p, **kwargs)

    _assert_same(_train(build, make_opt, False, 6), _train(build, make_opt, True, 6))


def test_batches_large_enough_for_matmul_match_eager():
    """Products of more than 4096 elements go through matmul rather than dot."""

    def build():
        return TwoLayer(80, 64, 10)

    def make_opt(p):
        return tm.optim.SGD(p, lr=0.1)

    eager = _train(build, make_opt, False, 5, batch=128)
    compiled = _train(build, make_opt, True, 5, batch=128)
    _assert_same(eager, compiled)


def test_dropout_with_a_seeded_generator_matches_eager():
    def build():
        return WithDropout()

    def make_opt(p):
        return tm.optim.Adam(p, lr=0.01)

    eager = _train(build, make_opt, False, 6, "mse")
    compiled = _train(build, make_opt, True, 6, "mse")
    _assert_same(eager, compiled)
    assert _plans(compiled[3])


@pytest.mark.parametrize("compiled", [False, True])
def test_gradient_accumulation_over_several_steps(compiled):
    def run(compiled):
        tm.manual_seed(0)
        model = TwoLayer(4, 6, 3)
        opt = tm.optim.SGD(model.parameters(), lr=0.1, momentum=0.5)
        x, labels, _ = _data(1, 48, 4, 3)

        def accumulate(xb, yb):
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            return loss

        fn = tm_compile(accumulate) if compiled else accumulate
        losses = []
        for i in range(12):
            losses.append(float(fn(tm.Tensor(x[4 * i : 4 * i + 4]), labels[4 * i : 4 * i + 4])))
            if i % 3 == 2:
                opt.step()
                opt.zero_grad()
        return [p.detach().numpy().copy() for p in model.parameters()], losses, fn

    eager, comp = run(False), run(True)
    for a, b in zip(eager[0], comp[0], strict=True):
        assert np.array_equal(a, b)
    assert eager[1] == comp[1]
    assert len(_plans(comp[2])) == 2  # one plan with fresh gradients, one accumulating


def test_returns_loss_values_and_structures():
    tm.manual_seed(0)
    model = TwoLayer(3, 4, 2)
    opt = tm.optim.SGD(model.parameters(), lr=0.1)
    x = tm.Tensor(np.ones((2, 3), np.float32))
    y = np.array([0, 1])

    @tm_compile
    def step(xb, yb):
        opt.zero_grad()
        logits = model(xb)
        loss = F.cross_entropy(logits, yb)
        loss.backward()
        opt.step()
        return {"loss": loss, "logits": logits.detach(), "tag": "ok"}

    outs = [step(x, y) for _ in range(5)]
    assert all(o["tag"] == "ok" for o in outs)
    # returned tensors are the caller's own: later replays do not overwrite them
    values = [o["loss"].item() for o in outs]
    assert len(set(values)) == len(values)
    assert outs[-1]["logits"].shape == (2, 2)


def test_shape_change_retraces():
    tm.manual_seed(0)
    model = TwoLayer(3, 4, 2)
    opt = tm.optim.SGD(model.parameters(), lr=0.1)
    eager_model = TwoLayer(3, 4, 2)
    eager_model.load_state_dict(model.state_dict())
    eager_opt = tm.optim.SGD(eager_model.parameters(), lr=0.1)

    def make(m, o):
        def step(xb, yb):
            o.zero_grad()
            loss = F.cross_entropy(m(xb), yb)
            loss.backward()
            o.step()
            return loss

        return step

    fn = tm_compile(make(model, opt))
    ref = make(eager_model, eager_opt)
    rng = np.random.default_rng(0)
    for n in (4, 4, 4, 6, 6, 6, 4, 6):
        x = rng.standard_normal((n, 3)).astype(np.float32)
        y = rng.integers(0, 2, n)
        assert fn(tm.Tensor(x), y).item() == ref(tm.Tensor(x), y).item()
    assert len(fn._entries) == 2 and len(_plans(fn)) == 2
    for a, b in zip(model.parameters(), eager_model.parameters(), strict=True):
        assert np.array_equal(a.detach().numpy(), b.detach().numpy())


def test_grad_mode_is_a_guard():
    model = TwoLayer(3, 4, 2)
    fn = tm_compile(lambda x: model(x).sum())
    x = tm.Tensor(np.ones((2, 3), np.float32))
    with tm.no_grad():
        for _ in range(3):
            fn(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.warns(RuntimeWarning, match="live graph"):
            out = fn(x)  # in grad mode the result has a graph a plan cannot give
    assert out.requires_grad


@pytest.mark.parametrize(
    "body,reason",
    [
        (lambda loss: loss.item(), r"\.item\(\)"),
        (lambda loss: float(loss), r"float\(\)"),
        (lambda loss: bool(loss > 1), r"bool\(\)"),
        (lambda loss: loss.numpy(), r"\.numpy\(\)"),
        (lambda loss: loss.tolist(), r"\.tolist\(\)"),
    ],
)
def test_reading_values_falls_back_to_eager_with_one_warning(body, reason):
    model = TwoLayer(3, 4, 2)
    opt = tm.optim.SGD(model.parameters(), lr=0.1)

    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        body(loss)
        loss.backward()
        opt.step()
        return loss

    fn = tm_compile(step)
    x, y = tm.Tensor(np.ones((2, 3), np.float32)), np.array([0, 1])
    with pytest.warns(RuntimeWarning, match=reason):
        fn(x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # only once
        for _ in range(3):
            fn(x, y)
    assert fn._eager_reason is not None


def test_python_control_flow_that_changes_falls_back():
    model = TwoLayer(3, 4, 2)
    calls = []

    def step(x):
        calls.append(1)
        out = model(x)
        if len(calls) % 2:  # a path that depends on a Python value the guards do not see
            out = out * 2
        return out.sum().detach()

    fn = tm_compile(step)
    x = tm.Tensor(np.ones((2, 3), np.float32))
    fn(x)
    with pytest.warns(RuntimeWarning, match="different sequence of ops"):
        fn(x)
    assert fn._eager_reason is not None
    eager = [step(x).item() for _ in range(2)]
    assert [fn(x).item() for _ in range(2)] == eager


def test_randomness_from_the_global_generator_falls_back():
    model = TwoLayer(3, 4, 2)

    def step(x):
        noise = tm.randn(2, 3)
        return model(x + noise).sum().detach()

    fn = tm_compile(step)
    x = tm.Tensor(np.ones((2, 3), np.float32))
    with pytest.warns(RuntimeWarning, match="random numbers|different sequence"):
        fn(x)
        fn(x)


def test_in_place_ops_fall_back():
    model = TwoLayer(3, 4, 2)

    def step(x):
        out = model(x)
        with tm.no_grad():
            out.mul_(2)
        return out.sum().detach()

    fn = tm_compile(step)
    with pytest.warns(RuntimeWarning, match="in-place"):
        fn(tm.Tensor(np.ones((2, 3), np.float32)))


def test_fullgraph_raises_instead_of_falling_back():
    fn = tm_compile(lambda x: (x * 2).sum().item(), fullgraph=True)
    with pytest.raises(RuntimeError, match="item"):
        fn(tm.Tensor(np.ones(3, np.float32)))


def test_scheduler_and_clipping_inside_the_step_match_eager():
    def run(compiled):
        tm.manual_seed(3)
        model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
        opt = tm.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
        sched = tm.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
        x, labels, _ = _data(5, 40, 4, 3)

        def step(xb, yb):
            opt.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 0.5)
            opt.step()
            sched.step()
            return loss

        fn = tm_compile(step) if compiled else step
        for i in range(10):
            fn(tm.Tensor(x[4 * i : 4 * i + 4]), labels[4 * i : 4 * i + 4])
        assert not compiled or _plans(fn)
        return [p.detach().numpy().copy() for p in model.parameters()], opt.param_groups[0]["lr"]

    eager, comp = run(False), run(True)
    assert eager[1] == comp[1]
    for a, b in zip(eager[0], comp[0], strict=True):
        assert np.array_equal(a, b)


def _sgd_step(compiled: bool, n_in: int, hidden: int, n_out: int, returns_loss: bool = True):
    """A TwoLayer model and its SGD training step (compiled or eager)."""
    tm.manual_seed(0)
    model = TwoLayer(n_in, hidden, n_out)
    opt = tm.optim.SGD(model.parameters(), lr=0.1)

    def step(xb, yb):
        opt.zero_grad()
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
        return loss if returns_loss else None

    return (tm_compile(step) if compiled else step), model


def _mnist_step(compiled: bool):
    fn, _ = _sgd_step(compiled, 784, 128, 10, returns_loss=False)
    x, labels, _ = _data(0, 128, 784, 10)
    return fn, tm.Tensor(x), labels


def _traced_memory(run, times: int) -> tuple[int, int]:
    """(growth, peak above the start) of traced memory over ``times`` calls of ``run``, after
    as many traced ones (Python's free lists and caches fill during the first)."""
    gc.collect()
    tracemalloc.start()
    try:
        for _ in range(times):
            run()
        start = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        for _ in range(times):
            run()
        now, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return now - start, peak - start


@pytest.mark.skipif(
    tm.backend.default_device() != "cpu", reason="tracemalloc measures host memory only"
)
def test_a_compiled_step_keeps_nothing_between_replays():
    fn, x, y = _mnist_step(True)
    for _ in range(3):  # two traces and the first replay
        fn(x, y)
    growth, _ = _traced_memory(lambda: fn(x, y), 100)
    assert growth <= 1024, growth


@pytest.mark.skipif(
    tm.backend.default_device() != "cpu", reason="tracemalloc measures host memory only"
)
def test_a_replay_lets_go_of_its_arrays_as_eager_mode_does():
    # an unfused module: one op per layer, so a replay holding every array of the step to its
    # end would peak at the sum of them (about twice eager's peak here)
    peaks = []
    for compiled in (False, True):
        fn, x, y = _mnist_step(compiled)
        for _ in range(3):
            fn(x, y)
        peaks.append(_traced_memory(lambda fn=fn, x=x, y=y: fn(x, y), 20)[1])
    eager, replay = peaks
    assert replay <= eager * 1.05 + 4096, peaks


def _epochs(fn, x, labels, epochs: int, batch: int) -> list[float]:
    losses = []
    for _ in range(epochs):
        for i in range(0, len(x), batch):
            losses.append(fn(tm.Tensor(x[i : i + batch]), labels[i : i + batch]).item())
    return losses


def test_plans_of_two_batch_sizes_match_eager():
    # epochs of 5 batches of 16 and a last one of 6 rows: two plans, switched between
    x, labels, _ = _data(3, 86, 20, 5)
    fn, model = _sgd_step(True, 20, 256, 5)
    ref, eager_model = _sgd_step(False, 20, 256, 5)
    assert _epochs(fn, x, labels, 4, 16) == _epochs(ref, x, labels, 4, 16)
    for a, b in zip(model.parameters(), eager_model.parameters(), strict=True):
        assert np.array_equal(a.detach().numpy(), b.detach().numpy())
        assert np.array_equal(a.grad.numpy(), b.grad.numpy())
    assert len(_plans(fn)) == 2


def test_compiled_module_inference_and_training_use():
    tm.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 2))
    cmodel = tm_compile(model)
    assert isinstance(cmodel, CompiledModule)
    assert list(cmodel.parameters()) == list(model.parameters())
    x = tm.Tensor(np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32))
    with tm.no_grad():
        ref = model(x).numpy()
        outs = [cmodel(x).numpy() for _ in range(4)]
    assert all(np.array_equal(o, ref) for o in outs)
    assert _plans(cmodel._compiled)
    # with grad: the forward is recorded on the tape, and backward reaches the parameters
    loss = cmodel(x).sum()
    loss.backward()
    assert model[0].weight.grad is not None
    # inside a compiled training step, the compiled module is traced with the rest
    opt = tm.optim.SGD(cmodel.parameters(), lr=0.1)

    @tm_compile
    def step(xb):
        opt.zero_grad()
        loss = cmodel(xb).sum()
        loss.backward()
        opt.step()
        return loss

    for _ in range(4):
        step(x)
    assert _plans(step)


def test_decorator_with_options_and_disable():
    @tm_compile(mode="reduce-overhead")
    def double(x):
        return (x * 2).detach()

    x = tm.Tensor(np.arange(3, dtype=np.float32))
    for _ in range(3):
        assert np.array_equal(double(x).numpy(), [0, 2, 4])

    def f(x):
        return x

    assert tm_compile(f, disable=True) is f
    with pytest.raises(TypeError):
        tm_compile(3)


def test_dtype_is_a_guard():
    @tm_compile
    def f(x):
        return ((x * 2 + 1) * x).sum().detach()

    for dtype in (np.float32, np.float64, np.float32, np.float64) * 2:
        x = tm.tensor(np.linspace(-1, 1, 7).astype(dtype))
        out = f(x)
        assert out.dtype == x.dtype
        assert out.item() == ((x * 2 + 1) * x).sum().item()
    assert len(f._entries) == 2 and len(_plans(f)) == 2


def test_two_backwards_through_one_retained_graph_match_eager():
    def run(compiled):
        model = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2))
        model.load_state_dict(
            {
                k: tm.Tensor(np.full(v.shape, 0.1, np.float32) * (i + 1))
                for i, (k, v) in enumerate(model.state_dict().items())
            }
        )
        opt = tm.optim.SGD(model.parameters(), lr=0.1)

        def step(x):
            opt.zero_grad()
            loss = (model(x) ** 2).mean()
            loss.backward(retain_graph=True)
            loss.backward()  # the gradients of the same graph, summed into .grad
            opt.step()
            return loss

        fn = tm_compile(step) if compiled else step
        x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
        losses = [fn(tm.Tensor(x)).item() for _ in range(4)]
        assert not compiled or _plans(fn)
        return [p.detach().numpy() for p in model.parameters()], losses

    (eager, eager_losses), (compiled, compiled_losses) = run(False), run(True)
    assert eager_losses == compiled_losses
    for a, b in zip(eager, compiled, strict=True):
        assert np.array_equal(a, b)
