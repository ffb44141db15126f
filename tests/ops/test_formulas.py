"""Autodiff against the hand-derived backprop formulas of the classic numpy MLP tutorials.

For a layer ``Z = A_prev @ W.T + b``, ``A = g(Z)`` and a loss averaged over a batch of m rows:
``dW = dZ.T @ A_prev / m``, ``db = dZ.sum(0) / m``, ``dA_prev = dZ @ W``, where ``dZ`` is the
per-sample gradient. Everything below is plain numpy, written from those formulas alone.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import arrays
from tensors import T

import tinygrad_mlp as tm
import tinygrad_mlp.nn.functional as F

RTOL, ATOL = 1e-9, 1e-12


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# g(Z) and dZ = dA * g'(Z) for each hidden activation
ACTIVATIONS = {
    "relu": (lambda z: np.maximum(z, 0), lambda da, z: da * (z > 0)),
    "sigmoid": (_sigmoid, lambda da, z: da * _sigmoid(z) * (1 - _sigmoid(z))),
    "tanh": (np.tanh, lambda da, z: da * (1 - np.tanh(z) ** 2)),
}
MODULES = {"relu": tm.nn.ReLU, "sigmoid": tm.nn.Sigmoid, "tanh": tm.nn.Tanh}

OUTPUTS = ("bce", "bce_with_logits", "ce_one_hot", "ce_index", "mse")


@st.composite
def networks(draw, depth: int, output: str):
    """Layer widths, a batch, weights scaled by 1/sqrt(fan_in), and targets for ``output``."""
    m = draw(st.integers(1, 8), label="batch")
    n_out = draw(st.integers(2, 5) if output.startswith("ce") else st.integers(1, 3), label="out")
    widths = [draw(st.integers(1, 6), label="width") for _ in range(depth)] + [n_out]
    X = draw(arrays((m, widths[0]), "real"), label="X")
    params = []
    for n_in, n_next in zip(widths[:-1], widths[1:], strict=True):
        W = draw(arrays((n_next, n_in), "real"), label="W") / (2 * np.sqrt(n_in))
        b = draw(arrays((n_next,), "real"), label="b") / 4
        params.append((W, b))
    if output in ("bce", "bce_with_logits"):
        Y = draw(arrays((m, n_out), "unit"), label="Y").round()  # 0/1 labels
    elif output == "mse":
        Y = draw(arrays((m, n_out), "unit"), label="Y")
    else:
        labels = draw(st.lists(st.integers(0, n_out - 1), min_size=m, max_size=m), label="labels")
        Y = np.eye(n_out)[labels]
    return X, params, Y


def _model(params, hidden: str) -> tm.nn.Sequential:
    """An MLP of float64 Linear layers holding ``params``, with ``hidden`` between them."""
    layers = []
    for i, (W, b) in enumerate(params):
        lin = tm.nn.Linear(W.shape[1], W.shape[0], dtype="float64")
        assert lin.weight.shape == W.shape and lin.weight.dtype == np.float64
        lin.weight.data[...] = W
        lin.bias.data[...] = b
        layers.append(lin)
        if i < len(params) - 1:
            layers.append(MODULES[hidden]())
    return tm.nn.Sequential(*layers)


def _autodiff_loss(model, X: T, Y, output: str) -> T:
    z = model(X)
    if output == "bce":
        return F.binary_cross_entropy(z.sigmoid(), Y)
    if output == "bce_with_logits":
        return F.binary_cross_entropy_with_logits(z, Y)
    if output == "ce_one_hot":
        return F.cross_entropy(z, Y)
    if output == "ce_index":
        return F.cross_entropy(z, Y.argmax(axis=1))
    return F.mse_loss(z.sigmoid(), Y)


def _by_hand(X, params, Y, hidden: str, output: str, l2: float = 0.0):
    """Forward and backward by the textbook formulas; returns loss, [(dW, db)], dX."""
    g, g_back = ACTIVATIONS[hidden]
    m = X.shape[0]
    A, As, Zs = X, [X], []
    for i, (W, b) in enumerate(params):
        Z = A @ W.T + b
        Zs.append(Z)
        A = g(Z) if i < len(params) - 1 else Z
        As.append(A)
    Z = Zs[-1]
    k = Z.shape[1]
    if output in ("bce", "bce_with_logits"):
        A = _sigmoid(Z)
        loss = -np.mean(Y * np.log(A) + (1 - Y) * np.log(1 - A))
        dZ = (A - Y) / k  # sigmoid + BCE: A - Y (the mean also runs over the k outputs)
    elif output.startswith("ce"):
        A = _softmax(Z)
        loss = -np.sum(Y * np.log(A)) / m
        dZ = A - Y  # softmax + cross-entropy on one-hot Y: A - Y
    else:
        A = _sigmoid(Z)
        loss = np.mean((A - Y) ** 2)
        dA = 2 * (A - Y) / k  # MSE: 2 (A - Y) / size, times m for the per-sample gradient
        dZ = dA * A * (1 - A)
    loss += l2 / 2 * sum(np.sum(W**2) for W, _ in params)
    grads = []
    for i in range(len(params) - 1, -1, -1):
        W, _ = params[i]
        dW = dZ.T @ As[i] / m + l2 * W
        db = dZ.sum(axis=0) / m
        dA_prev = dZ @ W
        grads.append((dW, db))
        if i > 0:
            dZ = g_back(dA_prev, Zs[i - 1])
    return loss, grads[::-1], dA_prev / m


def _compare(X, params, Y, hidden: str, output: str, l2: float = 0.0) -> None:
    model = _model(params, hidden)
    Xt = T(X, dtype="float64", requires_grad=True)
    loss = _autodiff_loss(model, Xt, Y, output)
    if l2:
        loss = loss + l2 / 2 * sum((layer.weight**2).sum() for layer in model.layers[::2])
    loss.backward()
    want_loss, want_grads, want_dX = _by_hand(X, params, Y, hidden, output, l2)
    assert loss.dtype == np.float64
    np.testing.assert_allclose(loss.item(), want_loss, rtol=RTOL, atol=ATOL)
    linears = model.layers[::2]
    assert len(linears) == len(want_grads)
    for layer, (dW, db) in zip(linears, want_grads, strict=True):
        assert layer.weight.grad.shape == layer.weight.shape
        np.testing.assert_allclose(layer.weight.grad.numpy(), dW, rtol=RTOL, atol=ATOL)
        np.testing.assert_allclose(layer.bias.grad.numpy(), db, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(Xt.grad.numpy(), want_dX, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("depth", [2, 3], ids=["2-layer", "3-layer"])
@given(data=st.data())
def test_relu_mlp_matches_hand_derived_backprop(depth, output, data):
    X, params, Y = data.draw(networks(depth, output))
    _compare(X, params, Y, "relu", output)


@pytest.mark.parametrize("hidden", ["tanh", "sigmoid"])
@pytest.mark.parametrize("output", ["bce", "ce_one_hot", "mse"])
@given(data=st.data())
def test_tanh_and_sigmoid_layers_match_hand_derived_backprop(hidden, output, data):
    X, params, Y = data.draw(networks(3, output))
    _compare(X, params, Y, hidden, output)


@pytest.mark.parametrize("output", ["ce_index", "bce_with_logits", "mse"])
@given(data=st.data(), l2=st.floats(0.01, 1.0))
def test_l2_weight_decay_adds_lambda_w(output, data, l2):
    X, params, Y = data.draw(networks(2, output))
    _compare(X, params, Y, "relu", output, l2=l2)


@given(data=st.data())
def test_softmax_jacobian_product(data):
    """dZ = S * (dA - sum(dA * S, axis)) for an explicit softmax followed by any loss."""
    m = data.draw(st.integers(1, 6))
    k = data.draw(st.integers(1, 5))
    Z = data.draw(arrays((m, k), "real"))
    C = data.draw(arrays((m, k), "real"))  # loss = sum(S * C), so dA = C
    z = T(Z, dtype="float64", requires_grad=True)
    (z.softmax(axis=1) * C).sum().backward()
    S = np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(
        z.grad.numpy(), S * (C - np.sum(C * S, axis=1, keepdims=True)), rtol=RTOL, atol=ATOL
    )
    # the same product along axis 0
    z0 = T(Z, dtype="float64", requires_grad=True)
    (z0.softmax(axis=0) * C).sum().backward()
    S0 = np.exp(Z) / np.exp(Z).sum(axis=0, keepdims=True)
    np.testing.assert_allclose(
        z0.grad.numpy(), S0 * (C - np.sum(C * S0, axis=0, keepdims=True)), rtol=RTOL, atol=ATOL
    )


@given(data=st.data())
def test_explicit_softmax_then_log_gives_a_minus_y(data):
    """Softmax, log and a one-hot sum, each recorded separately, still give dZ = (A - Y) / m."""
    X, params, Y = data.draw(networks(2, "ce_one_hot"))
    model = _model(params, "relu")
    A = model(T(X, dtype="float64")).softmax(axis=1)
    m = X.shape[0]
    loss = -(A.log() * Y).sum() / m
    loss.backward()
    want_loss, want_grads, _ = _by_hand(X, params, Y, "relu", "ce_one_hot")
    np.testing.assert_allclose(loss.item(), want_loss, rtol=1e-8)
    for layer, (dW, db) in zip(model.layers[::2], want_grads, strict=True):
        np.testing.assert_allclose(layer.weight.grad.numpy(), dW, rtol=1e-8, atol=1e-11)
        np.testing.assert_allclose(layer.bias.grad.numpy(), db, rtol=1e-8, atol=1e-11)
