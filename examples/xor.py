"""Learn XOR with a 2-8-1 network: tanh hidden layer, sigmoid output, full-batch gradient descent.

python examples/xor.py                    # binary cross-entropy, SGD lr 1.0, 1000 steps
python examples/xor.py --loss mse         # mean squared error instead
"""

from __future__ import annotations

import argparse
import time

import _common  # before numpy: it sets the number of BLAS threads

import tinygrad_mlp as tm
from tinygrad_mlp import functional as F
from tinygrad_mlp import nn


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(
        description=__doc__, epilog=_common.THREADS_NOTE, formatter_class=_common.HelpFormatter
    )
    p.add_argument("--hidden", type=int, default=8, help="hidden units")
    p.add_argument(
        "--loss",
        default="bce",
        choices=("bce", "mse"),
        help="binary cross-entropy or squared error",
    )
    p.add_argument("--optimizer", default="sgd", choices=("sgd", "adam"), help="the update rule")
    p.add_argument("--lr", type=float, default=1.0, help="learning rate")
    p.add_argument("--steps", type=int, default=1000, help="full-batch updates")
    p.add_argument("--seed", type=int, default=0, help="seeds the initial weights")
    p.add_argument("--metrics", metavar="PATH", help="write the results as JSON")
    _common.add_threads_argument(p)
    args = p.parse_args(argv)
    if args.hidden < 1 or args.steps < 1 or args.lr <= 0:
        p.error("--hidden and --steps must be at least 1 and --lr positive")
    return args


def main(argv: list[str] | None = None) -> dict:
    """Train, print the four predictions, and return the metrics."""
    args = parse_args(argv)
    tm.manual_seed(args.seed)
    x, y = tm.make_xor()
    model = nn.Sequential(nn.Linear(2, args.hidden), nn.Tanh(), nn.Linear(args.hidden, 1))
    params = model.parameters()
    if args.optimizer == "sgd":
        optimizer = tm.optim.SGD(params, lr=args.lr)
    else:
        optimizer = tm.optim.Adam(params, lr=args.lr)
    inputs = tm.Tensor(x)

    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        prob = model(inputs).sigmoid()
        loss = F.binary_cross_entropy(prob, y) if args.loss == "bce" else F.mse_loss(prob, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step == 1 or step % (args.steps // 4 or 1) == 0:
            print(f"step {step:5d}  loss {loss.item():.5f}")
    seconds = time.perf_counter() - start

    with tm.no_grad():
        prob = model(inputs).sigmoid()
        loss = F.binary_cross_entropy(prob, y) if args.loss == "bce" else F.mse_loss(prob, y)
    p = prob.numpy()[:, 0]
    for (a, b), target, out in zip(x.astype(int), y[:, 0].astype(int), p, strict=True):
        print(f"{a} xor {b} = {target}   predicted {out:.4f} -> {int(out > 0.5)}")
    accuracy = float(((p > 0.5) == (y[:, 0] > 0.5)).mean())
    print(f"accuracy {accuracy:.0%}, loss {loss.item():.5f}, {args.steps} steps in {seconds:.2f} s")
    metrics = {
        "accuracy": accuracy,
        "loss": loss.item(),
        "predictions": p.tolist(),
        "steps": args.steps,
        "train_seconds": seconds,
        "loss_function": args.loss,
        "seed": args.seed,
    }
    _common.write_metrics(args.metrics, metrics)
    return metrics


if __name__ == "__main__":
    main()
