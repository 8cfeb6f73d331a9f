#!/usr/bin/env bash
# On a GPU host: times GPU profiler variants against each other in one call.
# The variants run alternately, run after run, so each row of the table
# compares like with like (device calls differ by card and by minute; a
# figure is compared only with figures of the same call). Every second round
# runs them in reverse order, so no variant always runs first: in session
# 18's calls the first of a round was sometimes 1-2% slower at prefill.
# Prints, for each decode and prefill row, every variant's times and the
# ratio of its median to the first variant's, and writes it to $OUT/ab.txt
# with the runs' JSON under $OUT/ab/.
#   bash scripts/gpu-ab.sh [-n RUNS] NAME=COMMAND... [-- PROFILER_ARGS...]
# COMMAND is a profiler binary, with environment settings before it when a
# variant is a temporary switch, e.g.
#   bash scripts/gpu-ab.sh -n 3 base=/tmp/b/bin/prof_base \
#     'new=env BATON_X=1 /tmp/b/bin/baton_gpu_profile' -- --models llama3.1-8b --quick
# PROFILER_ARGS default to decode at batch 1, 2 and 64 of Llama-3.1-8B (bf16
# and FP8) and Qwen3-30B-A3B, with a short prefill. The profilers' libraries
# must be on LD_LIBRARY_PATH (the bundle's lib/ from scripts/gpu-build.sh).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
OUT=${OUT:-/tmp/baton-gpu-out}
export NCCL_NVLS_ENABLE=0  # always, on these hosts; the carried libraries must be on LD_LIBRARY_PATH already
runs=2
if [ "${1:-}" = -n ]; then runs=${2:-}; shift $(($# < 2 ? $# : 2)); fi
if ! [[ $runs =~ ^[1-9][0-9]{0,2}$ ]]; then
  echo "gpu-ab: -n takes a run count from 1 to 999, not '$runs'" >&2
  exit 2
fi
names=() cmds=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do
  case $1 in
    *=*) names+=("${1%%=*}"); cmds+=("${1#*=}") ;;
    *) echo "gpu-ab: '$1' is not NAME=COMMAND" >&2; exit 2 ;;
  esac
  shift
done
[ "${1:-}" = -- ] && shift
args=("$@")
# shellcheck disable=SC2054  # the commas are in the model list
[ ${#args[@]} -eq 0 ] && args=(--models llama3.1-8b,llama3.1-8b@fp8-block,qwen3-30b-a3b --quick
  --decode-batches 1,2,64 --prefill-tokens 256)
if [ ${#names[@]} -lt 2 ]; then
  echo "gpu-ab: give at least two variants, NAME=COMMAND" >&2
  exit 2
fi
mkdir -p "$OUT/ab"
status=0
for ((r = 1; r <= runs; ++r)); do
  order=("${!names[@]}")
  if ((r % 2 == 0)); then
    order=()
    for ((i = ${#names[@]} - 1; i >= 0; --i)); do order+=("$i"); done
  fi
  for i in "${order[@]}"; do
    json="$OUT/ab/${names[$i]}_$r.json"
    # shellcheck disable=SC2086  # COMMAND is words: env settings, then the binary
    if ! ${cmds[$i]} "${args[@]}" --json "$json" > "$OUT/ab/${names[$i]}_$r.log" 2>&1; then
      echo "gpu-ab: ${names[$i]} run $r failed:" >&2
      tail -5 "$OUT/ab/${names[$i]}_$r.log" >&2
      status=1
    fi
  done
done
python3 scripts/profile-ab.py "$OUT/ab" "$runs" "${names[@]}" | tee "$OUT/ab.txt" || status=1
exit $status
