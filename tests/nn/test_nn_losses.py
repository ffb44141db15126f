"""Every loss module and function with every option: against PyTorch and values by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from tensors import T

import tinygrad_mlp as tm
from tinygrad_mlp import nn
from tinygrad_mlp.nn import functional as F

F64 = np.float64
RNG = np.random.default_rng(3)
LOGITS = RNG.standard_normal((6, 4))
LABELS = np.array([3, 0, 1, 2, 2, 0])
IGNORED = np.array([3, -100, 1, 2, -100, 0])
PROBS = np.abs(RNG.standard_normal((6, 4)))
PROBS /= PROBS.sum(1, keepdims=True)
WEIGHT = np.array([0.2, 1.0, 2.5, 0.7])
PRED = RNG.standard_normal((5, 3)) * 2
TARGET = RNG.standard_normal((5, 3)) * 2
UNIT = 1 / (1 + np.exp(-PRED))
BINARY = (RNG.random((5, 3)) > 0.5).astype(F64)
ELEMENT_WEIGHT = RNG.random((5, 3)) + 0.5
POS_WEIGHT = np.array([0.5, 2.0, 3.0])
LOG_P = np.log(PROBS)


def t64(a, requires_grad=True):
    return T(np.asarray(a, dtype=F64), requires_grad=requires_grad)


# (module name, constructor kwargs, input, target); the torch module takes the same kwargs
CASES = [
    ("CrossEntropyLoss", {}, LOGITS, LABELS),
    ("CrossEntropyLoss", {"weight": WEIGHT}, LOGITS, LABELS),
    ("CrossEntropyLoss", {}, LOGITS, IGNORED),
    ("CrossEntropyLoss", {"ignore_index": 2}, LOGITS, LABELS),
    ("CrossEntropyLoss", {"weight": WEIGHT}, LOGITS, IGNORED),
    ("CrossEntropyLoss", {"label_smoothing": 0.1}, LOGITS, LABELS),
    ("CrossEntropyLoss", {"label_smoothing": 0.2, "weight": WEIGHT}, LOGITS, IGNORED),
    ("CrossEntropyLoss", {}, LOGITS, PROBS),
    ("CrossEntropyLoss", {"weight": WEIGHT, "label_smoothing": 0.3}, LOGITS, PROBS),
    ("CrossEntropyLoss", {}, LOGITS[0], LABELS[0]),
    ("CrossEntropyLoss", {"weight": WEIGHT}, RNG.standard_normal((2, 4, 3)), LABELS.reshape(2, 3)),
    ("NLLLoss", {}, LOG_P, LABELS),
    ("NLLLoss", {"weight": WEIGHT}, LOG_P, IGNORED),
    ("NLLLoss", {"ignore_index": 0}, LOG_P, LABELS),
    ("MSELoss", {}, PRED, TARGET),
    ("L1Loss", {}, PRED, TARGET),
    ("SmoothL1Loss", {}, PRED, TARGET),
    ("SmoothL1Loss", {"beta": 0.5}, PRED, TARGET),
    ("SmoothL1Loss", {"beta": 0.0}, PRED, TARGET),
    ("HuberLoss", {}, PRED, TARGET),
    ("HuberLoss", {"delta": 2.5}, PRED, TARGET),
    ("BCELoss", {}, UNIT, BINARY),
    ("BCELoss", {"weight": ELEMENT_WEIGHT}, UNIT, UNIT[::-1].copy()),
    ("BCEWithLogitsLoss", {}, PRED, BINARY),
    ("BCEWithLogitsLoss", {"weight": ELEMENT_WEIGHT}, PRED, BINARY),
    ("BCEWithLogitsLoss", {"pos_weight": POS_WEIGHT}, PRED, UNIT),
    ("BCEWithLogitsLoss", {"pos_weight": POS_WEIGHT, "weight": POS_WEIGHT}, PRED * 20, BINARY),
    ("KLDivLoss", {}, LOG_P, PROBS),
    ("KLDivLoss", {"log_target": True}, LOG_P, LOG_P[::-1].copy()),
]
TENSOR_ARGS = ("weight", "pos_weight")


def _ids(case):
    name, kwargs, x, _ = case
    return f"{name}-{'-'.join(sorted(kwargs))}-{np.shape(x)}"


def _reductions(name):
    return ["mean", "sum", "none"] + (["batchmean"] if name == "KLDivLoss" else [])


@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_loss_module_matches_torch_for_every_reduction(case):
    torch = pytest.importorskip("torch")
    name, kwargs, x_data, y_data = case
    for reduction in _reductions(name):
        ours = getattr(nn, name)(reduction=reduction, **kwargs)
        theirs = getattr(torch.nn, name)(
            reduction=reduction,
            **{k: torch.tensor(v) if k in TENSOR_ARGS else v for k, v in kwargs.items()},
        )
        x = t64(x_data)
        tx = torch.tensor(x_data, requires_grad=True)
        integer = np.asarray(y_data).dtype.kind == "i"
        y = tm.tensor(y_data) if integer else t64(y_data, False)
        ty = torch.tensor(y_data)
        out, tout = ours(x, y), theirs(tx, ty)
        assert out.shape == tuple(tout.shape), reduction
        np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-10, atol=1e-12)
        g = np.cos(np.arange(max(out.numel(), 1))).reshape(out.shape)
        (out * t64(g, False)).sum().backward()
        (tout * torch.tensor(g)).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-9, atol=1e-12)
        assert repr(ours) == repr(theirs)


@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_loss_module_and_function_agree_and_pass_gradcheck(case):
    name, kwargs, x_data, y_data = case
    functions = {
        "CrossEntropyLoss": F.cross_entropy,
        "NLLLoss": F.nll_loss,
        "MSELoss": F.mse_loss,
        "L1Loss": F.l1_loss,
        "SmoothL1Loss": F.smooth_l1_loss,
        "HuberLoss": F.huber_loss,
        "BCELoss": F.binary_cross_entropy,
        "BCEWithLogitsLoss": F.binary_cross_entropy_with_logits,
        "KLDivLoss": F.kl_div,
    }
    kw = {k: T(v) if k in TENSOR_ARGS else v for k, v in kwargs.items()}
    module = getattr(nn, name)(**kw)
    y = tm.tensor(y_data) if np.asarray(y_data).dtype.kind == "i" else t64(y_data, False)
    np.testing.assert_array_equal(
        module(t64(x_data), y).numpy(), functions[name](t64(x_data), y, **kw).numpy()
    )
    if name in ("L1Loss", "SmoothL1Loss", "HuberLoss"):
        return  # kinks at |x - y| = 0 or beta: checked against torch instead
    if name == "BCELoss":
        return  # the clamped log: checked against torch
    assert tm.gradcheck(lambda x: module(x, y), [t64(x_data)])


# ---------------------------------------------------------------- by hand


def _log_softmax(z):
    z = z - z.max(1, keepdims=True)
    return z - np.log(np.exp(z).sum(1, keepdims=True))


def test_weighted_cross_entropy_mean_divides_by_the_picked_weights():
    out = F.cross_entropy(t64(LOGITS), IGNORED, weight=T(WEIGHT))
    keep = IGNORED != -100
    rows = np.arange(6)[keep]
    picked = -_log_softmax(LOGITS)[rows, IGNORED[keep]] * WEIGHT[IGNORED[keep]]
    assert out.item() == pytest.approx(picked.sum() / WEIGHT[IGNORED[keep]].sum(), rel=1e-12)
    none = F.cross_entropy(t64(LOGITS), IGNORED, reduction="none")
    assert none.numpy()[1] == 0 and none.numpy()[4] == 0


def test_label_smoothing_by_hand():
    eps = 0.1
    out = F.cross_entropy(t64(LOGITS), LABELS, label_smoothing=eps).item()
    logp = _log_softmax(LOGITS)
    target = np.full((6, 4), eps / 4)
    target[np.arange(6), LABELS] += 1 - eps
    assert out == pytest.approx(-(target * logp).sum(1).mean(), rel=1e-12)


def test_probability_targets_by_hand():
    out = F.cross_entropy(t64(LOGITS), PROBS, weight=T(WEIGHT)).item()
    expected = -(PROBS * WEIGHT * _log_softmax(LOGITS)).sum() / 6  # mean over samples
    assert out == pytest.approx(expected, rel=1e-12)


def test_all_targets_ignored_gives_nan_as_torch():
    out = F.cross_entropy(t64(LOGITS[:2]), np.array([-100, -100]))
    assert math.isnan(out.item())


def test_smooth_l1_and_huber_by_hand():
    d = np.array([0.2, -0.7, 1.5, -3.0])
    x, y = t64(d), np.zeros(4)
    beta = 1.0
    expected = np.where(np.abs(d) < beta, 0.5 * d**2 / beta, np.abs(d) - 0.5 * beta)
    np.testing.assert_allclose(F.smooth_l1_loss(x, y, reduction="none").numpy(), expected)
    delta = 2.0
    huber = np.where(np.abs(d) < delta, 0.5 * d**2, delta * (np.abs(d) - 0.5 * delta))
    np.testing.assert_allclose(F.huber_loss(x, y, reduction="none", delta=delta).numpy(), huber)


def test_bce_with_logits_pos_weight_by_hand():
    z, y, pw = PRED, UNIT, POS_WEIGHT
    expected = -(pw * y * np.log(1 / (1 + np.exp(-z))) + (1 - y) * np.log(1 - 1 / (1 + np.exp(-z))))
    out = F.binary_cross_entropy_with_logits(t64(z), y, pos_weight=T(pw), reduction="none")
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10)


def test_kl_div_batchmean_and_zero_targets():
    y = PROBS.copy()
    y[0, 0] = 0.0  # 0 log 0 counts as 0
    out = F.kl_div(t64(LOG_P), y, reduction="batchmean").item()
    terms = np.where(y > 0, y * (np.log(np.where(y > 0, y, 1)) - LOG_P), 0.0)
    assert out == pytest.approx(terms.sum() / 6, rel=1e-12)
    assert F.kl_div(t64(LOG_P), y, reduction="mean").item() == pytest.approx(terms.mean())


# ---------------------------------------------------------------- refusals


def test_refusals_name_the_problem():
    with pytest.raises(ValueError, match="not a valid value for reduction"):
        nn.MSELoss(reduction="avg")
    with pytest.raises(ValueError, match="not a valid value for reduction"):
        F.kl_div(t64(LOG_P), PROBS, reduction="average")
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(t64(LOGITS), LABELS, label_smoothing=1.5)
    with pytest.raises(RuntimeError, match="weight tensor should be defined"):
        F.cross_entropy(t64(LOGITS), LABELS, weight=T(np.ones(3)))
    with pytest.raises(IndexError, match="Target 4 is out of bounds"):
        F.nll_loss(t64(LOG_P), np.array([4, 0, 0, 0, 0, 0]))
    with pytest.raises(RuntimeError, match="negative values for beta"):
        F.smooth_l1_loss(t64(PRED), TARGET, beta=-1.0)
    with pytest.raises(ValueError, match="same size"):
        F.huber_loss(t64(PRED), TARGET[:, :2])
