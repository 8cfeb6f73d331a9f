#!/usr/bin/env bash
# On one GPU (the device machine): unloaded TTFT of an 8,192-token prompt,
# agg against PD with the whole-prompt pull and PD with streamed KV
# (docs/pd.md, "Streamed KV"); examples/pd-stream-ttft.py plays the router,
# so that the three paths differ only in how the KV moves. Three instances
# share the card (agg; prefill and decode over cuda_ipc, or $TRANSPORT), the
# same chunked-prefill budget for all. Expects the baton binary in
# $BATON_GPU_CARRY/bin (scripts/gpu-build.sh). Results under $OUT.
#   TRANSPORT (cuda_ipc), CHUNK (2048: --max-num-batched-tokens), REPS (7)
set -uo pipefail
cd "$(dirname "$0")/.."
CARRY=${BATON_GPU_CARRY:-.gpu-carry}
FINAL=${OUT:-/tmp/baton-pd-stream-out}
mkdir -p "$FINAL"
source scripts/gpu-env.sh
export LD_LIBRARY_PATH="$PWD/$CARRY/lib:$LD_LIBRARY_PATH"
B="$PWD/$CARRY/bin/baton"
TRANSPORT=${TRANSPORT:-cuda_ipc}
CHUNK=${CHUNK:-2048}
REPS=${REPS:-7}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$FINAL/gpu.txt"
MODEL=/tmp/llama3.1-8b
echo "== model ($SECONDS s)"
"$B" init-model --preset llama3.1-8b --out "$MODEL" --seed 0 > "$FINAL/init-model.log" 2>&1 ||
  { tail "$FINAL/init-model.log"; exit 1; }
ENGINE="--model $MODEL --device cuda --served-model-name m --max-num-batched-tokens $CHUNK"
pids=()
serve() {  # port, log, extra...
  local port=$1 log=$2
  shift 2
  "$B" serve $ENGINE --port "$port" "$@" > "$FINAL/$log.log" 2>&1 &
  pids+=($!)
}
echo "== serve ($SECONDS s)"
# --gpu-memory-utilization counts the memory the instances started before it
# hold (as vLLM does): each takes about 0.3 of the card.
serve 8100 agg --gpu-memory-utilization 0.3
wait_healthy http://127.0.0.1:8100 || exit 1
serve 8101 prefill --gpu-memory-utilization 0.6 --role prefill --kv-transport "$TRANSPORT" --kv-port 9101
wait_healthy http://127.0.0.1:8101 || exit 1
serve 8102 decode --gpu-memory-utilization 0.9 --role decode --kv-transport "$TRANSPORT"
wait_healthy http://127.0.0.1:8102 || exit 1
echo "== ttft ($SECONDS s)"
python3 examples/pd-stream-ttft.py --agg http://127.0.0.1:8100 --prefill http://127.0.0.1:8101 \
  --decode http://127.0.0.1:8102 --prompt-tokens 8192 --vocab 128000 --reps "$REPS" --warmup 1 \
  | tee "$FINAL/ttft-$TRANSPORT.json"
status=${PIPESTATUS[0]}
kill "${pids[@]}" 2>/dev/null
wait
echo "== done ($SECONDS s)"
exit "$status"
