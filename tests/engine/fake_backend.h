// A deterministic stand-in for a model (tests only). Its "KV cache" stores,
// per slot, the token and position written there; sampling reads a
// sequence's whole context back through its block table, checks every
// position is where it must be, and derives the next token from a hash of
// the context (plus seed and output count when not greedy). So a wrong slot
// mapping, block table or lost KV gives a different token or an error, and
// the same context always gives the same token, whatever the batch.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <future>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include <xxhash.h>

#include "backend/backend.h"
#include "engine/detokenizer.h"

namespace baton::testing {

inline ModelConfig fake_model_config(int vocab = 1000, int max_len = 4096) {
  ModelConfig c;
  c.arch = Arch::kLlama;
  c.vocab_size = vocab;
  c.hidden_size = 8;
  c.num_layers = 1;
  c.num_heads = 1;
  c.num_kv_heads = 1;
  c.head_dim = 8;
  c.max_position_embeddings = max_len;
  c.eos_token_ids = {2};
  return c;
}

// The token a request with this context samples (no bans).
inline int32_t fake_next_token(const std::vector<int32_t>& context, const SamplingParams& p, uint64_t seed,
                               int64_t num_output_tokens, int vocab) {
  uint64_t h = XXH64(context.data(), context.size() * sizeof(int32_t), 7);
  if (!p.is_greedy()) {
    uint64_t key[3] = {h, seed, static_cast<uint64_t>(num_output_tokens)};
    h = XXH64(key, sizeof(key), 11);
  }
  return static_cast<int32_t>(h % static_cast<uint64_t>(vocab));
}

class FakeBackend : public Backend {
 public:
  explicit FakeBackend(ModelConfig cfg = fake_model_config()) : cfg_(std::move(cfg)) {}

  const ModelConfig& model_config() const override { return cfg_; }
  std::string device_name() const override { return "fake"; }
  size_t kv_block_bytes(int block_size) const override { return static_cast<size_t>(block_size) * 8; }
  Status init_kv_cache(int num_blocks, int block_size) override {
    block_size_ = block_size;
    num_blocks_ = num_blocks;
    slot_token_.assign(static_cast<size_t>(num_blocks) * block_size, -1);
    slot_pos_.assign(slot_token_.size(), -1);
    return Status::ok();
  }
  KvMemory kv_memory() override { return {}; }

  Result<StepOutput> execute(const StepInput& in) override {
    ++num_steps;
    num_tokens_per_step.push_back(in.num_tokens());
    if (broken) return internal_error("injected: the backend is broken for good");
    if (fail_next) {
      fail_next = false;
      return internal_error("injected backend failure");
    }
    // Write the new tokens' "KV".
    for (int t = 0; t < in.num_tokens(); ++t) {
      const int64_t slot = in.slot_mapping[t];
      if (slot < 0 || slot >= static_cast<int64_t>(slot_token_.size())) {
        return internal_error("slot {} out of range", slot);
      }
      slot_token_[slot] = in.token_ids[t];
      slot_pos_[slot] = in.positions[t];
    }
    StepOutput out;
    for (const SampleRequest& s : in.samples) {
      const int i = s.seq_index;
      const int len = in.seq_lens[i];
      std::vector<int32_t> context;
      context.reserve(static_cast<size_t>(len));
      for (int pos = 0; pos < len; ++pos) {
        const int block = in.block_tables[static_cast<size_t>(i) * in.max_blocks_per_seq + pos / block_size_];
        const int64_t slot = static_cast<int64_t>(block) * block_size_ + pos % block_size_;
        if (block < 0 || slot_pos_[slot] != pos) {
          return internal_error("seq {}: KV of position {} missing (block {}, found position {})", i, pos, block,
                                block < 0 ? -1 : slot_pos_[slot]);
        }
        context.push_back(slot_token_[slot]);
      }
      int32_t tok = script.empty() ? fake_next_token(context, *s.params, s.seed, s.num_output_tokens, cfg_.vocab_size)
                                   : script[static_cast<size_t>(s.num_output_tokens) % script.size()];
      while (std::find(s.banned_token_ids.begin(), s.banned_token_ids.end(), tok) != s.banned_token_ids.end()) {
        tok = (tok + 1) % cfg_.vocab_size;
      }
      SampleResult r;
      r.token_id = tok;
      r.logprob = -0.01f * static_cast<float>(tok % 100);
      if (s.params->num_logprobs > 0) {
        for (int k = 0; k < s.params->num_logprobs; ++k) {
          r.top_logprobs.push_back({(tok + k) % cfg_.vocab_size, -0.5f * k});
        }
      }
      out.samples.push_back(std::move(r));
    }
    return out;
  }

  // Device-like mode: submit() runs execute() on another thread after
  // async_delay_s, and wait() joins it, so the engine's caller really does
  // host work while a step runs; `in_flight` says whether one is running.
  Status submit(const StepInput& in) override {
    if (!async_submit) return Backend::submit(in);
    in_flight = true;
    pending_ = std::async(std::launch::async, [this, &in] {
      // The step's device time (simulated), overlapped with the caller's work.
      std::this_thread::sleep_for(std::chrono::duration<double>(async_delay_s));
      return execute(in);
    });
    return Status::ok();
  }
  Result<StepOutput> wait() override {
    if (!async_submit) return Backend::wait();
    Result<StepOutput> r = pending_.get();
    in_flight = false;
    return r;
  }
  bool submit_is_async() const override { return async_submit; }
  bool async_submit = false;
  double async_delay_s = 0.002;
  std::atomic<bool> in_flight{false};

  int num_steps = 0;
  std::vector<int> num_tokens_per_step;
  bool fail_next = false;
  // Once set, every step fails and health() reports the backend broken for
  // good (as a tensor parallel group with a failed rank does).
  std::atomic<bool> broken{false};
  Status health() const override {
    return broken ? internal_error("injected: the backend is broken for good") : Status::ok();
  }
  std::vector<int32_t> script;  // when set: the n-th output token of every request is script[n]

 private:
  ModelConfig cfg_;
  int block_size_ = 16;
  int num_blocks_ = 0;
  std::vector<int32_t> slot_token_;
  std::vector<int32_t> slot_pos_;
  std::future<Result<StepOutput>> pending_;
};

// What the engine must produce for `prompt` alone (greedy or seeded), with
// max_tokens and no stops.
inline SamplingParams greedy_params() {
  SamplingParams p;
  p.temperature = 0.0f;
  return p;
}

inline std::vector<int32_t> fake_reference(std::vector<int32_t> prompt, int max_tokens,
                                           const SamplingParams& p = greedy_params(), uint64_t seed = 0,
                                           int vocab = 1000) {
  std::vector<int32_t> out;
  for (int i = 0; i < max_tokens; ++i) {
    int32_t t = fake_next_token(prompt, p, seed, i, vocab);
    out.push_back(t);
    prompt.push_back(t);
  }
  return out;
}

// Decodes each token through a fixed table (unknown ids decode to ""); the
// ids in `special` decode to "" too when the request skips special tokens.
class TableDetokenizer : public Detokenizer {
 public:
  explicit TableDetokenizer(std::map<int32_t, std::string> table, std::set<int32_t> special = {})
      : table_(std::move(table)), special_(std::move(special)) {}
  std::unique_ptr<DetokenizerStream> open_stream(std::span<const int32_t>, bool skip_special_tokens) const override {
    struct Stream : DetokenizerStream {
      const std::map<int32_t, std::string>* table;
      const std::set<int32_t>* special;
      bool skip_special = true;
      std::string add(int32_t id) override {
        auto it = table->find(id);
        if (it == table->end() || (skip_special && special->count(id))) return std::string();
        return it->second;
      }
    };
    auto s = std::make_unique<Stream>();
    s->table = &table_;
    s->special = &special_;
    s->skip_special = skip_special_tokens;
    return s;
  }

 private:
  std::map<int32_t, std::string> table_;
  std::set<int32_t> special_;
};

}  // namespace baton::testing
