// Splitting a read's block runs into parts for parallel TCP streams.
#include "kv_transfer/stream_split.h"

#include <gtest/gtest.h>

namespace baton {
namespace {

// The (remote, local) block pairs of runs, in order.
std::vector<std::pair<int64_t, int64_t>> expand(const std::vector<BlockRun>& runs) {
  std::vector<std::pair<int64_t, int64_t>> out;
  for (const auto& r : runs) {
    for (int64_t i = 0; i < r.num_blocks; ++i) out.emplace_back(r.remote_first + i, r.local_first + i);
  }
  return out;
}

TEST(StreamSplit, NumPartsSmallReadsAreNotSplit) {
  constexpr size_t kMiB = 1u << 20;
  EXPECT_EQ(num_stream_parts(8, kMiB, 4, 8 * kMiB), 1);  // exactly the minimum
  EXPECT_EQ(num_stream_parts(4, kMiB, 4, 8 * kMiB), 1);
  EXPECT_EQ(num_stream_parts(1, 64 * kMiB, 4, 8 * kMiB), 1);  // one block cannot be split
  EXPECT_EQ(num_stream_parts(1000, kMiB, 1, 8 * kMiB), 1);    // one stream asked
  EXPECT_EQ(num_stream_parts(0, kMiB, 4, 8 * kMiB), 1);
}

TEST(StreamSplit, NumPartsLargeReadsAreSplit) {
  constexpr size_t kMiB = 1u << 20;
  EXPECT_EQ(num_stream_parts(9, kMiB, 4, 8 * kMiB), 2);  // just over: two parts of ~4.5 MiB
  EXPECT_EQ(num_stream_parts(24, kMiB, 4, 8 * kMiB), 3);
  EXPECT_EQ(num_stream_parts(1024, kMiB, 4, 8 * kMiB), 4);  // capped by num_streams
  EXPECT_EQ(num_stream_parts(1024, kMiB, 16, 8 * kMiB), 16);
  EXPECT_EQ(num_stream_parts(3, 64 * kMiB, 4, 8 * kMiB), 3);  // capped by the block count
  EXPECT_EQ(num_stream_parts(10, 1, 4, 0), 4);                // no minimum: always split
}

TEST(StreamSplit, WholeBlocksInOrderNearEqual) {
  // Scattered runs of different lengths.
  const std::vector<BlockRun> runs = {{100, 7, 5}, {3, 50, 1}, {40, 20, 13}, {9, 0, 2}, {60, 80, 9}};
  const auto all = expand(runs);
  const int64_t total = static_cast<int64_t>(all.size());  // 30
  for (int k = 1; k <= 8; ++k) {
    const auto parts = split_runs_for_streams(runs, k);
    ASSERT_EQ(parts.size(), static_cast<size_t>(k));
    std::vector<std::pair<int64_t, int64_t>> joined;
    int64_t next_index = 0;
    int64_t min_blocks = total, max_blocks = 0;
    for (const auto& p : parts) {
      EXPECT_EQ(p.first_index, next_index);
      EXPECT_EQ(count_blocks(p.runs), p.num_blocks);
      for (const auto& r : p.runs) EXPECT_GT(r.num_blocks, 0);
      const auto mine = expand(p.runs);
      joined.insert(joined.end(), mine.begin(), mine.end());
      next_index += p.num_blocks;
      min_blocks = std::min(min_blocks, p.num_blocks);
      max_blocks = std::max(max_blocks, p.num_blocks);
    }
    EXPECT_EQ(joined, all) << k << " parts: every block once, in the read's order";
    EXPECT_LE(max_blocks - min_blocks, 1) << k << " parts";
  }
}

TEST(StreamSplit, RunsAreCutAtPartBoundaries) {
  const auto parts = split_runs_for_streams({{10, 20, 8}}, 3);  // 8 blocks: 2, 3, 3
  ASSERT_EQ(parts.size(), 3u);
  ASSERT_EQ(parts[0].runs.size(), 1u);
  EXPECT_EQ(parts[0].runs[0].remote_first, 10);
  EXPECT_EQ(parts[0].runs[0].num_blocks, 2);
  EXPECT_EQ(parts[1].runs[0].remote_first, 12);
  EXPECT_EQ(parts[1].runs[0].local_first, 22);
  EXPECT_EQ(parts[1].runs[0].num_blocks, 3);
  EXPECT_EQ(parts[2].runs[0].remote_first, 15);
  EXPECT_EQ(parts[2].first_index, 5);
}

TEST(StreamSplit, MorePartsThanBlocksAndEmpty) {
  const auto parts = split_runs_for_streams({{0, 0, 1}, {5, 5, 1}}, 4);
  ASSERT_EQ(parts.size(), 2u);  // clamped to the block count
  EXPECT_EQ(parts[1].runs[0].remote_first, 5);
  EXPECT_TRUE(split_runs_for_streams({}, 4).empty());
  EXPECT_EQ(split_runs_for_streams({{0, 0, 3}}, 0).size(), 1u);  // < 1 part means one
}

}  // namespace
}  // namespace baton
