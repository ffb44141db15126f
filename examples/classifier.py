"""NNClassifier, a scikit-learn style multi-layer perceptron, on XOR and on a small MNIST.

XOR: a 2-3-1 sigmoid network, trained on the four points until it solves them.
MNIST: a 784-50-10 sigmoid network with an L2 penalty, trained on only the first 500 training
images for 300 epochs and scored on the 10,000 test images (the classic tutorial's setting,
which reported 81.7-86.8%).

    python examples/classifier.py
    python examples/classifier.py --only mnist --l1 0.1 --l2 1 --train-size 1000
"""

from __future__ import annotations

import argparse
import time

import _common  # before numpy: it sets the number of BLAS threads
import numpy as np

import tinygrad_mlp as tm


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(
        description=__doc__, epilog=_common.THREADS_NOTE, formatter_class=_common.HelpFormatter
    )
    p.add_argument("--only", choices=("xor", "mnist"), help="run one of the two demos")
    p.add_argument(
        "--data-dir",
        default=_common.default_mnist_dir(),
        help="folder with the four MNIST .gz files (default: ../shared/datasets/mnist next to "
        "the repository when it exists, else the library's cache, downloading when missing)",
    )
    p.add_argument("--train-size", type=int, default=500, help="MNIST training images used")
    p.add_argument("--hidden", type=int, default=50, help="MNIST hidden units")
    p.add_argument("--epochs", type=int, default=300, help="MNIST epochs")
    p.add_argument("--batch-size", type=int, default=50, help="MNIST mini-batch size")
    p.add_argument("--lr", type=float, default=0.5, help="MNIST learning rate (plain SGD)")
    p.add_argument("--l1", type=float, default=0.0, help="MNIST L1 penalty")
    p.add_argument("--l2", type=float, default=1.0, help="MNIST L2 penalty")
    p.add_argument("--seed", type=int, default=0, help="seeds weights and shuffling")
    p.add_argument("--metrics", metavar="PATH", help="write the results as JSON")
    _common.add_threads_argument(p)
    args = p.parse_args(argv)
    if args.train_size < 10:
        p.error("--train-size must be at least 10")
    return args


def xor_demo(seed: int) -> dict:
    """Fit a 2-3-1 sigmoid network to the four XOR points."""
    x, y = tm.make_xor()
    labels = y[:, 0].astype(np.int64)
    start = time.perf_counter()
    clf = tm.NNClassifier(
        hidden=(3,), activation="sigmoid", epochs=500, batch_size=4, lr=5.0, seed=seed
    )
    clf.fit(x, labels)
    seconds = time.perf_counter() - start
    proba = clf.predict_proba(x)[:, 1]
    print(f"XOR with {clf}")
    for (a, b), target, p, predicted in zip(
        x.astype(int), labels, proba, clf.predict(x), strict=True
    ):
        print(f"  {a} xor {b} = {target}   P(1) = {p:.3f} -> {predicted}")
    accuracy = clf.score(x, labels)
    print(f"  accuracy {accuracy:.0%}, final loss {clf.loss_curve_[-1]:.4f}, {seconds:.2f} s")
    return {"xor_accuracy": accuracy, "xor_loss": clf.loss_curve_[-1], "xor_seconds": seconds}


def mnist_demo(args: argparse.Namespace) -> dict:
    """Fit a 784-50-10 sigmoid network to a few MNIST images; score on the test set."""
    x_train, y_train, x_test, y_test = _common.load_mnist(args.data_dir)
    x_train = x_train[: args.train_size].reshape(-1, 784).astype(np.float32) / 255
    y_train = y_train[: args.train_size]
    x_test = x_test.reshape(-1, 784).astype(np.float32) / 255
    clf = tm.NNClassifier(
        hidden=(args.hidden,),
        activation="sigmoid",
        l1=args.l1,
        l2=args.l2,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        verbose=True,
    )
    print(f"MNIST, {len(x_train)} training images, with {clf}")
    start = time.perf_counter()
    clf.fit(x_train, y_train)
    seconds = time.perf_counter() - start
    train_accuracy = clf.score(x_train, y_train)
    test_accuracy = clf.score(x_test, y_test)
    print(
        f"  train accuracy {train_accuracy:.2%}, test accuracy {test_accuracy:.2%} "
        f"on {len(x_test)} images, {seconds:.1f} s"
    )
    return {
        "mnist_train_accuracy": train_accuracy,
        "mnist_test_accuracy": test_accuracy,
        "mnist_train_images": len(x_train),
        "mnist_epochs": args.epochs,
        "mnist_seconds": seconds,
    }


def main(argv: list[str] | None = None) -> dict:
    """Run the demos; returns the metrics."""
    args = parse_args(argv)
    metrics: dict = {"seed": args.seed}
    if args.only in (None, "xor"):
        metrics.update(xor_demo(args.seed))
    if args.only in (None, "mnist"):
        metrics.update(mnist_demo(args))
    _common.write_metrics(args.metrics, metrics)
    return metrics


if __name__ == "__main__":
    main()
