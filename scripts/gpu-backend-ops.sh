#!/usr/bin/env bash
# On a GPU host (the device machine), one call: the backend-ops suite (every
# CUDA op against the CPU over its shape grid, tests/backend_cuda/backend_ops_*),
# then the remaining CUDA tests (model, engine, TCP staging), the attention
# kernels' SASS summary, and optionally a quick profile of llama3.1-8b.
# Expects the bundle scripts/gpu-build.sh makes (.gpu-carry/: bin, lib, data,
# this script); run it from the repository root or from inside the bundle:
#   bash scripts/gpu-backend-ops.sh      or      bash .gpu-carry/gpu-backend-ops.sh
# Results under $OUT (default /tmp/baton-gpu-out; at most 7 files, with gtest
# XML only when BATON_GTEST_XML=1). BATON_GPU_PROFILE=1 adds
# `baton_gpu_profile --models llama3.1-8b --quick` (about a minute). Time limits:
# BATON_SUITE_TIMEOUT (400 s), BATON_TESTS_TIMEOUT (300), BATON_PROFILE_TIMEOUT (150):
# with a kernel that may hang, keep their sum under the device call's limit.
# BATON_TEST_BIN runs another test binary of the bundle (a variant's build).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ -x "$here/bin/test_backend_cuda" ] || [ -n "${BATON_TEST_BIN:-}" ]; then bundle=$here; else bundle=$(cd "$here/.." && pwd)/.gpu-carry; fi
bin=${BATON_TEST_BIN:-$bundle/bin/test_backend_cuda}
[ -x "$bin" ] || { echo "no $bin: run scripts/gpu-build.sh first"; exit 2; }
OUT=${OUT:-/tmp/baton-gpu-out}
mkdir -p "$OUT"
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export LD_LIBRARY_PATH="$bundle/lib:${LD_LIBRARY_PATH:-}"
for lib in libcudart.so.13 libcublasLt.so.13 libnccl.so.2; do
  if ! ldconfig -p | grep -q "$lib"; then
    found=$(find /usr/local /usr/lib /opt -xdev -name "$lib" 2>/dev/null | head -1)
    [ -n "$found" ] && export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$(dirname "$found")"
  fi
done
# The test binary holds the build machine's absolute path to tests/data.
data_path=$(cat "$bundle/test-data-path" 2>/dev/null || true)
if [ -n "$data_path" ] && [ ! -e "$data_path" ]; then
  mkdir -p "$(dirname "$data_path")" && ln -sfn "$bundle/data" "$data_path"
fi
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,driver_version --format=csv | tee "$OUT/gpu.csv"
status=0
suite='Grid/BackendOps.*:BackendOpsList.*'
xml() { [ "${BATON_GTEST_XML:-0}" != 0 ] && echo "--gtest_output=xml:$OUT/$1.xml"; }
echo "== backend-ops suite ($SECONDS s)"
# One process per op, so that a kernel fault (which poisons the CUDA context)
# fails that op's cases and not the rest.
ops="attention_prefill attention_decode embedding add_rmsnorm silu_mul fill_convert qkv_rope_cache gemm gemv gemv_silu_mul
  gemm_row_invariant gemm_buckets moe_topk moe_align moe_route moe_router_route moe_combine_norm grouped_gemm grouped_gemm_wgmma moe_experts moe_skinny sample
  mla_attention_prefill mla_attention_decode mla_prepare mla_q_latent mla_unabsorb mla_split_uk moe_grouped_topk
  mla_expanded_prefill fp8_quantize_groups fp8_linear fp8_gemv_silu_mul gemv_norm_in gemv_residual_add moe_norm_router_route"
[ -n "${BATON_OPS:-}" ] && ops=$BATON_OPS  # a subset, e.g. BATON_OPS="mla_prepare moe_grouped_topk"
: > "$OUT/backend_ops.log"
passed=0 failed=0
for op in $ops; do
  neg=""
  for other in $ops; do  # gemm_* also names gemm_buckets_* and gemm_row_invariant_*
    case $other in "${op}"_*) neg="$neg${neg:+:}Grid/BackendOps.MatchesCpu/${other}_*" ;; esac
  done
  filter="Grid/BackendOps.MatchesCpu/${op}_*${neg:+-$neg}"
  # shellcheck disable=SC2046
  timeout "${BATON_SUITE_TIMEOUT:-400}" "$bin" --gtest_filter="$filter" $(xml "backend_ops_$op") \
    > "$OUT/op.log" 2>&1 || status=1
  p=$(grep -c '^\[       OK \]' "$OUT/op.log")
  ran=$(grep -c '^\[ RUN      \]' "$OUT/op.log")
  passed=$((passed + p)); failed=$((failed + ran - p))
  echo "$op: $p of $ran cases passed"
  grep -E "^\[  FAILED  \] Grid|> tol|check failed" "$OUT/op.log" | head -8
  cat "$OUT/op.log" >> "$OUT/backend_ops.log"
done
rm -f "$OUT/op.log"
"$bin" --gtest_filter='BackendOpsList.*' >> "$OUT/backend_ops.log" 2>&1 || status=1
echo "backend-ops: $passed cases passed, $failed failed"
# The largest error per op and output, from the line each case prints per output
# ("  op [shape] output: metric err (tol t)"), so an op whose process died still counts.
awk '/^  [a-z_]+ \[.*\] [a-z0-9_]+: [a-z0-9_]+ / {
    key = $1 " " substr($(NF - 4), 1, length($(NF - 4)) - 1); e = $(NF - 2)
    v = (e ~ /inf|nan/) ? 1e300 : e + 0; n[key]++
    if (!(key in m) || v > m[key]) { m[key] = v; shown[key] = e; tol[key] = substr($NF, 1, length($NF) - 1); metric[key] = $(NF - 3) }
  }
  END { for (k in m) printf "%-34s %5d cases  %-8s max %-10s tol %s\n", k, n[k], metric[k], shown[k], tol[k] }' \
  "$OUT/backend_ops.log" | sort
echo "== other CUDA tests ($SECONDS s)"
# shellcheck disable=SC2046
timeout "${BATON_TESTS_TIMEOUT:-300}" "$bin" --gtest_filter="-$suite" $(xml test_backend_cuda) > "$OUT/test_backend_cuda.log" 2>&1 || status=1
grep -E "^\[  (FAILED|PASSED) |^\[==========\]|Failure" "$OUT/test_backend_cuda.log" | tail -30
if grep -q "SKIPPED" "$OUT/backend_ops.log" "$OUT/test_backend_cuda.log"; then echo "tests were skipped: no GPU?"; status=1; fi
# Tensor-core instructions and local-memory traffic per attention kernel.
CUOBJDUMP=$(command -v cuobjdump || ls /usr/local/cuda/bin/cuobjdump 2>/dev/null || true)
if [ -n "$CUOBJDUMP" ]; then
  "$CUOBJDUMP" -sass "$bin" 2>/dev/null | awk '
    /Function :/ { if (name != "") print name, "HGMMA", hg, "HMMA", hm, "LDL/STL", lm; name = $3; hg = hm = lm = 0; keep = ($3 ~ /attn/); if (!keep) name = ""; next }
    keep && /HGMMA/ { hg++ } keep && /HMMA/ { hm++ } keep && /(LDL|STL)/ { lm++ }
    END { if (name != "") print name, "HGMMA", hg, "HMMA", hm, "LDL/STL", lm }' > "$OUT/sass-attention.txt" || true
  cat "$OUT/sass-attention.txt"
fi
if [ "${BATON_GPU_PROFILE:-0}" != 0 ] && [ -x "$bundle/bin/baton_gpu_profile" ]; then
  echo "== profile ($SECONDS s)"
  timeout "${BATON_PROFILE_TIMEOUT:-150}" "$bundle/bin/baton_gpu_profile" --models llama3.1-8b --quick \
    --json "$OUT/perf-gpu.json" --md "$OUT/perf-gpu.md" > "$OUT/profile.log" 2>&1 || status=1
  grep -E "^device|^prefill|^decode|attention alone" "$OUT/profile.log" | tail -30
fi
echo "gpu-backend-ops status $status ($SECONDS s)"
exit $status
