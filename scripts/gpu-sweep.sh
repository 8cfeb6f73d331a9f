#!/usr/bin/env bash
# On a 4-GPU device host: runs what fits of the PD-vs-agg experiment (issue 7,
# examples/experiments/pd-vs-agg.yaml, or the one EXPERIMENT=FILE names) in
# one device call, resuming where the last call stopped. Expects .gpu-carry/ (scripts/gpu-build.sh, with the Llama-3
# tokenizer files in .gpu-carry/tokenizer-llama3/).
#   bash scripts/gpu-sweep.sh [SECONDS] [sweep flags: --deployments A,B --workloads X,Y]
#   (env: EXPERIMENT=FILE, MARGIN=S, FRESH=1, TCP_CHECK=1; see below)
# SECONDS (default 540) bounds the whole script: the sweep starts no trial late
# enough to overrun it, and a watchdog interrupts it (finished trials are kept)
# so that the results always come back. The sweep folder lives in
# /tmp/baton-sweep-NAME on the host, kept while the machine stays warm; on a
# fresh host it starts from docs/results/NAME of the tree (NAME: the
# experiment file's name), or empty with FRESH=1. At the end the folder
# comes back as $OUT/sweep.tgz (untar it into docs/results/NAME).
set -uo pipefail
cd "$(dirname "$0")/.."
LIMIT=${1:-540}
shift || true
FINAL=${OUT:-/tmp/baton-gpu-sweep-out}
mkdir -p "$FINAL"
source scripts/gpu-env.sh
B="$PWD/.gpu-carry/bin/baton"
EXPERIMENT=${EXPERIMENT:-examples/experiments/pd-vs-agg.yaml}
NAME=$(basename "$EXPERIMENT" .yaml)
SWEEP=/tmp/baton-sweep-$NAME
RESULTS=docs/results/$NAME

# FRESH=1: start from nothing (no earlier results), so that every result of
# this experiment comes from this host's cards.
if [ "${FRESH:-0}" = 1 ]; then rm -rf "$SWEEP"; mkdir -p "$SWEEP"; echo "fresh sweep folder (FRESH=1)"; fi
if [ ! -d "$SWEEP" ]; then
  mkdir -p "$SWEEP"
  [ -d "$RESULTS" ] && cp -r "$RESULTS/." "$SWEEP/"
  echo "fresh host: sweep folder seeded from $RESULTS"
fi
nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv | tee "$FINAL/gpus.csv"
nvidia-smi topo -m > "$FINAL/topo.txt" 2>&1 || true

ensure_gpu_model "$B" "$FINAL" || exit 1

# TCP_CHECK=1: before the sweep, the tcp transport with GPU KV on its own:
# its GPU tests and bench-transfer (tcp and cuda_ipc GB/s against the
# loopback-TCP and peer-copy ceilings measured in the same run), ~1 min.
if [ "${TCP_CHECK:-0}" = 1 ]; then
  echo "== tcp check ($SECONDS s)"
  if [ ! -e /work/main/tests/data ]; then mkdir -p /work && ln -sfn "$PWD" /work/main; fi
  timeout 120 .gpu-carry/bin/test_backend_cuda --gtest_filter='CudaTcpStaging*' > "$FINAL/test-tcp-staging.log" 2>&1
  echo "CudaTcpStaging tests: exit $?"; grep -E "^\[  (PASSED|FAILED) |Failure" "$FINAL/test-tcp-staging.log" | head
  timeout 180 "$B" bench-transfer --device cuda --tokens 1024,8192 --transports cuda_ipc,tcp \
      --json "$FINAL/bench-transfer-cuda.json" > "$FINAL/bench-transfer-cuda.log" 2>&1
  echo "bench-transfer: exit $?"; grep -E "^(transport|cuda_ipc|tcp)|pinned|ceiling" "$FINAL/bench-transfer-cuda.log" | head -20
  timeout 120 "$B" bench-transfer --device cuda --tokens 8192 --transports tcp --tcp-streams 1 \
      --json "$FINAL/bench-transfer-cuda-tcp1.json" > "$FINAL/bench-transfer-cuda-tcp1.log" 2>&1
  echo "bench-transfer, one tcp stream: exit $?"; grep -E "^tcp" "$FINAL/bench-transfer-cuda-tcp1.log" | head -4
fi

"$B" sweep "$EXPERIMENT" --out "$SWEEP" --plan "$@" 2>&1 | tail -n 40
# The sweep starts no trial after its budget: MARGIN (default 90 s) leaves
# room for the last one to finish (long-output trials need ~130).
budget=$((LIMIT - SECONDS - ${MARGIN:-90}))
if [ "$budget" -gt 30 ]; then
  echo "== sweep ($SECONDS s; budget ${budget} s)"
  "$B" sweep "$EXPERIMENT" --out "$SWEEP" --resume --time-budget-s "$budget" "$@" > "$FINAL/sweep.log" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2> /dev/null && [ "$SECONDS" -lt $((LIMIT - 25)) ]; do sleep 2; done
  if kill -0 "$pid" 2> /dev/null; then
    echo "watchdog: interrupting the sweep at $SECONDS s"
    kill -TERM "$pid"
    for _ in $(seq 1 12); do kill -0 "$pid" 2> /dev/null || break; sleep 1; done
    kill -KILL "$pid" 2> /dev/null
  fi
  wait "$pid"
  echo "sweep exit $? ($SECONDS s)"
  grep -E "^(---|===)|max sustainable|FAIL|PASS|ERROR|error" "$FINAL/sweep.log" | tail -n 60
fi
"$B" sweep "$EXPERIMENT" --out "$SWEEP" --plan 2>&1 | tail -n 40
tar czf "$FINAL/sweep.tgz" -C "$SWEEP" . && ls -la "$FINAL/sweep.tgz"
