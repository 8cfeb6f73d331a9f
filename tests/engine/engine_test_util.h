// Helpers for engine tests: an EngineCore over the fake backend, and a loop
// that runs it to completion gathering each request's whole output.
#pragma once

#include <map>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine/engine_core.h"
#include "engine/fake_backend.h"

namespace baton::testing {

struct Collected {
  std::vector<int32_t> ids;
  std::string text;
  std::vector<TokenLogprob> logprobs;
  FinishReason finish_reason = FinishReason::kNone;
  int num_cached_tokens = 0;
  int num_outputs = 0;
  bool finished = false;
  std::string error;
};

inline void collect(std::map<std::string, Collected>& all, std::vector<RequestOutput> outs) {
  for (RequestOutput& o : outs) {
    Collected& c = all[o.request_id];
    EXPECT_FALSE(c.finished) << o.request_id << " got an output after its final one";
    c.ids.insert(c.ids.end(), o.new_token_ids.begin(), o.new_token_ids.end());
    c.text += o.new_text;
    c.logprobs.insert(c.logprobs.end(), o.new_logprobs.begin(), o.new_logprobs.end());
    EXPECT_EQ(static_cast<int>(c.ids.size()), o.num_output_tokens);
    c.num_outputs++;
    if (o.finished) {
      c.finished = true;
      c.finish_reason = o.finish_reason;
      c.num_cached_tokens = o.num_cached_tokens;
      c.error = o.error;
    }
  }
}

inline std::map<std::string, Collected> run_to_completion(EngineCore& engine, int max_steps = 100000) {
  std::map<std::string, Collected> all;
  for (int i = 0; i < max_steps && engine.has_unfinished_requests(); ++i) collect(all, engine.step());
  EXPECT_FALSE(engine.has_unfinished_requests()) << "engine did not finish in " << max_steps << " steps";
  return all;
}

inline std::unique_ptr<EngineCore> make_engine(EngineOptions opts, FakeBackend** backend_out = nullptr,
                                               std::shared_ptr<const Detokenizer> detok = nullptr,
                                               ModelConfig cfg = fake_model_config()) {
  auto backend = std::make_unique<FakeBackend>(std::move(cfg));
  if (backend_out) *backend_out = backend.get();
  auto engine = EngineCore::create(std::move(backend), std::move(detok), opts);
  EXPECT_TRUE(engine.is_ok()) << engine.status().to_string();
  return std::move(engine).value();
}

inline std::vector<int32_t> tokens(int n, int start) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  std::iota(t.begin(), t.end(), start);
  return t;
}

inline GenerationRequest gen(const std::string& id, std::vector<int32_t> prompt, int max_tokens,
                             bool ignore_eos = true) {
  GenerationRequest g;
  g.request_id = id;
  g.prompt_ids = std::move(prompt);
  g.max_tokens = max_tokens;
  g.ignore_eos = ignore_eos;
  g.sampling.temperature = 0.0f;
  return g;
}

}  // namespace baton::testing
