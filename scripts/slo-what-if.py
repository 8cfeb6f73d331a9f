#!/usr/bin/env python3
"""What a sweep's trials say under another SLO, without running anything.

Each trial of a `baton sweep` result keeps its latency percentiles. This
re-judges every trial of one workload against a different SLO (percentile
targets only) and prints, per deployment, the highest rate tried that passes
and the lowest above it that fails. The answer is bounded by the rates the
original search happened to try: "< X" means even its lowest rate failed.

  python3 scripts/slo-what-if.py docs/results/pd-vs-agg long-in-short-out \
      "ttft:p90<2s,tpot:p90<15ms"
"""
import json
import os
import re
import sys

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def parse_slo(text):
    targets = []
    for part in text.split(","):
        m = re.fullmatch(r"(ttft|tpot|itl|e2e):(p\d+(?:\.\d+)?|median|mean)<([\d.]+)(us|ms|s)", part.strip())
        if not m:
            sys.exit(f"bad SLO target '{part}': expected METRIC:pNN<LIMIT (e.g. tpot:p90<20ms)")
        metric, stat, value, unit = m.groups()
        stat = "p50" if stat == "median" else stat
        targets.append((metric, stat, float(value) * UNITS[unit], part.strip()))
    return targets


def passes(run, targets):
    for metric, stat, limit_ms, _ in targets:
        summary = run["metrics"].get(metric + "_ms", {})
        if stat not in summary:
            sys.exit(f"the trial summaries keep no {stat} of {metric}")
        value = summary[stat]
        if value is None or value >= limit_ms:
            return False
    # Failed requests count as infinitely slow: any percentile at or above the
    # share of successes is then infinite.
    num_ok, num_failed = run["metrics"].get("num_ok", 0), run["metrics"].get("num_failed", 0)
    for _, stat, _, _ in targets:
        if stat.startswith("p") and num_failed > 0 and float(stat[1:]) >= 100.0 * num_ok / (num_ok + num_failed):
            return False
    return True


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    out_dir, workload, slo_text = sys.argv[1:]
    targets = parse_slo(slo_text)
    results = os.path.join(out_dir, "results")
    if not os.path.isdir(results):
        sys.exit(f"no results folder in '{out_dir}'")
    print(f"{workload} under {slo_text} (rates as tried by the original search):")
    for deployment in sorted(os.listdir(results)):
        path = os.path.join(results, deployment, workload + ".json")
        if not os.path.exists(path):
            continue
        with open(path) as f:
            runs = sorted(json.load(f)["runs"], key=lambda r: r["target_rate_rps"])
        verdicts = [(r["target_rate_rps"], passes(r, targets)) for r in runs]
        passed = [rate for rate, ok in verdicts if ok]
        best = max(passed) if passed else None
        failed_above = [rate for rate, ok in verdicts if not ok and (best is None or rate > best)]
        if best is None:
            text = f"< {runs[0]['target_rate_rps']:g}"
        else:
            text = f"{best:g}" + (f" (fails at {min(failed_above):g})" if failed_above else " (every rate above passed)")
        print(f"  {deployment:<14} {text}")


if __name__ == "__main__":
    main()
