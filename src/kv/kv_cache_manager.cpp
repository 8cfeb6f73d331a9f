#include "kv/kv_cache_manager.h"

#include "common/check.h"

namespace baton {

KvCacheManager::KvCacheManager(int num_blocks, int block_size, bool enable_prefix_caching)
    : pool_(num_blocks, enable_prefix_caching), block_size_(block_size), enable_prefix_caching_(enable_prefix_caching) {
  BATON_CHECK(block_size > 0, "block_size must be positive, got {}", block_size);
}

double KvCacheManager::usage() const { return 1.0 - static_cast<double>(pool_.num_free_blocks()) / pool_.num_blocks(); }

KvCacheCounters KvCacheManager::counters() const {
  KvCacheCounters c;
  c.num_blocks_total = pool_.num_blocks();
  c.num_blocks_free = pool_.num_free_blocks();
  c.num_blocks_cached = pool_.num_cached_free_blocks();
  c.prefix_cache_queries = prefix_queries_;
  c.prefix_cache_hits = prefix_hits_;
  return c;
}

ComputedBlocks KvCacheManager::get_computed_blocks(uint64_t request, std::span<const int32_t> token_ids,
                                                   uint64_t extra_key) {
  ComputedBlocks out;
  out.num_queried_tokens = static_cast<int>(token_ids.size());
  if (!enable_prefix_caching_ || token_ids.empty()) return out;
  Entry& e = entries_[request];
  BATON_CHECK(e.block_ids.empty(), "prefix lookup for a request that holds blocks");
  // Never the whole prompt: the last token must be computed to sample.
  const int max_blocks = static_cast<int>((token_ids.size() - 1) / block_size_);
  extend_block_hashes(e.block_hashes, token_ids.first(static_cast<size_t>(max_blocks) * block_size_), block_size_,
                      extra_key);
  for (int b = 0; b < max_blocks; ++b) {
    const int id = pool_.lookup(e.block_hashes[b]);
    if (id < 0) break;
    out.block_ids.push_back(id);
  }
  out.num_tokens = static_cast<int>(out.block_ids.size()) * block_size_;
  return out;
}

bool KvCacheManager::allocate_slots(uint64_t request, int num_computed_tokens, int num_new_tokens,
                                    const ComputedBlocks* computed) {
  Entry& e = entries_[request];
  const int num_hit_blocks = computed ? static_cast<int>(computed->block_ids.size()) : 0;
  BATON_CHECK(num_hit_blocks == 0 || e.block_ids.empty(), "a prefix hit for a request that already holds blocks");
  const int64_t total_tokens = static_cast<int64_t>(num_computed_tokens) + (computed ? computed->num_tokens : 0) +
                               num_new_tokens;
  const int num_needed = num_blocks_for(total_tokens) - static_cast<int>(e.block_ids.size()) - num_hit_blocks;
  // Hit blocks that sit in the free queue leave it when touched.
  int num_evictable_hits = 0;
  for (int i = 0; i < num_hit_blocks; ++i) {
    if (pool_.block(computed->block_ids[i]).ref_cnt == 0) ++num_evictable_hits;
  }
  if (num_needed > pool_.num_free_blocks() - num_evictable_hits) return false;
  if (num_hit_blocks > 0) {
    pool_.touch(computed->block_ids);
    e.block_ids.insert(e.block_ids.end(), computed->block_ids.begin(), computed->block_ids.end());
    e.num_cached_blocks = num_hit_blocks;
  }
  if (computed) {
    prefix_queries_ += computed->num_queried_tokens;
    prefix_hits_ += computed->num_tokens;
  }
  if (num_needed > 0) pool_.get_new_blocks(num_needed, e.block_ids);
  return true;
}

void KvCacheManager::cache_blocks(uint64_t request, std::span<const int32_t> token_ids, int num_computed_tokens,
                                  uint64_t extra_key) {
  if (!enable_prefix_caching_) return;
  auto it = entries_.find(request);
  if (it == entries_.end()) return;
  Entry& e = it->second;
  const int num_full = std::min(num_computed_tokens / block_size_, static_cast<int>(e.block_ids.size()));
  if (num_full <= e.num_cached_blocks) return;
  extend_block_hashes(e.block_hashes, token_ids.first(static_cast<size_t>(num_full) * block_size_), block_size_,
                      extra_key);
  for (int b = e.num_cached_blocks; b < num_full; ++b) pool_.cache_block(e.block_ids[b], e.block_hashes[b]);
  e.num_cached_blocks = num_full;
}

void KvCacheManager::free(uint64_t request) {
  auto it = entries_.find(request);
  if (it == entries_.end()) return;
  pool_.free_blocks_reversed(it->second.block_ids);
  entries_.erase(it);
}

std::vector<int> KvCacheManager::detach(uint64_t request) {
  auto it = entries_.find(request);
  if (it == entries_.end()) return {};
  std::vector<int> ids = std::move(it->second.block_ids);
  entries_.erase(it);
  return ids;
}

void KvCacheManager::release_detached(std::span<const int> block_ids) { pool_.free_blocks_reversed(block_ids); }

std::span<const int> KvCacheManager::block_ids(uint64_t request) const {
  auto it = entries_.find(request);
  if (it == entries_.end()) return {};
  return it->second.block_ids;
}

}  // namespace baton
