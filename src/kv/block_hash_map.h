// The prefix cache's hash -> block id map: open addressing with linear
// probing and backward-shift deletion, sized once for the pool (at most one
// entry per block, load factor <= 1/2). Flat arrays keep the lookups,
// inserts and evictions of a scheduling step in cache, unlike a node map.
#pragma once

#include <cstdint>
#include <vector>

#include "kv/block_hash.h"

namespace baton {

class BlockHashMap {
 public:
  explicit BlockHashMap(int max_entries);

  int size() const { return size_; }
  // The block holding `hash`, or -1.
  int find(BlockHash hash) const;
  // Inserts hash -> block_id; false (nothing changed) if the hash is present.
  bool insert(BlockHash hash, int block_id);
  // Removes hash if it maps to block_id; returns whether it did.
  bool erase(BlockHash hash, int block_id);
  void clear();

 private:
  size_t slot_of(BlockHash hash) const {
    // The hashes are xxHash64 outputs already: the top bits are uniform.
    return static_cast<size_t>((hash * 0x9E3779B97F4A7C15ULL) >> shift_);
  }

  std::vector<BlockHash> keys_;
  std::vector<int32_t> values_;  // -1 = empty
  size_t mask_ = 0;
  int shift_ = 0;
  int size_ = 0;
};

}  // namespace baton
