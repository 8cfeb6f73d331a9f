// Test doubles for the server: an EngineApi with deterministic tokens and a
// configurable delay per token (its own engine thread, KV-block accounting,
// waiting queue), and a byte-level PromptCodec.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

#include "common/clock.h"
#include "engine/async_engine_api.h"
#include "server/prompt_codec.h"

namespace baton::testing {

// Token i of a request whose prompt has L tokens is 'a' + (L + i) % 26; its text is that letter.
inline int32_t fake_token(size_t prompt_len, int i) { return 'a' + static_cast<int32_t>((prompt_len + i) % 26); }
inline std::string fake_text(size_t prompt_len, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += static_cast<char>(fake_token(prompt_len, i));
  return s;
}

class FakeEngine : public EngineApi {
 public:
  struct Options {
    double token_delay_s = 0.0005;  // one step per this
    int max_model_len = 512;
    int num_kv_blocks = 100000;
    int block_size = 16;
    int max_running = 1 << 30;
    int max_waiting = 1 << 30;
    // When set, every request writes these bytes (one token each) and stops.
    std::string scripted_output;
  };

  explicit FakeEngine(Options options) : options_(options) {
    thread_ = std::thread([this] { loop(); });
  }
  FakeEngine() : FakeEngine(Options{}) {}
  ~FakeEngine() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  Status submit(GenerationRequest request, OutputCallback on_output) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (request.prompt_ids.size() + request.max_tokens > static_cast<size_t>(options_.max_model_len)) {
      return invalid_argument("prompt + max_tokens beyond the context ({})", options_.max_model_len);
    }
    if (static_cast<int>(waiting_.size()) >= options_.max_waiting) return resource_exhausted("waiting queue full");
    if (live_.count(request.request_id)) return invalid_argument("duplicate request id {}", request.request_id);
    live_.insert(request.request_id);
    Req r;
    r.request = std::move(request);
    r.cb = std::move(on_output);
    r.arrival_s = monotonic_s();
    waiting_.push_back(std::move(r));
    ++num_submitted_;
    cv_.notify_all();
    return Status::ok();
  }

  void abort(const std::string& request_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (live_.count(request_id)) aborts_.insert(request_id);
    ++num_abort_calls_;
  }

  EngineStats stats() const override {
    std::lock_guard<std::mutex> lock(mu_);
    EngineStats s;
    s.num_running = static_cast<int>(running_.size());
    s.num_waiting = static_cast<int>(waiting_.size());
    s.num_kv_blocks_total = options_.num_kv_blocks;
    s.num_kv_blocks_free = options_.num_kv_blocks - used_blocks_;
    s.kv_usage = static_cast<double>(used_blocks_) / options_.num_kv_blocks;
    s.generation_tokens_total = generated_;
    s.prompt_tokens_total = prompt_tokens_;
    return s;
  }
  int max_model_len() const override { return options_.max_model_len; }
  Status health() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return health_;
  }
  // As an engine whose backend broke for good (a tensor parallel rank lost).
  void set_health(Status health) {
    std::lock_guard<std::mutex> lock(mu_);
    health_ = std::move(health);
  }

  // While paused, running requests produce no tokens (admission and aborts go on).
  void set_paused(bool paused) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      paused_ = paused;
    }
    cv_.notify_all();
  }

  int num_aborted() const { return num_aborted_.load(); }
  int num_submitted() const { return num_submitted_.load(); }
  GenerationRequest last_request() const {
    std::lock_guard<std::mutex> lock(mu_);
    return last_request_;
  }

 private:
  Status health_;
  struct Req {
    GenerationRequest request;
    OutputCallback cb;
    int num_out = 0;
    int num_blocks = 0;
    double arrival_s = 0, scheduled_s = 0, first_token_s = 0;
  };

  void loop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      if (running_.empty() && waiting_.empty()) {
        cv_.wait(lock);
        continue;
      }
      std::vector<std::pair<OutputCallback, RequestOutput>> outs;
      // Aborts first: their blocks are free after this step.
      for (auto it = waiting_.begin(); it != waiting_.end();) {
        if (aborts_.count(it->request.request_id)) {
          outs.emplace_back(it->cb, final_output(*it, FinishReason::kAbort));
          it = waiting_.erase(it);
        } else {
          ++it;
        }
      }
      for (auto it = running_.begin(); it != running_.end();) {
        if (aborts_.count(it->request.request_id)) {
          used_blocks_ -= it->num_blocks;
          outs.emplace_back(it->cb, final_output(*it, FinishReason::kAbort));
          it = running_.erase(it);
        } else {
          ++it;
        }
      }
      while (!waiting_.empty() && static_cast<int>(running_.size()) < options_.max_running) {
        Req r = std::move(waiting_.front());
        waiting_.pop_front();
        int tokens = static_cast<int>(r.request.prompt_ids.size()) + r.request.max_tokens;
        r.num_blocks = (tokens + options_.block_size - 1) / options_.block_size;
        used_blocks_ += r.num_blocks;
        prompt_tokens_ += static_cast<int64_t>(r.request.prompt_ids.size());
        r.scheduled_s = monotonic_s();
        last_request_ = r.request;
        running_.push_back(std::move(r));
      }
      double now = monotonic_s();
      for (auto it = running_.begin(); !paused_ && it != running_.end();) {
        Req& r = *it;
        size_t L = r.request.prompt_ids.size();
        const std::string& script = options_.scripted_output;
        int32_t tok = script.empty() ? fake_token(L, r.num_out) : static_cast<unsigned char>(script[r.num_out]);
        ++r.num_out;
        ++generated_;
        if (r.first_token_s == 0) r.first_token_s = now;
        RequestOutput out = base_output(r);
        out.new_token_ids = {tok};
        out.new_text = std::string(1, static_cast<char>(tok));
        out.new_token_times_s = {now};
        if (r.request.sampling.num_logprobs >= 0) {
          TokenLogprob lp{tok, -0.5f, {}};
          for (int k = 0; k < r.request.sampling.num_logprobs; ++k) lp.top.emplace_back(tok + k, -0.5f - k);
          out.new_logprobs = {lp};
        }
        bool stop = (r.num_out >= r.request.min_tokens &&
                     std::find(r.request.stop_token_ids.begin(), r.request.stop_token_ids.end(), tok) !=
                         r.request.stop_token_ids.end()) ||
                    (!script.empty() && r.num_out >= static_cast<int>(script.size()));
        if (stop || r.num_out >= r.request.max_tokens) {
          RequestOutput fin = final_output(r, stop ? FinishReason::kStop : FinishReason::kLength);
          fin.new_token_ids = out.new_token_ids;
          fin.new_text = out.new_text;
          fin.new_token_times_s = out.new_token_times_s;
          fin.new_logprobs = out.new_logprobs;
          if (!r.request.kv_transfer_params.is_null()) {
            fin.kv_transfer_params = Json{{"echo", r.request.kv_transfer_params}};
          }
          used_blocks_ -= r.num_blocks;
          outs.emplace_back(r.cb, std::move(fin));
          it = running_.erase(it);
        } else {
          outs.emplace_back(r.cb, std::move(out));
          ++it;
        }
      }
      lock.unlock();
      for (auto& [cb, out] : outs) cb(std::move(out));
      // The time one step takes (simulated model work; 0 by default).
      std::this_thread::sleep_for(std::chrono::duration<double>(options_.token_delay_s));
      lock.lock();
    }
  }

  RequestOutput base_output(const Req& r) {
    RequestOutput out;
    out.request_id = r.request.request_id;
    out.num_prompt_tokens = static_cast<int>(r.request.prompt_ids.size());
    out.num_output_tokens = r.num_out;
    return out;
  }

  // Called with mu_ held.
  RequestOutput final_output(const Req& r, FinishReason reason) {
    RequestOutput out = base_output(r);
    out.finished = true;
    out.finish_reason = reason;
    out.arrival_time_s = r.arrival_s;
    out.first_scheduled_time_s = r.scheduled_s;
    out.first_token_time_s = r.first_token_s;
    out.finished_time_s = monotonic_s();
    live_.erase(r.request.request_id);
    aborts_.erase(r.request.request_id);
    if (reason == FinishReason::kAbort) ++num_aborted_;
    return out;
  }

  Options options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Req> waiting_;
  std::deque<Req> running_;
  std::set<std::string> live_, aborts_;
  GenerationRequest last_request_;
  int used_blocks_ = 0;
  int64_t generated_ = 0, prompt_tokens_ = 0;
  std::atomic<int> num_aborted_{0}, num_submitted_{0}, num_abort_calls_{0};
  bool stop_ = false;
  bool paused_ = false;
  std::thread thread_;
};

// Bytes are tokens (vocabulary 300: 0-255 bytes, the rest specials).
// Chat template: "<|role|>content\n" per message, then "<|assistant|>".
class FakeCodec : public PromptCodec {
 public:
  // Fault injection: the next call throws, as a bug in a tokenizer would.
  mutable std::atomic<bool> throw_in_encode{false};
  mutable std::atomic<bool> throw_in_token_text{false};

  Result<std::vector<int32_t>> encode(std::string_view text, bool) const override {
    if (throw_in_encode.exchange(false)) throw std::runtime_error("injected fault in encode");
    std::vector<int32_t> ids;
    for (unsigned char c : text) ids.push_back(c);
    return ids;
  }
  std::string token_text(int32_t id) const override {
    if (throw_in_token_text.exchange(false)) throw std::runtime_error("injected fault in token_text");
    return id < 256 ? std::string(1, static_cast<char>(id)) : "<" + std::to_string(id) + ">";
  }
  // <|role|>content, tool calls as JSON; the tools' names first.
  Result<std::string> render_chat(const ChatRenderInput& input) const override {
    std::string out;
    if (input.tools.is_array()) {
      for (const auto& t : input.tools) out += "<|tool|>" + t["function"]["name"].get<std::string>() + "\n";
    }
    for (const Json& m : input.messages) {
      out += "<|" + m.at("role").get<std::string>() + "|>";
      if (m.at("content").is_string()) out += m.at("content").get<std::string>();
      if (m.contains("tool_calls")) out += dump_json(m["tool_calls"]);
      out += "\n";
    }
    if (input.add_generation_prompt) out += "<|assistant|>";
    return out;
  }
  int vocab_size() const override { return 300; }
};

}  // namespace baton::testing
