#!/usr/bin/env bash
# Probes one deployment at fixed rates, with its instances watched: brings up
# SPEC with `baton up`, runs `baton bench BENCH-ARGS` against its router with
# --watch on every instance and the router (each run prints their peak queue,
# batch and KV; the timeline goes to $OUT/bench/metrics.jsonl), then stops it.
# Where a sweep's single trial per rate cannot tell a transient from the limit,
# this repeats rates and shows which instance queued.
#   bash scripts/gpu-probe.sh SPEC [SECONDS] -- BENCH-ARGS...
# e.g. 1P3D on multi-turn (docs/results/pd-vs-agg.md, "What is left"):
#   bash scripts/gpu-probe.sh examples/pd-1p3d.yaml 560 -- --workload multiturn --turns 10 \
#     --think-time-s 0.5 --input-len 128 --output-len 128 --duration-s 20 --warmup-s 6 --threads 4 \
#     --slo "ttft:p90<500ms,tpot:p90<40ms" --sweep 13.125,15,15,17
# On a GPU host it expects .gpu-carry/ (scripts/gpu-build.sh); elsewhere
# BATON=path/to/baton runs it on the CPU (a CPU spec).
set -uo pipefail
cd "$(dirname "$0")/.."
SPEC=$1
shift
LIMIT=540
if [ "${1:-}" != "--" ] && [ -n "${1:-}" ]; then LIMIT=$1; shift; fi
[ "${1:-}" = "--" ] && shift
FINAL=${OUT:-/tmp/baton-gpu-probe-out}
mkdir -p "$FINAL"
if [ -z "${BATON:-}" ]; then
  source scripts/gpu-env.sh
  BATON="$PWD/.gpu-carry/bin/baton"
  nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv | tee "$FINAL/gpus.csv"
  ensure_gpu_model "$BATON" "$FINAL" || exit 1
fi

"$BATON" up "$SPEC" --run-dir "$FINAL/up" > "$FINAL/up.log" 2>&1 &
up=$!
endpoint=""
for _ in $(seq 1 300); do
  endpoint=$(sed -n 's/^endpoint: //p' "$FINAL/up.log" | head -1)
  [ -n "$endpoint" ] && break
  kill -0 "$up" 2> /dev/null || break
  sleep 1
done
if [ -z "$endpoint" ]; then
  echo "the deployment did not come up:"; tail -20 "$FINAL/up.log"
  kill -INT "$up" 2> /dev/null; wait "$up"
  exit 1
fi
# Every instance `baton up` started ("started prefill-0 (pid N) on URL"), then the router.
watch=$(sed -n 's/^baton up: started \([a-z]*-[0-9]*\) (pid [0-9]*) on \(http[^ ]*\).*/\1=\2/p' "$FINAL/up.log" |
  sort -u | paste -sd, -)
watch="$watch,router=$endpoint"
echo "up at $endpoint ($SECONDS s); watching $watch"

timeout $((LIMIT - SECONDS - 20)) "$BATON" bench --url "$endpoint" --no-progress --watch "$watch" \
  --out "$FINAL/bench" "$@" > "$FINAL/bench.log" 2>&1
rc=$?
echo "bench exit $rc ($SECONDS s)"
grep -E "^rate |^  TTFT   |^  TPOT   |^  SLO|^  STOPPED|^  instances|^    [a-z]+-?[0-9]* \(|^    router" "$FINAL/bench.log"
kill -INT "$up" 2> /dev/null
wait "$up"
echo "stopped ($SECONDS s)"
