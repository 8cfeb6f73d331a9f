// Prefill attention for head_dim 128 on Hopper with warpgroup MMA (wgmma,
// sm_90a), FlashAttention-3 style. Same contract as launch_attention_prefill
// (kernels.h): work items of attention_rows_per_tile() = 128 rows.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "backend/cuda/kernels.h"

namespace baton::cuda {

// True when the wgmma kernel serves this head_dim.
bool attention_wgmma_supports(int head_dim);
void launch_attention_prefill_wgmma(const AttnArgs& a, const int32_t* work, int num_items, cudaStream_t stream);

}  // namespace baton::cuda
