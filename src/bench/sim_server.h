// A deterministic OpenAI-compatible completions server for tests and for the
// client benchmark: no model, only timing. It serves at most `num_slots`
// requests at once (more wait in a FIFO); a served request emits its first
// token `first_token_delay_s` after it got a slot, then one token every
// `per_token_delay_s`, max_tokens tokens in all, streamed as SSE chunks with
// a final usage chunk and [DONE]. Its service time is therefore
//   T = first_token_delay_s + (max_tokens - 1) * per_token_delay_s
// and its capacity is num_slots / T requests per second: a known answer for
// the rate search. Endpoints: POST /v1/completions, GET /v1/models, GET /health,
// and GET /metrics with baton:prefix_cache_hits_total: a whole-prompt cache,
// where a prompt sent before counts all its tokens as hits (no speed-up; it
// lets tests see a bench resend its prompts).
#pragma once

#include <atomic>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>

#include "common/status.h"

namespace baton {
class HttpServer;
class HttpExchange;
}  // namespace baton

namespace baton::bench {

struct SimServerOptions {
  std::string host = "127.0.0.1";
  int port = 0;  // 0: pick a free port
  int num_io_threads = 1;
  size_t num_slots = 0;  // 0: unlimited
  double first_token_delay_s = 0;
  double per_token_delay_s = 0;
  size_t fail_every_n = 0;  // every n-th request gets HTTP 503 (0: never)
  std::string model = "sim";
};

class SimServer {
 public:
  explicit SimServer(SimServerOptions options);
  ~SimServer();
  SimServer(const SimServer&) = delete;
  SimServer& operator=(const SimServer&) = delete;

  Status start();
  void stop();
  int port() const;
  std::string url() const;
  double capacity_rps(int64_t max_tokens) const;

  size_t num_requests() const { return num_requests_.load(); }
  size_t max_active_seen() const { return max_active_; }
  int64_t prefix_cache_hits() const { return prefix_cache_hits_.load(); }

  struct Job;

 private:
  void on_completion(std::string body, std::shared_ptr<HttpExchange> ex);
  void begin(std::shared_ptr<Job> job);
  void tick(std::shared_ptr<Job> job);
  void release_slot();

  SimServerOptions options_;
  std::unique_ptr<HttpServer> http_;
  std::atomic<size_t> num_requests_{0};
  std::mutex mu_;
  size_t active_ = 0;                          // under mu_
  size_t max_active_ = 0;                      // under mu_
  std::deque<std::shared_ptr<Job>> queue_;     // under mu_
  std::unordered_set<size_t> prompts_seen_;    // hashes of the prompts served, under mu_
  std::atomic<int64_t> prefix_cache_hits_{0};  // prompt tokens of prompts seen before
};

}  // namespace baton::bench
