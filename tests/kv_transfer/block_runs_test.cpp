#include "kv_transfer/block_runs.h"

#include <gtest/gtest.h>

namespace baton {
namespace {

TEST(BlockRuns, CoalescesConsecutivePairs) {
  auto runs = coalesce_block_runs({3, 4, 5, 9, 10, 2}, {0, 1, 2, 7, 8, 3}, 16, 16);
  ASSERT_TRUE(runs.is_ok()) << runs.status().to_string();
  ASSERT_EQ(runs->size(), 3u);
  EXPECT_EQ((*runs)[0].remote_first, 3);
  EXPECT_EQ((*runs)[0].local_first, 0);
  EXPECT_EQ((*runs)[0].num_blocks, 3);
  EXPECT_EQ((*runs)[1].remote_first, 9);
  EXPECT_EQ((*runs)[1].local_first, 7);
  EXPECT_EQ((*runs)[1].num_blocks, 2);
  EXPECT_EQ((*runs)[2].remote_first, 2);
  EXPECT_EQ((*runs)[2].local_first, 3);
  EXPECT_EQ((*runs)[2].num_blocks, 1);
  EXPECT_EQ(count_blocks(*runs), 6);
}

TEST(BlockRuns, BreaksRunWhenOnlyOneSideIsConsecutive) {
  auto runs = coalesce_block_runs({1, 2, 3}, {5, 6, 9}, 16, 16);
  ASSERT_TRUE(runs.is_ok());
  ASSERT_EQ(runs->size(), 2u);
  EXPECT_EQ((*runs)[0].num_blocks, 2);
  EXPECT_EQ((*runs)[1].local_first, 9);
}

TEST(BlockRuns, RejectsBadLists) {
  auto len = coalesce_block_runs({1, 2}, {1}, 16, 16);
  EXPECT_EQ(len.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(len.status().message().find("differ in length"), std::string::npos);

  auto remote = coalesce_block_runs({16}, {0}, 16, 16);
  EXPECT_EQ(remote.status().code(), StatusCode::kOutOfRange);
  EXPECT_NE(remote.status().message().find("remote block id 16"), std::string::npos);

  auto local = coalesce_block_runs({0}, {-1}, 16, 16);
  EXPECT_EQ(local.status().code(), StatusCode::kOutOfRange);
  EXPECT_NE(local.status().message().find("local block id -1"), std::string::npos);

  auto dup = coalesce_block_runs({0, 1}, {4, 4}, 16, 16);
  EXPECT_EQ(dup.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(dup.status().message().find("twice"), std::string::npos);
}

TEST(BlockRuns, EmptyListIsNoRuns) {
  auto runs = coalesce_block_runs({}, {}, 4, 4);
  ASSERT_TRUE(runs.is_ok());
  EXPECT_TRUE(runs->empty());
}

}  // namespace
}  // namespace baton
