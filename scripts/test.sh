#!/usr/bin/env bash
# Runs the whole test suite: builds what changed, then every CTest test
# (unit, golden-fixture, end-to-end process tests) but those that need a GPU
# (label gpu). Labels: tests/CMakeLists.txt; `ctest -L unit` is the quick check.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
cd build
# Twice as many tests at once as there are cores (BATON_TEST_JOBS to change
# it): most end-to-end tests wait on servers, timers and rate-limited clients,
# so more tests than cores keep the cores busy. The tests that compute for
# their whole run, and PD's process tests that time a stopped or killed peer,
# count double (PROCESSORS 2 in tests/CMakeLists.txt), so the CPU is not
# oversubscribed under them; the few that time a simulated server run alone
# (RUN_SERIAL). Without earlier timings (a clean clone) the slow and the
# end-to-end tests start first (their COST). On the 2-core dev machine:
# 862 tests, 94 s at -j2 before, see docs/DESIGN.md ("Testing") for now.
JOBS="${BATON_TEST_JOBS:-$(( 2 * $(nproc) ))}"
ctest --output-on-failure -j "$JOBS" --timeout 900 -LE gpu "$@"
