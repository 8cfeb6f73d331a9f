#!/usr/bin/env bash
# CI's security lanes, after scripts/test.sh: one clang build (build-asan/:
# ASan+UBSan, libFuzzer coverage on src/ and fuzz/, CUDA off) that serves both
#   1. the CPU suite under ASan+UBSan, the files labelled slow left out (the
#      normal lane runs them; `scripts/sanitize.sh` alone runs everything),
#      plus each fuzz corpus replayed (ctest -L fuzz), and
#   2. every fuzz target fuzzed briefly on its corpus (BATON_CI_FUZZ_SECONDS
#      each, default 10), the corpus left as committed.
# Timings of each lane: docs/security.md ("Fuzzing and sanitizers").
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH="${BATON_CI_FUZZ_SECONDS:-10}"
start=$(date +%s)
# A test that fails is run once more before it fails the lane: a sanitizer
# finding fails both runs (the report is the same), a test that lost a race
# on a loaded machine passes the second (the normal lane, scripts/test.sh,
# runs every test once).
# A test that hangs costs BATON_TEST_TIMEOUT (300 s here), not 900.
BATON_SANITIZE_BUILD_DIR=build-asan BATON_TEST_TIMEOUT="${BATON_TEST_TIMEOUT:-300}" \
  BATON_CMAKE_ARGS="-DBATON_FUZZ=ON -DBATON_BUILD_SLOW_TESTS=OFF ${BATON_CMAKE_ARGS:-}" \
  bash scripts/sanitize.sh address,undefined --repeat until-pass:2 "$@"
echo "test-sanitized.sh: ASan+UBSan build and suite took $(( $(date +%s) - start )) s"
start=$(date +%s)
BATON_FUZZ_BUILD_DIR=build-asan BATON_FUZZ_MERGE=0 BATON_FUZZ_ARTIFACTS="$PWD/build-asan/fuzz-crashes" \
  bash scripts/fuzz.sh all "$SECONDS_EACH"
echo "test-sanitized.sh: fuzzing took $(( $(date +%s) - start )) s"
