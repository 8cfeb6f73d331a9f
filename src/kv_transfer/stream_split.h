// Splitting one large read into parts for parallel TCP streams (the tcp
// transport's multi-stream reads, as NIXL/UCX and NCCL's socket transport
// stripe a message over several connections). Parts hold whole blocks, are
// near-equal in bytes (all blocks have one size, so in blocks), and keep the
// original run order: part i holds the blocks [first_index, first_index +
// num_blocks) of the read in run order, so per-block checksums of the parts,
// concatenated in part order, are the read's.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kv_transfer/block_runs.h"

namespace baton {

struct StreamPart {
  std::vector<BlockRun> runs;  // in the read's order; a run may be cut between two parts
  int64_t first_index = 0;     // of its first block among all the read's blocks (run order)
  int64_t num_blocks = 0;
};

// How many parts a read of `num_blocks` blocks of `block_bytes` gets: one
// when its data is at most `min_stream_bytes` (or num_streams <= 1), else
// min(num_streams, num_blocks, ceil(data / min_stream_bytes)), so that no
// part is much smaller than min_stream_bytes / 2.
int num_stream_parts(int64_t num_blocks, size_t block_bytes, int num_streams, size_t min_stream_bytes);

// Cuts `runs` into `num_parts` (>= 1, clamped to the block count) parts of
// near-equal block counts (they differ by at most one block). Empty runs in,
// nothing out.
std::vector<StreamPart> split_runs_for_streams(const std::vector<BlockRun>& runs, int num_parts);

}  // namespace baton
