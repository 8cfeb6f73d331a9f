#!/usr/bin/env python3
"""Unloaded TTFT of one long prompt: agg vs PD (whole-prompt pull) vs PD with
streamed KV (docs/pd.md, "Streamed KV"). Plays the router itself, so that the
three paths differ only in how the KV moves:

  agg:      POST agg /v1/completions (stream) -> first token
  pd:       POST prefill (max_tokens 1, do_remote_decode) -> whole answer,
            then POST decode with its kv_transfer_params (stream) -> first token
  pd-stream POST prefill (stream, do_remote_decode + stream_kv) -> first event
            carries the params; POST decode with them at once (stream) while
            the prefill computes -> first token

Every repetition uses a fresh random prompt (no prefix-cache hits), one
request at a time, the three paths interleaved; prints each path's median and
the overheads over agg as JSON. Needs three running instances (`baton serve
--role agg|prefill|decode`, the last two with the same --kv-transport).

  python3 examples/pd-stream-ttft.py --agg http://127.0.0.1:8000 \
      --prefill http://127.0.0.1:8100 --decode http://127.0.0.1:8200 \
      --prompt-tokens 8192 --reps 7
"""
import argparse
import http.client
import json
import random
import statistics
import threading
import contextlib
import time
import urllib.parse


def open_post(base, body):
    u = urllib.parse.urlparse(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
    conn.request("POST", "/v1/completions", json.dumps(body), {"Content-Type": "application/json"})
    return conn, conn.getresponse()


def sse_events(resp):
    for raw in resp:
        line = raw.decode().strip()
        if not line.startswith("data: "):
            continue
        data = line[6:]
        if data == "[DONE]":
            return
        yield json.loads(data)


def first_token_time(resp, t0):
    for ev in sse_events(resp):
        if "error" in ev:
            raise RuntimeError(json.dumps(ev["error"]))
        ch = ev.get("choices") or [{}]
        if ch[0].get("text") or (ch[0].get("logprobs") or {}).get("tokens"):
            ttft = time.perf_counter() - t0
            for _ in sse_events(resp):  # drain
                pass
            return ttft
    raise RuntimeError("no token came")


def body(prompt, max_tokens, stream, kv=None):
    b = {"model": "m", "prompt": prompt, "max_tokens": max_tokens, "temperature": 0,
         "ignore_eos": True, "stream": stream, "logprobs": 0}
    if kv is not None:
        b["kv_transfer_params"] = kv
    return b


def run_agg(a, prompt):
    t0 = time.perf_counter()
    conn, resp = open_post(a.agg, body(prompt, a.max_tokens, True))
    with contextlib.closing(conn):
        return first_token_time(resp, t0)


def run_pd(a, prompt):
    t0 = time.perf_counter()
    conn, resp = open_post(a.prefill, body(prompt, 1, False, {"do_remote_decode": True}))
    with contextlib.closing(conn):
        params = json.loads(resp.read())["kv_transfer_params"]
    conn, resp = open_post(a.decode, body(prompt, a.max_tokens, True, params))
    with contextlib.closing(conn):
        return first_token_time(resp, t0)


def run_pd_stream(a, prompt):
    t0 = time.perf_counter()
    pconn, presp = open_post(a.prefill, body(prompt, 1, True, {"do_remote_decode": True, "stream_kv": True}))
    events = sse_events(presp)
    params = None
    for ev in events:
        if "kv_transfer_params" in ev:
            params = ev["kv_transfer_params"]
            break
    if params is None:
        raise RuntimeError("the prefill sent no early kv_transfer_params (an instance without streamed KV?)")
    # The prefill's answer must stay open (closing it aborts the prompt).
    drain = threading.Thread(target=lambda: [None for _ in events])
    drain.start()
    conn, resp = open_post(a.decode, body(prompt, a.max_tokens, True, params))
    with contextlib.closing(conn):
        ttft = first_token_time(resp, t0)
    drain.join()
    pconn.close()
    return ttft


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agg", required=True)
    ap.add_argument("--prefill", required=True)
    ap.add_argument("--decode", required=True)
    ap.add_argument("--prompt-tokens", type=int, default=8192)
    ap.add_argument("--vocab", type=int, default=32000, help="prompt ids are drawn from [100, vocab)")
    ap.add_argument("--max-tokens", type=int, default=4)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    paths = {"agg": run_agg, "pd": run_pd, "pd-stream": run_pd_stream}
    times = {k: [] for k in paths}
    for rep in range(a.warmup + a.reps):
        for name, fn in paths.items():
            prompt = [rng.randrange(100, a.vocab) for _ in range(a.prompt_tokens)]
            t = fn(a, prompt)
            if rep >= a.warmup:
                times[name].append(t)
    med = {k: statistics.median(v) for k, v in times.items()}
    out = {"prompt_tokens": a.prompt_tokens, "reps": a.reps,
           "ttft_ms_median": {k: round(v * 1000, 1) for k, v in med.items()},
           "ttft_ms_all": {k: [round(x * 1000, 1) for x in v] for k, v in times.items()},
           "overhead_over_agg": {k: round(med[k] / med["agg"] - 1, 4) for k in ("pd", "pd-stream")}}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
