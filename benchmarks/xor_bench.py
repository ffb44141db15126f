"""The XOR step: time per training step (forward, zero_grad, backward, step) of a 2-8-1
network (tanh, sigmoid, MSE, SGD lr 0.5) on the 4 XOR samples, by numpy by hand, tinygrad_mlp
(eager and compiled) and PyTorch eager. Run through ``bench.py --only xor``."""

from __future__ import annotations

import argparse
import gc
import time
from typing import Any

import numpy as np
from _timing import (
    FINAL_ATOL,
    FINAL_RTOL,
    NUMPY,
    SEED,
    TIGHT_ATOL,
    TIGHT_RTOL,
    TINY,
    TINY_COMPILED,
    TORCH,
    Report,
    add_rows,
    check_losses,
    host,
    init_weights,
    round_robin,
    tiny_assign,
    tiny_params,
    torch_assign,
    torch_mlp,
    training_step,
    warm_up,
)

XOR_SIZES = (2, 8, 1)
XOR_LR = 0.5
XOR_STEPS = 2000
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
