"""Smoke test for benchmarks/bench.py: a quick MNIST run exits cleanly and prints its table."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks" / "bench.py"


@pytest.mark.slow
def test_bench_quick_mnist_runs_and_prints_table():
    """A quick one-repeat MNIST run exits 0 and prints a table row for numpy-by-hand."""
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--quick",
            "--only",
            "mnist",
            "--repeats",
            "1",
            "--threads",
            "1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "contender" in out and "median" in out and "vs numpy" in out
    rows = [line for line in out.splitlines() if line.startswith("mnist epoch")]
    assert any("numpy-by-hand" in line for line in rows), out
    assert "WARNING: loss check" not in out, out
