#include "kv_transfer/stream_split.h"

#include <algorithm>

namespace baton {

int num_stream_parts(int64_t num_blocks, size_t block_bytes, int num_streams, size_t min_stream_bytes) {
  if (num_blocks <= 1 || num_streams <= 1) return 1;
  const uint64_t data_bytes = static_cast<uint64_t>(num_blocks) * block_bytes;
  if (data_bytes <= min_stream_bytes) return 1;
  const uint64_t min_part = std::max<uint64_t>(min_stream_bytes, 1);
  const uint64_t by_size = (data_bytes + min_part - 1) / min_part;
  return static_cast<int>(
      std::min<uint64_t>({static_cast<uint64_t>(num_streams), static_cast<uint64_t>(num_blocks), by_size}));
}

std::vector<StreamPart> split_runs_for_streams(const std::vector<BlockRun>& runs, int num_parts) {
  const int64_t total = count_blocks(runs);
  std::vector<StreamPart> parts;
  if (total <= 0) return parts;
  const int64_t k = std::clamp<int64_t>(num_parts, 1, total);
  parts.resize(static_cast<size_t>(k));
  // Part p holds blocks [p * total / k, (p + 1) * total / k) in run order.
  for (int64_t p = 0; p < k; ++p) {
    parts[p].first_index = p * total / k;
    parts[p].num_blocks = (p + 1) * total / k - parts[p].first_index;
  }
  size_t p = 0;
  int64_t filled = 0;  // blocks of parts[p] placed so far
  for (const auto& run : runs) {
    int64_t offset = 0;  // within this run
    while (offset < run.num_blocks) {
      while (filled == parts[p].num_blocks) {
        ++p;
        filled = 0;
      }
      const int64_t take = std::min(run.num_blocks - offset, parts[p].num_blocks - filled);
      parts[p].runs.push_back({run.remote_first + offset, run.local_first + offset, take});
      offset += take;
      filled += take;
    }
  }
  return parts;
}

}  // namespace baton
