#!/usr/bin/env bash
# The speed figures in one command (see BENCHMARKS.md):
#   scoring cost against the naive pattern and a forward pass (S0, NB201, S2-CIFAR), S2-ImageNet
#   peak memory, the end-to-end S1 search, the sampler's overhead (memory, SQLite; CPU only), a
#   trial's split between scoring and the rest (SQLite, journal), and the GPU rows: S0
#   candidates/s with 1 and 8 workers in fp32 and bf16, peak GPU memory per worker, Kendall tau
#   of bf16 against fp32 (on the CPU they print as not measured).
#   benchmarks/run_speed.sh                 # CPU, one thread per process
#   DEVICE=cuda benchmarks/run_speed.sh     # the GPU path (about 6 minutes on one H100)
#   E2E_TRIALS=500 benchmarks/run_speed.sh  # a shorter end-to-end search
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICE=${DEVICE:-cpu}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
if [ "$DEVICE" = cpu ]; then E2E_DEFAULT=5000; else E2E_DEFAULT=500; fi
python benchmarks/bench_scoring.py --device "$DEVICE" --settings s0,nb201,s2-cifar --students 20 \
    --naive-students 10 --memory-students 3 --e2e-trials "${E2E_TRIALS:-$E2E_DEFAULT}"
if [ "$DEVICE" = cpu ]; then
  python benchmarks/bench_sampler_overhead.py --trials 100,1000,5000 --storages memory,sqlite
fi
python benchmarks/bench_trial_split.py --device "$DEVICE" --storages "${SPLIT_STORAGES:-sqlite,journal}" \
    --trials "${SPLIT_TRIALS:-100}" --window "${SPLIT_TRIALS:-100}"
python benchmarks/bench_gpu_search.py --workers "1,${GPU_WORKERS:-8}" --trials "${GPU_TRIALS:-1000}"
if [ "$DEVICE" != cpu ]; then
  python benchmarks/bench_precision.py --space s2-cifar --students 200 --precision bf16 --device "$DEVICE"
  python benchmarks/bench_precision.py --space s2-cifar --students 200 --precision tf32 --device "$DEVICE"
else
  echo "Kendall tau fp32 vs bf16, 200 S2 students: not measured (no CUDA GPU)"
fi
