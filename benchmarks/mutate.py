"""Mutation check of the test suite: spoil each registered derivative rule in turn and make sure
the registry checks of tests/ops/test_registry.py catch it.

For every op in ``ops.OPS`` and every input, the op's rule is wrapped so that this input's
gradient is (a) scaled by 1.01, (b) negated, (c) for ops with two inputs of the same shape,
swapped with the other's, and (d, "graph") scaled by 1.01 only where the rule runs on Tensors
(create_graph=True), which the fast first-order path never sees. Every activation's ``vjp`` in
``ops.ACTIVATIONS`` is spoiled as in (a) and (b), and then both the activation's op and the fused
``mlp`` op using it must fail. The checks are gradcheck and gradgradcheck on the op's sample
inputs, the shared-gradient graphs, and create_graph's first-order gradients against central
differences of the op's independent numpy formula.
A mutation that changes nothing on the sample (negating sign's zero gradient, swapping add's two
equal gradients) is reported as equivalent and not counted.

    python benchmarks/mutate.py            # every op and activation
    python benchmarks/mutate.py mul tanh   # just these

Prints a table and "caught N of M"; exits 1 if any mutation survives.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # tensors.py, strategies.py
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "ops"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import test_registry as R  # noqa: E402

from tinygrad_mlp import backend  # noqa: E402
from tinygrad_mlp import ops as O  # noqa: E402

KINDS = ("scale", "negate", "swap", "graph")


def _spoil_grads(grads, kind: str, i: int, j: int | None):
    grads = list(grads)
    if grads[i] is None or (j is not None and grads[j] is None):
        return tuple(grads)  # a gradient not asked for (needs[i] False): nothing to spoil
    if kind in ("scale", "graph"):
        grads[i] = grads[i] * 1.01
    elif kind == "negate":
        grads[i] = -grads[i]
    else:
        grads[i], grads[j] = grads[j], grads[i]
    return tuple(grads)


def spoiled_rule(rule, kind: str, i: int, j: int | None = None):
    """``rule`` (an op's backward) with input i's gradient spoiled."""

    def spoiled(ns, g, saved, needs):
        grads = rule(ns, g, saved, needs)
        if kind == "graph" and not getattr(ns, "differentiable", False):
            return grads  # "graph": spoiled only where the rule runs on Tensors (create_graph)
        return _spoil_grads(grads, kind, i, j)

    spoiled.kind, spoiled.i = kind, i
    return spoiled


def spoiled_vjp(vjp, kind: str):
    """An activation's ``vjp`` spoiled (scale or negate)."""

    def spoiled(ns, g, x, out, **params):
        return _spoil_grads((vjp(ns, g, x, out, **params),), kind, 0, None)[0]

    return spoiled


def op_mutations(op: O.Op, values) -> list[tuple[str, int, int | None]]:
    found = []
    for i in range(len(values)):
        found += [("scale", i, None), ("negate", i, None), ("graph", i, None)]
    for i in range(len(values)):
        for j in range(i + 1, len(values)):
            if np.shape(values[i]) == np.shape(values[j]):
                found.append(("swap", i, j))
    return found


def _is_equivalent(op: O.Op, values, params, rule) -> bool:
    """Whether the spoiled rule gives the same gradients as the original on the sample."""
    ns = backend.NUMPY
    out, saved = op.forward(ns, *values, **params)
    g = np.random.default_rng(0).standard_normal(np.shape(out))
    needs = (True,) * len(values)
    a = op.backward(ns, g.copy(), saved, needs)
    if rule.kind == "graph":  # compare as a scale on the fast path, where it does not act
        rule = spoiled_rule(op.backward, "scale", rule.i)
    b = rule(ns, g.copy(), saved, needs)
    return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b, strict=True))


def caught_by(op: O.Op, values, params) -> str:
    """The registry checks that fail for ``op`` on the sample, or '' if all pass."""
    checks = (
        ("gradcheck", R.check_first),
        ("gradgradcheck", R.check_second),
        ("shared", lambda *a: not R.check_shared(*a)),
        ("graph first order", R.check_graph_first),
    )
    failed = []
    for name, check in checks:
        try:
            ok = check(op, values, params)
        except Exception as e:  # a spoiled rule that breaks the engine is caught too
            ok, name = False, f"{name} ({type(e).__name__})"
        if not ok:
            failed.append(name)
    return ", ".join(failed)


def _with_backward(op: O.Op, rule):
    """Context: ``op.backward`` replaced by ``rule`` (Op is frozen: set through object)."""

    class _Patch:
        def __enter__(self):
            self.original = op.backward
            object.__setattr__(op, "backward", rule)

        def __exit__(self, *exc):
            object.__setattr__(op, "backward", self.original)

    return _Patch()


def _with_vjp(entry: O.Activation, vjp):
    class _Patch:
        def __enter__(self):
            self.original = entry.vjp
            object.__setattr__(entry, "vjp", vjp)

        def __exit__(self, *exc):
            object.__setattr__(entry, "vjp", self.original)

    return _Patch()


def run_op(op: O.Op) -> list[dict]:
    """Every mutation of one op's rule: a row per mutation."""
    values, params = R.sample(op, 2, 3, seed=0)
    rows = []
    for kind, i, j in op_mutations(op, values):
        rule = spoiled_rule(op.backward, kind, i, j)
        what = f"input {i}" if j is None else f"inputs {i}<->{j}"
        row = {"op": op.name, "what": what, "kind": kind}
        if _is_equivalent(op, values, params, rule):
            row["result"] = "equivalent"
        else:
            with _with_backward(op, rule):
                by = caught_by(op, values, params)
            row["result"] = f"caught by {by}" if by else "SURVIVED"
        rows.append(row)
    return rows


def run_activation(name: str) -> list[dict]:
    """The activation's vjp spoiled: its own op and the fused mlp using it must both fail."""
    entry = O.ACTIVATIONS[name]
    op = O.OPS[name]
    values, params = R.sample(op, 2, 3, seed=0)
    mlp_values, mlp_params = R._mlp_inputs(), {"acts": (name, None)}
    rows = []
    for kind in ("scale", "negate"):
        with _with_vjp(entry, spoiled_vjp(entry.vjp, kind)):
            for target, vals, prms in ((op, values, params), (O.MLP, mlp_values, mlp_params)):
                by = caught_by(target, vals, prms)
                rows.append(
                    {
                        "op": f"ACTIVATIONS[{name!r}] in {target.name}",
                        "what": "vjp",
                        "kind": kind,
                        "result": f"caught by {by}" if by else "SURVIVED",
                    }
                )
    return rows


def run(names: list[str] | None = None) -> list[dict]:
    """All mutations of the named ops and activations (all of them when names is empty)."""
    names = names or list(O.OPS)
    rows = []
    for name in names:
        rows += run_op(O.OPS[name])
        if name in O.ACTIVATIONS:
            rows += run_activation(name)
    return rows


def summary(rows: list[dict]) -> tuple[int, int, Counter, Counter]:
    counted = [r for r in rows if r["result"] != "equivalent"]
    caught = [r for r in counted if r["result"] != "SURVIVED"]
    return (
        len(caught),
        len(counted),
        Counter(r["kind"] for r in counted),
        Counter(r["kind"] for r in caught),
    )


def main(argv: list[str]) -> int:
    rows = run(argv)
    width = max(len(r["op"]) for r in rows)
    print(f"{'op':<{width}}  {'mutated':<14}  {'kind':<6}  result")
    for r in rows:
        print(f"{r['op']:<{width}}  {r['what']:<14}  {r['kind']:<6}  {r['result']}")
    caught, tried, by_kind, caught_kind = summary(rows)
    kinds = ", ".join(f"{k}: {caught_kind[k]}/{by_kind[k]}" for k in KINDS if by_kind[k])
    equivalent = sum(r["result"] == "equivalent" for r in rows)
    print(f"caught {caught} of {tried} ({kinds}; {equivalent} equivalent, not counted)")
    return 0 if caught == tried else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
