// The GPU part of `baton bench-transfer --device cuda`: moves one request's
// device-resident KV from a serving process (GPU src_device) to this process
// (GPU dst_device, or the same GPU when only one is visible) over each
// transport asked for, against a ceiling measured in the same run:
//   cuda_ipc: cudaMemcpyPeer of the same bytes (on one GPU, serving process
//             and reader both on it: a copy within the card);
//   tcp:      one plain loopback TCP stream of the same bytes (both ends stage
//             through pinned host buffers; the pinned host<->device copy rates
//             are printed too, as the other bound of that path);
//   ucx:      the same loopback TCP ceiling, to read against the tcp rows
//             (UCX_TLS picks UCX's transports; GPU memory goes through UCX's
//             CUDA transports when its build has them, else staged like tcp).
#pragma once

#include <string>
#include <vector>

#include "kv_transfer/kv_region.h"

#include "kv_transfer/tcp_transport.h"

namespace baton {

struct CudaTransferBenchOptions {
  std::vector<int> tokens;
  std::vector<std::string> transports = {"cuda_ipc", "tcp", "ucx"};
  int repeats = 5;
  KvRegionDesc region;  // shape only (num_blocks and base unused)
  int src_device = 0;
  int dst_device = 1;                                   // falls back to src_device when it is not visible
  int tcp_streams = TcpTransportOptions{}.num_streams;  // tcp: the reading side's parallel connections
  std::string json_path;
};

// Prints a table (and JSON when asked); returns the process exit code.
// Forks one serving process per transport before touching CUDA in this process.
int run_cuda_transfer_bench(const CudaTransferBenchOptions& options);

}  // namespace baton
