#!/usr/bin/env bash
# On a host with one GPU (the device machine): FP8 KV over PD (issue 18).
# Llama-3.1-8B-shaped random weights made on the device (--load-format dummy,
# the same seed in every process), --kv-cache-dtype fp8 and --batch-invariant:
#  1. the same greedy requests through agg, through PD over cuda_ipc (prefill
#     and decode as two processes on GPU 0) and through PD over tcp: outputs
#     compared token for token, the decode's KV counters kept;
#  2. a prefill at fp8 with a decode at auto (bf16): the request fails naming
#     both dtypes.
# Expects the bundle scripts/gpu-build.sh makes, extracted to $BUNDLE (default
# .gpu-carry). Results under $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
BUNDLE=${BUNDLE:-$PWD/.gpu-carry}
FINAL=${OUT:-/tmp/baton-gpu-pd-fp8-out}
OUT=/tmp/baton-gpu-pd-fp8-work
rm -rf "$OUT"; mkdir -p "$OUT" "$FINAL"
source scripts/gpu-env.sh
export LD_LIBRARY_PATH="$BUNDLE/lib:$LD_LIBRARY_PATH"
B="$BUNDLE/bin/baton"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.csv"
status=0
# --gpu-memory-utilization counts every process's memory on the card: the
# decode, started beside the prefill, gets its own share on top of the
# prefill's (0.28 of 141 GB each: 16 GB of weights, 3 GB workspace, KV).
ENGINE="--load-format dummy --model llama3.1-8b --device cuda --served-model-name llama --batch-invariant
  --max-num-batched-tokens 4096"

greedy() {  # url, out-file: 4 greedy requests of 37-1500 prompt tokens; their tokens
  : > "$2"
  for seed in 1 2 3 4; do
    python3 - "$1" "$seed" >> "$2" <<'PY'
import json, random, sys, urllib.request, urllib.error
url, seed = sys.argv[1], int(sys.argv[2])
rng = random.Random(seed)
prompt = [rng.randrange(1000, 120000) for _ in range(rng.choice([37, 300, 1500]))]
body = {"model": "llama", "prompt": prompt, "max_tokens": 24, "temperature": 0, "ignore_eos": True, "logprobs": 0}
req = urllib.request.Request(url + "/v1/completions", json.dumps(body).encode(), {"Content-Type": "application/json"})
try:
    out = json.load(urllib.request.urlopen(req, timeout=300))
    c = out["choices"][0]
    print(json.dumps({"seed": seed, "tokens": c["logprobs"]["tokens"], "text": c.get("text"), "usage": out["usage"]}))
except urllib.error.HTTPError as e:
    print(json.dumps({"seed": seed, "http": e.code, "error": e.read().decode()[:400]}))
PY
  done
}
serve() {  # log, flags...: in the background; its pid in $SERVED
  local log=$1; shift
  "$B" serve $ENGINE "$@" > "$OUT/$log.log" 2>&1 &
  SERVED=$!
}
run_pd() {  # label, transport, prefill kv dtype, decode kv dtype
  local P D R
  serve "prefill-$1" --gpu-memory-utilization 0.28 --port 8101 --role prefill --kv-transport "$2" --kv-port 9101 \
    --kv-cache-dtype "$3"
  P=$SERVED
  wait_healthy http://127.0.0.1:8101 120 || status=1
  serve "decode-$1" --gpu-memory-utilization 0.56 --port 8102 --role decode --kv-transport "$2" --kv-port 9102 \
    --kv-cache-dtype "$4"
  D=$SERVED
  "$B" proxy --port 8000 --mode pd --prefill http://127.0.0.1:8101 --decode http://127.0.0.1:8102 \
    > "$OUT/proxy-$1.log" 2>&1 &
  R=$!
  if wait_healthy http://127.0.0.1:8101 120 && wait_healthy http://127.0.0.1:8102 120 && wait_healthy http://127.0.0.1:8000 30; then
    greedy http://127.0.0.1:8000 "$OUT/greedy-$1.jsonl"
    curl -s http://127.0.0.1:8102/metrics | grep -E "^baton:kv_" > "$OUT/decode-kv-metrics-$1.txt"
  else status=1; tail -n 20 "$OUT/prefill-$1.log" "$OUT/decode-$1.log"; fi
  kill -TERM $R $P $D; wait $R $P $D
}

echo "== agg ($SECONDS s)"
serve agg --gpu-memory-utilization 0.28 --port 8100 --kv-cache-dtype fp8
A=$SERVED
if wait_healthy http://127.0.0.1:8100 120; then greedy http://127.0.0.1:8100 "$OUT/greedy-agg.jsonl";
else status=1; tail -n 20 "$OUT/agg.log"; fi
grep -E "KV blocks" "$OUT/agg.log" | head -2
kill -TERM "$A"; wait "$A"
echo "== PD over cuda_ipc ($SECONDS s)"
run_pd cuda_ipc cuda_ipc fp8 fp8
echo "== PD over tcp ($SECONDS s)"
run_pd tcp tcp fp8 fp8
echo "== PD, fp8 prefill and bf16 decode ($SECONDS s)"
run_pd mixed tcp fp8 auto

echo "== compare ($SECONDS s)"
ids() { python3 -c 'import json,sys; [print(json.loads(l).get("tokens"), json.loads(l).get("error", "")[:200]) for l in open(sys.argv[1])]' "$1"; }
for t in cuda_ipc tcp; do
  if [ -s "$OUT/greedy-agg.jsonl" ] && cmp -s <(ids "$OUT/greedy-agg.jsonl") <(ids "$OUT/greedy-$t.jsonl"); then
    echo "PD over $t == agg (4 greedy requests, fp8 KV)"
  else echo "PD over $t differs from agg"; diff <(ids "$OUT/greedy-agg.jsonl") <(ids "$OUT/greedy-$t.jsonl") | head -6; status=1; fi
  cat "$OUT/decode-kv-metrics-$t.txt" 2>/dev/null | head -8
done
echo "mixed dtypes:"; head -c 600 "$OUT/greedy-mixed.jsonl"; echo
grep -q "F8_E4M3" "$OUT/greedy-mixed.jsonl" || { echo "the mixed pair was not refused naming the dtypes"; status=1; }
cp "$OUT"/*.jsonl "$OUT"/decode-kv-metrics-*.txt "$OUT"/gpu.csv "$FINAL"/ 2>/dev/null
tar czf "$FINAL/logs.tgz" -C "$OUT" $(cd "$OUT" && ls *.log)
echo "gpu-pd-fp8-check status $status ($SECONDS s)"
exit $status
