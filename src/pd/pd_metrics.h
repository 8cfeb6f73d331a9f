// PdMetrics: the baton:kv_* series of a PD instance in a MetricsRegistry
// (which must outlive it). The prefill side sets the lease series, the
// decode side the pull series; each method is one event.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/metrics_registry.h"

namespace baton {

class PdMetrics {
 public:
  PdMetrics(MetricsRegistry& registry, const MetricLabels& labels);

  // Prefill side.
  void set_leases(int64_t num_leases, int64_t num_blocks_pinned);
  void lease_expired();
  void lease_renewed();
  void lease_done(int64_t num_blocks, size_t block_bytes);  // its reader finished
  // Decode side.
  void pull_ok(int64_t num_blocks, size_t block_bytes, double seconds);
  void pull_failed();
  void local_hit(int64_t num_blocks);

 private:
  Gauge* blocks_pinned_;
  Gauge* leases_;
  Counter* lease_expirations_;
  Counter* leases_done_;
  Counter* lease_renewals_;
  Counter* blocks_sent_;
  Counter* bytes_sent_;
  Counter* blocks_received_;
  Counter* bytes_received_;
  Counter* blocks_local_hit_;
  Counter* transfers_ok_;
  Counter* transfers_failed_;
  Histogram* transfer_seconds_;
};

}  // namespace baton
