#include "kv/block_hash_map.h"

#include <algorithm>

#include "common/check.h"

namespace baton {

BlockHashMap::BlockHashMap(int max_entries) {
  size_t cap = 16;
  int bits = 4;
  while (cap < static_cast<size_t>(std::max(max_entries, 1)) * 2) {
    cap <<= 1;
    ++bits;
  }
  keys_.assign(cap, 0);
  values_.assign(cap, -1);
  mask_ = cap - 1;
  shift_ = 64 - bits;
}

int BlockHashMap::find(BlockHash hash) const {
  for (size_t i = slot_of(hash);; i = (i + 1) & mask_) {
    if (values_[i] < 0) return -1;
    if (keys_[i] == hash) return values_[i];
  }
}

bool BlockHashMap::insert(BlockHash hash, int block_id) {
  BATON_CHECK(static_cast<size_t>(size_ + 1) * 2 <= keys_.size(), "block hash map over capacity");
  size_t i = slot_of(hash);
  for (; values_[i] >= 0; i = (i + 1) & mask_) {
    if (keys_[i] == hash) return false;
  }
  keys_[i] = hash;
  values_[i] = block_id;
  ++size_;
  return true;
}

bool BlockHashMap::erase(BlockHash hash, int block_id) {
  size_t i = slot_of(hash);
  for (;; i = (i + 1) & mask_) {
    if (values_[i] < 0) return false;
    if (keys_[i] == hash) break;
  }
  if (values_[i] != block_id) return false;
  // Backward-shift: move later entries of the probe run into the hole.
  size_t hole = i;
  for (size_t j = (i + 1) & mask_; values_[j] >= 0; j = (j + 1) & mask_) {
    const size_t home = slot_of(keys_[j]);
    // Entry j may move to the hole if its home is not in (hole, j].
    const bool movable = hole <= j ? (home <= hole || home > j) : (home <= hole && home > j);
    if (movable) {
      keys_[hole] = keys_[j];
      values_[hole] = values_[j];
      hole = j;
    }
  }
  values_[hole] = -1;
  keys_[hole] = 0;
  --size_;
  return true;
}

void BlockHashMap::clear() {
  std::fill(values_.begin(), values_.end(), -1);
  size_ = 0;
}

}  // namespace baton
