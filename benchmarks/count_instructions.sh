#!/usr/bin/env bash
# Instructions per MNIST-shaped training step, by hand in numpy and through tinygrad_mlp,
# counted by valgrind (the difference between 10 and 40 steps, so start-up cancels out).
# Usage: bash benchmarks/count_instructions.sh [extra args for steps.py, e.g. --batch 8]
#        bash benchmarks/count_instructions.sh --xor   (the 2-8-1 XOR step, benchmarks/xor_steps.py)
set -euo pipefail
cd "$(dirname "$0")/.."
export OPENBLAS_NUM_THREADS=1
export PYTHONHASHSEED=0  # string hashes, and with them dict and set layouts, the same every run
py=$(python3 -c 'import sys; print(sys.executable)')
count() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$py" benchmarks/steps.py "$@" 2>&1 |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
if [ "${1:-}" = "--xor" ]; then  # the 2-8-1 XOR step, fused (seq) and op by op (ops)
    for kind in seq ops; do
        a=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$py" \
            benchmarks/xor_steps.py 50 "$kind" 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p')
        b=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$py" \
            benchmarks/xor_steps.py 250 "$kind" 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p')
        echo "xor $kind: $(((b - a) / 200)) instructions per step"
    done
    exit 0
fi
for mode in hand tiny module; do
    a=$(count "$mode" 10 "${@}")
    b=$(count "$mode" 40 "${@}")
    echo "$mode: $(((b - a) / 30)) instructions per step"
done
