#!/usr/bin/env bash
# The real-GPU check, for a machine with an NVIDIA GPU (prepared, run only there).
#
#   bash benchmarks/gpu_check.sh [STEP...]     STEP: info install test_cuda suite bench wide
#
# With no STEP it runs them all (timeouts: 20+150+60+120+90+300 s); under the device tool's
# 10 minutes a command, run it as two commands on one warm machine, the numbers first:
#   bash benchmarks/gpu_check.sh info install test_cuda bench wide    (at most 440 s)
#   bash benchmarks/gpu_check.sh suite                                (at most 300 s) Each step writes STEP.txt (its output, with its exit status
# on the last line) to $OUT, or to gpu_check_out/ when OUT is not set; a failed step does not
# stop the others. Nothing here uses the simulated CuPy: TINYGRAD_MLP_SIMULATE_CUDA is unset.
#
# The steps:
#   info       nvidia-smi, Python, numpy, CuPy (if importable)
#   install    pip install -e ".[cuda,dev]" (from $WHEELS with --no-index when that folder exists,
#              since the GPU machine may not reach the package index); skipped if CuPy imports
#   test_cuda  python -m pytest tests/device/test_cuda.py (CuPy's own tests; none may be skipped)
#   suite      the suite with device "cuda": the files CI runs on the simulated device (all
#              but tests/compile/test_compile.py), stopping at the first failure
#   bench      python benchmarks/bench.py --device cuda --only mnist (MNIST epoch vs torch CUDA)
#   wide       a 784-4096-4096-10 epoch (batch 128) through tinygrad_mlp and its GEMM floor:
#              the same matrix products alone, timed with CuPy (target: epoch <= 1.3 x floor)
set -uo pipefail
cd "$(dirname "$0")/.."
unset TINYGRAD_MLP_SIMULATE_CUDA
out="${OUT:-gpu_check_out}"
mkdir -p "$out"

run_step() {  # run_step NAME SECONDS COMMAND...: output and exit status to $out/NAME.txt
    local name=$1 limit=$2
    shift 2
    echo "== $name (limit ${limit}s): $*"
    local start=$SECONDS
    timeout "$limit" "$@" >"$out/$name.txt" 2>&1
    local rc=$?
    echo "exit status $rc after $((SECONDS - start)) s" | tee -a "$out/$name.txt"
    tail -n 5 "$out/$name.txt"
}

step_info() {
    run_step info 20 bash -c 'date -u; nvidia-smi; python --version;
        python -c "import numpy; print(\"numpy\", numpy.__version__)";
        python -c "import cupy; print(\"cupy\", cupy.__version__); cupy.show_config()" || true'
}

step_install() {
    if python -c "import cupy; assert cupy.cuda.runtime.getDeviceCount() > 0" 2>/dev/null; then
        echo "CuPy already works; nothing installed" >"$out/install.txt"
        return
    fi
    if [ -d "${WHEELS:-/nonexistent}" ]; then
        run_step install 150 python -m pip install --no-index --find-links "$WHEELS" -e ".[cuda,dev]"
    else
        run_step install 150 python -m pip install -e ".[cuda,dev]"
    fi
}

step_test_cuda() {
    run_step test_cuda 60 python -m pytest tests/device/test_cuda.py -q -rs -p no:cacheprovider
}

step_suite() {
    # the simulated-device run of .ci/run, on the real device; -x stops at the first failure
    TINYGRAD_MLP_DEVICE=cuda run_step suite 300 python -m pytest -x -q -p no:cacheprovider \
        --ignore=tests/compile/test_compile.py
}

step_bench() {
    run_step bench 120 python benchmarks/bench.py --device cuda --only mnist --repeats 5 \
        --json "$out/bench_cuda.json"
}

step_wide() {
    run_step wide 90 python - <<'EOF'
"""784-4096-4096-10 epoch (batch 128, SGD, data on the GPU) against its GEMM floor."""
import time

import cupy as cp
import numpy as np

import tinygrad_mlp as tm
import tinygrad_mlp.nn.functional as F

ROWS, BATCH, SIZES = 60_000 // 128 * 128, 128, (784, 4096, 4096, 10)
rng = np.random.default_rng(0)
x = cp.asarray(rng.random((ROWS, SIZES[0]), dtype=np.float32))
y = cp.asarray(rng.integers(0, 10, ROWS))
sync = cp.cuda.Device().synchronize


def floor_epoch():
    """The matrix products of one epoch alone: per layer a forward product, the weight
    gradient, and (all but the first layer) the input gradient."""
    ws = [cp.asarray(rng.standard_normal((i, o), dtype=np.float32)) for i, o in zip(SIZES, SIZES[1:])]
    acts = [cp.ones((BATCH, n), np.float32) for n in SIZES]
    sync()
    start = time.perf_counter()
    for _ in range(ROWS // BATCH):
        for k, w in enumerate(ws):
            acts[k] @ w  # forward
        for k, w in enumerate(ws):
            acts[k].T @ acts[k + 1]  # weight gradient
            if k:
                acts[k + 1] @ w.T  # input gradient
    sync()
    return time.perf_counter() - start


def tm_epoch():
    tm.manual_seed(0)
    model = tm.nn.Sequential(
        tm.nn.Linear(784, 4096), tm.nn.ReLU(), tm.nn.Linear(4096, 4096), tm.nn.ReLU(),
        tm.nn.Linear(4096, 10),
    ).to("cuda")
    opt = tm.optim.SGD(model.parameters(), lr=0.01)
    sync()
    start = time.perf_counter()
    for i in range(0, ROWS, BATCH):
        loss = F.cross_entropy(model(tm.Tensor(x[i : i + BATCH])), y[i : i + BATCH])
        opt.zero_grad()
        loss.backward()
        opt.step()
    sync()
    return time.perf_counter() - start, loss.item()


floor_epoch(), tm_epoch()  # warm-up: kernels compiled, memory pool filled
floors = sorted(floor_epoch() for _ in range(3))
epochs = sorted(tm_epoch()[0] for _ in range(3))
print(f"GEMM floor epoch: median {floors[1]:.4f} s (min {floors[0]:.4f})")
print(f"tinygrad_mlp epoch: median {epochs[1]:.4f} s (min {epochs[0]:.4f})")
ratio = epochs[1] / floors[1]
print(f"ratio {ratio:.3f} (target <= 1.3): {'MET' if ratio <= 1.3 else 'NOT MET'}")
EOF
}

steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(info install test_cuda bench wide suite)
for s in "${steps[@]}"; do
    "step_$s"
done
echo "outputs in $out"
