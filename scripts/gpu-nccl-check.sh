#!/usr/bin/env bash
# On a GPU host (the device machine), one call: the CUDA tensor-parallel tests
# (tests/backend_cuda/cuda_tensor_parallel_test.cpp: NCCL with one rank
# against the plain backend, several host-staged ranks on the one GPU against
# TP=1) and the model tests, then `baton_gpu_profile` of llama3.1-8b at
# --tensor-parallel-size ${BATON_TP:-1} (step times, the NCCL all-reduce's bus
# bandwidth; compare with docs/results/pd-vs-agg/profiles/h200-llama3.1-8b.json).
# Expects the bundle of scripts/gpu-build.sh unpacked at $1 (default
# .gpu-carry), and gpu-env.sh beside this script. Results under $OUT.
set -uo pipefail
bundle=$(cd "${1:-.gpu-carry}" && pwd)
OUT=${OUT:-/tmp/baton-gpu-out}
mkdir -p "$OUT"
# NVLink multicast off; the host's CUDA runtime, cuBLASLt and NCCL on the path.
source "$(dirname "$0")/gpu-env.sh"
export LD_LIBRARY_PATH="$bundle/lib:$LD_LIBRARY_PATH"
data_path=$(cat "$bundle/test-data-path" 2>/dev/null || true)
if [ -n "$data_path" ] && [ ! -e "$data_path" ]; then
  mkdir -p "$(dirname "$data_path")" && ln -sfn "$bundle/data" "$data_path"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.csv"
status=0
echo "== tests ($SECONDS s)"
timeout "${BATON_TESTS_TIMEOUT:-240}" "$bundle/bin/test_backend_cuda" \
  --gtest_filter="${BATON_GTEST_FILTER:-NcclCommunicator.*:*CudaTensorParallel*:*CudaModel*}" \
  > "$OUT/tests.log" 2>&1 || status=1
grep -E "^\[  (FAILED|PASSED|SKIPPED) |^\[       OK|^\[==========\]|Failure|Expected|Which is|actual|rel_l2|NCCL" \
  "$OUT/tests.log" | head -80
if [ "${BATON_GPU_PROFILE:-1}" != 0 ]; then
  echo "== profile ($SECONDS s)"
  # shellcheck disable=SC2086
  timeout "${BATON_PROFILE_TIMEOUT:-200}" "$bundle/bin/baton_gpu_profile" --models llama3.1-8b \
    --tensor-parallel-size "${BATON_TP:-1}" ${BATON_PROFILE_ARGS:---decode-batches 1,8,64 --prefill-tokens 512,8192} \
    --json "$OUT/perf-gpu-tp.json" --md "$OUT/perf-gpu-tp.md" > "$OUT/profile.log" 2>&1 || status=1
  grep -E "^device|^all-reduce|^prefill|^decode|attention alone|rror" "$OUT/profile.log" | tail -30
fi
echo "gpu-nccl-check status $status ($SECONDS s)"
exit $status
