// A scripted peer that misbehaves mid-transfer: the reader gets a clear
// error, never a hang.
#include <thread>
#include <utility>

#include <gtest/gtest.h>
#include <boost/asio.hpp>

#include "common/clock.h"
#include "kv_transfer/engine_pair.h"
#include "kv_transfer/kv_handshake.h"
#include "kv_transfer/wire.h"
#include "support/wait.h"

namespace baton {
namespace {

using boost::asio::ip::tcp;
using testing::TestRegion;

enum class Misbehaviour { kCloseHalfway, kStallHalfway, kWrongSize, kGarbage };

// Serves descriptors honestly (from `desc`), then answers the first block
// read according to `how`.
class ScriptedPeer {
 public:
  ScriptedPeer(PeerDescriptor desc, Misbehaviour how) : desc_(std::move(desc)), how_(how) {
    acceptor_.open(tcp::v4());
    acceptor_.bind(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
    acceptor_.listen();
    desc_.host = "127.0.0.1";
    desc_.port = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { run(); });
  }
  ~ScriptedPeer() {
    stop_ = true;
    {  // wake the blocking accept()
      boost::asio::io_context io;
      tcp::socket wake(io);
      boost::system::error_code ec;
      wake.connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), desc_.port), ec);
      thread_.join();
    }
    boost::system::error_code ec;
    acceptor_.close(ec);
    for (auto& t : conn_threads_) t.join();
  }
  int port() const { return desc_.port; }

 private:
  void run() {
    while (!stop_) {
      auto io = std::make_unique<boost::asio::io_context>();
      tcp::socket sock(*io);
      boost::system::error_code ec;
      acceptor_.accept(sock, ec);
      if (ec || stop_) return;
      conn_threads_.emplace_back([this, io = std::move(io), sock = std::move(sock)]() mutable {
        serve(std::make_unique<Connection>(std::move(io), std::move(sock), "reader"));
      });
    }
  }

  void serve(std::unique_ptr<Connection> conn_ptr) {
    Connection& conn = *conn_ptr;
    ReadContext ctx{TimePoint::max(), &stop_};
    // As an agent without a secret does: the hello first.
    if (!send_frame(conn, MsgType::kHello, make_hello(nullptr, "", 60000), 0, ctx).is_ok()) return;
    {
      for (;;) {
        auto frame = recv_frame(conn, ctx);
        if (!frame.is_ok()) break;
        if (frame->type == MsgType::kGetDescriptor) {
          if (!send_frame(conn, MsgType::kDescriptor, desc_.to_json(), 0, ctx).is_ok()) break;
          continue;
        }
        const uint64_t n = frame->json["runs"][0][1].get<uint64_t>() * desc_.block_bytes;
        std::vector<uint8_t> bytes(n, 0xAB);
        if (how_ == Misbehaviour::kGarbage) {
          (void)conn.write_all("not a frame header at all", 25, ctx);
        } else if (how_ == Misbehaviour::kWrongSize) {
          (void)send_frame(conn, MsgType::kBlocks, Json::object(), n + 1, ctx);
        } else {
          (void)send_frame(conn, MsgType::kBlocks, Json::object(), n, ctx);
          (void)conn.write_all(bytes.data(), n / 2, ctx);
          if (how_ == Misbehaviour::kStallHalfway) {
            ::baton::testing::wait_until([&] { return stop_.load(); }, 60.0, 5);
          }
        }
        break;  // closes the connection
      }
    }
  }

  PeerDescriptor desc_;
  Misbehaviour how_;
  boost::asio::io_context io_;
  tcp::acceptor acceptor_{io_};
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::vector<std::thread> conn_threads_;
};

Status read_from(const ScriptedPeer& peer, TestRegion& dst, int64_t timeout_ms) {
  auto decode = testing::make_engine("tcp", "decode-s");
  BATON_RETURN_IF_ERROR(decode->register_memory(dst.desc()));
  BATON_ASSIGN_OR_RETURN(auto desc, decode->connect_peer("127.0.0.1", peer.port()));
  BATON_ASSIGN_OR_RETURN(auto h,
                         decode->read_blocks(desc.engine_id, {0, 1, 2, 3}, {4, 5, 6, 7}, {.timeout_ms = timeout_ms}));
  return h->wait(10000);
}

PeerDescriptor honest_descriptor(const TestRegion& region) {
  PeerDescriptor d = PeerDescriptor::from_region(region.desc(), "prefill-s", "tiny");
  d.transport = "tcp";
  return d;
}

TEST(PeerGone, ClosedHalfwayIsUnavailable) {
  TestRegion dst = TestRegion::heap(testing::small_shape(8));
  ScriptedPeer peer(honest_descriptor(dst), Misbehaviour::kCloseHalfway);
  Stopwatch sw;
  Status st = read_from(peer, dst, 5000);
  EXPECT_EQ(st.code(), StatusCode::kUnavailable) << st.to_string();
  EXPECT_NE(st.message().find("closed by peer"), std::string::npos) << st.message();
  EXPECT_LT(sw.elapsed_ms(), 2000.0);
}

TEST(PeerGone, StalledHalfwayTimesOut) {
  TestRegion dst = TestRegion::heap(testing::small_shape(8));
  ScriptedPeer peer(honest_descriptor(dst), Misbehaviour::kStallHalfway);
  Stopwatch sw;
  Status st = read_from(peer, dst, 300);
  EXPECT_EQ(st.code(), StatusCode::kDeadlineExceeded) << st.to_string();
  EXPECT_LT(sw.elapsed_ms(), 2000.0);
}

TEST(PeerGone, WrongSizeIsDataLoss) {
  TestRegion dst = TestRegion::heap(testing::small_shape(8));
  ScriptedPeer peer(honest_descriptor(dst), Misbehaviour::kWrongSize);
  Status st = read_from(peer, dst, 2000);
  EXPECT_EQ(st.code(), StatusCode::kDataLoss) << st.to_string();
}

TEST(PeerGone, GarbageIsDataLoss) {
  TestRegion dst = TestRegion::heap(testing::small_shape(8));
  ScriptedPeer peer(honest_descriptor(dst), Misbehaviour::kGarbage);
  Status st = read_from(peer, dst, 2000);
  EXPECT_EQ(st.code(), StatusCode::kDataLoss) << st.to_string();
  EXPECT_NE(st.message().find("magic"), std::string::npos) << st.message();
}

TEST(KvAgent, BadReadRequestGetsErrorAndConnectionSurvives) {
  TestRegion src = TestRegion::heap(testing::small_shape(8));
  src.fill_random(5);
  auto prefill = testing::make_engine("tcp", "prefill-b");
  ASSERT_NO_FATAL_FAILURE(testing::serve(*prefill, src, nullptr));
  ReadContext ctx{SteadyClock::now() + std::chrono::seconds(5), nullptr};
  auto conn = Connection::connect("127.0.0.1", prefill->agent_port(), ctx);
  ASSERT_TRUE(conn.is_ok());
  ASSERT_TRUE(reader_handshake(**conn, nullptr, ctx).is_ok());
  ASSERT_TRUE(send_frame(**conn, MsgType::kReadBlocks, Json{{"runs", {{6, 5}}}}, 0, ctx).is_ok());
  auto reply = recv_frame(**conn, ctx);
  ASSERT_TRUE(reply.is_ok());
  EXPECT_EQ(reply->type, MsgType::kError);
  Status st = status_from_error_frame(*reply, "agent");
  EXPECT_EQ(st.code(), StatusCode::kOutOfRange);
  EXPECT_NE(st.message().find("not inside the cache's [0, 8)"), std::string::npos) << st.message();
  // Same connection still answers.
  ASSERT_TRUE(send_frame(**conn, MsgType::kGetDescriptor, Json::object(), 0, ctx).is_ok());
  auto desc = recv_frame(**conn, ctx);
  ASSERT_TRUE(desc.is_ok());
  EXPECT_EQ(desc->type, MsgType::kDescriptor);
  EXPECT_EQ(desc->json["engine_id"], "prefill-b");
}

TEST(KvAgent, CountsServedBlocksAndDoneNotifications) {
  TestRegion src = TestRegion::heap(testing::small_shape(16));
  src.fill_random(8);
  TestRegion dst = TestRegion::heap(testing::small_shape(16));
  testing::DoneLog log;
  auto prefill = testing::make_engine("tcp", "prefill-c");
  ASSERT_NO_FATAL_FAILURE(testing::serve(*prefill, src, &log));
  auto decode = testing::make_engine("tcp", "decode-c");
  ASSERT_TRUE(decode->register_memory(dst.desc()).is_ok());
  ASSERT_TRUE(decode->connect_peer("127.0.0.1", prefill->agent_port()).is_ok());
  auto h = decode->read_blocks("prefill-c", {1, 2, 9}, {0, 1, 2});
  ASSERT_TRUE(h.is_ok());
  ASSERT_TRUE((*h)->wait(10000).is_ok());
  ASSERT_TRUE(decode->notify_done("prefill-c", "req-7").is_ok());
  // A done notification without a request id is refused, not reported.
  ReadContext ctx{SteadyClock::now() + std::chrono::seconds(5), nullptr};
  auto conn = Connection::connect("127.0.0.1", prefill->agent_port(), ctx);
  ASSERT_TRUE(conn.is_ok());
  ASSERT_TRUE(reader_handshake(**conn, nullptr, ctx).is_ok());
  ASSERT_TRUE(send_frame(**conn, MsgType::kDone, Json{{"engine_id", "x"}}, 0, ctx).is_ok());
  auto reply = recv_frame(**conn, ctx);
  ASSERT_TRUE(reply.is_ok());
  EXPECT_EQ(reply->type, MsgType::kError);
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log.events[0].second, "req-7");
  EXPECT_EQ(decode->stats().num_bytes_received, 3 * src.desc().block_bytes());
  const KvAgentStats served = prefill->agent_stats();
  EXPECT_EQ(served.num_blocks_served, 3u);
  EXPECT_EQ(served.num_bytes_served, 3 * src.desc().block_bytes());
  EXPECT_EQ(served.num_done, 1u);
}

}  // namespace
}  // namespace baton
