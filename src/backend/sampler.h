// Draws one token from one logits row, with vLLM's semantics:
//
//   1. banned_token_ids            -> -inf; then logit_bias added
//   2. repetition_penalty (HF/vLLM) over prompt + output tokens:
//      a positive logit is divided by it, a negative one multiplied
//   3. presence / frequency penalty (OpenAI) over output tokens:
//      logit -= frequency * count + presence * (count > 0)
//   4. temperature 0: argmax, lowest index on ties. Otherwise:
//      logits / temperature, min_p (drop probs < min_p * max prob), top_k
//      (keep values >= the k-th largest), top_p (drop the smallest tokens
//      whose ascending cumulative probability is <= 1 - top_p, always keeping
//      the most likely one), then a Gumbel-max draw:
//        token = argmax_i  logit_i - log(-log(u_i)),
//        u_i = philox_uniform(seed, num_output_tokens, i)   (philox.h)
//      which samples softmax(logits) exactly and is reproducible by a
//      parallel GPU kernel, independent of batch composition.
//
// logprob and top logprobs come from log_softmax of the raw row (before
// penalties and temperature), vLLM's default ("raw_logprobs").
#pragma once

#include <cstdint>
#include <vector>

#include "backend/sampling_params.h"
#include "backend/step.h"
#include "common/status.h"

namespace baton {

// kInvalidArgument naming the field when a parameter is out of its range.
Status validate_sampling_params(const SamplingParams& params);

class Sampler {
 public:
  // Samples from `logits` ([vocab], unmodified) for `req`; req.params must be
  // set. Errors: invalid parameters, every token banned or -inf, NaN logits.
  Result<SampleResult> sample(const float* logits, int vocab, const SampleRequest& req);

 private:
  std::vector<float> work_;      // [vocab] processed logits
  std::vector<int32_t> order_;   // [vocab] scratch indices
  std::vector<uint8_t> seen_;    // [vocab] repetition-penalty marks
  std::vector<int32_t> counts_;  // [vocab] output-token counts
};

// Greedy choice over a row: the largest value, lowest index on ties.
int32_t argmax_lowest(const float* row, int n);

}  // namespace baton
