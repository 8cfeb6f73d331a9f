// The profiler's synthetic engine steps: sequences of any shape (computed
// tokens, new tokens), each with its own blocks, every one sampling its next
// token, as an engine step whose sequences all reach their last token.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/step.h"

namespace baton::cuda {

struct SeqShape {
  int computed = 0;    // tokens already in the KV cache
  int new_tokens = 1;  // computed this step (1: a decode)
};

// Blocks of `block_size` tokens, laid out sequence after sequence from block 0;
// token ids from `salt` (a different step each iteration).
StepInput build_step(const std::vector<SeqShape>& seqs, int block_size, int vocab, const SamplingParams* params,
                     uint64_t salt);

// KV blocks build_step's sequences take.
int blocks_of(const std::vector<SeqShape>& seqs, int block_size);

// A decode batch beside one prompt chunk: `decodes` sequences of
// `decode_context` tokens each computing one more, and a chunk of
// `chunk_tokens` after `chunk_context` computed ones (none when 0). With no
// decodes, a later chunk of a long prompt alone.
struct MixedStep {
  int decodes = 0;
  int decode_context = 0;
  int chunk_tokens = 0;
  int chunk_context = 0;
};
std::vector<SeqShape> seqs_of(const MixedStep& step);

}  // namespace baton::cuda
