#!/usr/bin/env bash
# On a host with two GPUs (the device machine): PD over cuda_ipc against agg.
#  1. cuda_ipc KV transfer between GPU 0 and GPU 1 (Llama-3.1-8B shape) against
#     the measured peer-copy bandwidth (baton bench-transfer --device cuda);
#  2. the same greedy requests through agg (GPU 0) and through PD (prefill on
#     GPU 0, decode on GPU 1, baton proxy): outputs compared token for token;
#  3. TTFT of an 8,192-token prompt at low load, agg against PD.
# Expects .gpu-carry/ (scripts/gpu-build.sh with the baton binary) and the
# Llama-3 tokenizer files in .gpu-carry/tokenizer-llama3/. Results under $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
FINAL=${OUT:-/tmp/baton-gpu-pd-out}
OUT=/tmp/baton-gpu-pd-work
rm -rf "$OUT"; mkdir -p "$OUT" "$FINAL"
source scripts/gpu-env.sh
B="$PWD/.gpu-carry/bin/baton"
nvidia-smi --query-gpu=index,name,memory.total --format=csv | tee "$OUT/gpus.csv"
nvidia-smi topo -m > "$OUT/topo.txt" 2>&1 || true
status=0

echo "== 1. cuda_ipc transfer"
"$B" bench-transfer --device cuda --tokens 1024 4096 16384 --json "$OUT/bench-transfer-cuda.json" \
  2>&1 | tee "$OUT/bench-transfer-cuda.log" | tail -15 || status=1

echo "== model"
MODEL=/tmp/llama3.1-8b
"$B" init-model --preset llama3.1-8b --out "$MODEL" --seed 0 --tokenizer .gpu-carry/tokenizer-llama3 \
  > "$OUT/init-model.log" 2>&1 || { echo "init-model failed"; tail "$OUT/init-model.log"; exit 1; }

ENGINE="--model $MODEL --device cuda --served-model-name llama --max-num-batched-tokens 8192 --gpu-memory-utilization 0.85"
greedy() {  # url, out-file: 4 greedy requests, token ids via logprobs
  : > "$2"
  for seed in 1 2 3 4; do
    python3 - "$1" "$seed" >> "$2" <<'PY'
import json, random, sys, urllib.request
url, seed = sys.argv[1], int(sys.argv[2])
rng = random.Random(seed)
prompt = [rng.randrange(1000, 120000) for _ in range(rng.choice([37, 300, 1500, 4000]))]
body = {"model": "llama", "prompt": prompt, "max_tokens": 24, "temperature": 0, "ignore_eos": True, "logprobs": 0}
req = urllib.request.Request(url + "/v1/completions", json.dumps(body).encode(), {"Content-Type": "application/json"})
out = json.load(urllib.request.urlopen(req, timeout=300))
print(json.dumps({"seed": seed, "text": out["choices"][0]["text"], "usage": out["usage"]}))
PY
  done
}
ttft() {  # url, label
  "$B" bench --url "$1" --model llama --workload random --input-len 8192 --output-len 16 --rate 0.25 \
    --arrival constant --num-requests 6 --warmup 1 --max-concurrency 1 --vocab-size 120000 --seed 7 \
    --label "$2" --out "$OUT/ttft-$2" --no-progress > "$OUT/ttft-$2.log" 2>&1 || status=1
  cp "$OUT/ttft-$2/runs.csv" "$OUT/runs-$2.csv" 2>/dev/null
  python3 - "$OUT/ttft-$2/runs.csv" "$2" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
for r in rows:
    print(sys.argv[2], "TTFT ms: mean", r.get("ttft_mean_ms"), "p50", r.get("ttft_p50_ms"), "p90", r.get("ttft_p90_ms"))
PY
}

run_agg() {  # phase, extra engine flags
  CUDA_VISIBLE_DEVICES=0 "$B" serve $ENGINE $2 --port 8100 > "$OUT/agg-$1.log" 2>&1 &
  local AGG=$!
  if wait_healthy http://127.0.0.1:8100 300; then
    if [ "$1" = same ]; then greedy http://127.0.0.1:8100 "$OUT/greedy-agg.jsonl"; else ttft http://127.0.0.1:8100 agg; fi
  else status=1; tail -n 20 "$OUT/agg-$1.log"; fi
  kill -TERM $AGG; wait $AGG
}
run_pd() {  # phase, extra engine flags
  CUDA_VISIBLE_DEVICES=0 "$B" serve $ENGINE $2 --port 8101 --role prefill --kv-transport cuda_ipc --kv-port 9101 > "$OUT/prefill-$1.log" 2>&1 &
  local P=$!
  CUDA_VISIBLE_DEVICES=1 "$B" serve $ENGINE $2 --port 8102 --role decode --kv-transport cuda_ipc --kv-port 9102 > "$OUT/decode-$1.log" 2>&1 &
  local D=$!
  "$B" proxy --port 8000 --mode pd --prefill http://127.0.0.1:8101 --decode http://127.0.0.1:8102 > "$OUT/proxy-$1.log" 2>&1 &
  local R=$!
  if wait_healthy http://127.0.0.1:8101 300 && wait_healthy http://127.0.0.1:8102 300 && wait_healthy http://127.0.0.1:8000 30; then
    if [ "$1" = same ]; then greedy http://127.0.0.1:8000 "$OUT/greedy-pd.jsonl"; else ttft http://127.0.0.1:8000 pd; fi
    curl -s http://127.0.0.1:8102/metrics | grep -E "^baton:kv_" > "$OUT/decode-kv-metrics-$1.txt"
  else status=1; tail -n 20 "$OUT/prefill-$1.log" "$OUT/decode-$1.log"; fi
  kill -TERM $R $P $D; wait $R $P $D
}
echo "== 2. same output: agg (GPU 0) vs PD (prefill GPU 0, decode GPU 1, cuda_ipc), --batch-invariant"
run_agg same --batch-invariant
run_pd same --batch-invariant
echo "== 3. TTFT of an 8,192-token prompt at low load (default fast path)"
run_agg ttft ""
run_pd ttft ""

echo "== compare"
if cmp -s "$OUT/greedy-agg.jsonl" "$OUT/greedy-pd.jsonl"; then echo "PD output == agg output (4 greedy requests)"; else
  echo "PD output differs from agg"; diff "$OUT/greedy-agg.jsonl" "$OUT/greedy-pd.jsonl" | head -10; status=1; fi
{ cat "$OUT/gpus.csv"; grep -E "^(cuda_ipc|tcp)|transport|pinned" "$OUT/bench-transfer-cuda.log"; cat "$OUT"/runs-*.csv; } > "$OUT/summary.txt" 2>&1
tar czf "$OUT/logs.tgz" -C "$OUT" $(cd "$OUT" && ls *.log topo.txt 2>/dev/null)
cp "$OUT"/summary.txt "$OUT"/bench-transfer-cuda.json "$OUT"/greedy-*.jsonl "$OUT"/runs-*.csv "$OUT"/decode-kv-metrics-same.txt "$OUT"/logs.tgz "$FINAL"/ 2>/dev/null
echo "gpu-pd-check status $status"
exit $status
