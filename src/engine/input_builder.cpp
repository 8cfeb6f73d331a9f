#include "engine/input_builder.h"

#include <algorithm>

#include "common/check.h"

namespace baton {

void InputBuilder::build(const SchedulerOutput& out, StepInput& in) const {
  const int block_size = kv_->block_size();
  const int num_seqs = static_cast<int>(out.seqs.size());
  in.token_ids.clear();
  in.positions.clear();
  in.slot_mapping.clear();
  in.query_start.assign(1, 0);
  in.seq_lens.clear();
  in.samples.clear();
  in.token_ids.reserve(static_cast<size_t>(out.num_scheduled_tokens));
  in.positions.reserve(static_cast<size_t>(out.num_scheduled_tokens));
  in.slot_mapping.reserve(static_cast<size_t>(out.num_scheduled_tokens));

  int max_blocks = 0;
  for (const ScheduledSeq& s : out.seqs) {
    max_blocks = std::max(max_blocks, static_cast<int>(kv_->block_ids(s.request->key).size()));
  }
  in.max_blocks_per_seq = max_blocks;
  // [num_seqs, max_blocks_per_seq], padded with -1
  in.block_tables.assign(static_cast<size_t>(num_seqs) * max_blocks, -1);

  for (int i = 0; i < num_seqs; ++i) {
    const ScheduledSeq& s = out.seqs[i];
    const Request& r = *s.request;
    std::span<const int> blocks = kv_->block_ids(r.key);
    const int start = r.num_computed_tokens;
    const int end = start + s.num_new_tokens;
    BATON_CHECK(end <= r.num_tokens() && kv_->num_blocks_for(end) <= static_cast<int>(blocks.size()),
                "request {} scheduled past its tokens or blocks", r.id());
    for (int pos = start; pos < end; ++pos) {
      in.token_ids.push_back(r.all_token_ids[pos]);
      in.positions.push_back(pos);
      in.slot_mapping.push_back(static_cast<int64_t>(blocks[pos / block_size]) * block_size + pos % block_size);
    }
    in.query_start.push_back(static_cast<int32_t>(in.token_ids.size()));
    in.seq_lens.push_back(end);
    std::copy(blocks.begin(), blocks.end(), in.block_tables.begin() + static_cast<ptrdiff_t>(i) * max_blocks);
    if (s.samples) {
      SampleRequest sr;
      sr.seq_index = i;
      sr.params = &r.params.sampling;
      sr.seed = r.seed;
      sr.num_output_tokens = r.num_output_tokens();
      sr.output_ids = &r.output_ids;
      sr.prompt_ids = &r.params.prompt_ids;
      if (r.num_output_tokens() < r.params.min_tokens) sr.banned_token_ids = r.banned_before_min_tokens;
      in.samples.push_back(std::move(sr));
    }
  }
}

}  // namespace baton
