// dot_f32 and matmul (cpu_ops.h): register-blocked micro-kernels (2 input
// rows x 4 weight rows, 8-wide FMA accumulators), token blocks sized for L2,
// parallel over weight rows.
#include <algorithm>

#include "backend/cpu/cpu_ops.h"
#include "common/thread_pool.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define BATON_CPU_AVX2 1
#endif

namespace baton {
namespace {

#ifdef BATON_CPU_AVX2
inline float hsum(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v);
  __m128 hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  __m128 sh = _mm_movehdup_ps(lo);
  __m128 s = _mm_add_ps(lo, sh);
  sh = _mm_movehl_ps(sh, s);
  s = _mm_add_ss(s, sh);
  return _mm_cvtss_f32(s);
}
#endif

// y[r * ldy + j] = dot(x_r, w_j) for r < NR input rows, j < 4 weight rows.
template <int NR>
inline void kernel_nx4(const float* x, int64_t in, const float* w, float* y, int64_t ldy) {
#ifdef BATON_CPU_AVX2
  __m256 acc[NR][4];
  for (int r = 0; r < NR; ++r)
    for (int j = 0; j < 4; ++j) acc[r][j] = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= in; i += 8) {
    __m256 wv[4];
    for (int j = 0; j < 4; ++j) wv[j] = _mm256_loadu_ps(w + j * in + i);
    for (int r = 0; r < NR; ++r) {
      const __m256 xv = _mm256_loadu_ps(x + r * in + i);
      for (int j = 0; j < 4; ++j) acc[r][j] = _mm256_fmadd_ps(xv, wv[j], acc[r][j]);
    }
  }
  for (int r = 0; r < NR; ++r) {
    for (int j = 0; j < 4; ++j) {
      float s = hsum(acc[r][j]);
      for (int64_t k = i; k < in; ++k) s += x[r * in + k] * w[j * in + k];
      y[r * ldy + j] = s;
    }
  }
#else
  for (int r = 0; r < NR; ++r)
    for (int j = 0; j < 4; ++j) y[r * ldy + j] = dot_f32(x + r * in, w + j * in, in);
#endif
}

void matmul_rows(const float* x, int64_t num_rows, int64_t in, const float* w, int64_t o_begin,
                 int64_t o_end, int64_t out, const float* bias, float* y) {
  // Token blocks of ~256 KiB of x, so they stay in L2 while weight rows stream.
  const int64_t token_block = std::max<int64_t>(2, (256 * 1024 / 4) / std::max<int64_t>(1, in));
  for (int64_t t0 = 0; t0 < num_rows; t0 += token_block) {
    const int64_t t1 = std::min(num_rows, t0 + token_block);
    int64_t o = o_begin;
    for (; o + 4 <= o_end; o += 4) {
      const float* wo = w + o * in;
      int64_t t = t0;
      for (; t + 2 <= t1; t += 2) kernel_nx4<2>(x + t * in, in, wo, y + t * out + o, out);
      for (; t < t1; ++t) kernel_nx4<1>(x + t * in, in, wo, y + t * out + o, out);
    }
    for (; o < o_end; ++o)
      for (int64_t t = t0; t < t1; ++t) y[t * out + o] = dot_f32(x + t * in, w + o * in, in);
    if (bias != nullptr)
      for (int64_t t = t0; t < t1; ++t)
        for (int64_t j = o_begin; j < o_end; ++j) y[t * out + j] += bias[j];
  }
}

}  // namespace

float dot_f32(const float* a, const float* b, int64_t n) {
#ifdef BATON_CPU_AVX2
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
  }
  for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
  float s = hsum(_mm256_add_ps(acc0, acc1));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
#else
  float acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) acc[j] += a[i + j] * b[i + j];
  float s = 0.0f;
  for (int j = 0; j < 8; ++j) s += acc[j];
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
#endif
}

void matmul(const float* x, int64_t num_rows, int64_t in, const float* w, int64_t out,
            const float* bias, float* y, ThreadPool* pool) {
  if (num_rows <= 0 || out <= 0) return;
  // Parallel over groups of 4 weight rows; each chunk gets >= ~256 KFLOP.
  const int64_t num_groups = (out + 3) / 4;
  const int64_t flops_per_group = 8 * num_rows * in;
  const int64_t min_chunk = std::max<int64_t>(1, (256 * 1024) / std::max<int64_t>(1, flops_per_group));
  auto body = [&](int64_t g0, int64_t g1) {
    matmul_rows(x, num_rows, in, w, g0 * 4, std::min(out, g1 * 4), out, bias, y);
  };
  if (pool == nullptr || num_groups < 2 * min_chunk) {
    body(0, num_groups);
    return;
  }
  pool->parallel_for(num_groups, body, min_chunk);
}

}  // namespace baton
