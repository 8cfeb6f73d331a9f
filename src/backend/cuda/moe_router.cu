// Decode's router and routing in one launch: the router's logits (after the
// post-attention norm, when the norm is fused in), the softmax top-k and the
// sort of the slots by expert, for at most kMoeRouteOneBlockTokens tokens.
// The routing kernels for more tokens are in moe_routing.cu.
#include <cooperative_groups.h>

#include <utility>

#include "backend/cuda/cuda_common.h"
#include "backend/cuda/device_utils.cuh"
#include "backend/cuda/gemv.cuh"
#include "backend/cuda/kernels.h"
#include "backend/cuda/moe_route_device.cuh"
#include "backend/cuda/moe_tiles.cuh"

namespace baton::cuda {
namespace {

// Decode's router and routing in one launch, for 2 to kMoeRouteOneBlockTokens
// tokens (and one where the cluster below cannot run): block e computes expert e's router logit for all M tokens (its
// threads split the row's 8-column chunks, then sum over the block); the last
// block to finish (count: zero before and after) then routes and sorts as
// moe_route_kernel does. The row's first chunks are read before pdl_wait: the
// router weights do not depend on the kernel before, so their loads overlap
// its tail, and the block's own chain is one load of the activations and a
// block sum. kNormIn: x is not read but made, x = rmsnorm(in.residual) *
// in.weight (the norm-in GEMV's rows, in dynamic shared memory), each block
// writing its share of it to `normed` for the experts' GEMVs. On an H200
// (Qwen3-30B-A3B, 3 runs a side in one call) the step went 3.286 -> 3.251 ms
// at batch 1 and 4.299 -> 4.195 at batch 2 (medians) against 2 experts a warp
// over 8 blocks. One token takes moe_router_cluster_kernel below.
constexpr int kRouterThreads = 32 * skinny::kWarpsPerBlock;
constexpr int kRouterPreloadChunks = 2;  // a thread's chunks read before pdl_wait: hidden <= 4096 at once

// warp_topk for one token by the whole block, the same ids and weights: warp
// 0 makes the softmax terms (from the block's shared logits), then each thread ranks an expert by
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
    const float sum = warp_softmax_terms<false>(logits, num_experts, v);
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
  const int tkn = threadIdx.x >> 5;
  if (tkn < M)
    warp_topk<true>(logits + static_cast<int64_t>(tkn) * total_experts, total_experts, k, renorm, ids + tkn * k,
                    w + tkn * k);
  __syncthreads();
  block_align(ids, M * k, num_experts, expert_begin, offsets, sorted_slots, slot_pos, s_count, s_cursor, runs);
}

// One token's router and routing in one launch, by one thread-block cluster
// of kRouterClusterBlocks blocks. Block r takes the r-th share of the experts,
// a warp an expert at a time, and each warp reads its first expert's row
// before pdl_wait (kRouterClusterPreChunks chunks a lane: all of it up to
// hidden 2048), as each thread does its first columns of the norm's weight
// (kNormIn). Every block makes the normed row itself and writes its share of
// it to `normed`; each logit goes straight into block 0's shared memory
// (distributed shared memory), and after the cluster's barrier block 0 ranks
// (block_topk_one) and sorts. The kernel above takes a round trip of the
// logits through global memory, a fence, an atomic and the last block's
// count on the step's path instead. On an H100 (Qwen3-30B-A3B, session 32,
// 5 runs a side in one call) the step at one token ran 0.987 of that
// kernel's (3.280 -> 3.238 ms), and 0.992 of that with the norm's weight read
// early (that call's block-per-expert router: 0.992); level at 2 tokens.
constexpr int kRouterClusterBlocks = 8, kRouterClusterThreads = 512;
constexpr int kRouterClusterPreChunks = 8;

template <bool kNormIn>
__global__ void __cluster_dims__(kRouterClusterBlocks, 1, 1) __launch_bounds__(kRouterClusterThreads)
    moe_router_cluster_kernel(skinny::NormIn in, const bf16* x, bf16* normed, const bf16* router_w, int hidden,
                              int total_experts, int k, bool renorm, int expert_begin, int num_experts, float* logits,
                              int32_t* ids, float* w, int32_t* offsets, int32_t* sorted_slots, int32_t* slot_pos,
                              int32_t* runs) {
  namespace cg = cooperative_groups;
  const cg::cluster_group cluster = cg::this_cluster();
  // Block 0's shared memory takes the others' writes only once every block
  // of the cluster has started: this arrival's wait comes before them.
  auto started = cluster.barrier_arrive();
  constexpr int kWarps = kRouterClusterThreads / 32;
  const int rank = static_cast<int>(cluster.block_rank());
  const int per_block = (total_experts + kRouterClusterBlocks - 1) / kRouterClusterBlocks;
  const int e_first = rank * per_block + (threadIdx.x >> 5), e_end = min(total_experts, (rank + 1) * per_block);
  const int lane = threadIdx.x & 31, chunks = hidden / 8;
  uint4 w_pre[kRouterClusterPreChunks];
  if (e_first < e_end) {
    const uint4* row = reinterpret_cast<const uint4*>(router_w + static_cast<int64_t>(e_first) * hidden);
#pragma unroll
    for (int j = 0; j < kRouterClusterPreChunks; ++j)
      if (lane + 32 * j < chunks) w_pre[j] = row[lane + 32 * j];
  }
  skinny::NormWeightEarly norm_pre;
  if constexpr (kNormIn) skinny::load_norm_weight_early<kRouterClusterThreads>(in, hidden, norm_pre);
  pdl_wait();
  __shared__ float s_logits[kMaxExperts];
  __shared__ int32_t s_count[kMaxExperts + 1];
  __shared__ int32_t s_cursor[kMaxExperts];
  extern __shared__ uint4 xs_chunks[];
  const uint4* x_row = reinterpret_cast<const uint4*>(x);
  if constexpr (kNormIn) {
    skinny::norm_rows<1, kRouterClusterThreads, true>(in, hidden, reinterpret_cast<bf16*>(xs_chunks), norm_pre);
    const int share = (chunks + kRouterClusterBlocks - 1) / kRouterClusterBlocks;
    const int end = min(chunks, (rank + 1) * share);
    for (int c = rank * share + threadIdx.x; c < end; c += blockDim.x)
      reinterpret_cast<uint4*>(normed)[c] = xs_chunks[c];
    x_row = xs_chunks;
  }
  float* block0_logits = cluster.map_shared_rank(s_logits, 0);
  cluster.barrier_wait(std::move(started));
  for (int e = e_first; e < e_end; e += kWarps) {
    const uint4* row = reinterpret_cast<const uint4*>(router_w + static_cast<int64_t>(e) * hidden);
    float acc = 0.0f;
    int c = lane;
    if (e == e_first) {
#pragma unroll
      for (int j = 0; j < kRouterClusterPreChunks; ++j, c += 32)
        if (c < chunks) skinny::fma8(acc, w_pre[j], x_row[c]);
    }
    for (; c < chunks; c += 32) skinny::fma8(acc, row[c], x_row[c]);
    acc = warp_sum(acc);
    if (lane == 0) block0_logits[e] = acc;
  }
  cluster.sync();  // block 0's logits are complete and visible to it
  if (rank != 0) return;
  for (int e = threadIdx.x; e < total_experts; e += blockDim.x) logits[e] = s_logits[e];
  block_topk_one(s_logits, total_experts, k, renorm, ids, w);
  block_align(ids, k, num_experts, expert_begin, offsets, sorted_slots, slot_pos, s_count, s_cursor, runs);
}

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

// Both forms of the router kernels (one token's cluster where `cluster`
// says it may run, else a block an expert): `in` null, x is the router's
// input; else the kernel makes it from `in` and writes it to normed.
void router_route(const GemvNormIn* in, const bf16* x, bf16* normed, const bf16* router_w, int num_tokens, int hidden,
                  int total_experts, int k, bool renorm, int expert_begin, int num_experts, float* logits,
                  int32_t* count, int32_t* topk_ids, float* topk_w, int32_t* offsets, int32_t* sorted_slots,
                  int32_t* slot_pos, int32_t* runs, bool cluster, cudaStream_t stream) {
  const skinny::NormIn ni = in ? skinny::NormIn{in->residual, in->weight, in->eps} : skinny::NormIn{};
  const size_t smem = in ? static_cast<size_t>(num_tokens) * hidden * sizeof(bf16) : 0;
  if (num_tokens == 1 && cluster) {
    auto cluster_launch = [&](auto kernel) {
      launch_pdl(kernel, dim3(kRouterClusterBlocks), dim3(kRouterClusterThreads), smem, stream, ni, x, normed, router_w,
                 hidden, total_experts, k, renorm, expert_begin, num_experts, logits, topk_ids, topk_w, offsets,
                 sorted_slots, slot_pos, runs);
    };
    if (in) cluster_launch(moe_router_cluster_kernel<true>);
    else cluster_launch(moe_router_cluster_kernel<false>);
    BATON_LAUNCH_CHECK();
    return;
  }
  const dim3 grid(total_experts), block(kRouterThreads);
  auto launch = [&](auto kernel) {
    launch_pdl(kernel, grid, block, smem, stream, ni, x, normed, router_w, hidden, total_experts, k, renorm,
               expert_begin, num_experts, logits, count, topk_ids, topk_w, offsets, sorted_slots, slot_pos, runs);
  };
  if (in) for_tokens<true>(num_tokens, launch);
  else for_tokens<false>(num_tokens, launch);
  BATON_LAUNCH_CHECK();
}

}  // namespace

bool moe_router_cluster_fits(int hidden, bool norm_in) {
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(kRouterClusterBlocks);
  config.blockDim = dim3(kRouterClusterThreads);
  config.dynamicSmemBytes = norm_in ? static_cast<size_t>(hidden) * sizeof(bf16) : 0;
  int clusters = 0;
  const cudaError_t e = norm_in ? cudaOccupancyMaxActiveClusters(&clusters, moe_router_cluster_kernel<true>, &config)
                                : cudaOccupancyMaxActiveClusters(&clusters, moe_router_cluster_kernel<false>, &config);
  if (e != cudaSuccess) cudaGetLastError();  // an answer of no, not a sticky error for the next launch's check
  return e == cudaSuccess && clusters > 0;
}

bool moe_router_route_supports(int num_tokens, int hidden, int total_experts, int k) {
  return num_tokens >= 1 && num_tokens <= kMoeRouteOneBlockTokens && hidden % 8 == 0 && total_experts <= kMaxExperts &&
         k <= 32 && k <= total_experts;
}

bool moe_norm_router_route_supports(int num_tokens, int hidden, int total_experts, int k) {
  return moe_router_route_supports(num_tokens, hidden, total_experts, k) &&
         static_cast<int64_t>(num_tokens) * hidden * 2 <= skinny::kNormInMaxSmemBytes;
}

void launch_moe_router_route(const bf16* x, const bf16* router_w, int num_tokens, int hidden, int total_experts, int k,
                             bool renorm, int expert_begin, int num_experts, float* logits, int32_t* count,
                             int32_t* topk_ids, float* topk_w, int32_t* offsets, int32_t* sorted_slots,
                             int32_t* slot_pos, cudaStream_t stream, int32_t* runs, bool one_token_cluster) {
  BATON_CHECK(moe_router_route_supports(num_tokens, hidden, total_experts, k) && num_experts <= total_experts,
              "moe router: {} tokens, hidden {}, {} experts top-{}", num_tokens, hidden, total_experts, k);
  router_route(nullptr, x, nullptr, router_w, num_tokens, hidden, total_experts, k, renorm, expert_begin, num_experts,
               logits, count, topk_ids, topk_w, offsets, sorted_slots, slot_pos, runs, one_token_cluster, stream);
}

void launch_moe_norm_router_route(const GemvNormIn& in, bf16* normed, const bf16* router_w, int num_tokens, int hidden,
                                  int total_experts, int k, bool renorm, int expert_begin, int num_experts,
                                  float* logits, int32_t* count, int32_t* topk_ids, float* topk_w, int32_t* offsets,
                                  int32_t* sorted_slots, int32_t* slot_pos, cudaStream_t stream, int32_t* runs,
                                  bool one_token_cluster) {
  BATON_CHECK(moe_norm_router_route_supports(num_tokens, hidden, total_experts, k) && num_experts <= total_experts,
              "moe norm-in router: {} tokens, hidden {}, {} experts top-{}", num_tokens, hidden, total_experts, k);
  router_route(&in, nullptr, normed, router_w, num_tokens, hidden, total_experts, k, renorm, expert_begin, num_experts,
               logits, count, topk_ids, topk_w, offsets, sorted_slots, slot_pos, runs, one_token_cluster, stream);
}

}  // namespace baton::cuda
