"""Random expression graphs over the op registry, gradient-checked against finite differences.

A graph grows from one or two leaves. Each step draws a registered op and draws its inputs from a
pool of the tensors made so far, so that nodes are shared. An input whose shape does not suit the
op is adapted (reshaped, or mixed into a fresh leaf of the op's sample shape); then it is mapped
into the op's value domain (see ``ops.Sample``) by differentiable ops: sigmoid for "positive",
signed sigmoid for "nonzero", and so on, which keeps it away from kinks and domain edges. The
graph's output is a weighted sum over a few pool tensors, checked with ``tm.gradcheck`` in float64.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from tensors import T

import tinygrad_mlp as tm
from tinygrad_mlp.autograd.graph import apply
from tinygrad_mlp.ops import OPS

OP_NAMES = sorted(OPS)
DOMAINS = ("real", "positive", "nonzero", "unit", "distinct", "grid", "offgrid", "matrix")
_BOUND = 4.0  # "real" inputs larger than this are squashed with 3 tanh(x) first


@dataclass
class Ref:
    """How a step gets one input from the pool."""

    pool: int  # index of the pool tensor
    adapt: tuple | None  # None, ("reshape", shape) or ("leaf", index of a fresh leaf)
    domain: str  # the value domain the op needs
    squash: bool = False  # a "real" input that was large: 3 tanh(x)
    const: Any = None  # the signs of "nonzero", the spacing of "distinct"


@dataclass
class Step:
    op: str
    refs: list[Ref]
    params: dict[str, Any]


def _input(ref: Ref, pool: list[T], leaves: list[T]) -> T:
    x = pool[ref.pool]
    if ref.adapt is not None:
        kind, arg = ref.adapt
        x = x.reshape(arg) if kind == "reshape" else leaves[arg] + x.tanh().mean()
    if ref.squash:
        x = x.tanh() * 3.0
    if ref.domain == "positive":  # (0.2, 1.2)
        x = x.sigmoid() + 0.2
    elif ref.domain == "nonzero":  # +-(0.2, 1.2)
        x = (x.sigmoid() + 0.2) * ref.const
    elif ref.domain == "unit":  # (0.04, 0.96)
        x = (x.tanh() * 3.0).sigmoid()
    elif ref.domain == "distinct":  # at least 0.3 apart
        x = x.tanh() * 0.1 + ref.const
    elif ref.domain in ("grid", "offgrid"):  # multiples of 0.5 (offgrid: moved by 0.25), +-0.05
        x = x.tanh() * 0.05 + ref.const
    elif ref.domain == "matrix":  # diag(1, 2, ...) on the last two axes, +-0.1
        x = x.tanh() * 0.1 + ref.const
    return x


def _run_step(step: Step, pool: list[T], leaves: list[T]) -> T:
    inputs = [_input(ref, pool, leaves) for ref in step.refs]
    return apply(OPS[step.op], *inputs, **step.params)


@dataclass
class Program:
    """A recorded graph: rerun on perturbed leaves by gradcheck."""

    n_inputs: int
    steps: list[Step]
    outputs: list[tuple[int, np.ndarray]]  # pool index and weights of each output term

    def __call__(self, *leaves: T) -> T:
        pool = list(leaves[: self.n_inputs])
        for step in self.steps:
            pool.append(_run_step(step, pool, list(leaves)))
        total = None
        for i, weights in self.outputs:
            term = (pool[i] * weights).sum()
            total = term if total is None else total + term
        return total


def _param(key: str, value: Any) -> Any:
    """A Sample parameter as forward takes it: index lists as int64 arrays, value lists float64."""
    if isinstance(value, tuple):
        return tuple(_param(key, v) for v in value)
    if isinstance(value, np.ndarray):
        return tm.backend.to_device(value, tm.backend.default_device())
    if not isinstance(value, list):
        return value
    array = np.asarray(value)
    indexes = key == "index" or (key == "target" and array.ndim == 1)
    array = array.astype(np.int64 if indexes and array.dtype.kind in "iu" else np.float64)
    return tm.backend.to_device(array, tm.backend.default_device())  # where the inputs are


def _params(op, shapes) -> dict[str, Any]:
    return {k: _param(k, v) for k, v in op.sample.params(tuple(shapes)).items()}


class Builder:
    """Grows a Program step by step, evaluating it eagerly to choose adapters and bounds."""

    def __init__(self, choose: Callable[[int], int], rng: np.random.Generator) -> None:
        self.choose = choose  # choose(n): an int in [0, n)
        self.rng = rng
        self.leaves: list[np.ndarray] = []
        self.tensors: list[T] = []
        self.pool: list[T] = []
        self.steps: list[Step] = []
        n, m = 1 + choose(3), 1 + choose(3)
        shapes = [(n, m), (n,), (m,), (1, m), (n, 1), ()]
        for _ in range(1 + choose(2)):
            self.pool.append(self.tensors[self._leaf(shapes[choose(len(shapes))])])
        self.n_inputs = len(self.pool)

    def _leaf(self, shape) -> int:
        self.leaves.append(self.rng.uniform(-2.0, 2.0, shape))
        self.tensors.append(T(self.leaves[-1], dtype="float64"))
        return len(self.leaves) - 1

    def _ref(self, i: int, shape, domain: str) -> Ref:
        if domain not in DOMAINS:
            pytest.fail(f"the fuzzer does not know the value domain {domain!r}")
        adapt = None
        if shape is not None and self.pool[i].shape != tuple(shape):
            if self.pool[i].numel() == int(np.prod(shape)) and self.choose(2):
                adapt = ("reshape", tuple(shape))
            else:
                adapt = ("leaf", self._leaf(shape))
        ref = Ref(i, adapt, "real")
        x = _input(ref, self.pool, self.tensors).numpy()
        ref.domain = domain
        ref.squash = domain == "real" and bool(np.abs(x).max(initial=0.0) > _BOUND)
        if domain == "nonzero":
            ref.const = self.rng.choice([-1.0, 1.0], x.shape)
        elif domain == "distinct":
            ref.const = self.rng.permutation(x.size).reshape(x.shape) * 0.5
        elif domain in ("grid", "offgrid"):
            ref.const = self.rng.integers(-4, 4, x.shape) / 2 + (0.25 if domain == "offgrid" else 0)
        elif domain == "matrix":
            if x.ndim < 2:
                raise ValueError("the matrix domain needs at least two dimensions")
            ref.const = np.zeros(x.shape)
            k = min(x.shape[-2:])
            ref.const[..., range(k), range(k)] = np.arange(1, k + 1)
        return ref

    def _vary(self, params: dict[str, Any], shape) -> dict[str, Any]:
        """Other valid axes and keepdims for the ops that take them."""
        ndim = len(shape)
        if isinstance(params.get("axis"), int) and ndim:
            params["axis"] = self.choose(2 * ndim) - ndim
        if isinstance(params.get("keepdims"), bool):
            params["keepdims"] = bool(self.choose(2))
        return params

    def _direct(self, op) -> Step | None:
        """The op on pool tensors as they are, when their shapes suit it (tried eagerly).

        Broadcasting ops take any shapes that broadcast; other ops need the numbers of
        dimensions of their sample, as a forward may accept shapes its backward does not
        handle (3-D logits of cross_entropy, a 2-D bias of linear).
        """
        picks = [self.choose(len(self.pool)) for _ in op.sample.domains]
        shapes = [self.pool[i].shape for i in picks]
        ndims = [len(s) for s in op.sample.shapes(2, 3)]
        if not op.sample.broadcast and [len(s) for s in shapes] != ndims:
            return None
        try:
            if op.sample.broadcast:
                np.broadcast_shapes(*shapes)
            params = self._vary(_params(op, shapes), shapes[0])
            refs = [self._ref(i, None, d) for i, d in zip(picks, op.sample.domains, strict=True)]
            step = Step(op.name, refs, params)
            out = _run_step(step, self.pool, self.tensors)
        except (ValueError, TypeError, IndexError, KeyError):
            return None
        # an op undefined there (var over one element is NaN, as in PyTorch): not this way
        return step if np.isfinite(out.numpy()).all() else None

    def _sampled(self, op) -> Step:
        """The op on inputs adapted to the shapes of its Sample (always valid)."""
        shapes = op.sample.shapes(1 + self.choose(3), 1 + self.choose(3))
        refs = [
            self._ref(self.choose(len(self.pool)), shape, domain)
            for shape, domain in zip(shapes, op.sample.domains, strict=True)
        ]
        return Step(op.name, refs, _params(op, shapes))

    def add_step(self, name: str | None = None) -> None:
        op = OPS[name or OP_NAMES[self.choose(len(OP_NAMES))]]
        step = (self.choose(4) and self._direct(op)) or self._sampled(op)
        out = _run_step(step, self.pool, self.tensors)
        assert np.isfinite(out.numpy()).all(), f"op {op.name} made a non-finite value"
        self.pool.append(out)
        self.steps.append(step)

    def program(self) -> Program:
        last = len(self.pool) - 1
        chosen = {last} | {self.choose(len(self.pool)) for _ in range(self.choose(3))}
        outputs = [(i, self.rng.uniform(-1.0, 1.0, self.pool[i].shape)) for i in sorted(chosen)]
        return Program(self.n_inputs, list(self.steps), outputs)

    def leaves_requiring_grad(self) -> list[T]:
        return [T(v, dtype="float64", requires_grad=True) for v in self.leaves]


def _check(builder: Builder) -> None:
    program = builder.program()
    leaves = builder.leaves_requiring_grad()
    out = program(*leaves)
    assert out.shape == () and np.isfinite(out.item())
    assert tm.gradcheck(program, leaves)


@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_random_graphs_have_finite_values_and_correct_gradients(data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    builder = Builder(lambda n: data.draw(st.integers(0, n - 1)), rng)
    for _ in range(data.draw(st.integers(1, 8), label="steps")):
        builder.add_step()
    for step in builder.steps:
        event(f"op {step.op}")
    event("shared node" if _has_shared_node(builder.steps) else "no shared node")
    _check(builder)


def _has_shared_node(steps: list[Step]) -> bool:
    used = [ref.pool for step in steps for ref in step.refs]
    return len(used) != len(set(used))


@pytest.mark.parametrize("name", OP_NAMES)
def test_every_registered_op_in_a_random_graph(name):
    rng = np.random.default_rng(OP_NAMES.index(name))
    builder = Builder(lambda n: int(rng.integers(n)), rng)
    builder.add_step()
    builder.add_step(name)
    builder.add_step(name)  # often on the output of the first: a chain through the op
    builder.add_step()
    assert [s.op for s in builder.steps[1:3]] == [name, name]
    _check(builder)


def test_the_fuzzer_catches_a_wrong_gradient(monkeypatch):
    """A registry op with a wrong derivative fails the check: the fuzz test can fail."""
    exp = OPS["exp"]
    wrong = type(exp)(exp.name, exp.forward, lambda xp, g, out, needs: (g * out * 1.01,), 1)
    monkeypatch.setitem(OPS, "exp", wrong)
    rng = np.random.default_rng(0)
    builder = Builder(lambda n: int(rng.integers(n)), rng)
    builder.add_step("exp")
    with pytest.raises(tm.GradcheckError, match="Jacobian mismatch"):
        _check(builder)
