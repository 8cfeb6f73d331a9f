#!/usr/bin/env bash
# Checks that the C++ and CUDA sources of src/ tests/ fuzz/ benchmarks/ are
# formatted as .clang-format says (clang-format 14, Debian's clang-format).
#
#   scripts/check-format.sh          # fails listing each file that differs
#   scripts/check-format.sh --fix    # rewrites those files in place
#   scripts/check-format.sh FILE...  # only these files (either mode)
set -euo pipefail
cd "$(dirname "$0")/.."
CLANG_FORMAT="${CLANG_FORMAT:-clang-format}"
if ! command -v "$CLANG_FORMAT" >/dev/null 2>&1; then
  echo "check-format: $CLANG_FORMAT not found (scripts/install-deps.sh installs it)" >&2
  exit 2
fi
fix=0
if [ "${1:-}" = "--fix" ]; then fix=1; shift; fi
if [ "$#" -gt 0 ]; then
  files=("$@")
else
  mapfile -t files < <(git ls-files -- 'src/*' 'tests/*' 'fuzz/*' 'benchmarks/*' |
                       grep -E '\.(h|hpp|cpp|cc|cu|cuh)$')
fi
if [ "$fix" = 1 ]; then
  printf '%s\0' "${files[@]}" | xargs -0 -r "$CLANG_FORMAT" -i --style=file
  echo "check-format: formatted ${#files[@]} files"
  exit 0
fi
# --dry-run -Werror: one warning per misformatted line, non-zero status.
out=$(printf '%s\0' "${files[@]}" | xargs -0 -r "$CLANG_FORMAT" --dry-run --style=file 2>&1 || true)
if [ -n "$out" ]; then
  echo "$out" | grep -E '^[^ ]+:[0-9]+:[0-9]+: (warning|error)' | cut -d: -f1 | sort | uniq -c |
    awk '{printf "check-format: %s: %d line(s) differ from .clang-format\n", $2, $1}' >&2
  n=$(echo "$out" | grep -cE '^[^ ]+:[0-9]+:[0-9]+: (warning|error)' || true)
  echo "check-format: $n line(s) to reformat; run scripts/check-format.sh --fix" >&2
  exit 1
fi
echo "check-format: ${#files[@]} files follow .clang-format"
