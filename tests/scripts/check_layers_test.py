#!/usr/bin/env python3
"""Tests of scripts/check-layers.py: it passes on the real tree, and fails,
naming file:line and the edge, on a forbidden include planted in a copy."""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "check-layers.py")


def run_check(root, table=None):
    cmd = [sys.executable, SCRIPT, "--root", root]
    if table:
        cmd += ["--table", table]
    p = subprocess.run(cmd, capture_output=True, text=True, check=False)
    return p.returncode, p.stdout + p.stderr


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


class RealTreeTest(unittest.TestCase):
    def test_the_repository_follows_its_table(self):
        rc, out = run_check(ROOT)
        self.assertEqual(rc, 0, out)

    def test_a_forbidden_include_planted_in_a_copy_fails(self):
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copytree(os.path.join(ROOT, "src"), os.path.join(tmp, "src"))
            os.makedirs(os.path.join(tmp, "scripts"))
            shutil.copy(os.path.join(ROOT, "scripts", "layers.txt"), os.path.join(tmp, "scripts"))
            rc, out = run_check(tmp)
            self.assertEqual(rc, 0, "the unchanged copy must pass: " + out)

            # kv sits below server: kv/block_pool.h may not include a server header.
            victim = os.path.join(tmp, "src", "kv", "block_pool.h")
            with open(victim, encoding="utf-8") as f:
                lines = f.readlines()
            lines.insert(3, '#include "server/api_server.h"\n')
            with open(victim, "w", encoding="utf-8") as f:
                f.writelines(lines)
            rc, out = run_check(tmp)
            self.assertEqual(rc, 1, out)
            self.assertIn('src/kv/block_pool.h:4: kv -> server ("server/api_server.h")', out)


class SyntheticTreeTest(unittest.TestCase):
    """A small tree with its own table: the rules one at a time."""

    TABLE = ("low:\n"
             "mid: low\n"
             "top: low mid/open.h  # one header of mid only\n")

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.root = self.tmp.name
        self.table = os.path.join(self.root, "layers.txt")
        write(self.table, self.TABLE)
        write(self.src("low/a.h"), "#pragma once\n#include <vector>\n")
        write(self.src("mid/open.h"), '#pragma once\n#include "low/a.h"\n')
        write(self.src("mid/closed.h"), "#pragma once\n")
        write(self.src("top/t.cpp"), '#include "top/t.h"\n#include "mid/open.h"\n')
        write(self.src("top/t.h"), "#pragma once\n")

    def tearDown(self):
        self.tmp.cleanup()

    def src(self, rel):
        return os.path.join(self.root, "src", rel)

    def test_clean_tree_passes(self):
        rc, out = run_check(self.root, self.table)
        self.assertEqual(rc, 0, out)

    def test_include_back_up_fails(self):
        write(self.src("low/b.cpp"), '#include "low/a.h"\n#include "top/t.h"\n')
        rc, out = run_check(self.root, self.table)
        self.assertEqual(rc, 1, out)
        self.assertIn('src/low/b.cpp:2: low -> top ("top/t.h")', out)

    def test_header_outside_a_single_header_grant_fails(self):
        write(self.src("top/u.cpp"), '#include "mid/closed.h"\n')
        rc, out = run_check(self.root, self.table)
        self.assertEqual(rc, 1, out)
        self.assertIn('src/top/u.cpp:1: top -> mid ("mid/closed.h")', out)

    def test_relative_include_is_named(self):
        write(self.src("top/v.cpp"), '#include "t.h"\n')
        rc, out = run_check(self.root, self.table)
        self.assertEqual(rc, 1, out)
        self.assertIn('src/top/v.cpp:1: includes "t.h" by a relative path; write "top/t.h"', out)

    def test_folder_missing_from_the_table_fails(self):
        write(self.src("stray/s.h"), "#pragma once\n")
        rc, out = run_check(self.root, self.table)
        self.assertEqual(rc, 2, out)
        self.assertIn("src/stray/ is not a layer of the table", out)

    def test_table_pointing_up_is_refused(self):
        write(self.table, "low: mid\nmid: low\n")
        rc, out = run_check(self.root, self.table)
        self.assertEqual(rc, 2, out)
        self.assertIn("'mid' is not listed above it", out)


if __name__ == "__main__":
    unittest.main()
