// Per-request block tables over one BlockPool, with prefix caching (vLLM V1's
// KVCacheManager). Requests are named by an opaque 64-bit key; the manager
// never sees the device, only block ids.
//
// A request's life: get_computed_blocks (prefix lookup) -> allocate_slots
// (every step it runs) -> cache_blocks (after its KV is written) -> free.
// For PD: detach() ends the request's table but keeps its block references
// (a lease); release_detached() drops them later. A request whose KV arrives
// from a remote instance is allocated with allocate_slots like any other and
// marked computed by its caller once the KV has landed.
#pragma once

#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "kv/block_hash.h"
#include "kv/block_pool.h"

namespace baton {

// The cached prefix of a request: whole blocks, never its last token.
struct ComputedBlocks {
  std::vector<int> block_ids;
  int num_tokens = 0;          // block_ids.size() * block_size
  int num_queried_tokens = 0;  // tokens looked up (for the hit-rate counters)
};

struct KvCacheCounters {
  int num_blocks_total = 0;
  int num_blocks_free = 0;
  int num_blocks_cached = 0;         // free but holding a reusable prefix
  int64_t prefix_cache_queries = 0;  // tokens looked up by admitted requests
  int64_t prefix_cache_hits = 0;     // tokens found
};

class KvCacheManager {
 public:
  KvCacheManager(int num_blocks, int block_size, bool enable_prefix_caching);

  int block_size() const { return block_size_; }
  int num_blocks() const { return pool_.num_blocks(); }
  int num_free_blocks() const { return pool_.num_free_blocks(); }
  bool prefix_caching() const { return enable_prefix_caching_; }
  int num_blocks_for(int64_t num_tokens) const {
    return static_cast<int>((num_tokens + block_size_ - 1) / block_size_);
  }
  // 1 - free / total.
  double usage() const;
  KvCacheCounters counters() const;
  const BlockPool& pool() const { return pool_; }

  // The longest cached prefix of `token_ids` (all of the request's tokens),
  // in whole blocks, leaving at least the last token to compute. Does not
  // take references: pass the result to allocate_slots in the same step.
  ComputedBlocks get_computed_blocks(uint64_t request, std::span<const int32_t> token_ids, uint64_t extra_key = 0);

  // Grows the request's table to hold num_computed_tokens (already in its
  // table) + computed->num_tokens (a prefix hit, only when its table is
  // empty) + num_new_tokens. False, changing nothing, when the free blocks
  // do not suffice.
  bool allocate_slots(uint64_t request, int num_computed_tokens, int num_new_tokens,
                      const ComputedBlocks* computed = nullptr);

  // Publishes the request's full blocks within its first num_computed_tokens
  // tokens (whose KV is now written) to the prefix cache.
  void cache_blocks(uint64_t request, std::span<const int32_t> token_ids, int num_computed_tokens,
                    uint64_t extra_key = 0);

  // Releases the request's blocks, tail first (so its tail is evicted before
  // its head), and forgets it. No-op for an unknown request.
  void free(uint64_t request);

  // PD lease: forgets the request but keeps its references; the returned
  // block ids (in table order) stay allocated until release_detached().
  std::vector<int> detach(uint64_t request);
  void release_detached(std::span<const int> block_ids);

  // The request's block table (empty when unknown).
  std::span<const int> block_ids(uint64_t request) const;
  bool has_request(uint64_t request) const { return entries_.count(request) != 0; }
  int num_requests() const { return static_cast<int>(entries_.size()); }

  // Forgets all cached prefixes; false if some block is in use.
  bool reset_prefix_cache() { return pool_.reset_prefix_cache(); }

  // KV events of the pool (BlockPool::set_record_events / take_events).
  void set_record_events(bool on) { pool_.set_record_events(on); }
  std::vector<KvEvent> take_events() { return pool_.take_events(); }

 private:
  struct Entry {
    std::vector<int> block_ids;
    std::vector<BlockHash> block_hashes;  // of full blocks, chained
    int num_cached_blocks = 0;            // leading blocks published to the cache
  };

  BlockPool pool_;
  int block_size_;
  bool enable_prefix_caching_;
  std::unordered_map<uint64_t, Entry> entries_;
  int64_t prefix_queries_ = 0;
  int64_t prefix_hits_ = 0;
};

}  // namespace baton
