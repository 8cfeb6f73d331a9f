// Mixture-of-experts routing: the router's softmax top-k (and DeepSeek-V3's
// grouped form), the sort of (token, expert) slots by expert whose offsets
// stay on the device (so the step needs no host sync and can be captured in a
// CUDA graph), and decode's one-launch forms of both. The experts' GEMMs and
// the combine are in moe.cu.
#include "backend/cuda/cuda_common.h"
#include "backend/cuda/device_utils.cuh"
#include "backend/cuda/gemv.cuh"
#include "backend/cuda/kernels.h"
#include "backend/cuda/moe_local_experts.h"
#include "backend/cuda/moe_tiles.cuh"

namespace baton::cuda {
namespace {

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

// Experts [expert_begin, expert_begin + num_experts) are this rank's (all of
// them without expert parallelism); a slot routed elsewhere gets slot_pos -1
// and no sorted row. One block; count and cursor: shared [num_experts + 1].
//
// runs (when not null, [num_slots]; kernels.h's kMoeRunRowsShift): the first
// sorted position of expert e's c rows holds e | c << 16, every other
// position -1, so a kernel over positions finds its expert and rows in one
// load.
__device__ void block_align(const int32_t* ids, int num_slots, int num_experts, int expert_begin, int32_t* offsets,
                            int32_t* sorted_slots, int32_t* slot_pos, int32_t* count, int32_t* cursor,
                            int32_t* runs = nullptr) {
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

// Decode's router and routing in one launch: block e computes expert e's
// router logit for all M tokens (its threads split the row's 8-column chunks,
// then sum over the block); the last block to finish (count: zero before and
// after) then routes and sorts as moe_route_kernel does. The row's first
// chunks are read before pdl_wait: the router weights do not depend on the
// kernel before, so their loads overlap its tail, and the block's own chain
// is one load of the activations and a block sum. kNormIn: x is not read but
// made, x = rmsnorm(in.residual) * in.weight (the norm-in GEMV's rows, in
// dynamic shared memory), each block writing its share of it to `normed` for
// the experts' GEMVs. On an H200 (Qwen3-30B-A3B, 3 runs a side in one call)
// the step went 3.286 -> 3.251 ms at batch 1 and 4.299 -> 4.195 at batch 2
// (medians) against 2 experts a warp over 8 blocks.
constexpr int kRouterThreads = 32 * skinny::kWarpsPerBlock;
constexpr int kRouterPreloadChunks = 2;  // a thread's chunks read before pdl_wait: hidden <= 4096 at once

// warp_topk for one token by the whole block, the same ids and weights: warp
// 0 makes the softmax terms (kCg reads), then each thread ranks an expert by
// its term (higher, then the lower expert, first) against all the others,
// and the k ranked first are the picks: one pass, where warp_topk takes k
// rounds of a warp's argmax. A block barrier follows, so ids are the block's
// to read. On an H100 (Qwen3-30B-A3B, session 30) the step at one token ran
// 0.986 of warp_topk's; for 2 and 8 tokens (a token's ranks over 128 or 256
// threads) 1.006 and 1.021, so those keep warp_topk.
__device__ __forceinline__ void block_topk_one(const float* logits, int num_experts, int k, bool renorm, int32_t* ids,
                                               float* w) {
  constexpr int kPer = kMaxExperts / 32;
  __shared__ __align__(16) float s_terms[kMaxExperts];
  __shared__ float s_sum;
  __shared__ float s_pick[32];
  const int lane = threadIdx.x & 31;
  if (threadIdx.x < 32) {
    float v[kPer];
    const float sum = warp_softmax_terms<true>(logits, num_experts, v);
#pragma unroll
    for (int j = 0; j < kPer; ++j) {
      const int e = lane + 32 * j;
      // A NaN term ranks as padding does (below every term), so the ranks
      // stay a permutation and each of ids[0, k) is written once.
      if (e < num_experts) s_terms[e] = v[j] >= 0.0f ? v[j] : -1.0f;
    }
    if (lane < 3 && num_experts + lane < kMaxExperts) s_terms[num_experts + lane] = -2.0f;  // padding to 4
    if (lane == 0) s_sum = sum;
  }
  __syncthreads();
  const int quads = (num_experts + 3) / 4;
  const float4* terms4 = reinterpret_cast<const float4*>(s_terms);
  for (int e = threadIdx.x; e < num_experts; e += blockDim.x) {
    const float v = s_terms[e];
    int rank = 0;
    for (int q = 0; q < quads; ++q) {
      const float4 o = terms4[q];
      const int j = 4 * q;
      rank += (o.x > v || (o.x == v && j < e)) + (o.y > v || (o.y == v && j + 1 < e)) +
              (o.z > v || (o.z == v && j + 2 < e)) + (o.w > v || (o.w == v && j + 3 < e));
    }
    if (rank < k) {
      ids[rank] = e;
      s_pick[rank] = v / s_sum;
    }
  }
  __syncthreads();
  if (threadIdx.x == 0) {  // warp_topk's weights, summed in its order
    float picked_sum = 0.0f;
    for (int c = 0; c < k; ++c) picked_sum += s_pick[c];
    for (int c = 0; c < k; ++c) w[c] = renorm ? s_pick[c] / picked_sum : s_pick[c];
  }
  __syncthreads();
}

template <int M>
__device__ __forceinline__ void router_fma(float (&acc)[M], const uint4& w, const uint4* const (&x_rows)[M], int c) {
#pragma unroll
  for (int m = 0; m < M; ++m) skinny::fma8(acc[m], w, x_rows[m][c]);
}

template <int M, bool kNormIn>
__global__ void __launch_bounds__(kRouterThreads)
    moe_router_route_kernel(skinny::NormIn in, const bf16* x, bf16* normed, const bf16* router_w, int hidden,
                            int total_experts, int k, bool renorm, int expert_begin, int num_experts, float* logits,
                            int32_t* count, int32_t* ids, float* w, int32_t* offsets, int32_t* sorted_slots,
                            int32_t* slot_pos, int32_t* runs) {
  static_assert(M <= skinny::kWarpsPerBlock, "a warp per token routes");
  const int chunks = hidden / 8, expert = blockIdx.x;
  const uint4* w_row = reinterpret_cast<const uint4*>(router_w + static_cast<int64_t>(expert) * hidden);
  uint4 w_pre[kRouterPreloadChunks];
#pragma unroll
  for (int j = 0; j < kRouterPreloadChunks; ++j) {
    const int c = threadIdx.x + j * kRouterThreads;
    if (c < chunks) w_pre[j] = w_row[c];
  }
  pdl_wait();
  __shared__ int32_t s_count[kMaxExperts + 1];
  __shared__ int32_t s_cursor[kMaxExperts];
  __shared__ float s_partial[M][skinny::kWarpsPerBlock];
  __shared__ int s_last;
  extern __shared__ uint4 xs_chunks[];
  const uint4* x_rows[M];
  if constexpr (kNormIn) {
    bf16* xs = reinterpret_cast<bf16*>(xs_chunks);
    skinny::norm_rows<M, kRouterThreads>(in, hidden, xs);
    const int total = M * chunks, share = (total + gridDim.x - 1) / gridDim.x;
    const int end = min(total, (static_cast<int>(blockIdx.x) + 1) * share);
    for (int c = blockIdx.x * share + threadIdx.x; c < end; c += blockDim.x)
      reinterpret_cast<uint4*>(normed)[c] = xs_chunks[c];
#pragma unroll
    for (int m = 0; m < M; ++m) x_rows[m] = xs_chunks + m * chunks;
  } else {
#pragma unroll
    for (int m = 0; m < M; ++m) x_rows[m] = reinterpret_cast<const uint4*>(x) + m * chunks;
  }
  float acc[M];
#pragma unroll
  for (int m = 0; m < M; ++m) acc[m] = 0.0f;
#pragma unroll
  for (int j = 0; j < kRouterPreloadChunks; ++j) {
    const int c = threadIdx.x + j * kRouterThreads;
    if (c < chunks) router_fma(acc, w_pre[j], x_rows, c);
  }
  for (int c = threadIdx.x + kRouterPreloadChunks * kRouterThreads; c < chunks; c += kRouterThreads)
    router_fma(acc, w_row[c], x_rows, c);
  // The M sums over the block behind one barrier (block_sum, device_utils.cuh,
  // would take two barriers a token on the experts' chain).
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int m = 0; m < M; ++m) {
    const float v = warp_sum(acc[m]);
    if (lane == 0) s_partial[m][warp] = v;
  }
  __syncthreads();
  if (threadIdx.x < M) {
    float sum = 0.0f;
#pragma unroll
    for (int j = 0; j < skinny::kWarpsPerBlock; ++j) sum += s_partial[threadIdx.x][j];
    logits[static_cast<int64_t>(threadIdx.x) * total_experts + expert] = sum;
  }
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) {
    s_last = atomicAdd(count, 1) == static_cast<int>(gridDim.x) - 1;
    if (s_last) *count = 0;  // every block of this launch has counted: ready for the next
  }
  __syncthreads();
  if (!s_last) return;
  __threadfence();
  if constexpr (M == 1) {
    block_topk_one(logits, total_experts, k, renorm, ids, w);
  } else {
    const int tkn = threadIdx.x >> 5;
    if (tkn < M)
      warp_topk<true>(logits + static_cast<int64_t>(tkn) * total_experts, total_experts, k, renorm, ids + tkn * k,
                      w + tkn * k);
    __syncthreads();
  }
  block_align(ids, M * k, num_experts, expert_begin, offsets, sorted_slots, slot_pos, s_count, s_cursor, runs);
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

bool moe_router_route_supports(int num_tokens, int hidden, int total_experts, int k) {
  return num_tokens >= 1 && num_tokens <= kMoeRouteOneBlockTokens && hidden % 8 == 0 && total_experts <= kMaxExperts &&
         k <= 32 && k <= total_experts;
}

bool moe_norm_router_route_supports(int num_tokens, int hidden, int total_experts, int k) {
  return moe_router_route_supports(num_tokens, hidden, total_experts, k) &&
         static_cast<int64_t>(num_tokens) * hidden * 2 <= skinny::kNormInMaxSmemBytes;
}

namespace {

// launch(moe_router_route_kernel<M, kNormIn>) for M = num_tokens.
template <bool kNormIn, typename Launch>
void for_tokens(int num_tokens, const Launch& launch) {
  switch (num_tokens) {
    case 1: launch(moe_router_route_kernel<1, kNormIn>); break;
    case 2: launch(moe_router_route_kernel<2, kNormIn>); break;
    case 3: launch(moe_router_route_kernel<3, kNormIn>); break;
    case 4: launch(moe_router_route_kernel<4, kNormIn>); break;
    case 5: launch(moe_router_route_kernel<5, kNormIn>); break;
    case 6: launch(moe_router_route_kernel<6, kNormIn>); break;
    case 7: launch(moe_router_route_kernel<7, kNormIn>); break;
    default: launch(moe_router_route_kernel<8, kNormIn>); break;
  }
}

// Both forms of moe_router_route_kernel: `in` null, x is the router's input;
// else the kernel makes it from `in` and writes it to normed.
void router_route(const GemvNormIn* in, const bf16* x, bf16* normed, const bf16* router_w, int num_tokens, int hidden,
                  int total_experts, int k, bool renorm, int expert_begin, int num_experts, float* logits,
                  int32_t* count, int32_t* topk_ids, float* topk_w, int32_t* offsets, int32_t* sorted_slots,
                  int32_t* slot_pos, int32_t* runs, cudaStream_t stream) {
  const dim3 grid(total_experts), block(kRouterThreads);
  const skinny::NormIn ni = in ? skinny::NormIn{in->residual, in->weight, in->eps} : skinny::NormIn{};
  const size_t smem = in ? static_cast<size_t>(num_tokens) * hidden * sizeof(bf16) : 0;
  auto launch = [&](auto kernel) {
    launch_pdl(kernel, grid, block, smem, stream, ni, x, normed, router_w, hidden, total_experts, k, renorm,
               expert_begin, num_experts, logits, count, topk_ids, topk_w, offsets, sorted_slots, slot_pos, runs);
  };
  if (in) for_tokens<true>(num_tokens, launch);
  else for_tokens<false>(num_tokens, launch);
  BATON_LAUNCH_CHECK();
}

}  // namespace

void launch_moe_router_route(const bf16* x, const bf16* router_w, int num_tokens, int hidden, int total_experts, int k,
                             bool renorm, int expert_begin, int num_experts, float* logits, int32_t* count,
                             int32_t* topk_ids, float* topk_w, int32_t* offsets, int32_t* sorted_slots,
                             int32_t* slot_pos, cudaStream_t stream, int32_t* runs) {
  BATON_CHECK(moe_router_route_supports(num_tokens, hidden, total_experts, k) && num_experts <= total_experts,
              "moe router: {} tokens, hidden {}, {} experts top-{}", num_tokens, hidden, total_experts, k);
  router_route(nullptr, x, nullptr, router_w, num_tokens, hidden, total_experts, k, renorm, expert_begin, num_experts,
               logits, count, topk_ids, topk_w, offsets, sorted_slots, slot_pos, runs, stream);
}

void launch_moe_norm_router_route(const GemvNormIn& in, bf16* normed, const bf16* router_w, int num_tokens, int hidden,
                                  int total_experts, int k, bool renorm, int expert_begin, int num_experts,
                                  float* logits, int32_t* count, int32_t* topk_ids, float* topk_w, int32_t* offsets,
                                  int32_t* sorted_slots, int32_t* slot_pos, cudaStream_t stream, int32_t* runs) {
  BATON_CHECK(moe_norm_router_route_supports(num_tokens, hidden, total_experts, k) && num_experts <= total_experts,
              "moe norm-in router: {} tokens, hidden {}, {} experts top-{}", num_tokens, hidden, total_experts, k);
  router_route(&in, nullptr, normed, router_w, num_tokens, hidden, total_experts, k, renorm, expert_begin, num_experts,
               logits, count, topk_ids, topk_w, offsets, sorted_slots, slot_pos, runs, stream);
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
