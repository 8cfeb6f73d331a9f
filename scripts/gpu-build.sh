#!/usr/bin/env bash
# Builds the CUDA backend's tests and GPU profiler on this (GPU-less) machine
# and gathers what a GPU host needs into .gpu-carry/ (ignored by git): the
# stripped binaries and the shared libraries the GPU host's image lacks.
# Then: device run with carry [".gpu-carry"] and `bash scripts/gpu-check.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/baton-ccache}
BUILD=${BATON_CUDA_BUILD:-build-cuda}
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBATON_CUDA=ON > /dev/null
targets=(test_backend_cuda baton_gpu_profile baton)
cmake --build "$BUILD" -j2 --target "${targets[@]}"
grep -qx '/.gpu-carry/' .git/info/exclude 2>/dev/null || echo '/.gpu-carry/' >> .git/info/exclude
rm -rf .gpu-carry
mkdir -p .gpu-carry/bin .gpu-carry/lib
cp "$BUILD/tests/test_backend_cuda" "$BUILD/baton_gpu_profile" .gpu-carry/bin/
[ -x "$BUILD/baton" ] && cp "$BUILD/baton" .gpu-carry/bin/ || true
strip .gpu-carry/bin/*
# Libraries from Debian packages (not CUDA's: the GPU image has its own CUDA 13).
for bin in .gpu-carry/bin/*; do
  ldd "$bin" | awk '/=> \//{print $3}' | grep -E '/(lib/x86_64-linux-gnu|usr/lib)/' |
    grep -vE '/(libc|libm|libdl|libpthread|librt|libgcc_s|libstdc\+\+)\.so' || true
done | sort -u | while read -r lib; do cp -L "$lib" .gpu-carry/lib/; done
du -sh .gpu-carry
