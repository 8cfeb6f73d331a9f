// CudaDeviceCopier: the tcp transport's staging hook for KV in GPU memory.
// Copies go on non-blocking streams of the copier's own (a stream is taken
// from a small free list for each copy and given back after it synchronises),
// so concurrent transfers never serialise on the legacy default stream; the
// staging buffers it allocates are page-locked (cudaHostAlloc, portable), so
// copies run at pinned speed instead of bouncing through the driver's buffer.
// It also holds a tensor-parallel instance's wire-layout KV region in device
// memory and copies head slices into and out of it (kv_region.h).
#pragma once

#include <cuda_runtime.h>

#include <mutex>
#include <vector>

#include "kv_transfer/kv_region.h"

namespace baton {

class CudaDeviceCopier : public DeviceCopier {
 public:
  explicit CudaDeviceCopier(int device_id) : device_id_(device_id) {}
  ~CudaDeviceCopier() override;  // destroys its streams
  CudaDeviceCopier(const CudaDeviceCopier&) = delete;
  CudaDeviceCopier& operator=(const CudaDeviceCopier&) = delete;

  Status to_host(void* host_dst, const void* device_src, size_t num_bytes) override;
  Status to_device(void* device_dst, const void* host_src, size_t num_bytes) override;
  Result<void*> alloc_host(size_t num_bytes) override;  // cudaHostAlloc
  void free_host(void* ptr) override;                   // cudaFreeHost
  bool pins_host() const override { return true; }
  Result<void*> alloc_device(size_t num_bytes) override;  // cudaMalloc
  void free_device(void* ptr) override;                   // cudaFree
  // cudaMemcpy2DAsync (cudaMemcpyDefault: any device or host pointer) on one stream, then one synchronise.
  Status copy_strided(const std::vector<StridedCopy>& copies) override;

  int device_id() const { return device_id_; }
  // Streams created so far (at most the number of copies ever in flight at once).
  int num_streams() const;

 private:
  Status copy(void* dst, const void* src, size_t num_bytes, cudaMemcpyKind kind, const char* what);
  Result<cudaStream_t> take_stream();
  void give_back(cudaStream_t stream);

  int device_id_;
  mutable std::mutex mu_;  // guards the stream lists
  std::vector<cudaStream_t> idle_streams_;
  std::vector<cudaStream_t> streams_;  // every stream created
};

}  // namespace baton
