#include "tools/gpu_profile/step_builder.h"

#include <algorithm>

namespace baton::cuda {

int blocks_of(const std::vector<SeqShape>& seqs, int block_size) {
  int n = 0;
  for (const SeqShape& s : seqs) n += (s.computed + s.new_tokens + block_size - 1) / block_size;
  return n;
}

StepInput build_step(const std::vector<SeqShape>& seqs, int block_size, int vocab, const SamplingParams* params,
                     uint64_t salt) {
  StepInput in;
  int widest = 0;
  for (const SeqShape& s : seqs) widest = std::max(widest, (s.computed + s.new_tokens + block_size - 1) / block_size);
  in.max_blocks_per_seq = widest;
  in.query_start.push_back(0);
  int first = 0;  // the sequence's first block
  for (size_t i = 0; i < seqs.size(); ++i) {
    const SeqShape& s = seqs[i];
    const int len = s.computed + s.new_tokens, nb = (len + block_size - 1) / block_size;
    const auto seq = static_cast<uint64_t>(i);
    for (int j = 0; j < s.new_tokens; ++j) {
      const int pos = s.computed + j;
      in.token_ids.push_back(static_cast<int32_t>((salt * 7919 + seq * 131 + static_cast<uint64_t>(pos) * 31) %
                                                  static_cast<uint64_t>(vocab)));
      in.positions.push_back(pos);
      in.slot_mapping.push_back(static_cast<int64_t>(first + pos / block_size) * block_size + pos % block_size);
    }
    in.query_start.push_back(in.num_tokens());
    in.seq_lens.push_back(len);
    for (int b = 0; b < widest; ++b) in.block_tables.push_back(b < nb ? first + b : -1);
    SampleRequest r;
    r.seq_index = static_cast<int>(i);
    r.params = params;
    r.seed = 1234 + static_cast<uint64_t>(i);
    r.num_output_tokens = static_cast<int64_t>(salt);
    in.samples.push_back(r);
    first += nb;
  }
  return in;
}

std::vector<SeqShape> seqs_of(const MixedStep& step) {
  std::vector<SeqShape> seqs(static_cast<size_t>(step.decodes), SeqShape{step.decode_context - 1, 1});
  if (step.chunk_tokens > 0) seqs.push_back({step.chunk_context, step.chunk_tokens});
  return seqs;
}

}  // namespace baton::cuda
