// One token's softmax top-k by a warp, and the sort of (token, expert) slots
// by expert in one block: the device pieces that both moe_routing.cu's
// routing kernels and moe_router.cu's router kernels end with.
#pragma once

#include <cstdint>

#include "backend/cuda/device_utils.cuh"
#include "backend/cuda/kernels.h"
#include "backend/cuda/moe_tiles.cuh"

namespace baton::cuda {

// The softmax's numerators over one token's router logits r (v[j]: expert
// lane + 32 j; -1 past num_experts) and their sum, the same on every lane.
// kCg: the logits were written by other blocks of this launch, so they are
// read past L1.
template <bool kCg>
__device__ __forceinline__ float warp_softmax_terms(const float* r, int num_experts, float (&v)[kMaxExperts / 32]) {
  const int lane = threadIdx.x & 31;
  constexpr int kPer = kMaxExperts / 32;
  float mx = -INFINITY;
#pragma unroll
  for (int j = 0; j < kPer; ++j) {
    int e = lane + 32 * j;
    v[j] = e < num_experts ? (kCg ? __ldcg(r + e) : r[e]) : -INFINITY;
    mx = fmaxf(mx, v[j]);
  }
  mx = warp_max(mx);
  float sum = 0.0f;
#pragma unroll
  for (int j = 0; j < kPer; ++j) {
    int e = lane + 32 * j;
    v[j] = e < num_experts ? __expf(v[j] - mx) : -1.0f;
    sum += e < num_experts ? v[j] : 0.0f;
  }
  return warp_sum(sum);
}

// Softmax over the router's logits, then the top k (ties: the lower expert),
// for one token by one warp; lane l holds experts l + 32 j.
template <bool kCg = false>
__device__ __forceinline__ void warp_topk(const float* r, int num_experts, int k, bool renorm, int32_t* ids, float* w) {
  const int lane = threadIdx.x & 31;
  constexpr int kPer = kMaxExperts / 32;
  float v[kPer];
  const float sum = warp_softmax_terms<kCg>(r, num_experts, v);
  float picked_sum = 0.0f;
  for (int c = 0; c < k; ++c) {
    float best = -2.0f;
    int best_e = 0x7fffffff;
#pragma unroll
    for (int j = 0; j < kPer; ++j) {
      int e = lane + 32 * j;
      if (v[j] > best) {
        best = v[j];
        best_e = e;
      }
    }
    warp_argmax(best, best_e);
    if (lane == 0) {
      ids[c] = best_e;
      w[c] = best / sum;
    }
    picked_sum += best / sum;
    if ((best_e & 31) == lane) {
#pragma unroll
      for (int j = 0; j < kPer; ++j)
        if (lane + 32 * j == best_e) v[j] = -1.0f;
    }
  }
  if (renorm) {
    __syncwarp();
    if (lane < k) w[lane] /= picked_sum;
  }
}

// Experts [expert_begin, expert_begin + num_experts) are this rank's (all of
// them without expert parallelism); a slot routed elsewhere gets slot_pos -1
// and no sorted row. One block; count and cursor: shared [num_experts + 1].
//
// runs (when not null, [num_slots]; kernels.h's kMoeRunRowsShift): the first
// sorted position of expert e's c rows holds e | c << 16, every other
// position -1, so a kernel over positions finds its expert and rows in one
// load.
__device__ inline void block_align(const int32_t* ids, int num_slots, int num_experts, int expert_begin,
                                   int32_t* offsets, int32_t* sorted_slots, int32_t* slot_pos, int32_t* count,
                                   int32_t* cursor, int32_t* runs = nullptr) {
  for (int e = threadIdx.x; e < num_experts; e += blockDim.x) count[e] = 0;
  __syncthreads();
  for (int s = threadIdx.x; s < num_slots; s += blockDim.x) {
    const unsigned local = static_cast<unsigned>(ids[s] - expert_begin);
    if (local < static_cast<unsigned>(num_experts)) atomicAdd(&count[local], 1);
  }
  __syncthreads();
  if (threadIdx.x < 32) {  // the prefix sums: each lane a run of experts, then a warp scan of the runs
    const int lane = threadIdx.x, per = (num_experts + 31) / 32, e0 = min(num_experts, lane * per),
              e1 = min(num_experts, e0 + per);
    int run = 0;
    for (int e = e0; e < e1; ++e) run += count[e];
    int incl = run;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const int v = __shfl_up_sync(0xffffffffu, incl, o);
      if (lane >= o) incl += v;
    }
    int acc = incl - run;
    for (int e = e0; e < e1; ++e) {
      const int c = count[e];
      offsets[e] = acc;
      cursor[e] = acc;
      acc += c;
    }
    if (lane == 31) offsets[num_experts] = incl;
  }
  __syncthreads();
  if (runs != nullptr)  // the positions no local slot takes
    for (int p = offsets[num_experts] + threadIdx.x; p < num_slots; p += blockDim.x) runs[p] = -1;
  for (int s = threadIdx.x; s < num_slots; s += blockDim.x) {
    const unsigned local = static_cast<unsigned>(ids[s] - expert_begin);
    if (local >= static_cast<unsigned>(num_experts)) {
      slot_pos[s] = -1;
      continue;
    }
    int pos = atomicAdd(&cursor[local], 1);
    sorted_slots[pos] = s;
    slot_pos[s] = pos;
    if (runs != nullptr)
      runs[pos] = pos == offsets[local] ? static_cast<int32_t>(local) | count[local] << kMoeRunRowsShift : -1;
  }
}

}  // namespace baton::cuda
