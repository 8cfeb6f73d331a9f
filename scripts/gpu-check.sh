#!/usr/bin/env bash
# On a GPU host (the device machine): runs every CUDA test (the backend-ops
# suite among them; scripts/gpu-backend-ops.sh runs the tests alone) and the
# GPU benchmark in one go and writes the results under $OUT (default
# /tmp/baton-gpu-out). Expects .gpu-carry/ from scripts/gpu-build.sh.
#   BATON_GPU_TESTS=0 skips the tests, BATON_GPU_PROFILE=0 the benchmark;
#   BATON_GTEST_FILTER narrows the tests; BATON_PROFILE_ARGS adds profiler flags.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/baton-gpu-out}
mkdir -p "$OUT"
source scripts/gpu-env.sh
# The test binaries hold the build machine's absolute path to tests/data.
if [ ! -e /work/main/tests/data ]; then mkdir -p /work && ln -sfn "$PWD" /work/main; fi
status=0
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,clocks.max.mem,driver_version --format=csv > "$OUT/gpu.csv" 2>&1
cat "$OUT/gpu.csv"
if [ "${BATON_GPU_TESTS:-1}" != 0 ]; then
  timeout 1200 .gpu-carry/bin/test_backend_cuda \
      --gtest_filter="${BATON_GTEST_FILTER:-*}" \
      --gtest_output=xml:"$OUT/test_backend_cuda.xml" > "$OUT/test_backend_cuda.log" 2>&1 || status=1
  grep -E "^\[  (FAILED|PASSED|SKIPPED) |^\[==========\]|Failure|> tol" "$OUT/test_backend_cuda.log" | tail -60
  sed -n '/^backend-ops: largest error/,$p' "$OUT/test_backend_cuda.log"
  if grep -q "SKIPPED" "$OUT/test_backend_cuda.log"; then echo "tests were skipped: no GPU?"; status=1; fi
fi
# What the compiler made of the attention kernels (the build machine may lack cuobjdump):
# tensor-core instructions and local-memory traffic per kernel, in $OUT/sass-attention.txt.
CUOBJDUMP=$(command -v cuobjdump || ls /usr/local/cuda/bin/cuobjdump 2>/dev/null || true)
if [ -n "$CUOBJDUMP" ]; then
  "$CUOBJDUMP" -sass .gpu-carry/bin/test_backend_cuda 2>/dev/null | awk '
    /Function :/ { if (name != "") print name, "HGMMA", hg, "HMMA", hm, "LDL/STL", lm; name = $3; hg = hm = lm = 0; keep = ($3 ~ /attn/) ; if (!keep) name = ""; next }
    keep && /HGMMA/ { hg++ } keep && /HMMA/ { hm++ } keep && /(LDL|STL)/ { lm++ }
    END { if (name != "") print name, "HGMMA", hg, "HMMA", hm, "LDL/STL", lm }' > "$OUT/sass-attention.txt" || true
  cat "$OUT/sass-attention.txt"
fi
if [ "${BATON_GPU_PROFILE:-1}" != 0 ]; then
  # shellcheck disable=SC2086
  timeout 1200 .gpu-carry/bin/baton_gpu_profile --json "$OUT/perf-gpu.json" --md "$OUT/perf-gpu.md" \
      ${BATON_PROFILE_ARGS:-} \
      > "$OUT/profile.log" 2>&1 || status=1
  tail -50 "$OUT/profile.log"
fi
echo "gpu-check status $status"
exit $status
