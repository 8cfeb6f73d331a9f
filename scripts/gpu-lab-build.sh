#!/usr/bin/env bash
# Builds a GPU lab bundle on this (GPU-less) machine: main's profiler and
# tests as variant v0, and one build per variant of a lab patch (docs/lab/)
# with its switches set, all stripped into PACK_DIR/bundle.tar.xz for
# scripts/gpu-lab-call.sh. The variants build one after another in
# build-cuda (or $BATON_CUDA_BUILD); src/ and tests/ must be clean, and are restored after.
#   bash scripts/gpu-lab-build.sh PACK_DIR VARIANT...
# VARIANT: TAG[+tests]=PATCH[:MACRO=VALUE,...], e.g.
#   v4+tests=docs/lab/gemv-value-gate.patch:BATON_LAB_VGATE=4
# (session 29's patch; git history keeps it at 861e2fc6)
# sets `#define BATON_LAB_VGATE 4` in the files the patch adds it to; +tests
# also carries the variant's test_backend_cuda. v0 (main, with its tests) is
# always built. PACK_DIR must be a folder git ignores (build-gpu-*): carry it
# alone; bundles of up to 16.1 MB travelled with the tree, one of 22 MB did not.
set -euo pipefail
cd "$(dirname "$0")/.."
pack=${1:?usage: gpu-lab-build.sh PACK_DIR VARIANT...}
shift
mkdir -p "$pack"
git check-ignore -q "$pack" || { echo "gpu-lab-build: $pack is not ignored by git"; exit 2; }
git diff --quiet -- src tests || { echo "gpu-lab-build: src/ or tests/ has changes; commit or stash them first"; exit 2; }
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/baton-ccache}
BUILD=${BATON_CUDA_BUILD:-build-cuda}
stage=$(mktemp -d)
trap 'git checkout -q -- src tests; rm -rf "$stage"' EXIT
# The libraries, fixtures and backend-ops script of main's bundle (and main's binaries).
BATON_GPU_CARRY="$stage" BATON_GPU_TARGETS="test_backend_cuda baton_gpu_profile" bash scripts/gpu-build.sh > /dev/null
rm -f "$stage/bin/baton"  # gpu-build.sh carries it when built; the calls do not need it
mv "$stage/bin/baton_gpu_profile" "$stage/bin/baton_gpu_profile_v0"
mv "$stage/bin/test_backend_cuda" "$stage/bin/test_backend_cuda_v0"
for spec in "$@"; do
  name=${spec%%=*} rest=${spec#*=}
  tag=${name%+tests} patch=${rest%%:*} switches=""
  [ "$rest" != "$patch" ] && switches=${rest#*:}
  [ -f "$patch" ] || { echo "gpu-lab-build: $tag: no patch $patch"; exit 2; }
  git checkout -q -- src tests
  git apply "$patch"
  files=$(git diff --name-only -- src tests)
  for sw in ${switches//,/ }; do
    macro=${sw%%=*} value=${sw#*=}
    # shellcheck disable=SC2086  # the patch's files
    hits=$(grep -l "^#define $macro " $files || true)
    [ -n "$hits" ] || { echo "gpu-lab-build: $tag: $patch defines no $macro"; exit 2; }
    # shellcheck disable=SC2086
    sed -i "s|^#define $macro .*|#define $macro $value|" $hits
  done
  targets=(baton_gpu_profile)
  [ "$name" != "$tag" ] && targets+=(test_backend_cuda)
  cmake --build "$BUILD" -j2 --target "${targets[@]}" > "$stage/build.log" 2>&1 ||
    { tail -30 "$stage/build.log"; exit 1; }
  cp "$BUILD/baton_gpu_profile" "$stage/bin/baton_gpu_profile_$tag"
  [ "$name" != "$tag" ] && cp "$BUILD/tests/test_backend_cuda" "$stage/bin/test_backend_cuda_$tag"
  strip "$stage/bin/"*"_$tag"
  echo "built $tag ($SECONDS s)"
done
rm -f "$stage/build.log"
git checkout -q -- src tests
tar -C "$stage" -cf - . | xz -9e > "$pack/bundle.tar.xz"  # one stream: the variants share most bytes
ls -la "$pack/bundle.tar.xz"
