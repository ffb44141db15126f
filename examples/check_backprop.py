"""Check a hand-written backward pass in one call: a 2-3-1 sigmoid XOR network, tutorial style.

python examples/check_backprop.py                  # the correct backward: checked, then trained
python examples/check_backprop.py --broken         # a wrong sigmoid derivative, reported
python examples/check_backprop.py --broken sign    # or: missing-m, sign, transposed
python examples/check_backprop.py --hypothesis     # also on 20 inputs that Hypothesis draws

The network below is written the way the numpy tutorials write it, with one change: it imports
``tinygrad_mlp.numpy as np``. On numpy arrays every ``np`` call is numpy's own, so training runs
as before; on Tensors the same forward pass records a graph, and ``tm.testing.check_backprop``
compares the hand gradients with autodiff and with finite differences.
"""

from __future__ import annotations

import argparse
import sys

import _common  # before numpy: it sets the number of BLAS threads

import tinygrad_mlp.numpy as np
from tinygrad_mlp.testing import check_backprop

BROKEN = ("derivative", "missing-m", "sign", "transposed")


# ---------------------------------------------------------------- the learner's network


def init_params(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "W1": rng.standard_normal((3, 2)),
        "b1": np.zeros((3, 1)),
        "W2": rng.standard_normal((1, 3)),
        "b2": np.zeros((1, 1)),
    }


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def forward(params, X, Y):
    """Binary cross-entropy of the 2-3-1 network, averaged over the m samples (columns of X)."""
    A1 = sigmoid(np.dot(params["W1"], X) + params["b1"])
    A2 = sigmoid(np.dot(params["W2"], A1) + params["b2"])
    return -np.mean(Y * np.log(A2) + (1 - Y) * np.log(1 - A2))


def backward(params, X, Y, broken: str | None = None):
    """The hand-derived gradients; ``broken`` plants one of the classic mistakes."""
    m = X.shape[1]
    A1 = sigmoid(np.dot(params["W1"], X) + params["b1"])
    A2 = sigmoid(np.dot(params["W2"], A1) + params["b2"])
    dZ2 = A2 - Y  # sigmoid output with binary cross-entropy
    dA1 = np.dot(params["W2"].T, dZ2)
    dZ1 = dA1 * (A1 if broken == "derivative" else A1 * (1 - A1))
    grads = {
        "W1": np.dot(dZ1, X.T) / m,
        "b1": np.sum(dZ1, axis=1, keepdims=True) / m,
        "W2": np.dot(dZ2, A1.T) / (1 if broken == "missing-m" else m),
        "b2": np.sum(dZ2, axis=1, keepdims=True) / m,
    }
    if broken == "sign":
        grads["b1"] = -grads["b1"]
    if broken == "transposed":
        grads["W1"] = np.dot(X, dZ1.T) / m
    return grads


# ---------------------------------------------------------------- checking, then training


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(
        description=__doc__, epilog=_common.THREADS_NOTE, formatter_class=_common.HelpFormatter
    )
    p.add_argument(
        "--broken",
        nargs="?",
        const="derivative",
        choices=BROKEN,
        help="plant a mistake in backward (default when given: derivative)",
    )
    p.add_argument("--hypothesis", action="store_true", help="also check on drawn inputs")
    p.add_argument("--steps", type=int, default=3000, help="gradient-descent steps after the check")
    p.add_argument("--lr", type=float, default=1.0, help="gradient-descent learning rate")
    p.add_argument("--seed", type=int, default=0, help="seeds the initial weights")
    p.add_argument("--metrics", metavar="PATH", help="write the results as JSON")
    _common.add_threads_argument(p)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Check the backward pass; train with it when it is right. Returns the exit status."""
    args = parse_args(argv)
    X = np.array([[0.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.0, 1.0]])
    Y = np.array([[0.0, 1.0, 1.0, 0.0]])
    params = init_params(args.seed)

    def hand(p, X, Y):
        return backward(p, X, Y, broken=args.broken)

    metrics: dict = {"broken": args.broken, "seed": args.seed, "hypothesis": args.hypothesis}
    try:
        errors = check_backprop(forward, hand, params, X, Y)
        print(errors)
        metrics["max_error"] = errors.max_error  # over both references and every parameter
        if args.hypothesis:
            from tinygrad_mlp.testing import strategies as tms

            tms.check_backprop_property(
                forward,
                hand,
                tms.network_params((2, 3, 1), init="normal", scale=1.0),
                (tms.arrays((2, 4), low=-1.0, high=2.0), tms.binary_labels(4)),
                max_examples=20,
            )
            print("and on 20 drawn networks and inputs")
    except AssertionError as e:
        print(f"backward is wrong ({args.broken or 'unplanted'} mistake):\n{e}", file=sys.stderr)
        _common.write_metrics(args.metrics, {**metrics, "passed": False, "report": str(e)})
        return 1

    for _ in range(args.steps):
        grads = backward(params, X, Y)
        params = {k: v - args.lr * grads[k] for k, v in params.items()}
    A2 = sigmoid(
        np.dot(params["W2"], sigmoid(np.dot(params["W1"], X) + params["b1"])) + params["b2"]
    )
    for (a, b), p in zip(X.T, A2.ravel(), strict=True):
        print(f"{int(a)} xor {int(b)} = {p:.3f}")
    loss = float(forward(params, X, Y))
    print(f"loss after {args.steps} steps: {loss:.4f}")
    predictions = [float(p) for p in A2.ravel()]
    metrics.update(passed=True, steps=args.steps, loss=loss, predictions=predictions)
    _common.write_metrics(args.metrics, metrics)
    return 0


if __name__ == "__main__":
    sys.exit(main())
