// Moving block runs between two device allocations (possibly on two GPUs of
// one host): batched cudaMemcpyAsync for a few large runs, one gather kernel
// for many small ones. Never one copy per block per layer.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/status.h"
#include "kv_transfer/block_runs.h"

namespace baton {

// A copy of `num_bytes` from src_base + src_offset to dst_base + dst_offset.
struct DeviceCopyChunk {
  int64_t src_offset = 0;
  int64_t dst_offset = 0;
  int64_t num_bytes = 0;
};

// Runs with at most this many entries go as one cudaMemcpyAsync each.
inline constexpr size_t kMaxMemcpyRuns = 32;
// The gather kernel's unit of work (one CTA per chunk).
inline constexpr int64_t kGatherChunkBytes = 1 << 20;

// Splits runs into chunks of at most kGatherChunkBytes.
std::vector<DeviceCopyChunk> split_runs(const std::vector<BlockRun>& runs, size_t block_bytes);

// Enqueues the copy of every run (remote -> local) on `stream`; the caller
// synchronizes. `dst_base` is on the current device; `src_base` is a device
// pointer reachable from it (peer access or an IPC mapping).
Status enqueue_block_copy(uint8_t* dst_base, const uint8_t* src_base, size_t block_bytes,
                          const std::vector<BlockRun>& runs, cudaStream_t stream);

// Enqueues the gather kernel over chunks (device table uploaded here).
Status enqueue_gather(uint8_t* dst_base, const uint8_t* src_base, const std::vector<DeviceCopyChunk>& chunks,
                      cudaStream_t stream);

// Status from a CUDA error code, naming what was being done.
Status cuda_status(cudaError_t err, const char* what);

}  // namespace baton
