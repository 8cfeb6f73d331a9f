// The KV event stream of one instance (DESIGN.md "KV-aware routing"): the
// engine thread publishes its block pool's events (kv/kv_event.h) and its
// load after each step; subscribers (the /v1/kv/events endpoint, one per
// router) get numbered JSON batches. A subscriber starts from a snapshot (the
// whole set of cached hashes, at a sequence number) and then gets every
// batch after it, numbered seq+1, seq+2, ...: a gap means it missed some and
// resyncs from a fresh snapshot. The epoch (random per publisher) changes
// when the instance restarts. Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "common/json.h"
#include "kv/kv_event.h"

namespace baton {

// What a router weighs besides cached overlap.
struct KvLoad {
  int num_waiting = 0;                // requests queued for a slot
  int num_running = 0;                // requests in the running batch
  double kv_usage = 0.0;              // 1 - free blocks / total
  int64_t waiting_prompt_tokens = 0;  // prompt tokens of the waiting requests still to compute
  double prefill_tokens_per_s = 0.0;  // measured prompt throughput (recent steps with prefill work), 0 = none yet

  Json to_json() const;
  static KvLoad from_json(const Json& j);  // missing fields stay 0
};

class KvEventPublisher {
 public:
  // Gets the JSON text of each batch, in order, on the publishing thread:
  // keep it short (post it elsewhere).
  using Sink = std::function<void(std::shared_ptr<const std::string> batch)>;

  explicit KvEventPublisher(int block_size);

  // Engine thread: assigns the next sequence number to `events` and `load`
  // and hands the batch to every subscriber. A batch with no events whose
  // load moved little since the last one is skipped (returns false).
  bool publish(const std::vector<KvEvent>& events, const KvLoad& load);

  // Registers `sink` and returns its id and the snapshot JSON
  // {"type":"snapshot","epoch","seq","block_size","hashes":[...],"load"}:
  // the first batch `sink` gets is numbered seq + 1.
  std::pair<uint64_t, std::string> subscribe(Sink sink);
  void unsubscribe(uint64_t id);

  uint64_t seq() const;
  uint64_t epoch() const { return epoch_; }
  int block_size() const { return block_size_; }
  size_t num_cached_blocks() const;
  int num_subscribers() const;

 private:
  bool load_moved(const KvLoad& load) const;

  const int block_size_;
  const uint64_t epoch_;
  mutable std::mutex mu_;
  uint64_t seq_ = 0;
  std::unordered_set<BlockHash> cached_;  // the instance's cache, as the events say
  KvLoad last_load_;
  std::map<uint64_t, Sink> sinks_;
  uint64_t next_sink_id_ = 1;
};

}  // namespace baton
