// DecodeKvConnector in process, pulling from a PrefillKvConnector over the
// local transport, with a fault-injecting transport (FaultTransport, the
// LevelDB-Env-style wrapper) on the decode side: the prefix cache's blocks
// are skipped, a corrupted block fails the checksum, a peer that dies
// mid-pull fails the load at its deadline, an expired lease is never read,
// an aborted pull gives its blocks back once it stops, and a failed pull
// reports the recompute policy so the engine prefills locally.
#include <gtest/gtest.h>

#include "pd/pd_connector_fixture.h"
#include "pd/pd_kv_connector.h"

namespace baton::testing {
namespace {

// A decode transport whose reads fail as `kind` says; `out` sees the wrapper.
std::unique_ptr<Transport> faulty(FaultKind kind, FaultTransport** out) {
  FaultSpec spec;
  spec.kind = kind;
  auto t = std::make_unique<FaultTransport>(std::make_unique<LocalTransport>(), spec);
  *out = t.get();
  return t;
}

TEST(DecodeKvConnector, PullsOnlyWhatThePrefixCacheLacks) {
  PdPair pair;
  ASSERT_TRUE(pair.open("local").is_ok());
  EventWaiter events(*pair.decode);
  // 20 prompt tokens (5 blocks of 4); the local prefix cache holds the first 8.
  const Json params = pair.prefill->on_prefill_finished("req-a", 20, {10, 11, 12, 13, 14});
  ASSERT_TRUE(pair.decode->start_load(load_of("d-a", params, {1, 2, 3, 4, 5}, 20, 8)).is_ok());
  ASSERT_TRUE(events.wait_load("d-a").is_ok());
  EXPECT_TRUE(pair.decode_kv.block_filled(1, 0x81));  // cached: not pulled
  EXPECT_TRUE(pair.decode_kv.block_filled(2, 0x82));
  EXPECT_TRUE(pair.decode_kv.block_filled(3, 0x10 + 12));
  EXPECT_TRUE(pair.decode_kv.block_filled(5, 0x10 + 14));
  const PdStats s = pair.decode->stats();
  EXPECT_EQ(s.num_blocks_local_hit, 2);
  EXPECT_EQ(s.num_blocks_received, 3);
}

TEST(DecodeKvConnector, WholePromptCachedPullsNothingAndEndsTheLease) {
  PdPair pair;
  ASSERT_TRUE(pair.open("local").is_ok());
  EventWaiter events(*pair.decode);
  EventWaiter prefill_events(*pair.prefill);
  const Json params = pair.prefill->on_prefill_finished("req-a", 9, {10, 11, 12});
  // 8 of 9 tokens to load, all 8 cached locally: nothing moves.
  ASSERT_TRUE(pair.decode->start_load(load_of("d-a", params, {1, 2, 3}, 9, 8)).is_ok());
  ASSERT_TRUE(events.wait_load("d-a").is_ok());
  EXPECT_EQ(pair.decode->stats().num_blocks_received, 0);
  EXPECT_TRUE(pair.decode_kv.block_filled(1, 0x81));
  KvConnectorEvents released;
  EXPECT_TRUE(prefill_events.poll_until(released, [](const auto& e) { return !e.blocks_to_release.empty(); }));
  EXPECT_EQ(pair.prefill->stats().num_leases_done, 1);
}

TEST(DecodeKvConnector, CorruptedBlockFailsTheChecksum) {
  PdPair pair;
  FaultTransport* fault = nullptr;
  ASSERT_TRUE(pair.open("local", faulty(FaultKind::kCorrupt, &fault), [](PdConnectorOptions& o) { o.checksum = true; })
                  .is_ok());
  EventWaiter events(*pair.decode);
  const Json params = pair.prefill->on_prefill_finished("req-a", 8, {3, 4});
  ASSERT_TRUE(pair.decode->start_load(load_of("d-a", params, {1, 2}, 8)).is_ok());
  Status st = events.wait_load("d-a");
  EXPECT_EQ(st.code(), StatusCode::kDataLoss) << st.to_string();
  EXPECT_NE(st.message().find("checksum"), std::string::npos) << st.message();
  EXPECT_EQ(fault->num_injected(), 1);
  EXPECT_EQ(pair.decode->stats().num_loads_failed, 1);
}

TEST(DecodeKvConnector, PeerDyingMidPullFailsTheLoadAtItsDeadline) {
  PdPair pair;
  FaultTransport* fault = nullptr;
  ASSERT_TRUE(pair.open("local", faulty(FaultKind::kDrop, &fault),
                        [](PdConnectorOptions& o) {
                          o.load_timeout_ms = 300;
                          o.failure_policy = KvLoadFailurePolicy::kRecompute;
                        })
                  .is_ok());
  EventWaiter events(*pair.decode);
  const Json params = pair.prefill->on_prefill_finished("req-a", 8, {3, 4});
  ASSERT_TRUE(pair.decode->start_load(load_of("d-a", params, {1, 2}, 8)).is_ok());
  // The read is in flight (and never completes); then the prefill goes away.
  ASSERT_TRUE(wait_until([&] { return fault->num_injected() == 1; }));
  pair.prefill->stop();
  pair.prefill.reset();
  Status st = events.wait_load("d-a");
  EXPECT_EQ(st.code(), StatusCode::kDeadlineExceeded) << st.to_string();
  EXPECT_EQ(pair.decode->load_failure_policy(), KvLoadFailurePolicy::kRecompute);
  EXPECT_TRUE(pair.decode_kv.block_filled(1, 0x81));  // nothing written
  EXPECT_EQ(pair.decode->stats().num_loads_failed, 1);
}

TEST(DecodeKvConnector, FailedReadReportsThePolicyForTheEngineToFallBack) {
  for (KvLoadFailurePolicy policy : {KvLoadFailurePolicy::kFail, KvLoadFailurePolicy::kRecompute}) {
    PdPair pair;
    FaultTransport* fault = nullptr;
    ASSERT_TRUE(
        pair.open("local", faulty(FaultKind::kFail, &fault), [&](PdConnectorOptions& o) { o.failure_policy = policy; })
            .is_ok());
    EventWaiter events(*pair.decode);
    EventWaiter prefill_events(*pair.prefill);
    const Json params = pair.prefill->on_prefill_finished("req-a", 8, {3, 4});
    ASSERT_TRUE(pair.decode->start_load(load_of("d-a", params, {1, 2}, 8)).is_ok());
    EXPECT_EQ(events.wait_load("d-a").code(), StatusCode::kUnavailable);
    EXPECT_EQ(pair.decode->load_failure_policy(), policy);
    // The prefill side is told "done" even so: its blocks do not wait for expiry.
    KvConnectorEvents released;
    EXPECT_TRUE(prefill_events.poll_until(released, [](const auto& e) { return !e.blocks_to_release.empty(); }));
    EXPECT_EQ(pair.prefill->stats().num_lease_expirations, 0);
  }
}

TEST(DecodeKvConnector, ExpiredLeaseIsNeverRead) {
  PdPair pair;
  ASSERT_TRUE(pair.open("local").is_ok());
  EventWaiter events(*pair.decode);
  const Json params = pair.prefill->on_prefill_finished("req-a", 8, {3, 4});
  pair.clock.advance_ms(30001);  // the params' lease_expires_ms is past
  ASSERT_TRUE(pair.decode->start_load(load_of("d-a", params, {1, 2}, 8)).is_ok());
  Status st = events.wait_load("d-a");
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition) << st.to_string();
  EXPECT_NE(st.message().find("expired"), std::string::npos) << st.message();
  EXPECT_TRUE(pair.decode_kv.block_filled(1, 0x81));
}

TEST(DecodeKvConnector, AbortedPullGivesItsBlocksBackOnceItStops) {
  PdPair pair;
  FaultTransport* fault = nullptr;
  ASSERT_TRUE(pair.open("local", faulty(FaultKind::kDrop, &fault)).is_ok());
  EventWaiter events(*pair.decode);
  const Json params = pair.prefill->on_prefill_finished("req-a", 8, {3, 4});
  ASSERT_TRUE(pair.decode->start_load(load_of("d-a", params, {1, 2}, 8)).is_ok());
  ASSERT_TRUE(wait_until([&] { return fault->num_injected() == 1; }));
  pair.decode->cancel_load("d-a", {1, 2});
  KvConnectorEvents all;
  ASSERT_TRUE(events.poll_until(all, [](const auto& e) { return !e.loads_done.empty(); }));
  ASSERT_EQ(all.blocks_to_release.size(), 1u);
  EXPECT_EQ(all.blocks_to_release[0], (std::vector<int>{1, 2}));
  EXPECT_EQ(all.loads_done[0].status.code(), StatusCode::kAborted) << all.loads_done[0].status.to_string();
}

TEST(DecodeKvConnector, RefusesParamsItCannotTrustAndDuplicateLoads) {
  PdPair pair;
  ASSERT_TRUE(pair.open("local").is_ok());
  const Json params = pair.prefill->on_prefill_finished("req-a", 8, {3, 4});
  Json far = params;
  far["remote_host"] = "203.0.113.7";  // no secret: loopback agents only
  EXPECT_EQ(pair.decode->check_transfer_params(far).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(pair.decode->check_transfer_params(params).is_ok());
  FaultTransport* fault = nullptr;
  PdPair slow;
  ASSERT_TRUE(slow.open("local", faulty(FaultKind::kDrop, &fault)).is_ok());
  const Json p2 = slow.prefill->on_prefill_finished("req-b", 8, {3, 4});
  ASSERT_TRUE(slow.decode->start_load(load_of("d-b", p2, {1, 2}, 8)).is_ok());
  EXPECT_EQ(slow.decode->start_load(load_of("d-b", p2, {5, 6}, 8)).code(), StatusCode::kFailedPrecondition);
  slow.decode->stop();  // cancels the pull in flight
  EXPECT_EQ(slow.decode->start_load(load_of("d-c", p2, {5, 6}, 8)).code(), StatusCode::kUnavailable);
}

TEST(PdKvConnectorFactory, BuildsTheClassOfTheRole) {
  FakeClock clock;
  HostKv kv(0);
  auto prefill = create_pd_connector(kv.memory, pd_options(PdRole::kPrefill, "p", clock));
  ASSERT_TRUE(prefill.is_ok()) << prefill.status().to_string();
  EXPECT_NE(dynamic_cast<PrefillKvConnector*>(prefill->get()), nullptr);
  EXPECT_GT((*prefill)->kv_port(), 0);
  auto decode = create_pd_connector(kv.memory, pd_options(PdRole::kDecode, "d", clock));
  ASSERT_TRUE(decode.is_ok()) << decode.status().to_string();
  EXPECT_NE(dynamic_cast<DecodeKvConnector*>(decode->get()), nullptr);
  EXPECT_EQ(create_pd_connector(kv.memory, pd_options(PdRole::kAgg, "a", clock)).status().code(),
            StatusCode::kInvalidArgument);
  PdConnectorOptions bad = pd_options(PdRole::kPrefill, "p2", clock);
  bad.lease_ms = 0;
  EXPECT_NE(create_pd_connector(kv.memory, bad).status().message().find("--kv-lease-ms"), std::string::npos);
  KvMemory unallocated = kv.memory;
  unallocated.base = nullptr;
  EXPECT_EQ(create_pd_connector(unallocated, pd_options(PdRole::kDecode, "d2", clock)).status().code(),
            StatusCode::kFailedPrecondition);
  (*prefill)->stop();
  (*decode)->stop();
}

}  // namespace
}  // namespace baton::testing
