// Coalescing a block-id mapping into runs: remote blocks r..r+n-1 go to
// local blocks l..l+n-1. A request's KV moves as a few large copies, never
// one small copy per block.
#pragma once

#include <cstdint>
#include <vector>

#include "common/status.h"

namespace baton {

struct BlockRun {
  int64_t remote_first = 0;
  int64_t local_first = 0;
  int64_t num_blocks = 0;
};

// Checks that both lists have the same length, ids are within
// [0, num_remote_blocks) / [0, num_local_blocks), and no local block is
// written twice; then merges consecutive pairs into runs (in list order).
Result<std::vector<BlockRun>> coalesce_block_runs(const std::vector<int64_t>& remote_ids,
                                                  const std::vector<int64_t>& local_ids, int64_t num_remote_blocks,
                                                  int64_t num_local_blocks);

int64_t count_blocks(const std::vector<BlockRun>& runs);

}  // namespace baton
