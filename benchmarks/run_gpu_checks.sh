#!/usr/bin/env bash
# The GPU checks in one command, for a machine with a CUDA GPU: the CUDA tests
# (tests/pipeline/test_cuda.py: two workers sharing the GPU in fp32 and bf16), then the speed
# figures of `DEVICE=cuda benchmarks/run_speed.sh` (S0 candidates/s with 1 and 8 workers in fp32
# and bf16, peak GPU memory per worker, bf16/fp32 Kendall tau on 200 S2 students), each part under
# a time limit. Every part's output also goes to ${OUT:-gpu-checks}/.
#   benchmarks/run_gpu_checks.sh
#   SPEED_LIMIT=300 GPU_TRIALS=500 benchmarks/run_gpu_checks.sh   # a shorter run
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-checks}
mkdir -p "$out"
python -c "import diswot" 2>/dev/null || pip install -q --no-deps --no-build-isolation -e . >"$out/install.txt" 2>&1
{ nvidia-smi; python -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda, torch.cuda.is_available())"; } \
    2>&1 | tee "$out/device.txt"
timeout "${TEST_LIMIT:-240}" python -m pytest -q -n 0 -m cuda -rs tests/pipeline/test_cuda.py 2>&1 | tee "$out/tests.txt"
tests=${PIPESTATUS[0]}
DEVICE=cuda timeout "${SPEED_LIMIT:-480}" benchmarks/run_speed.sh 2>&1 | tee "$out/speed.txt"
speed=${PIPESTATUS[0]}
echo "cuda tests: exit $tests; speed figures: exit $speed (124: over the time limit)" | tee "$out/status.txt"
[ "$tests" = 0 ] && [ "$speed" = 0 ]
