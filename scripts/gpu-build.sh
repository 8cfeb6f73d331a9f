#!/usr/bin/env bash
# Builds the CUDA backend's tests and GPU profiler on this (GPU-less) machine
# and gathers what a GPU host needs into .gpu-carry/ (ignored by git): the
# stripped binaries, the shared libraries the GPU host's image lacks, the test
# fixtures (data/, linked at the path the tests hold) and
# gpu-backend-ops.sh. Then: device run with carry [".gpu-carry"] and
# `bash scripts/gpu-check.sh` (tests and benchmark) or
# `bash .gpu-carry/gpu-backend-ops.sh` (the tests alone).
#   BATON_CUDA_BUILD: the build folder (default build-cuda);
#   BATON_GPU_CARRY: where the bundle goes (default .gpu-carry; a folder that
#   git ignores, e.g. one named build-*, if another checkout is the one sent);
#   BATON_GPU_PACK: a folder (git-ignored, e.g. build-gpu-pack) to also get the
#   bundle as bundle.tar.xz (about 6 MB instead of 28: the device takes 64 MiB
#   with the working tree). On the device:
#     mkdir -p /tmp/b && tar -xJf build-gpu-pack/bundle.tar.xz -C /tmp/b && bash /tmp/b/gpu-backend-ops.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/baton-ccache}
BUILD=${BATON_CUDA_BUILD:-build-cuda}
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBATON_CUDA=ON > /dev/null
# BATON_GPU_TARGETS: the targets to build (default: the tests, the profiler and baton;
# a GPU lab, e.g. baton_gpu_lab_decode_chain, joins the bundle when named).
targets=(${BATON_GPU_TARGETS:-test_backend_cuda baton_gpu_profile baton})
cmake --build "$BUILD" -j2 --target "${targets[@]}"
CARRY=${BATON_GPU_CARRY:-.gpu-carry}
rm -rf "$CARRY"
mkdir -p "$CARRY/bin" "$CARRY/lib" "$CARRY/data"
cp "$BUILD/tests/test_backend_cuda" "$BUILD/baton_gpu_profile" "$CARRY/bin/"
[ -x "$BUILD/baton" ] && cp "$BUILD/baton" "$CARRY/bin/" || true
# The GPU labs (src/tools/gpu_lab) when they are among the targets built.
for lab in "$BUILD"/baton_gpu_lab_*; do
  if [ -x "$lab" ]; then cp "$lab" "$CARRY/bin/"; fi
done
strip "$CARRY"/bin/*
cp -r tests/data/fixtures "$CARRY/data/"
echo "$PWD/tests/data" > "$CARRY/test-data-path"
cp scripts/gpu-backend-ops.sh "$CARRY/"
# Libraries from Debian packages (not CUDA's: the GPU image has its own CUDA 13).
for bin in "$CARRY"/bin/*; do
  ldd "$bin" | awk '/=> \//{print $3}' | grep -E '/(lib/x86_64-linux-gnu|usr/lib)/' |
    grep -vE '/(libc|libm|libdl|libpthread|librt|libgcc_s|libstdc\+\+)\.so' || true
done | sort -u | while read -r lib; do cp -L "$lib" "$CARRY/lib/"; done
du -sh "$CARRY"
if [ -n "${BATON_GPU_PACK:-}" ]; then
  mkdir -p "$BATON_GPU_PACK"
  tar -C "$CARRY" -cf - . | xz -T2 -6 > "$BATON_GPU_PACK/bundle.tar.xz"
  du -sh "$BATON_GPU_PACK/bundle.tar.xz"
fi
