// Real processes for the PD end-to-end tests: `baton serve` (agg, prefill,
// decode) and `baton proxy`, each on a free port (--port 0; the port is read
// from its "listening on http://" line), plus small HTTP helpers: greedy
// completions (streamed or not) whose text, for models without a tokenizer,
// spells the token ids ("token_id:N" per token), and /metrics readers.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/json.h"
#include "http/http_client.h"

namespace baton::pd_test {

// Emptied first: an earlier test process with the same pid left its logs
// there, and a stale "listening on" line would name a dead server's port.
inline std::string tmp_dir() {
  static const std::string dir = [] {
    std::string d = "/tmp/baton_pd_test_" + std::to_string(getpid());
    std::filesystem::remove_all(d);
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

inline std::string fixture_model(const std::string& name) {
  return std::string(BATON_TEST_DATA) + "/fixtures/models/" + name;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// One `baton <args>` child; stdout and stderr go to a log file.
class Proc {
 public:
  static std::unique_ptr<Proc> spawn(const std::vector<std::string>& args) {
    static int counter = 0;
    auto p = std::unique_ptr<Proc>(new Proc());
    p->log_path_ = tmp_dir() + "/proc_" + std::to_string(++counter) + "_" + args[0] + ".log";
    std::vector<std::string> argv_s = {BATON_BINARY};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    // Created (empty) before the fork, so that wait_listening never reads an
    // older file of the same name.
    int log = open(p->log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    pid_t pid = fork();
    if (pid == 0) {
      if (log >= 0) {
        dup2(log, 1);
        dup2(log, 2);
      }
      std::vector<char*> argv;
      for (auto& s : argv_s) argv.push_back(s.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    if (log >= 0) close(log);
    p->pid_ = pid;
    return p;
  }

  // SIGTERM first, so that a prefill removes its shared-memory KV mirror.
  ~Proc() { terminate(10.0); }

  // Waits for the "listening on http://HOST:PORT" line; false if the process
  // died or timed out.
  bool wait_listening(double timeout_s = 90.0) {
    static const std::regex re(R"(listening on http://[0-9.]+:(\d+))");
    Stopwatch sw;
    while (sw.elapsed_s() < timeout_s) {
      std::string log = read_file(log_path_);
      std::smatch m;
      if (std::regex_search(log, m, re)) {
        port_ = std::stoi(m[1]);
        return true;
      }
      if (!running()) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  bool running() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    return true;
  }

  void kill_now() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }

  void signal(int sig) {
    if (pid_ > 0) ::kill(pid_, sig);
  }

  // SIGTERM and wait; the exit code, or -1 (killed after timeout_s).
  int terminate(double timeout_s = 30.0) {
    if (pid_ <= 0) return -1;
    kill(pid_, SIGTERM);
    Stopwatch sw;
    while (sw.elapsed_s() < timeout_s) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    kill_now();
    return -1;
  }

  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  // The whole log (log() keeps only its tail).
  std::string full_log() const { return read_file(log_path_); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string log() const {
    std::string s = read_file(log_path_);
    return s.size() > 3000 ? s.substr(s.size() - 3000) : s;
  }

 private:
  Proc() = default;
  pid_t pid_ = -1;
  int port_ = 0;
  std::string log_path_;
};

// Spawns all, then waits for all (they load in parallel).
inline std::vector<std::unique_ptr<Proc>> spawn_all(const std::vector<std::vector<std::string>>& arg_lists,
                                                   std::string* error) {
  std::vector<std::unique_ptr<Proc>> procs;
  for (const auto& args : arg_lists) procs.push_back(Proc::spawn(args));
  for (auto& p : procs) {
    if (!p->wait_listening()) {
      *error = "process did not come up: " + p->log();
      return {};
    }
  }
  return procs;
}

inline std::vector<std::string> serve_args(const std::string& model, const std::string& role,
                                           std::vector<std::string> extra = {}, int num_kv_blocks = 64) {
  std::vector<std::string> a = {"serve", "--model", model, "--served-model-name", "m", "--port", "0",
                                "--num-kv-blocks", std::to_string(num_kv_blocks), "--num-threads", "1",
                                "--role", role};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

inline std::vector<std::string> proxy_args(const Proc& prefill, const Proc& decode) {
  return {"proxy", "--port", "0", "--mode", "pd", "--prefill", prefill.url(), "--decode", decode.url(),
          "--health-interval-s", "0.2"};
}

struct Completion {
  int http_status = 0;
  std::string text;          // concatenated choice text
  std::vector<std::string> tokens;  // logprobs.tokens: "token_id:N" without a tokenizer
  std::string error;         // error message (body or SSE event), "" if none
  std::string finish_reason;
  Json kv_transfer_params;   // from the final response / chunk
  std::string raw;
};

inline Json completion_body(const std::vector<int>& prompt, int max_tokens, bool stream) {
  return Json{{"model", "m"}, {"prompt", prompt}, {"max_tokens", max_tokens},
              {"temperature", 0}, {"ignore_eos", true}, {"stream", stream}, {"logprobs", 0}};
}

inline Completion post_completion(const std::string& base_url, const Json& body, double timeout_s = 60.0) {
  Completion c;
  auto r = http::fetch(base_url + "/v1/completions", "POST", body.dump(), timeout_s);
  if (!r.is_ok()) {
    c.error = "transport: " + r.status().to_string();
    return c;
  }
  c.http_status = r->status;
  c.raw = r->body;
  const bool stream = body.value("stream", false);
  auto take = [&](const Json& j) {
    if (j.contains("error")) {
      c.error = j["error"].is_object() ? j["error"].value("message", j["error"].dump()) : j["error"].dump();
      return;
    }
    if (j.contains("choices") && !j["choices"].empty()) {
      const Json& ch = j["choices"][0];
      if (ch.contains("text") && ch["text"].is_string()) c.text += ch["text"].get<std::string>();
      if (ch.contains("finish_reason") && ch["finish_reason"].is_string()) c.finish_reason = ch["finish_reason"];
      if (ch.contains("logprobs") && ch["logprobs"].is_object() && ch["logprobs"].contains("tokens")) {
        for (const Json& t : ch["logprobs"]["tokens"]) c.tokens.push_back(t.get<std::string>());
      }
    }
    if (j.contains("kv_transfer_params")) c.kv_transfer_params = j["kv_transfer_params"];
  };
  if (!stream || r->status != 200) {
    Json j = Json::parse(r->body, nullptr, false);
    if (j.is_discarded()) {
      c.error = "unparsable body: " + r->body;
    } else {
      take(j);
    }
    return c;
  }
  std::istringstream lines(r->body);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("data: ", 0) != 0) continue;
    std::string data = line.substr(6);
    if (data == "[DONE]") continue;
    Json j = Json::parse(data, nullptr, false);
    if (!j.is_discarded()) take(j);
  }
  return c;
}

// A metric's value (the first series whose name matches exactly); nullopt
// when absent or /metrics does not answer.
inline std::optional<double> metric(const std::string& base_url, const std::string& name) {
  auto r = http::fetch(base_url + "/metrics", "GET", {}, 10.0);
  if (!r.is_ok() || r->status != 200) return std::nullopt;
  std::istringstream lines(r->body);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind(name, 0) != 0) continue;
    if (line.size() <= name.size() || (line[name.size()] != '{' && line[name.size()] != ' ')) continue;
    return std::stod(line.substr(line.rfind(' ') + 1));
  }
  return std::nullopt;
}

// Sends a request on a raw connection and returns the socket (the caller
// closes it to disconnect), or -1.
inline int open_request(int port, const Json& body) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  const std::string b = body.dump();
  const std::string req = "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                          "Content-Length: " + std::to_string(b.size()) + "\r\n\r\n" + b;
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    ::close(fd);
    return -1;
  }
  return fd;
}

inline bool wait_until(const std::function<bool()>& pred, double timeout_s) {
  Stopwatch sw;
  while (sw.elapsed_s() < timeout_s) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

// True once the instance's block pool is entirely free again.
inline bool pool_fully_free(const Proc& p, double timeout_s = 5.0) {
  return wait_until(
      [&] {
        auto free = metric(p.url(), "baton:num_kv_blocks_free");
        auto total = metric(p.url(), "baton:num_kv_blocks_total");
        return free && total && *total > 0 && *free == *total;
      },
      timeout_s);
}

inline std::vector<int> prompt_of(int n, int start = 1) {
  std::vector<int> p;
  for (int i = 0; i < n; ++i) p.push_back((start + i * 7) % 500 + 3);
  return p;
}

}  // namespace baton::pd_test
