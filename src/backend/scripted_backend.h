// A test hook for end-to-end tests of what a random-weight model cannot be
// made to write (tool calls, say): wraps a real backend, runs every step on
// it (KV cache, batching and timings stay real) and then replaces each sampled
// token by the next token of a script. The i-th request to sample its first
// token gets script i (cycling through the scripts), and an EOS token after
// the script's last one. Selected by `baton serve --scripted-output FILE`.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "backend/backend.h"

namespace baton {

class ScriptedBackend : public Backend {
 public:
  // scripts: token ids of each scripted output (at least one); eos: appended.
  ScriptedBackend(std::unique_ptr<Backend> inner, std::vector<std::vector<int32_t>> scripts, int32_t eos_token_id);

  const ModelConfig& model_config() const override { return inner_->model_config(); }
  std::string device_name() const override { return inner_->device_name() + " (scripted output)"; }
  size_t kv_block_bytes(int block_size) const override { return inner_->kv_block_bytes(block_size); }
  size_t available_kv_bytes() const override { return inner_->available_kv_bytes(); }
  Status init_kv_cache(int num_blocks, int block_size) override {
    return inner_->init_kv_cache(num_blocks, block_size);
  }
  KvMemory kv_memory() override { return inner_->kv_memory(); }
  Result<StepOutput> execute(const StepInput& in) override;
  Status submit(const StepInput& in) override;
  Result<StepOutput> wait() override;
  bool submit_is_async() const override { return inner_->submit_is_async(); }
  Status health() const override { return inner_->health(); }

 private:
  void rewrite(const StepInput& in, StepOutput* out);

  std::unique_ptr<Backend> inner_;
  std::vector<std::vector<int32_t>> scripts_;
  int32_t eos_token_id_;
  const StepInput* submitted_ = nullptr;
  std::mutex mu_;
  size_t next_script_ = 0;
  // A live request (keyed by its prompt vector, which the engine keeps for
  // the request's lifetime) -> its script.
  std::map<const std::vector<int32_t>*, size_t> assigned_;
};

}  // namespace baton
