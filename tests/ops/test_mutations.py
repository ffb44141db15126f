"""The mutation check: every spoiled derivative rule (benchmarks/mutate.py) is caught by the
registry checks of test_registry.py. A quick subset runs in the fast suite; all ops when slow."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import mutate  # noqa: E402

from tinygrad_mlp import ops as O  # noqa: E402

QUICK = ["mul", "div", "tanh", "relu", "sum", "matmul", "where", "cross_entropy"]


def _survivors(rows):
    return [r for r in rows if r["result"] == "SURVIVED"]


def test_quick_subset_of_mutations_is_caught():
    rows = mutate.run(QUICK)
    caught, tried, kinds, _ = mutate.summary(rows)
    assert tried > 40 and set(kinds) == {"scale", "negate", "swap", "graph"}
    assert _survivors(rows) == []


def test_spoiled_activation_is_caught_in_the_fused_mlp():
    rows = mutate.run_activation("tanh")
    assert {r["op"] for r in rows} == {"ACTIVATIONS['tanh'] in tanh", "ACTIVATIONS['tanh'] in mlp"}
    assert _survivors(rows) == []


def test_the_patch_is_undone():
    backward, vjp = O.MUL.backward, O.ACTIVATIONS["relu"].vjp
    mutate.run(["mul", "relu"])
    assert O.MUL.backward is backward and O.ACTIVATIONS["relu"].vjp is vjp


@pytest.mark.slow
def test_every_mutation_of_every_op_is_caught():
    rows = mutate.run()
    caught, tried, _, _ = mutate.summary(rows)
    assert {r["op"] for r in rows} >= set(O.OPS)
    assert _survivors(rows) == [] and caught == tried


@pytest.mark.slow
def test_the_script_exits_zero():
    assert mutate.main([]) == 0
