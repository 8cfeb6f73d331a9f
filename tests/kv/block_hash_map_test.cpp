#include "kv/block_hash_map.h"

#include <random>
#include <unordered_map>

#include <gtest/gtest.h>

namespace baton {
namespace {

TEST(BlockHashMap, AgreesWithAStandardMapUnderRandomInsertsAndErases) {
  constexpr int kMax = 300;
  BlockHashMap m(kMax);
  std::unordered_map<BlockHash, int> ref;
  std::mt19937_64 rng(5);
  // Few distinct keys with colliding low bits stress the probe runs.
  std::vector<BlockHash> keys;
  for (int i = 0; i < 2 * kMax; ++i) keys.push_back(rng() & ~0xFFULL);
  for (int step = 0; step < 200000; ++step) {
    BlockHash k = keys[rng() % keys.size()];
    if (rng() % 2 == 0 && static_cast<int>(ref.size()) < kMax) {
      int v = static_cast<int>(rng() % 1000);
      bool inserted = ref.emplace(k, v).second;
      EXPECT_EQ(m.insert(k, v), inserted);
    } else {
      auto it = ref.find(k);
      int v = it == ref.end() ? 0 : it->second;
      bool right_value = it != ref.end();
      if (rng() % 4 == 0) v += 1;  // erase with the wrong block id: no-op
      bool erased = right_value && v == it->second;
      if (erased) ref.erase(it);
      EXPECT_EQ(m.erase(k, v), erased);
    }
    ASSERT_EQ(m.size(), static_cast<int>(ref.size()));
    if (step % 1000 == 0) {
      for (BlockHash key : keys) {
        auto it = ref.find(key);
        ASSERT_EQ(m.find(key), it == ref.end() ? -1 : it->second);
      }
    }
  }
  m.clear();
  EXPECT_EQ(m.size(), 0);
  EXPECT_EQ(m.find(keys[0]), -1);
}

}  // namespace
}  // namespace baton
