// One engine step handed to a backend: a flattened batch of sequences, each
// contributing one or more new tokens (a prefill chunk or one decode token).
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "backend/sampling_params.h"

namespace baton {

// One sequence that samples its next token at its last scheduled position.
struct SampleRequest {
  int seq_index = 0;                                 // index into StepInput's sequences
  const SamplingParams* params = nullptr;            // owned by the engine's request
  uint64_t seed = 0;                                 // generator seed of this request
  int64_t num_output_tokens = 0;                     // tokens generated so far: the RNG counter
  const std::vector<int32_t>* output_ids = nullptr;  // for penalties (may be null)
  const std::vector<int32_t>* prompt_ids = nullptr;  // for repetition_penalty (may be null)
  std::vector<int32_t> banned_token_ids;             // e.g. stop ids before min_tokens
};

struct StepInput {
  // [num_tokens]
  std::vector<int32_t> token_ids;
  std::vector<int32_t> positions;
  std::vector<int64_t> slot_mapping;  // KV slot each new token writes (block*block_size+offset)
  // [num_seqs + 1]: new tokens of sequence i are [query_start[i], query_start[i+1])
  std::vector<int32_t> query_start;
  // [num_seqs]: tokens in the KV cache after this step (cached context + new)
  std::vector<int32_t> seq_lens;
  // [num_seqs, max_blocks_per_seq]: the block ids of each sequence, padded with -1
  std::vector<int32_t> block_tables;
  int max_blocks_per_seq = 0;
  // Sequences that sample this step, in ascending seq_index.
  std::vector<SampleRequest> samples;
  // Tests and tools: also return the full logits of each sampling row.
  bool return_logits = false;

  int num_tokens() const { return static_cast<int>(token_ids.size()); }
  int num_seqs() const { return static_cast<int>(seq_lens.size()); }
};

struct SampleResult {
  int32_t token_id = -1;
  float logprob = 0.0f;  // of the sampled token, under the unmodified distribution (vLLM default)
  std::vector<std::pair<int32_t, float>> top_logprobs;  // num_logprobs entries, best first
};

struct StepOutput {
  std::vector<SampleResult> samples;  // one per StepInput::samples, same order
  std::vector<float> logits;          // [num_samples, vocab] when return_logits
};

}  // namespace baton
