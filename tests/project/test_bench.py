"""Smoke tests for the benchmark scripts: bench.py, compile_parts.py and count_bytecodes.py run
cleanly and print what they measure."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks" / "bench.py"


@pytest.mark.slow
def test_bench_quick_mnist_runs_and_prints_table():
    """A quick one-repeat MNIST run exits 0 and prints a table row for numpy-by-hand."""
    args = ("--quick", "--only", "mnist", "--repeats", "1", "--threads", "1")
    out = _run_script("bench.py", *args)
    assert "contender" in out and "median" in out and "vs numpy" in out
    rows = [line for line in out.splitlines() if line.startswith("mnist epoch")]
    assert any("numpy-by-hand" in line for line in rows), out
    assert "WARNING: loss check" not in out, out


def _load_bench():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ratios_are_paired_within_each_repetition():
    """Each ratio is the median of the per-repetition ratios; the ratio of the medians is kept
    beside it (here the machine's speed changes from one repetition to the next)."""
    bench = _load_bench()
    numpy_times = [1.0, 2.0, 4.0]
    tiny_times = [1.1, 2.6, 4.4]  # ratios 1.1, 1.3, 1.1
    report = bench.Report()
    bench.add_rows(
        report, "mnist epoch", "s", 1.0, {bench.NUMPY: numpy_times, bench.TINY: tiny_times}, True
    )
    row = bench.find_row(report, "mnist epoch", bench.TINY)
    assert row["ratio_vs_numpy"] == pytest.approx(1.1)
    assert row["ratio_of_medians_vs_numpy"] == pytest.approx(1.3)
    assert row["ratio_vs_torch"] is None  # no torch contender
    numpy_row = bench.find_row(report, "mnist epoch", bench.NUMPY)
    assert numpy_row["ratio_vs_numpy"] == 1.0 and numpy_row["median"] == 2.0


def _run_script(name: str, *args: str) -> str:
    # the scripts measure the default CPU device, as a user runs them
    env = {k: v for k, v in os.environ.items() if not k.startswith("TINYGRAD_MLP_")}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / name), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.mark.slow
def test_compile_parts_takes_a_replayed_step_apart():
    out = _run_script("compile_parts.py", "--steps", "4", "--repeats", "1")
    for contender in ("numpy by hand", "GEMM floor", "eager module", "compiled module"):
        assert contender in out, out
    # the plan's parts: the three linear layers forward and back, the update
    assert "linear forward           x3" in out and "linear rule              x3" in out, out
    assert "SGD.step" in out and "sum of the parts" in out, out


def test_count_bytecodes_counts_more_for_the_unfused_module():
    out = _run_script("count_bytecodes.py", "hand", "module", "--top", "3")
    counts = dict(
        (line.split(":")[0], int(line.split()[1]))
        for line in out.splitlines()
        if "bytecode instructions per step" in line
    )
    assert set(counts) == {"hand", "module"}, out
    assert 0 < counts["hand"] < counts["module"], out
    assert "engine.py:_run" in out, out
