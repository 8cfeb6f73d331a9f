#include "kv_transfer/cuda/cuda_device_copier.h"

#include <algorithm>

#include <fmt/format.h>

#include "common/log.h"
#include "kv_transfer/cuda/cuda_block_copy.h"

namespace baton {

CudaDeviceCopier::~CudaDeviceCopier() {
  std::lock_guard<std::mutex> lock(mu_);
  if (streams_.empty()) return;
  // Best effort: at process exit the runtime may already be gone.
  if (cudaSetDevice(device_id_) != cudaSuccess) return;
  for (cudaStream_t s : streams_) cudaStreamDestroy(s);
}

int CudaDeviceCopier::num_streams() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(streams_.size());
}

Result<cudaStream_t> CudaDeviceCopier::take_stream() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_streams_.empty()) {
      cudaStream_t s = idle_streams_.back();
      idle_streams_.pop_back();
      return s;
    }
  }
  cudaStream_t s = nullptr;
  BATON_RETURN_IF_ERROR(cuda_status(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking),
                                    "cudaStreamCreateWithFlags (KV staging stream)"));
  std::lock_guard<std::mutex> lock(mu_);
  streams_.push_back(s);
  return s;
}

void CudaDeviceCopier::give_back(cudaStream_t stream) {
  std::lock_guard<std::mutex> lock(mu_);
  idle_streams_.push_back(stream);
}

Status CudaDeviceCopier::copy(void* dst, const void* src, size_t num_bytes, cudaMemcpyKind kind, const char* what) {
  if (num_bytes == 0) return Status::ok();
  // The calling thread may be new (a staging worker): bind it to our device.
  BATON_RETURN_IF_ERROR(cuda_status(cudaSetDevice(device_id_), "cudaSetDevice (KV staging)"));
  BATON_ASSIGN_OR_RETURN(cudaStream_t stream, take_stream());
  Status st = cuda_status(cudaMemcpyAsync(dst, src, num_bytes, kind, stream),
                          kind == cudaMemcpyDeviceToHost ? "cudaMemcpyAsync (staging KV to host)"
                                                         : "cudaMemcpyAsync (staging KV to device)");
  if (st.is_ok()) st = cuda_status(cudaStreamSynchronize(stream), "cudaStreamSynchronize (KV staging)");
  give_back(stream);
  if (!st.is_ok()) return st.with_context(fmt::format("{} ({} bytes, GPU {})", what, num_bytes, device_id_));
  return Status::ok();
}

Status CudaDeviceCopier::to_host(void* host_dst, const void* device_src, size_t num_bytes) {
  return copy(host_dst, device_src, num_bytes, cudaMemcpyDeviceToHost, "staging KV to host");
}

Status CudaDeviceCopier::to_device(void* device_dst, const void* host_src, size_t num_bytes) {
  return copy(device_dst, host_src, num_bytes, cudaMemcpyHostToDevice, "staging KV to device");
}

Result<void*> CudaDeviceCopier::alloc_host(size_t num_bytes) {
  if (num_bytes == 0) return invalid_argument("staging buffer: zero bytes asked");
  BATON_RETURN_IF_ERROR(cuda_status(cudaSetDevice(device_id_), "cudaSetDevice (KV staging buffer)"));
  void* p = nullptr;
  const cudaError_t err = cudaHostAlloc(&p, num_bytes, cudaHostAllocPortable);
  if (err != cudaSuccess) {
    cudaGetLastError();  // not sticky: clear it
    return resource_exhausted("cudaHostAlloc of {} bytes of pinned staging memory failed: {}", num_bytes,
                              cudaGetErrorString(err));
  }
  return p;
}

void CudaDeviceCopier::free_host(void* ptr) {
  if (ptr == nullptr) return;
  const cudaError_t err = cudaFreeHost(ptr);
  if (err != cudaSuccess) BATON_LOG_WARN("cudaFreeHost of a KV staging buffer failed: {}", cudaGetErrorString(err));
}

Result<void*> CudaDeviceCopier::alloc_device(size_t num_bytes) {
  if (num_bytes == 0) return invalid_argument("device KV region: zero bytes asked");
  BATON_RETURN_IF_ERROR(cuda_status(cudaSetDevice(device_id_), "cudaSetDevice (KV region)"));
  void* p = nullptr;
  const cudaError_t err = cudaMalloc(&p, num_bytes);
  if (err != cudaSuccess) {
    cudaGetLastError();  // not sticky: clear it
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    return resource_exhausted(
        "the wire-layout KV region of a tensor-parallel instance needs {:.2f} GiB on GPU {}, which has {:.2f} GiB "
        "free: {}",
        num_bytes / 1073741824.0, device_id_, free_b / 1073741824.0, cudaGetErrorString(err));
  }
  return p;
}

void CudaDeviceCopier::free_device(void* ptr) {
  if (ptr == nullptr || cudaSetDevice(device_id_) != cudaSuccess) return;
  cudaFree(ptr);
}

Status CudaDeviceCopier::copy_strided(const std::vector<StridedCopy>& copies) {
  if (copies.empty()) return Status::ok();
  BATON_RETURN_IF_ERROR(cuda_status(cudaSetDevice(device_id_), "cudaSetDevice (KV relayout)"));
  BATON_ASSIGN_OR_RETURN(cudaStream_t stream, take_stream());
  // Heights in pieces of at most 65535 rows: a precaution, one call per piece costs microseconds.
  constexpr size_t kMaxRows = 65535;
  Status st;
  for (const StridedCopy& c : copies) {
    for (size_t r = 0; r < c.rows && st.is_ok(); r += kMaxRows) {
      st = cuda_status(cudaMemcpy2DAsync(static_cast<char*>(c.dst) + r * c.dst_pitch, c.dst_pitch,
                                         static_cast<const char*>(c.src) + r * c.src_pitch, c.src_pitch, c.width,
                                         std::min(kMaxRows, c.rows - r), cudaMemcpyDefault, stream),
                       "cudaMemcpy2DAsync (KV relayout)");
    }
    if (!st.is_ok()) break;
  }
  // Synchronise even after a failed enqueue: the copies queued before it still run.
  Status synced = cuda_status(cudaStreamSynchronize(stream), "cudaStreamSynchronize (KV relayout)");
  give_back(stream);
  if (st.is_ok()) st = synced;
  if (!st.is_ok()) return st.with_context(fmt::format("{} strided KV copies on GPU {}", copies.size(), device_id_));
  return Status::ok();
}

}  // namespace baton
