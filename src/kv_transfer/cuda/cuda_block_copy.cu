#include "kv_transfer/cuda/cuda_block_copy.h"

namespace baton {

namespace {

// One CTA per chunk (grid-stride over chunks); each thread moves 16 bytes at
// a time when the chunk is 16-byte aligned on both sides, else bytes.
__global__ void gather_kernel(uint8_t* __restrict__ dst, const uint8_t* __restrict__ src,
                              const DeviceCopyChunk* __restrict__ chunks, int64_t num_chunks) {
  for (int64_t c = blockIdx.x; c < num_chunks; c += gridDim.x) {
    const DeviceCopyChunk ch = chunks[c];
    const uint8_t* s = src + ch.src_offset;
    uint8_t* d = dst + ch.dst_offset;
    const bool aligned = ((reinterpret_cast<uintptr_t>(s) | reinterpret_cast<uintptr_t>(d) |
                           static_cast<uintptr_t>(ch.num_bytes)) &
                          15) == 0;
    if (aligned) {
      const int64_t n = ch.num_bytes / 16;
      const uint4* s4 = reinterpret_cast<const uint4*>(s);
      uint4* d4 = reinterpret_cast<uint4*>(d);
      for (int64_t i = threadIdx.x; i < n; i += blockDim.x) d4[i] = s4[i];
    } else {
      for (int64_t i = threadIdx.x; i < ch.num_bytes; i += blockDim.x) d[i] = s[i];
    }
  }
}

}  // namespace

Status cuda_status(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return Status::ok();
  return internal_error("CUDA error in {}: {} ({})", what, cudaGetErrorString(err), static_cast<int>(err));
}

std::vector<DeviceCopyChunk> split_runs(const std::vector<BlockRun>& runs, size_t block_bytes) {
  std::vector<DeviceCopyChunk> chunks;
  for (const auto& run : runs) {
    const int64_t src = run.remote_first * static_cast<int64_t>(block_bytes);
    const int64_t dst = run.local_first * static_cast<int64_t>(block_bytes);
    const int64_t total = run.num_blocks * static_cast<int64_t>(block_bytes);
    for (int64_t off = 0; off < total; off += kGatherChunkBytes) {
      chunks.push_back({src + off, dst + off, std::min<int64_t>(kGatherChunkBytes, total - off)});
    }
  }
  return chunks;
}

Status enqueue_gather(uint8_t* dst_base, const uint8_t* src_base, const std::vector<DeviceCopyChunk>& chunks,
                      cudaStream_t stream) {
  if (chunks.empty()) return Status::ok();
  const size_t table_bytes = chunks.size() * sizeof(DeviceCopyChunk);
  DeviceCopyChunk* table = nullptr;
  BATON_RETURN_IF_ERROR(
      cuda_status(cudaMallocAsync(reinterpret_cast<void**>(&table), table_bytes, stream), "cudaMallocAsync"));
  BATON_RETURN_IF_ERROR(cuda_status(cudaMemcpyAsync(table, chunks.data(), table_bytes, cudaMemcpyHostToDevice, stream),
                                    "uploading the copy table"));
  // The upload above reads pageable memory: it completes before returning,
  // so `chunks` may go away after this call.
  const int64_t num_chunks = static_cast<int64_t>(chunks.size());
  const int grid = static_cast<int>(std::min<int64_t>(num_chunks, 4096));
  gather_kernel<<<grid, 512, 0, stream>>>(dst_base, src_base, table, num_chunks);
  BATON_RETURN_IF_ERROR(cuda_status(cudaGetLastError(), "gather kernel launch"));
  return cuda_status(cudaFreeAsync(table, stream), "cudaFreeAsync");
}

Status enqueue_block_copy(uint8_t* dst_base, const uint8_t* src_base, size_t block_bytes,
                          const std::vector<BlockRun>& runs, cudaStream_t stream) {
  if (runs.size() <= kMaxMemcpyRuns) {
    for (const auto& run : runs) {
      BATON_RETURN_IF_ERROR(cuda_status(
          cudaMemcpyAsync(dst_base + static_cast<size_t>(run.local_first) * block_bytes,
                          src_base + static_cast<size_t>(run.remote_first) * block_bytes,
                          static_cast<size_t>(run.num_blocks) * block_bytes, cudaMemcpyDeviceToDevice, stream),
          "cudaMemcpyAsync (KV run)"));
    }
    return Status::ok();
  }
  return enqueue_gather(dst_base, src_base, split_runs(runs, block_bytes), stream);
}

}  // namespace baton
