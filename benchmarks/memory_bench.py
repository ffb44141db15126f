"""Memory: the tracemalloc peak of one MNIST epoch (numpy by hand and the four tinygrad_mlp
variants; data and initial weights made before tracing starts), and what 20 training steps keep
allocated, and their peak, once warm. Run through ``bench.py --only memory``."""

from __future__ import annotations

import argparse
import gc
import tracemalloc
from typing import Any

import numpy as np
from _timing import BATCH, NUMPY, SEED, Report, init_weights
from mnist_bench import MNIST_SIZES, NumpyMnist, TinyMnist


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
