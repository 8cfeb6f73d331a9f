// The CPU part of `baton bench-transfer`: moves one request's host-resident
// KV at several prompt lengths over each transport (local, shm, tcp, ucx) against
// ceilings measured in the same run (memcpy, loopback TCP), and prints a
// table (and JSON when asked).
//
// shm, tcp and ucx run the serving side in a forked child process, as in
// deployment; local runs both engines in this process. Block ids are
// scattered (runs of 1..16 consecutive blocks, shuffled) on both sides.
#pragma once

#include <string>
#include <vector>

#include "kv_transfer/kv_region.h"
#include "kv_transfer/tcp_transport.h"

namespace baton {

struct CpuTransferBenchOptions {
  std::vector<int> tokens = {1024, 4096, 16384};
  std::vector<std::string> transports = {"local", "shm", "tcp", "ucx"};
  int repeats = 5;
  KvRegionDesc region;  // shape only (num_blocks and base unused)
  bool checksum_every_read = false;
  int tcp_streams = TcpTransportOptions{}.num_streams;  // the reading side's parallel connections
  std::string json_path;
};

// Prints a table (and JSON when asked); returns the process exit code.
int run_cpu_transfer_bench(const CpuTransferBenchOptions& options);

}  // namespace baton
