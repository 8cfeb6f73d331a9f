// The router's view of every instance's prefix cache (DESIGN.md "KV-aware
// routing"): per instance URL, the block hashes its KV events said it holds,
// its load, and where its stream stands (epoch, sequence number). Fed by
// KvEventSubscriber; read by the kv_aware policy. An instance whose stream
// is lost, or whose batches skip a number, has no synced state until a new
// snapshot arrives (it is then routed by load alone). Thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "kv/block_hash.h"
#include "kv/kv_event_publisher.h"

namespace baton::router {

// What the policy needs of one instance for one request.
struct KvView {
  bool synced = false;     // a snapshot and every batch since have arrived
  int block_size = 0;      // the instance's tokens per block (synced only)
  int overlap_blocks = 0;  // leading blocks of the prompt it holds
  KvLoad load;             // as last reported
};

// One line per instance for /metrics.
struct KvIndexEntry {
  std::string url;
  bool synced = false;
  size_t num_blocks = 0;
  uint64_t seq = 0;
  uint64_t num_snapshots = 0;  // a first sync or a resync each
  uint64_t num_gaps = 0;       // batches that skipped a number or changed epoch
  uint64_t num_batches = 0;
};

// The chained block hashes of a prompt, computed once per block size.
class PromptHashes {
 public:
  PromptHashes() = default;
  explicit PromptHashes(std::vector<int32_t> token_ids) : token_ids_(std::move(token_ids)), known_(true) {}
  bool known() const { return known_; }  // false: the router could not tokenize the prompt
  int num_tokens() const { return static_cast<int>(token_ids_.size()); }
  // The hashes of the prompt's full blocks, as an instance's prefix cache
  // computes them (kv/block_hash.h, never the block holding the last token).
  const std::vector<BlockHash>& for_block_size(int block_size) const;

 private:
  std::vector<int32_t> token_ids_;
  bool known_ = false;
  mutable std::map<int, std::vector<BlockHash>> by_block_size_;
};

class KvIndex {
 public:
  // Applies one event of an instance's stream (the JSON text of a snapshot
  // or a batch). kFailedPrecondition on a gap, an epoch change or a batch
  // before any snapshot: the state is dropped and the caller resubscribes.
  // kInvalidArgument on malformed JSON (the state is dropped too).
  Status apply(const std::string& url, std::string_view data);
  // The stream of `url` ended: nothing is known until the next snapshot.
  void forget(const std::string& url);

  KvView view(const std::string& url, const PromptHashes& prompt) const;
  std::vector<KvIndexEntry> entries() const;

 private:
  struct State {
    bool synced = false;
    uint64_t epoch = 0;
    uint64_t seq = 0;
    int block_size = 0;
    std::unordered_set<BlockHash> hashes;
    KvLoad load;
    uint64_t num_snapshots = 0, num_gaps = 0, num_batches = 0;
  };
  Status apply_snapshot(State& s, const Json& j);
  Status apply_batch(State& s, const Json& j);
  static void drop(State& s);

  mutable std::shared_mutex mu_;
  std::map<std::string, State> states_;
};

}  // namespace baton::router
