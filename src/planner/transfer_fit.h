// The KV pull's time between PD instances, fitted from `baton bench-transfer`
// measurements: its JSON rows (transport, tcp_streams, bytes, median_ms)
// for one transport give seconds = latency + bytes / bandwidth by least
// squares (two or more sizes; one size: its bandwidth, no latency).
#pragma once

#include <string>

#include "common/json.h"
#include "common/status.h"
#include "planner/cluster_sim.h"

namespace baton::planner {

struct TransferFit {
  double latency_s = 0;
  double bytes_per_s = 0;
  int num_rows = 0;
  Json to_json() const;
};

// The rows of `transport` ("cuda_ipc", "tcp", ...) in a bench-transfer
// document; tcp_streams > 0 keeps the rows of that many streams (0: every
// row of the transport).
Result<TransferFit> fit_transfer(const Json& bench_transfer, const std::string& transport, int tcp_streams = 0);

}  // namespace baton::planner
