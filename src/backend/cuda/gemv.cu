// Skinny GEMMs with bf16 weights (decode at small batch): the kernel of gemv.cuh,
// dense and over MoE experts.
#include <type_traits>

#include "backend/cuda/gemv.cuh"

namespace baton::cuda {
namespace {

// Block (x, y) of the MoE form: sorted position p = y. Only the first position
// of an expert's run works: it computes all of that expert's rows (at most 8,
// moe_skinny_supports) with warp blockIdx.x * 8 + w over the expert's weight,
// so each routed expert's weight is read once.
template <int M, bool kGated>
__device__ __forceinline__ void expert_rows(const bf16* a, const int32_t* a_rows, int a_row_div, const bf16* w, int p,
                                            int n, int k, bf16* c) {
  const bf16* x_rows[M];
  bf16* y_rows[M];
#pragma unroll
  for (int m = 0; m < M; ++m) {
    const int src = a_rows ? a_rows[p + m] / a_row_div : p + m;
    x_rows[m] = a + static_cast<int64_t>(src) * k;
    y_rows[m] = c + static_cast<int64_t>(p + m) * n;
  }
  skinny::warp_outputs<false, M, bf16, kGated, false, skinny::Epilogue::kStore, skinny::kUnroll,
                       M == 1 ? skinny::Passes::kFull : skinny::Passes::kChecked>(
      blockIdx.x * skinny::kWarpsPerBlock + (threadIdx.x >> 5), x_rows, skinny::Weight{w}, y_rows, n, k);
}

// f(std::integral_constant<int, M>) for M = rows, 1 <= rows <= kMaxM: one
// instance of f's body per row count, and only up to kMaxM, so a kernel for
// few tokens is compiled for few rows (its registers, so its occupancy, are
// those of its largest case).
template <int kMaxM, typename F>
__device__ __forceinline__ void with_row_count(int rows, F&& f) {
  if constexpr (kMaxM > 1) {
    if (rows < kMaxM) {
      with_row_count<kMaxM - 1>(rows, f);
      return;
    }
  }
  f(std::integral_constant<int, kMaxM>{});
}

// The largest row count an expert has at num_tokens tokens (each token picks
// distinct experts, so at most num_tokens), rounded up to the kernels' 1, 2,
// 4 or 8.
int max_rows_bucket(int num_tokens) { return num_tokens <= 1 ? 1 : num_tokens <= 2 ? 2 : num_tokens <= 4 ? 4 : 8; }

// kMaxM: the most rows an expert has in this launch (max_rows_bucket). At one
// token every expert has one row, and the one-row kernel holds about 52
// registers a thread against the eight-row one's 128: 4 blocks an SM, not 2.
// With runs (MoeRouting::runs) a block finds its expert and rows in one load
// after the wait, where the lookup through the sort is four loads one after
// another (the routed total, the slot, its expert, the expert's offsets). On
// an H100 (Qwen3-30B-A3B, session 30) the runs took the step at 1, 2 and 8
// tokens to 0.985, 0.976 and 0.979 of the lookup's.
template <bool kGated, int kMaxM>
__global__ void __launch_bounds__(32 * skinny::kWarpsPerBlock)
    moe_skinny_kernel(const bf16* a, const int32_t* a_rows, int a_row_div, const bf16* w, const int32_t* topk_ids,
                      const int32_t* sorted_slots, const int32_t* offsets, const int32_t* runs, bool runs_before_wait,
                      int expert_begin, int num_experts, int n, int k, bf16* c) {
  const int p = blockIdx.y;
  int run = 0;
  if (runs_before_wait) run = runs[p];
  pdl_wait();
  int e, num_rows;
  if (runs != nullptr) {  // one load: the expert and its rows, or -1 (MoeRouting::runs)
    if (!runs_before_wait) run = runs[p];
    if (run < 0) return;
    e = run & kMoeRunExpertMask;
    num_rows = run >> kMoeRunRowsShift;
  } else {
    if (p >= offsets[num_experts]) return;  // slots routed to other ranks' experts
    e = topk_ids[sorted_slots[p]] - expert_begin;
    if (offsets[e] != p) return;  // not the first row of its expert
    num_rows = offsets[e + 1] - p;
  }
  const bf16* we = w + static_cast<int64_t>(e) * (kGated ? 2 : 1) * n * k;
  with_row_count<kMaxM>(
      num_rows, [&](auto rows) { expert_rows<decltype(rows)::value, kGated>(a, a_rows, a_row_div, we, p, n, k, c); });
}

template <int kMaxM>
void launch_moe_skinny_rows(const MoeRouting& r, const MoeProjection& p, cudaStream_t stream) {
  const dim3 grid(skinny::blocks_for(p.n, p.gated), r.num_rows);
  const dim3 block(32 * skinny::kWarpsPerBlock);
  auto kernel = p.gated ? moe_skinny_kernel<true, kMaxM> : moe_skinny_kernel<false, kMaxM>;
  launch_pdl(kernel, grid, block, 0, stream, p.a, p.a_rows, p.a_row_div, p.w, r.topk_ids, r.sorted_slots, r.offsets,
             r.runs, r.runs != nullptr && p.runs_before_wait, r.expert_begin, r.num_experts, p.n, p.k, p.c);
}

}  // namespace

bool gemv_supports(int m, int k) { return m >= 1 && m <= 8 && k % 8 == 0; }

void launch_gemv(const bf16* x, const bf16* w, void* y, int m, int n, int k, bool y_f32, cudaStream_t stream) {
  BATON_CHECK(gemv_supports(m, k), "gemv: m {} k {}", m, k);
  const skinny::Weight wt{w};
  if (y_f32) skinny::launch<false, float, false>(x, wt, static_cast<float*>(y), m, n, k, stream);
  else skinny::launch<false, bf16, false>(x, wt, static_cast<bf16*>(y), m, n, k, stream);
  BATON_LAUNCH_CHECK();
}

void launch_gemv_silu_mul(const bf16* x, const bf16* w, bf16* out, int m, int inter, int k, cudaStream_t stream) {
  BATON_CHECK(gemv_supports(m, k), "gemv: m {} k {}", m, k);
  skinny::launch<false, bf16, true>(x, skinny::Weight{w}, out, m, inter, k, stream);
  BATON_LAUNCH_CHECK();
}

bool gemv_norm_in_supports(int m, int k, bool fp8_weight) { return skinny::norm_in_supports(m, k, fp8_weight); }
bool gemv_residual_add_supports(int m, int k, bool fp8_weight) {
  return skinny::residual_add_supports(m, k, fp8_weight);
}

void launch_gemv_norm_in(const GemvNormIn& in, const bf16* w, bf16* y, int m, int n, int k, bool gated,
                         cudaStream_t stream) {
  BATON_CHECK(gemv_norm_in_supports(m, k, false), "gemv norm-in: m {} k {}", m, k);
  const skinny::NormIn ni{in.residual, in.weight, in.eps};
  if (gated) skinny::launch_norm_in<false, true>(ni, skinny::Weight{w}, y, m, n, k, stream);
  else skinny::launch_norm_in<false, false>(ni, skinny::Weight{w}, y, m, n, k, stream);
  BATON_LAUNCH_CHECK();
}

void launch_gemv_residual_add(const bf16* x, const bf16* w, const bf16* bias, float* residual, int m, int n, int k,
                              cudaStream_t stream) {
  BATON_CHECK(gemv_residual_add_supports(m, k, false), "gemv residual-add: m {} k {}", m, k);
  skinny::launch_residual_add<false>(x, skinny::Weight{w}, bias, residual, m, n, k, stream);
  BATON_LAUNCH_CHECK();
}

bool moe_skinny_supports(int num_tokens, int k) { return num_tokens >= 1 && num_tokens <= 8 && k % 8 == 0; }

void launch_moe_skinny(const MoeRouting& r, const MoeProjection& p, cudaStream_t stream) {
  if (r.num_rows == 0) return;
  BATON_CHECK(moe_skinny_supports(r.num_tokens, p.k), "moe skinny: {} tokens, k {}", r.num_tokens, p.k);
  switch (max_rows_bucket(r.num_tokens)) {
    case 1: launch_moe_skinny_rows<1>(r, p, stream); break;
    case 2: launch_moe_skinny_rows<2>(r, p, stream); break;
    case 4: launch_moe_skinny_rows<4>(r, p, stream); break;
    default: launch_moe_skinny_rows<8>(r, p, stream); break;
  }
  BATON_LAUNCH_CHECK();
}

}  // namespace baton::cuda
