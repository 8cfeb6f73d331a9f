#!/usr/bin/env bash
# On one H200 (the device machine): the measurements `baton plan --validate`
# lacks (issue 20, docs/planner.md "Validation"), about 4 minutes (estimated):
#  1. the kernel profile (baton_gpu_profile --quick, Llama-3.1-8B shape,
#     random weights) at decode context 1024 (the sweep's profile again, with
#     prefill at 1024 and 4096 tokens too, and steps of mixed shape: a decode
#     batch beside a prompt's chunk, a chunk after 7K of context, as an agg
#     instance runs them), 4096 and 8192: decode attention by context, which
#     one context cannot separate from the sequence count;
#  2. a served instance's prefill throughput at saturation (`baton serve` on
#     the GPU, `baton bench` of 1-token answers far above its capacity, the
#     sweep's engine arguments): prompts of 1024, 2048 and 8192 tokens, eight,
#     four and one of them a step at the 8192-token budget. Against the
#     profile's steps it gives the per-request work (HTTP, the engine's host
#     work per request) that the kernel profile does not see;
#  3. one profile document, $OUT/h200-llama3.1-8b.json: the context-1024
#     profile with the other contexts' decode rows and the served rows
#     (models[].served_prefill[]: prompt_tokens, batch, requests_per_s) added,
#     for docs/results/pd-vs-agg/profiles/ (it replaces the one there).
# Runs from the bundle scripts/gpu-build.sh makes, extracted to $BUNDLE
# (default /tmp/b: $BUNDLE/bin/baton, $BUNDLE/bin/baton_gpu_profile, the
# libraries in $BUNDLE/lib). Everything goes to $OUT: a log per step, the
# raw profiles, the bench folders, the combined profile and summary.txt.
#   BUNDLE=/tmp/b OUT=$OUT/plan bash scripts/gpu-plan-measure.sh
set -euo pipefail
BUNDLE=${BUNDLE:-/tmp/b}
OUT=${OUT:-/tmp/baton-gpu-plan-out}
mkdir -p "$OUT"
export LD_LIBRARY_PATH="$BUNDLE/lib:${LD_LIBRARY_PATH:-}"
export NCCL_NVLS_ENABLE=0
B="$BUNDLE/bin/baton"
P="$BUNDLE/bin/baton_gpu_profile"
for bin in "$B" "$P"; do
  [ -x "$bin" ] || { echo "no $bin: extract the GPU bundle (scripts/gpu-build.sh) to \$BUNDLE ($BUNDLE)"; exit 1; }
done
PORT=8100
SERVED=""
cleanup() { [ -n "$SERVED" ] && kill -TERM "$SERVED" 2>/dev/null && wait "$SERVED" 2>/dev/null || true; }
trap cleanup EXIT

wait_healthy() {  # url, seconds
  for _ in $(seq 1 "$2"); do
    curl -sf "$1/health" > /dev/null 2>&1 && return 0
    sleep 1
  done
  echo "not healthy: $1"; return 1
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.csv"

echo "== 1. kernel profiles ($SECONDS s)"
profile() {  # context, decode batches, prefill tokens, more flags
  timeout 150 "$P" --models llama3.1-8b --quick --decode-context "$1" --decode-batches "$2" --prefill-tokens "$3" \
    "${@:4}" --json "$OUT/profile-ctx$1.json" > "$OUT/profile-ctx$1.log" 2>&1 \
    || { echo "profile at context $1 failed"; tail -n 20 "$OUT/profile-ctx$1.log"; exit 1; }
  grep -E "^decode|^prefill|^mixed" "$OUT/profile-ctx$1.log" | head -30 || true
}
# Mixed steps, DECODES:CONTEXT:CHUNK:CHUNK_CONTEXT: long-in-short-out's agg
# steps (decodes at 8K beside an 8K prompt's first chunk or its tail) and
# short-output's (decodes at 1K beside 1-7K prompt tokens), and chunks after
# context alone.
MIXED=32:8192:8160:0,64:8192:8128:0,32:8192:512:7680,16:1024:4096:0,64:1024:1024:0,128:1024:1024:0
MIXED=$MIXED,32:1024:7168:0,0:0:1024:7168,0:0:4096:4096
profile 1024 1,8,32,64,128,256 512,1024,2048,4096,8192,16384 --mixed-steps "$MIXED"
profile 4096 1,8,32,64,128 1024
profile 8192 1,8,32,64 1024

echo "== 2. served prefill at saturation ($SECONDS s)"
"$B" serve --load-format dummy --model llama3.1-8b --device cuda --served-model-name llama --port "$PORT" \
  --max-num-seqs 256 --max-num-batched-tokens 8192 --max-model-len 16384 --gpu-memory-utilization 0.9 \
  > "$OUT/serve.log" 2>&1 &
SERVED=$!
wait_healthy "http://127.0.0.1:$PORT" 240 || { tail -n 30 "$OUT/serve.log"; exit 1; }
served() {  # prompt tokens, rate (about twice what one GPU takes), requests
  timeout 120 "$B" bench --url "http://127.0.0.1:$PORT" --model llama --workload random --input-len "$1" \
    --output-len 1 --rate "$2" --num-requests "$3" --warmup 20 --seed 7 --vocab-size 128256 --timeout-s 100 \
    --label "served-$1" --out "$OUT/served-$1" --no-progress > "$OUT/served-$1.log" 2>&1 \
    || { echo "bench of $1-token prompts failed"; tail -n 20 "$OUT/served-$1.log"; exit 1; }
  grep -E "^offered|throughput" "$OUT/served-$1.log" | head -2 || true
}
served 1024 80 800
served 2048 40 400
served 8192 8 100
cleanup; SERVED=""

echo "== 3. one profile ($SECONDS s)"
python3 - "$OUT" > "$OUT/combine.log" 2>&1 <<'PY' || { cat "$OUT/combine.log"; exit 1; }
import json, sys
out = sys.argv[1]
budget = 8192
base = json.load(open(f"{out}/profile-ctx1024.json"))
model = base["models"][0]
for ctx in (4096, 8192):
    other = json.load(open(f"{out}/profile-ctx{ctx}.json"))["models"][0]
    model["decode"] += [d for d in other["decode"] if "skipped" not in d]
rows = []
for n in (1024, 2048, 8192):
    reqs = [json.loads(l) for l in open(f"{out}/served-{n}/requests.jsonl")]
    # Answered: ok, or a one-token answer whose text is empty (random weights
    # often pick a token that decodes to nothing, which the bench counts as
    # empty output); only when the answer ended matters here.
    answered = lambda r: r.get("ok") or (r.get("error_kind") == "empty_output" and r.get("output_tokens", 0) >= 1)
    done = sorted(r["end_ms"] for r in reqs if answered(r) and not r.get("warmup"))
    if len(done) < 20:
        errors = sorted({str(r.get("error"))[:200] for r in reqs if not r.get("ok")})
        sys.exit(f"served-{n}: only {len(done)} of {len(reqs)} requests answered; errors: {errors[:3]}")
    # The middle half of the answers: the queue is full there (the rate is
    # twice the capacity), so they leave at the instance's own pace.
    a, b = len(done) // 4, 3 * len(done) // 4
    rps = (b - a) / ((done[b] - done[a]) / 1000)
    rows.append({"prompt_tokens": n, "batch": max(1, budget // n), "requests_per_s": rps,
                 "max_num_batched_tokens": budget, "answers": len(done)})
    print(f"served prefill: {n}-token prompts, {max(1, budget // n)} a step: {rps:.2f} req/s")
model["served_prefill"] = rows
base["note"] = ("scripts/gpu-plan-measure.sh: baton_gpu_profile --quick at decode contexts 1024, 4096, 8192 "
                "(decode rows merged) and served_prefill from baton serve + baton bench at saturation")
json.dump(base, open(f"{out}/h200-llama3.1-8b.json", "w"), indent=2)
PY
cat "$OUT/combine.log"
{ cat "$OUT/gpu.csv"; grep -hE "^decode|^prefill|^mixed" "$OUT"/profile-ctx*.log; cat "$OUT/combine.log"; } > "$OUT/summary.txt"
echo "done in $SECONDS s: $OUT/h200-llama3.1-8b.json"
