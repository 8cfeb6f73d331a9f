// Error handling and small RAII helpers for the CUDA backend. CUDA failures
// at load/init become Status; failures inside a step abort (the device state
// is unknown after a failed launch).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <utility>

#include "common/check.h"
#include "common/status.h"

namespace baton::cuda {

inline Status cuda_status(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return Status::ok();
  return internal_error("CUDA error in {}: {} ({})", what, cudaGetErrorString(err), static_cast<int>(err));
}

}  // namespace baton::cuda

#define BATON_CUDA_RETURN(expr) BATON_RETURN_IF_ERROR(::baton::cuda::cuda_status((expr), #expr))
#define BATON_CUDA_CHECK(expr)                                                                             \
  do {                                                                                                     \
    cudaError_t _baton_err = (expr);                                                                       \
    BATON_CHECK(_baton_err == cudaSuccess, "CUDA error in {}: {}", #expr, cudaGetErrorString(_baton_err)); \
  } while (0)

namespace baton::cuda {

// One device allocation, freed on destruction.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  ~DeviceBuffer() { reset(); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)), bytes_(o.bytes_) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      reset();
      ptr_ = std::exchange(o.ptr_, nullptr);
      bytes_ = o.bytes_;
    }
    return *this;
  }

  Status allocate(size_t bytes) {
    reset();
    if (bytes == 0) return Status::ok();
    void* p = nullptr;
    cudaError_t err = cudaMalloc(&p, bytes);
    if (err != cudaSuccess) {
      cudaGetLastError();
      return resource_exhausted("cudaMalloc of {} bytes failed: {}", bytes, cudaGetErrorString(err));
    }
    ptr_ = p;
    bytes_ = bytes;
    return Status::ok();
  }
  void reset() {
    if (ptr_) cudaFree(ptr_);
    ptr_ = nullptr;
    bytes_ = 0;
  }
  void* get() const { return ptr_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace baton::cuda
