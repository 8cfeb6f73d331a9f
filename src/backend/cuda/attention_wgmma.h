// Prefill attention for head_dim 128 on Hopper with warpgroup MMA (wgmma,
// sm_90a), FlashAttention-3 style (attention_wgmma_ws.cu). Same contract as
// launch_attention_prefill (kernels.h), which calls it where it serves the
// arguments: work items of attention_rows_per_tile() = 128 rows.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "backend/cuda/kernels.h"

namespace baton::cuda {

// True for head_dim 128 and a power-of-two cache block size.
bool attention_wgmma_ws_supports(const AttnArgs& a);
void launch_attention_prefill_wgmma_ws(const AttnArgs& a, const int32_t* work, int num_items, cudaStream_t stream);

}  // namespace baton::cuda
