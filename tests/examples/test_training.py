"""End-to-end training: a 784-128-10 MLP learns a synthetic task, and resumed runs are exact."""

from __future__ import annotations

import numpy as np
import pytest

import tinygrad_mlp as tm
from tinygrad_mlp import functional as F
from tinygrad_mlp import nn

SAMPLES, FEATURES, HIDDEN, CLASSES, BATCH = 512, 784, 128, 10, 128


def teacher_data(seed=0):
    """512 inputs labelled by the argmax of a random linear teacher."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((SAMPLES, FEATURES)).astype(np.float32)
    teacher = rng.standard_normal((FEATURES, CLASSES))
    return x, (x @ teacher).argmax(axis=1)


X, Y = teacher_data()


def make_model(seed):
    tm.manual_seed(seed)
    return nn.Sequential(nn.Linear(FEATURES, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, CLASSES))


OPTIMIZERS = {
    "sgd": lambda params: tm.optim.SGD(params, lr=0.1, momentum=0.9),
    "adam": lambda params: tm.optim.Adam(params, lr=1e-3),
}


def train_steps(model, opt, first_step, count):
    """Run mini-batch steps first_step .. first_step + count - 1; return the loss of each."""
    losses = []
    for step in range(first_step, first_step + count):
        start = step * BATCH % SAMPLES
        xb, yb = tm.Tensor(X[start : start + BATCH]), Y[start : start + BATCH]
        opt.zero_grad()
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def full_loss(model):
    with tm.no_grad():
        logits = model(tm.Tensor(X))
        return F.cross_entropy(logits, Y).item(), float((logits.numpy().argmax(1) == Y).mean())


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_loss_falls_to_below_half(name):
    model = make_model(0)
    opt = OPTIMIZERS[name](model.parameters())
    start_loss, start_acc = full_loss(model)
    assert start_loss > 2.0  # about log(10) for a fresh model
    train_steps(model, opt, 0, 40)
    end_loss, end_acc = full_loss(model)
    assert np.isfinite(end_loss)
    assert end_loss < start_loss / 2, (start_loss, end_loss)
    assert end_acc > max(0.6, 2 * start_acc), (start_acc, end_acc)
    assert all(p.dtype == np.float32 for p in model.parameters())


def _params(model):
    return [p.numpy().copy() for p in model.parameters()]


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_resumed_run_continues_exactly(name, tmp_path):
    straight = make_model(0)
    straight_opt = OPTIMIZERS[name](straight.parameters())
    expected = train_steps(straight, straight_opt, 0, 12)

    first = make_model(0)
    first_opt = OPTIMIZERS[name](first.parameters())
    before = train_steps(first, first_opt, 0, 6)
    assert before == expected[:6]
    path = tmp_path / "checkpoint.npz"
    tm.save({"model": first.state_dict(), "optim": first_opt.state_dict()}, path)
    del first, first_opt

    checkpoint = tm.load(path)
    resumed = make_model(1)  # different initial weights, replaced by the checkpoint
    resumed_opt = OPTIMIZERS[name](resumed.parameters())
    resumed.load_state_dict(checkpoint["model"])
    resumed_opt.load_state_dict(checkpoint["optim"])
    after = train_steps(resumed, resumed_opt, 6, 6)
    assert before + after == expected
    for a, b in zip(_params(resumed), _params(straight), strict=True):
        np.testing.assert_array_equal(a, b)

    # the optimizer's state matters: without it the run drifts from the uninterrupted one
    forgetful = make_model(1)
    forgetful.load_state_dict(checkpoint["model"])
    drifted = train_steps(forgetful, OPTIMIZERS[name](forgetful.parameters()), 6, 6)
    assert drifted != expected[6:]
