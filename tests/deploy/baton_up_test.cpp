// `baton up` end to end on the CPU: a deployment comes up from a spec,
// serves through its router, restarts an instance the test kills, and leaves
// no process and no shared-memory KV segment behind when stopped; every
// instance drains and logs "server stopped" (none is killed at the grace).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include "common/json.h"
#include "deploy/child_process.h"
#include "deploy/kv_segments.h"
#include "deploy/test_dir.h"
#include "http/http_client.h"
#include "support/wait.h"

namespace baton::deploy {
namespace {

namespace fs = std::filesystem;

// The first of `count` consecutive free ports, below the kernel's ephemeral
// range (32768+, where other tests' client sockets land), starting from a
// pid-derived offset so parallel tests spread out. 0 when none is found.
int free_port_block(int count) {
  for (int i = 0; i < 1500; ++i) {
    int base = 20000 + ((getpid() + i * 7) % 1500) * 8;
    bool all_free = true;
    for (int p = base; p < base + count && all_free; ++p) {
      int fd = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      addr.sin_port = htons(static_cast<uint16_t>(p));
      all_free = fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
      if (fd >= 0) close(fd);
    }
    if (all_free) return base;
  }
  return 0;
}

class BatonUpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("baton-up-test-" + std::to_string(getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    ProcessOptions init;
    init.program = BATON_BINARY;
    init.args = {"init-model", "--preset", "tiny-qwen3", "--out", (dir_ / "model").string(), "--seed", "1"};
    init.log_path = (dir_ / "init.log").string();
    auto child = ChildProcess::spawn(init);
    ASSERT_TRUE(child.is_ok());
    ASSERT_TRUE(child->wait_exit(300.0)) << read_all(dir_ / "init.log");
    ASSERT_EQ(child->exit_code(), 0) << read_all(dir_ / "init.log");
    base_port_ = free_port_block(8);
    ASSERT_GT(base_port_, 0) << "no 8 free consecutive ports below the ephemeral range";
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Starts `baton up` on a spec; returns when its endpoint line is out.
  void up(const std::string& name, const std::string& spec_body) {
    model_name_ = name;
    std::string spec = "name: " + name + "\nmodel: " + (dir_ / "model").string() + "\n" + spec_body +
                       "router: {port: " + std::to_string(base_port_) + "}\n" +
                       "base_port: " + std::to_string(base_port_ + 1) + "\n" +
                       "base_kv_port: " + std::to_string(base_port_ + 5) + "\n" +
                       "engine_args: {num-kv-blocks: 64, max-num-seqs: 8}\n";
    std::ofstream(dir_ / "spec.yaml") << spec;
    ProcessOptions o;
    o.program = BATON_BINARY;
    o.args = {"up", (dir_ / "spec.yaml").string(), "--run-dir", (dir_ / "run").string()};
    o.log_path = (dir_ / "up.log").string();
    auto child = ChildProcess::spawn(o);
    ASSERT_TRUE(child.is_ok());
    up_ = std::move(child).value();
    // Up once its log names the endpoint; a supervisor that exits first fails.
    const bool up = ::baton::testing::wait_until(
        [&] { return read_all(dir_ / "up.log").find("endpoint: ") != std::string::npos || !up_.running(); }, 60.0, 50);
    ASSERT_TRUE(up && up_.running()) << "baton up did not come up: " << read_all(dir_ / "up.log");
  }

  std::map<std::string, pid_t> pids() {
    std::map<std::string, pid_t> out;
    std::string log = read_all(dir_ / "up.log");
    std::regex re(R"((?:started|restarted) ([a-z]+-\d+) \(pid (\d+))");
    for (std::sregex_iterator it(log.begin(), log.end(), re), end; it != end; ++it) {
      out[(*it)[1]] = std::stoi((*it)[2]);
    }
    return out;
  }

  Result<http::Response> complete(int max_tokens) {
    Json body = {{"model", model_name_},
                 {"prompt", std::vector<int>{5, 6, 7, 8}},
                 {"max_tokens", max_tokens},
                 {"temperature", 0},
                 {"ignore_eos", true}};
    return http::fetch("http://127.0.0.1:" + std::to_string(base_port_) + "/v1/completions", "POST", body.dump(), 60.0);
  }

  // complete(), retried until it answers 200 or timeout_s passed (the router's
  // health checks take a dead instance out of rotation meanwhile); the last answer.
  Result<http::Response> complete_within(int max_tokens, double timeout_s) {
    Result<http::Response> r = complete(max_tokens);
    ::baton::testing::wait_until(
        [&] {
          if (r.is_ok() && r->status == 200) return true;
          r = complete(max_tokens);
          return false;
        },
        timeout_s, 100);
    return r;
  }

  void stop_and_check_nothing_left() {
    auto before = pids();
    up_.signal(SIGTERM);
    ::baton::testing::wait_until([&] { return !up_.running(); }, 30, 50);
    EXPECT_FALSE(up_.running()) << "baton up did not exit on SIGTERM";
    EXPECT_EQ(up_.exit_code(), 0) << read_all(dir_ / "up.log");
    for (const auto& [name, pid] : before) {
      EXPECT_FALSE(alive(pid)) << name << " (pid " << pid << ") left behind";
      EXPECT_TRUE(kv_segments_of(pid).empty()) << name << " (pid " << pid << ") left a /dev/shm KV segment";
      // The last run of each instance drained: its log ends with the server's goodbye.
      std::string log = read_all(dir_ / "run" / (name + ".log"));
      while (!log.empty() && log.back() == '\n') log.pop_back();
      EXPECT_NE(log.substr(log.rfind('\n') + 1).find("server stopped"), std::string::npos) << name << ":\n" << log;
      // The model came from init-model: the instance says its weights are random (issue 22, finding 1).
      EXPECT_NE(log.find("holds RANDOM weights"), std::string::npos) << name << ":\n" << log;
    }
    const std::string up_log = read_all(dir_ / "up.log");
    EXPECT_EQ(up_log.find("killing it"), std::string::npos) << up_log;
    EXPECT_NE(up_log.find("stopped in "), std::string::npos) << up_log;
  }

  fs::path dir_;
  int base_port_ = 0;
  std::string model_name_;
  ChildProcess up_;
};

TEST_F(BatonUpTest, AggComesUpServesRestartsAndStops) {
  up("agg-test", "mode: agg\nreplicas: 2\n");
  auto p = pids();
  ASSERT_EQ(p.size(), 2u) << read_all(dir_ / "up.log");
  for (int i = 0; i < 4; ++i) {
    auto r = complete(4);
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(Json::parse(r->body)["usage"]["completion_tokens"], 4);
  }
  // Kill one instance: baton up reports it and starts it again.
  pid_t victim = p["agg-1"];
  ASSERT_EQ(kill(victim, SIGKILL), 0);
  const bool restarted = ::baton::testing::wait_until(
      [&] {
        std::string log = read_all(dir_ / "up.log");
        return log.find("agg-1 exited (signal 9)") != std::string::npos &&
               log.find("agg-1 healthy again") != std::string::npos;
      },
      30.0, 50);
  ASSERT_TRUE(restarted) << read_all(dir_ / "up.log");
  EXPECT_NE(pids()["agg-1"], victim);
  // Requests keep succeeding (the router's health checks skip the dead one meanwhile).
  for (int i = 0; i < 4; ++i) {
    Result<http::Response> r = complete_within(2, 5.0);
    ASSERT_TRUE(r.is_ok());
    EXPECT_EQ(r->status, 200) << r->body;
  }
  stop_and_check_nothing_left();
}

// The prefill maps its KV in /dev/shm; killed, it cannot unlink it: baton up does (issue 22, finding 7).
TEST_F(BatonUpTest, PdOnePrefillOneDecodeComesUpServesAndStops) {
  up("pd-test", "mode: pd\nkv_transport: shm\nprefill: 1\ndecode: 1\n");
  auto p = pids();
  ASSERT_EQ(p.size(), 2u);
  auto r = complete(6);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(Json::parse(r->body)["usage"]["completion_tokens"], 6);
  const pid_t victim = p["prefill-0"];
  ASSERT_EQ(kv_segments_of(victim).size(), 1u) << "the prefill maps its KV in one /dev/shm segment";
  ASSERT_EQ(kill(victim, SIGKILL), 0);
  const bool restarted = ::baton::testing::wait_until(
      [&] { return read_all(dir_ / "up.log").find("prefill-0 healthy again") != std::string::npos; }, 60.0, 50);
  ASSERT_TRUE(restarted) << read_all(dir_ / "up.log");
  EXPECT_TRUE(kv_segments_of(victim).empty()) << "the killed prefill's KV segment is left";
  EXPECT_NE(read_all(dir_ / "up.log").find("removed 1 shared-memory KV segment(s) that prefill-0"), std::string::npos)
      << read_all(dir_ / "up.log");
  stop_and_check_nothing_left();
}

// restart: false: a dead instance is reported once (not on every poll), and
// the router serves on through the one left.
TEST_F(BatonUpTest, WithoutRestartADeadInstanceIsReportedOnce) {
  up("norestart-test", "mode: agg\nreplicas: 2\nrestart: false\n");
  auto p = pids();
  ASSERT_EQ(p.size(), 2u) << read_all(dir_ / "up.log");
  ASSERT_EQ(kill(p["agg-1"], SIGKILL), 0);
  auto times_reported = [&] {
    const std::string log = read_all(dir_ / "up.log");
    int n = 0;
    for (size_t at = log.find("agg-1 exited"); at != std::string::npos; at = log.find("agg-1 exited", at + 1)) ++n;
    return n;
  };
  ASSERT_TRUE(::baton::testing::wait_until([&] { return times_reported() >= 1; }, 30.0, 50))
      << read_all(dir_ / "up.log");
  // The supervisor polls every 200 ms: ten polls later it has said it once.
  EXPECT_FALSE(::baton::testing::wait_until([&] { return times_reported() >= 2; }, 2.0, 50))
      << read_all(dir_ / "up.log");
  EXPECT_EQ(read_all(dir_ / "up.log").find("restarted agg-1"), std::string::npos);
  Result<http::Response> r = complete_within(2, 10.0);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->status, 200) << r->body;
  up_.signal(SIGTERM);
  ::baton::testing::wait_until([&] { return !up_.running(); }, 30, 50);
  EXPECT_FALSE(up_.running());
  EXPECT_EQ(up_.exit_code(), 0) << read_all(dir_ / "up.log");
  EXPECT_FALSE(alive(p["agg-0"]));
}

}  // namespace
}  // namespace baton::deploy
