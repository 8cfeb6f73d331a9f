// Which decode batches `baton profile --kernel-costs` may time kernel by
// kernel (step_kernels.h): checked before the profile starts, so that a batch
// the run would leave out is an error, not a table that never appears.
#pragma once

#include <vector>

#include "common/status.h"

namespace baton::cuda {

// OK when every batch is one of decode_batches and the profile runs on one
// GPU (the per-kernel timing replays one backend's captured graph); otherwise
// INVALID_ARGUMENT naming the batch or the GPU count.
Status check_kernel_cost_batches(const std::vector<int>& kernel_cost_batches, const std::vector<int>& decode_batches,
                                 int tensor_parallel_size);

}  // namespace baton::cuda
