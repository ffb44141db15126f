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

Each benchmark lives in its own module beside this script (mnist_bench.py, xor_bench.py,
memory_bench.py, cnn_bench.py); _timing.py holds what they share (the contenders' names, the
timing loops, the report and the machine facts). This script parses the options, runs the
benchmarks, prints the table and judges the targets.

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
import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the benchmark modules beside this one
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # tinygrad_mlp from this checkout

from _timing import (  # noqa: E402
    GEMM,
    NUMPY,
    TINY,
    TINY_COMPILED,
    TINY_MODULE,
    TINY_MODULE_COMPILED,
    TORCH,
    Report,
    add_rows,
    busy_note,
    find_row,
    machine_info,
    pin_threads,
    print_info,
    print_table,
)
from memory_bench import bench_memory  # noqa: E402
from mnist_bench import MNIST_ROWS, bench_mnist, real_mnist, synthetic_mnist  # noqa: E402
from xor_bench import XOR_STEPS, bench_xor  # noqa: E402

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


def load_tinygrad() -> tuple[Any, str | None]:
    """Import tinygrad_mlp; (module, None) or (None, why)."""
    try:
        import tinygrad_mlp as tm
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


def bench_cnn(args: argparse.Namespace, report: Report) -> None:
    """The MNIST CNN epoch against PyTorch, each contender in its own one-thread process."""
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
        row = find_row(report, prefix, contender)
        if row is None:
            continue
        other = {"ratio_vs_numpy": f" / {NUMPY}", "ratio_vs_torch": f" / {TORCH}"}.get(key, "")
        label = f"{what[prefix]}, {contender}{other}"
        value = row[key]
        if value is None:
            status = "n/a (a contender is missing)"
        elif not judged:
            status = "not judged (--quick)"
        else:
            status = "PASS" if value <= target else "FAIL"
            if prefix == "mnist epoch" and device != "cpu":
                status += " (target set for the cpu)"
        shown = "-" if value is None else f"{value:.3f}"
        medians = row.get(key.replace("ratio_", "ratio_of_medians_")) if key != "median" else None
        if medians is not None:
            shown += f" (ratio of the medians {medians:.3f})"
        print(f"  {label} = {shown} (target <= {target}): {status}")
        report.verdicts.append({"target": label, "value": value, "limit": target, "status": status})
    floor = [r for r in report.rows if r.get("ratio_vs_gemm") and r["contender"] != GEMM]
    if floor:
        print("against the GEMM floor (the 8 matrix products of each step alone):")
        for r in floor:
            print(f"  {r['benchmark']}, {r['contender']} / {GEMM} = {r['ratio_vs_gemm']:.3f}")


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


def main(argv: list[str] | None = None) -> int:
    """Run the selected benchmarks and print (and optionally save) the results."""
    args = parse_args(argv)
    if args.threads is not None:
        pin_threads(args.threads)
    report = Report()
    libs: dict[str, Any] = {"cupy": load_cupy() if args.device == "cuda" else None}
    libs["tm"], why = load_tinygrad()
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
