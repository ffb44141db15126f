"""Every optimizer in optim.__all__: its update against the formula written out by hand, against
PyTorch, a state_dict round trip, and the refusals. A new optimizer needs only an entry in
BY_HAND and CONFIGS."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tinygrad_mlp as tm
from tinygrad_mlp import optim
from tinygrad_mlp.serialization import load, save

# LBFGS steps with a closure that recomputes the loss: test_breadth_ops.py checks it against torch
NAMES = [n for n in optim.__all__ if n not in ("Optimizer", "lr_scheduler", "LBFGS")]
P0 = np.array([[0.5, -1.0, 2.0], [0.25, 3.0, -0.75]])
GRADS = [
    np.array([[0.1, -0.2, 0.3], [0.4, -0.5, 0.6]]),
    np.array([[-0.3, 0.1, 0.2], [0.05, 0.7, -0.4]]),
    np.array([[0.2, 0.2, -0.1], [-0.6, 0.3, 0.1]]),
    np.array([[0.0, -0.4, 0.5], [0.2, -0.1, -0.2]]),
    np.array([[1.0, -0.1, 0.05], [0.3, 0.3, -0.9]]),
]


# ---------------------------------------------------------------- the formulas by hand
# Each takes the hyper-parameters (with defaults filled in) and returns step(p, g, state) -> p.


def _sgd(lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0, maximize=False):
    def step(p, g, s):
        g = -g if maximize else g
        g = g + weight_decay * p
        if momentum:
            s["b"] = g.copy() if "b" not in s else momentum * s["b"] + (1 - dampening) * g
            g = g + momentum * s["b"] if nesterov else s["b"]
        return p - lr * g

    return step


def _adam(
    lr=1e-3,
    betas=(0.9, 0.999),
    eps=1e-8,
    weight_decay=0.0,
    amsgrad=False,
    maximize=False,
    decoupled=False,
):
    b1, b2 = betas

    def step(p, g, s):
        g = -g if maximize else g
        t = s["t"] = s.get("t", 0) + 1
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
        s["m"] = b1 * s.get("m", 0) + (1 - b1) * g
        s["v"] = b2 * s.get("v", 0) + (1 - b2) * g * g
        v = s["v"]
        if amsgrad:
            v = s["vmax"] = np.maximum(s.get("vmax", 0), v)
        m_hat = s["m"] / (1 - b1**t)
        return p - lr * m_hat / (np.sqrt(v) / math.sqrt(1 - b2**t) + eps)

    return step


def _adamw(weight_decay=1e-2, **kw):
    return _adam(weight_decay=weight_decay, decoupled=True, **kw)


def _rmsprop(
    lr=1e-2,
    alpha=0.99,
    eps=1e-8,
    weight_decay=0.0,
    momentum=0.0,
    centered=False,
    maximize=False,
):
    def step(p, g, s):
        g = -g if maximize else g
        g = g + weight_decay * p
        s["v"] = alpha * s.get("v", 0) + (1 - alpha) * g * g
        if centered:
            s["m"] = alpha * s.get("m", 0) + (1 - alpha) * g
            avg = np.sqrt(s["v"] - s["m"] ** 2) + eps
        else:
            avg = np.sqrt(s["v"]) + eps
        if momentum:
            s["b"] = momentum * s.get("b", 0) + g / avg
            return p - lr * s["b"]
        return p - lr * g / avg

    return step


def _adagrad(
    lr=1e-2,
    lr_decay=0.0,
    weight_decay=0.0,
    initial_accumulator_value=0.0,
    eps=1e-10,
    maximize=False,
):
    def step(p, g, s):
        g = -g if maximize else g
        t = s["t"] = s.get("t", 0) + 1
        g = g + weight_decay * p
        s["sum"] = s.get("sum", initial_accumulator_value) + g * g
        return p - lr / (1 + (t - 1) * lr_decay) * g / (np.sqrt(s["sum"]) + eps)

    return step


def _adamax(lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, maximize=False):
    b1, b2 = betas

    def step(p, g, s):
        g = -g if maximize else g
        t = s["t"] = s.get("t", 0) + 1
        g = g + weight_decay * p
        s["m"] = b1 * s.get("m", 0) + (1 - b1) * g
        s["u"] = np.maximum(b2 * s.get("u", 0), np.abs(g) + eps)
        return p - lr / (1 - b1**t) * s["m"] / s["u"]

    return step


def _nadam(
    lr=2e-3,
    betas=(0.9, 0.999),
    eps=1e-8,
    weight_decay=0.0,
    momentum_decay=4e-3,
    decoupled_weight_decay=False,
    maximize=False,
):
    b1, b2 = betas

    def step(p, g, s):
        g = -g if maximize else g
        t = s["t"] = s.get("t", 0) + 1
        if decoupled_weight_decay:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
        mu = b1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))
        mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
        s["prod"] = s.get("prod", 1.0) * mu
        s["m"] = b1 * s.get("m", 0) + (1 - b1) * g
        s["v"] = b2 * s.get("v", 0) + (1 - b2) * g * g
        denom = np.sqrt(s["v"] / (1 - b2**t)) + eps
        p = p - lr * (1 - mu) / (1 - s["prod"]) * g / denom
        return p - lr * mu_next / (1 - s["prod"] * mu_next) * s["m"] / denom

    return step


def _radam(
    lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled_weight_decay=False,
    maximize=False,
):  # fmt: skip
    b1, b2 = betas
    rho_inf = 2 / (1 - b2) - 1

    def step(p, g, s):
        g = -g if maximize else g
        t = s["t"] = s.get("t", 0) + 1
        if decoupled_weight_decay:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
        s["m"] = b1 * s.get("m", 0) + (1 - b1) * g
        s["v"] = b2 * s.get("v", 0) + (1 - b2) * g * g
        m_hat = s["m"] / (1 - b1**t)
        rho = rho_inf - 2 * t * b2**t / (1 - b2**t)
        if rho <= 5:
            return p - lr * m_hat
        r = math.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
        return p - lr * m_hat * r * math.sqrt(1 - b2**t) / (np.sqrt(s["v"]) + eps)

    return step


def _adadelta(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, maximize=False):
    def step(p, g, s):
        g = -g if maximize else g
        g = g + weight_decay * p
        s["sq"] = rho * s.get("sq", 0) + (1 - rho) * g * g
        delta = np.sqrt(s.get("acc", 0) + eps) / np.sqrt(s["sq"] + eps) * g
        s["acc"] = rho * s.get("acc", 0) + (1 - rho) * delta * delta
        return p - lr * delta

    return step


def _asgd(lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0.0, maximize=False):
    def step(p, g, s):
        g = -g if maximize else g
        t = s["t"] = s.get("t", 0) + 1
        g = g + weight_decay * p
        eta = s.get("eta", lr)
        p = p * (1 - lambd * eta) - eta * g
        s["eta"] = lr / (1 + lambd * lr * t) ** alpha
        return p

    return step


BY_HAND = {
    "SGD": _sgd,
    "Adam": _adam,
    "AdamW": _adamw,
    "RMSprop": _rmsprop,
    "Adagrad": _adagrad,
    "Adamax": _adamax,
    "NAdam": _nadam,
    "RAdam": _radam,
    "Adadelta": _adadelta,
    "ASGD": _asgd,
}
CONFIGS = {
    "SGD": [
        dict(lr=0.1),
        dict(lr=0.1, momentum=0.9),
        dict(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.05),
        dict(lr=0.1, momentum=0.8, nesterov=True, maximize=True),
    ],
    "Adam": [dict(), dict(lr=0.05, weight_decay=0.1, amsgrad=True), dict(betas=(0.5, 0.6))],
    "AdamW": [dict(lr=0.05), dict(lr=0.05, weight_decay=0.3, amsgrad=True, maximize=True)],
    "RMSprop": [
        dict(),
        dict(lr=0.05, alpha=0.9, weight_decay=0.1),
        dict(lr=0.05, momentum=0.9, centered=True),
        dict(lr=0.01, centered=True, maximize=True, eps=1e-3),
    ],
    "Adagrad": [
        dict(),
        dict(lr=0.1, lr_decay=0.05, weight_decay=0.1),
        dict(lr=0.1, initial_accumulator_value=0.5, eps=1e-3, maximize=True),
    ],
    "Adamax": [dict(), dict(lr=0.05, betas=(0.8, 0.9), weight_decay=0.1, maximize=True)],
    "NAdam": [
        dict(),
        dict(lr=0.05, weight_decay=0.1, momentum_decay=0.01),
        dict(lr=0.05, weight_decay=0.1, decoupled_weight_decay=True),
    ],
    "RAdam": [
        dict(),
        dict(lr=0.05, betas=(0.5, 0.7), weight_decay=0.1),
        dict(lr=0.05, betas=(0.5, 0.6), weight_decay=0.1, decoupled_weight_decay=True),
        dict(lr=0.05, betas=(0.6, 0.8), maximize=True),
    ],
    "Adadelta": [
        dict(),
        dict(lr=0.5, rho=0.7, weight_decay=0.1),
        dict(lr=0.5, eps=1e-3, maximize=True),
    ],
    "ASGD": [
        dict(),
        dict(lr=0.1, lambd=0.01, alpha=0.5, weight_decay=0.1),
        dict(lr=0.1, lambd=0.01, t0=2, maximize=True),
    ],
}
CASES = [(name, kw) for name in NAMES for kw in CONFIGS.get(name, [None])]
IDS = [f"{name}-{kw}" for name, kw in CASES]


def make_param(values=P0, dtype=np.float64):
    return tm.tensor(np.array(values, dtype=dtype), requires_grad=True)


def set_grad(p, values):
    array = tm.backend.to_device(np.array(values, dtype=p.dtype), p.device)
    p.grad = tm.Tensor._wrap(array, False, None)


def test_every_optimizer_has_a_formula_and_configs():
    assert set(NAMES) <= set(BY_HAND) and set(NAMES) <= set(CONFIGS), (
        "write the update of each new optimizer out by hand in BY_HAND and give CONFIGS"
    )


@pytest.mark.parametrize(("name", "kw"), CASES, ids=IDS)
def test_update_matches_the_formula_by_hand(name, kw):
    p = make_param()
    opt = getattr(optim, name)([p], **kw)
    step = BY_HAND[name](**kw)
    expected, state = P0.copy(), {}
    data = p._data
    for g in GRADS:
        set_grad(p, g)
        opt.step()
        expected = step(expected, g, state)
        np.testing.assert_allclose(p.numpy(), expected, rtol=1e-12, atol=1e-14)
    assert p._data is data  # updated in place


@pytest.mark.parametrize(("name", "kw"), CASES, ids=IDS)
def test_update_matches_torch(name, kw):
    torch = pytest.importorskip("torch")
    p = make_param()
    tp = torch.tensor(P0, requires_grad=True)
    opt = getattr(optim, name)([p], **kw)
    topt = getattr(torch.optim, name)([tp], **kw)
    # NOTE: torch keeps NAdam's mu_product and ASGD's eta and mu as float32 tensors; we keep
    # Python floats, so the two agree to float32's rounding of those only
    rtol = {"NAdam": 1e-7, "ASGD": 1e-6}.get(name, 1e-10)
    for i in range(8):
        g = GRADS[i % len(GRADS)] * (1 + i)
        set_grad(p, g)
        tp.grad = torch.tensor(g)
        opt.step()
        topt.step()
        np.testing.assert_allclose(p.numpy(), tp.detach().numpy(), rtol=rtol, atol=1e-13)


@pytest.mark.parametrize(("name", "kw"), CASES, ids=IDS)
def test_state_dict_round_trip_resumes_exactly(name, kw, tmp_path):
    make = getattr(optim, name)
    straight = [make_param(), make_param(P0[::-1])]
    opt = make(straight, **kw)
    first = [make_param(), make_param(P0[::-1])]
    opt1 = make(first, **kw)
    for i, g in enumerate(GRADS):
        for params, o in ((straight, opt), (first, opt1)):
            if i >= 2 and o is opt1:
                continue
            for p in params:
                set_grad(p, g)
            o.step()
    save(opt1.state_dict(), tmp_path / "opt.npz")
    restored = [make_param(p.numpy()) for p in first]
    opt2 = make(restored, **kw)
    opt2.load_state_dict(load(tmp_path / "opt.npz"))
    assert opt2.state_dict()["param_groups"] == opt1.state_dict()["param_groups"]
    for g in GRADS[2:]:
        for p in restored:
            set_grad(p, g)
        opt2.step()
    for a, b in zip(straight, restored, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_keys_match_torch(name):
    torch = pytest.importorskip("torch")
    kw = CONFIGS[name][-1]
    p, tp = make_param(), torch.tensor(P0, requires_grad=True)
    opt, topt = getattr(optim, name)([p], **kw), getattr(torch.optim, name)([tp], **kw)
    set_grad(p, GRADS[0])
    tp.grad = torch.tensor(GRADS[0])
    opt.step()
    topt.step()
    ours, theirs = opt.state_dict(), topt.state_dict()
    assert sorted(ours["state"][0]) == sorted(theirs["state"][0])
    assert set(ours["param_groups"][0]) <= set(theirs["param_groups"][0])
    for key, value in theirs["state"][0].items():
        np.testing.assert_allclose(np.asarray(ours["state"][0][key]), value.numpy(), rtol=1e-6)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_keeps_dtype_and_skips_parameters_without_grad(name, dtype):
    a, b = make_param(P0, dtype), make_param(P0, dtype)
    opt = getattr(optim, name)([a, b], **CONFIGS[name][0])
    set_grad(a, GRADS[0])
    opt.step()
    assert a.dtype == dtype and not np.array_equal(a.numpy(), P0.astype(dtype))
    np.testing.assert_array_equal(b.numpy(), P0.astype(dtype))
    assert all(v.dtype == dtype for v in opt.state[a].values() if isinstance(v, np.ndarray))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("lr", [-0.1, "fast", float("nan")])
def test_bad_lr_is_a_value_error_naming_it(name, lr):
    with pytest.raises(ValueError, match="invalid lr"):
        getattr(optim, name)([make_param()], lr=lr)


@pytest.mark.parametrize("name", NAMES)
def test_loaded_state_of_another_optimizer_is_refused(name):
    other = "SGD" if name != "SGD" else "Adam"
    p = make_param()
    source = getattr(optim, other)([p], **CONFIGS[other][1])
    set_grad(p, GRADS[0])
    source.step()
    target = getattr(optim, name)([make_param()], **CONFIGS[name][0])
    with pytest.raises(ValueError, match="unknown entries|lacks entries"):
        target.load_state_dict(source.state_dict())


@pytest.mark.parametrize("name", NAMES)
def test_trains_a_small_network(name):
    from tinygrad_mlp import nn
    from tinygrad_mlp.nn import functional as F

    tm.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1))
    gen = np.random.default_rng(0)
    x = tm.Tensor(gen.standard_normal((64, 2)).astype(np.float32))
    y = (x.numpy()[:, :1] * x.numpy()[:, 1:] > 0).astype(np.float32)
    kw = dict(CONFIGS[name][0])
    kw.pop("maximize", None)
    opt = getattr(optim, name)(model.parameters(), **kw)
    losses = []
    for _ in range(40):
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


@pytest.mark.parametrize(("name", "kw"), CASES, ids=IDS)
def test_zero_dim_parameter_matches_torch(name, kw):
    torch = pytest.importorskip("torch")
    p = make_param(0.75)
    tp = torch.tensor(0.75, dtype=torch.float64, requires_grad=True)
    opt, topt = getattr(optim, name)([p], **kw), getattr(torch.optim, name)([tp], **kw)
    rtol = {"NAdam": 1e-7, "ASGD": 1e-6}.get(name, 1e-10)  # torch's float32 scalars, as above
    data = p._data
    for i in range(8):
        g = GRADS[i % len(GRADS)][0, i % 3] * (1 + i)
        set_grad(p, g)
        tp.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        topt.step()
        assert p.shape == () and p._data is data
        np.testing.assert_allclose(p.item(), tp.item(), rtol=rtol, atol=1e-13)
    ours, theirs = opt.state_dict()["state"], topt.state_dict()["state"]
    assert sorted(ours) == sorted(theirs)
    for i, entry in theirs.items():
        assert sorted(ours[i]) == sorted(entry)
        for key, value in entry.items():
            assert np.shape(ours[i][key]) == ()
            np.testing.assert_allclose(np.asarray(ours[i][key]), value.numpy(), rtol=1e-6)


def _to_torch(state_dict, torch):
    """Our state_dict with each tensor turned into a torch tensor (the layout stays as it is)."""
    state = {
        i: {k: torch.tensor(v.numpy()) if isinstance(v, tm.Tensor) else v for k, v in e.items()}
        for i, e in state_dict["state"].items()
    }
    return {"state": state, "param_groups": state_dict["param_groups"]}


def _from_torch(state_dict, torch):
    state = {
        i: {k: tm.tensor(v.numpy()) if torch.is_tensor(v) else v for k, v in e.items()}
        for i, e in state_dict["state"].items()
    }
    return {"state": state, "param_groups": state_dict["param_groups"]}


@pytest.mark.parametrize(("name", "kw"), CASES, ids=IDS)
def test_state_dict_loads_into_torch_and_back(name, kw):
    """Three steps here, three in torch from our state, three here again from torch's state:
    each side's state names and layout are the other's, and the steps agree with torch's."""
    torch = pytest.importorskip("torch")
    rtol = {"NAdam": 1e-7, "ASGD": 1e-6}.get(name, 1e-10)
    make, tmake = getattr(optim, name), getattr(torch.optim, name)
    ours = [make_param(), make_param(P0[0])]
    theirs = [torch.tensor(P0, requires_grad=True), torch.tensor(P0[0], requires_grad=True)]
    opt, topt = make(ours, **kw), tmake(theirs, **kw)
    for i in range(9):
        if i == 3:  # torch continues from our state
            loaded = [torch.tensor(p.numpy(), requires_grad=True) for p in ours]
            topt = tmake(loaded, **kw)
            topt.load_state_dict(_to_torch(opt.state_dict(), torch))
            theirs = loaded
        if i == 6:  # and we continue from torch's
            loaded = [make_param(p.detach().numpy()) for p in theirs]
            opt = make(loaded, **kw)
            opt.load_state_dict(_from_torch(topt.state_dict(), torch))
            ours = loaded
            assert opt.state_dict()["param_groups"][0]["lr"] == kw.get("lr", opt.defaults["lr"])
        for j, (p, tp) in enumerate(zip(ours, theirs, strict=True)):
            g = GRADS[i % len(GRADS)] * (1 + i)
            g = g if j == 0 else g[1]
            set_grad(p, g)
            tp.grad = torch.tensor(g)
        opt.step()
        topt.step()
        if i < 3:
            continue  # before the hand-over both ran from scratch; test_update_matches_torch
        for p, tp in zip(ours, theirs, strict=True):
            np.testing.assert_allclose(p.numpy(), tp.detach().numpy(), rtol=rtol, atol=1e-13)
    a, b = opt.state_dict()["state"], topt.state_dict()["state"]
    assert sorted(a) == sorted(b) and all(sorted(a[i]) == sorted(b[i]) for i in a)


@pytest.mark.parametrize("name", NAMES + ["LBFGS"])
def test_every_hyper_parameter_is_checked(name):
    from tinygrad_mlp.optim.optimizer import _COMMON_CHECKS

    opt = getattr(optim, name)([make_param()])
    unchecked = set(opt.defaults) - set(opt._hyper_checks) - set(_COMMON_CHECKS)
    assert not unchecked, f"{name} has hyper-parameters without a check: {sorted(unchecked)}"


@pytest.mark.parametrize(("name", "kw"), CASES, ids=IDS)
def test_step_leaves_the_gradient_as_it_was(name, kw):
    p = make_param()
    opt = getattr(optim, name)([p], **kw)
    for g in GRADS[:3]:
        set_grad(p, g)
        grad = p.grad._data
        opt.step()
        assert p.grad._data is grad
        np.testing.assert_array_equal(p.grad.numpy(), g)
