# Sourced by the scripts that run on a GPU host (gpu-check.sh, gpu-pd-check.sh):
# NVLink multicast off, and the carried libraries (.gpu-carry/lib) plus the
# host's CUDA 13 runtime and cuBLASLt on the library path.
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export LD_LIBRARY_PATH="$PWD/.gpu-carry/lib:${LD_LIBRARY_PATH:-}"
for lib in libcudart.so.13 libcublasLt.so.13; do
  if ! ldconfig -p | grep -q "$lib"; then
    found=$(find /usr/local /usr/lib /opt / -xdev -name "$lib" 2>/dev/null | head -1)
    [ -n "$found" ] && export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$(dirname "$found")"
  fi
done
