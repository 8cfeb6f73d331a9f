// PrefillKvConnector in process, with a DecodeKvConnector reading from it
// over the local transport: a lease holds the prompt's blocks until the
// reader's "done", the router's release or expiry (on a fake clock), and a
// reader with a forged or wrong token gets nothing.
#include <gtest/gtest.h>

#include "pd/pd_connector_fixture.h"

namespace baton::testing {
namespace {

class PrefillKvConnectorTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    Status st = pair_.open(GetParam());
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    prefill_ = pair_.prefill;
    decode_ = pair_.decode;
  }

  PdPair pair_;
  FakeClock& clock_ = pair_.clock;
  HostKv& prefill_kv_ = pair_.prefill_kv;
  HostKv& decode_kv_ = pair_.decode_kv;
  std::shared_ptr<PrefillKvConnector> prefill_;
  std::shared_ptr<DecodeKvConnector> decode_;
};

TEST_P(PrefillKvConnectorTest, LeaseExpiresOnlyAfterItsLength) {
  const Json params = prefill_->on_prefill_finished("req-a", 8, {3, 4});
  EXPECT_EQ(params["remote_block_ids"], Json({3, 4}));
  EXPECT_EQ(params["remote_port"].get<int>(), prefill_->kv_port());
  EXPECT_TRUE(prefill_->has_timers());
  clock_.advance_ms(29999);
  EXPECT_FALSE(prefill_->has_events());
  EXPECT_TRUE(prefill_->poll().blocks_to_release.empty());
  EXPECT_EQ(prefill_->stats().num_blocks_pinned, 2);
  clock_.advance_ms(1);
  EXPECT_TRUE(prefill_->has_events());
  KvConnectorEvents ev = prefill_->poll();
  ASSERT_EQ(ev.blocks_to_release.size(), 1u);
  EXPECT_EQ(ev.blocks_to_release[0], (std::vector<int>{3, 4}));
  EXPECT_EQ(prefill_->stats().num_lease_expirations, 1);
  EXPECT_EQ(prefill_->stats().num_blocks_pinned, 0);
  EXPECT_FALSE(prefill_->has_timers());
}

TEST_P(PrefillKvConnectorTest, DecodesDoneFreesTheBlocksItRead) {
  EventWaiter prefill_events(*prefill_);
  EventWaiter decode_events(*decode_);
  const Json params = prefill_->on_prefill_finished("req-a", 12, {5, 6, 7});
  // 12 prompt tokens, 11 to load: blocks 5..7 -> local 1..3.
  ASSERT_TRUE(decode_->check_transfer_params(params).is_ok());
  ASSERT_TRUE(decode_->start_load(load_of("d-a", params, {1, 2, 3}, 12)).is_ok());
  EXPECT_TRUE(decode_events.wait_load("d-a").is_ok());
  EXPECT_TRUE(decode_kv_.block_filled(1, 0x15));
  EXPECT_TRUE(decode_kv_.block_filled(3, 0x17));
  EXPECT_TRUE(decode_kv_.block_filled(4, 0x84));  // not the request's: untouched
  KvConnectorEvents released;
  ASSERT_TRUE(prefill_events.poll_until(released, [](const auto& e) { return !e.blocks_to_release.empty(); }));
  EXPECT_EQ(released.blocks_to_release[0], (std::vector<int>{5, 6, 7}));
  const PdStats p = prefill_->stats();
  EXPECT_EQ(p.num_leases_done, 1);
  EXPECT_EQ(p.num_leases, 0);
  EXPECT_EQ(decode_->stats().num_blocks_received, 3);
  EXPECT_EQ(decode_->stats().num_loads_ok, 1);
}

TEST_P(PrefillKvConnectorTest, EarlyReleaseFreesTheLeaseForItsOwnParamsOnly) {
  const Json a = prefill_->on_prefill_finished("req-a", 8, {1, 2});
  Json wrong_token = a;
  wrong_token["lease_token"] = std::string(32, '0');
  EXPECT_EQ(prefill_->release_lease(wrong_token).code(), StatusCode::kInvalidArgument);
  Json other_engine = a;
  other_engine["remote_engine_id"] = "prefill-9";
  EXPECT_EQ(prefill_->release_lease(other_engine).code(), StatusCode::kNotFound);
  EXPECT_EQ(prefill_->stats().num_leases, 1);
  ASSERT_TRUE(prefill_->release_lease(a).is_ok());
  EXPECT_TRUE(prefill_->has_events());
  KvConnectorEvents ev = prefill_->poll();
  ASSERT_EQ(ev.blocks_to_release.size(), 1u);
  EXPECT_EQ(ev.blocks_to_release[0], (std::vector<int>{1, 2}));
  EXPECT_EQ(prefill_->stats().num_leases_released, 1);
  EXPECT_EQ(prefill_->release_lease(a).code(), StatusCode::kNotFound);
  EXPECT_EQ(decode_->release_lease(a).code(), StatusCode::kFailedPrecondition);  // a decode holds no leases
}

TEST_P(PrefillKvConnectorTest, PrefillRoleRefusesToPull) {
  const Json a = prefill_->on_prefill_finished("req-a", 8, {1, 2});
  EXPECT_EQ(prefill_->start_load(load_of("x", a, {1, 2}, 8)).code(), StatusCode::kFailedPrecondition);
}

// Over local and shm the reader maps the region itself; over tcp the
// prefill's agent serves each read and checks its lease token.
TEST(PrefillKvConnectorTcp, ForgedOrWrongTokenReadsNothing) {
  PdPair pair;
  ASSERT_TRUE(pair.open("tcp").is_ok());
  auto& prefill = pair.prefill;
  auto& decode = pair.decode;
  EventWaiter decode_events(*decode);
  const Json a = prefill->on_prefill_finished("req-a", 8, {1, 2});
  const Json b = prefill->on_prefill_finished("req-b", 8, {9, 10});
  Json forged = a;
  forged["lease_token"] = std::string(32, 'f');
  Json b_with_a_token = b;
  b_with_a_token["lease_token"] = a["lease_token"];
  ASSERT_TRUE(decode->start_load(load_of("d-forged", forged, {1, 2}, 8)).is_ok());
  Status st = decode_events.wait_load("d-forged");
  EXPECT_EQ(st.code(), StatusCode::kPermissionDenied) << st.to_string();
  ASSERT_TRUE(decode->start_load(load_of("d-swapped", b_with_a_token, {3, 4}, 8)).is_ok());
  EXPECT_EQ(decode_events.wait_load("d-swapped").code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(pair.decode_kv.block_filled(1, 0x81));  // nothing written
  EXPECT_TRUE(pair.decode_kv.block_filled(4, 0x84));
  // Both leases still held: a forged "done" ended neither.
  EXPECT_EQ(prefill->stats().num_leases, 2);
  EXPECT_EQ(prefill->stats().num_leases_done, 0);
  EXPECT_GE(prefill->stats().num_grants_denied, 4);  // two reads, two "done"s
  EXPECT_EQ(decode->stats().num_loads_failed, 2);
}

INSTANTIATE_TEST_SUITE_P(Transports, PrefillKvConnectorTest, ::testing::Values("local", "tcp"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace baton::testing
