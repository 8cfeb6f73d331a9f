// Helpers of the KV cache tests: token ids, and admitting a request the way
// the scheduler does (prefix lookup, all its tokens in one chunk, then
// marked computed).
#pragma once

#include <cstdint>
#include <numeric>
#include <vector>

#include "kv/kv_cache_manager.h"

namespace baton::kv_test {

inline std::vector<int32_t> iota_tokens(int n, int start) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  std::iota(t.begin(), t.end(), start);
  return t;
}

// False (nothing held) when the blocks do not suffice; `hit` gets the
// prefix-cache hit in tokens.
inline bool admit(KvCacheManager& kv, uint64_t id, const std::vector<int32_t>& tokens, int* hit = nullptr) {
  ComputedBlocks c = kv.get_computed_blocks(id, tokens);
  if (!kv.allocate_slots(id, 0, static_cast<int>(tokens.size()) - c.num_tokens, &c)) return false;
  kv.cache_blocks(id, tokens, static_cast<int>(tokens.size()));
  if (hit) *hit = c.num_tokens;
  return true;
}

}  // namespace baton::kv_test
