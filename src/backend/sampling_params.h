// How one request's next token is drawn from the logits. Applied by the
// backend (sampler.h on the CPU, kernels on the GPU) so logits can stay on the
// device; the engine decides stopping (stop ids/strings, max/min tokens).
#pragma once

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

namespace baton {

struct SamplingParams {
  float temperature = 1.0f;         // 0 = greedy
  int top_k = 0;                    // 0 or -1 = off
  float top_p = 1.0f;               // 1 = off
  float min_p = 0.0f;               // 0 = off
  float repetition_penalty = 1.0f;  // 1 = off (HF/vLLM: divides positive logits, multiplies negative)
  float presence_penalty = 0.0f;    // OpenAI semantics, over output tokens
  float frequency_penalty = 0.0f;   // OpenAI semantics, over output tokens
  std::optional<uint64_t> seed;     // per-request generator; none = engine's own seed stream
  int num_logprobs = -1;            // -1 none; 0 sampled token only; N also the top N
  // OpenAI's logit_bias: (token id, bias) added to the token's logit before
  // the penalties (vLLM's order), ids ascending and distinct.
  std::vector<std::pair<int32_t, float>> logit_bias;

  bool is_greedy() const { return temperature <= 0.0f; }
  bool needs_penalties() const {
    return repetition_penalty != 1.0f || presence_penalty != 0.0f || frequency_penalty != 0.0f;
  }
};

}  // namespace baton
