// Prefix-cache keys: a full block's hash is chained over its parent block's
// hash, its token ids and optional extra keys (anything else that changes the
// block's content: a LoRA id, a cache salt). Equal hashes mean equal prefixes
// (up to 64-bit collisions), so one lookup per block finds the longest cached
// prefix of a prompt.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace baton {

using BlockHash = uint64_t;

// The parent hash of a request's first block (seeded by its extra keys).
BlockHash root_block_hash(uint64_t extra_key = 0);

// Hash of one full block: [block_size] token ids, chained to `parent`.
BlockHash hash_block(BlockHash parent, std::span<const int32_t> block_token_ids);

// Extends `hashes` with the hashes of every further full block of `token_ids`
// (blocks already hashed are kept). Returns the number of full blocks.
int extend_block_hashes(std::vector<BlockHash>& hashes, std::span<const int32_t> token_ids, int block_size,
                        uint64_t extra_key = 0);

}  // namespace baton
