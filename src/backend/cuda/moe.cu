// Mixture-of-experts kernels past the routing (moe_routing.cu): a grouped
// tensor-core GEMM over the experts' row ranges (their offsets stay on the
// device, so the step needs no host sync and can be captured in a CUDA graph),
// and the weighted combine (with the next layer's add_rmsnorm, or without).
#include <algorithm>

#include "backend/cuda/cuda_common.h"
#include "backend/cuda/device_utils.cuh"
#include "backend/cuda/kernels.h"
#include "backend/cuda/mma.cuh"
#include "backend/cuda/moe_tiles.cuh"

namespace baton::cuda {
namespace {

constexpr int kBK = 64, kPad = 8, kStagesG = 3;

__device__ __forceinline__ void cp_async16g(void* smem, const void* gmem, bool valid) {
  unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  int n = valid ? 16 : 0;  // 0: zero-fill
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(n));
}

// Two adjacent outputs; one 4-byte store where p is 4-byte aligned (with an
// odd n, every other row's pairs start at an odd element).
__device__ __forceinline__ void store2(bf16* p, float x, float y, bool both) {
  if (both && (reinterpret_cast<uintptr_t>(p) & 3) == 0) {
    *reinterpret_cast<uint32_t*>(p) = pack_bf16(x, y);
    return;
  }
  p[0] = __float2bfloat16(x);
  if (both) p[1] = __float2bfloat16(y);
}
__device__ __forceinline__ void store2(float* p, float x, float y, bool both) {
  p[0] = x;
  if (both) p[1] = y;
}

template <int BM, int BN>
struct GemmStage {
  bf16 a[BM][kBK + kPad];  // [row, k]
  bf16 b[BN][kBK + kPad];  // [n, k]
};

__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], const bf16* p) {
  unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(p));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(s));
}

// grid (ceil(n / BN), ceil(num_rows / BM) + E); warps of WM x WN; a 3-stage
// cp.async pipeline over 64-wide k tiles; fragments through ldmatrix.
// offsets == null: one expert over rows [0, num_rows) (the dense, row-invariant GEMM).
template <int BM, int BN, int WM, int WN, typename OutT>
__global__ void __launch_bounds__(32 * (BM / WM) * (BN / WN))
    grouped_gemm_kernel(const bf16* a, const int32_t* a_rows, int a_row_div, const bf16* w, const int32_t* offsets,
                        int num_experts, int num_rows, int n, int k, OutT* c) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  constexpr int kBM = BM, kBN = BN, kThreadsG = 32 * (BM / WM) * (BN / WN);
  constexpr int kMT = WM / 16, kNT = WN / 8;
  using Stage = GemmStage<BM, BN>;
  Stage* st = reinterpret_cast<Stage*>(smem_raw);
  __shared__ int s_tiles_before[kMaxExperts + 1];
  const ExpertTile tile = offsets == nullptr ? dense_tile(blockIdx.y, kBM, num_rows)
                                             : find_expert_tile(offsets, num_experts, blockIdx.y, kBM, s_tiles_before);
  const int expert = tile.expert;
  if (expert < 0) return;
  const int row0 = tile.row0, row_end = tile.row_end, n0 = blockIdx.x * kBN;
  const bf16* we = w + static_cast<int64_t>(expert) * n * k;  // [n, k]
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int wm = (warp / (BN / WN)) * WM, wn = (warp % (BN / WN)) * WN;
  float acc[kMT][kNT][4] = {};
  (void)g;
  (void)t;

  // Each thread copies kCA A and kCB B chunks of 16 bytes per k tile (rows x 8 chunks).
  constexpr int kCA = BM * 8 / kThreadsG, kCB = BN * 8 / kThreadsG;
  static_assert(kCA == kCB, "A and B chunk counts");
  const bf16* a_src[kCA];
  const bf16* b_src[kCA];
  bool a_ok[kCA], b_ok[kCA];
#pragma unroll
  for (int i = 0; i < kCA; ++i) {
    int chunk = threadIdx.x + kThreadsG * i, r = chunk / 8;
    int grow = row0 + r;
    a_ok[i] = grow < row_end;
    int arow = a_ok[i] ? (a_rows ? a_rows[grow] / a_row_div : grow) : 0;
    a_src[i] = a + static_cast<int64_t>(arow) * k + (chunk % 8) * 8;
    b_ok[i] = n0 + r < n;
    b_src[i] = we + static_cast<int64_t>(b_ok[i] ? n0 + r : 0) * k + (chunk % 8) * 8;
  }
  const int num_k = (k + kBK - 1) / kBK;
  auto issue = [&](int kt) {
    Stage& s = st[kt % kStagesG];
    const int k0 = kt * kBK;
#pragma unroll
    for (int i = 0; i < kCA; ++i) {
      int chunk = threadIdx.x + kThreadsG * i, r = chunk / 8, kc = (chunk % 8) * 8;
      bool kin = k0 + kc < k;
      cp_async16g(&s.a[r][kc], a_ok[i] && kin ? a_src[i] + k0 : a, a_ok[i] && kin);
      cp_async16g(&s.b[r][kc], b_ok[i] && kin ? b_src[i] + k0 : we, b_ok[i] && kin);
    }
  };
#pragma unroll
  for (int p = 0; p < kStagesG - 1; ++p) {
    if (p < num_k) issue(p);
    asm volatile("cp.async.commit_group;\n" ::);
  }
  for (int kt = 0; kt < num_k; ++kt) {
    if (kt + kStagesG - 1 < num_k) issue(kt + kStagesG - 1);
    asm volatile("cp.async.commit_group;\n" ::);
    asm volatile("cp.async.wait_group %0;\n" ::"n"(kStagesG - 1));
    __syncthreads();
    const Stage& s = st[kt % kStagesG];
#pragma unroll
    for (int kk = 0; kk < kBK / 16; ++kk) {
      uint32_t af[kMT][4];
#pragma unroll
      for (int mi = 0; mi < kMT; ++mi) ldsm_x4(af[mi], &s.a[wm + mi * 16 + (lane & 15)][kk * 16 + (lane >> 4) * 8]);
#pragma unroll
      for (int ni = 0; ni < kNT; ni += 2) {
        uint32_t bfr[4];  // b0, b1 of n groups ni and ni + 1
        ldsm_x4(bfr, &s.b[wn + ni * 8 + (lane & 7) + ((lane >> 4) << 3)][kk * 16 + ((lane >> 3) & 1) * 8]);
#pragma unroll
        for (int mi = 0; mi < kMT; ++mi) {
          mma_bf16_16816(acc[mi][ni], af[mi], bfr[0], bfr[1]);
          mma_bf16_16816(acc[mi][ni + 1], af[mi], bfr[2], bfr[3]);
        }
      }
    }
    __syncthreads();
  }
  const int g2 = lane >> 2, t2 = lane & 3;
#pragma unroll
  for (int mi = 0; mi < kMT; ++mi) {
#pragma unroll
    for (int ni = 0; ni < kNT; ++ni) {
      int col = n0 + wn + ni * 8 + 2 * t2;
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        int row = row0 + wm + mi * 16 + g2 + 8 * h;
        if (row < row_end && col < n)
          store2(c + static_cast<int64_t>(row) * n + col, acc[mi][ni][2 * h], acc[mi][ni][2 * h + 1], col + 1 < n);
      }
    }
  }
}

template <int BM, int BN, int WM, int WN, typename OutT>
void launch_tiles(const bf16* a, const int32_t* a_rows, int a_row_div, const bf16* w, const int32_t* offsets,
                  int num_experts, int num_rows, int n, int k, OutT* c, cudaStream_t stream) {
  constexpr size_t smem = kStagesG * sizeof(GemmStage<BM, BN>);
  constexpr int threads = 32 * (BM / WM) * (BN / WN);
  set_dynamic_smem(reinterpret_cast<const void*>(grouped_gemm_kernel<BM, BN, WM, WN, OutT>), smem, stream);
  // Non-empty tiles: at most ceil(rows / BM) + E, and at most one per row.
  const int tiles = offsets ? std::min((num_rows + BM - 1) / BM + num_experts, num_rows) : (num_rows + BM - 1) / BM;
  dim3 grid((n + BN - 1) / BN, tiles);
  grouped_gemm_kernel<BM, BN, WM, WN, OutT>
      <<<grid, threads, smem, stream>>>(a, a_rows, a_row_div, w, offsets, num_experts, num_rows, n, k, c);
}

// Token tkn's slots (position of each expert row, its weight) into shared memory.
__device__ __forceinline__ void stage_slots(const int32_t* slot_pos, const float* topk_w, int tkn, int k,
                                            int32_t* s_pos, float* s_w) {
  if (threadIdx.x < k) {
    s_pos[threadIdx.x] = slot_pos[tkn * k + threadIdx.x];
    s_w[threadIdx.x] = topk_w[tkn * k + threadIdx.x];
  }
  __syncthreads();
}

// Columns [c, c + 8) of a token's combined row: sum_j w_j eo[s_pos[j]] (+ add),
// each rounded to bf16. The expert rows load kCombineRowsInFlight at a time,
// all before the first add (the sums' order is j's): decode's combine is one
// block for its token, so each load's latency is on the step's path.
constexpr int kCombineRowsInFlight = 8;
__device__ __forceinline__ void combined_cols(const bf16* eo, const int32_t* s_pos, const float* s_w, int k, int hidden,
                                              const bf16* add_row, int c, bf16 (&y)[8]) {
  float acc[8] = {};
  for (int j0 = 0; j0 < k; j0 += kCombineRowsInFlight) {
    uint4 v[kCombineRowsInFlight];
#pragma unroll
    for (int b = 0; b < kCombineRowsInFlight; ++b) {
      const int j = j0 + b;
      // s_pos < 0: an expert of another rank (expert parallel), no row.
      v[b] = j < k && s_pos[j] >= 0 ? *reinterpret_cast<const uint4*>(eo + static_cast<int64_t>(s_pos[j]) * hidden + c)
                                    : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int b = 0; b < kCombineRowsInFlight; ++b) {
      const int j = j0 + b;
      if (j >= k || s_pos[j] < 0) continue;
      const bf16* x = reinterpret_cast<const bf16*>(&v[b]);
#pragma unroll
      for (int i = 0; i < 8; ++i) acc[i] += bf(x[i]) * s_w[j];
    }
  }
#pragma unroll
  for (int i = 0; i < 8; ++i) y[i] = __float2bfloat16(add_row ? acc[i] + bf(add_row[c + i]) : acc[i]);
}

// One block per token: out = sum_j w_j expert_out[slot_pos[j]] (+ add), 8
// columns (16 bytes) a thread (hidden % 8 == 0, as the grouped GEMMs need).
__global__ void moe_combine_kernel(const bf16* eo, const int32_t* slot_pos, const float* topk_w, int k, int hidden,
                                   const bf16* add, bf16* out) {
  pdl_wait();
  const int tkn = blockIdx.x;
  __shared__ int32_t s_pos[32];  // k <= 32 (the top-k launch's check)
  __shared__ float s_w[32];
  stage_slots(slot_pos, topk_w, tkn, k, s_pos, s_w);
  bf16* o = out + static_cast<int64_t>(tkn) * hidden;
  const bf16* a = add ? add + static_cast<int64_t>(tkn) * hidden : nullptr;
  for (int c = 8 * threadIdx.x; c < hidden; c += 8 * blockDim.x) {
    uint4 r;
    combined_cols(eo, s_pos, s_w, k, hidden, a, c, *reinterpret_cast<bf16(*)[8]>(&r));
    *reinterpret_cast<uint4*>(o + c) = r;
  }
}

// The combine and the next layer's add_rmsnorm in one block per token: the
// token's combined row (rounded to bf16, as moe_combine_kernel stores it) is
// added to residual (fp32), which is written back, and normed = rmsnorm(residual)
// * w, as add_rmsnorm_kernel computes it. The combined row stays in shared
// memory: one launch and one [T, hidden] round trip fewer a MoE layer.
__global__ void moe_combine_norm_kernel(const bf16* eo, const int32_t* slot_pos, const float* topk_w, int k, int hidden,
                                        const bf16* add, float* residual, const bf16* w, float eps, bf16* normed,
                                        bool inputs_before_wait) {
  extern __shared__ float xs[];  // [hidden]: residual + combined row
  __shared__ int32_t s_pos[32];
  __shared__ float s_w[32];
  __shared__ float scratch[32];
  const int tkn = blockIdx.x;
  float* res = residual + static_cast<int64_t>(tkn) * hidden;
  // inputs_before_wait: the slots and the thread's first residual columns
  // are read before the wait (launch_moe_combine_norm). On an H100
  // (Qwen3-30B-A3B, session 30, with the down projection's runs read early
  // too) the step ran 0.990, 0.989 and 0.998 of main's at 1, 2 and 8 tokens;
  // the slots alone 0.992-1.000, the runs alone 0.997-1.000. The norm's
  // weight (a weight: never written by the step) is read there always: its
  // first columns of the thread (H100, session 32: 0.995 at 1 token, 0.997 at
  // 2).
  float4 pre0 = {}, pre1 = {};
  const int c0 = 8 * threadIdx.x;
  const uint4 w_pre = c0 < hidden ? *reinterpret_cast<const uint4*>(w + c0) : uint4{};
  if (inputs_before_wait) {
    stage_slots(slot_pos, topk_w, tkn, k, s_pos, s_w);
    if (c0 < hidden) {
      pre0 = reinterpret_cast<const float4*>(res + c0)[0];
      pre1 = reinterpret_cast<const float4*>(res + c0)[1];
    }
  }
  pdl_wait();
  if (!inputs_before_wait) stage_slots(slot_pos, topk_w, tkn, k, s_pos, s_w);
  const bf16* a = add ? add + static_cast<int64_t>(tkn) * hidden : nullptr;
  float ss = 0.0f;
  for (int c = c0; c < hidden; c += 8 * blockDim.x) {
    bf16 y[8];
    combined_cols(eo, s_pos, s_w, k, hidden, a, c, y);
    const bool pre = inputs_before_wait && c == c0;
    const float4 r0 = pre ? pre0 : reinterpret_cast<const float4*>(res + c)[0],
                 r1 = pre ? pre1 : reinterpret_cast<const float4*>(res + c)[1];
    float x[8] = {r0.x, r0.y, r0.z, r0.w, r1.x, r1.y, r1.z, r1.w};
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      x[i] += bf(y[i]);
      ss += x[i] * x[i];
    }
    const float4 x0 = make_float4(x[0], x[1], x[2], x[3]), x1 = make_float4(x[4], x[5], x[6], x[7]);
    reinterpret_cast<float4*>(res + c)[0] = x0;
    reinterpret_cast<float4*>(res + c)[1] = x1;
    reinterpret_cast<float4*>(xs + c)[0] = x0;
    reinterpret_cast<float4*>(xs + c)[1] = x1;
  }
  ss = block_sum(ss, scratch);
  const float inv = rsqrtf(ss / hidden + eps);
  bf16* o = normed + static_cast<int64_t>(tkn) * hidden;
  for (int c = 8 * threadIdx.x; c < hidden; c += 8 * blockDim.x) {
    const uint4 wv = c == c0 ? w_pre : *reinterpret_cast<const uint4*>(w + c);
    const bf16* wb = reinterpret_cast<const bf16*>(&wv);
    uint4 out;
    bf16* ob = reinterpret_cast<bf16*>(&out);
#pragma unroll
    for (int i = 0; i < 8; ++i) ob[i] = __float2bfloat16(bf(wb[i]) * (xs[c + i] * inv));
    *reinterpret_cast<uint4*>(o + c) = out;
  }
}

}  // namespace

void launch_grouped_gemm(const GroupedGemmArgs& g, bool row_invariant, cudaStream_t stream) {
  if (g.num_rows == 0) return;
  BATON_CHECK(g.k % 8 == 0, "grouped gemm: k {} not a multiple of 8", g.k);
  // The wgmma kernel wherever it may run: on an H200 (Qwen3-30B-A3B's experts)
  // it beat these tiles from 16 tokens (a few rows an expert: it streams the
  // weights by TMA at copy bandwidth) to 8K (539 against 228 TFLOP/s).
  if (!row_invariant && grouped_gemm_wgmma_fits(g.n, g.k, g.num_experts)) {
    launch_grouped_gemm_wgmma(g, g.n > 128 ? 256 : 128, stream);
    return;
  }
  BATON_CHECK(!g.gated, "grouped gemm: the gated form runs on the wgmma kernel only (n {}, k {})", g.n, g.k);
  // Many rows per expert: 128 x 128 tiles of 8 warps; else 64 x 64.
  if (g.num_rows >= 128 * g.num_experts)
    launch_tiles<128, 128, 64, 32, bf16>(g.a, g.a_rows, g.a_row_div, g.w, g.offsets, g.num_experts, g.num_rows, g.n,
                                         g.k, g.c, stream);
  else
    launch_tiles<64, 64, 32, 32, bf16>(g.a, g.a_rows, g.a_row_div, g.w, g.offsets, g.num_experts, g.num_rows, g.n, g.k,
                                       g.c, stream);
  BATON_LAUNCH_CHECK();
}

void launch_moe_gate_up(GroupedGemmArgs g, bf16* gu, bf16* act, bool row_invariant, cudaStream_t stream) {
  g.gated = !row_invariant && g.n % 16 == 0 && grouped_gemm_wgmma_fits(g.n, g.k, g.num_experts);
  g.c = g.gated ? act : gu;
  launch_grouped_gemm(g, row_invariant, stream);
  if (!g.gated) launch_silu_mul(gu, act, g.num_rows, g.n / 2, stream);
}

void launch_gemm_row_invariant(const bf16* x, const bf16* w, void* y, int m, int n, int k, bool y_f32,
                               cudaStream_t stream) {
  if (m == 0) return;
  BATON_CHECK(k % 8 == 0, "gemm: k {} not a multiple of 8", k);
  // Row-invariant: one tile shape for every m (the k order is the same in both anyway).
  if (y_f32) launch_tiles<64, 64, 32, 32, float>(x, nullptr, 1, w, nullptr, 1, m, n, k, static_cast<float*>(y), stream);
  else launch_tiles<64, 64, 32, 32, bf16>(x, nullptr, 1, w, nullptr, 1, m, n, k, static_cast<bf16*>(y), stream);
  BATON_LAUNCH_CHECK();
}

void launch_moe_combine_norm(const bf16* expert_out, const int32_t* slot_pos, const float* topk_w, int num_tokens,
                             int k, int hidden, const bf16* add, float* residual, const bf16* norm_w, float eps,
                             bf16* normed, cudaStream_t stream, bool inputs_before_wait) {
  if (num_tokens == 0) return;
  BATON_CHECK(k <= 32 && hidden % 8 == 0, "moe combine: top-{}, hidden {}", k, hidden);
  launch_pdl(moe_combine_norm_kernel, num_tokens, 256, hidden * sizeof(float), stream, expert_out, slot_pos, topk_w, k,
             hidden, add, residual, norm_w, eps, normed, inputs_before_wait);
  BATON_LAUNCH_CHECK();
}

void launch_moe_combine(const bf16* expert_out, const int32_t* slot_pos, const float* topk_w, int num_tokens, int k,
                        int hidden, bf16* out, cudaStream_t stream, const bf16* add) {
  if (num_tokens == 0) return;
  BATON_CHECK(k <= 32 && hidden % 8 == 0, "moe combine: top-{}, hidden {}", k, hidden);
  launch_pdl(moe_combine_kernel, num_tokens, 256, 0, stream, expert_out, slot_pos, topk_w, k, hidden, add, out);
  BATON_LAUNCH_CHECK();
}

}  // namespace baton::cuda
