// The tcp transport's multi-stream reads: one large read split over several
// TCP connections at once, byte-exact into scattered blocks (host and "device"
// regions, the device staged through a copier on host memory), a part that
// fails mid-read failing the whole read, cancellation mid-read, and the
// connections reused afterwards.
#include <atomic>
#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "common/clock.h"
#include "kv_transfer/engine_pair.h"
#include "kv_transfer/tcp_transport.h"
#include "support/wait.h"

namespace baton {
namespace {

using testing::TestRegion;

// The serving agent counts a read once its last bytes are written, which may
// be just after the reader has them all: wait (up to 2 s) for `expected`,
// then return the count (still compared exactly by the caller).
uint64_t reads_served(const TransferEngine& prefill, uint64_t expected) {
  ::baton::testing::wait_until([&] { return prefill.agent_stats().num_reads >= expected; }, 2, 10);
  return prefill.agent_stats().num_reads;
}

constexpr int64_t kNumBlocks = 256;  // small_shape blocks

// Host memory standing in for device memory. The serving side's copies can
// be made to fail (a chunk holding `fail_block`) or to stall until the gate
// opens (every other chunk, while `stall` is set, unless never_stall).
class GateCopier : public DeviceCopier {
 public:
  explicit GateCopier(const TestRegion* region) : region_(region) {}
  Status to_host(void* dst, const void* src, size_t n) override {
    const auto* p = static_cast<const uint8_t*>(src);
    const int64_t first = (p - region_->block(0)) / static_cast<int64_t>(region_->desc().block_bytes());
    const int64_t count = static_cast<int64_t>(n / region_->desc().block_bytes());
    const int64_t fail = fail_block.load();
    if (fail >= first && fail < first + count) return internal_error("injected copy fault at block {}", fail);
    if (stall.load() && !(first < static_cast<int64_t>(never_stall.size()) && never_stall[first] != 0)) {
      ++num_stalled;
      ::baton::testing::wait_until([&] { return !stall.load(); }, 20.0, 2);
    }
    std::memcpy(dst, src, n);
    return Status::ok();
  }
  Status to_device(void* dst, const void* src, size_t n) override {
    std::memcpy(dst, src, n);
    return Status::ok();
  }
  std::atomic<int64_t> fail_block{-1};
  std::atomic<bool> stall{false};
  std::atomic<int> num_stalled{0};
  std::vector<char> never_stall;  // by block id: chunks starting there never stall (set before a read)

 private:
  const TestRegion* region_;
};

KvRegionDesc as_device(KvRegionDesc d, DeviceCopier* copier) {
  d.memory = MemoryKind::kDevice;
  d.device_id = 0;
  d.copier = copier;
  return d;
}

std::unique_ptr<TransferEngine> tcp_engine(const std::string& id, int num_streams, int max_pairs = 8) {
  TransferEngineOptions opts;
  opts.engine_id = id;
  opts.model = "tiny";
  opts.num_workers = 2;
  opts.default_timeout_ms = 10000;
  opts.agent.staging_bytes = 4096;  // 4 blocks a chunk: a part is several chunks
  opts.agent.max_staging_pairs = 16;
  opts.agent.io_timeout_ms = 30000;
  TcpTransportOptions topts{.staging_bytes = 4096, .max_staging_pairs = max_pairs};
  topts.num_streams = num_streams;
  topts.min_stream_bytes = 8 * testing::small_shape(1).block_bytes();  // reads over 8 blocks are split
  auto engine = TransferEngine::create(std::make_unique<TcpTransport>(topts), opts);
  EXPECT_TRUE(engine.is_ok()) << engine.status().to_string();
  return std::move(engine).value();
}

// 64 scattered blocks on both sides: runs of 1..3 blocks.
void scattered(int round, std::vector<int64_t>* remote, std::vector<int64_t>* local) {
  remote->clear();
  local->clear();
  for (int i = 0; i < 64; ++i) {
    remote->push_back((i * 37 + (i / 3) + round) % kNumBlocks);
    local->push_back((i * 53 + 5 * round) % kNumBlocks);
  }
}

Status read_and_wait(TransferEngine& decode, const std::vector<int64_t>& remote, const std::vector<int64_t>& local,
                     bool checksum) {
  BATON_ASSIGN_OR_RETURN(auto h, decode.read_blocks("prefill-m", remote, local, {.checksum = checksum}));
  return h->wait(15000);
}

class MultiStreamTest : public ::testing::TestWithParam<bool> {};  // param: device regions

TEST_P(MultiStreamTest, ScatteredBlocksByteExactOverFourStreams) {
  const bool device = GetParam();
  TestRegion src = TestRegion::heap(testing::small_shape(kNumBlocks));
  src.fill_random(31);
  TestRegion dst = TestRegion::heap(testing::small_shape(kNumBlocks));
  GateCopier src_copier(&src), dst_copier(&dst);
  auto prefill = tcp_engine("prefill-m", 4);
  ASSERT_TRUE(prefill->register_memory(device ? as_device(src.desc(), &src_copier) : src.desc()).is_ok());
  ASSERT_TRUE(prefill->start_agent(nullptr).is_ok());
  auto decode = tcp_engine("decode-m", 4);
  ASSERT_TRUE(decode->register_memory(device ? as_device(dst.desc(), &dst_copier) : dst.desc()).is_ok());
  ASSERT_TRUE(decode->connect_peer("127.0.0.1", prefill->agent_port()).is_ok());

  std::vector<int64_t> remote, local;
  // Counted from the start, not per round: the agent may count a round's last
  // read just after its data reached the reader.
  const uint64_t reads_at_start = prefill->agent_stats().num_reads;
  for (int round = 0; round < 4; ++round) {
    // Checksums need host memory; host reads alternate with and without.
    const bool checksum = !device && round % 2 == 0;
    dst.fill(0);
    scattered(round, &remote, &local);
    Status st = read_and_wait(*decode, remote, local, checksum);
    ASSERT_TRUE(st.is_ok()) << "round " << round << ": " << st.to_string();
    for (size_t i = 0; i < remote.size(); ++i) {
      ASSERT_TRUE(dst.block_equals(local[i], src, remote[i])) << "round " << round << " block " << i;
    }
    const uint64_t expected = reads_at_start + 4 * static_cast<uint64_t>(round + 1);
    EXPECT_EQ(reads_served(*prefill, expected), expected) << "one kReadBlocks per stream, round " << round;
  }
  // Untouched blocks stay untouched.
  std::vector<bool> written(kNumBlocks, false);
  for (int64_t l : local) written[l] = true;
  std::vector<uint8_t> zero(dst.desc().block_bytes(), 0);
  for (int64_t b = 0; b < kNumBlocks; ++b) {
    if (!written[b]) {
      EXPECT_EQ(std::memcmp(dst.block(b), zero.data(), zero.size()), 0) << b;
    }
  }
  // Four connections for the streams and the control one (which a stream may
  // take when it is idle), reused by every read: 4 or 5 over all the rounds.
  EXPECT_GE(prefill->agent_stats().num_connections, 4u);
  EXPECT_LE(prefill->agent_stats().num_connections, 5u);
  EXPECT_EQ(decode->stats().num_checksum_failures, 0u);

  // A small read is not split.
  const uint64_t reads_before = prefill->agent_stats().num_reads;
  ASSERT_TRUE(read_and_wait(*decode, {1, 2, 3}, {4, 5, 6}, !device).is_ok());
  EXPECT_EQ(reads_served(*prefill, reads_before + 1) - reads_before, 1u);
  EXPECT_TRUE(dst.block_equals(5, src, 2));
}

INSTANTIATE_TEST_SUITE_P(HostAndDevice, MultiStreamTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Device" : "Host"; });

TEST(MultiStream, OneStreamOptionKeepsOneRequest) {
  TestRegion src = TestRegion::heap(testing::small_shape(kNumBlocks));
  src.fill_random(5);
  TestRegion dst = TestRegion::heap(testing::small_shape(kNumBlocks));
  auto prefill = tcp_engine("prefill-m", 1);
  ASSERT_NO_FATAL_FAILURE(testing::serve(*prefill, src, nullptr));
  auto decode = tcp_engine("decode-m", 1);
  ASSERT_TRUE(decode->register_memory(dst.desc()).is_ok());
  ASSERT_TRUE(decode->connect_peer("127.0.0.1", prefill->agent_port()).is_ok());
  std::vector<int64_t> remote, local;
  scattered(0, &remote, &local);
  ASSERT_TRUE(read_and_wait(*decode, remote, local, true).is_ok());
  for (size_t i = 0; i < remote.size(); ++i) EXPECT_TRUE(dst.block_equals(local[i], src, remote[i]));
  EXPECT_EQ(reads_served(*prefill, 1), 1u);
}

// With fewer staging pairs free than streams, a device read uses the pairs
// it can get (never waits holding some): 2 pairs, 2 streams; one pair held
// elsewhere, 1 stream.
TEST(MultiStream, DeviceReadFallsBackToTheFreeStagingPairs) {
  TestRegion src = TestRegion::heap(testing::small_shape(kNumBlocks));
  src.fill_random(8);
  TestRegion dst = TestRegion::heap(testing::small_shape(kNumBlocks));
  GateCopier src_copier(&src), dst_copier(&dst);
  auto prefill = tcp_engine("prefill-m", 4);
  ASSERT_TRUE(prefill->register_memory(as_device(src.desc(), &src_copier)).is_ok());
  ASSERT_TRUE(prefill->start_agent(nullptr).is_ok());
  auto decode = tcp_engine("decode-m", 4, /*max_pairs=*/2);
  ASSERT_TRUE(decode->register_memory(as_device(dst.desc(), &dst_copier)).is_ok());
  ASSERT_TRUE(decode->connect_peer("127.0.0.1", prefill->agent_port()).is_ok());
  auto pool = dynamic_cast<const TcpTransport&>(decode->transport()).staging();
  ASSERT_NE(pool, nullptr);

  std::vector<int64_t> remote, local;
  scattered(1, &remote, &local);
  ASSERT_TRUE(read_and_wait(*decode, remote, local, false).is_ok());
  for (size_t i = 0; i < remote.size(); ++i) ASSERT_TRUE(dst.block_equals(local[i], src, remote[i])) << i;
  EXPECT_EQ(reads_served(*prefill, 2), 2u);

  auto held = pool->acquire(4096, {deadline_after_ms(1000), nullptr});
  ASSERT_TRUE(held.is_ok());
  dst.fill(0);
  ASSERT_TRUE(read_and_wait(*decode, remote, local, false).is_ok());
  for (size_t i = 0; i < remote.size(); ++i) ASSERT_TRUE(dst.block_equals(local[i], src, remote[i])) << i;
  EXPECT_EQ(reads_served(*prefill, 3), 3u);
  held->reset();
  EXPECT_EQ(pool->stats().num_idle, pool->stats().num_pairs);
}

class MultiStreamFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    src_.fill_random(77);
    prefill_ = tcp_engine("prefill-m", 4);
    ASSERT_TRUE(prefill_->register_memory(as_device(src_.desc(), &src_copier_)).is_ok());
    ASSERT_TRUE(prefill_->start_agent(nullptr).is_ok());
    decode_ = tcp_engine("decode-m", 4);
    ASSERT_TRUE(decode_->register_memory(as_device(dst_.desc(), &dst_copier_)).is_ok());
    ASSERT_TRUE(decode_->connect_peer("127.0.0.1", prefill_->agent_port()).is_ok());
    scattered(2, &remote_, &local_);
  }
  void TearDown() override { src_copier_.stall = false; }

  // After a failed or cancelled read: the next reads are byte-exact, the
  // staging pairs are all back, and the connections, once reopened, are reused.
  void expect_recovers() {
    src_copier_.fail_block = -1;
    src_copier_.stall = false;
    // The failed read's stream threads hand their staging pairs back as they
    // wind down; a read started before that would get fewer pairs, hence fewer
    // streams and connections than the next one (a leaked pair fails below).
    auto pool = dynamic_cast<const TcpTransport&>(decode_->transport()).staging();
    ::baton::testing::wait_until([&] { return pool->stats().num_idle == pool->stats().num_pairs; }, 2, 10);
    // A connection the agent closed as the failed read wound down may be
    // found dead (and reopened) by the first read after it, or the second:
    // from the third on, connections are reused.
    for (int round = 0; round < 4; ++round) {
      dst_.fill(0);
      Status st = read_and_wait(*decode_, remote_, local_, false);
      ASSERT_TRUE(st.is_ok()) << st.to_string();
      for (size_t i = 0; i < remote_.size(); ++i) ASSERT_TRUE(dst_.block_equals(local_[i], src_, remote_[i])) << i;
      if (round == 1) connections_after_recovery_ = prefill_->agent_stats().num_connections;
    }
    EXPECT_EQ(prefill_->agent_stats().num_connections, connections_after_recovery_) << "connections not reused";
    EXPECT_EQ(pool->stats().num_idle, pool->stats().num_pairs) << "a staging pair leaked";
  }

  TestRegion src_ = TestRegion::heap(testing::small_shape(kNumBlocks));
  TestRegion dst_ = TestRegion::heap(testing::small_shape(kNumBlocks));
  GateCopier src_copier_{&src_}, dst_copier_{&dst_};
  std::unique_ptr<TransferEngine> prefill_, decode_;
  std::vector<int64_t> remote_, local_;
  uint64_t connections_after_recovery_ = 0;
};

// The serving side fails a chunk in the middle of the third stream while the other
// three streams are stalled mid-read: the read fails at once naming that
// stream, instead of waiting for the stalled ones.
TEST_F(MultiStreamFaultTest, OnePartFailingFailsTheWholeRead) {
  ASSERT_TRUE(read_and_wait(*decode_, remote_, local_, false).is_ok());  // connections pooled
  src_copier_.fail_block = remote_[41];  // the 10th of part 3's 16 blocks: several chunks in
  src_copier_.never_stall.assign(kNumBlocks, 0);
  for (int i = 32; i < 48; ++i) src_copier_.never_stall[remote_[i]] = 1;  // part 3 runs up to the fault
  src_copier_.stall = true;
  Stopwatch sw;
  Status st = read_and_wait(*decode_, remote_, local_, false);
  EXPECT_FALSE(st.is_ok());
  EXPECT_LT(sw.elapsed_ms(), 5000.0) << "the stalled streams were not cancelled";
  EXPECT_NE(st.message().find("tcp stream 3 of 4 (blocks 32..48 of 64)"), std::string::npos) << st.to_string();
  EXPECT_NE(st.message().find("KV peer 127.0.0.1:"), std::string::npos) << st.to_string();
  EXPECT_GE(src_copier_.num_stalled.load(), 1);
  EXPECT_EQ(st.code(), StatusCode::kUnavailable) << st.to_string();  // the peer dropped that stream
  EXPECT_EQ(decode_->stats().num_transfers_failed, 1u);
  ASSERT_NO_FATAL_FAILURE(expect_recovers());
}

TEST_F(MultiStreamFaultTest, CancelStopsEveryStream) {
  src_copier_.stall = true;
  auto h = decode_->read_blocks("prefill-m", remote_, local_, {.request_id = "c"});
  ASSERT_TRUE(h.is_ok());
  ::baton::testing::wait_until([&] { return src_copier_.num_stalled.load() >= 4; }, 5.0, 2);
  EXPECT_EQ(src_copier_.num_stalled.load(), 4) << "all four streams are mid-read";
  Stopwatch sw;
  (*h)->cancel();
  Status st = (*h)->wait(5000);
  EXPECT_EQ(st.code(), StatusCode::kAborted) << st.to_string();
  EXPECT_LT(sw.elapsed_ms(), 2000.0);
  ASSERT_NO_FATAL_FAILURE(expect_recovers());
}

// The serving engine goes away while all four streams are mid-read: the
// read fails (peer closed), never hangs.
TEST_F(MultiStreamFaultTest, PeerGoneMidReadFailsTheRead) {
  src_copier_.stall = true;
  auto h = decode_->read_blocks("prefill-m", remote_, local_);
  ASSERT_TRUE(h.is_ok());
  ::baton::testing::wait_until([&] { return src_copier_.num_stalled.load() >= 4; }, 5.0, 2);
  // The agent shuts its connections down, then waits for its serving
  // threads, which the gate holds until the read has failed.
  std::thread stopper([&] { prefill_.reset(); });
  Stopwatch sw;
  Status st = (*h)->wait(5000);
  src_copier_.stall = false;
  stopper.join();
  EXPECT_EQ(st.code(), StatusCode::kUnavailable) << st.to_string();
  EXPECT_LT(sw.elapsed_ms(), 2000.0);
  EXPECT_NE(st.message().find("tcp stream"), std::string::npos) << st.to_string();
}

TEST_F(MultiStreamFaultTest, DeadlineStopsEveryStream) {
  src_copier_.stall = true;
  auto h = decode_->read_blocks("prefill-m", remote_, local_, {.timeout_ms = 200});
  ASSERT_TRUE(h.is_ok());
  Stopwatch sw;
  Status st = (*h)->wait(5000);
  EXPECT_EQ(st.code(), StatusCode::kDeadlineExceeded) << st.to_string();
  EXPECT_LT(sw.elapsed_ms(), 2000.0);
  ASSERT_NO_FATAL_FAILURE(expect_recovers());
}

}  // namespace
}  // namespace baton
