"""What every benchmark shares: the contenders' names, the report (rows, notes, loss checks),
the timing loops (warm-up, rotating order, paired ratios), the table and the machine facts."""

from __future__ import annotations

import datetime
import math
import os
import platform
import statistics
import sys
from typing import Any

import numpy as np

NUMPY = "numpy-by-hand"
TINY = "tinygrad_mlp"
TORCH = "pytorch"
TINY_COMPILED = "tinygrad_mlp compiled"
TINY_MODULE = "tinygrad_mlp module"
TINY_MODULE_COMPILED = "tinygrad_mlp module compiled"
GEMM = "gemm floor"

BATCH = 128
SEED = 0

# Losses after the short warm-up runs must agree closely; after a whole run the float32
# rounding differences of the libraries can grow (a ReLU unit flipping sign for one sample sends
# trajectories apart), so the final check is looser: on the synthetic MNIST epoch float32 and
# float64 by hand were seen to end 0.2% apart.
TIGHT_RTOL, TIGHT_ATOL = 1e-5, 1e-7
FINAL_RTOL, FINAL_ATOL = 1e-2, 1e-5

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


# --------------------------------------------------------------------------------------------
# Contenders' shared parts: initial weights, copies in and out of each library's models
# --------------------------------------------------------------------------------------------


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


def tiny_assign(model: Any, init: list[np.ndarray]) -> None:
    """Copy ``init`` into the parameters of a tinygrad_mlp model, in place, checking shapes."""
    import tinygrad_mlp as tm  # imported by bench.py's load_tinygrad, which reports a failure

    params = list(model.parameters())
    if len(params) != len(init):
        raise RuntimeError(f"expected {len(init)} parameters, model has {len(params)}")
    for p, value in zip(params, init, strict=True):
        if tuple(p.shape) != value.shape:
            raise RuntimeError(f"parameter shape {tuple(p.shape)} != expected {value.shape}")
        with tm.no_grad():
            p.copy_(value)  # PyTorch's in-place copy: host values onto the parameter's device


def tiny_params(model: Any) -> list[np.ndarray]:
    """The parameters of a tinygrad_mlp model as numpy arrays."""
    return [p.detach().cpu().numpy() for p in model.parameters()]


def training_step(model: Any, opt: Any, loss_fn: Any) -> Any:
    """One training step of a tinygrad_mlp model (what the compiled contenders compile)."""

    def step(x: Any, target: Any) -> Any:
        loss = loss_fn(model(x), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    return step


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


# --------------------------------------------------------------------------------------------
# Timing and the report
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


def find_row(report: Report, prefix: str, contender: str) -> dict[str, Any] | None:
    """The first table row whose benchmark starts with ``prefix``, for ``contender``."""
    for row in report.rows:
        if row["benchmark"].startswith(prefix) and row["contender"] == contender:
            return row
    return None


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


# --------------------------------------------------------------------------------------------
# The machine
# --------------------------------------------------------------------------------------------


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


def pin_threads(n: int) -> None:
    """Set the BLAS thread variables to ``n``; BLAS reads them when it loads, so re-exec once."""
    if n < 1:
        sys.exit("--threads must be positive")
    if all(os.environ.get(k) == str(n) for k in THREAD_VARS):
        return
    env = dict(os.environ, **{k: str(n) for k in THREAD_VARS})
    os.execve(sys.executable, [sys.executable, *sys.argv], env)
