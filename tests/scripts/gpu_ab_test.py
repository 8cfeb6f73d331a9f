#!/usr/bin/env python3
"""Tests of scripts/gpu-ab.sh and scripts/profile-ab.py with a stand-in
profiler: the variants run alternately (every second round in reverse
order), each row holds every variant's times and the ratio of its median
to the first's, a failed variant is named and shown as '-' without hiding
the others, and bad usage is refused."""

import json
import os
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AB = os.path.join(ROOT, "scripts", "gpu-ab.sh")
TABLE = os.path.join(ROOT, "scripts", "profile-ab.py")

# A stand-in for baton_gpu_profile: writes a --json document whose times are
# scaled by $F and appends its name ($TAG) to $ORDER, so the run order shows.
FAKE = """#!/usr/bin/env python3
import json, os, sys
out = sys.argv[sys.argv.index("--json") + 1]
f = float(os.environ.get("F", "1"))
with open(os.environ["ORDER"], "a") as o:
    o.write(os.environ.get("TAG", "?") + "\\n")
doc = {"ceilings": {"copy_gbps": 4200.0}, "models": [{"model": "llama3.1-8b",
       "decode": [{"batch": 1, "step_ms": 4.0 * f}, {"batch": 64, "step_ms": 8.0 * f}],
       "prefill": [{"tokens": 256, "time_ms": 10.0 * f}, {"tokens": 8192, "skipped": "KV too small"}]}]}
with open(out, "w") as w:
    json.dump(doc, w)
"""


class GpuAbTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.fake = os.path.join(self.tmp.name, "fake_profile")
        with open(self.fake, "w") as f:
            f.write(FAKE)
        os.chmod(self.fake, 0o755)
        self.order = os.path.join(self.tmp.name, "order.txt")

    def tearDown(self):
        self.tmp.cleanup()

    def run_ab(self, *args):
        env = dict(os.environ, OUT=os.path.join(self.tmp.name, "out"), ORDER=self.order)
        return subprocess.run(["bash", AB, *args], capture_output=True, text=True, env=env, check=False)

    def test_variants_alternate_and_the_ratio_is_of_medians(self):
        p = self.run_ab("-n", "3", "base=env TAG=base " + self.fake, "new=env TAG=new F=0.9 " + self.fake,
                        "--", "--models", "llama3.1-8b")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        with open(self.order) as f:
            self.assertEqual(f.read().split(), ["base", "new", "new", "base", "base", "new"])  # every 2nd round reversed
        lines = {l.split()[1] + " " + l.split()[2]: l for l in p.stdout.splitlines() if l.startswith("llama")}
        self.assertIn("base 4.000,4.000,4.000", lines["decode b1"])
        self.assertIn("new 3.600,3.600,3.600", lines["decode b1"])
        self.assertIn("new 0.9000", lines["decode b1"])
        self.assertIn("new 0.9000", lines["prefill 256"])
        self.assertNotIn("prefill 8192", p.stdout)  # a skipped prefill is no row
        with open(os.path.join(self.tmp.name, "out", "ab.txt")) as f:
            self.assertEqual(f.read(), p.stdout)

    def test_a_failed_variant_is_named_and_the_rest_still_compare(self):
        p = self.run_ab("base=env TAG=base " + self.fake, "broken=/bin/false", "new=env F=1.1 " + self.fake)
        self.assertEqual(p.returncode, 1)
        self.assertIn("gpu-ab: broken run 1 failed", p.stderr)
        row = [l for l in p.stdout.splitlines() if "decode b1" in l][0]
        self.assertIn("broken -", row)
        self.assertIn("new 1.1000", row)

    def test_bad_usage_is_refused(self):
        p = self.run_ab("base=" + self.fake)
        self.assertEqual(p.returncode, 2)
        self.assertIn("at least two variants", p.stderr)
        p = self.run_ab("base=" + self.fake, "oops")
        self.assertEqual(p.returncode, 2)
        self.assertIn("'oops' is not NAME=COMMAND", p.stderr)
        for runs in ("x", "0", "-3"):
            p = self.run_ab("-n", runs, "a=" + self.fake, "b=" + self.fake)
            self.assertEqual(p.returncode, 2)
            self.assertIn("-n takes a run count from 1 to 999, not '%s'" % runs, p.stderr)
        p = self.run_ab("-n")
        self.assertEqual(p.returncode, 2)
        self.assertIn("-n takes a run count", p.stderr)

    def test_the_table_reads_unreadable_json_as_a_missing_run(self):
        d = os.path.join(self.tmp.name, "runs")
        os.makedirs(d)
        with open(os.path.join(d, "a_1.json"), "w") as f:
            json.dump({"models": [{"model": "m", "decode": [{"batch": 2, "step_ms": 5.0}], "prefill": []}]}, f)
        with open(os.path.join(d, "b_1.json"), "w") as f:
            f.write("{not json")
        p = subprocess.run([sys.executable, TABLE, d, "1", "a", "b"], capture_output=True, text=True, check=False)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("b_1.json", p.stderr)
        self.assertIn("a 5.000  b - | ratio of medians to a: -", p.stdout)


if __name__ == "__main__":
    unittest.main()
