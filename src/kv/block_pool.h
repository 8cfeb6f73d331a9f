// The pool of fixed-size KV blocks: ref counts, a free queue ordered for LRU
// eviction, and the prefix cache's hash -> block map (vLLM V1's BlockPool).
//
// A block is either in use (ref_cnt > 0) or in the free queue. A free block
// may still hold a cached prefix (it has a hash): it is reused by a prefix hit
// (touch) or, when taken from the front of the free queue for a new
// allocation, evicted from the cache. Freed blocks go to the back of the
// queue, so the front is the least recently used.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "kv/block_hash.h"
#include "kv/block_hash_map.h"
#include "kv/kv_event.h"

namespace baton {

struct KvBlock {
  int block_id = 0;
  int ref_cnt = 0;
  bool has_hash = false;
  BlockHash hash = 0;
  // Free queue links (intrusive, so removal from the middle is O(1)).
  KvBlock* prev_free = nullptr;
  KvBlock* next_free = nullptr;
};

// Doubly linked list of free blocks; front = next to evict/reuse.
class FreeBlockQueue {
 public:
  FreeBlockQueue();
  int size() const { return size_; }
  KvBlock* pop_front();  // nullptr when empty
  void push_back(KvBlock* block);
  void remove(KvBlock* block);  // must be in the queue
  bool contains(const KvBlock* block) const { return block->prev_free != nullptr; }
  // Block ids from front to back (tests).
  std::vector<int> ids() const;

 private:
  KvBlock head_;  // sentinels
  KvBlock tail_;
  int size_ = 0;
};

class BlockPool {
 public:
  BlockPool(int num_blocks, bool enable_caching);
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;

  int num_blocks() const { return static_cast<int>(blocks_.size()); }
  int num_free_blocks() const { return free_queue_.size(); }
  // Free blocks that still hold a cached prefix.
  int num_cached_free_blocks() const { return num_cached_free_; }
  // Blocks registered in the hash map (in use or free).
  int num_cached_blocks() const { return cached_.size(); }
  bool caching_enabled() const { return enable_caching_; }

  const KvBlock& block(int block_id) const { return blocks_[block_id]; }

  // The cached block holding `hash`, or -1.
  int lookup(BlockHash hash) const;

  // Takes `n` blocks from the front of the free queue (evicting their cached
  // prefixes), each with ref_cnt 1. The caller checks num_free_blocks() first.
  void get_new_blocks(int n, std::vector<int>& out);

  // A prefix hit: one more reference to each block (out of the free queue if
  // it was free).
  void touch(std::span<const int> block_ids);

  // Drops one reference of each block, in the given order; a block reaching
  // 0 goes to the back of the free queue (evicted last of the ones freed
  // earlier). Callers pass a request's blocks tail first, so that its tail is
  // evicted before its head.
  void free_blocks(std::span<const int> block_ids);
  // The same, last block first.
  void free_blocks_reversed(std::span<const int> block_ids);

  // Registers `block_id` (in use) as holding `hash`. If another block already
  // holds that hash, this one stays uncached (duplicate content).
  void cache_block(int block_id, BlockHash hash);

  // Forgets every cached prefix (only when nothing is in use). False if some
  // block is in use.
  bool reset_prefix_cache();

  // Free-queue order, front to back (tests).
  std::vector<int> free_queue_ids() const { return free_queue_.ids(); }

  // KV events (kv/kv_event.h): once on, every hash that enters or leaves the
  // cache, and every reset, is recorded in order until take_events().
  void set_record_events(bool on) { record_events_ = on; }
  std::vector<KvEvent> take_events();
  // Every hash in the cache now (in use or free), in no order.
  std::vector<BlockHash> cached_hashes() const;

 private:
  void evict(KvBlock& block);
  void release(int block_id);

  std::vector<KvBlock> blocks_;
  FreeBlockQueue free_queue_;
  BlockHashMap cached_;
  bool enable_caching_;
  int num_cached_free_ = 0;
  bool record_events_ = false;
  std::vector<KvEvent> events_;
};

}  // namespace baton
