#include "backend/step_validation.h"

namespace baton {

Status validate_step_shape(const StepInput& in) {
  const int n = in.num_tokens(), num_seqs = in.num_seqs();
  if (n == 0) return invalid_argument("step has no tokens");
  if (static_cast<int>(in.positions.size()) != n || static_cast<int>(in.slot_mapping.size()) != n)
    return invalid_argument("step has {} tokens but {} positions and {} slots", n, in.positions.size(),
                            in.slot_mapping.size());
  if (num_seqs == 0) return invalid_argument("step has no sequences");
  if (static_cast<int>(in.query_start.size()) != num_seqs + 1 || in.query_start.front() != 0 ||
      in.query_start.back() != n)
    return invalid_argument("query_start must have num_seqs + 1 = {} entries from 0 to {}", num_seqs + 1, n);
  if (in.max_blocks_per_seq <= 0 ||
      in.block_tables.size() != static_cast<size_t>(num_seqs) * static_cast<size_t>(in.max_blocks_per_seq))
    return invalid_argument("block_tables must hold num_seqs x max_blocks_per_seq = {} x {} entries, has {}", num_seqs,
                            in.max_blocks_per_seq, in.block_tables.size());
  return Status::ok();
}

Status validate_sample_rows(const StepInput& in) {
  const int num_seqs = in.num_seqs();
  int prev = -1;
  for (const SampleRequest& r : in.samples) {
    if (r.seq_index <= prev || r.seq_index >= num_seqs)
      return invalid_argument("sample seq_index {} out of order or outside [0, {})", r.seq_index, num_seqs);
    if (in.query_start[r.seq_index + 1] == in.query_start[r.seq_index])
      return invalid_argument("sequence {} samples but has no tokens this step", r.seq_index);
    if (r.params == nullptr) return invalid_argument("sample for sequence {} has no sampling params", r.seq_index);
    prev = r.seq_index;
  }
  return Status::ok();
}

}  // namespace baton
