#!/usr/bin/env bash
# Must-show 2 of issue 14: what the KV port's trust boundary (signed
# kv_transfer_params, the authenticated connect) adds to PD TTFT at an
# 8K-token prompt. Starts a CPU PD deployment (prefill + decode over tcp +
# proxy, the qwen3-tiny fixture with a 16K context) without a KV secret, then
# with one, alternating ROUNDS times, and sends REQUESTS sequential 8K-token
# requests (one output token) to each; prints every round's TTFT and the
# ratio of the medians.
#
#   scripts/bench-kv-trust.sh [ROUNDS=2] [REQUESTS=12]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-2}
REQUESTS=${2:-12}
BATON=${BATON:-build/baton}
WORK=$(mktemp -d /tmp/baton-kv-trust-bench.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -z "${KEEP:-}" ]; then rm -rf "$WORK"; else echo "kept $WORK" >&2; fi
}
trap cleanup EXIT

cp -r tests/data/fixtures/models/qwen3-tiny "$WORK/model"
python3 - "$WORK/model/config.json" <<'PY'
import json, sys
path = sys.argv[1]
config = json.load(open(path))
config["max_position_embeddings"] = 16384
json.dump(config, open(path, "w"), indent=2)
PY
openssl rand -hex 32 > "$WORK/kv.secret"
chmod 600 "$WORK/kv.secret"

# start NAME ARGS...: runs baton in the background; sets PORT from its
# "listening on" line.
start() {
  local name=$1
  shift
  "$BATON" "$@" > "$WORK/$name.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 600); do
    if PORT=$(grep -oE 'listening on http://[0-9.]+:[0-9]+' "$WORK/$name.log" | grep -oE '[0-9]+$'); then return 0; fi
    sleep 0.1
  done
  echo "$name did not start:" >&2
  cat "$WORK/$name.log" >&2
  exit 1
}

stop_all() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  PIDS=()
}

# run_round LABEL [SECRET_ARGS...]: prints the run's TTFT mean and p50 (ms).
run_round() {
  local label=$1
  shift
  local common=(serve --model "$WORK/model" --served-model-name m --port 0 --num-kv-blocks 1200
                --max-model-len 9000 --num-threads 1 --kv-transport tcp "$@")
  start "prefill-$label" "${common[@]}" --role prefill
  local prefill=$PORT
  start "decode-$label" "${common[@]}" --role decode
  local decode=$PORT
  start "proxy-$label" proxy --port 0 --mode pd --prefill "http://127.0.0.1:$prefill" \
    --decode "http://127.0.0.1:$decode" --health-interval-s 0.2
  local proxy=$PORT
  sleep 1
  # TTFT of a PD request: a non-streamed request for one token through the
  # proxy (prefill, KV pull, the decode's first token), timed by the client.
  python3 - "http://127.0.0.1:$proxy/v1/completions" "$label" "$REQUESTS" <<'PY'
import json, random, statistics, sys, time, urllib.request
url, label, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = random.Random(14)
def once(prompt):
    body = json.dumps({"model": "m", "prompt": prompt, "max_tokens": 1, "temperature": 0}).encode()
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    t = time.monotonic()
    with urllib.request.urlopen(req, timeout=600) as r:
        assert r.status == 200 and json.load(r)["usage"]["completion_tokens"] == 1
    return (time.monotonic() - t) * 1e3
once([rng.randrange(3, 500) for _ in range(64)])  # warm-up
ttft = [once([rng.randrange(3, 500) for _ in range(8192)]) for _ in range(n)]
print(f"{label:>12}: TTFT p50 {statistics.median(ttft):.1f} ms, mean {statistics.mean(ttft):.1f} ms "
      f"({n} requests: {', '.join(f'{t:.0f}' for t in ttft)})")
PY
  stop_all
}

echo "PD TTFT at an 8192-token prompt, $REQUESTS sequential requests a round ($(nproc) CPUs)"
for r in $(seq 1 "$ROUNDS"); do
  run_round "none-$r" | tee -a "$WORK/summary"
  run_round "secret-$r" --kv-secret-file "$WORK/kv.secret" | tee -a "$WORK/summary"
done
python3 - "$WORK/summary" <<'PY'
import re, statistics, sys
rows = [l for l in open(sys.argv[1]) if "TTFT" in l]
def p50s(kind):
    return [float(re.search(r"p50 ([0-9.]+)", l).group(1)) for l in rows if l.strip().startswith(kind)]
none, secret = statistics.median(p50s("none")), statistics.median(p50s("secret"))
print(f"median of p50s: no secret {none:.1f} ms, with secret {secret:.1f} ms, ratio {secret / none:.4f}")
PY
