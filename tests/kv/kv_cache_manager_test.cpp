#include "kv/kv_cache_manager.h"

#include <gtest/gtest.h>

#include "kv/kv_requests.h"

namespace baton {
namespace {

using kv_test::admit;
using kv_test::iota_tokens;

TEST(KvCacheManager, PrefixHitNeverCoversTheLastToken) {
  KvCacheManager kv(16, 4, true);
  auto tokens = iota_tokens(8, 1);  // exactly two blocks
  int hit = -1;
  ASSERT_TRUE(admit(kv, 1, tokens, &hit));
  EXPECT_EQ(hit, 0);
  ASSERT_TRUE(admit(kv, 2, tokens, &hit));
  EXPECT_EQ(hit, 4);  // one block: the last token must be computed
  EXPECT_EQ(kv.block_ids(2)[0], kv.block_ids(1)[0]);
  EXPECT_NE(kv.block_ids(2)[1], kv.block_ids(1)[1]);
  auto c = kv.counters();
  EXPECT_EQ(c.prefix_cache_queries, 16);
  EXPECT_EQ(c.prefix_cache_hits, 4);
  kv.free(1);
  kv.free(2);
  EXPECT_EQ(kv.num_free_blocks(), 16);
}

TEST(KvCacheManager, AllocationGrowsBlockByBlock) {
  KvCacheManager kv(4, 4, true);
  EXPECT_TRUE(kv.allocate_slots(1, 0, 5));  // 2 blocks
  EXPECT_EQ(kv.block_ids(1).size(), 2u);
  EXPECT_TRUE(kv.allocate_slots(1, 5, 3));  // 8 tokens still 2 blocks
  EXPECT_EQ(kv.block_ids(1).size(), 2u);
  EXPECT_TRUE(kv.allocate_slots(1, 8, 1));
  EXPECT_EQ(kv.block_ids(1).size(), 3u);
  EXPECT_FALSE(kv.allocate_slots(2, 0, 8));  // needs 2, 1 free: nothing changes
  EXPECT_EQ(kv.num_free_blocks(), 1);
  EXPECT_TRUE(kv.block_ids(2).empty());
  kv.free(1);
  kv.free(2);
  EXPECT_EQ(kv.num_free_blocks(), 4);
  EXPECT_EQ(kv.num_requests(), 0);
}

TEST(KvCacheManager, FreedRequestTailIsEvictedFirst) {
  KvCacheManager kv(4, 2, true);
  auto a = iota_tokens(7, 1);  // blocks: 3 full + 1 partial
  ASSERT_TRUE(admit(kv, 1, a));
  kv.free(1);
  // The tail block goes to the front of the free queue, the head last.
  auto order = kv.pool().free_queue_ids();
  EXPECT_EQ(order, (std::vector<int>{3, 2, 1, 0}));
  EXPECT_EQ(kv.counters().num_blocks_cached, 3);
  // A new 2-block request evicts the tail (partial block 3, then block 2):
  // the head blocks 0 and 1 stay cached.
  ASSERT_TRUE(kv.allocate_slots(2, 0, 4));
  kv.free(2);
  int hit = -1;
  ASSERT_TRUE(admit(kv, 3, a, &hit));
  EXPECT_EQ(hit, 4);
  kv.free(3);
  EXPECT_EQ(kv.num_free_blocks(), 4);
}

TEST(KvCacheManager, LruEvictionUnderPressure) {
  KvCacheManager kv(6, 4, true);
  auto p1 = iota_tokens(9, 100);  // 2 full blocks + 1
  auto p2 = iota_tokens(9, 200);
  ASSERT_TRUE(admit(kv, 1, p1));
  kv.free(1);
  ASSERT_TRUE(admit(kv, 2, p2));
  kv.free(2);
  EXPECT_EQ(kv.counters().num_blocks_cached, 4);
  // A 3-block allocation must evict: it takes p1's blocks (least recent).
  ASSERT_TRUE(kv.allocate_slots(3, 0, 12));
  kv.free(3);
  int hit = -1;
  ASSERT_TRUE(admit(kv, 4, p2, &hit));
  EXPECT_EQ(hit, 8);  // p2 survived
  kv.free(4);
  ASSERT_TRUE(admit(kv, 5, p1, &hit));
  EXPECT_EQ(hit, 0);  // p1 was evicted
  kv.free(5);
  EXPECT_EQ(kv.num_free_blocks(), 6);
}

TEST(KvCacheManager, HitsOnFreeBlocksCountAgainstFreeSpace) {
  KvCacheManager kv(3, 4, true);
  auto p = iota_tokens(9, 1);
  ASSERT_TRUE(admit(kv, 1, p));
  kv.free(1);
  // All 3 blocks free; 2 of them are a cached prefix of p. Re-admitting p
  // needs those 2 plus 1 new: exactly fits.
  int hit = -1;
  ASSERT_TRUE(admit(kv, 2, p, &hit));
  EXPECT_EQ(hit, 8);
  EXPECT_EQ(kv.num_free_blocks(), 0);
  kv.free(2);
}

TEST(KvCacheManager, NoPrefixCachingNeverHits) {
  KvCacheManager kv(8, 4, false);
  auto p = iota_tokens(9, 1);
  int hit = -1;
  ASSERT_TRUE(admit(kv, 1, p, &hit));
  kv.free(1);
  ASSERT_TRUE(admit(kv, 2, p, &hit));
  EXPECT_EQ(hit, 0);
  EXPECT_EQ(kv.counters().num_blocks_cached, 0);
  kv.free(2);
}

TEST(KvCacheManager, DetachKeepsBlocksUntilReleased) {
  KvCacheManager kv(4, 4, true);
  auto p = iota_tokens(8, 1);
  ASSERT_TRUE(admit(kv, 1, p));
  std::vector<int> leased = kv.detach(1);
  EXPECT_EQ(leased.size(), 2u);
  EXPECT_FALSE(kv.has_request(1));
  EXPECT_EQ(kv.num_free_blocks(), 2);
  kv.release_detached(leased);
  EXPECT_EQ(kv.num_free_blocks(), 4);
}

}  // namespace
}  // namespace baton
