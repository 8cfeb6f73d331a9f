#!/usr/bin/env bash
# Runs the whole test suite: builds what changed, then every CTest test
# (unit, golden-fixture, end-to-end process tests) but those that need a GPU
# (label gpu). Labels: tests/CMakeLists.txt; `ctest -L unit` is the quick check.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
cd build
ctest --output-on-failure -j "${BATON_TEST_JOBS:-2}" --timeout 900 -LE gpu "$@"
