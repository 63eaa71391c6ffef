#!/usr/bin/env bash
# Issue 6's figures in one command (see BENCHMARKS.md):
#   scoring cost against the naive pattern and a forward pass (S0, NB201, S2-CIFAR), S2-ImageNet
#   peak memory, the end-to-end S1 search, the sampler's overhead (memory, SQLite) and, on CUDA,
#   reduced precision.
#   benchmarks/run_speed.sh                 # CPU, one thread per process
#   DEVICE=cuda benchmarks/run_speed.sh     # the GPU path
#   E2E_TRIALS=500 benchmarks/run_speed.sh  # a shorter end-to-end search
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICE=${DEVICE:-cpu}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
python benchmarks/bench_scoring.py --device "$DEVICE" --settings s0,nb201,s2-cifar --students 20 \
    --naive-students 10 --memory-students 3 --e2e-trials "${E2E_TRIALS:-5000}"
python benchmarks/bench_sampler_overhead.py --trials 100,1000,5000 --storages memory,sqlite
if [ "$DEVICE" != cpu ]; then
  python benchmarks/bench_precision.py --space s2-cifar --students 200 --precision bf16 --device "$DEVICE"
  python benchmarks/bench_precision.py --space s2-cifar --students 200 --precision tf32 --device "$DEVICE"
fi
