# Sourced by the scripts that run on a GPU host (gpu-check.sh, gpu-pd-check.sh,
# gpu-pd-fp8-check.sh, gpu-pd-stream-ttft.sh): NVLink multicast off, the carried
# libraries (.gpu-carry/lib) plus the host's CUDA 13 runtime, cuBLASLt and NCCL
# on the library path, and the helpers below.
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export LD_LIBRARY_PATH="$PWD/.gpu-carry/lib:${LD_LIBRARY_PATH:-}"
for lib in libcudart.so.13 libcublasLt.so.13 libnccl.so.2; do
  if ! ldconfig -p | grep -q "$lib"; then
    found=$(find /usr/local /usr/lib /opt / -xdev -name "$lib" 2>/dev/null | head -1)
    [ -n "$found" ] && export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$(dirname "$found")"
  fi
done

# The Llama-3.1-8B-shaped model (random weights, seed 0) the GPU examples
# serve, written once per host into models/llama3.1-8b. $1: the baton binary,
# $2: a folder for the log.
ensure_gpu_model() {
  local b=$1 logdir=$2 model=models/llama3.1-8b
  [ -f "$model/config.json" ] && return 0
  echo "== model ($SECONDS s)"
  "$b" init-model --preset llama3.1-8b --out "$model" --seed 0 --tokenizer .gpu-carry/tokenizer-llama3 \
    > "$logdir/init-model.log" 2>&1 || { echo "init-model failed"; tail "$logdir/init-model.log"; return 1; }
  echo "model written ($SECONDS s)"
}

# Waits until $1/health answers 200, for up to $2 seconds (default 90).
wait_healthy() {
  for _ in $(seq 1 "${2:-90}"); do
    curl -sf "$1/health" > /dev/null 2>&1 && return 0
    sleep 1
  done
  echo "not healthy: $1"; return 1
}
