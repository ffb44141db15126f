import tinygrad_mlp as torch  # replace this line by `import torch` and it runs on PyTorch

# A typical PyTorch MNIST script: a custom nn.Module, manual SGD under torch.no_grad().
#
# Only the first line differs from a script written for PyTorch. The weights start from a seeded
# numpy generator, so both libraries start from the same numbers and can be compared:
#
#     python examples/pytorch_mnist.py --steps 200
#
# isort: skip_file

import argparse
import gzip
import json
import math
import zlib
from pathlib import Path

import numpy as np

nn = torch.nn
F = torch.nn.functional

DATA = Path(__file__).resolve().parent / ".." / ".." / "shared" / "datasets" / "mnist"
FILES = [f"{split}-{kind}-idx{n}-ubyte.gz" for split in ("train", "t10k")
         for kind, n in (("images", 3), ("labels", 1))]  # fmt: skip


def read_idx(path: Path) -> np.ndarray:
    """An idx file (the MNIST format: big-endian sizes, then uint8 values) as an array."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def check_folder(folder: Path) -> None:
    """Stop with a message a command-line user can act on when the MNIST files are not there."""
    if not folder.is_dir():
        raise SystemExit(
            f"--data-dir {folder}: no such folder; pass --data-dir DIR, the folder holding the "
            f"four MNIST files ({', '.join(FILES)})"
        )
    missing = [name for name in FILES if not (folder / name).is_file()]
    if missing:
        raise SystemExit(
            f"--data-dir {folder} lacks {', '.join(missing)}; copy the four MNIST files there "
            "(this script never downloads)"
        )


def load(folder: Path, split: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    try:
        images = read_idx(folder / f"{split}-images-idx3-ubyte.gz")[:n]
        labels = read_idx(folder / f"{split}-labels-idx1-ubyte.gz")[:n]
    except (OSError, EOFError, ValueError, IndexError, zlib.error) as e:
        raise SystemExit(
            f"--data-dir {folder}: the {split} files are damaged or truncated ({e}); replace "
            "them with intact copies"
        ) from None
    x = ((images.astype(np.float32) / 255.0 - 0.1307) / 0.3081).reshape(-1, 1, 28, 28)
    return x, labels.astype(np.int64)


class Net(nn.Module):
    def __init__(self, hidden: int = 128):
        super().__init__()
        self.fc1 = nn.Linear(784, hidden)
        self.fc2 = nn.Linear(hidden, 10)

    def forward(self, x):
        x = x.view(-1, 784)
        x = F.relu(self.fc1(x))
        return self.fc2(x)


def initialise(model: Net, seed: int) -> None:
    """PyTorch's default U(-1/sqrt(fan_in), 1/sqrt(fan_in)), drawn by numpy."""
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for layer in (model.fc1, model.fc2):
            bound = 1.0 / math.sqrt(layer.in_features)
            for p in (layer.weight, layer.bias):
                values = rng.uniform(-bound, bound, tuple(p.shape)).astype(np.float32)
                p.copy_(torch.tensor(values))


def main() -> None:
    parser = argparse.ArgumentParser(
        description="MNIST with a PyTorch-style training loop: a 784-128-10 ReLU network, plain "
        "SGD on batches of 64, then the loss and accuracy on the test images. Runs the same under "
        "`import torch`: with one thread each (OMP_NUM_THREADS=1) the two print the same losses "
        "for the first 100 steps and, after --steps 1000, agree on 99.5 % or more of the test "
        "predictions.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--steps", type=int, default=500, help="SGD steps (batches)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the weights and the order")
    parser.add_argument("--lr", type=float, default=0.1, help="learning rate")
    parser.add_argument("--batch-size", type=int, default=64, help="images per step")
    parser.add_argument("--train", type=int, default=60000, help="training images used")
    parser.add_argument("--test", type=int, default=10000, help="test images used")
    parser.add_argument("--log-every", type=int, default=50, help="print the loss every N steps")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DATA,
        help="folder with the four MNIST .gz files (never downloads)",
    )
    parser.add_argument("--data", type=Path, dest="data_dir", help=argparse.SUPPRESS)  # old name
    parser.add_argument("--metrics", metavar="PATH", help="write the results as JSON")
    parser.add_argument(
        "--print-predictions", action="store_true", help="print every test prediction"
    )
    args = parser.parse_args()
    check_folder(args.data_dir)

    torch.manual_seed(args.seed)
    train_x, train_y = load(args.data_dir, "train", args.train)
    test_x, test_y = load(args.data_dir, "t10k", args.test)
    order = np.random.default_rng(args.seed).permutation(len(train_x))

    model = Net()
    initialise(model, args.seed)
    model.train()
    batches_per_epoch = len(train_x) // args.batch_size
    for step in range(args.steps):
        start = (step % batches_per_epoch) * args.batch_size
        rows = order[start : start + args.batch_size]
        x, y = torch.tensor(train_x[rows]), torch.tensor(train_y[rows])
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        model.zero_grad()
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                p -= args.lr * p.grad
        if step % args.log_every == 0 or step == args.steps - 1:
            acc = (logits.argmax(dim=1) == y).float().mean()
            print(f"step {step:5d} loss {loss:.6f} batch accuracy {acc:.4f}")

    model.eval()
    with torch.no_grad():
        x, y = torch.tensor(test_x), torch.tensor(test_y)
        logits = model(x)
        test_loss = F.nll_loss(F.log_softmax(logits, dim=1), y)
        pred = logits.argmax(dim=1)
        correct = (pred == y).sum().item()
        accuracy = (pred == y).float().mean()
    print(f"test loss {test_loss:.6f} ({test_loss.item():.4f})")
    print(f"test correct {correct} of {len(y)}")
    print(f"test accuracy {accuracy.item():.4f}")
    if args.print_predictions:
        print("predictions", " ".join(str(p) for p in pred.tolist()))
    if args.metrics:
        results = {
            "test_accuracy": accuracy.item(),
            "test_loss": test_loss.item(),
            "test_correct": correct,
            "final_loss": loss.item(),
            "steps": args.steps,
            "seed": args.seed,
        }
        Path(args.metrics).write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
        print(f"metrics written to {args.metrics}")


if __name__ == "__main__":
    main()
