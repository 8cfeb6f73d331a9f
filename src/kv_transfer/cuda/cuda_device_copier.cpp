#include "kv_transfer/cuda/cuda_device_copier.h"

#include <cuda_runtime.h>

#include "kv_transfer/cuda/cuda_block_copy.h"
#include "kv_transfer/transport_registry.h"

namespace baton {

Status CudaDeviceCopier::to_host(void* host_dst, const void* device_src, size_t num_bytes) {
  BATON_RETURN_IF_ERROR(cuda_status(cudaSetDevice(device_id_), "cudaSetDevice"));
  return cuda_status(cudaMemcpy(host_dst, device_src, num_bytes, cudaMemcpyDeviceToHost),
                     "staging KV to host");
}

Status CudaDeviceCopier::to_device(void* device_dst, const void* host_src, size_t num_bytes) {
  BATON_RETURN_IF_ERROR(cuda_status(cudaSetDevice(device_id_), "cudaSetDevice"));
  return cuda_status(cudaMemcpy(device_dst, host_src, num_bytes, cudaMemcpyHostToDevice),
                     "staging KV to device");
}

namespace {
// Lets a tcp KV connector stage a GPU-resident KV cache through the host.
const bool kRegistered = [] {
  register_device_copier_factory([](int device_id) -> Result<std::unique_ptr<DeviceCopier>> {
    if (device_id < 0) return invalid_argument("device copier: no CUDA device ordinal ({})", device_id);
    return std::unique_ptr<DeviceCopier>(std::make_unique<CudaDeviceCopier>(device_id));
  });
  return true;
}();
}  // namespace

}  // namespace baton
