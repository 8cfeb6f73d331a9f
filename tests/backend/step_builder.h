// Test helper: builds StepInputs for sequences over a paged KV cache the way
// the engine will (positions, slot mapping, block tables, samples).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "backend/step.h"

namespace baton::testing {

struct TestSeq {
  std::vector<int32_t> tokens;  // prompt, then generated tokens appended
  std::vector<int32_t> blocks;  // this sequence's KV block ids, in position order
  int num_computed = 0;         // tokens whose K/V are in the cache
  int prompt_len = 0;
  std::vector<int32_t> output;  // generated ids
  SamplingParams params;
  uint64_t seed = 0;
};

// One step: sequence seqs[i] contributes chunk[i] new tokens (0 = skipped).
// A sequence samples when the step reaches the end of its known tokens.
// `index_of` receives, per sample, the index into seqs it belongs to.
inline StepInput build_step(std::vector<TestSeq>& seqs, const std::vector<int>& chunk, int block_size,
                            std::vector<int>* index_of = nullptr) {
  StepInput in;
  int max_blocks = 1;
  for (size_t i = 0; i < seqs.size(); ++i)
    if (chunk[i] > 0) max_blocks = std::max<int>(max_blocks, static_cast<int>(seqs[i].blocks.size()));
  in.max_blocks_per_seq = max_blocks;
  in.query_start.push_back(0);
  if (index_of) index_of->clear();
  for (size_t i = 0; i < seqs.size(); ++i) {
    if (chunk[i] <= 0) continue;
    TestSeq& s = seqs[i];
    const int seq_index = in.num_seqs();
    for (int j = 0; j < chunk[i]; ++j) {
      const int pos = s.num_computed + j;
      in.token_ids.push_back(s.tokens[pos]);
      in.positions.push_back(pos);
      in.slot_mapping.push_back(static_cast<int64_t>(s.blocks[pos / block_size]) * block_size + pos % block_size);
    }
    in.query_start.push_back(in.num_tokens());
    in.seq_lens.push_back(s.num_computed + chunk[i]);
    for (int b = 0; b < max_blocks; ++b)
      in.block_tables.push_back(b < static_cast<int>(s.blocks.size()) ? s.blocks[b] : -1);
    if (s.num_computed + chunk[i] == static_cast<int>(s.tokens.size())) {
      SampleRequest r;
      r.seq_index = seq_index;
      r.params = &s.params;
      r.seed = s.seed;
      r.num_output_tokens = static_cast<int64_t>(s.output.size());
      r.output_ids = &s.output;
      in.samples.push_back(r);
      if (index_of) index_of->push_back(static_cast<int>(i));
    }
  }
  return in;
}

// Marks the chunks computed and appends each sampled token to its sequence.
inline void apply_step(std::vector<TestSeq>& seqs, const std::vector<int>& chunk, const StepOutput& out,
                       const std::vector<int>& index_of) {
  for (size_t i = 0; i < seqs.size(); ++i) seqs[i].num_computed += std::max(0, chunk[i]);
  for (size_t j = 0; j < index_of.size(); ++j) {
    TestSeq& s = seqs[index_of[j]];
    s.tokens.push_back(out.samples[j].token_id);
    s.output.push_back(out.samples[j].token_id);
  }
}

}  // namespace baton::testing
