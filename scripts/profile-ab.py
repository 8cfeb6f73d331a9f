#!/usr/bin/env python3
"""The table of scripts/gpu-ab.sh: DIR/NAME_RUN.json of `baton_gpu_profile --json`.

For each decode row (model, batch: step_ms) and prefill row (model, tokens:
time_ms), every variant's times in run order and the ratio of its median to
the first variant's median. Rows a variant lacks (a failed run, a skipped
prefill) are shown as '-'.

  python3 scripts/profile-ab.py DIR RUNS NAME...
"""
import json
import statistics
import sys


def rows_of(doc):
    """{(model, 'decode b<batch>' | 'prefill <tokens>'): ms} of one profiler run."""
    out = {}
    for m in doc.get("models", []):
        for d in m.get("decode", []):
            if "step_ms" in d:
                out[(m["model"], "decode b%d" % d["batch"])] = d["step_ms"]
        for p in m.get("prefill", []):
            if "time_ms" in p:
                out[(m["model"], "prefill %d" % p["tokens"])] = p["time_ms"]
    return out


def table(runs_by_name, names):
    """Lines of the table; runs_by_name[name] is a list of rows_of() dicts."""
    keys = []
    for name in names:
        for rows in runs_by_name[name]:
            keys += [k for k in rows if k not in keys]
    lines = []
    for key in keys:
        medians = {}
        cells = []
        for name in names:
            times = [rows[key] for rows in runs_by_name[name] if key in rows]
            if times:
                medians[name] = statistics.median(times)
            cells.append("%s %s" % (name, ",".join("%.3f" % t for t in times) if times else "-"))
        base = medians.get(names[0])
        ratios = ["%s %.4f" % (n, medians[n] / base) for n in names[1:] if base and n in medians]
        lines.append("%-24s %-13s %s | ratio of medians to %s: %s" %
                     (key[0], key[1], "  ".join(cells), names[0], ", ".join(ratios) if ratios else "-"))
    return lines


def main(argv):
    if len(argv) < 4:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    folder, runs, names = argv[1], int(argv[2]), argv[3:]
    runs_by_name = {}
    for name in names:
        runs_by_name[name] = []
        for r in range(1, runs + 1):
            path = "%s/%s_%d.json" % (folder, name, r)
            try:
                with open(path) as f:
                    doc = json.load(f)
            except (OSError, ValueError) as e:
                print("profile-ab: %s: %s" % (path, e), file=sys.stderr)
                continue
            runs_by_name[name].append(rows_of(doc))
            if r == 1 and "ceilings" in doc:
                print("%s: copy %.0f GB/s" % (name, doc["ceilings"].get("copy_gbps", 0)))
    for line in table(runs_by_name, names):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
