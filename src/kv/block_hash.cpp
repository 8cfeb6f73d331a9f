#include "kv/block_hash.h"

#include <xxhash.h>

namespace baton {

namespace {
constexpr uint64_t kRootSeed = 0x6261746f6e6b7631ULL;  // "batonkv1"
}  // namespace

BlockHash root_block_hash(uint64_t extra_key) { return XXH64(&extra_key, sizeof(extra_key), kRootSeed); }

BlockHash hash_block(BlockHash parent, std::span<const int32_t> block_token_ids) {
  return XXH64(block_token_ids.data(), block_token_ids.size_bytes(), parent);
}

int extend_block_hashes(std::vector<BlockHash>& hashes, std::span<const int32_t> token_ids, int block_size,
                        uint64_t extra_key) {
  const int num_full = static_cast<int>(token_ids.size()) / block_size;
  BlockHash parent = hashes.empty() ? root_block_hash(extra_key) : hashes.back();
  for (int b = static_cast<int>(hashes.size()); b < num_full; ++b) {
    parent = hash_block(parent, token_ids.subspan(static_cast<size_t>(b) * block_size, block_size));
    hashes.push_back(parent);
  }
  return num_full;
}

}  // namespace baton
