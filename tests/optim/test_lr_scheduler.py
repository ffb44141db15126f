"""optim.lr_scheduler: PyTorch's exact learning-rate sequences, by hand and against torch."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tinygrad_mlp as tm
from tinygrad_mlp import optim
from tinygrad_mlp.optim import lr_scheduler as L


def _opt(lr=0.1, kind="SGD", groups=1):
    params = [tm.Tensor(np.zeros(2), requires_grad=True) for _ in range(groups)]
    if kind == "SGD":
        return optim.SGD(
            [{"params": [p], "lr": lr * (i + 1)} for i, p in enumerate(params)], lr=lr, momentum=0.9
        )
    return optim.Adam([{"params": [p], "lr": lr * (i + 1)} for i, p in enumerate(params)], lr=lr)


def _sequence(scheduler, steps, opt):
    out = []
    for _ in range(steps):
        out.append(scheduler.get_last_lr()[0])
        assert opt.param_groups[0]["lr"] == out[-1]
        opt.step()
        scheduler.step()
    return out


# (class name, keyword arguments) with the torch class of the same name
SCHEDULES = [
    ("StepLR", dict(step_size=3, gamma=0.5)),
    ("MultiStepLR", dict(milestones=[2, 5, 5, 9], gamma=0.3)),
    ("ExponentialLR", dict(gamma=0.9)),
    ("CosineAnnealingLR", dict(T_max=7, eta_min=0.01)),
    ("CosineAnnealingWarmRestarts", dict(T_0=3, T_mult=2, eta_min=0.001)),
    ("CosineAnnealingWarmRestarts", dict(T_0=4)),
    ("LinearLR", dict(start_factor=0.25, end_factor=0.9, total_iters=4)),
    ("ConstantLR", dict(factor=0.5, total_iters=3)),
    ("OneCycleLR", dict(max_lr=1.0, total_steps=30)),
    (
        "OneCycleLR",
        dict(max_lr=[1.0, 2.0], total_steps=30, anneal_strategy="linear", three_phase=True),
    ),
    ("LambdaLR", dict(lr_lambda=lambda e: 0.95**e + 0.1)),
    ("MultiplicativeLR", dict(lr_lambda=lambda e: 0.9 if e % 2 else 1.0)),
    ("PolynomialLR", dict(total_iters=6, power=2.0)),
    ("PolynomialLR", dict()),
    ("CyclicLR", dict(base_lr=0.01, max_lr=0.1, step_size_up=3)),
    (
        "CyclicLR",
        dict(
            base_lr=[0.01, 0.02],
            max_lr=0.1,
            step_size_up=2,
            step_size_down=5,
            mode="triangular2",
            base_momentum=0.7,
        ),
    ),  # fmt: skip
    ("CyclicLR", dict(base_lr=0.01, max_lr=0.1, step_size_up=4, mode="exp_range", gamma=0.9)),
    (
        "CyclicLR",
        dict(
            base_lr=0.01,
            max_lr=0.1,
            step_size_up=3,
            scale_fn=lambda x: 0.5**x,
            scale_mode="iterations",
            cycle_momentum=False,
        ),
    ),  # fmt: skip
]


def _ids(case):
    return f"{case[0]}-{sorted(k for k in case[1] if k != 'lr_lambda')}"


@pytest.mark.parametrize(("name", "kwargs"), SCHEDULES, ids=[_ids(c) for c in SCHEDULES])
@pytest.mark.parametrize("kind", ["SGD", "Adam"])
def test_sequence_matches_torch_exactly(name, kwargs, kind):
    torch = pytest.importorskip("torch")
    import warnings

    opt = _opt(kind=kind, groups=2)
    tparams = [torch.zeros(2, requires_grad=True) for _ in range(2)]
    tcls = getattr(torch.optim, kind)
    extra = {"momentum": 0.9} if kind == "SGD" else {}
    topt = tcls(
        [{"params": [p], "lr": 0.1 * (i + 1)} for i, p in enumerate(tparams)], lr=0.1, **extra
    )
    ours = getattr(L, name)(opt, **kwargs)
    theirs = getattr(torch.optim.lr_scheduler, name)(topt, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(29):
            assert ours.get_last_lr() == theirs.get_last_lr()  # exactly, float for float
            for g, tg in zip(opt.param_groups, topt.param_groups, strict=True):
                assert g["lr"] == tg["lr"]
                if "betas" in g:
                    assert tuple(g["betas"]) == tuple(tg["betas"])
                else:
                    assert g["momentum"] == tg["momentum"]
            opt.step()
            topt.step()
            ours.step()
            theirs.step()
    assert ours.last_epoch == theirs.last_epoch


def test_chained_scheduler_matches_torch_exactly():
    torch = pytest.importorskip("torch")
    tl = torch.optim.lr_scheduler
    opt = _opt(1.0)
    topt = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=1.0, momentum=0.9)
    ours = L.ChainedScheduler(
        [L.ConstantLR(opt, factor=0.1, total_iters=2), L.ExponentialLR(opt, gamma=0.9)]
    )
    theirs = tl.ChainedScheduler(
        [tl.ConstantLR(topt, factor=0.1, total_iters=2), tl.ExponentialLR(topt, gamma=0.9)]
    )
    for _ in range(8):
        assert ours.get_last_lr() == theirs.get_last_lr()
        opt.step(), topt.step(), ours.step(), theirs.step()
    assert ours.get_last_lr() == theirs.get_last_lr()
    state = ours.state_dict()
    assert sorted(state) == sorted(theirs.state_dict())
    with pytest.raises(ValueError):
        L.ChainedScheduler([])
    with pytest.raises(ValueError):
        L.ChainedScheduler([L.ReduceLROnPlateau(opt)])


def test_polynomial_and_cyclic_by_hand():
    opt = _opt(1.0)
    seq = _sequence(L.PolynomialLR(opt, total_iters=4, power=2.0), 6, opt)
    expected = [(1 - min(e, 4) / 4) ** 2 for e in range(6)]
    np.testing.assert_allclose(seq, expected, rtol=1e-12, atol=1e-15)
    opt = _opt(1.0)
    sched = L.CyclicLR(opt, base_lr=0.0, max_lr=1.0, step_size_up=2, mode="triangular2")
    seq = _sequence(sched, 9, opt)
    np.testing.assert_allclose(seq, [0, 0.5, 1, 0.5, 0, 0.25, 0.5, 0.25, 0], atol=1e-15)
    # epoch 9: half way up the third triangle, of height 1/4: momentum moves the other way
    assert opt.param_groups[0]["momentum"] == pytest.approx(0.9 - 0.1 * 0.5 * 0.25)
    with pytest.raises(ValueError, match="momentum"):
        L.CyclicLR(optim.Adagrad([tm.Tensor(np.zeros(2), requires_grad=True)]), 0.1, 1.0)
    with pytest.raises(ValueError, match="mode"):
        L.CyclicLR(opt, 0.1, 1.0, mode="square")


def test_step_lr_and_multistep_by_hand():
    opt = _opt()
    assert _sequence(L.StepLR(opt, step_size=2, gamma=0.5), 6, opt) == [
        0.1,
        0.1,
        0.05,
        0.05,
        0.025,
        0.025,
    ]
    opt = _opt(1.0)
    seq = _sequence(L.MultiStepLR(opt, milestones=[1, 3, 3], gamma=0.5), 5, opt)
    assert seq == [1.0, 0.5, 0.5, 0.125, 0.125]  # a milestone given twice applies twice


def test_exponential_is_recursive_not_closed_form():
    opt = _opt()
    seq = _sequence(L.ExponentialLR(opt, gamma=0.9), 5, opt)
    expected = [0.1]
    for _ in range(4):
        expected.append(expected[-1] * 0.9)  # lr = lr * gamma, rounded at each step
    assert seq == expected


def test_cosine_by_hand_and_closed_form_by_epoch():
    opt = _opt(1.0)
    sched = L.CosineAnnealingLR(opt, T_max=4, eta_min=0.0)
    seq = _sequence(sched, 9, opt)
    closed = [(1 + math.cos(math.pi * e / 4)) / 2 for e in range(9)]
    np.testing.assert_allclose(seq, closed, rtol=1e-12, atol=1e-15)  # equal up to rounding
    sched.step(2)  # an explicit epoch uses the closed form, as PyTorch
    assert sched.get_last_lr()[0] == (1 + math.cos(math.pi * 2 / 4)) / 2


def test_warm_restarts_by_hand():
    opt = _opt(1.0)
    seq = _sequence(L.CosineAnnealingWarmRestarts(opt, T_0=2, T_mult=2), 8, opt)
    t_i = [2, 2, 4, 4, 4, 4, 8, 8]
    t_cur = [0, 1, 0, 1, 2, 3, 0, 1]
    expected = [(1 + math.cos(math.pi * c / t)) / 2 for c, t in zip(t_cur, t_i, strict=True)]
    np.testing.assert_allclose(seq, expected, rtol=1e-12, atol=1e-15)


def test_linear_constant_lambda_multiplicative_by_hand():
    opt = _opt(1.0)
    seq = _sequence(L.LinearLR(opt, start_factor=0.5, total_iters=2), 4, opt)
    np.testing.assert_allclose(seq, [0.5, 0.75, 1.0, 1.0], rtol=1e-15)
    opt = _opt(1.0)
    assert _sequence(L.ConstantLR(opt, factor=0.25, total_iters=2), 4, opt) == [
        0.25,
        0.25,
        1.0,
        1.0,
    ]
    opt = _opt(2.0)
    assert _sequence(L.LambdaLR(opt, lambda e: 1 / (e + 1)), 3, opt) == [2.0, 1.0, 2 / 3]
    opt = _opt(1.0)
    assert _sequence(L.MultiplicativeLR(opt, lambda e: 0.5), 3, opt) == [1.0, 0.5, 0.25]


def test_one_cycle_by_hand():
    opt = _opt(kind="SGD")
    sched = L.OneCycleLR(opt, max_lr=1.0, total_steps=10, pct_start=0.2, anneal_strategy="linear")
    lrs, momenta = [], []
    for _ in range(10):
        lrs.append(sched.get_last_lr()[0])
        momenta.append(opt.param_groups[0]["momentum"])
        opt.step()
        sched.step()
    # up from 1/25 to 1 over steps 0..1, then down to 1/25/1e4 at step 9, momentum opposite
    assert lrs[0] == pytest.approx(0.04) and lrs[1] == pytest.approx(1.0)
    assert lrs[5] == pytest.approx(1.0 + (0.04 / 1e4 - 1.0) * 0.5)
    assert lrs[9] == pytest.approx(0.04 / 1e4)
    assert momenta[0] == pytest.approx(0.95) and momenta[1] == pytest.approx(0.85)
    assert momenta[9] == pytest.approx(0.95)
    with pytest.raises(ValueError, match="Tried to step 11 times"):
        sched.step()


def test_sequential_lr_by_hand_and_against_torch():
    opt = _opt(1.0)
    warm = L.LinearLR(opt, start_factor=0.1, total_iters=2)
    decay = L.ExponentialLR(opt, gamma=0.5)
    sched = L.SequentialLR(opt, [warm, decay], milestones=[2])
    seq = _sequence(sched, 5, opt)
    np.testing.assert_allclose(seq, [0.1, 0.55, 1.0, 0.5, 0.25], rtol=1e-12)
    torch = pytest.importorskip("torch")
    tp = torch.zeros(1, requires_grad=True)
    topt = torch.optim.SGD([tp], lr=1.0)
    tl = torch.optim.lr_scheduler
    theirs = tl.SequentialLR(
        topt, [tl.LinearLR(topt, start_factor=0.1, total_iters=2), tl.ExponentialLR(topt, 0.5)], [2]
    )
    tseq = []
    for _ in range(5):
        tseq.append(theirs.get_last_lr()[0])
        topt.step()
        theirs.step()
    assert seq == tseq


def test_reduce_on_plateau_by_hand_and_against_torch():
    metrics = [1.0, 0.9, 0.95, 0.95, 0.96, 0.97, 0.5, 0.6, 0.7, 0.8, 0.9]
    opt = _opt(1.0)
    sched = L.ReduceLROnPlateau(opt, factor=0.5, patience=2, cooldown=1, min_lr=0.2)
    lrs = []
    for m in metrics:
        sched.step(m)
        lrs.append(sched.get_last_lr()[0])
    # three bad epochs (more than patience) halve the rate; the epoch after it is cooldown
    assert lrs == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25]
    torch = pytest.importorskip("torch")
    for kw in (
        dict(factor=0.5, patience=2, cooldown=1, min_lr=0.2),
        dict(mode="max", threshold=0.1, threshold_mode="abs", patience=0),
    ):
        opt = _opt(1.0)
        topt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
        ours, theirs = (
            L.ReduceLROnPlateau(opt, **kw),
            torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kw),
        )
        for m in metrics:
            ours.step(m)
            theirs.step(m)
            assert ours.get_last_lr() == theirs.get_last_lr()
            assert ours.num_bad_epochs == theirs.num_bad_epochs


@pytest.mark.parametrize(("name", "kwargs"), SCHEDULES[:9], ids=[_ids(c) for c in SCHEDULES[:9]])
def test_state_dict_round_trip_continues_the_sequence(name, kwargs, tmp_path):
    opt = _opt()
    sched = getattr(L, name)(opt, **kwargs)
    full = _sequence(sched, 12, opt)
    opt1 = _opt()
    first = getattr(L, name)(opt1, **kwargs)
    head = _sequence(first, 5, opt1)
    tm.save({"opt": opt1.state_dict(), "sched": first.state_dict()}, tmp_path / "ckpt.npz")
    saved = tm.load(tmp_path / "ckpt.npz")
    opt2 = _opt()
    resumed = getattr(L, name)(opt2, **kwargs)
    opt2.load_state_dict(saved["opt"])
    resumed.load_state_dict(saved["sched"])
    assert resumed.last_epoch == 5
    assert head + _sequence(resumed, 7, opt2) == full


def test_state_dict_holds_what_pytorch_saves():
    opt = _opt()
    sched = L.StepLR(opt, step_size=2)
    sd = sched.state_dict()
    assert "optimizer" not in sd
    assert {"base_lrs", "last_epoch", "_step_count", "_last_lr", "step_size", "gamma"} <= set(sd)
    assert opt.param_groups[0]["initial_lr"] == 0.1
    lam = L.LambdaLR(opt, lambda e: 1.0)
    assert lam.state_dict()["lr_lambdas"] == [None]  # plain functions are not saved


def test_refusals():
    opt = _opt()
    with pytest.raises(TypeError, match="is not an Optimizer"):
        L.StepLR(object(), 2)
    with pytest.raises(KeyError, match="initial_lr"):
        L.StepLR(_opt(), 2, last_epoch=3)
    with pytest.raises(ValueError, match="Starting multiplicative factor"):
        L.LinearLR(opt, start_factor=0)
    with pytest.raises(ValueError, match="Constant multiplicative factor"):
        L.ConstantLR(opt, factor=2)
    with pytest.raises(ValueError, match="Expected positive integer T_0"):
        L.CosineAnnealingWarmRestarts(opt, T_0=0)
    with pytest.raises(ValueError, match="total_steps OR"):
        L.OneCycleLR(opt, max_lr=1.0)
    with pytest.raises(ValueError, match="momentum or beta1"):
        L.OneCycleLR(optim.Adagrad([tm.Tensor(np.zeros(1), requires_grad=True)]), 1.0, 10)
    with pytest.raises(ValueError, match="Factor should be < 1.0"):
        L.ReduceLROnPlateau(opt, factor=1.0)
    with pytest.raises(ValueError, match="mode avg is unknown"):
        L.ReduceLROnPlateau(opt, mode="avg")
    with pytest.raises(ValueError, match="number of milestone points"):
        L.SequentialLR(opt, [L.StepLR(opt, 2)], milestones=[1])
    with pytest.raises(ValueError, match="Expected 1 lr_lambdas"):
        L.LambdaLR(opt, [lambda e: 1, lambda e: 2])
