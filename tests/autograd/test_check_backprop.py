"""check_backprop on the classic hand-written networks, and on deliberately broken backward passes.

Each network is written as the tutorials write it: a dict of W1, b1, ..., a forward pass against
``np`` (here tinygrad_mlp.numpy, so that it records the graph) and a backward pass in plain numpy
with the formulas of REFERENCE.md, costs averaged over the batch.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy
import pytest
from hypothesis import given, settings

import tinygrad_mlp.numpy as np
from tinygrad_mlp.testing import BackpropReport, check_backprop, check_backprop_property
from tinygrad_mlp.testing import strategies as tms

# ---------------------------------------------------------------- the networks, tutorial style


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _sigmoid(z):
    return 1 / (1 + numpy.exp(-z))


def _layers(params):
    return len(params) // 2


# 2-25-50-50-25-1 moons: samples in columns, Z = W @ A + b, ReLU, sigmoid output, BCE.
MOONS = (2, 25, 50, 50, 25, 1)


def moons_forward(params, X, Y):
    L = _layers(params)
    A = X
    for layer in range(1, L):
        A = np.maximum(0, np.dot(params[f"W{layer}"], A) + params[f"b{layer}"])
    AL = sigmoid(np.dot(params[f"W{L}"], A) + params[f"b{L}"])
    m = X.shape[1]
    return -np.sum(Y * np.log(AL) + (1 - Y) * np.log(1 - AL)) / m


def moons_backward(params, X, Y, broken=None):
    L = _layers(params)
    m = X.shape[1]
    cache = {"A0": X}
    A = X
    for layer in range(1, L + 1):
        Z = params[f"W{layer}"] @ A + params[f"b{layer}"]
        A = _sigmoid(Z) if layer == L else numpy.maximum(0, Z)
        cache[f"Z{layer}"], cache[f"A{layer}"] = Z, A
    grads = {}
    dZ = cache[f"A{L}"] - Y  # sigmoid output with binary cross-entropy
    for layer in range(L, 0, -1):
        A_prev = cache[f"A{layer - 1}"]
        grads[f"W{layer}"] = dZ @ A_prev.T / (1 if broken == "missing 1/m" else m)
        grads[f"b{layer}"] = numpy.sum(dZ, axis=1, keepdims=True) / m
        if broken == "wrong sign" and layer == 2:
            grads["b2"] = -grads["b2"]
        if layer > 1:
            dA = params[f"W{layer}"].T @ dZ
            dZ = dA * (cache[f"Z{layer - 1}"] > 0)
    return grads


# 784-80-80-10 MNIST: samples in rows, Z = A @ W.T + b, ReLU, ReLU, softmax, CE plus L2.
MNIST = (784, 80, 80, 10)
LAMBDA = 1e-2


def softmax(z):
    e = np.exp(z - np.max(z, axis=1, keepdims=True))
    return e / np.sum(e, axis=1, keepdims=True)


def mnist_forward(params, X, Y):
    L = _layers(params)
    A = X
    for layer in range(1, L):
        A = np.maximum(0, A @ params[f"W{layer}"].T + params[f"b{layer}"])
    S = softmax(A @ params[f"W{L}"].T + params[f"b{L}"])
    m = X.shape[0]
    l2 = sum(np.sum(np.square(params[f"W{layer}"])) for layer in range(1, L + 1))
    return -np.sum(Y * np.log(S)) / m + LAMBDA / 2 * l2


def mnist_backward(params, X, Y, broken=None):
    L = _layers(params)
    m = X.shape[0]
    As, Zs = [X], [None]
    for layer in range(1, L + 1):
        Z = As[-1] @ params[f"W{layer}"].T + params[f"b{layer}"]
        if layer == L:
            e = numpy.exp(Z - Z.max(axis=1, keepdims=True))
            A = e / e.sum(axis=1, keepdims=True)
        else:
            A = numpy.maximum(0, Z)
        As.append(A)
        Zs.append(Z)
    grads = {}
    dZ = As[L] - Y  # softmax with cross-entropy on one-hot Y
    for layer in range(L, 0, -1):
        W = params[f"W{layer}"]
        if broken == "transposed" and layer == 2:
            grads["W2"] = As[1].T @ dZ / m + LAMBDA * W  # (80, 80): the shape still matches
        else:
            grads[f"W{layer}"] = dZ.T @ As[layer - 1] / m + LAMBDA * W
        grads[f"b{layer}"] = dZ.sum(axis=0) / m
        if layer > 1:
            dZ = (dZ @ W) * (Zs[layer - 1] > 0)
    if broken == "no L2":
        grads["W1"] = grads["W1"] - LAMBDA * params["W1"]
    return grads


# 784-16-10: samples in columns, ReLU then sigmoid, MSE on one-hot labels (mean over all).
SMALL_MNIST = (784, 16, 10)


def small_forward(params, X, Y):
    A1 = np.maximum(0, np.dot(params["W1"], X) + params["b1"])
    A2 = sigmoid(np.dot(params["W2"], A1) + params["b2"])
    return np.mean(np.square(A2 - Y))


def small_backward(params, X, Y, broken=None):
    Z1 = params["W1"] @ X + params["b1"]
    A1 = numpy.maximum(0, Z1)
    A2 = _sigmoid(params["W2"] @ A1 + params["b2"])
    m = X.shape[1]
    dA2 = 2 * (A2 - Y) / A2.size
    dZ2 = dA2 * (A2 if broken == "wrong activation derivative" else A2 * (1 - A2))
    grads = {"W2": dZ2 @ A1.T, "b2": dZ2.sum(axis=1, keepdims=True)}
    dZ1 = (params["W2"].T @ dZ2) * (Z1 > 0)
    grads["W1"] = dZ1 @ X.T
    grads["b1"] = dZ1.sum(axis=1, keepdims=True)
    if broken == "db as a row":
        grads["b1"] = grads["b1"].ravel()
    assert m == X.shape[1]
    return grads


# 2-3-1 XOR: samples in columns, sigmoid hidden and output, binary cross-entropy.
def xor_forward(params, X, Y):
    A1 = sigmoid(np.dot(params["W1"], X) + params["b1"])
    A2 = sigmoid(np.dot(params["W2"], A1) + params["b2"])
    return -np.mean(Y * np.log(A2) + (1 - Y) * np.log(1 - A2))


def xor_backward(params, X, Y, broken=None):
    m = X.shape[1]
    A1 = _sigmoid(params["W1"] @ X + params["b1"])
    A2 = _sigmoid(params["W2"] @ A1 + params["b2"])
    dZ2 = A2 - Y
    dZ1 = (params["W2"].T @ dZ2) * A1 * (1 - A1)
    grads = {
        "W1": dZ1 @ X.T / m,
        "b1": dZ1.sum(axis=1, keepdims=True) / m,
        "W2": dZ2 @ A1.T / m,
        "b2": dZ2.sum(axis=1, keepdims=True) / m,
    }
    if broken == "missing key":
        del grads["b2"]
    if broken == "extra key":
        grads["W3"] = grads["W2"]
    return grads


XOR_X = numpy.array([[0.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.0, 1.0]])
XOR_Y = numpy.array([[0.0, 1.0, 1.0, 0.0]])


def _params(sizes, layout="columns", seed=0):
    return tms._layer_params(sizes, layout, "he", 0.1, seed)


def _inputs(n_features, n, layout="columns", seed=0):
    rng = numpy.random.default_rng(seed + 100)
    x = rng.uniform(-1, 1, (n_features, n))
    return x if layout == "columns" else x.T.copy()


def _one_hot(n_classes, n, layout="columns", seed=0):
    labels = numpy.random.default_rng(seed + 200).integers(0, n_classes, n)
    y = numpy.eye(n_classes)[labels]
    return y.T.copy() if layout == "columns" else y


# ---------------------------------------------------------------- each network passes


def test_xor_passes_and_reports():
    report = check_backprop(xor_forward, xor_backward, _params((2, 3, 1)), XOR_X, XOR_Y)
    assert isinstance(report, BackpropReport)
    assert set(report.params) == {"W1", "b1", "W2", "b2"}
    assert report.params["W1"].checked == 6
    assert report.max_error < 1e-6
    assert "W1" in str(report)


def test_xor_property():
    check_backprop_property(
        xor_forward,
        xor_backward,
        tms.network_params((2, 3, 1), init="normal", scale=1.0),
        (tms.arrays((2, 4), away_from=(0.0,)), tms.binary_labels(4)),
        max_examples=10,
    )


def test_moons_property():
    check_backprop_property(
        moons_forward,
        moons_backward,
        tms.network_params(MOONS),
        (tms.arrays((2, 4), low=-1.5, high=2.5), tms.binary_labels(4)),
        max_examples=4,
        max_elements=15,
    )


def test_moons_every_element_of_a_narrow_net():
    sizes = (2, 5, 6, 6, 5, 1)
    Y = numpy.array([[0.0, 1.0, 1.0]])
    report = check_backprop(moons_forward, moons_backward, _params(sizes), _inputs(2, 3), Y)
    assert report.params["W3"].checked == 36


def test_mnist_property_small_widths():
    check_backprop_property(
        mnist_forward,
        mnist_backward,
        tms.network_params((12, 7, 7, 4), layout="rows"),
        (tms.arrays((3, 12), low=0.0, high=1.0), tms.one_hot_labels(4, 3, layout="rows")),
        max_examples=5,
    )


def test_mnist_real_sizes_on_sampled_elements_and_directions():
    params = _params(MNIST, layout="rows")
    X = numpy.random.default_rng(5).uniform(0, 1, (4, 784))
    report = check_backprop(
        mnist_forward,
        mnist_backward,
        params,
        X,
        _one_hot(10, 4, "rows"),
        max_elements=8,
        directions=2,
    )
    assert report.params["W1"].checked == 8
    assert report.params["b3"].checked == 8
    assert len(report.directions) == 2 and "random direction 1" in str(report)


def test_small_mnist_property():
    check_backprop_property(
        small_forward,
        small_backward,
        tms.network_params((20, 6, 10), init="normal", scale=0.3),
        (tms.arrays((20, 3), low=0.0, high=1.0), tms.one_hot_labels(10, 3)),
        max_examples=5,
    )


def test_small_mnist_real_sizes_sampled():
    report = check_backprop(
        small_forward,
        small_backward,
        _params(SMALL_MNIST),
        _inputs(784, 3),
        _one_hot(10, 3),
        max_elements=10,
        directions=1,
    )
    assert report.params["W1"].shape == (16, 784)


def test_gradients_keyed_with_a_d_prefix():
    # as many tutorials return them: {"dW1": ..., "db1": ..., "dA1": ...}
    def backward(p, X, Y, broken=None):
        grads = {f"d{k}": v for k, v in xor_backward(p, X, Y).items()}
        grads["dA1"] = numpy.zeros((3, 4))  # an intermediate gradient, left out
        if broken:
            del grads["db2"]
        return grads

    report = check_backprop(xor_forward, backward, _params((2, 3, 1)), XOR_X, XOR_Y)
    assert list(report.params) == ["W1", "b1", "W2", "b2"]
    message = _failure(
        xor_forward, lambda p, X, Y: backward(p, X, Y, True), _params((2, 3, 1)), XOR_X, XOR_Y
    )
    assert "no gradient for 'b2'" in message


def test_list_params_and_a_plain_function():
    def forward(p, x):
        return np.sum(np.tanh(np.dot(x, p[0])) * p[1])

    def backward(p, x):
        t = numpy.tanh(x @ p[0])
        return [x.T @ ((1 - t**2) * p[1]), t.sum(axis=0)]

    x = _inputs(3, 4, "rows")
    rng = numpy.random.default_rng(1)
    report = check_backprop(forward, backward, (rng.normal(size=(3, 2)), rng.normal(size=2)), x)
    assert set(report.params) == {0, 1}


# ---------------------------------------------------------------- broken backward passes


def _failure(forward, backward, params, *args, **options) -> str:
    with pytest.raises(AssertionError) as info:
        check_backprop(forward, backward, params, *args, **options)
    return str(info.value)


def test_missing_one_over_m_names_every_weight():
    message = _failure(
        moons_forward,
        lambda p, X, Y: moons_backward(p, X, Y, broken="missing 1/m"),
        _params((2, 4, 4, 1)),
        _inputs(2, 5),
        numpy.array([[0.0, 1.0, 1.0, 0.0, 1.0]]),
    )
    for name in ("'W1'", "'W2'", "'W3'"):
        assert f"gradient of {name} is wrong" in message
    assert "'b1'" not in message
    assert "disagrees with both autodiff and finite differences" in message
    assert "hand " in message and "autodiff " in message and "finite difference " in message


def test_wrong_sign_names_the_bias():
    message = _failure(
        moons_forward,
        lambda p, X, Y: moons_backward(p, X, Y, broken="wrong sign"),
        _params((2, 4, 4, 1)),
        _inputs(2, 5),
        numpy.array([[0.0, 1.0, 1.0, 0.0, 1.0]]),
    )
    assert message.startswith("check_backprop: gradient of 'b2' is wrong at index (")
    assert message.count("\n") == 0  # only b2


def test_wrong_activation_derivative():
    message = _failure(
        small_forward,
        lambda p, X, Y: small_backward(p, X, Y, broken="wrong activation derivative"),
        _params((6, 4, 3)),
        _inputs(6, 3),
        _one_hot(3, 3),
    )
    assert "gradient of 'W2' is wrong" in message
    assert "gradient of 'W1' is wrong" in message


def test_transposed_product_of_a_square_weight():
    message = _failure(
        mnist_forward,
        lambda p, X, Y: mnist_backward(p, X, Y, broken="transposed"),
        _params((8, 5, 5, 3), layout="rows"),
        _inputs(8, 4, "rows"),
        _one_hot(3, 4, "rows"),
    )
    assert message.startswith("check_backprop: gradient of 'W2' is wrong at index (")


def test_transposed_product_of_a_rectangular_weight_is_a_shape_mismatch():
    def backward(p, X, Y):
        grads = xor_backward(p, X, Y)
        grads["W1"] = grads["W1"].T
        return grads

    message = _failure(xor_forward, backward, _params((2, 3, 1)), XOR_X, XOR_Y)
    assert "'W1' has shape (2, 3), but the parameter has shape (3, 2) (transposed?)" in message


def test_missing_l2_term_is_found_on_sampled_elements():
    message = _failure(
        mnist_forward,
        lambda p, X, Y: mnist_backward(p, X, Y, broken="no L2"),
        _params((30, 6, 6, 3), layout="rows"),
        _inputs(30, 3, "rows"),
        _one_hot(3, 3, "rows"),
        max_elements=3,
    )
    assert "gradient of 'W1' is wrong" in message


def test_bias_of_the_wrong_shape():
    message = _failure(
        small_forward,
        lambda p, X, Y: small_backward(p, X, Y, broken="db as a row"),
        _params((6, 4, 3)),
        _inputs(6, 3),
        _one_hot(3, 3),
    )
    assert "'b1' has shape (4,), but the parameter has shape (4, 1)" in message


@pytest.mark.parametrize(
    "broken, words",
    [("missing key", "no gradient for 'b2'"), ("extra key", "gradients for unknown keys 'W3'")],
)
def test_missing_and_extra_keys(broken, words):
    message = _failure(
        xor_forward,
        lambda p, X, Y: xor_backward(p, X, Y, broken=broken),
        _params((2, 3, 1)),
        XOR_X,
        XOR_Y,
    )
    assert words in message


def test_wrong_number_of_gradients_in_a_list():
    message = _failure(
        lambda p, x: np.sum(p[0] * x),
        lambda p, x: [x],
        [numpy.ones(3), numpy.ones(3)],
        numpy.ones(3),
    )
    assert "1 gradients for 2 parameters" in message


def test_a_kink_under_the_finite_differences_is_told_apart():
    # relu just right of its kink, closer than eps: hand and autodiff say 1, the central
    # difference (1.3e-6 - 0) / 2e-6 says 0.65
    def forward(p):
        return np.sum(np.maximum(0, p["w"]))

    def backward(p):
        return {"w": (p["w"] > 0).astype(float)}

    message = _failure(forward, backward, {"w": numpy.array([3e-7, 1.0])})
    assert "index (0,)" in message
    assert "agrees with autodiff but not with finite differences" in message


def test_a_forward_with_plain_numpy_gets_a_hint():
    with pytest.raises(TypeError, match="tinygrad_mlp.numpy"):
        check_backprop(
            lambda p: numpy.exp(p["w"]).sum(), lambda p: {"w": p["w"]}, {"w": numpy.ones(2)}
        )


def test_the_property_check_reports_a_broken_backward():
    with pytest.raises(AssertionError, match=r"gradient of '[Wb][12]' is wrong"):
        check_backprop_property(
            small_forward,
            lambda p, X, Y: small_backward(p, X, Y, broken="wrong activation derivative"),
            tms.network_params((5, 3, 2)),
            (tms.arrays((5, 2), low=0.1, high=1.0), tms.one_hot_labels(2, 2)),
            max_examples=3,
        )


# ---------------------------------------------------------------- the strategies themselves


@settings(max_examples=20)
@given(tms.arrays(away_from=(0.0, 1.0), margin=0.2))
def test_arrays_keep_away_from_kinks(x):
    assert x.dtype == numpy.float64
    assert numpy.all(numpy.abs(x) >= 0.2 - 1e-12)
    assert numpy.all(numpy.abs(x - 1.0) >= 0.2 - 1e-12)


@settings(max_examples=20)
@given(tms.shape_pairs())
def test_shape_pairs_broadcast(pair):
    a, b = pair
    assert numpy.broadcast_shapes(a, b) == a


@settings(max_examples=10)
@given(tms.arrays((3,), elements=tms.unit_interval()), tms.arrays((2,), elements=tms.positive()))
def test_domains(p, x):
    assert numpy.all((p >= 0.05) & (p <= 0.95)) and numpy.all(x >= 0.2)


@settings(max_examples=5)
@given(tms.network_params((3, 4, 2), layout="rows"))
def test_network_params_shapes(params):
    assert {k: v.shape for k, v in params.items()} == {
        "W1": (4, 3),
        "b1": (4,),
        "W2": (2, 4),
        "b2": (2,),
    }
    assert numpy.all(numpy.abs(params["b1"]) >= 0.05)


# ---------------------------------------------------------------- the example script

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "check_backprop.py"


def _run_example(*args):
    return subprocess.run(
        [sys.executable, str(EXAMPLE), *args], capture_output=True, text=True, timeout=120
    )


def test_example_checks_then_trains():
    done = _run_example("--steps", "3000")
    assert done.returncode == 0, done.stderr
    assert "backprop checked" in done.stdout and "'W1'" in done.stdout
    assert "1 xor 0 = 0.9" in done.stdout


@pytest.mark.parametrize(
    "mistake, words",
    [
        ("derivative", "gradient of 'W1' is wrong"),
        ("missing-m", "gradient of 'W2' is wrong"),
        ("sign", "gradient of 'b1' is wrong"),
        ("transposed", "(transposed?)"),
    ],
)
def test_example_reports_a_broken_backward(mistake, words):
    done = _run_example("--broken", mistake)
    assert done.returncode == 1
    assert words in done.stderr


def test_strategies_without_hypothesis_say_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "hypothesis", None)
    with pytest.raises(ImportError, match="pip install hypothesis"):
        tms.floats()
