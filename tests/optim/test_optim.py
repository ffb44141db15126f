"""Optimizers: updates checked against the formulas written out by hand, validation, state.

Every optimizer in optim.__all__: its update against the formula written out by hand, against
PyTorch, a state_dict round trip, and the refusals. A new optimizer needs only an entry in
BY_HAND and CONFIGS."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_mlp as tm
from tinygrad_mlp import optim
from tinygrad_mlp.serialization import load, save


def make_param(values=None, dtype=np.float64):
    """A trainable tensor holding a copy of values (P0 by default)."""
    values = P0 if values is None else values
    return tm.tensor(np.array(values, dtype=dtype), requires_grad=True)


def as_grad(values, like):
    """A gradient tensor of ``like``'s dtype and device (``.grad`` is a Tensor)."""
    array = np.array(values, dtype=like.dtype)
    return tm.Tensor._wrap(tm.backend.to_device(array, like.device), False, None)


def set_grad(p, values):
    p.grad = as_grad(values, p)


P0 = np.array([[0.5, -1.0, 2.0], [0.25, 3.0, -0.75]])
GRADS = [
    np.array([[0.1, -0.2, 0.3], [0.4, -0.5, 0.6]]),
    np.array([[-0.3, 0.1, 0.2], [0.05, 0.7, -0.4]]),
    np.array([[0.2, 0.2, -0.1], [-0.6, 0.3, 0.1]]),
    np.array([[0.0, -0.4, 0.5], [0.2, -0.1, -0.2]]),
]


def run(opt_factory, grads=GRADS, p0=P0):
    p = make_param(p0)
    opt = opt_factory([p])
    history = []
    for g in grads:
        set_grad(p, g)
        opt.step()
        history.append(p.numpy().copy())
    return history


# ---------------------------------------------------------------- SGD, written out by hand


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sgd_plain_step_is_p_minus_lr_g(dtype):
    p = make_param(P0, dtype)
    set_grad(p, GRADS[0])
    data = p._data
    optim.SGD([p], lr=0.1).step()
    expected = P0.astype(dtype) - dtype(0.1) * GRADS[0].astype(dtype)
    np.testing.assert_array_equal(p.numpy(), expected)
    assert p.numpy().dtype == dtype
    assert p._data is data  # updated in place


def test_sgd_momentum_by_hand():
    lr, mu = 0.1, 0.9
    g1, g2, g3, _ = GRADS
    buf1 = g1
    p1 = P0 - lr * buf1
    buf2 = mu * buf1 + g2
    p2 = p1 - lr * buf2
    buf3 = mu * buf2 + g3
    p3 = p2 - lr * buf3
    got = run(lambda ps: optim.SGD(ps, lr=lr, momentum=mu), GRADS[:3])
    for a, b in zip(got, [p1, p2, p3], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-15, atol=1e-15)


def test_sgd_dampening_by_hand():
    lr, mu, damp = 0.05, 0.8, 0.3
    g1, g2, g3, _ = GRADS
    buf1 = g1  # the first step takes the gradient undamped
    p1 = P0 - lr * buf1
    buf2 = mu * buf1 + (1 - damp) * g2
    p2 = p1 - lr * buf2
    buf3 = mu * buf2 + (1 - damp) * g3
    p3 = p2 - lr * buf3
    got = run(lambda ps: optim.SGD(ps, lr=lr, momentum=mu, dampening=damp), GRADS[:3])
    for a, b in zip(got, [p1, p2, p3], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-15, atol=1e-15)


def test_sgd_nesterov_by_hand():
    lr, mu = 0.1, 0.9
    g1, g2, g3, _ = GRADS
    buf1 = g1
    p1 = P0 - lr * (g1 + mu * buf1)
    buf2 = mu * buf1 + g2
    p2 = p1 - lr * (g2 + mu * buf2)
    buf3 = mu * buf2 + g3
    p3 = p2 - lr * (g3 + mu * buf3)
    got = run(lambda ps: optim.SGD(ps, lr=lr, momentum=mu, nesterov=True), GRADS[:3])
    for a, b in zip(got, [p1, p2, p3], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-15, atol=1e-15)


def test_sgd_weight_decay_by_hand():
    lr, wd = 0.1, 0.01
    g1, g2, _, _ = GRADS
    p1 = P0 - lr * (g1 + wd * P0)
    p2 = p1 - lr * (g2 + wd * p1)
    got = run(lambda ps: optim.SGD(ps, lr=lr, weight_decay=wd), GRADS[:2])
    for a, b in zip(got, [p1, p2], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-15, atol=1e-15)


def test_sgd_weight_decay_with_momentum_by_hand():
    lr, mu, wd = 0.1, 0.5, 0.1
    g1, g2, g3, _ = GRADS
    d1 = g1 + wd * P0
    buf1 = d1
    p1 = P0 - lr * buf1
    d2 = g2 + wd * p1
    buf2 = mu * buf1 + d2
    p2 = p1 - lr * buf2
    d3 = g3 + wd * p2
    buf3 = mu * buf2 + d3
    p3 = p2 - lr * buf3
    got = run(lambda ps: optim.SGD(ps, lr=lr, momentum=mu, weight_decay=wd), GRADS[:3])
    for a, b in zip(got, [p1, p2, p3], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-15, atol=1e-15)


def test_sgd_maximize_by_hand():
    lr, mu = 0.1, 0.9
    g1, g2, _, _ = GRADS
    buf1 = -g1
    p1 = P0 - lr * buf1
    buf2 = mu * buf1 + (-g2)
    p2 = p1 - lr * buf2
    got = run(lambda ps: optim.SGD(ps, lr=lr, momentum=mu, maximize=True), GRADS[:2])
    for a, b in zip(got, [p1, p2], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-15, atol=1e-15)
    plain = run(lambda ps: optim.SGD(ps, lr=lr, maximize=True), GRADS[:1])
    np.testing.assert_allclose(plain[0], P0 + lr * g1, rtol=1e-15)


def sgd_reference(p, grads, lr, momentum, dampening, nesterov, weight_decay, maximize):
    """PyTorch's SGD in plain numpy, one parameter, float64."""
    p = p.copy()
    buf = None
    out = []
    for g in grads:
        d = -g if maximize else g
        d = d + weight_decay * p
        if momentum != 0:
            buf = d.copy() if buf is None else momentum * buf + (1 - dampening) * d
            d = d + momentum * buf if nesterov else buf
        p = p - lr * d
        out.append(p)
    return out


@settings(max_examples=60, deadline=None)
@given(
    lr=st.floats(0.0, 1.0),
    momentum=st.sampled_from([0.0, 0.5, 0.9]),
    dampening=st.sampled_from([0.0, 0.1, 0.5]),
    nesterov=st.booleans(),
    weight_decay=st.sampled_from([0.0, 1e-3, 0.1]),
    maximize=st.booleans(),
)
def test_sgd_matches_reference(lr, momentum, dampening, nesterov, weight_decay, maximize):
    if nesterov and (momentum == 0.0 or dampening != 0.0):
        nesterov = False
    kw = dict(
        lr=lr,
        momentum=momentum,
        dampening=dampening,
        nesterov=nesterov,
        weight_decay=weight_decay,
        maximize=maximize,
    )
    got = run(lambda ps: optim.SGD(ps, **kw))
    want = sgd_reference(P0, GRADS, **kw)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14)


# ---------------------------------------------------------------- Adam and AdamW, by hand


def adam_by_hand(lr, b1, b2, eps, wd=0.0, decoupled=False, amsgrad=False):
    """The first three Adam steps, written out from the algorithm."""
    p = P0.copy()
    out = []
    m = np.zeros_like(P0)
    v = np.zeros_like(P0)
    v_max = np.zeros_like(P0)
    for t, g in enumerate(GRADS[:3], start=1):
        if decoupled:
            p = p * (1 - lr * wd)
            d = g
        else:
            d = g + wd * p
        m = b1 * m + (1 - b1) * d
        v = b2 * v + (1 - b2) * d * d
        v_max = np.maximum(v_max, v)
        vv = v_max if amsgrad else v
        p = p - lr / (1 - b1**t) * m / (np.sqrt(vv) / math.sqrt(1 - b2**t) + eps)
        out.append(p)
    return out


@pytest.mark.parametrize(
    "kw",
    [
        dict(),
        dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6),
        dict(lr=0.01, weight_decay=0.1),
        dict(lr=0.05, amsgrad=True),
        dict(lr=0.05, weight_decay=0.05, amsgrad=True),
    ],
)
def test_adam_first_three_steps_by_hand(kw):
    got = run(lambda ps: optim.Adam(ps, **kw), GRADS[:3])
    lr = kw.get("lr", 1e-3)
    b1, b2 = kw.get("betas", (0.9, 0.999))
    want = adam_by_hand(
        lr,
        b1,
        b2,
        kw.get("eps", 1e-8),
        kw.get("weight_decay", 0.0),
        False,
        kw.get("amsgrad", False),
    )
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize(
    "kw",
    [
        dict(),
        dict(lr=0.01, weight_decay=0.1),
        dict(lr=0.02, betas=(0.5, 0.9), weight_decay=0.0),
        dict(lr=0.05, weight_decay=0.2, amsgrad=True),
    ],
)
def test_adamw_first_three_steps_by_hand(kw):
    got = run(lambda ps: optim.AdamW(ps, **kw), GRADS[:3])
    lr = kw.get("lr", 1e-3)
    b1, b2 = kw.get("betas", (0.9, 0.999))
    want = adam_by_hand(
        lr,
        b1,
        b2,
        kw.get("eps", 1e-8),
        kw.get("weight_decay", 1e-2),
        True,
        kw.get("amsgrad", False),
    )
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)


def test_adam_state_holds_moments_and_step():
    p = make_param(P0)
    opt = optim.Adam([p], lr=0.1)
    for g in GRADS[:2]:
        set_grad(p, g)
        opt.step()
    state = opt.state[p]
    assert state["step"] == 2
    np.testing.assert_allclose(
        tm.backend.to_numpy(state["exp_avg"]), 0.9 * 0.1 * GRADS[0] + 0.1 * GRADS[1]
    )
    expected_v = 0.999 * 0.001 * GRADS[0] ** 2 + 0.001 * GRADS[1] ** 2
    np.testing.assert_allclose(tm.backend.to_numpy(state["exp_avg_sq"]), expected_v)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make", [optim.Adam, optim.AdamW])
def test_adam_keeps_dtype_and_updates_in_place(make, dtype):
    p = make_param(P0, dtype)
    data = p._data
    opt = make([p], lr=0.01)
    set_grad(p, GRADS[0])
    opt.step()
    assert p._data is data and p.numpy().dtype == dtype
    assert opt.state[p]["exp_avg"].dtype == dtype


# ---------------------------------------------------------------- zero_grad, None grads, groups


def test_zero_grad_set_to_none():
    a, b = make_param(P0), make_param(P0)
    set_grad(a, GRADS[0])
    opt = optim.SGD([a, b], lr=0.1)
    opt.zero_grad()
    assert a.grad is None and b.grad is None


def test_zero_grad_fills_zeros_in_place():
    a = make_param(P0)
    set_grad(a, GRADS[0])
    g = a.grad
    optim.SGD([a], lr=0.1).zero_grad(set_to_none=False)
    assert a.grad is g
    np.testing.assert_array_equal(a.grad.numpy(), np.zeros_like(P0))


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: optim.SGD(ps, lr=0.1),
        lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.1),
        lambda ps: optim.Adam(ps, lr=0.1),
        lambda ps: optim.AdamW(ps, lr=0.1),
    ],
)
def test_params_without_grad_are_skipped(make):
    a, b = make_param(P0), make_param(P0)
    set_grad(a, GRADS[0])
    opt = make([a, b])
    opt.step()
    np.testing.assert_array_equal(b.numpy(), P0)
    assert not np.array_equal(a.numpy(), P0)
    assert b not in opt.state


def test_param_groups_with_their_own_lr():
    a, b = make_param(P0), make_param(P0)
    opt = optim.SGD([{"params": [a]}, {"params": b, "lr": 0.5}], lr=0.1)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]
    set_grad(a, GRADS[0])
    set_grad(b, GRADS[0])
    opt.step()
    np.testing.assert_allclose(a.numpy(), P0 - 0.1 * GRADS[0])
    np.testing.assert_allclose(b.numpy(), P0 - 0.5 * GRADS[0])


def test_lr_changed_in_group_takes_effect():
    a = make_param(P0)
    opt = optim.SGD([a], lr=0.1)
    opt.param_groups[0]["lr"] = 0.01
    set_grad(a, GRADS[0])
    opt.step()
    np.testing.assert_allclose(a.numpy(), P0 - 0.01 * GRADS[0])


def test_step_returns_closure_loss():
    a = make_param(P0)

    def closure():
        set_grad(a, GRADS[0])
        return 1.5

    assert optim.SGD([a], lr=0.1).step(closure) == 1.5
    np.testing.assert_allclose(a.numpy(), P0 - 0.1 * GRADS[0])


def test_param_list_refusals():
    a = make_param(P0)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="more than once"):
        optim.SGD([a, a], lr=0.1)
    with pytest.raises(ValueError, match="group 1 shares parameters with parameter group 0"):
        optim.SGD([{"params": [a]}, {"params": [a]}], lr=0.1)
    with pytest.raises(TypeError, match="iterable"):
        optim.SGD(a, lr=0.1)
    with pytest.raises(TypeError, match=r"params\[1\] is a ndarray"):
        optim.SGD([a, np.zeros(3)], lr=0.1)
    with pytest.raises(KeyError, match="no 'params' key"):
        optim.SGD([{"lr": 0.1}], lr=0.1)
    with pytest.raises(TypeError, match="not a set"):
        optim.SGD([{"params": {a}}], lr=0.1)


def test_state_is_keyed_by_parameter():
    a = make_param(P0)
    opt = optim.SGD([a], lr=0.1, momentum=0.9)
    set_grad(a, GRADS[0])
    opt.step()
    np.testing.assert_array_equal(tm.backend.to_numpy(opt.state[a]["momentum_buffer"]), GRADS[0])
    assert a in opt.state and len(opt.state) == 1
    assert list(opt.state) == [a]


# ---------------------------------------------------------------- ValueErrors


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda ps: optim.SGD(ps, lr=-0.1), "invalid lr: -0.1"),
        (lambda ps: optim.SGD(ps, lr="0.1"), "invalid lr: '0.1'"),
        (lambda ps: optim.SGD(ps, lr=None), "invalid lr: None"),
        (lambda ps: optim.SGD(ps, lr=float("nan")), "invalid lr: nan"),
        (lambda ps: optim.SGD(ps, lr=True), "invalid lr: True"),
        (lambda ps: optim.SGD(ps, lr=0.1, momentum=-0.5), "invalid momentum: -0.5"),
        (lambda ps: optim.SGD(ps, lr=0.1, weight_decay=-1), "invalid weight_decay: -1"),
        (lambda ps: optim.SGD(ps, lr=0.1, dampening="x"), "invalid dampening: 'x'"),
        (lambda ps: optim.SGD(ps, lr=0.1, nesterov=True), r"nesterov.*momentum=0.0"),
        (
            lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
            r"nesterov.*dampening=0.1",
        ),
        (lambda ps: optim.SGD(ps, lr=0.1, nesterov="yes"), "invalid nesterov: 'yes'"),
        (lambda ps: optim.SGD(ps, lr=0.1, maximize=1), "invalid maximize: 1"),
        (lambda ps: optim.Adam(ps, lr=-1e-3), "invalid lr: -0.001"),
        (lambda ps: optim.Adam(ps, lr="fast"), "invalid lr: 'fast'"),
        (lambda ps: optim.Adam(ps, betas=(1.0, 0.999)), r"invalid betas\[0\]: 1.0"),
        (lambda ps: optim.Adam(ps, betas=(0.9, -0.1)), r"invalid betas\[1\]: -0.1"),
        (lambda ps: optim.Adam(ps, betas=(0.9,)), r"invalid betas: \(0.9,\)"),
        (lambda ps: optim.Adam(ps, betas=0.9), "invalid betas: 0.9"),
        (lambda ps: optim.Adam(ps, eps=-1e-8), "invalid eps: -1e-08"),
        (lambda ps: optim.Adam(ps, weight_decay=-0.1), "invalid weight_decay: -0.1"),
        (lambda ps: optim.Adam(ps, amsgrad="no"), "invalid amsgrad: 'no'"),
        (lambda ps: optim.AdamW(ps, lr=-1.0), "invalid lr: -1.0"),
        (lambda ps: optim.AdamW(ps, betas=(0.9, 1.5)), r"invalid betas\[1\]: 1.5"),
        (lambda ps: optim.AdamW(ps, eps=-1.0), "invalid eps: -1.0"),
        (lambda ps: optim.AdamW(ps, weight_decay=-0.01), "invalid weight_decay: -0.01"),
        (lambda ps: optim.SGD([{"params": ps, "lr": -2.0}], lr=0.1), "invalid lr: -2.0"),
    ],
)
def test_invalid_hyper_parameters_raise_value_error(make, message):
    with pytest.raises(ValueError, match=message):
        make([make_param(P0)])


# ---------------------------------------------------------------- state_dict


def grads_at(step, params):
    """Deterministic gradients that depend on the parameters, like a real loss."""
    out = []
    for i, p in enumerate(params):
        wiggle = np.sin(np.arange(p.numpy().size).reshape(p.numpy().shape) + step + 3 * i)
        out.append((p.numpy() - 0.5 * wiggle).astype(p.numpy().dtype))
    return out


def mlp_params(dtype=np.float32):
    gen = np.random.default_rng(0)
    shapes = [(8, 4), (8,), (8, 8), (8,), (3, 8), (3,)]
    return [make_param(gen.standard_normal(s), dtype) for s in shapes]


def train(params, opt, steps, start=0):
    for t in range(start, start + steps):
        for p, g in zip(params, grads_at(t, params), strict=True):
            set_grad(p, g)
        params[-1].grad = None if t % 3 == 0 else params[-1].grad  # a param without grad
        opt.step()


OPTIMIZERS = [
    lambda ps: optim.SGD(ps, lr=0.05),
    lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, dampening=0.1, weight_decay=1e-3),
    lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, maximize=False),
    lambda ps: optim.Adam(ps, lr=0.01, weight_decay=1e-3),
    lambda ps: optim.Adam(ps, lr=0.01, amsgrad=True),
    lambda ps: optim.AdamW(ps, lr=0.01, weight_decay=0.1),
    lambda ps: optim.AdamW([{"params": ps[:2]}, {"params": ps[2:], "lr": 0.003}]),
]


@pytest.mark.parametrize("make", OPTIMIZERS)
def test_resume_from_saved_state_matches_uninterrupted_training(make, tmp_path):
    straight = mlp_params()
    opt = make(straight)
    train(straight, opt, 10)

    first = mlp_params()
    opt1 = make(first)
    train(first, opt1, 4)
    save({f"p{i}": p for i, p in enumerate(first)}, tmp_path / "model.npz")
    save(opt1.state_dict(), tmp_path / "optim.npz")

    restored = mlp_params()
    weights = load(tmp_path / "model.npz")
    for i, p in enumerate(restored):
        p.data[...] = weights[f"p{i}"]
    opt2 = make(restored)
    opt2.load_state_dict(load(tmp_path / "optim.npz"))
    train(restored, opt2, 6, start=4)

    for a, b in zip(straight, restored, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_state_dict_layout_like_pytorch():
    ps = mlp_params()
    opt = optim.Adam([{"params": ps[:2]}, {"params": ps[2:], "lr": 0.1}], lr=0.01)
    train(ps, opt, 1, start=1)
    sd = opt.state_dict()
    assert sorted(sd) == ["param_groups", "state"]
    assert [g["params"] for g in sd["param_groups"]] == [[0, 1], [2, 3, 4, 5]]
    assert sd["param_groups"][1]["lr"] == 0.1
    assert sd["param_groups"][0]["betas"] == (0.9, 0.999)
    assert sorted(sd["state"]) == [0, 1, 2, 3, 4, 5]
    assert sorted(sd["state"][0]) == ["exp_avg", "exp_avg_sq", "step"]
    assert sd["state"][0]["step"] == 1


def test_state_dict_is_a_snapshot():
    ps = mlp_params()
    opt = optim.SGD(ps, lr=0.1, momentum=0.9)
    train(ps, opt, 1)
    sd = opt.state_dict()
    assert isinstance(sd["state"][0]["momentum_buffer"], tm.Tensor)  # tensors, as PyTorch's
    before = sd["state"][0]["momentum_buffer"].numpy().copy()
    train(ps, opt, 1, start=1)
    np.testing.assert_array_equal(sd["state"][0]["momentum_buffer"].numpy(), before)


def test_load_state_dict_casts_to_parameter_dtype_and_copies():
    ps64 = mlp_params(np.float64)
    opt64 = optim.Adam(ps64, lr=0.01)
    train(ps64, opt64, 2)
    sd = opt64.state_dict()
    ps32 = mlp_params(np.float32)
    opt32 = optim.Adam(ps32, lr=0.5)
    opt32.load_state_dict(sd)
    assert opt32.param_groups[0]["lr"] == 0.01
    assert opt32.param_groups[0]["params"][0] is ps32[0]
    state = opt32.state[ps32[0]]
    assert state["exp_avg"].dtype == np.float32
    assert not np.shares_memory(
        tm.backend.to_numpy(state["exp_avg"]), sd["state"][0]["exp_avg"].numpy()
    )
    assert state["step"] == 2


def test_load_state_dict_turns_loaded_betas_back_into_a_tuple(tmp_path):
    ps = mlp_params()
    opt = optim.Adam(ps)
    save(opt.state_dict(), tmp_path / "o.npz")
    opt.load_state_dict(load(tmp_path / "o.npz"))
    assert opt.param_groups[0]["betas"] == (0.9, 0.999)


def test_load_state_dict_refusals():
    ps = mlp_params()
    opt = optim.SGD(ps, lr=0.1, momentum=0.9)
    train(ps, opt, 1)
    good = opt.state_dict()

    two_groups = optim.SGD([{"params": ps[:3]}, {"params": ps[3:]}], lr=0.1)
    with pytest.raises(ValueError, match="1 parameter groups, but the optimizer has 2"):
        two_groups.load_state_dict(good)

    fewer = optim.SGD(ps[:5], lr=0.1)
    with pytest.raises(ValueError, match="group 0 has 6 parameters, but the optimizer's group 0"):
        fewer.load_state_dict(good)

    bad_shape = opt.state_dict()
    bad_shape["state"][1]["momentum_buffer"] = np.zeros((2, 2))
    with pytest.raises(ValueError, match=r"shape \(2, 2\), but the parameter has shape \(8,\)"):
        opt.load_state_dict(bad_shape)

    unknown_index = opt.state_dict()
    unknown_index["state"][17] = {}
    with pytest.raises(ValueError, match="unknown parameter index 17"):
        opt.load_state_dict(unknown_index)

    adam = optim.Adam(ps)
    with pytest.raises(ValueError, match=r"unknown entries \['momentum_buffer'\]"):
        adam.load_state_dict(good)

    bad_lr = opt.state_dict()
    bad_lr["param_groups"][0]["lr"] = -1.0
    with pytest.raises(ValueError, match="invalid lr: -1.0"):
        opt.load_state_dict(bad_lr)

    with pytest.raises(KeyError, match="'state'"):
        opt.load_state_dict({"param_groups": []})

    # a refused load leaves the optimizer as it was
    np.testing.assert_array_equal(
        tm.backend.to_numpy(opt.state[ps[0]]["momentum_buffer"]),
        good["state"][0]["momentum_buffer"].numpy(),
    )
    assert opt.param_groups[0]["lr"] == 0.1


def test_repr_lists_groups():
    text = repr(optim.SGD(mlp_params(), lr=0.1))
    assert text.startswith("SGD (") and "lr: 0.1" in text


# ---------------------------------------------------------------- with the engine's autodiff


@pytest.mark.parametrize("make", OPTIMIZERS)
def test_training_a_small_network_lowers_its_loss(make):
    nn = getattr(tm, "nn", None)
    if getattr(tm, "Tensor", None) is None or not hasattr(nn, "Linear"):
        pytest.skip("needs the Tensor engine and nn.Linear")
    from tinygrad_mlp import functional as F

    tm.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1))
    gen = np.random.default_rng(0)
    x = tm.Tensor(gen.standard_normal((64, 2)).astype(np.float32))
    y = (x.numpy()[:, :1] * x.numpy()[:, 1:] > 0).astype(np.float32)
    opt = make(list(model.parameters()))
    losses = []
    for _ in range(60):
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(model(x), y)
        loss.backward()
        opt.step()
        losses.append(float(loss.numpy()))
    assert losses[-1] < losses[0]
    for p in model.parameters():
        assert p.requires_grad and p.numpy().dtype == np.float32


# ---------------------------------------------------------------- against PyTorch, when present


def _torch_pair(torch_cls, ours_cls, kw, steps=5):
    torch = pytest.importorskip("torch")
    p = make_param(P0)
    tp = torch.tensor(P0, dtype=torch.float64, requires_grad=True)
    opt = ours_cls([p], **kw)
    topt = torch_cls([tp], **kw)
    grads = [GRADS[i % len(GRADS)] * (1 + i) for i in range(steps)]
    for g in grads:
        set_grad(p, g)
        tp.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        topt.step()
        np.testing.assert_allclose(p.numpy(), tp.detach().numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    "kw",
    [
        dict(lr=0.1),
        dict(lr=0.1, momentum=0.9),
        dict(lr=0.1, momentum=0.9, dampening=0.5, weight_decay=0.01),
        dict(lr=0.1, momentum=0.9, nesterov=True, maximize=True),
    ],
)
def test_sgd_matches_torch(kw):
    torch = pytest.importorskip("torch")
    _torch_pair(torch.optim.SGD, optim.SGD, kw)


@pytest.mark.parametrize(
    "kw",
    [dict(lr=0.01), dict(lr=0.01, weight_decay=0.1, amsgrad=True), dict(betas=(0.5, 0.6))],
)
@pytest.mark.parametrize("name", ["Adam", "AdamW"])
def test_adam_matches_torch(name, kw):
    torch = pytest.importorskip("torch")
    _torch_pair(getattr(torch.optim, name), getattr(optim, name), kw)


# ---------------------------------------------------------------- CuPy


@pytest.mark.cuda
@pytest.mark.parametrize("make", OPTIMIZERS)
def test_optimizers_on_cupy_match_numpy(make):
    from tinygrad_mlp import backend

    if not backend.cupy_available():
        pytest.skip("needs CuPy and a GPU")
    cp = backend.get_array_module("cuda")
    host = mlp_params(np.float64)
    gpu = [p.to("cuda") for p in mlp_params(np.float64)]
    opt_h, opt_g = make(host), make(gpu)
    for t in range(4):
        for p, q, g in zip(host, gpu, grads_at(t, host), strict=True):
            set_grad(p, g)
            set_grad(q, g)
        opt_h.step()
        opt_g.step()
        # the next gradients depend on the parameters: keep both runs on the same values
        for p, q in zip(host, gpu, strict=True):
            np.testing.assert_allclose(cp.asnumpy(q._data), p.numpy(), rtol=1e-12, atol=1e-14)
            q._data[...] = cp.asarray(p.numpy())


# LBFGS steps with a closure that recomputes the loss: test_breadth_ops.py checks it against torch
NAMES = [n for n in optim.__all__ if n not in ("Optimizer", "lr_scheduler", "LBFGS")]
FIVE_GRADS = [
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
        # PyTorch keeps the running product as a float32 tensor
        s["prod"] = float(np.float32(s.get("prod", 1.0)) * np.float32(mu))
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
    for g in FIVE_GRADS:
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
        g = FIVE_GRADS[i % len(FIVE_GRADS)] * (1 + i)
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
    for i, g in enumerate(FIVE_GRADS):
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
    for g in FIVE_GRADS[2:]:
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
    set_grad(p, FIVE_GRADS[0])
    tp.grad = torch.tensor(FIVE_GRADS[0])
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
    set_grad(a, FIVE_GRADS[0])
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
    set_grad(p, FIVE_GRADS[0])
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
        g = FIVE_GRADS[i % len(FIVE_GRADS)][0, i % 3] * (1 + i)
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
            g = FIVE_GRADS[i % len(FIVE_GRADS)] * (1 + i)
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
    for g in FIVE_GRADS[:3]:
        set_grad(p, g)
        grad = p.grad._data
        opt.step()
        assert p.grad._data is grad
        np.testing.assert_array_equal(p.grad.numpy(), g)


def test_nadam_keeps_its_momentum_product_in_float32_as_pytorch():
    # PyTorch holds mu_product as a float32 tensor: the product is rounded to float32 every step,
    # so a float64 product drifts from it by about 1e-8 (and the parameters by about 1e-9)
    torch = pytest.importorskip("torch")
    start = np.array([[-0.05, 0.2, 0.8], [0.4, -0.3, 1.1]])
    ours = tm.tensor(start, requires_grad=True)
    theirs = torch.tensor(start, requires_grad=True)
    opt_ours, opt_theirs = optim.NAdam([ours], lr=0.05), torch.optim.NAdam([theirs], lr=0.05)
    for _ in range(4):
        for p, opt in ((ours, opt_ours), (theirs, opt_theirs)):
            opt.zero_grad()
            ((p - 0.3) ** 2).sum().backward()
            opt.step()
    assert opt_ours.state[ours]["mu_product"] == float(opt_theirs.state[theirs]["mu_product"])
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-14)
