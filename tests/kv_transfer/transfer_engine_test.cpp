// The transfer engine over each CPU transport, both engines in this process.
#include "kv_transfer/transfer_engine.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "kv_transfer/engine_pair.h"

namespace baton {
namespace {

using testing::DoneLog;
using testing::TestRegion;

class TransportTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    src_ = TestRegion::shm(testing::small_shape(64));  // shm works for every transport
    src_.fill_random(7);
    dst_ = TestRegion::heap(testing::small_shape(48));
    dst_.fill(0xEE);
    prefill_ = testing::make_engine(GetParam(), "prefill-0");
    ASSERT_NO_FATAL_FAILURE(testing::serve(*prefill_, src_, &log_));
    decode_ = testing::make_engine(GetParam(), "decode-0", /*checksum=*/true);
    ASSERT_TRUE(decode_->register_memory(dst_.desc()).is_ok());
    auto peer = decode_->connect_peer("127.0.0.1", prefill_->agent_port());
    ASSERT_TRUE(peer.is_ok()) << peer.status().to_string();
    EXPECT_EQ(peer->engine_id, "prefill-0");
  }

  TestRegion src_, dst_;
  DoneLog log_;
  std::unique_ptr<TransferEngine> prefill_, decode_;
};

TEST_P(TransportTest, MovesNonContiguousBlocksByteExact) {
  // Runs of several lengths, out of order, on both sides.
  const std::vector<int64_t> remote = {5, 6, 7, 40, 2, 3, 63, 20, 21, 22, 23, 0};
  const std::vector<int64_t> local = {1, 2, 3, 9, 30, 31, 47, 10, 11, 12, 13, 0};
  auto h = decode_->read_blocks("prefill-0", remote, local, {.request_id = "req-1"});
  ASSERT_TRUE(h.is_ok()) << h.status().to_string();
  Status st = (*h)->wait(10000);
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  EXPECT_EQ((*h)->poll(), TransferState::kDone);
  EXPECT_EQ((*h)->num_bytes(), remote.size() * src_.desc().block_bytes());
  std::vector<bool> written(48, false);
  for (size_t i = 0; i < remote.size(); ++i) {
    EXPECT_TRUE(dst_.block_equals(local[i], src_, remote[i])) << "block " << remote[i];
    written[local[i]] = true;
  }
  for (int64_t b = 0; b < 48; ++b) {  // nothing else touched
    if (written[b]) continue;
    for (size_t i = 0; i < dst_.desc().block_bytes(); ++i) ASSERT_EQ(dst_.block(b)[i], 0xEE) << b;
  }
  EXPECT_EQ(decode_->stats().num_blocks_received, remote.size());

  ASSERT_TRUE(decode_->notify_done("prefill-0", "req-1").is_ok());
  ASSERT_EQ(log_.size(), 1u);
  EXPECT_EQ(log_.events[0].first, "decode-0");
  EXPECT_EQ(log_.events[0].second, "req-1");
}

TEST_P(TransportTest, ConcurrentTransfers) {
  constexpr int kNum = 12;
  std::vector<std::shared_ptr<TransferHandle>> handles;
  for (int i = 0; i < kNum; ++i) {
    // Transfer i moves remote blocks [5i, 5i+4) (wrapping) into local [4i, 4i+4).
    std::vector<int64_t> remote, local;
    for (int j = 0; j < 4; ++j) {
      remote.push_back((5 * i + j * 3) % 64);
      local.push_back(4 * i + j);
    }
    auto h = decode_->read_blocks("prefill-0", remote, local, {.request_id = std::to_string(i)});
    ASSERT_TRUE(h.is_ok()) << h.status().to_string();
    handles.push_back(*h);
  }
  for (int i = 0; i < kNum; ++i) {
    Status st = handles[i]->wait(10000);
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    for (int j = 0; j < 4; ++j) {
      EXPECT_TRUE(dst_.block_equals(4 * i + j, src_, (5 * i + j * 3) % 64));
    }
  }
  EXPECT_EQ(decode_->stats().num_transfers_ok, static_cast<uint64_t>(kNum));
}

TEST_P(TransportTest, BadBlockIdsRefusedBeforeAnythingMoves) {
  auto h = decode_->read_blocks("prefill-0", {64}, {0});
  ASSERT_FALSE(h.is_ok());
  EXPECT_EQ(h.status().code(), StatusCode::kOutOfRange);
  auto h2 = decode_->read_blocks("prefill-0", {1}, {48});
  EXPECT_EQ(h2.status().code(), StatusCode::kOutOfRange);
  auto h3 = decode_->read_blocks("nobody", {1}, {1});
  EXPECT_EQ(h3.status().code(), StatusCode::kNotFound);
  for (int64_t b = 0; b < 48; ++b) ASSERT_EQ(dst_.block(b)[0], 0xEE);
}

TEST_P(TransportTest, ReconnectReusesPeer) {
  auto again = decode_->connect_peer("127.0.0.1", prefill_->agent_port());
  ASSERT_TRUE(again.is_ok()) << again.status().to_string();
  auto h = decode_->read_blocks("prefill-0", {9}, {9});
  ASSERT_TRUE(h.is_ok());
  ASSERT_TRUE((*h)->wait(10000).is_ok());
  EXPECT_TRUE(dst_.block_equals(9, src_, 9));
}

// A request names its peer: once connected, finding it again opens no control
// connection and asks the agent nothing; another engine id at that address
// (a restarted prefill) goes back to the agent, whose answer the caller checks.
TEST_P(TransportTest, PeerForAConnectedEngineIsFoundWithoutARoundTrip) {
  const uint64_t connections = prefill_->agent_stats().num_connections;
  for (int i = 0; i < 20; ++i) {
    auto peer = decode_->peer_for("prefill-0", "127.0.0.1", prefill_->agent_port());
    ASSERT_TRUE(peer.is_ok()) << peer.status().to_string();
    EXPECT_EQ(peer->engine_id, "prefill-0");
  }
  EXPECT_EQ(prefill_->agent_stats().num_connections, connections);
  auto other = decode_->peer_for("prefill-restarted", "127.0.0.1", prefill_->agent_port());
  ASSERT_TRUE(other.is_ok()) << other.status().to_string();
  EXPECT_EQ(other->engine_id, "prefill-0");  // what the agent there is: the caller refuses the mismatch
  EXPECT_EQ(prefill_->agent_stats().num_connections, connections + 1);
  EXPECT_FALSE(decode_->peer_for("prefill-0", "127.0.0.1", 1).is_ok());  // not where it was connected: asks port 1
}

INSTANTIATE_TEST_SUITE_P(Cpu, TransportTest, ::testing::Values("local", "shm", "tcp", "ucx_tcp", "ucx_sm"),
                         [](const auto& info) { return info.param; });

TEST(TransferEngine, IncompatiblePeerRefusedNamingField) {
  TestRegion src = TestRegion::heap(testing::small_shape(8));
  KvRegionDesc other = testing::small_shape(8);
  other.layout.head_dim = 16;
  TestRegion dst = TestRegion::heap(other);
  auto prefill = testing::make_engine("tcp", "prefill-x");
  ASSERT_NO_FATAL_FAILURE(testing::serve(*prefill, src, nullptr));
  auto decode = testing::make_engine("tcp", "decode-x");
  ASSERT_TRUE(decode->register_memory(dst.desc()).is_ok());
  auto peer = decode->connect_peer("127.0.0.1", prefill->agent_port());
  ASSERT_FALSE(peer.is_ok());
  EXPECT_EQ(peer.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(peer.status().message().find("head_dim"), std::string::npos) << peer.status().message();
  EXPECT_NE(peer.status().message().find("local 16, remote 8"), std::string::npos) << peer.status().message();
}

TEST(TransferEngine, TransportMismatchRefused) {
  TestRegion src = TestRegion::shm(testing::small_shape(8));
  TestRegion dst = TestRegion::heap(testing::small_shape(8));
  auto prefill = testing::make_engine("shm", "prefill-y");
  ASSERT_NO_FATAL_FAILURE(testing::serve(*prefill, src, nullptr));
  auto decode = testing::make_engine("tcp", "decode-y");
  ASSERT_TRUE(decode->register_memory(dst.desc()).is_ok());
  auto peer = decode->connect_peer("127.0.0.1", prefill->agent_port());
  ASSERT_FALSE(peer.is_ok());
  EXPECT_NE(peer.status().message().find("transport"), std::string::npos);
}

TEST(TransferEngine, ShmNeedsSharedRegion) {
  TestRegion src = TestRegion::heap(testing::small_shape(8));  // not in shm
  TestRegion dst = TestRegion::heap(testing::small_shape(8));
  auto prefill = testing::make_engine("shm", "prefill-z");
  ASSERT_NO_FATAL_FAILURE(testing::serve(*prefill, src, nullptr));
  auto decode = testing::make_engine("shm", "decode-z");
  ASSERT_TRUE(decode->register_memory(dst.desc()).is_ok());
  auto peer = decode->connect_peer("127.0.0.1", prefill->agent_port());
  ASSERT_FALSE(peer.is_ok());
  EXPECT_NE(peer.status().message().find("shared memory"), std::string::npos) << peer.status().message();
}

TEST(TransferEngine, NoAgentListening) {
  TestRegion dst = TestRegion::heap(testing::small_shape(8));
  auto decode = testing::make_engine("tcp", "decode-w");
  ASSERT_TRUE(decode->register_memory(dst.desc()).is_ok());
  // Port 1 on loopback: nothing listens there.
  auto peer = decode->connect_peer("127.0.0.1", 1);
  ASSERT_FALSE(peer.is_ok());
  EXPECT_EQ(peer.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(peer.status().message().find("127.0.0.1:1"), std::string::npos);
}

// A transport that, like cuda_ipc (a process maps a peer's IPC handle once),
// refuses a second link to a peer it already holds; connecting is slow.
class MapOnceTransport : public Transport {
 public:
  explicit MapOnceTransport(std::unique_ptr<Transport> inner) : inner_(std::move(inner)) {}
  std::string name() const override { return inner_->name(); }
  TransportCaps caps() const override { return inner_->caps(); }
  Status register_local(const KvRegionDesc& region, PeerDescriptor& desc) override {
    return inner_->register_local(region, desc);
  }
  Result<std::unique_ptr<PeerLink>> connect(const PeerDescriptor& remote) override {
    ++num_connects;
    if (mapped.exchange(true)) return internal_error("peer '{}': resource already mapped", remote.engine_id);
    // A slow connect (simulated mapping work) widens the window in which
    // concurrent callers would race to connect twice: the race under test.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return inner_->connect(remote);
  }
  std::atomic<int> num_connects{0};
  std::atomic<bool> mapped{false};

 private:
  std::unique_ptr<Transport> inner_;
};

TEST(TransferEngine, RequestsMeetingANewPeerTogetherShareOneLink) {
  TestRegion src = TestRegion::heap(testing::small_shape(8));
  src.fill_random(3);
  TestRegion dst = TestRegion::heap(testing::small_shape(8));
  auto prefill = testing::make_engine("tcp", "prefill-v");
  ASSERT_NO_FATAL_FAILURE(testing::serve(*prefill, src, nullptr));
  auto inner = make_transport("tcp");
  ASSERT_TRUE(inner.is_ok());
  auto transport = std::make_unique<MapOnceTransport>(std::move(inner).value());
  MapOnceTransport* t = transport.get();
  auto decode = testing::make_engine(std::move(transport), "decode-v");
  ASSERT_TRUE(decode->register_memory(dst.desc()).is_ok());
  constexpr int kThreads = 6;
  std::vector<Status> results(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] { results[i] = decode->connect_peer("127.0.0.1", prefill->agent_port()).status(); });
  }
  for (auto& th : threads) th.join();
  for (const auto& st : results) EXPECT_TRUE(st.is_ok()) << st.to_string();
  EXPECT_EQ(t->num_connects.load(), 1);
  auto h = decode->read_blocks("prefill-v", {5}, {2});
  ASSERT_TRUE(h.is_ok()) << h.status().to_string();
  ASSERT_TRUE((*h)->wait(10000).is_ok());
  EXPECT_TRUE(dst.block_equals(2, src, 5));
}

TEST(TransferEngine, UnknownTransportNamed) {
  auto t = make_transport("carrier-pigeon");
  ASSERT_FALSE(t.is_ok());
  EXPECT_NE(t.status().message().find("carrier-pigeon"), std::string::npos);
  EXPECT_NE(t.status().message().find("tcp"), std::string::npos);
}

}  // namespace
}  // namespace baton
