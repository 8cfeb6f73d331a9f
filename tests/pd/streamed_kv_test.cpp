// Streamed KV in process (docs/pd.md, "Streamed KV"): the prefill connector
// publishes a prompt's blocks as its steps compute them, the decode
// connector pulls them while the rest computes, byte for byte; and every
// fault of the whole-prompt handoff, struck mid-stream, ends as it does
// there: prefill gone, decode gone, a corrupt or failed read, a lease that
// expires, plus the stream's own (the prefill aborted or preempted). Over
// the local transport and tcp (where the agent checks every read's token).
#include <gtest/gtest.h>

#include "pd/pd_connector_fixture.h"

namespace baton::testing {
namespace {

// 18 prompt tokens in 5 blocks of 4: the decode pulls the 17 it does not
// compute, all 5 blocks.
constexpr int kPromptTokens = 18;
const std::vector<int> kRemote = {10, 11, 12, 13, 14};
const std::vector<int> kLocal = {1, 2, 3, 4, 5};

std::unique_ptr<Transport> faulty(FaultKind kind) {
  FaultSpec spec;
  spec.kind = kind;
  return std::make_unique<FaultTransport>(std::make_unique<LocalTransport>(), spec);
}

class StreamedKvTest : public ::testing::TestWithParam<const char*> {
 protected:
  void open(std::unique_ptr<Transport> decode_transport = nullptr,
            const std::function<void(PdConnectorOptions&)>& adjust = nullptr) {
    Status st = pair_.open(GetParam(), std::move(decode_transport), adjust);
    ASSERT_TRUE(st.is_ok()) << st.to_string();
  }
  // The prefill's first step: the stream opens and its params go out.
  Json open_stream() {
    Json params = pair_.prefill->on_prefill_progress("req-a", kPromptTokens, 0, kRemote);
    EXPECT_TRUE(params.is_object());
    EXPECT_TRUE(params.value("stream_kv", false)) << params.dump();
    return params;
  }
  void computed(int num_tokens) { pair_.prefill->on_prefill_progress("req-a", kPromptTokens, num_tokens, kRemote); }
  bool pulled(int local_block, int remote_block) const {
    return pair_.decode_kv.block_filled(local_block, static_cast<uint8_t>(0x10 + remote_block));
  }
  // Starts the decode's pull and waits until it has the first two blocks.
  void pull_first_two(const Json& params) {
    ASSERT_TRUE(pair_.decode->start_load(load_of("d-a", params, kLocal, kPromptTokens)).is_ok());
    computed(8);
    ASSERT_TRUE(wait_until([&] { return pulled(1, 10) && pulled(2, 11); }));
  }
  // Drains the prefill's events until `n` blocks came back.
  size_t prefill_blocks_released(size_t n) {
    EventWaiter w(*pair_.prefill);
    KvConnectorEvents all;
    auto count = [](const KvConnectorEvents& e) {
      size_t k = 0;
      for (const auto& b : e.blocks_to_release) k += b.size();
      return k;
    };
    w.poll_until(all, [&](const KvConnectorEvents& e) { return count(e) >= n; });
    return count(all);
  }

  PdPair pair_;
};

TEST_P(StreamedKvTest, PullIsByteExactAndStartsBeforeThePromptEnds) {
  open();
  EventWaiter events(*pair_.decode);
  const Json params = open_stream();
  EXPECT_TRUE(params["remote_block_ids"].empty()) << "ids come with the progress answers";
  pull_first_two(params);
  // Blocks not yet computed are not read.
  EXPECT_TRUE(pair_.decode_kv.block_filled(3, 0x83));
  EXPECT_EQ(pair_.prefill->stats().num_blocks_pinned, 0) << "the running request owns them";
  computed(16);
  ASSERT_TRUE(wait_until([&] { return pulled(4, 13); }));
  // The last block is partial: final only when the prompt is done.
  EXPECT_TRUE(pair_.decode_kv.block_filled(5, 0x85));
  const Json final_params = pair_.prefill->on_prefill_finished("req-a", kPromptTokens, kRemote);
  EXPECT_EQ(final_params, params);
  ASSERT_TRUE(events.wait_load("d-a").is_ok());
  for (size_t i = 0; i < kLocal.size(); ++i) EXPECT_TRUE(pulled(kLocal[i], kRemote[i])) << "block " << i;
  EXPECT_EQ(pair_.decode->stats().num_blocks_received, 5);
  // The reader's done frees the lease's blocks at once.
  EXPECT_EQ(prefill_blocks_released(5), 5u);
  EXPECT_EQ(pair_.prefill->stats().num_leases_done, 1);
  EXPECT_EQ(pair_.prefill->stats().num_leases, 0);
}

TEST_P(StreamedKvTest, PrefillGoneMidStreamFailsThePull) {
  open();
  EventWaiter events(*pair_.decode);
  pull_first_two(open_stream());
  pair_.prefill->stop();  // its agent goes, as with kill -9
  Status st = events.wait_load("d-a");
  EXPECT_FALSE(st.is_ok());
  EXPECT_EQ(pair_.decode->stats().num_loads_failed, 1);
}

TEST_P(StreamedKvTest, DecodeGoneMidStreamEndsTheLeaseAndTheBlocksComeBackAtTheEnd) {
  open();
  EventWaiter events(*pair_.decode);
  pull_first_two(open_stream());
  pair_.decode->cancel_load("d-a", kLocal);
  KvConnectorEvents back;
  ASSERT_TRUE(events.poll_until(back, [](const auto& e) { return !e.blocks_to_release.empty(); }));
  EXPECT_EQ(back.blocks_to_release[0], kLocal);
  // Its done ended the lease; the prompt's blocks stay with the request...
  ASSERT_TRUE(wait_until([&] { return pair_.prefill->stats().num_leases == 0; }));
  EXPECT_EQ(pair_.prefill->stats().num_leases_done, 1);
  // ...and come back the moment it finishes, with no lease to wait for.
  EXPECT_TRUE(pair_.prefill->on_prefill_finished("req-a", kPromptTokens, kRemote).is_null());
  EXPECT_EQ(prefill_blocks_released(5), 5u);
  EXPECT_EQ(pair_.prefill->stats().num_lease_expirations, 0);
}

TEST_P(StreamedKvTest, LeaseExpiresMidStreamWhenNoReaderComes) {
  open();
  EventWaiter events(*pair_.decode);
  const Json params = open_stream();
  computed(8);
  pair_.clock.advance_ms(30001);
  EXPECT_EQ(prefill_blocks_released(0), 0u) << "a running request's blocks are its own";
  EXPECT_EQ(pair_.prefill->stats().num_lease_expirations, 1);
  EXPECT_TRUE(pair_.prefill->on_prefill_finished("req-a", kPromptTokens, kRemote).is_null());
  EXPECT_EQ(prefill_blocks_released(5), 5u);
  // A decode arriving late gets a clear error, not stale KV.
  ASSERT_TRUE(pair_.decode->start_load(load_of("d-a", params, kLocal, kPromptTokens)).is_ok());
  Status st = events.wait_load("d-a");
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition) << st.to_string();
  EXPECT_NE(st.message().find("expired"), std::string::npos) << st.message();
  EXPECT_TRUE(pair_.decode_kv.block_filled(1, 0x81));
}

TEST_P(StreamedKvTest, PrefillAbortedMidStreamFailsTheReaderAndFreesOnItsDone) {
  open();
  EventWaiter events(*pair_.decode);
  pull_first_two(open_stream());
  // A reader may be copying: the connector keeps the blocks for now.
  EXPECT_TRUE(pair_.prefill->on_prefill_stopped("req-a", "it was aborted", kRemote).empty());
  Status st = events.wait_load("d-a");
  EXPECT_EQ(st.code(), StatusCode::kAborted) << st.to_string();
  EXPECT_NE(st.message().find("aborted"), std::string::npos) << st.message();
  EXPECT_EQ(prefill_blocks_released(5), 5u);
  EXPECT_EQ(pair_.prefill->stats().num_leases, 0);
}

TEST_P(StreamedKvTest, PrefillAbortedBeforeAnyReaderFreesAtOnce) {
  open();
  open_stream();
  computed(8);
  EXPECT_EQ(pair_.prefill->on_prefill_stopped("req-a", "it was aborted", kRemote), kRemote);
  EXPECT_EQ(pair_.prefill->stats().num_leases, 0);
}

TEST_P(StreamedKvTest, PreemptedPrefillFailsTheReader) {
  open();
  EventWaiter events(*pair_.decode);
  pull_first_two(open_stream());
  // Recomputed into other blocks: what was read may have been overwritten.
  pair_.prefill->on_prefill_progress("req-a", kPromptTokens, 8, {20, 21, 22, 23, 24});
  Status st = events.wait_load("d-a");
  EXPECT_EQ(st.code(), StatusCode::kAborted) << st.to_string();
  EXPECT_NE(st.message().find("preempted"), std::string::npos) << st.message();
  EXPECT_TRUE(pair_.prefill->on_prefill_finished("req-a", kPromptTokens, {20, 21, 22, 23, 24}).is_null());
}

INSTANTIATE_TEST_SUITE_P(Transports, StreamedKvTest, ::testing::Values("local", "tcp"),
                         [](const auto& info) { return std::string(info.param); });

// Read faults injected on the decode's transport (local), struck mid-stream.
class StreamedKvFaultTest : public StreamedKvTest {};

TEST_P(StreamedKvFaultTest, CorruptBlockFailsTheChecksumAndTheReaderStillSaysDone) {
  open(faulty(FaultKind::kCorrupt), [](PdConnectorOptions& o) { o.checksum = true; });
  EventWaiter events(*pair_.decode);
  ASSERT_TRUE(pair_.decode->start_load(load_of("d-a", open_stream(), kLocal, kPromptTokens)).is_ok());
  computed(8);
  Status st = events.wait_load("d-a");
  EXPECT_EQ(st.code(), StatusCode::kDataLoss) << st.to_string();
  EXPECT_NE(st.message().find("checksum"), std::string::npos) << st.message();
  ASSERT_TRUE(wait_until([&] { return pair_.prefill->stats().num_leases_done == 1; }));
}

TEST_P(StreamedKvFaultTest, FailedReadFailsThePullAndTheReaderStillSaysDone) {
  open(faulty(FaultKind::kFail));
  EventWaiter events(*pair_.decode);
  ASSERT_TRUE(pair_.decode->start_load(load_of("d-a", open_stream(), kLocal, kPromptTokens)).is_ok());
  computed(8);
  EXPECT_EQ(events.wait_load("d-a").code(), StatusCode::kUnavailable);
  ASSERT_TRUE(wait_until([&] { return pair_.prefill->stats().num_leases_done == 1; }));
  EXPECT_TRUE(pair_.prefill->on_prefill_finished("req-a", kPromptTokens, kRemote).is_null());
  EXPECT_EQ(prefill_blocks_released(5), 5u);
}

INSTANTIATE_TEST_SUITE_P(Local, StreamedKvFaultTest, ::testing::Values("local"),
                         [](const auto& info) { return std::string(info.param); });

// Issue 22: a decode request that ends before its pull started (an early
// stop aborted it while it waited) ends the prefill's lease at once.
TEST(AbandonedLoad, EndsThePrefillsLeaseAtOnce) {
  PdPair pair;
  ASSERT_TRUE(pair.open("tcp").is_ok());
  EventWaiter prefill_events(*pair.prefill);
  const Json params = pair.prefill->on_prefill_finished("req-a", 8, {3, 4});
  EXPECT_EQ(pair.prefill->stats().num_leases, 1);
  pair.decode->abandon_load("d-a", params);
  KvConnectorEvents released;
  ASSERT_TRUE(prefill_events.poll_until(released, [](const auto& e) { return !e.blocks_to_release.empty(); }));
  EXPECT_EQ(released.blocks_to_release[0], (std::vector<int>{3, 4}));
  EXPECT_EQ(pair.prefill->stats().num_leases_done, 1);
  EXPECT_EQ(pair.prefill->stats().num_lease_expirations, 0);
}

}  // namespace
}  // namespace baton::testing
