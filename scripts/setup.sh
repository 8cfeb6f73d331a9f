#!/usr/bin/env bash
# One command on a fresh Debian 12 machine: install everything, build, and run
# the main job (generation) on the embedded default model.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
./build/baton generate --prompt "The capital of France is" --max-tokens 24
