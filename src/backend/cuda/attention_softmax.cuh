// The online-softmax step shared by the attention kernels (attention.cu's
// mma.sync kernels and attention_wgmma_ws.cu's wgmma kernel). Both hold a
// tile's scores in the tensor cores' C-fragment layout (mma.sync m16n8, and
// wgmma's accumulator per warp, which is the same per 8 columns): with
// g = lane / 4 and t = lane % 4, s[4j + e] is row r = e / 2 (g, or g + 8) and
// key key0 + 8j + 2t + e % 2. The four lanes of a quad hold one row's keys.
#pragma once

#include <cfloat>
#include <cstdint>

namespace baton::cuda {

// 2^x with one MUFU op (ftz); -inf gives 0.
__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

// One tile of the online softmax, in place: scores s (raw Q.K, 4 per 8-key
// group) become P = 2^(s * scale_log2 - m) with m the rows' running maximum
// (log2 units); l, the rows' running sum, is updated; corr receives the factor
// by which the rows' output accumulators must be rescaled. With kMask, keys at
// or past `end` or past the row's causal limit qpos[r] (-1: a padding row)
// are masked. t: lane % 4.
template <bool kMask, int N>
__device__ __forceinline__ void online_softmax_tile(float (&s)[N], float (&m)[2], float (&l)[2], float (&corr)[2],
                                                    const int (&qpos)[2], int key0, int end, float scale_log2, int t) {
  static_assert(N % 4 == 0, "scores come in 8-key groups of 4 per lane");
  float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
  for (int j = 0; j < N / 4; ++j) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int r = e >> 1;
      if constexpr (kMask) {
        const int kg = key0 + 8 * j + 2 * t + (e & 1);
        if (kg >= end || kg > qpos[r]) s[4 * j + e] = -INFINITY;
      }
      mx[r] = fmaxf(mx[r], s[4 * j + e]);
    }
  }
  float m_sub[2];  // what the exponent subtracts: 0 for a row with every key masked so far (its s are -inf)
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
    mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
    const float mnew = fmaxf(m[r], mx[r] * scale_log2);
    corr[r] = mnew == -INFINITY ? 1.0f : fast_exp2(m[r] - mnew);
    m[r] = mnew;
    m_sub[r] = mnew == -INFINITY ? 0.0f : mnew;
  }
  float rs[2] = {0.0f, 0.0f};
#pragma unroll
  for (int j = 0; j < N / 4; ++j) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int r = e >> 1;
      const float p = fast_exp2(fmaf(s[4 * j + e], scale_log2, -m_sub[r]));
      s[4 * j + e] = p;
      rs[r] += p;
    }
  }
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    rs[r] += __shfl_xor_sync(0xffffffffu, rs[r], 1);
    rs[r] += __shfl_xor_sync(0xffffffffu, rs[r], 2);
    l[r] = l[r] * corr[r] + rs[r];
  }
}

// The same with the mask chosen at run time. need_mask must be the same in
// every lane of the warp: the branch then keeps the unmasked tiles (all but
// the diagonal and last) free of the mask's compares and selects, which the
// compiler would otherwise predicate into every tile.
template <int N>
__device__ __forceinline__ void online_softmax_tile(float (&s)[N], float (&m)[2], float (&l)[2], float (&corr)[2],
                                                    const int (&qpos)[2], int key0, int end, bool need_mask,
                                                    float scale_log2, int t) {
  if (need_mask) online_softmax_tile<true>(s, m, l, corr, qpos, key0, end, scale_log2, t);
  else online_softmax_tile<false>(s, m, l, corr, qpos, key0, end, scale_log2, t);
}

}  // namespace baton::cuda
