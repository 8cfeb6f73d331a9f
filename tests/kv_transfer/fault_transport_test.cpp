// The fault-injecting wrapper: each fault ends in a clear status, bounded in time.
#include "kv_transfer/fault_transport.h"

#include <gtest/gtest.h>

#include "common/clock.h"
#include "kv_transfer/engine_pair.h"
#include "kv_transfer/local_transport.h"

namespace baton {
namespace {

using testing::TestRegion;

class FaultTest : public ::testing::Test {
 protected:
  void start(FaultSpec spec, bool checksum) {
    src_ = TestRegion::heap(testing::small_shape(32));
    src_.fill_random(11);
    dst_ = TestRegion::heap(testing::small_shape(32));
    prefill_ = testing::make_engine("local", "prefill-f");
    ASSERT_NO_FATAL_FAILURE(testing::serve(*prefill_, src_, nullptr));
    auto fault = std::make_unique<FaultTransport>(std::make_unique<LocalTransport>(), spec);
    fault_ = fault.get();
    decode_ = testing::make_engine(std::move(fault), "decode-f", checksum);
    ASSERT_TRUE(decode_->register_memory(dst_.desc()).is_ok());
    auto peer = decode_->connect_peer("127.0.0.1", prefill_->agent_port());
    ASSERT_TRUE(peer.is_ok()) << peer.status().to_string();
  }

  Status transfer(int64_t timeout_ms, int64_t wait_ms = 10000) {
    auto h = decode_->read_blocks("prefill-f", {1, 2, 3, 10, 20}, {4, 5, 6, 7, 8},
                                  {.request_id = "r", .timeout_ms = timeout_ms});
    if (!h.is_ok()) return h.status();
    return (*h)->wait(wait_ms);
  }

  TestRegion src_, dst_;
  std::unique_ptr<TransferEngine> prefill_, decode_;
  FaultTransport* fault_ = nullptr;
};

TEST_F(FaultTest, NoFaultPassesThrough) {
  ASSERT_NO_FATAL_FAILURE(start({.kind = FaultKind::kNone}, true));
  ASSERT_TRUE(transfer(1000).is_ok());
  EXPECT_TRUE(dst_.block_equals(8, src_, 20));
  EXPECT_EQ(fault_->num_injected(), 0);
}

TEST_F(FaultTest, FailGivesErrorStatus) {
  ASSERT_NO_FATAL_FAILURE(start({.kind = FaultKind::kFail}, false));
  Status st = transfer(1000);
  EXPECT_EQ(st.code(), StatusCode::kUnavailable);
  EXPECT_NE(st.message().find("injected fault"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("request 'r'"), std::string::npos) << st.message();
  EXPECT_EQ(decode_->stats().num_transfers_failed, 1u);
}

TEST_F(FaultTest, DelayPastDeadlineTimesOut) {
  ASSERT_NO_FATAL_FAILURE(start({.kind = FaultKind::kDelay, .delay_ms = 2000}, false));
  Stopwatch sw;
  Status st = transfer(/*timeout_ms=*/150);
  EXPECT_EQ(st.code(), StatusCode::kDeadlineExceeded) << st.to_string();
  EXPECT_LT(sw.elapsed_ms(), 1500.0);  // bounded by the deadline, not the delay
}

TEST_F(FaultTest, ShortDelayStillCompletes) {
  ASSERT_NO_FATAL_FAILURE(start({.kind = FaultKind::kDelay, .delay_ms = 30}, true));
  ASSERT_TRUE(transfer(2000).is_ok());
  EXPECT_TRUE(dst_.block_equals(4, src_, 1));
}

TEST_F(FaultTest, CorruptDetectedByChecksum) {
  ASSERT_NO_FATAL_FAILURE(start({.kind = FaultKind::kCorrupt, .seed = 3}, true));
  Status st = transfer(1000);
  EXPECT_EQ(st.code(), StatusCode::kDataLoss) << st.to_string();
  EXPECT_NE(st.message().find("checksum mismatch"), std::string::npos) << st.message();
  EXPECT_EQ(decode_->stats().num_checksum_failures, 1u);
}

TEST_F(FaultTest, CorruptUndetectedWithoutChecksum) {
  // Shows that the checksum, not the transport, catches the corruption.
  ASSERT_NO_FATAL_FAILURE(start({.kind = FaultKind::kCorrupt, .seed = 3}, false));
  ASSERT_TRUE(transfer(1000).is_ok());
  int differing = 0;
  const std::vector<std::pair<int64_t, int64_t>> pairs = {{1, 4}, {2, 5}, {3, 6}, {10, 7}, {20, 8}};
  for (auto [r, l] : pairs) differing += dst_.block_equals(l, src_, r) ? 0 : 1;
  EXPECT_EQ(differing, 1);
}

TEST_F(FaultTest, DropTimesOutWithoutHanging) {
  ASSERT_NO_FATAL_FAILURE(start({.kind = FaultKind::kDrop}, false));
  Stopwatch sw;
  Status st = transfer(/*timeout_ms=*/200);
  EXPECT_EQ(st.code(), StatusCode::kDeadlineExceeded) << st.to_string();
  EXPECT_GE(sw.elapsed_ms(), 150.0);
  EXPECT_LT(sw.elapsed_ms(), 2000.0);
}

TEST_F(FaultTest, WaitTimeoutAndCancel) {
  ASSERT_NO_FATAL_FAILURE(start({.kind = FaultKind::kDrop}, false));
  auto h = decode_->read_blocks("prefill-f", {1}, {1}, {.timeout_ms = 60000});
  ASSERT_TRUE(h.is_ok());
  Status waited = (*h)->wait(50);
  EXPECT_EQ(waited.code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ((*h)->poll(), TransferState::kPending);
  (*h)->cancel();
  Status st = (*h)->wait(2000);
  EXPECT_EQ(st.code(), StatusCode::kAborted) << st.to_string();
  EXPECT_EQ((*h)->poll(), TransferState::kFailed);
}

TEST_F(FaultTest, DeterministicBySeed) {
  auto outcomes = [&](uint64_t seed) {
    fault_->set_spec({.kind = FaultKind::kFail, .probability = 0.5, .seed = seed});
    std::string s;
    for (int i = 0; i < 24; ++i) s += transfer(1000).is_ok() ? '.' : 'F';
    return s;
  };
  ASSERT_NO_FATAL_FAILURE(start({}, false));
  const std::string a = outcomes(42);
  const std::string b = outcomes(42);
  const std::string c = outcomes(43);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_NE(a.find('F'), std::string::npos);
  EXPECT_NE(a.find('.'), std::string::npos);
}

TEST(FaultKind, Parse) {
  EXPECT_EQ(*parse_fault_kind("corrupt"), FaultKind::kCorrupt);
  EXPECT_FALSE(parse_fault_kind("explode").is_ok());
}

TEST(TransferEngine, DestroyWithTransferInFlightDoesNotHang) {
  TestRegion src = TestRegion::heap(testing::small_shape(8));
  TestRegion dst = TestRegion::heap(testing::small_shape(8));
  auto prefill = testing::make_engine("local", "prefill-d");
  ASSERT_NO_FATAL_FAILURE(testing::serve(*prefill, src, nullptr));
  auto decode = testing::make_engine(
      std::make_unique<FaultTransport>(std::make_unique<LocalTransport>(), FaultSpec{.kind = FaultKind::kDrop}),
      "decode-d");
  ASSERT_TRUE(decode->register_memory(dst.desc()).is_ok());
  ASSERT_TRUE(decode->connect_peer("127.0.0.1", prefill->agent_port()).is_ok());
  auto h = decode->read_blocks("prefill-d", {1}, {1}, {.timeout_ms = 60000});
  ASSERT_TRUE(h.is_ok());
  std::shared_ptr<TransferHandle> handle = *h;
  Stopwatch sw;
  decode.reset();
  EXPECT_LT(sw.elapsed_ms(), 2000.0);
  EXPECT_EQ(handle->status().code(), StatusCode::kAborted) << handle->status().to_string();
}

}  // namespace
}  // namespace baton
