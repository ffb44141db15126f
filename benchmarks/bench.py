"""Speed and memory benchmarks: tinygrad_mlp against numpy by hand and PyTorch eager.

Run from the repository root::

    python benchmarks/bench.py                 # everything on the CPU
    python benchmarks/bench.py --quick         # smoke test: few rows, 2 repeats
    python benchmarks/bench.py --only xor      # one benchmark
    python benchmarks/bench.py --device cuda   # MNIST epoch on the GPU (CuPy, torch CUDA)

Benchmarks:

* ``mnist``: one epoch of an MLP 784-128-128-10 (ReLU, softmax cross-entropy, plain SGD
  lr 0.1, batch 128) over 60,000 float32 rows.
* ``xor``: one training step of a 2-8-1 network (tanh, sigmoid, MSE, SGD lr 0.5) on 4 samples.
* ``memory``: tracemalloc peak of one MNIST epoch (numpy by hand and tinygrad_mlp), and what a
  compiled step allocates once its plan replays.
* ``cnn``: one epoch of examples/mnist_cnn.py's network over 2,048 MNIST images (640 with
  --quick), tinygrad_mlp against PyTorch eager, each in its own one-thread process
  (benchmarks/cnn_bench.py, which also runs alone).

Besides numpy by hand, tinygrad_mlp (``nn.Sequential``, whose Linear+activation runs fuse) and
PyTorch eager, the MNIST epoch runs: the same network as a user's own ``nn.Module``
(``self.fc1(x).relu()``, which nothing fuses), both tinygrad_mlp models with their training
step under ``tm.compile``, and the GEMM floor: only the 8 matrix products of each step, written
into preallocated outputs (no weight update: the floor any implementation of the step pays).
The XOR step also runs compiled.

Within each repetition the contenders run one after another in a rotating order (for the
MNIST epoch, numpy by hand and tinygrad_mlp take turns every tenth of an epoch), so that
machine noise hits all of them alike; the table reports the median and the minimum over the
repetitions, and each ratio as the median over the repetitions of the ratio of the two times
within one repetition (the ratio of the medians is printed with the targets). Every
contender starts from the same initial weights, and the losses they reach are compared as a
correctness guard. PyTorch is optional: it is used only when it imports.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import math
import os
import platform
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

NUMPY = "numpy-by-hand"
TINY = "tinygrad_mlp"
TORCH = "pytorch"
TINY_COMPILED = "tinygrad_mlp compiled"
TINY_MODULE = "tinygrad_mlp module"
TINY_MODULE_COMPILED = "tinygrad_mlp module compiled"
GEMM = "gemm floor"

MNIST_SIZES = (784, 128, 128, 10)
MNIST_ROWS = 60_000
MNIST_LR = 0.1
BATCH = 128
XOR_SIZES = (2, 8, 1)
XOR_LR = 0.5
XOR_STEPS = 2000
SEED = 0

EPOCH_CHUNKS = 10  # pieces an MNIST epoch is timed in (see interleaved_epochs)

TARGET_MNIST = 1.10  # tinygrad_mlp / numpy-by-hand, MNIST epoch time
TARGET_XOR = 0.5  # tinygrad_mlp / pytorch, XOR step time
TARGET_MEMORY = 1.3  # tinygrad_mlp / numpy-by-hand, MNIST epoch peak memory
TARGET_COMPILED_MNIST = 0.90  # compiled tinygrad_mlp / numpy-by-hand, MNIST epoch time
TARGET_COMPILED_XOR = 0.15  # compiled tinygrad_mlp / pytorch, XOR step time
TARGET_CNN = 1.0  # tinygrad_mlp / pytorch, MNIST CNN epoch time (benchmarks/cnn_bench.py)
# bytes 20 compiled MNIST steps may keep (nothing: a few Python objects' worth of tracemalloc
# noise) and allocate at their peak (no array: numpy iterators' buffers) after the first replay
TARGET_STEP_KEPT = 1024
TARGET_STEP_PEAK = 4096

# Losses after the short warm-up runs must agree closely; after a whole run the float32
# rounding differences of the libraries can grow (a ReLU unit flipping sign for one sample sends
# trajectories apart), so the final check is looser: on the synthetic MNIST epoch float32 and
# float64 by hand were seen to end 0.2% apart.
TIGHT_RTOL, TIGHT_ATOL = 1e-5, 1e-7
FINAL_RTOL, FINAL_ATOL = 1e-2, 1e-5


# --------------------------------------------------------------------------------------------
# Optional libraries
# --------------------------------------------------------------------------------------------


def load_tinygrad() -> tuple[Any, str | None]:
    """Import tinygrad_mlp and check the public API used here; (module, None) or (None, why)."""
    try:
        import tinygrad_mlp as tm

        needed = (
            "Tensor",
            "nn.Sequential",
            "nn.Linear",
            "nn.ReLU",
            "optim.SGD",
            "functional.cross_entropy",
        )
        for name in needed:
            obj: Any = tm
            for part in name.split("."):
                obj = getattr(obj, part)
    except Exception as e:  # a partial or broken install may fail in any way on import
        return None, f"{type(e).__name__}: {e}"
    return tm, None


def load_torch(wanted: bool) -> tuple[Any, str | None]:
    """Import torch when wanted; (module, None) or (None, why)."""
    if not wanted:
        return None, "disabled with --no-torch"
    try:
        import torch
    except Exception as e:
        return None, f"{type(e).__name__}: {e}"
    return torch, None


def load_cupy() -> Any:
    """Import CuPy and check for a GPU, or exit with a clear message."""
    try:
        import cupy
    except ImportError:
        sys.exit(
            "--device cuda needs CuPy, which is not installed "
            '(pip install -e ".[cuda]"); nothing was measured.'
        )
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:
        sys.exit(
            f"--device cuda needs an NVIDIA GPU, but CUDA reports none ({e}); nothing was measured."
        )
    if count < 1:
        sys.exit("--device cuda needs an NVIDIA GPU, but CUDA reports none; nothing was measured.")
    return cupy


# --------------------------------------------------------------------------------------------
# Data and initial weights
# --------------------------------------------------------------------------------------------


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


def init_weights(sizes: tuple[int, ...], seed: int) -> list[np.ndarray]:
    """PyTorch-style uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)) weights (out, in) and biases."""
    rng = np.random.default_rng(seed)
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        bound = 1.0 / math.sqrt(fan_in)
        params.append(rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32))
        params.append(rng.uniform(-bound, bound, (fan_out,)).astype(np.float32))
    return params


def host(array: Any) -> np.ndarray:
    """A numpy copy of a numpy, CuPy or torch array."""
    if hasattr(array, "detach"):
        return array.detach().cpu().numpy()
    if hasattr(array, "get") and not isinstance(array, np.ndarray):
        return array.get()
    return np.array(array)


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
# MNIST-epoch contenders. Each has: name, reset(init) (untimed), epoch(rows) -> last loss,
# sync(), params() -> numpy arrays.
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


def model_no_grad() -> Any:
    """tinygrad_mlp's no_grad context."""
    import tinygrad_mlp as tm

    return tm.no_grad()


def tiny_assign(model: Any, init: list[np.ndarray]) -> None:
    """Copy ``init`` into the parameters of a tinygrad_mlp model, in place, checking shapes."""
    params = list(model.parameters())
    if len(params) != len(init):
        raise RuntimeError(f"expected {len(init)} parameters, model has {len(params)}")
    for p, value in zip(params, init, strict=True):
        if tuple(p.shape) != value.shape:
            raise RuntimeError(f"parameter shape {tuple(p.shape)} != expected {value.shape}")
        with model_no_grad():
            p.copy_(value)  # PyTorch's in-place copy: host values onto the parameter's device


def tiny_params(model: Any) -> list[np.ndarray]:
    """The parameters of a tinygrad_mlp model as numpy arrays."""
    return [p.detach().cpu().numpy() for p in model.parameters()]


def tiny_to(model: Any, device: str) -> Any:
    """Move a tinygrad_mlp model to ``device`` (``.to`` may return the model or None)."""
    moved = model.to(device)
    return model if moved is None else moved


def training_step(model: Any, opt: Any, loss_fn: Any) -> Any:
    """One training step of a tinygrad_mlp model (what the compiled contenders compile)."""

    def step(x: Any, target: Any) -> Any:
        loss = loss_fn(model(x), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    return step


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
            model = tiny_to(model, self.device)
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


def torch_mlp(torch: Any, sizes: tuple[int, ...], hidden: str, out: str | None) -> Any:
    """A torch.nn.Sequential of Linear layers with ``hidden`` activations (and ``out``)."""
    acts = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid}
    layers: list[Any] = []
    for k, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(torch.nn.Linear(fan_in, fan_out))
        if k < len(sizes) - 2:
            layers.append(acts[hidden]())
    if out is not None:
        layers.append(acts[out]())
    return torch.nn.Sequential(*layers)


def torch_assign(torch: Any, model: Any, init: list[np.ndarray]) -> None:
    """Copy ``init`` into a torch model's parameters, in place."""
    with torch.no_grad():
        for p, value in zip(model.parameters(), init, strict=True):
            p.copy_(torch.from_numpy(value))


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
# XOR-step contenders. Each has: name, reset(init), steps(n) -> last loss, params().
# --------------------------------------------------------------------------------------------

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
XOR_T = np.array([[0], [1], [1], [0]], dtype=np.float32)


class NumpyXor:
    """The 2-8-1 tanh/sigmoid network with MSE, written by hand in numpy, float32."""

    name = NUMPY

    def __init__(self) -> None:
        self.weights: list[np.ndarray] = []

    def reset(self, init: list[np.ndarray]) -> None:
        """Start again from copies of ``init``."""
        self.weights = [p.copy() for p in init]

    def steps(self, n: int) -> float:
        """``n`` full-batch SGD steps; returns the last step's loss."""
        x, t, lr = XOR_X, XOR_T, XOR_LR
        w1, b1, w2, b2 = self.weights
        count = t.size
        loss = None
        for _ in range(n):
            h = np.tanh(x @ w1.T + b1)
            p = 1.0 / (1.0 + np.exp(-(h @ w2.T + b2)))
            diff = p - t
            loss = (diff * diff).mean()
            dz2 = diff * (2.0 / count) * p * (1.0 - p)
            dh = dz2 @ w2
            dz1 = dh * (1.0 - h * h)
            w2 -= lr * (dz2.T @ h)
            b2 -= lr * dz2.sum(axis=0)
            w1 -= lr * (dz1.T @ x)
            b1 -= lr * dz1.sum(axis=0)
        return float(loss)

    def params(self) -> list[np.ndarray]:
        """The current weights."""
        return [p.copy() for p in self.weights]


class TinyXor:
    """The XOR network through tinygrad_mlp's public API (its step eager or compiled)."""

    name = TINY

    def __init__(self, tm: Any, compiled: bool = False):
        self.tm = tm
        self.compiled = compiled
        self.name = TINY_COMPILED if compiled else TINY
        self.model: Any = None
        self.opt: Any = None
        self.step: Any = None

    def reset(self, init: list[np.ndarray]) -> None:
        """Build the model afresh and load ``init`` into it (and compile a new step)."""
        nn = self.tm.nn
        self.model = model = nn.Sequential(
            nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1), nn.Sigmoid()
        )
        tiny_assign(self.model, init)
        self.opt = opt = self.tm.optim.SGD(self.model.parameters(), lr=XOR_LR)
        step = training_step(model, opt, self.tm.functional.mse_loss)
        self.step = self.tm.compile(step) if self.compiled else None

    def steps(self, n: int) -> float:
        """``n`` full-batch SGD steps; returns the last step's loss."""
        tm, model, opt = self.tm, self.model, self.opt
        mse_loss = tm.functional.mse_loss
        x, t = tm.Tensor(XOR_X), tm.Tensor(XOR_T)
        loss = None
        if self.step is not None:
            step = self.step
            for _ in range(n):
                loss = step(x, t)
            return float(loss.item())
        for _ in range(n):
            loss = mse_loss(model(x), t)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return float(loss.item())

    def params(self) -> list[np.ndarray]:
        """The current weights as numpy arrays."""
        return tiny_params(self.model)


class TorchXor:
    """The XOR network in PyTorch eager mode."""

    name = TORCH

    def __init__(self, torch: Any):
        self.torch = torch
        self.model: Any = None
        self.opt: Any = None

    def reset(self, init: list[np.ndarray]) -> None:
        """Build the model afresh and load ``init`` into it."""
        self.model = torch_mlp(self.torch, XOR_SIZES, "tanh", "sigmoid")
        torch_assign(self.torch, self.model, init)
        self.opt = self.torch.optim.SGD(self.model.parameters(), lr=XOR_LR)

    def steps(self, n: int) -> float:
        """``n`` full-batch SGD steps; returns the last step's loss."""
        torch, model, opt = self.torch, self.model, self.opt
        mse_loss = torch.nn.functional.mse_loss
        x, t = torch.from_numpy(XOR_X), torch.from_numpy(XOR_T)
        loss = None
        for _ in range(n):
            loss = mse_loss(model(x), t)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return float(loss.item())

    def params(self) -> list[np.ndarray]:
        """The current weights as numpy arrays."""
        return [host(p) for p in self.model.parameters()]


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------


class Report:
    """Collects rows, notices and checks, and prints them."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self.checks: list[dict[str, Any]] = []
        self.verdicts: list[dict[str, Any]] = []
        self.load_after: list[float] | None = None

    def note(self, text: str) -> None:
        """Print a notice now and keep it for the JSON file."""
        print(f"note: {text}", flush=True)
        self.notes.append(text)


def warm_up(contenders: list[Any], run: Any, report: Report, bench: str) -> list[Any]:
    """Run each contender once, untimed; drop (with a notice) those that raise."""
    kept = []
    for c in contenders:
        try:
            run(c)
        except Exception as e:
            report.note(f"{bench}: {c.name} skipped, it failed on warm-up: {type(e).__name__}: {e}")
            continue
        kept.append(c)
    return kept


def round_robin(contenders: list[Any], repeats: int, timed: Any) -> dict[str, list[float]]:
    """Time ``timed(c)`` for every contender in each repetition, rotating the order."""
    times: dict[str, list[float]] = {c.name: [] for c in contenders}
    k = len(contenders)
    for r in range(repeats):
        order = contenders[r % k :] + contenders[: r % k]
        for c in order:
            times[c.name].append(timed(c))
    return times


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


def add_rows(
    report: Report,
    bench: str,
    unit: str,
    scale: float,
    times: dict[str, list[float]],
    with_torch_ratio: bool,
) -> None:
    """Turn raw times (seconds) into table rows with medians, minimums and ratios.

    A ratio is paired: the median, over the repetitions, of the two contenders' times in the
    same repetition divided (they ran one right after the other, so a slow stretch of a shared
    machine hits both). The ratio of the two medians is kept beside it.
    """
    med = {name: statistics.median(ts) for name, ts in times.items()}

    def paired(name: str, other: str, wanted: bool = True) -> tuple[Any, Any]:
        if not wanted or other not in times:
            return None, None
        ratios = [a / b for a, b in zip(times[name], times[other], strict=True)]
        return statistics.median(ratios), med[name] / med[other]

    for name, ts in times.items():
        vs_numpy, vs_numpy_medians = paired(name, NUMPY)
        vs_torch, vs_torch_medians = paired(name, TORCH, with_torch_ratio)
        vs_gemm, vs_gemm_medians = paired(name, GEMM)
        row = {
            "benchmark": bench,
            "contender": name,
            "unit": unit,
            "median": med[name] * scale,
            "min": min(ts) * scale,
            "times": [t * scale for t in ts],
            "ratio_vs_numpy": vs_numpy,
            "ratio_vs_torch": vs_torch,
            "ratio_of_medians_vs_numpy": vs_numpy_medians,
            "ratio_of_medians_vs_torch": vs_torch_medians,
            "ratio_vs_gemm": vs_gemm,
            "ratio_of_medians_vs_gemm": vs_gemm_medians,
        }
        report.rows.append(row)


def check_losses(
    report: Report, bench: str, results: dict[str, float], rtol: float, atol: float
) -> None:
    """Compare each contender's loss with numpy-by-hand's; print a warning when they differ."""
    if NUMPY not in results:
        return
    ref = results[NUMPY]
    for name, value in results.items():
        if name == GEMM:
            continue  # it computes products only, no loss
        ok = math.isfinite(value) and abs(value - ref) <= atol + rtol * abs(ref)
        report.checks.append(
            {"benchmark": bench, "contender": name, "loss": value, "reference": ref, "ok": ok}
        )
        if name == NUMPY:
            continue
        if ok:
            print(f"loss check {bench}: {name} {value:.8f} vs {NUMPY} {ref:.8f}: ok")
        else:
            print(
                f"WARNING: loss check {bench}: {name} reached {value:.8f} but {NUMPY} "
                f"reached {ref:.8f} from the same initial weights",
                flush=True,
            )


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
        variants = [(False, False), (True, False)]
        if hasattr(tm, "compile") or _compile_module() is not None:
            variants += [(False, True), (True, True)]
        else:
            report.note("mnist: compiled contenders skipped, tinygrad_mlp has no compile")
        for module, compiled in variants:
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


def bench_xor(args: argparse.Namespace, report: Report, libs: dict[str, Any]) -> None:
    """Time XOR training steps per contender, interleaved, and check their final losses."""
    init = init_weights(XOR_SIZES, SEED + 1)
    contenders: list[Any] = [NumpyXor()]
    if libs["tm"] is not None:
        contenders.append(TinyXor(libs["tm"]))
        contenders.append(TinyXor(libs["tm"], compiled=True))
    if libs["torch"] is not None:
        contenders.append(TorchXor(libs["torch"]))
    steps = args.xor_steps

    warm_steps = min(steps, 100)
    warm_loss: dict[str, float] = {}

    def warm(c: Any) -> None:
        c.reset(init)
        warm_loss[c.name] = c.steps(warm_steps)

    contenders = warm_up(contenders, warm, report, "xor")
    check_losses(report, f"xor after {warm_steps} steps", warm_loss, TIGHT_RTOL, TIGHT_ATOL)
    final: dict[str, float] = {}

    def timed(c: Any) -> float:
        c.reset(init)
        gc.collect()
        start = time.perf_counter()
        final[c.name] = c.steps(steps)
        return (time.perf_counter() - start) / steps

    times = round_robin(contenders, args.repeats, timed)
    add_rows(report, f"xor step ({steps} steps)", "us", 1e6, times, with_torch_ratio=True)
    for name, value in final.items():
        print(f"xor: {name} loss after {steps} steps {value:.6f}")
    check_losses(report, f"xor after {steps} steps", final, FINAL_RTOL, FINAL_ATOL)


def bench_memory(
    args: argparse.Namespace,
    report: Report,
    libs: dict[str, Any],
    data: tuple[np.ndarray, np.ndarray],
) -> None:
    """Peak traced memory (tracemalloc) of one MNIST epoch, data and weights made beforehand."""
    x, y = data
    rows = len(x)
    init = init_weights(MNIST_SIZES, SEED)
    contenders: list[Any] = [NumpyMnist(np, x, y)]
    if libs["tm"] is not None:
        for module, compiled in [(False, False), (True, False), (False, True), (True, True)]:
            contenders.append(TinyMnist(libs["tm"], x, y, "cpu", module=module, compiled=compiled))
    if libs["torch"] is not None:
        report.note(
            "memory: pytorch not measured, its CPU allocator does not report to tracemalloc"
        )
    # NOTE: the epoch ends with a smaller batch, which a compiled step traces (eagerly) while
    # the plan of the full batches holds its buffers; the epoch of full batches only is measured
    # too, as training with drop_last would run
    full = rows - rows % BATCH
    for label, n in [(f"mnist epoch ({rows} rows)", rows)] + (
        [(f"mnist epoch of full batches ({full} rows)", full)] if 0 < full < rows else []
    ):
        peaks: dict[str, float] = {}
        for c in contenders:
            try:
                c.reset(init)
                c.epoch(min(n, 2 * BATCH))  # warm-up, untraced
                c.reset(init)
                gc.collect()
                tracemalloc.start()
                tracemalloc.reset_peak()
                c.epoch(n)
                peak = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
            except Exception as e:
                if tracemalloc.is_tracing():
                    tracemalloc.stop()
                report.note(f"memory: {c.name} skipped, it failed: {type(e).__name__}: {e}")
                continue
            peaks[c.name] = peak
        mib = 1024.0 * 1024.0
        for name, peak in peaks.items():
            report.rows.append(
                {
                    "benchmark": f"memory peak, {label}",
                    "contender": name,
                    "unit": "MiB",
                    "median": peak / mib,
                    "min": peak / mib,
                    "times": [peak / mib],
                    "ratio_vs_numpy": peak / peaks[NUMPY] if NUMPY in peaks else None,
                    "ratio_vs_torch": None,
                }
            )
    if libs["tm"] is not None:
        bench_step_allocation(report, libs["tm"], data)


def bench_step_allocation(report: Report, tm: Any, data: tuple[np.ndarray, np.ndarray]) -> None:
    """What 20 compiled MNIST steps keep allocated, and their peak above the start, once the
    plan replays (tracemalloc, after 2 traced calls and 103 replays); eager steps beside them."""
    x, y = data
    init = init_weights(MNIST_SIZES, SEED)
    for module in (False, True):
        for compiled in (False, True):
            c = TinyMnist(tm, x, y, "cpu", module=module, compiled=compiled)
            c.reset(init)
            c.epoch(5 * BATCH)  # the traces and the first replays
            gc.collect()
            tracemalloc.start()
            # Python's free lists and caches fill (a few hundred bytes): 100 steps or more
            full = len(x) - len(x) % BATCH
            for _ in range(-(-100 * BATCH // full)):
                c.epoch(min(100 * BATCH, full))
            start = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            c.epoch(20 * BATCH)
            now, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            for what, value in (("kept", now - start), ("peak", peak - start)):
                report.rows.append(
                    {
                        "benchmark": f"allocation over 20 mnist steps, {what}",
                        "contender": c.name,
                        "unit": "B",
                        "median": value,
                        "min": value,
                        "times": [value],
                        "ratio_vs_numpy": None,
                        "ratio_vs_torch": None,
                    }
                )


def _compile_module() -> Any:
    """The module tinygrad_mlp.compile (tm.compile is the function it defines)."""
    import importlib

    try:
        return importlib.import_module("tinygrad_mlp.compile")
    except ImportError:
        return None


def bench_cnn(args: argparse.Namespace, report: Report) -> None:
    """The MNIST CNN epoch against PyTorch, each contender in its own one-thread process."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import cnn_bench

    images = 640 if args.quick else 2048
    print(f"cnn epoch: {images} images, {args.repeats} processes per contender", flush=True)
    result = cnn_bench.compare(images, args.repeats, args.data_dir)
    cnn_bench.print_result(result)
    times = {TINY: result["seconds"]["tinygrad_mlp"], TORCH: result["seconds"]["pytorch"]}
    add_rows(report, f"cnn epoch of {images} images", "s", 1.0, times, True)
    if not result["same_start_loss"]:
        report.note(f"cnn epoch: the contenders start from different losses {result['start_loss']}")
    report.checks.append({"benchmark": "cnn epoch", "blas": result["blas"]})


def find_row(report: Report, prefix: str, contender: str) -> dict[str, Any] | None:
    """The first table row whose benchmark starts with ``prefix``, for ``contender``."""
    for row in report.rows:
        if row["benchmark"].startswith(prefix) and row["contender"] == contender:
            return row
    return None


def verdicts(report: Report, device: str, judged: bool = True) -> None:
    """Compare the measured ratios with the targets and print one line per target; with
    ``judged`` False (a --quick run: too few rows and repeats to time fairly) the values are
    shown beside the targets without a PASS or FAIL."""
    targets = [
        ("mnist epoch", TINY, "ratio_vs_numpy", TARGET_MNIST),
        ("mnist epoch", TINY_MODULE, "ratio_vs_numpy", TARGET_MNIST),
        ("mnist epoch", TINY_COMPILED, "ratio_vs_numpy", TARGET_COMPILED_MNIST),
        ("mnist epoch", TINY_MODULE_COMPILED, "ratio_vs_numpy", TARGET_COMPILED_MNIST),
        ("xor step", TINY, "ratio_vs_torch", TARGET_XOR),
        ("xor step", TINY_COMPILED, "ratio_vs_torch", TARGET_COMPILED_XOR),
        ("memory peak", TINY, "ratio_vs_numpy", TARGET_MEMORY),
        ("memory peak", TINY_COMPILED, "ratio_vs_numpy", TARGET_MEMORY),
        ("memory peak", TINY_MODULE_COMPILED, "ratio_vs_numpy", TARGET_MEMORY),
        ("memory peak, mnist epoch of full", TINY_COMPILED, "ratio_vs_numpy", TARGET_MEMORY),
        ("memory peak, mnist epoch of full", TINY_MODULE_COMPILED, "ratio_vs_numpy", TARGET_MEMORY),
        ("allocation over 20 mnist steps, kept", TINY_COMPILED, "median", TARGET_STEP_KEPT),
        ("allocation over 20 mnist steps, kept", TINY_MODULE_COMPILED, "median", TARGET_STEP_KEPT),
        ("allocation over 20 mnist steps, peak", TINY_COMPILED, "median", TARGET_STEP_PEAK),
        ("allocation over 20 mnist steps, peak", TINY_MODULE_COMPILED, "median", TARGET_STEP_PEAK),
        ("cnn epoch", TINY, "ratio_vs_torch", TARGET_CNN),
    ]
    what = {
        "mnist epoch": "MNIST epoch time",
        "xor step": "XOR step time",
        "memory peak": "MNIST epoch peak memory",
        "memory peak, mnist epoch of full": "MNIST epoch of full batches, peak memory",
        "allocation over 20 mnist steps, kept": "bytes kept by 20 replayed MNIST steps",
        "allocation over 20 mnist steps, peak": "peak bytes of 20 replayed MNIST steps",
        "cnn epoch": "MNIST CNN epoch time (one thread, own process)",
    }
    if judged:
        print("\ntargets:")
    else:
        print("\ntargets (not judged: --quick runs too few rows and repeats to time fairly):")
    for prefix, contender, key, target in targets:
        if not any(r["benchmark"].startswith(prefix) for r in report.rows):
            continue
        other = {"ratio_vs_numpy": f" / {NUMPY}", "ratio_vs_torch": f" / {TORCH}"}.get(key, "")
        label = f"{what[prefix]}, {contender}{other}"
        row = find_row(report, prefix, contender)
        if row is None:
            continue
        value = None if row is None else row[key]
        if value is None:
            status = "n/a (a contender is missing)"
        elif not judged:
            status = "not judged (--quick)"
        else:
            status = "PASS" if value <= target else "FAIL"
            if prefix == "mnist epoch" and device != "cpu":
                status += " (target set for the cpu)"
        shown = "-" if value is None else f"{value:.3f}"
        medians = None
        if row is not None and key.startswith("ratio_"):
            medians = row.get(key.replace("ratio_", "ratio_of_medians_"))
        if medians is not None:
            shown += f" (ratio of the medians {medians:.3f})"
        print(f"  {label} = {shown} (target <= {target}): {status}")
        report.verdicts.append({"target": label, "value": value, "limit": target, "status": status})
    floor = [r for r in report.rows if r.get("ratio_vs_gemm") and r["contender"] != GEMM]
    if floor:
        print("against the GEMM floor (the 8 matrix products of each step alone):")
        for r in floor:
            print(f"  {r['benchmark']}, {r['contender']} / {GEMM} = {r['ratio_vs_gemm']:.3f}")


def print_table(report: Report) -> None:
    """Print the results as a fixed-width table."""
    head = ["benchmark", "contender", "median", "min", "vs numpy", "vs pytorch"]
    lines = []
    for r in report.rows:
        unit = r["unit"]
        fmt = "{:.3f} " if unit == "s" else "{:.1f} "
        lines.append(
            [
                r["benchmark"],
                r["contender"],
                fmt.format(r["median"]) + unit,
                fmt.format(r["min"]) + unit,
                "-" if r["ratio_vs_numpy"] is None else f"{r['ratio_vs_numpy']:.3f}",
                "-" if r["ratio_vs_torch"] is None else f"{r['ratio_vs_torch']:.3f}",
            ]
        )
    widths = [
        max(len(h), *(len(line[k]) for line in lines)) if lines else len(h)
        for k, h in enumerate(head)
    ]

    def fmt_line(cells: list[str]) -> str:
        left = [c.ljust(w) for c, w in zip(cells[:2], widths[:2], strict=True)]
        right = [c.rjust(w) for c, w in zip(cells[2:], widths[2:], strict=True)]
        return "  ".join(left + right)

    print()
    print(fmt_line(head))
    print("  ".join("-" * w for w in widths))
    for line in lines:
        print(fmt_line(line))
    print("(vs columns: the median over the repetitions of the time ratio within each repetition)")


def machine_info(libs: dict[str, Any]) -> dict[str, Any]:
    """Facts about the machine and libraries that matter for the timings."""
    info: dict[str, Any] = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join(["python", *sys.argv]),
        "platform": platform.platform(),
        "processor": cpu_name(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": blas_name(),
        "thread_env": {k: os.environ.get(k, "unset") for k in THREAD_VARS},
    }
    if hasattr(os, "sched_getaffinity"):
        info["cpus_usable"] = len(os.sched_getaffinity(0))
    if hasattr(os, "getloadavg"):
        info["load_avg"] = [round(v, 2) for v in os.getloadavg()]
    try:
        from threadpoolctl import threadpool_info

        info["blas_threads"] = [
            f"{p.get('internal_api')}={p.get('num_threads')}" for p in threadpool_info()
        ]
    except Exception:
        info["blas_threads"] = (
            "unknown (threadpoolctl not installed): thread_env if set, else the library default"
        )
    torch = libs.get("torch")
    info["torch"] = None if torch is None else torch.__version__
    if torch is not None:
        info["torch_threads"] = torch.get_num_threads()
    tm = libs.get("tm")
    info["tinygrad_mlp"] = None if tm is None else getattr(tm, "__version__", "?")
    cupy = libs.get("cupy")
    if cupy is not None:
        info["cupy"] = cupy.__version__
        try:
            props = cupy.cuda.runtime.getDeviceProperties(0)
            info["gpu"] = (
                props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
            )
        except Exception:
            info["gpu"] = "?"
    return info


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo, or platform.processor()."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def blas_name() -> str:
    """The BLAS numpy was built against, when numpy can say so cheaply."""
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:
        return "?"


def busy_note(info: dict[str, Any]) -> str | None:
    """A notice when other work already loads the machine, which makes timings unreliable."""
    load = info.get("load_avg")
    cpus = info.get("cpus_usable") or info.get("cpu_count") or 1
    if load and load[0] > 0.5 * cpus:
        return (
            f"machine busy before the runs (1-minute load average {load[0]} on {cpus} CPUs); "
            "timings may be unreliable and slow, as BLAS threads compete with other processes "
            "(--threads 1 avoids most of that)"
        )
    return None


def print_info(info: dict[str, Any]) -> None:
    """Print the machine facts, one per line."""
    for key, value in info.items():
        print(f"{key:>13}: {value}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="timed repetitions per contender (default 9; 2 with --quick)",
    )
    ap.add_argument(
        "--quick", action="store_true", help="smoke test: 6,400 rows, 2 repeats, 200 XOR steps"
    )
    ap.add_argument(
        "--only",
        choices=["mnist", "xor", "memory", "cnn"],
        default=None,
        help="run a single benchmark",
    )
    ap.add_argument(
        "--device",
        choices=["cpu", "cuda"],
        default="cpu",
        help="cuda runs the MNIST epoch on the GPU with CuPy and torch CUDA",
    )
    ap.add_argument(
        "--data-dir",
        default=None,
        help="use real MNIST from this folder via tinygrad_mlp.datasets.mnist",
    )
    ap.add_argument("--json", default=None, metavar="PATH", help="also write results as JSON")
    ap.add_argument(
        "--rows",
        type=int,
        default=None,
        help="MNIST rows per epoch (default 60,000; 6,400 with --quick)",
    )
    ap.add_argument(
        "--xor-steps",
        type=int,
        default=None,
        help="XOR steps per repetition (default 2000; 200 with --quick)",
    )
    ap.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="set BLAS (OpenBLAS/MKL/OpenMP) and torch threads to N for every contender "
        "(default: leave the libraries' defaults)",
    )
    args = ap.parse_args(argv)
    if args.repeats is None:
        args.repeats = 2 if args.quick else 9
    if args.rows is None:
        args.rows = 6_400 if args.quick else MNIST_ROWS
    if args.xor_steps is None:
        args.xor_steps = 200 if args.quick else XOR_STEPS
    if args.repeats < 1 or args.rows < 1 or args.xor_steps < 1:
        ap.error("--repeats, --rows and --xor-steps must be positive")
    return args


THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def pin_threads(n: int) -> None:
    """Set the BLAS thread variables to ``n``; BLAS reads them when it loads, so re-exec once."""
    if n < 1:
        sys.exit("--threads must be positive")
    if all(os.environ.get(k) == str(n) for k in THREAD_VARS):
        return
    env = dict(os.environ, **{k: str(n) for k in THREAD_VARS})
    os.execve(sys.executable, [sys.executable, *sys.argv], env)


def main(argv: list[str] | None = None) -> int:
    """Run the selected benchmarks and print (and optionally save) the results."""
    args = parse_args(argv)
    if args.threads is not None:
        pin_threads(args.threads)
    report = Report()
    libs: dict[str, Any] = {"cupy": load_cupy() if args.device == "cuda" else None}
    libs["tm"], why = load_tinygrad()
    if libs["tm"] is not None and not callable(getattr(libs["tm"], "compile", None)):
        module = _compile_module()  # until tm.compile is exported from the package
        if module is not None:
            libs["tm"].compile = module.compile
    tm_note = None if why is None else f"{TINY} contender skipped, it does not import: {why}"
    libs["torch"], why = load_torch(not args.no_torch)
    torch_note = None if why is None else f"{TORCH} contender skipped: {why}"

    info = machine_info(libs)
    print_info(info)
    busy = busy_note(info)
    for text in (tm_note, torch_note, busy):
        if text is not None:
            report.note(text)

    wanted = [args.only] if args.only else ["mnist", "xor", "memory", "cnn"]
    if args.device == "cuda":
        for name in wanted:
            if name != "mnist":
                report.note(f"{name}: runs on the cpu only; skipped with --device cuda")
        wanted = [w for w in wanted if w == "mnist"]
    data = None
    if "mnist" in wanted or "memory" in wanted:
        if args.data_dir:
            data = real_mnist(args.data_dir, args.rows)
        else:
            data = synthetic_mnist(args.rows)
        print(
            f"data: {'MNIST from ' + args.data_dir if args.data_dir else 'synthetic'}, "
            f"{len(data[0])} rows, x {data[0].dtype}, y {data[1].dtype}"
        )
    print(f"repeats: {args.repeats} (median reported), order rotated each repetition\n", flush=True)

    if "mnist" in wanted:
        bench_mnist(args, report, libs, data)
    if "xor" in wanted:
        bench_xor(args, report, libs)
    if "memory" in wanted:
        bench_memory(args, report, libs, data)
    if "cnn" in wanted and libs["torch"] is not None:
        bench_cnn(args, report)

    print_table(report)
    if hasattr(os, "getloadavg"):
        report.load_after = [round(v, 2) for v in os.getloadavg()]
        print(f"\nload average after the runs (including this one): {report.load_after}")
    verdicts(report, args.device, judged=not args.quick)
    if args.json:
        out = {
            "machine": info,
            "args": vars(args),
            "results": report.rows,
            "checks": report.checks,
            "verdicts": report.verdicts,
            "load_after": report.load_after,
            "notes": report.notes,
        }
        Path(args.json).write_text(json.dumps(out, indent=2, default=str) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
