#include "pd/pd_metrics.h"

namespace baton {

PdMetrics::PdMetrics(MetricsRegistry& r, const MetricLabels& l)
    : blocks_pinned_(&r.gauge("baton:kv_blocks_pinned", "KV blocks held under a lease, awaiting a remote reader", l)),
      leases_(&r.gauge("baton:kv_leases", "Live KV leases (finished prefills awaiting a decode instance)", l)),
      lease_expirations_(&r.counter("baton:kv_lease_expirations_total", "KV leases that expired unread", l)),
      leases_done_(&r.counter("baton:kv_leases_done_total", "KV leases ended by the decode side's done", l)),
      lease_renewals_(&r.counter("baton:kv_lease_renewals_total", "KV lease renewals from decode peers", l)),
      blocks_sent_(&r.counter("baton:kv_blocks_sent_total", "KV blocks of leases a decode peer finished reading", l)),
      bytes_sent_(&r.counter("baton:kv_bytes_sent_total", "Bytes of KV blocks a decode peer finished reading", l)),
      blocks_received_(&r.counter("baton:kv_blocks_received_total", "KV blocks pulled from prefill peers", l)),
      bytes_received_(&r.counter("baton:kv_bytes_received_total", "Bytes of KV pulled from prefill peers", l)),
      blocks_local_hit_(&r.counter("baton:kv_blocks_local_hit_total",
                                   "KV blocks not pulled because the local prefix cache held them", l)),
      transfers_ok_(&r.counter("baton:kv_transfers_total", "KV pulls that completed", l)),
      transfers_failed_(&r.counter("baton:kv_transfers_failed_total", "KV pulls that failed", l)),
      transfer_seconds_(&r.histogram("baton:kv_transfer_seconds", "Time of one request's KV pull",
                                     {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
                                     l)) {}

void PdMetrics::set_leases(int64_t num_leases, int64_t num_blocks_pinned) {
  leases_->set(static_cast<double>(num_leases));
  blocks_pinned_->set(static_cast<double>(num_blocks_pinned));
}

void PdMetrics::lease_expired() { lease_expirations_->inc(); }
void PdMetrics::lease_renewed() { lease_renewals_->inc(); }

void PdMetrics::lease_done(int64_t num_blocks, size_t block_bytes) {
  leases_done_->inc();
  blocks_sent_->inc(static_cast<double>(num_blocks));
  bytes_sent_->inc(static_cast<double>(num_blocks) * static_cast<double>(block_bytes));
}

void PdMetrics::pull_ok(int64_t num_blocks, size_t block_bytes, double seconds) {
  transfers_ok_->inc();
  blocks_received_->inc(static_cast<double>(num_blocks));
  bytes_received_->inc(static_cast<double>(num_blocks) * static_cast<double>(block_bytes));
  transfer_seconds_->observe(seconds);
}

void PdMetrics::pull_failed() { transfers_failed_->inc(); }
void PdMetrics::local_hit(int64_t num_blocks) { blocks_local_hit_->inc(static_cast<double>(num_blocks)); }

}  // namespace baton
