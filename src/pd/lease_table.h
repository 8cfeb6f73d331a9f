// LeaseTable: the prefill side's KV leases. A finished prompt's blocks are
// held under a lease with an unguessable token until its reader says "done",
// the router releases it, or it expires (on the steady clock it is given);
// a reader that is still pulling renews it. Ending a lease hands its blocks
// back to the caller, which gives them to the engine. Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "kv_transfer/block_runs.h"
#include "kv_transfer/transport.h"

namespace baton {

struct LeaseStats {
  int64_t num_leases = 0;         // live
  int64_t num_blocks_pinned = 0;  // under live leases
  int64_t num_lease_expirations = 0;
  int64_t num_leases_done = 0;  // ended by the reader's "done"
  int64_t num_lease_renewals = 0;
  int64_t num_leases_released = 0;  // ended by the router giving up (release)
  int64_t num_grants_denied = 0;    // reads/done/renew/release refused: unknown lease, wrong token or blocks
};

// Why a lease ends before it expires.
enum class LeaseEnd { kDone, kReleased };

class LeaseTable {
 public:
  LeaseTable(int64_t lease_ms, std::function<TimePoint()> now);

  // Starts the lease of `request_id` over `block_ids` with `token` (empty:
  // no reader can present it, so it can only expire). Returns the blocks of
  // a live lease of the same id it replaced (none: empty).
  std::vector<int> start(const std::string& request_id, std::vector<int> block_ids, std::string token);
  // OK when the lease exists, the token matches (constant time) and, for a
  // read, every run lies inside its blocks; else NOT_FOUND or
  // PERMISSION_DENIED (counted).
  Status check(const KvGrant& grant, const std::vector<BlockRun>* runs);
  // Extends a live lease by the lease length; false when there is none.
  bool renew(const std::string& request_id);
  // Ends a live lease; its blocks (empty when there was none: `found` false).
  std::vector<int> end(const std::string& request_id, LeaseEnd why, bool* found);
  // Ends every lease past its expiry; their blocks, one entry a lease.
  std::vector<std::vector<int>> expire();
  bool has_expired() const;  // a lease is past its expiry now
  bool empty() const;
  int64_t lease_ms() const { return lease_ms_; }
  LeaseStats stats() const;

 private:
  struct Lease {
    std::vector<int> block_ids;
    TimePoint expires;
    std::string token;  // hex from RAND_bytes; a reader presents it
  };
  using Map = std::unordered_map<std::string, Lease>;
  // Removes a lease (mu_ held) and returns its blocks.
  std::vector<int> erase_locked(Map::iterator it);

  const int64_t lease_ms_;
  const std::function<TimePoint()> now_;
  mutable std::mutex mu_;
  Map leases_;
  LeaseStats stats_;
};

}  // namespace baton
