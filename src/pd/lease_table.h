// LeaseTable: the prefill side's KV leases. A finished prompt's blocks are
// held under a lease with an unguessable token until its reader says "done",
// the router releases it, or it expires (on the steady clock it is given);
// a reader that is still pulling renews it. Ending a lease hands its blocks
// back to the caller, which gives them to the engine. Thread-safe.
//
// Streamed KV (docs/pd.md, "Streamed KV"): a lease can start while its
// prompt is still being computed. It then owns no blocks (the running
// request does); the engine publishes after each step how many leading
// blocks hold final KV, readers may read only those and long-poll for more
// (progress), and at the end the lease takes the blocks over (finish) or
// stops for good (abort: reads and progress are refused from then on).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "common/json.h"
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
  // Starts a streamed lease: no blocks yet, none ready, none owned.
  std::vector<int> start_streamed(const std::string& request_id, std::string token);
  // A streamed lease's blocks so far, the first `num_blocks_ready` of them
  // final. Blocks already ready that changed (the prefill was preempted)
  // abort the lease. False when there is no live, unaborted lease.
  bool publish(const std::string& request_id, std::vector<int> block_ids, int64_t num_blocks_ready);
  // The prompt is done: the streamed lease takes `block_ids` over (true).
  // False when it ended or was aborted: the caller frees the blocks.
  bool finish_streamed(const std::string& request_id, std::vector<int>& block_ids);
  // The streamed prompt stopped (`why`). With no reader seen yet the lease
  // ends at once; otherwise it is kept, aborted, owning `block_ids` (a read
  // may still be copying them) until its reader's done, a release or
  // expiry. Returns the blocks for the caller to free now.
  std::vector<int> abort_streamed(const std::string& request_id, const std::string& why, std::vector<int> block_ids);
  // A reader's progress query: waits (real time, at most wait_ms) until the
  // lease has more than num_blocks_known ready blocks, finished, or stopped.
  // Renews the lease. {block_ids: ready ones past num_blocks_known,
  // num_blocks_ready, finished}; ABORTED when the prompt stopped.
  Result<Json> progress(const KvGrant& grant, int64_t num_blocks_known, int64_t wait_ms);
  // Wakes every progress wait for good (shutdown).
  void close();
  // OK when the lease exists, the token matches (constant time) and, for a
  // read, every run lies inside its ready blocks; else NOT_FOUND or
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
    std::string token;             // hex from RAND_bytes; a reader presents it
    bool owns_blocks = true;       // false while a streamed prompt computes
    bool finished = true;          // streamed: false until the prompt is done
    int64_t num_blocks_ready = 0;  // blocks [0, this) hold final KV
    bool reader_seen = false;      // a progress query came
    std::string aborted;           // non-empty: why the stream stopped
  };
  using Map = std::unordered_map<std::string, Lease>;
  static bool keeps_ready_blocks(const Lease& lease, const std::vector<int>& block_ids);
  // The live streamed lease of a prompt still computing whose final blocks
  // `block_ids` keep (mu_ held; wakes progress waiters). Null when there is
  // none; one whose final blocks moved is aborted (preempted) first.
  Lease* computing_stream_locked(const std::string& request_id, const std::vector<int>& block_ids);
  // Removes a lease (mu_ held) and returns its blocks.
  std::vector<int> erase_locked(Map::iterator it);

  const int64_t lease_ms_;
  const std::function<TimePoint()> now_;
  mutable std::mutex mu_;
  std::condition_variable progress_cv_;  // publish, finish, abort, end
  bool closed_ = false;
  Map leases_;
  LeaseStats stats_;
};

}  // namespace baton
