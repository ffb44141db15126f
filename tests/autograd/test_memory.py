"""Memory stays flat: training loops and dropped forwards do not grow the process, and a graph's
saved arrays are freed by backward (and by dropping the graph) through reference counting alone."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import weakref
from pathlib import Path

import numpy as np
import pytest
from tensors import T

import tinygrad_mlp as tm
from tinygrad_mlp import functional as F

# Keeping one step's graph (~64 KiB of activations) alive per step grows the process by ~60 MiB
# over 1,000 steps; a flat loop grows by a few KiB. The tolerance catches leaks of 2 KiB a step.
_TOLERANCE = 4 * 2**20

# The loops run in a child process: its RSS is not mixed up with pytest's, and BLAS is held to
# one thread, so that a loaded machine does not slow the small matrix products down a hundredfold.
_CHILD = """
import gc, os, sys
import numpy as np
import tinygrad_mlp as tm
from tinygrad_mlp import functional as F

PAGE = os.sysconf("SC_PAGE_SIZE")

def rss():
    gc.collect()
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE

kind, warmup, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
tm.manual_seed(0)
model = tm.nn.Sequential(
    tm.nn.Linear(32, 64), tm.nn.ReLU(), tm.nn.Linear(64, 64), tm.nn.Tanh(), tm.nn.Linear(64, 10)
)
rng = np.random.default_rng(0)
batches = [
    (tm.Tensor(rng.standard_normal((64, 32)), dtype="float32"), rng.integers(0, 10, 64))
    for _ in range(16)
]
if kind == "sgd":
    opt = tm.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
elif kind == "adam":
    opt = tm.optim.Adam(model.parameters(), lr=1e-3)
losses, kept = [], []

def step(i):
    x, y = batches[i % len(batches)]
    if kind in ("sgd", "adam"):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())  # a float: keeps nothing of the graph alive
    elif kind == "forward":
        assert model(x).requires_grad  # records a graph that nothing keeps
    elif kind == "leak":
        kept.append(model(x))

for i in range(warmup):
    step(i)
before = rss()
for i in range(steps):
    step(i)
growth = rss() - before
trained = not losses or np.mean(losses[-100:]) < np.mean(losses[:100])
print(growth, trained)
"""


def _growth(kind: str, warmup: int, steps: int) -> tuple[int, bool]:
    """How many bytes a child process grew over ``steps`` steps after ``warmup`` steps."""
    threads = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, kind, str(warmup), str(steps)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **threads},
        cwd=Path(tm.__file__).parents[1],  # the child imports the same package
    )
    assert result.returncode == 0, result.stderr[-3000:]
    growth, trained = result.stdout.split()
    return int(growth), trained == "True"


pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc")


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_training_steps_do_not_grow_the_process(optimizer):
    growth, trained = _growth(optimizer, warmup=200, steps=2_000)
    assert growth < _TOLERANCE, f"the process grew by {growth / 2**20:.1f} MiB"
    assert trained


def test_dropped_forwards_without_no_grad_do_not_grow_the_process():
    growth, _ = _growth("forward", warmup=200, steps=3_000)
    assert growth < _TOLERANCE, f"the process grew by {growth / 2**20:.1f} MiB"


def test_the_rss_measure_sees_a_leak():
    """The measure is not blind: keeping every graph alive grows the process past the limit."""
    growth, _ = _growth("leak", warmup=10, steps=1_000)
    assert growth > _TOLERANCE, f"the process grew by only {growth / 2**20:.1f} MiB"


def _mlp() -> tm.nn.Module:
    tm.manual_seed(0)
    return tm.nn.Sequential(
        tm.nn.Linear(32, 64), tm.nn.ReLU(), tm.nn.Linear(64, 64), tm.nn.Tanh(), tm.nn.Linear(64, 10)
    )


def _batch(rng, n=64):
    return T(rng.standard_normal((n, 32)), dtype="float32"), rng.integers(0, 10, n)


def _graph():
    """x -> exp -> * 2 -> sum, with weak references to the intermediate tensor and its array."""
    x = T(np.linspace(-1.0, 1.0, 1000), requires_grad=True)
    hidden = x.exp()
    loss = (hidden * 2.0).sum()
    return x, loss, weakref.ref(hidden), weakref.ref(hidden._data)  # the array itself


def test_backward_releases_the_saved_arrays_while_the_loss_is_alive():
    gc.disable()  # reference counting alone must free everything
    try:
        x, loss, hidden, array = _graph()
        assert hidden() is not None and array() is not None  # held by the graph of loss
        loss.backward()
        assert hidden() is None, "backward kept the intermediate tensor alive"
        assert array() is None, "backward kept a saved array alive"
        np.testing.assert_allclose(x.grad, 2 * np.exp(x.numpy()))
    finally:
        gc.enable()


def test_retain_graph_keeps_the_saved_arrays_until_the_loss_is_dropped():
    gc.disable()
    try:
        x, loss, hidden, array = _graph()
        loss.backward(retain_graph=True)
        assert hidden() is not None and array() is not None
        loss.backward()
        np.testing.assert_allclose(x.grad, 4 * np.exp(x.numpy()))
        del loss
        assert hidden() is None and array() is None
    finally:
        gc.enable()


def test_dropping_a_graph_without_backward_frees_it():
    gc.disable()
    try:
        model = _mlp()
        x = _batch(np.random.default_rng(3))[0]
        h1 = model[1](model[0](x))
        out = model[4](model[3](model[2](h1)))
        refs = [weakref.ref(h1), weakref.ref(h1._data), weakref.ref(out)]
        del h1, out
        assert all(r() is None for r in refs)
    finally:
        gc.enable()


def test_parameters_hold_no_graph_after_a_step():
    model = _mlp()
    opt = tm.optim.SGD(model.parameters(), lr=0.1)
    x, y = _batch(np.random.default_rng(4))
    logits = model(x)
    ref = weakref.ref(logits)
    F.cross_entropy(logits, y).backward()
    opt.step()
    del logits
    assert ref() is None
    for p in model.parameters():
        assert p.is_leaf and isinstance(p.grad, tm.Tensor) and p.grad.grad_fn is None
