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
// prefill_variant 2: q in shared memory; 3: q in registers; 4, 5, 6 (-1 is
// 6): the warp-specialised kernel of attention_wgmma_ws.cu (5 with ping-pong,
// 6 also 128-key tiles), or variant 2 where that one does not serve the arguments.
void launch_attention_prefill_wgmma(const AttnArgs& a, const int32_t* work, int num_items, cudaStream_t stream);

// Warp-specialised form (a producer warpgroup loads K/V into mbarrier-guarded
// stages): head_dim 128 and a power-of-two cache block size.
bool attention_wgmma_ws_supports(const AttnArgs& a);
void launch_attention_prefill_wgmma_ws(const AttnArgs& a, const int32_t* work, int num_items, cudaStream_t stream);

}  // namespace baton::cuda
