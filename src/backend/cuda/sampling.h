// GPU sampling with the CPU sampler's semantics (backend/sampler.h): banned
// tokens, logit bias, repetition / presence / frequency penalties, greedy (lowest id on
// ties) or temperature, min_p, top_k, top_p and a Gumbel-max draw with the
// very same Philox numbers (backend/philox.h), so the two backends draw the
// same tokens. Logits stay on the device; only ids and logprobs come back.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace baton {
struct SampleRequest;  // backend/step.h
}

namespace baton::cuda {

constexpr int kMaxTopLogprobs = 20;

struct SampleRowParams {
  float temperature = 0.0f;  // <= 0: greedy
  int top_k = 0;
  float top_p = 1.0f;
  float min_p = 0.0f;
  float repetition_penalty = 1.0f;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  int num_logprobs = -1;
  uint64_t seed = 0;
  uint64_t step = 0;                       // the request's num_output_tokens
  int penalty_begin = 0, penalty_end = 0;  // range in the penalty token list
};

// One entry per distinct token of a sampling row's history, banned list or
// logit_bias.
struct PenaltyToken {
  int32_t token = 0;
  int32_t output_count = 0;  // occurrences in the output (presence/frequency)
  int32_t seen = 0;          // in prompt or output (repetition penalty)
  int32_t banned = 0;        // logit set to -inf
  float bias = 0.0f;         // logit_bias, added before the penalties
};

struct SampleOutputs {
  int32_t* tokens = nullptr;      // [S]
  float* logprobs = nullptr;      // [S]
  int32_t* top_ids = nullptr;     // [S, kMaxTopLogprobs]
  float* top_logprobs = nullptr;  // [S, kMaxTopLogprobs]
};

// The row parameters of one request (its penalty tokens: [penalty_begin,
// penalty_end), which the caller sets once it has listed them).
SampleRowParams sample_row_params(const SampleRequest& req, int penalty_begin);

// logits: [S, vocab] fp32 (left unmodified); work: [S, vocab] scratch.
void launch_sample(const float* logits, float* work, int num_rows, int vocab, const SampleRowParams* params,
                   const PenaltyToken* penalties, SampleOutputs out, cudaStream_t stream);

}  // namespace baton::cuda
