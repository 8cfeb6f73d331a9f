// The MoE slot sort of an expert-parallel rank (--enable-expert-parallel,
// docs/parallelism.md): like launch_moe_align (kernels.h), but over this
// rank's experts only. Kept out of kernels.h, which every kernel file includes.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

namespace baton::cuda {

// Sorts the T*k (token, choice) slots whose expert is in [expert_begin,
// expert_begin + num_experts) by local expert (e - expert_begin): offsets
// [num_experts + 1], sorted_slots, slot_pos (slot -> sorted position). A slot
// routed to another rank's expert gets slot_pos -1: no row in the grouped
// GEMMs, and launch_moe_combine skips it.
void launch_moe_align_local(const int32_t* topk_ids, int num_slots, int expert_begin, int num_experts, int32_t* offsets,
                            int32_t* sorted_slots, int32_t* slot_pos, cudaStream_t stream);

}  // namespace baton::cuda
