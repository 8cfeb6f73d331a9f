#include "kv/kv_event_publisher.h"

#include <set>

#include <gtest/gtest.h>

#include "kv/kv_cache_manager.h"
#include "kv/kv_requests.h"

namespace baton {
namespace {

using kv_test::iota_tokens;

void admit(KvCacheManager& kv, uint64_t id, const std::vector<int32_t>& tokens) {
  ASSERT_TRUE(kv_test::admit(kv, id, tokens));
}

TEST(KvEvents, PoolRecordsStoredRemovedAndClearedInOrder) {
  KvCacheManager kv(4, 4, true);
  kv.set_record_events(true);
  auto a = iota_tokens(8, 1);  // two full blocks
  admit(kv, 1, a);
  std::vector<BlockHash> hashes;
  extend_block_hashes(hashes, a, 4);
  EXPECT_EQ(kv.take_events(),
            (std::vector<KvEvent>{{KvEvent::Kind::kStored, hashes[0]}, {KvEvent::Kind::kStored, hashes[1]}}));
  EXPECT_TRUE(kv.take_events().empty());
  kv.free(1);
  // Four new blocks: the two cached ones are evicted (tail first).
  auto b = iota_tokens(16, 100);
  admit(kv, 2, b);
  auto events = kv.take_events();
  ASSERT_EQ(events.size(), 6u);
  EXPECT_EQ(events[0].kind, KvEvent::Kind::kRemoved);
  EXPECT_EQ(events[1].kind, KvEvent::Kind::kRemoved);
  EXPECT_EQ((std::set<BlockHash>{events[0].hash, events[1].hash}), (std::set<BlockHash>{hashes[0], hashes[1]}));
  for (size_t i = 2; i < 6; ++i) EXPECT_EQ(events[i].kind, KvEvent::Kind::kStored);
  kv.free(2);
  ASSERT_TRUE(kv.reset_prefix_cache());
  EXPECT_EQ(kv.take_events(), (std::vector<KvEvent>{{KvEvent::Kind::kCleared, 0}}));
}

TEST(KvEvents, NothingIsRecordedUnlessAsked) {
  KvCacheManager kv(4, 4, true);
  admit(kv, 1, iota_tokens(8, 1));
  EXPECT_TRUE(kv.take_events().empty());
}

TEST(KvEventPublisher, NumbersBatchesAndSnapshotsTheCache) {
  KvEventPublisher pub(16);
  std::vector<Json> got;
  KvLoad load;
  load.num_waiting = 1;
  EXPECT_TRUE(pub.publish({{KvEvent::Kind::kStored, 11}, {KvEvent::Kind::kStored, 12}}, load));
  auto [id,
        snapshot_text] = pub.subscribe([&](std::shared_ptr<const std::string> b) { got.push_back(Json::parse(*b)); });
  Json snapshot = Json::parse(snapshot_text);
  EXPECT_EQ(snapshot["type"], "snapshot");
  EXPECT_EQ(snapshot["seq"], 1u);
  EXPECT_EQ(snapshot["block_size"], 16);
  EXPECT_EQ(snapshot["epoch"], pub.epoch());
  EXPECT_EQ(snapshot["hashes"].size(), 2u);
  EXPECT_EQ(snapshot["load"]["num_waiting"], 1);

  EXPECT_TRUE(
      pub.publish({{KvEvent::Kind::kRemoved, 11}, {KvEvent::Kind::kStored, 13}, {KvEvent::Kind::kStored, 14}}, load));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0]["seq"], 2u);
  ASSERT_EQ(got[0]["events"].size(), 2u);  // runs of one kind are one entry
  EXPECT_EQ(got[0]["events"][0], (Json{{"type", "removed"}, {"hashes", {11}}}));
  EXPECT_EQ(got[0]["events"][1], (Json{{"type", "stored"}, {"hashes", {13, 14}}}));
  EXPECT_EQ(pub.num_cached_blocks(), 3u);

  // Nothing new: skipped. A load change alone: published.
  EXPECT_FALSE(pub.publish({}, load));
  load.num_running = 3;
  EXPECT_TRUE(pub.publish({}, load));
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1]["seq"], 3u);
  EXPECT_EQ(got[1]["load"]["num_running"], 3);

  EXPECT_TRUE(pub.publish({{KvEvent::Kind::kCleared, 0}}, load));
  EXPECT_EQ(got[2]["events"][0], (Json{{"type", "cleared"}}));
  EXPECT_EQ(pub.num_cached_blocks(), 0u);

  pub.unsubscribe(id);
  EXPECT_TRUE(pub.publish({{KvEvent::Kind::kStored, 15}}, load));
  EXPECT_EQ(got.size(), 3u);
  EXPECT_EQ(pub.num_subscribers(), 0);
}

TEST(KvEventPublisher, LoadRoundTripsThroughJson) {
  KvLoad l;
  l.num_waiting = 2;
  l.num_running = 5;
  l.kv_usage = 0.5;
  l.waiting_prompt_tokens = 900;
  l.prefill_tokens_per_s = 1234.5;
  KvLoad back = KvLoad::from_json(l.to_json());
  EXPECT_EQ(back.num_waiting, 2);
  EXPECT_EQ(back.num_running, 5);
  EXPECT_DOUBLE_EQ(back.kv_usage, 0.5);
  EXPECT_EQ(back.waiting_prompt_tokens, 900);
  EXPECT_DOUBLE_EQ(back.prefill_tokens_per_s, 1234.5);
  EXPECT_EQ(KvLoad::from_json(Json("junk")).num_waiting, 0);
}

}  // namespace
}  // namespace baton
