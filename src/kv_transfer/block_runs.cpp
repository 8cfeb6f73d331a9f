#include "kv_transfer/block_runs.h"

#include <unordered_set>

namespace baton {

Result<std::vector<BlockRun>> coalesce_block_runs(const std::vector<int64_t>& remote_ids,
                                                  const std::vector<int64_t>& local_ids, int64_t num_remote_blocks,
                                                  int64_t num_local_blocks) {
  if (remote_ids.size() != local_ids.size()) {
    return invalid_argument("block lists differ in length: {} remote ids, {} local ids", remote_ids.size(),
                            local_ids.size());
  }
  std::vector<BlockRun> runs;
  std::unordered_set<int64_t> seen_local;
  seen_local.reserve(local_ids.size() * 2);
  for (size_t i = 0; i < remote_ids.size(); ++i) {
    const int64_t r = remote_ids[i];
    const int64_t l = local_ids[i];
    if (r < 0 || r >= num_remote_blocks) {
      return out_of_range("remote block id {} (index {}) outside [0, {})", r, i, num_remote_blocks);
    }
    if (l < 0 || l >= num_local_blocks) {
      return out_of_range("local block id {} (index {}) outside [0, {})", l, i, num_local_blocks);
    }
    if (!seen_local.insert(l).second) {
      return invalid_argument("local block id {} appears twice in one transfer", l);
    }
    if (!runs.empty()) {
      BlockRun& last = runs.back();
      if (last.remote_first + last.num_blocks == r && last.local_first + last.num_blocks == l) {
        ++last.num_blocks;
        continue;
      }
    }
    runs.push_back({r, l, 1});
  }
  return runs;
}

int64_t count_blocks(const std::vector<BlockRun>& runs) {
  int64_t n = 0;
  for (const auto& run : runs) n += run.num_blocks;
  return n;
}

}  // namespace baton
