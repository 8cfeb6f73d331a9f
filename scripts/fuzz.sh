#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan+UBSan, CUDA and tests off, in
# build-fuzz/) and fuzzes one target, or each in turn, on its corpus:
#   scripts/fuzz.sh TARGET SECONDS    # TARGET: sse_parser, kv_agent, ... (fuzz/TARGET_fuzz.cpp)
#   scripts/fuzz.sh all SECONDS       # every target, one after the other, SECONDS each
#   scripts/fuzz.sh list              # the target names
# New inputs that add coverage are merged (-merge=1) into fuzz/corpus/TARGET/;
# a crash is saved under fuzz/crashes-found/ and makes the script fail.
# Environment:
#   BATON_FUZZ_MERGE=0        fuzz without touching the corpus (CI)
#   BATON_FUZZ_BUILD_DIR=DIR  build folder (default build-fuzz); an existing
#                             one configured with BATON_FUZZ=ON is reused as is
#   BATON_FUZZ_ARTIFACTS=DIR  where crashes go (default fuzz/crashes-found)
#   BATON_FUZZ_ARGS="..."     extra libFuzzer flags (e.g. -max_len=65536)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
BUILD="${BATON_FUZZ_BUILD_DIR:-build-fuzz}"
JOBS="${BATON_JOBS:-$(nproc)}"
ARTIFACTS="${BATON_FUZZ_ARTIFACTS:-$ROOT/fuzz/crashes-found}"
MERGE="${BATON_FUZZ_MERGE:-1}"
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/baton-ccache}"
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"

targets() {
  for f in fuzz/*_fuzz.cpp; do basename "$f" _fuzz.cpp; done
}

usage() {
  echo "usage: scripts/fuzz.sh TARGET|all SECONDS   (targets: $(targets | tr '\n' ' '))" >&2
  exit 2
}

[ "${1:-}" = list ] && { targets; exit 0; }
[ $# -eq 2 ] || usage
TARGET="$1"
SECONDS_EACH="$2"
[[ "$SECONDS_EACH" =~ ^[0-9]+$ ]] || usage
if [ "$TARGET" = all ]; then
  mapfile -t NAMES < <(targets)
else
  [ -f "fuzz/${TARGET}_fuzz.cpp" ] || usage
  NAMES=("$TARGET")
fi

if [ ! -f "$BUILD/build.ninja" ]; then
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_CXX_COMPILER=clang++ -DBATON_CUDA=OFF \
    -DBATON_BUILD_TESTS=OFF -DBATON_BUILD_BENCHMARKS=OFF -DBATON_FUZZ=ON \
    -DBATON_SANITIZE=address,undefined ${BATON_CMAKE_ARGS:-}
fi
build_targets=()
for name in "${NAMES[@]}"; do build_targets+=("${name}_fuzz"); done
start=$(date +%s)
cmake --build "$BUILD" -j "$JOBS" --target "${build_targets[@]}"
echo "fuzz.sh: build took $(( $(date +%s) - start )) s"

export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
mkdir -p "$ARTIFACTS" "$BUILD/fuzz-logs"
failed=()
for name in "${NAMES[@]}"; do
  bin="$BUILD/fuzz/${name}_fuzz"
  corpus="$ROOT/fuzz/corpus/$name"
  mkdir -p "$corpus"
  new="$(mktemp -d "${TMPDIR:-/tmp}/baton-fuzz-$name.XXXXXX")"
  log="$BUILD/fuzz-logs/$name.log"
  echo "fuzz.sh: $name for ${SECONDS_EACH}s on $(find "$corpus" -type f | wc -l) corpus inputs (log: $log)"
  status=0
  # New inputs go to $new first (libFuzzer writes into its first folder).
  # shellcheck disable=SC2086
  "$bin" -max_total_time="$SECONDS_EACH" -timeout=25 -rss_limit_mb=2560 -print_final_stats=1 \
    -artifact_prefix="$ARTIFACTS/$name-" ${BATON_FUZZ_ARGS:-} "$new" "$corpus" >"$log" 2>&1 || status=$?
  grep -E '^#[0-9]+[[:space:]]+(DONE|INITED)' "$log" | sed "s/^/fuzz.sh: $name: /" || true
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' "$log" |
    sed "s/^/fuzz.sh: $name: /" || true
  if [ "$status" -ne 0 ]; then
    echo "fuzz.sh: $name FAILED (exit $status); the crash and its input:" >&2
    grep -E 'ERROR|SUMMARY|runtime error|Test unit written|deadly signal|timeout' "$log" | head -20 >&2 || true
    failed+=("$name")
  elif [ "$MERGE" = 1 ] && [ -n "$(ls -A "$new")" ]; then
    before=$(find "$corpus" -type f | wc -l)
    "$bin" -merge=1 ${BATON_FUZZ_ARGS:-} "$corpus" "$new" >>"$log" 2>&1
    echo "fuzz.sh: $name: corpus $before -> $(find "$corpus" -type f | wc -l) inputs, $(cat "$corpus"/* | wc -c) bytes"
  fi
  rm -rf "$new"
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz.sh: crashed: ${failed[*]} (inputs under $ARTIFACTS)" >&2
  exit 1
fi
