// The GPU part of `baton bench-transfer --device cuda`: moves one request's
// KV with cuda_ipc from a serving process on GPU src_device to this process
// on GPU dst_device, against cudaMemcpyPeer of the same bytes measured in
// the same run.
#pragma once

#include <string>
#include <vector>

#include "kv_transfer/kv_region.h"

namespace baton {

struct CudaTransferBenchOptions {
  std::vector<int> tokens;
  int repeats = 5;
  KvRegionDesc region;  // shape only (num_blocks and base unused)
  int src_device = 0;
  int dst_device = 1;
  std::string json_path;
};

// Prints a table (and JSON when asked); returns the process exit code.
// Forks the serving process before touching CUDA in this process.
int run_cuda_transfer_bench(const CudaTransferBenchOptions& options);

}  // namespace baton
