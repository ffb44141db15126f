"""The MNIST epoch: an MLP 784-128-128-10 (ReLU, softmax cross-entropy, plain SGD lr 0.1,
batch 128) over 60,000 float32 rows, by numpy by hand, the GEMM floor (the step's 8 matrix
products alone), tinygrad_mlp (``nn.Sequential`` and a user's own ``nn.Module``, eager and
compiled) and PyTorch eager; numpy by hand and tinygrad_mlp take turns every tenth of an epoch.
Run through ``bench.py --only mnist``."""

from __future__ import annotations

import argparse
import gc
import sys
import time
from typing import Any

import numpy as np
from _timing import (
    BATCH,
    FINAL_ATOL,
    FINAL_RTOL,
    GEMM,
    NUMPY,
    SEED,
    TIGHT_ATOL,
    TIGHT_RTOL,
    TINY,
    TINY_COMPILED,
    TINY_MODULE,
    TINY_MODULE_COMPILED,
    TORCH,
    Report,
    add_rows,
    check_losses,
    host,
    init_weights,
    tiny_assign,
    tiny_params,
    torch_assign,
    torch_mlp,
    training_step,
    warm_up,
)

MNIST_SIZES = (784, 128, 128, 10)
MNIST_ROWS = 60_000
MNIST_LR = 0.1
EPOCH_CHUNKS = 10  # pieces an MNIST epoch is timed in (see interleaved_epochs)


def synthetic_mnist(rows: int, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-shaped data: float32 pixels in [0, 1] and int64 labels a linear rule can learn."""
    rng = np.random.default_rng(seed)
    x = rng.random((rows, 784), dtype=np.float32)
    rule = rng.standard_normal((784, 10)).astype(np.float32)
    y = np.argmax((x - 0.5) @ rule, axis=1).astype(np.int64)
    return x, y


def real_mnist(root: str, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``rows`` MNIST training rows via tinygrad_mlp.datasets.mnist, scaled to [0, 1]."""
    try:
        from tinygrad_mlp import datasets

        x, y = datasets.mnist(root, download=False)[:2]
    except Exception as e:
        sys.exit(f"--data-dir {root}: could not load MNIST with tinygrad_mlp.datasets.mnist: {e}")
    x = np.asarray(x[:rows]).reshape(min(rows, len(x)), -1)
    scale = np.float32(255.0 if x.dtype == np.uint8 or float(x.max()) > 1.0 else 1.0)
    x = np.ascontiguousarray(x, dtype=np.float32) / scale
    y = np.asarray(y[:rows]).astype(np.int64)
    return x, y


def eval_mnist_loss(params: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> float:
    """Mean cross-entropy of the MLP on (x, y), in float64, for comparing contenders."""
    w1, b1, w2, b2, w3, b3 = (np.asarray(p, dtype=np.float64) for p in params)
    a = np.maximum(x @ w1.T + b1, 0)
    a = np.maximum(a @ w2.T + b2, 0)
    z = a @ w3.T + b3
    z -= z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(y)), y].mean())


# --------------------------------------------------------------------------------------------
# Contenders. Each has: name, reset(init) (untimed), epoch(rows) -> last loss, sync(),
# params() -> numpy arrays.
# --------------------------------------------------------------------------------------------


class NumpyMnist:
    """The MLP written by hand with numpy (or CuPy) arrays, float32 throughout."""

    name = NUMPY

    def __init__(self, xp: Any, x: Any, y: Any, lr: float = MNIST_LR, batch: int = BATCH):
        self.xp, self.x, self.y, self.lr, self.batch = xp, x, y, lr, batch
        self.weights: list[Any] = []

    def reset(self, init: list[np.ndarray]) -> None:
        """Start again from copies of ``init``."""
        self.weights = [self.xp.asarray(p).copy() for p in init]

    def epoch(self, rows: int, start: int = 0) -> float:
        """SGD over rows ``start`` to ``rows`` (one epoch from 0); returns the last batch loss."""
        xp, x, y, lr, bs = self.xp, self.x, self.y, self.lr, self.batch
        w1, b1, w2, b2, w3, b3 = self.weights
        full_rows = xp.arange(bs)
        loss = None
        for i in range(start, rows, bs):
            xb = x[i : i + bs]
            yb = y[i : i + bs]
            m = xb.shape[0]
            idx = full_rows if m == bs else xp.arange(m)
            # forward
            z1 = xb @ w1.T
            z1 += b1
            a1 = xp.maximum(z1, 0, out=z1)
            z2 = a1 @ w2.T
            z2 += b2
            a2 = xp.maximum(z2, 0, out=z2)
            z3 = a2 @ w3.T
            z3 += b3
            # stable softmax and the mean cross-entropy
            z3 -= z3.max(axis=1, keepdims=True)
            p = xp.exp(z3)
            s = p.sum(axis=1, keepdims=True)
            loss = (xp.log(s[:, 0]) - z3[idx, yb]).mean()
            # backward: dZ3 = (P - onehot) / m
            p /= s
            p[idx, yb] -= 1
            p /= m
            dw3 = p.T @ a2
            db3 = p.sum(axis=0)
            da2 = p @ w3
            da2 *= a2 > 0
            dw2 = da2.T @ a1
            db2 = da2.sum(axis=0)
            da1 = da2 @ w2
            da1 *= a1 > 0
            dw1 = da1.T @ xb
            db1 = da1.sum(axis=0)
            # SGD
            w3 -= lr * dw3
            b3 -= lr * db3
            w2 -= lr * dw2
            b2 -= lr * db2
            w1 -= lr * dw1
            b1 -= lr * db1
        return float(loss)

    def sync(self) -> None:
        """Wait for the GPU when running on CuPy."""
        if self.xp is not np:
            self.xp.cuda.Device().synchronize()

    def params(self) -> list[np.ndarray]:
        """The current weights as numpy arrays."""
        return [host(p) for p in self.weights]


def tiny_mnist_module(tm: Any) -> Any:
    """The MNIST MLP as a user writes it in their own nn.Module (nothing fuses it)."""
    nn = tm.nn

    class MnistNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1 = nn.Linear(784, 128)
            self.fc2 = nn.Linear(128, 128)
            self.fc3 = nn.Linear(128, 10)

        def forward(self, x: Any) -> Any:
            return self.fc3(self.fc2(self.fc1(x).relu()).relu())

    return MnistNet()


class TinyMnist:
    """The MLP through tinygrad_mlp's public, PyTorch-like API: ``nn.Sequential`` or a user's
    own ``nn.Module``, its training step eager or under ``tm.compile``."""

    name = TINY

    def __init__(
        self,
        tm: Any,
        x: Any,
        y: Any,
        device: str,
        cupy: Any = None,
        module: bool = False,
        compiled: bool = False,
    ):
        self.tm, self.x, self.y, self.device, self.cupy = tm, x, y, device, cupy
        self.module, self.compiled = module, compiled
        self.name = {
            (False, False): TINY,
            (False, True): TINY_COMPILED,
            (True, False): TINY_MODULE,
            (True, True): TINY_MODULE_COMPILED,
        }[(module, compiled)]
        self.model: Any = None
        self.opt: Any = None
        self.step: Any = None

    def reset(self, init: list[np.ndarray]) -> None:
        """Build the model afresh and load ``init`` into it (and compile a new step)."""
        nn = self.tm.nn
        if self.module:
            model = tiny_mnist_module(self.tm)
        else:
            model = nn.Sequential(
                nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10)
            )
        if self.device != "cpu":
            model = model.to(self.device)
        tiny_assign(model, init)
        self.model = model
        self.opt = opt = self.tm.optim.SGD(model.parameters(), lr=MNIST_LR)
        step = training_step(model, opt, self.tm.functional.cross_entropy)
        # NOTE: a new compiled step each repetition: its two traced calls are timed too
        self.step = self.tm.compile(step) if self.compiled else None

    def epoch(self, rows: int, start: int = 0) -> float:
        """SGD over rows ``start`` to ``rows`` (one epoch from 0); returns the last batch loss."""
        tm, model, opt, x, y = self.tm, self.model, self.opt, self.x, self.y
        cross_entropy = tm.functional.cross_entropy
        loss = None
        if self.step is not None:
            step, tensor, device = self.step, tm.Tensor, self.device
            if device == "cpu":
                for i in range(start, rows, BATCH):
                    loss = step(tensor(x[i : i + BATCH]), y[i : i + BATCH])
            else:
                for i in range(start, rows, BATCH):
                    loss = step(tensor(x[i : i + BATCH], device=device), y[i : i + BATCH])
        elif self.device == "cpu":
            for i in range(start, rows, BATCH):
                xb = tm.Tensor(x[i : i + BATCH])
                loss = cross_entropy(model(xb), y[i : i + BATCH])
                opt.zero_grad()
                loss.backward()
                opt.step()
        else:
            for i in range(start, rows, BATCH):
                xb = tm.Tensor(x[i : i + BATCH], device=self.device)
                loss = cross_entropy(model(xb), y[i : i + BATCH])
                opt.zero_grad()
                loss.backward()
                opt.step()
        return float(loss.item())

    def sync(self) -> None:
        """Wait for the GPU when running on CuPy."""
        if self.cupy is not None:
            self.cupy.cuda.Device().synchronize()

    def params(self) -> list[np.ndarray]:
        """The current weights as numpy arrays."""
        return tiny_params(self.model)


class GemmFloor:
    """The 8 matrix products of each MNIST step alone, into preallocated outputs: forward
    x W1^T, a1 W2^T, a2 W3^T; backward dZ3^T a2, dZ3 W3, dZ2^T a1, dZ2 W2, dZ1^T x."""

    name = GEMM

    def __init__(self, xp: Any, x: Any, y: Any, batch: int = BATCH):
        self.xp, self.x, self.batch = xp, x, batch
        self.weights: list[Any] = []
        self.buffers: dict[int, list[Any]] = {}

    def reset(self, init: list[np.ndarray]) -> None:
        """Take copies of ``init`` (the products' operands; never updated)."""
        self.weights = [self.xp.asarray(p).copy() for p in init]
        self.buffers = {}

    def _buffers(self, m: int) -> list[Any]:
        out = self.buffers.get(m)
        if out is None:
            xp, (w1, _, w2, _, w3, _) = self.xp, self.weights
            h1, h2, c, d = w1.shape[0], w2.shape[0], w3.shape[0], w1.shape[1]
            shapes = [(m, h1), (m, h2), (m, c), (c, h2), (m, h2), (h2, h1), (m, h1), (h1, d)]
            out = self.buffers[m] = [xp.zeros(s, dtype=xp.float32) for s in shapes]
        return out

    def epoch(self, rows: int, start: int = 0) -> float:
        """The products of every step over rows ``start`` to ``rows``; returns 0."""
        xp, x = self.xp, self.x
        w1, _, w2, _, w3, _ = self.weights
        matmul = xp.matmul
        for i in range(start, rows, self.batch):
            xb = x[i : i + self.batch]
            z1, z2, z3, dw3, da2, dw2, da1, dw1 = self._buffers(xb.shape[0])
            matmul(xb, w1.T, out=z1)
            matmul(z1, w2.T, out=z2)
            matmul(z2, w3.T, out=z3)
            matmul(z3.T, z2, out=dw3)
            matmul(z3, w3, out=da2)
            matmul(da2.T, z1, out=dw2)
            matmul(da2, w2, out=da1)
            matmul(da1.T, xb, out=dw1)
        return 0.0

    def sync(self) -> None:
        """Wait for the GPU when running on CuPy."""
        if self.xp is not np:
            self.xp.cuda.Device().synchronize()

    def params(self) -> list[np.ndarray]:
        """The weights (unchanged)."""
        return [host(p) for p in self.weights]


class TorchMnist:
    """The MLP in PyTorch eager mode (torch.nn, F.cross_entropy, torch.optim.SGD)."""

    name = TORCH

    def __init__(self, torch: Any, x: np.ndarray, y: np.ndarray, device: str):
        self.torch, self.device = torch, device
        if device == "cpu":
            self.x, self.y = x, y
        else:
            self.x = torch.from_numpy(x).to(device)
            self.y = torch.from_numpy(y).to(device)
        self.model: Any = None
        self.opt: Any = None

    def reset(self, init: list[np.ndarray]) -> None:
        """Build the model afresh and load ``init`` into it."""
        model = torch_mlp(self.torch, MNIST_SIZES, "relu", None)
        torch_assign(self.torch, model, init)
        self.model = model.to(self.device)
        self.opt = self.torch.optim.SGD(self.model.parameters(), lr=MNIST_LR)

    def epoch(self, rows: int, start: int = 0) -> float:
        """SGD over rows ``start`` to ``rows`` (one epoch from 0); returns the last batch loss."""
        torch, model, opt, x, y = self.torch, self.model, self.opt, self.x, self.y
        cross_entropy = torch.nn.functional.cross_entropy
        loss = None
        if self.device == "cpu":
            from_numpy = torch.from_numpy
            for i in range(start, rows, BATCH):
                loss = cross_entropy(
                    model(from_numpy(x[i : i + BATCH])), from_numpy(y[i : i + BATCH])
                )
                opt.zero_grad()
                loss.backward()
                opt.step()
        else:
            for i in range(start, rows, BATCH):
                loss = cross_entropy(model(x[i : i + BATCH]), y[i : i + BATCH])
                opt.zero_grad()
                loss.backward()
                opt.step()
        return float(loss.item())

    def sync(self) -> None:
        """Wait for the GPU when running on CUDA."""
        if self.device != "cpu":
            self.torch.cuda.synchronize()

    def params(self) -> list[np.ndarray]:
        """The current weights as numpy arrays."""
        return [host(p) for p in self.model.parameters()]


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------


def interleaved_epochs(
    contenders: list[Any], init: list[np.ndarray], rows: int, repeats: int, last: dict[str, float]
) -> dict[str, list[float]]:
    """Time one epoch per contender and repetition.

    numpy by hand, the GEMM floor and the tinygrad_mlp variants run their epochs in EPOCH_CHUNKS
    pieces and take turns piece by piece (in an order that rotates): a piece lasts a fraction of
    a second, so a slow stretch of a shared machine falls on all of them alike. Their time for
    the repetition is the sum of their pieces. PyTorch runs its epoch in one go, before the
    pieces in even repetitions and after them in odd ones: its OpenMP threads and numpy's BLAS
    threads each keep spinning for a while after their work, so alternating them every few
    batches would make them fight for the cores (measured here: PyTorch 2.7 times slower).
    """
    times: dict[str, list[float]] = {c.name: [] for c in contenders}
    chunked = [c for c in contenders if c.name != TORCH]  # the contenders on numpy's BLAS
    whole = [c for c in contenders if c.name == TORCH]
    batches = -(-rows // BATCH)
    cuts = [min(rows, BATCH * (batches * k // EPOCH_CHUNKS)) for k in range(EPOCH_CHUNKS + 1)]
    pieces = [(a, b) for a, b in zip(cuts, cuts[1:], strict=False) if b > a]

    def run(c: Any, a: int, b: int) -> float:
        c.sync()
        start = time.perf_counter()
        last[c.name] = c.epoch(b, start=a)
        c.sync()
        return time.perf_counter() - start

    for r in range(repeats):
        for c in contenders:
            c.reset(init)
        gc.collect()
        total = dict.fromkeys(times, 0.0)
        if r % 2 == 0:
            for c in whole:
                total[c.name] = run(c, 0, rows)
        for j, (a, b) in enumerate(pieces):
            turn = (r + j) % max(len(chunked), 1)
            for c in chunked[turn:] + chunked[:turn]:
                total[c.name] += run(c, a, b)
        if r % 2 == 1:
            for c in whole:
                total[c.name] = run(c, 0, rows)
        for name, t in total.items():
            times[name].append(t)
    return times


def bench_mnist(
    args: argparse.Namespace,
    report: Report,
    libs: dict[str, Any],
    data: tuple[np.ndarray, np.ndarray],
) -> None:
    """Time one MNIST-shaped epoch per contender, interleaved, and check their final losses."""
    x, y = data
    rows = len(x)
    init = init_weights(MNIST_SIZES, SEED)
    device, cupy = args.device, libs.get("cupy")
    contenders: list[Any] = []
    if device == "cpu":
        contenders.append(NumpyMnist(np, x, y))
    else:
        contenders.append(NumpyMnist(cupy, cupy.asarray(x), cupy.asarray(y)))
    if device == "cpu":
        contenders.append(GemmFloor(np, x, y))
    else:
        contenders.append(GemmFloor(cupy, cupy.asarray(x), cupy.asarray(y)))
    tm = libs["tm"]
    if tm is not None:
        for module, compiled in [(False, False), (True, False), (False, True), (True, True)]:
            if device == "cpu":
                c = TinyMnist(tm, x, y, "cpu", module=module, compiled=compiled)
            else:
                c = TinyMnist(tm, cupy.asarray(x), cupy.asarray(y), device, cupy, module, compiled)
            contenders.append(c)
    if libs["torch"] is not None:
        if device == "cpu" or libs["torch"].cuda.is_available():
            contenders.append(TorchMnist(libs["torch"], x, y, device))
        else:
            report.note("mnist: pytorch skipped, torch.cuda.is_available() is False")

    warm_rows = min(rows, 10 * BATCH)

    warm_loss: dict[str, float] = {}

    def warm(c: Any) -> None:
        c.reset(init)
        c.epoch(warm_rows)
        c.sync()
        warm_loss[c.name] = eval_mnist_loss(c.params(), x[:10_000], y[:10_000])

    contenders = warm_up(contenders, warm, report, "mnist")
    check_losses(
        report, f"mnist after {warm_rows // BATCH} batches", warm_loss, TIGHT_RTOL, TIGHT_ATOL
    )
    final: dict[str, float] = {}
    last: dict[str, float] = {}
    times = interleaved_epochs(contenders, init, rows, args.repeats, last)
    for c in contenders:
        final[c.name] = eval_mnist_loss(c.params(), x[:10_000], y[:10_000])
    bench = f"mnist epoch ({rows} rows, {device})"
    add_rows(report, bench, "s", 1.0, times, with_torch_ratio=True)
    for name in last:
        print(
            f"mnist: {name} last-batch loss {last[name]:.6f}, "
            f"loss on 10k rows after the epoch {final[name]:.6f}"
        )
    check_losses(report, "mnist after the epoch", final, FINAL_RTOL, FINAL_ATOL)
