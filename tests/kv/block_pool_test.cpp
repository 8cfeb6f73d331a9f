#include "kv/block_pool.h"

#include <gtest/gtest.h>

#include "kv/block_hash.h"

namespace baton {
namespace {

TEST(BlockHash, ChainsOverParentAndTokens) {
  std::vector<int32_t> a = {1, 2, 3, 4, 5, 6, 7, 8};
  std::vector<int32_t> b = {9, 2, 3, 4, 5, 6, 7, 8};  // differs only in the first block
  std::vector<BlockHash> ha, hb;
  EXPECT_EQ(extend_block_hashes(ha, a, 4), 2);
  EXPECT_EQ(extend_block_hashes(hb, b, 4), 2);
  ASSERT_EQ(ha.size(), 2u);
  EXPECT_NE(ha[0], hb[0]);
  // Same second-block tokens, different parent: different hash.
  EXPECT_NE(ha[1], hb[1]);
  EXPECT_EQ(ha[1], hash_block(ha[0], std::span<const int32_t>(a).subspan(4, 4)));
  // Extra keys (a salt, a LoRA) change every hash.
  std::vector<BlockHash> hs;
  extend_block_hashes(hs, a, 4, /*extra_key=*/42);
  EXPECT_NE(hs[0], ha[0]);
  // Incremental extension keeps earlier hashes and skips partial blocks.
  std::vector<BlockHash> inc;
  EXPECT_EQ(extend_block_hashes(inc, std::span<const int32_t>(a).first(6), 4), 1);
  EXPECT_EQ(extend_block_hashes(inc, a, 4), 2);
  EXPECT_EQ(inc, ha);
}

TEST(BlockPool, RefCountsAndFreeQueueOrder) {
  BlockPool pool(4, /*enable_caching=*/true);
  EXPECT_EQ(pool.num_free_blocks(), 4);
  std::vector<int> got;
  pool.get_new_blocks(3, got);
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(pool.num_free_blocks(), 1);
  pool.touch(std::vector<int>{1});  // shared by a second owner
  EXPECT_EQ(pool.block(1).ref_cnt, 2);
  pool.free_blocks(std::vector<int>{2, 1, 0});  // tail first
  EXPECT_EQ(pool.block(1).ref_cnt, 1);
  EXPECT_EQ(pool.free_queue_ids(), (std::vector<int>{3, 2, 0}));
  pool.free_blocks(std::vector<int>{1});
  EXPECT_EQ(pool.free_queue_ids(), (std::vector<int>{3, 2, 0, 1}));
  EXPECT_EQ(pool.num_free_blocks(), 4);
}

TEST(BlockPool, CachedFreeBlocksAreEvictedLeastRecentlyUsedFirst) {
  BlockPool pool(3, true);
  std::vector<int> got;
  pool.get_new_blocks(3, got);
  pool.cache_block(0, 100);
  pool.cache_block(1, 101);
  pool.cache_block(2, 102);
  EXPECT_EQ(pool.num_cached_blocks(), 3);
  pool.free_blocks(std::vector<int>{1});
  pool.free_blocks(std::vector<int>{0});
  pool.free_blocks(std::vector<int>{2});
  EXPECT_EQ(pool.num_cached_free_blocks(), 3);
  // A hit on block 0 takes it out of the free queue; freeing it again makes
  // it the most recently used.
  EXPECT_EQ(pool.lookup(100), 0);
  pool.touch(std::vector<int>{0});
  EXPECT_EQ(pool.num_cached_free_blocks(), 2);
  pool.free_blocks(std::vector<int>{0});
  EXPECT_EQ(pool.free_queue_ids(), (std::vector<int>{1, 2, 0}));
  // Allocation evicts from the front: block 1 (hash 101) goes first.
  got.clear();
  pool.get_new_blocks(1, got);
  EXPECT_EQ(got, std::vector<int>{1});
  EXPECT_EQ(pool.lookup(101), -1);
  EXPECT_EQ(pool.lookup(102), 2);
  EXPECT_EQ(pool.lookup(100), 0);
  EXPECT_EQ(pool.num_cached_free_blocks(), 2);
}

TEST(BlockPool, DuplicateContentStaysUncached) {
  BlockPool pool(2, true);
  std::vector<int> got;
  pool.get_new_blocks(2, got);
  pool.cache_block(0, 7);
  pool.cache_block(1, 7);
  EXPECT_EQ(pool.lookup(7), 0);
  EXPECT_FALSE(pool.block(1).has_hash);
  pool.free_blocks(got);
  EXPECT_EQ(pool.num_cached_free_blocks(), 1);
}

TEST(BlockPool, CachingOffNeverHits) {
  BlockPool pool(2, false);
  std::vector<int> got;
  pool.get_new_blocks(1, got);
  pool.cache_block(0, 5);
  EXPECT_EQ(pool.lookup(5), -1);
}

}  // namespace
}  // namespace baton
