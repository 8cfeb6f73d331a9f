#!/usr/bin/env bash
# On a GPU host: one device call's steps over a bundle of variant builds, the
# way docs/gpu-notes.md's lab calls are written. The bundle (an ignored folder,
# carried alone) holds bundle.tar.xz as scripts/gpu-build.sh makes it, with one
# binary per variant TAG: bin/test_backend_cuda_TAG and bin/baton_gpu_profile_TAG.
#   bash scripts/gpu-lab-call.sh BUNDLE_DIR STEP...
# Steps run in the order named; each has a time limit, so one that hangs does
# not take the call:
#   ops-TAG  backend-ops over $OPS_TAG (op names), then the other CUDA tests,
#            with TAG's test binary (limits: STIME a op, TTIME_TAG or TTIME)
#   ab_X     scripts/gpu-ab.sh -n $RUNS_X or $RUNS over $VARIANTS_X ("NAME=BINARY ...", no spaces in one),
#            models $ABMODELS_X, batches $ABBATCHES_X or $ABBATCHES, extra
#            profiler arguments $ABEXTRA_X (limit ATIME_X or ATIME)
#   kc       decode kernel costs (--kernel-costs $KCB) of $KCMODELS for each
#            variant in $KCVARIANTS (limit KTIME each)
#   gap      variant v0 over $GAPMODELS (default qwen3-30b-a3b,llama3.1-8b) at
#            batches $GB, with nvidia-smi logging clocks, power and throttle
#            reasons every 100 ms (limit GTIME)
#   profile  issue 18's full profile (docs/perf-gpu.md's command) with variant
#            $PTAG (default v0), its --md and --json in $OUT/perf.md, perf.json;
#            skipped unless the card is an H200 when PH200=1 (limit PTIME)
#   sass     the SASS of $SASSKERNELS (grep patterns, default the one-row GEMVs)
#            in $SASSTAGS' test binaries, when the host has cuobjdump
#   pack     $OUT's logs into one $OUT/lab.tar.xz (a call returns 8 files)
# The bundle unpacks into $BATON_LAB_DIR (default /tmp/b), the folder the
# variants' commands name.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
bundle_dir=${1:?usage: gpu-lab-call.sh BUNDLE_DIR STEP...}
shift
OUT=${OUT:-/tmp/baton-gpu-out}
B=${BATON_LAB_DIR:-/tmp/b}
mkdir -p "$OUT" "$B"
# Unpacked on every call: a warm host may hold an earlier call's bundle.
tar -xJf "$bundle_dir/bundle.tar.xz" -C "$B" || { echo "gpu-lab-call: cannot unpack $bundle_dir/bundle.tar.xz"; exit 2; }
export LD_LIBRARY_PATH="$B/lib:${LD_LIBRARY_PATH:-}"
# NVLink multicast off, and the host's CUDA 13 runtime, cuBLASLt and NCCL on the library path.
# shellcheck source=gpu-env.sh
source scripts/gpu-env.sh
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,driver_version --format=csv,noheader | tee "$OUT/gpu.csv"
var() { local name=$1; echo "${!name:-${2:-}}"; }
status=0
for step in "$@"; do
  echo "== $step ($SECONDS s, $(date -u +%H:%M:%S))"
  case $step in
    ops-*)
      tag=${step#ops-}
      OUT="$OUT/ops-$tag" BATON_TEST_BIN="$B/bin/test_backend_cuda_$tag" BATON_OPS="$(var "OPS_$tag")" \
        BATON_SUITE_TIMEOUT=${STIME:-60} BATON_TESTS_TIMEOUT="$(var "TTIME_$tag" "${TTIME:-120}")" \
        bash "$B/gpu-backend-ops.sh" || status=1
      ;;
    ab_*)
      x=${step#ab_}
      # shellcheck disable=SC2046  # the variants and extra arguments are words
      timeout "$(var "ATIME_$x" "${ATIME:-300}")" bash scripts/gpu-ab.sh -n "$(var "RUNS_$x" "${RUNS:-3}")" $(var "VARIANTS_$x") -- \
        --models "$(var "ABMODELS_$x")" --quick --decode-batches "$(var "ABBATCHES_$x" "${ABBATCHES:-1,2}")" \
        --prefill-tokens 256 $(var "ABEXTRA_$x") || status=1
      [ -d "$OUT/ab" ] && mv "$OUT/ab" "$OUT/ab_$x" && mv "$OUT/ab.txt" "$OUT/ab_$x.txt"
      ;;
    kc)
      for v in ${KCVARIANTS:-v0}; do
        echo "-- $v"
        timeout "${KTIME:-120}" "$B/bin/baton_gpu_profile_$v" --models "${KCMODELS:-llama3.1-8b}" --quick \
          --decode-batches "${KCB:-1}" --kernel-costs "${KCB:-1}" --prefill-tokens 256 \
          --json "$OUT/kc_$v.json" > "$OUT/kc_$v.log" 2>&1 || status=1
        grep -vE "^\s*$" "$OUT/kc_$v.log" | tail -45
      done
      ;;
    gap)
      nvidia-smi --query-gpu=timestamp,clocks.sm,clocks.mem,power.draw,temperature.gpu,clocks_throttle_reasons.active \
        --format=csv -lms 100 > "$OUT/gap-smi.csv" 2>&1 &
      smi=$!
      timeout "${GTIME:-120}" "$B/bin/baton_gpu_profile_v0" --models "${GAPMODELS:-qwen3-30b-a3b,llama3.1-8b}" \
        --quick --decode-batches "${GB:-1,1,2}" --prefill-tokens 256 --json "$OUT/gap.json" > "$OUT/gap.log" 2>&1 ||
        status=1
      kill "$smi" 2>/dev/null
      grep -E "^device|^decode|steps from" "$OUT/gap.log" | head -30
      awk -F', ' 'NR > 1 { n++; sm += $2; p += $4 } END { if (n) printf "smi: %d samples, mean SM clock %.0f MHz, mean power %.0f W\n", n, sm / n, p / n }' \
        "$OUT/gap-smi.csv"
      ;;
    profile)
      if [ "${PH200:-0}" = 1 ] && ! nvidia-smi -L | grep -q H200; then echo "not an H200: no profile"; continue; fi
      timeout "${PTIME:-240}" "$B/bin/baton_gpu_profile_${PTAG:-v0}" --models llama3.1-8b,llama3.1-8b@fp8-block,qwen3-30b-a3b \
        --quick --decode-batches 1,64 --prefill-tokens 8192 --kernel-costs 1 --md "$OUT/perf.md" \
        --json "$OUT/perf.json" > "$OUT/perf.log" 2>&1 || status=1
      grep -E "^device|^decode|^prefill" "$OUT/perf.log"
      ;;
    sass)
      dump=$(command -v cuobjdump || ls /usr/local/cuda*/bin/cuobjdump 2>/dev/null | head -1)
      if [ -z "$dump" ]; then echo "no cuobjdump"; continue; fi
      for t in ${SASSTAGS:-v0}; do
        "$dump" -sass "$B/bin/test_backend_cuda_$t" > "$OUT/sass_all.txt" 2>/dev/null
        # Each matching function's SASS; then, a function a line, its global loads, its
        # FFMAs and how many loads come before its first FFMA.
        awk -v pat="${SASSKERNELS:-residual_add_kernelILb0ELi1ELb1E|kernelILb0ELi1E}" '
          /Function :/ { keep = ($3 ~ pat) } keep' "$OUT/sass_all.txt" > "$OUT/sass_$t.txt"
        rm -f "$OUT/sass_all.txt"
        echo "-- $t: $(grep -c 'Function :' "$OUT/sass_$t.txt") functions"
        awk '/Function :/ { if (f) print f, "LDG", ldg, "FFMA", ffma, "first FFMA after LDG", first; f = $3; ldg = ffma = 0; first = -1; next }
          /LDG/ { ldg++ } /FFMA/ { ffma++; if (first < 0) first = ldg }
          END { if (f) print f, "LDG", ldg, "FFMA", ffma, "first FFMA after LDG", first }' "$OUT/sass_$t.txt" | head -12
      done
      ;;
    pack)
      (cd "$OUT" && find . -mindepth 1 -maxdepth 1 ! -name lab.tar.xz ! -name gpu.csv -print0 |
        xargs -0 tar -cf - | xz -6 > lab.tar.xz && find . -mindepth 1 -maxdepth 1 ! -name lab.tar.xz ! -name gpu.csv \
        -exec rm -rf {} +)
      ls -la "$OUT"
      ;;
    *) echo "gpu-lab-call: unknown step $step"; status=1 ;;
  esac
done
echo "gpu-lab-call status $status ($SECONDS s)"
exit $status
