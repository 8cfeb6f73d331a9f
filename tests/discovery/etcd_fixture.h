// Starts a real etcd (Debian's etcd-server) on loopback for a test, in a
// fresh data folder, and stops it after (its log, /tmp/baton-etcd-*.log, is
// kept only when the test failed).
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "http/http_client.h"

namespace baton::testing {

class EtcdProcess {
 public:
  EtcdProcess() {
    static int counter = 0;
    int base = 24000 + (getpid() % 1000) * 4 + (counter++ % 2) * 2;
    client_port_ = base;
    peer_port_ = base + 1;
    dir_ = std::filesystem::temp_directory_path() / ("baton-etcd-" + std::to_string(getpid()) + "-" + std::to_string(base));
    std::filesystem::remove_all(dir_);
    std::string client = "http://127.0.0.1:" + std::to_string(client_port_);
    std::string peer = "http://127.0.0.1:" + std::to_string(peer_port_);
    pid_ = fork();
    if (pid_ == 0) {
      std::string log = dir_.string() + ".log";
      FILE* f = freopen(log.c_str(), "w", stderr);
      (void)f;
      execl("/usr/bin/etcd", "etcd", "--data-dir", dir_.c_str(), "--listen-client-urls", client.c_str(),
            "--advertise-client-urls", client.c_str(), "--listen-peer-urls", peer.c_str(),
            "--initial-advertise-peer-urls", peer.c_str(), "--initial-cluster",
            ("default=" + peer).c_str(), nullptr);
      _exit(127);
    }
    for (int i = 0; i < 200; ++i) {
      auto r = http::fetch(client + "/version", "GET", {}, 1.0);
      if (r.is_ok() && r->status == 200) {
        ready_ = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  ~EtcdProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    std::filesystem::remove_all(dir_);
    // etcd's log stays only where a test failed (it may say why).
    std::error_code ec;
    if (!::testing::Test::HasFailure()) std::filesystem::remove(dir_.string() + ".log", ec);
  }
  bool ready() const { return ready_; }
  std::string endpoint() const { return "etcd://127.0.0.1:" + std::to_string(client_port_); }

 private:
  pid_t pid_ = -1;
  int client_port_ = 0;
  int peer_port_ = 0;
  bool ready_ = false;
  std::filesystem::path dir_;
};

}  // namespace baton::testing
