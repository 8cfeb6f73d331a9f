#!/usr/bin/env python3
"""Tests of scripts/gpu-lab-call.sh with stand-ins for the GPU host's tools
(nvidia-smi, the bundle's profilers and backend-ops script): the bundle is
unpacked, each step gets its own variables (the A/B its variants, models,
batches, runs and extra arguments; backend-ops its variant's test binary and
ops), `pack` leaves one archive with every step's output, and an unknown
step fails the call without stopping the rest."""

import os
import subprocess
import tarfile
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CALL = os.path.join(ROOT, "scripts", "gpu-lab-call.sh")

# A stand-in profiler: records its arguments, writes a --json document whose
# decode step is 0.9 of the others' in variant v1.
PROFILE = """#!/usr/bin/env python3
import json, os, sys
with open(os.environ["ARGS_LOG"], "a") as a:
    a.write(os.path.basename(sys.argv[0]) + " " + " ".join(sys.argv[1:]) + "\\n")
if "--json" in sys.argv:
    f = 0.9 if sys.argv[0].endswith("_v1") else 1.0
    doc = {"ceilings": {"copy_gbps": 4000.0}, "models": [{"model": "llama3.1-8b",
           "decode": [{"batch": 1, "step_ms": 4.0 * f}], "prefill": []}]}
    with open(sys.argv[sys.argv.index("--json") + 1], "w") as w:
        json.dump(doc, w)
"""
# A stand-in for the bundle's gpu-backend-ops.sh: shows what it was given.
OPS = """#!/usr/bin/env bash
echo "ops bin=$(basename "$BATON_TEST_BIN") ops=$BATON_OPS tests_timeout=$BATON_TESTS_TIMEOUT"
mkdir -p "$OUT" && echo done > "$OUT/backend_ops.log"
"""


class GpuLabCallTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        t = self.tmp.name
        stage = os.path.join(t, "stage")
        os.makedirs(os.path.join(stage, "bin"))
        os.makedirs(os.path.join(stage, "lib"))
        for name, text in [("bin/baton_gpu_profile_v0", PROFILE), ("bin/baton_gpu_profile_v1", PROFILE),
                           ("gpu-backend-ops.sh", OPS)]:
            path = os.path.join(stage, name)
            with open(path, "w") as f:
                f.write(text)
            os.chmod(path, 0o755)
        self.bundle = os.path.join(t, "pack")
        os.makedirs(self.bundle)
        with tarfile.open(os.path.join(self.bundle, "bundle.tar.xz"), "w:xz") as tar:
            tar.add(stage, arcname=".")
        tools = os.path.join(t, "tools")
        os.makedirs(tools)
        # nvidia-smi, and an ldconfig that lists the CUDA libraries (so
        # gpu-env.sh does not search the disk for them).
        for name, text in [("nvidia-smi", "echo 'Stand-in GPU, 1 MiB, 1 MHz, 0'"),
                           ("ldconfig", "echo 'libcudart.so.13 libcublasLt.so.13 libnccl.so.2'")]:
            with open(os.path.join(tools, name), "w") as f:
                f.write("#!/bin/sh\n" + text + "\n")
            os.chmod(os.path.join(tools, name), 0o755)
        self.lab = os.path.join(t, "lab")
        self.out = os.path.join(t, "out")
        self.args_log = os.path.join(t, "args.log")
        self.env = dict(os.environ, PATH=tools + os.pathsep + os.environ["PATH"], OUT=self.out,
                        BATON_LAB_DIR=self.lab, ARGS_LOG=self.args_log)

    def tearDown(self):
        self.tmp.cleanup()

    def call(self, *steps, **env):
        return subprocess.run(["bash", CALL, self.bundle, *steps], capture_output=True, text=True,
                              env=dict(self.env, **env), check=False)

    def test_steps_get_their_variables_and_pack_keeps_everything(self):
        p = self.call("ops-v1", "ab_x", "pack", OPS_v1="gemv moe_skinny", TTIME_v1="2",
                      VARIANTS_x=f"v0={self.lab}/bin/baton_gpu_profile_v0 v1={self.lab}/bin/baton_gpu_profile_v1",
                      ABMODELS_x="llama3.1-8b", ABBATCHES_x="16,64", ABEXTRA_x="--decode-context 1040", RUNS_x="2")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("ops bin=test_backend_cuda_v1 ops=gemv moe_skinny tests_timeout=2", p.stdout)
        self.assertIn("v1 0.9000", p.stdout)  # the A/B's table
        with open(self.args_log) as f:
            runs = f.read().splitlines()
        self.assertEqual(len(runs), 4)  # 2 variants, 2 runs
        self.assertIn("--models llama3.1-8b --quick --decode-batches 16,64 --prefill-tokens 256 "
                      "--decode-context 1040", runs[0])
        self.assertEqual(sorted(os.listdir(self.out)), ["gpu.csv", "lab.tar.xz"])
        with tarfile.open(os.path.join(self.out, "lab.tar.xz")) as tar:
            names = tar.getnames()
        self.assertIn("./ab_x.txt", names)
        self.assertIn("./ops-v1/backend_ops.log", names)
        self.assertTrue(any(n.startswith("./ab_x/") and n.endswith(".json") for n in names))

    def test_an_unknown_step_fails_the_call_but_not_the_rest(self):
        p = self.call("nonsense", "kc", KCVARIANTS="v1", KCMODELS="llama3.1-8b", KCB="1")
        self.assertEqual(p.returncode, 1)
        self.assertIn("gpu-lab-call: unknown step nonsense", p.stdout)
        with open(self.args_log) as f:
            self.assertIn("--kernel-costs 1", f.read())  # kc still ran

    def test_a_missing_bundle_is_named(self):
        os.remove(os.path.join(self.bundle, "bundle.tar.xz"))
        p = self.call("pack")
        self.assertEqual(p.returncode, 2)
        self.assertIn("cannot unpack", p.stdout)


if __name__ == "__main__":
    unittest.main()
