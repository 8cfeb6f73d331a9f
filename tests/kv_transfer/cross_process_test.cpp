// shm, tcp and ucx between two processes: the serving side is a forked child
// (deploy::ChildProcess, the one child-process helper).
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>

#include <gtest/gtest.h>

#include "common/clock.h"
#include "deploy/child_process.h"
#include "deploy/kv_segments.h"
#include "kv_transfer/engine_pair.h"
#include "support/wait.h"

namespace baton {
namespace {

using testing::TestRegion;

// True when every thread of `pid` is in the stopped state ('T' in /proc).
bool all_threads_stopped(pid_t pid) {
  std::error_code ec;
  const std::filesystem::path tasks = "/proc/" + std::to_string(pid) + "/task";
  int num_threads = 0;
  for (std::filesystem::directory_iterator it(tasks, ec), end; !ec && it != end; it.increment(ec)) {
    std::ifstream stat(it->path() / "stat");
    std::string line;
    std::getline(stat, line);
    const size_t comm_end = line.rfind(')');  // the state follows the command name, which may hold spaces
    if (comm_end == std::string::npos || comm_end + 2 >= line.size() || line[comm_end + 2] != 'T') return false;
    ++num_threads;
  }
  return !ec && num_threads > 0;
}

// A forked child that runs `serve()`, reports the port it returns, then
// stays up until the parent closes the control pipe (or signals it).
class ServingChild {
 public:
  // The child's shm segment outlives it (it exits without destructors, or
  // is killed): removed once the child is reaped, as the Supervisor does.
  ~ServingChild() {
    child_.kill_now();
    if (child_.pid() > 0) deploy::remove_kv_segments_of(child_.pid());
  }

  // The port the child reported, or -1.
  int start(const std::function<int()>& serve) {
    int port_pipe[2];
    int stop_pipe[2];
    if (::pipe(port_pipe) != 0 || ::pipe(stop_pipe) != 0) return -1;
    auto child = deploy::ChildProcess::fork_call([&] {
      ::close(port_pipe[0]);
      ::close(stop_pipe[1]);
      const int port = serve();
      [[maybe_unused]] ssize_t w = ::write(port_pipe[1], &port, sizeof(port));
      char c;
      while (::read(stop_pipe[0], &c, 1) > 0) {
      }
      return 0;
    });
    ::close(port_pipe[1]);
    ::close(stop_pipe[0]);
    stop_fd_ = stop_pipe[1];
    int port = -1;
    if (child.is_ok()) {
      child_ = std::move(child).value();
      if (::read(port_pipe[0], &port, sizeof(port)) != sizeof(port)) port = -1;
    }
    ::close(port_pipe[0]);
    return port;
  }
  void kill_now(int sig = SIGKILL) { child_.signal(sig); }
  // SIGSTOP, and true once every thread of the child is stopped: kill()
  // returns before a busy machine has stopped them, and a thread still
  // running (the agent, UCX's progress) could yet answer a read.
  bool freeze() {
    child_.signal(SIGSTOP);
    return ::baton::testing::wait_until([&] { return all_threads_stopped(child_.pid()); }, 5.0, 1);
  }
  // Closes the control pipe and reaps the child; returns its exit code.
  int stop() {
    if (stop_fd_ >= 0) ::close(stop_fd_);
    stop_fd_ = -1;
    if (!child_.wait_exit(30.0)) child_.kill_now();
    return child_.exit_code();
  }

 private:
  deploy::ChildProcess child_;
  int stop_fd_ = -1;
};

constexpr uint64_t kSeed = 1234;
constexpr int64_t kNumBlocks = 256;  // 1 KiB blocks

// Child: a prefill engine over `transport` serving random blocks (kSeed).
int serve_in_child(const std::string& transport) {
  static TestRegion region;  // lives until the child exits
  region = TestRegion::shm(testing::small_shape(kNumBlocks));
  region.fill_random(kSeed);
  static std::unique_ptr<TransferEngine> engine;
  auto t = testing::make_test_transport(transport);
  if (!t.is_ok()) return -1;
  TransferEngineOptions opts;
  opts.engine_id = "prefill-child";
  opts.model = "tiny";
  auto e = TransferEngine::create(std::move(t).value(), opts);
  if (!e.is_ok()) return -1;
  engine = std::move(e).value();
  if (!engine->register_memory(region.desc()).is_ok()) return -1;
  if (!engine->start_agent(nullptr).is_ok()) return -1;
  return engine->agent_port();
}

class CrossProcessTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CrossProcessTest, MovesBlocksBetweenProcesses) {
  ServingChild child;
  const int port = child.start([&] { return serve_in_child(GetParam()); });
  ASSERT_GT(port, 0);
  TestRegion expected = TestRegion::heap(testing::small_shape(kNumBlocks));
  expected.fill_random(kSeed);
  TestRegion dst = TestRegion::heap(testing::small_shape(128));
  auto decode = testing::make_engine(GetParam(), "decode-parent", /*checksum=*/true);
  ASSERT_TRUE(decode->register_memory(dst.desc()).is_ok());
  auto peer = decode->connect_peer("127.0.0.1", port);
  ASSERT_TRUE(peer.is_ok()) << peer.status().to_string();

  // Two concurrent requests, each a scattered list.
  std::vector<int64_t> remote_a, local_a, remote_b, local_b;
  for (int i = 0; i < 60; ++i) {
    remote_a.push_back((i * 7) % kNumBlocks);
    local_a.push_back(i);
    remote_b.push_back(255 - i / 2 * 2 - (i % 2));
    local_b.push_back(127 - i);
  }
  auto ha = decode->read_blocks(peer->engine_id, remote_a, local_a, {.request_id = "a"});
  auto hb = decode->read_blocks(peer->engine_id, remote_b, local_b, {.request_id = "b"});
  ASSERT_TRUE(ha.is_ok() && hb.is_ok());
  ASSERT_TRUE((*ha)->wait(10000).is_ok()) << (*ha)->status().to_string();
  ASSERT_TRUE((*hb)->wait(10000).is_ok()) << (*hb)->status().to_string();
  for (size_t i = 0; i < remote_a.size(); ++i) {
    ASSERT_TRUE(dst.block_equals(local_a[i], expected, remote_a[i])) << i;
    ASSERT_TRUE(dst.block_equals(local_b[i], expected, remote_b[i])) << i;
  }
  EXPECT_TRUE(decode->notify_done(peer->engine_id, "a").is_ok());
  EXPECT_EQ(child.stop(), 0);
}

TEST_P(CrossProcessTest, PeerKilledGivesClearError) {
  ServingChild child;
  const int port = child.start([&] { return serve_in_child(GetParam()); });
  ASSERT_GT(port, 0);
  TestRegion dst = TestRegion::heap(testing::small_shape(16));
  auto decode = testing::make_engine(GetParam(), "decode-parent");
  ASSERT_TRUE(decode->register_memory(dst.desc()).is_ok());
  auto peer = decode->connect_peer("127.0.0.1", port);
  ASSERT_TRUE(peer.is_ok()) << peer.status().to_string();
  child.kill_now(SIGKILL);
  child.stop();  // reaped: the pid is gone
  Stopwatch sw;
  auto h = decode->read_blocks(peer->engine_id, {1, 2}, {1, 2}, {.timeout_ms = 3000});
  ASSERT_TRUE(h.is_ok());
  Status st = (*h)->wait(5000);
  EXPECT_EQ(st.code(), StatusCode::kUnavailable) << st.to_string();
  EXPECT_LT(sw.elapsed_ms(), 3000.0);
  Status done = decode->notify_done(peer->engine_id, "x");
  EXPECT_EQ(done.code(), StatusCode::kUnavailable) << done.to_string();
}

// A peer that stops answering (SIGSTOP): a read ends at its deadline, and
// one cancelled ends soon after, over the transports whose serving side is
// a process that must answer (tcp's agent, ucx's server).
class FrozenPeerTest : public ::testing::TestWithParam<std::string> {};

TEST_P(FrozenPeerTest, ReadsEndAtTheirDeadlineOrWhenCancelled) {
  ServingChild child;
  const int port = child.start([&] { return serve_in_child(GetParam()); });
  ASSERT_GT(port, 0);
  TestRegion dst = TestRegion::heap(testing::small_shape(16));
  auto decode = testing::make_engine(GetParam(), "decode-parent");
  ASSERT_TRUE(decode->register_memory(dst.desc()).is_ok());
  auto peer = decode->connect_peer("127.0.0.1", port);
  ASSERT_TRUE(peer.is_ok()) << peer.status().to_string();
  ASSERT_TRUE(child.freeze());
  Stopwatch sw;
  auto h = decode->read_blocks(peer->engine_id, {1, 2}, {1, 2}, {.timeout_ms = 300});
  ASSERT_TRUE(h.is_ok());
  Status st = (*h)->wait(5000);
  EXPECT_EQ(st.code(), StatusCode::kDeadlineExceeded) << st.to_string();
  EXPECT_LT(sw.elapsed_ms(), 2000.0);
  auto cancelled = decode->read_blocks(peer->engine_id, {3}, {3}, {.timeout_ms = 60000});
  ASSERT_TRUE(cancelled.is_ok());
  // Still running after a while (it waits on the frozen peer), then cancelled.
  EXPECT_EQ((*cancelled)->wait(200).code(), StatusCode::kDeadlineExceeded);
  Stopwatch sw2;
  (*cancelled)->cancel();
  st = (*cancelled)->wait(5000);
  EXPECT_EQ(st.code(), StatusCode::kAborted) << st.to_string();
  EXPECT_LT(sw2.elapsed_ms(), 2000.0);
  child.kill_now(SIGKILL);
}

INSTANTIATE_TEST_SUITE_P(Cpu, FrozenPeerTest, ::testing::Values("tcp", "ucx_tcp", "ucx_sm"),
                         [](const auto& info) { return info.param; });

TEST(CrossProcess, LocalTransportRefusesAnotherProcess) {
  ServingChild child;
  const int port = child.start([&] { return serve_in_child("local"); });
  ASSERT_GT(port, 0);
  TestRegion dst = TestRegion::heap(testing::small_shape(16));
  auto decode = testing::make_engine("local", "decode-parent");
  ASSERT_TRUE(decode->register_memory(dst.desc()).is_ok());
  auto peer = decode->connect_peer("127.0.0.1", port);
  ASSERT_FALSE(peer.is_ok());
  EXPECT_EQ(peer.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(peer.status().message().find("process"), std::string::npos) << peer.status().message();
}

TEST(CrossProcess, HugeTimeoutsDoNotOverflow) {
  ServingChild child;
  const int port = child.start([&] { return serve_in_child("tcp"); });
  ASSERT_GT(port, 0);
  TestRegion expected = TestRegion::heap(testing::small_shape(kNumBlocks));
  expected.fill_random(kSeed);
  TestRegion dst = TestRegion::heap(testing::small_shape(16));
  auto decode = testing::make_engine("tcp", "decode-parent");
  ASSERT_TRUE(decode->register_memory(dst.desc()).is_ok());
  auto peer = decode->connect_peer("127.0.0.1", port);
  ASSERT_TRUE(peer.is_ok()) << peer.status().to_string();
  auto h = decode->read_blocks(peer->engine_id, {200}, {3}, {.timeout_ms = std::numeric_limits<int64_t>::max()});
  ASSERT_TRUE(h.is_ok());
  ASSERT_TRUE((*h)->wait(std::numeric_limits<int64_t>::max()).is_ok());
  EXPECT_TRUE(dst.block_equals(3, expected, 200));
}

INSTANTIATE_TEST_SUITE_P(Cpu, CrossProcessTest, ::testing::Values("shm", "tcp", "ucx_tcp", "ucx_sm"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace baton
