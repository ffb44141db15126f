#!/usr/bin/env bash
# Instructions per MNIST-shaped training step, by hand in numpy and through tinygrad_mlp,
# counted by valgrind (the difference between 10 and 40 steps, so start-up cancels out).
# Usage: bash benchmarks/count_instructions.sh [extra args for steps.py, e.g. --batch 8]
set -euo pipefail
cd "$(dirname "$0")/.."
export OPENBLAS_NUM_THREADS=1
py=$(python3 -c 'import sys; print(sys.executable)')
count() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$py" benchmarks/steps.py "$@" 2>&1 |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
for mode in hand tiny; do
    a=$(count "$mode" 10 "${@}")
    b=$(count "$mode" 40 "${@}")
    echo "$mode: $(((b - a) / 30)) instructions per step"
done
