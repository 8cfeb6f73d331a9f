#!/usr/bin/env bash
# Runs the whole test suite: builds what changed, then every CTest test
# (unit, golden-fixture, end-to-end process tests) but those that need a GPU
# (label gpu). Labels: tests/CMakeLists.txt; `ctest -L unit` is the quick check.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
cd build
# Four tests at once on two cores: many end-to-end tests spend most of their
# time waiting on servers they started, so more of them than cores keeps the
# cores busy (the few that time a simulated server run alone: RUN_SERIAL in
# tests/CMakeLists.txt).
ctest --output-on-failure -j "${BATON_TEST_JOBS:-4}" --timeout 900 -LE gpu "$@"
