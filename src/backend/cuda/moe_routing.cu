// Mixture-of-experts routing: the router's softmax top-k (and DeepSeek-V3's
// grouped form), the sort of (token, expert) slots by expert whose offsets
// stay on the device (so the step needs no host sync and can be captured in a
// CUDA graph), and decode's one-launch form of both. Decode's router with its
// routing in one launch is in moe_router.cu; the experts' GEMMs and the
// combine are in moe.cu.
#include "backend/cuda/cuda_common.h"
#include "backend/cuda/device_utils.cuh"
#include "backend/cuda/kernels.h"
#include "backend/cuda/moe_local_experts.h"
#include "backend/cuda/moe_route_device.cuh"
#include "backend/cuda/moe_tiles.cuh"

namespace baton::cuda {
namespace {

// One warp per token.
__global__ void moe_topk_kernel(const float* router, int num_tokens, int num_experts, int k, bool renorm, int32_t* ids,
                                float* w) {
  const int tkn = (blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  if (tkn >= num_tokens) return;
  warp_topk(router + static_cast<int64_t>(tkn) * num_experts, num_experts, k, renorm, ids + tkn * k, w + tkn * k);
}

// The best (value, expert) of the warp: higher value, then lower expert.
__device__ __forceinline__ void warp_argmax(float& v, int& e, float& payload) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    float ov = __shfl_xor_sync(0xffffffffu, v, o);
    int oe = __shfl_xor_sync(0xffffffffu, e, o);
    float op = __shfl_xor_sync(0xffffffffu, payload, o);
    if (ov > v || (ov == v && oe < e)) {
      v = ov;
      e = oe;
      payload = op;
    }
  }
}

// DeepSeek-V3 routing, one warp per token; lane l holds experts l + 32 j.
__global__ void moe_grouped_topk_kernel(const float* router, const float* bias, int num_tokens, GroupedTopkDevArgs a,
                                        int32_t* ids, float* w) {
  const int tkn = (blockIdx.x * blockDim.x + threadIdx.x) >> 5, lane = threadIdx.x & 31;
  if (tkn >= num_tokens) return;
  const float* r = router + static_cast<int64_t>(tkn) * a.num_experts;  // [E]
  constexpr int kPer = kMaxExperts / 32;
  const int per_group = a.num_experts / a.n_group;
  float score[kPer], biased[kPer];
#pragma unroll
  for (int j = 0; j < kPer; ++j) {
    const int e = lane + 32 * j;
    score[j] = e < a.num_experts ? 1.0f / (1.0f + expf(-r[e])) : 0.0f;
    biased[j] = e < a.num_experts ? score[j] + bias[e] : -INFINITY;
  }
  // Each group's score, the sum of its two best biased scores, lands on lane g.
  float group_score = -INFINITY;
  for (int g = 0; g < a.n_group; ++g) {
    float best = -INFINITY, second = -INFINITY;
#pragma unroll
    for (int j = 0; j < kPer; ++j) {
      const int e = lane + 32 * j;
      if (e < a.num_experts && e / per_group == g) {
        if (biased[j] > best) {
          second = best;
          best = biased[j];
        } else if (biased[j] > second) {
          second = biased[j];
        }
      }
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {  // merge two top-2 lists
      const float ob = __shfl_xor_sync(0xffffffffu, best, o), os = __shfl_xor_sync(0xffffffffu, second, o);
      second = fmaxf(fminf(best, ob), fmaxf(second, os));
      best = fmaxf(best, ob);
    }
    if (lane == g) group_score = best + second;
  }
  uint32_t kept = 0;
  bool group_taken = lane >= a.n_group;
  for (int i = 0; i < a.topk_group; ++i) {
    float v = group_taken ? -INFINITY : group_score;
    int g = group_taken ? 0x7fffffff : lane;
    float unused = 0.0f;
    warp_argmax(v, g, unused);
    kept |= 1u << g;
    if (lane == g) group_taken = true;
  }
#pragma unroll
  for (int j = 0; j < kPer; ++j) {
    const int e = lane + 32 * j;
    if (e < a.num_experts && !((kept >> (e / per_group)) & 1u)) biased[j] = -INFINITY;
  }
  uint32_t taken = 0;  // bit j: expert lane + 32 j already chosen
  float picked_sum = 0.0f;
  for (int c = 0; c < a.top_k; ++c) {
    float best = -INFINITY, best_score = 0.0f;
    int best_e = 0x7fffffff;
#pragma unroll
    for (int j = 0; j < kPer; ++j) {
      const int e = lane + 32 * j;
      if (e < a.num_experts && !((taken >> j) & 1u) && (biased[j] > best || best_e == 0x7fffffff)) {
        best = biased[j];
        best_e = e;
        best_score = score[j];
      }
    }
    warp_argmax(best, best_e, best_score);
    if ((best_e & 31) == lane) taken |= 1u << (best_e >> 5);
    if (lane == 0) {
      ids[tkn * a.top_k + c] = best_e;
      w[tkn * a.top_k + c] = best_score;
    }
    picked_sum += best_score;
  }
  __syncwarp();
  if (lane < a.top_k) {
    const float denom = a.renorm ? picked_sum + 1e-20f : 1.0f;
    w[tkn * a.top_k + lane] = w[tkn * a.top_k + lane] / denom * a.scaling;
  }
}

__global__ void moe_align_kernel(const int32_t* ids, int num_slots, int num_experts, int expert_begin, int32_t* offsets,
                                 int32_t* sorted_slots, int32_t* slot_pos) {
  pdl_wait();
  __shared__ int32_t count[kMaxExperts + 1];
  __shared__ int32_t cursor[kMaxExperts];
  block_align(ids, num_slots, num_experts, expert_begin, offsets, sorted_slots, slot_pos, count, cursor);
}

// Decode's routing in one launch: warp t picks token t's experts, then the
// block sorts the slots (launch_moe_topk then launch_moe_align_local, less a
// launch and a round trip: at most kMoeRouteOneBlockTokens tokens).
__global__ void __launch_bounds__(32 * kMoeRouteOneBlockTokens)
    moe_route_kernel(const float* router, int num_tokens, int total_experts, int k, bool renorm, int expert_begin,
                     int num_experts, int32_t* ids, float* w, int32_t* offsets, int32_t* sorted_slots,
                     int32_t* slot_pos, int32_t* runs) {
  pdl_wait();
  __shared__ int32_t count[kMaxExperts + 1];
  __shared__ int32_t cursor[kMaxExperts];
  const int tkn = threadIdx.x >> 5;
  if (tkn < num_tokens)
    warp_topk(router + static_cast<int64_t>(tkn) * total_experts, total_experts, k, renorm, ids + tkn * k, w + tkn * k);
  __syncthreads();  // the block's global writes of ids are visible to it from here
  block_align(ids, num_tokens * k, num_experts, expert_begin, offsets, sorted_slots, slot_pos, count, cursor, runs);
}

// The sort over several blocks (more slots than one block's chunk), in three
// kernels and no scratch: offsets[e + 1] holds expert e's count (after a
// memset), then the slots before expert e, then, as each block claims its
// range of expert e there, the slots up to and including expert e's: the
// prefix array the GEMMs read. Order within an expert is free.
constexpr int kAlignThreads = 256, kAlignChunk = 2048;  // slots a block
// Up to this many slots one block sorts faster than the four launches of the
// multi-block path (H200, 128 experts: 8.0 against 15.6 us at 4,096 slots,
// 22.2 against 16.0 at 16,384, 79.8 against 15.7 at 65,536).
constexpr int kAlignOneBlockMax = 6 * kAlignChunk;

// The local expert of slot s, or -1 (another rank's expert).
__device__ __forceinline__ int local_expert(const int32_t* ids, int s, int num_experts, int expert_begin) {
  const unsigned local = static_cast<unsigned>(ids[s] - expert_begin);
  return local < static_cast<unsigned>(num_experts) ? static_cast<int>(local) : -1;
}

__global__ void __launch_bounds__(kAlignThreads)
    moe_count_kernel(const int32_t* ids, int num_slots, int num_experts, int expert_begin, int32_t* offsets) {
  __shared__ int32_t count[kMaxExperts];
  for (int e = threadIdx.x; e < num_experts; e += kAlignThreads) count[e] = 0;
  __syncthreads();
  const int end = min(num_slots, (blockIdx.x + 1) * kAlignChunk);
  for (int s = blockIdx.x * kAlignChunk + threadIdx.x; s < end; s += kAlignThreads) {
    const int e = local_expert(ids, s, num_experts, expert_begin);
    if (e >= 0) atomicAdd(&count[e], 1);
  }
  __syncthreads();
  for (int e = threadIdx.x; e < num_experts; e += kAlignThreads)
    if (count[e] != 0) atomicAdd(&offsets[e + 1], count[e]);
}

// One warp: offsets[e + 1] = the slots of experts before e (an exclusive scan).
__global__ void moe_count_prefix_kernel(int32_t* offsets, int num_experts) {
  const int lane = threadIdx.x;
  int carry = 0;
  for (int base = 0; base < num_experts; base += 32) {
    const int e = base + lane;
    const int c = e < num_experts ? offsets[e + 1] : 0;
    int incl = c;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const int v = __shfl_up_sync(0xffffffffu, incl, o);
      if (lane >= o) incl += v;
    }
    if (e < num_experts) offsets[e + 1] = carry + incl - c;
    carry += __shfl_sync(0xffffffffu, incl, 31);
  }
  if (lane == 0) offsets[0] = 0;
}

__global__ void __launch_bounds__(kAlignThreads)
    moe_scatter_kernel(const int32_t* ids, int num_slots, int num_experts, int expert_begin, int32_t* offsets,
                       int32_t* sorted_slots, int32_t* slot_pos) {
  __shared__ int32_t count[kMaxExperts], base[kMaxExperts];
  for (int e = threadIdx.x; e < num_experts; e += kAlignThreads) count[e] = 0;
  __syncthreads();
  const int begin = blockIdx.x * kAlignChunk, end = min(num_slots, begin + kAlignChunk);
  for (int s = begin + threadIdx.x; s < end; s += kAlignThreads) {
    const int e = local_expert(ids, s, num_experts, expert_begin);
    if (e >= 0) atomicAdd(&count[e], 1);
  }
  __syncthreads();
  for (int e = threadIdx.x; e < num_experts; e += kAlignThreads) {
    base[e] = count[e] != 0 ? atomicAdd(&offsets[e + 1], count[e]) : 0;  // this block's range of expert e
    count[e] = 0;
  }
  __syncthreads();
  for (int s = begin + threadIdx.x; s < end; s += kAlignThreads) {
    const int e = local_expert(ids, s, num_experts, expert_begin);
    if (e < 0) {
      slot_pos[s] = -1;
      continue;
    }
    const int pos = base[e] + atomicAdd(&count[e], 1);
    sorted_slots[pos] = s;
    slot_pos[s] = pos;
  }
}

}  // namespace

void launch_moe_topk(const float* router, int num_tokens, int num_experts, int k, bool renorm, int32_t* topk_ids,
                     float* topk_w, cudaStream_t stream) {
  if (num_tokens == 0) return;
  BATON_CHECK(num_experts <= kMaxExperts && k <= 32 && k <= num_experts, "moe: {} experts top-{}", num_experts, k);
  int blocks = (num_tokens * 32 + 255) / 256;
  moe_topk_kernel<<<blocks, 256, 0, stream>>>(router, num_tokens, num_experts, k, renorm, topk_ids, topk_w);
  BATON_LAUNCH_CHECK();
}

void launch_moe_grouped_topk(const float* router, const float* bias, int num_tokens, const GroupedTopkDevArgs& a,
                             int32_t* topk_ids, float* topk_w, cudaStream_t stream) {
  if (num_tokens == 0) return;
  BATON_CHECK(a.num_experts <= kMaxExperts && a.top_k <= 32 && a.n_group >= 1 && a.n_group <= 32 &&
                  a.num_experts % a.n_group == 0 && a.topk_group >= 1 && a.topk_group <= a.n_group &&
                  a.top_k <= a.topk_group * (a.num_experts / a.n_group),
              "moe: {} experts in {} groups, top-{} of {} groups", a.num_experts, a.n_group, a.top_k, a.topk_group);
  const int blocks = (num_tokens * 32 + 255) / 256;
  moe_grouped_topk_kernel<<<blocks, 256, 0, stream>>>(router, bias, num_tokens, a, topk_ids, topk_w);
  BATON_LAUNCH_CHECK();
}

void launch_moe_route(const float* router, int num_tokens, int total_experts, int k, bool renorm, int expert_begin,
                      int num_experts, int32_t* topk_ids, float* topk_w, int32_t* offsets, int32_t* sorted_slots,
                      int32_t* slot_pos, cudaStream_t stream, int32_t* runs) {
  if (num_tokens == 0) return;
  if (num_tokens > kMoeRouteOneBlockTokens) {
    BATON_CHECK(runs == nullptr, "moe route: runs at {} tokens", num_tokens);
    launch_moe_topk(router, num_tokens, total_experts, k, renorm, topk_ids, topk_w, stream);
    launch_moe_align_local(topk_ids, num_tokens * k, expert_begin, num_experts, offsets, sorted_slots, slot_pos,
                           stream);
    return;
  }
  BATON_CHECK(total_experts <= kMaxExperts && k <= 32 && k <= total_experts && num_experts <= total_experts,
              "moe: {} experts top-{} ({} local)", total_experts, k, num_experts);
  launch_pdl(moe_route_kernel, 1, 32 * kMoeRouteOneBlockTokens, 0, stream, router, num_tokens, total_experts, k, renorm,
             expert_begin, num_experts, topk_ids, topk_w, offsets, sorted_slots, slot_pos, runs);
  BATON_LAUNCH_CHECK();
}

void launch_moe_align(const int32_t* topk_ids, int num_slots, int num_experts, int32_t* offsets, int32_t* sorted_slots,
                      int32_t* slot_pos, cudaStream_t stream) {
  launch_moe_align_local(topk_ids, num_slots, 0, num_experts, offsets, sorted_slots, slot_pos, stream);
}

void launch_moe_align_local(const int32_t* topk_ids, int num_slots, int expert_begin, int num_experts, int32_t* offsets,
                            int32_t* sorted_slots, int32_t* slot_pos, cudaStream_t stream) {
  BATON_CHECK(num_experts <= kMaxExperts, "moe: {} experts", num_experts);
  // One block for decode and short prompts, several for long prefills.
  if (num_slots <= kAlignOneBlockMax) {
    launch_pdl(moe_align_kernel, 1, 1024, 0, stream, topk_ids, num_slots, num_experts, expert_begin, offsets,
               sorted_slots, slot_pos);
    BATON_LAUNCH_CHECK();
    return;
  }
  const int blocks = (num_slots + kAlignChunk - 1) / kAlignChunk;
  BATON_CUDA_CHECK(cudaMemsetAsync(offsets, 0, sizeof(int32_t) * (num_experts + 1), stream));
  moe_count_kernel<<<blocks, kAlignThreads, 0, stream>>>(topk_ids, num_slots, num_experts, expert_begin, offsets);
  BATON_LAUNCH_CHECK();
  moe_count_prefix_kernel<<<1, 32, 0, stream>>>(offsets, num_experts);
  BATON_LAUNCH_CHECK();
  moe_scatter_kernel<<<blocks, kAlignThreads, 0, stream>>>(topk_ids, num_slots, num_experts, expert_begin, offsets,
                                                           sorted_slots, slot_pos);
  BATON_LAUNCH_CHECK();
}

}  // namespace baton::cuda
