#include "router/kv_index.h"

#include <gtest/gtest.h>

#include "kv/kv_cache_manager.h"
#include "kv/kv_requests.h"

namespace baton::router {
namespace {

const std::string kUrl = "http://127.0.0.1:9001";

using kv_test::iota_tokens;

// An instance's side: a KV cache whose events feed a publisher.
struct FakeInstance {
  KvCacheManager kv{64, 4, true};
  KvEventPublisher pub{4};
  std::vector<std::string> batches;
  uint64_t next_id = 1;
  FakeInstance() { kv.set_record_events(true); }
  std::string subscribe() {
    return pub.subscribe([this](std::shared_ptr<const std::string> b) { batches.push_back(*b); }).second;
  }
  void serve(const std::vector<int32_t>& tokens) {
    const uint64_t id = next_id++;
    ASSERT_TRUE(kv_test::admit(kv, id, tokens));
    kv.free(id);
    pub.publish(kv.take_events(), {});
  }
};

TEST(KvIndex, MatchesTheInstancesOwnPrefixLookup) {
  FakeInstance inst;
  KvIndex index;
  ASSERT_TRUE(index.apply(kUrl, inst.subscribe()).is_ok());
  auto shared = iota_tokens(12, 1);  // three blocks of 4
  inst.serve(shared);
  for (const auto& b : inst.batches) ASSERT_TRUE(index.apply(kUrl, b).is_ok());

  // A prompt extending the cached one: as many blocks as the instance would hit.
  auto longer = shared;
  for (int i = 0; i < 9; ++i) longer.push_back(500 + i);
  PromptHashes prompt(longer);
  KvView v = index.view(kUrl, prompt);
  EXPECT_TRUE(v.synced);
  EXPECT_EQ(v.block_size, 4);
  ComputedBlocks hit = inst.kv.get_computed_blocks(999, longer);
  EXPECT_EQ(v.overlap_blocks * v.block_size, hit.num_tokens);
  EXPECT_EQ(v.overlap_blocks, 3);
  // The same prompt: never its last block (the instance computes the last token).
  EXPECT_EQ(index.view(kUrl, PromptHashes(shared)).overlap_blocks, 2);
  // Another prompt: nothing; an unknown prompt: nothing.
  EXPECT_EQ(index.view(kUrl, PromptHashes(iota_tokens(12, 50))).overlap_blocks, 0);
  EXPECT_EQ(index.view(kUrl, PromptHashes()).overlap_blocks, 0);
}

TEST(KvIndex, AGapDropsTheStateUntilTheNextSnapshot) {
  FakeInstance inst;
  KvIndex index;
  ASSERT_TRUE(index.apply(kUrl, inst.subscribe()).is_ok());
  inst.serve(iota_tokens(12, 1));
  inst.serve(iota_tokens(12, 100));
  ASSERT_EQ(inst.batches.size(), 2u);
  // The first batch is lost: the second is a gap.
  Status st = index.apply(kUrl, inst.batches[1]);
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition) << st.to_string();
  EXPECT_FALSE(index.view(kUrl, PromptHashes(iota_tokens(13, 1))).synced);
  // Later batches are refused until a snapshot comes.
  inst.serve(iota_tokens(12, 200));
  EXPECT_FALSE(index.apply(kUrl, inst.batches[2]).is_ok());
  // A new subscription's snapshot brings it all back.
  ASSERT_TRUE(index.apply(kUrl, inst.subscribe()).is_ok());
  KvView v = index.view(kUrl, PromptHashes(iota_tokens(13, 100)));
  EXPECT_TRUE(v.synced);
  EXPECT_EQ(v.overlap_blocks, 3);
  auto entries = index.entries();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].num_snapshots, 2u);
  EXPECT_EQ(entries[0].num_gaps, 1u);
}

TEST(KvIndex, AnotherEpochIsAGap) {
  FakeInstance first, restarted;
  KvIndex index;
  ASSERT_TRUE(index.apply(kUrl, first.subscribe()).is_ok());
  restarted.subscribe();
  restarted.serve(iota_tokens(8, 1));
  // seq 1 follows seq 0, but of another instance life.
  EXPECT_EQ(index.apply(kUrl, restarted.batches[0]).code(), StatusCode::kFailedPrecondition);
}

TEST(KvIndex, BadEventsAreErrorsNotCrashes) {
  KvIndex index;
  EXPECT_EQ(index.apply(kUrl, "not json").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(index.apply(kUrl, "[1]").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(index.apply(kUrl, R"({"type":"snapshot","epoch":1,"seq":0,"block_size":0,"hashes":[]})").code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(index.apply(kUrl, R"({"type":"snapshot","epoch":1,"seq":0,"block_size":4,"hashes":[-3]})").code(),
            StatusCode::kInvalidArgument);
  ASSERT_TRUE(index.apply(kUrl, R"({"type":"snapshot","epoch":1,"seq":0,"block_size":4,"hashes":[7]})").is_ok());
  EXPECT_EQ(index.apply(kUrl, R"({"type":"events","epoch":1,"seq":1,"events":[{"type":"moved"}]})").code(),
            StatusCode::kInvalidArgument);
  EXPECT_FALSE(index.view(kUrl, PromptHashes()).synced);
  EXPECT_EQ(index.apply(kUrl, R"({"type":"hello"})").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(index.apply(kUrl, R"({"type":5})").code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(
      index.apply(kUrl, R"({"type":"snapshot","epoch":1,"seq":0,"block_size":4,"hashes":[],"load":7})").is_ok());
  EXPECT_EQ(index.apply(kUrl, R"({"type":"events","epoch":1,"seq":1,"events":[{"type":[1]}]})").code(),
            StatusCode::kInvalidArgument);
}

TEST(KvIndex, ForgetDropsAnInstance) {
  FakeInstance inst;
  KvIndex index;
  ASSERT_TRUE(index.apply(kUrl, inst.subscribe()).is_ok());
  EXPECT_TRUE(index.view(kUrl, PromptHashes()).synced);
  index.forget(kUrl);
  EXPECT_FALSE(index.view(kUrl, PromptHashes()).synced);
  EXPECT_FALSE(index.view("http://elsewhere:1", PromptHashes()).synced);
}

}  // namespace
}  // namespace baton::router
