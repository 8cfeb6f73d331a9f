// dot_f32, matmul and matmul_packed (cpu_ops.h).
// matmul: register-blocked dot products (2 input rows x 4 weight rows, 8-wide
// FMA accumulators), token blocks sized for L2, parallel over weight rows.
// matmul_packed: outer products over 16-row k-major panels (6 rows x 16
// outputs in 12 accumulators), the backend's fast path.
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

void matmul_rows(const float* x, int64_t num_rows, int64_t in, const float* w, int64_t o_begin, int64_t o_end,
                 int64_t out, const float* bias, float* y) {
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

constexpr int kPanel = PackedWeight::kPanelRows;

// y[r * ldy + j] = sum_k x[r * in + k] * panel[k * 16 + j], r < NR, j < nout,
// each a sequential FMA chain over k.
template <int NR>
inline void kernel_panel(const float* x, int64_t in, const float* panel, float* y, int64_t ldy, int nout) {
#ifdef BATON_CPU_AVX2
  __m256 a0[NR], a1[NR];
  for (int r = 0; r < NR; ++r) {
    a0[r] = _mm256_setzero_ps();
    a1[r] = _mm256_setzero_ps();
  }
  for (int64_t k = 0; k < in; ++k) {
    const __m256 w0 = _mm256_loadu_ps(panel + k * kPanel);
    const __m256 w1 = _mm256_loadu_ps(panel + k * kPanel + 8);
    for (int r = 0; r < NR; ++r) {
      const __m256 xb = _mm256_broadcast_ss(x + r * in + k);
      a0[r] = _mm256_fmadd_ps(xb, w0, a0[r]);
      a1[r] = _mm256_fmadd_ps(xb, w1, a1[r]);
    }
  }
  for (int r = 0; r < NR; ++r) {
    if (nout == kPanel) {
      _mm256_storeu_ps(y + r * ldy, a0[r]);
      _mm256_storeu_ps(y + r * ldy + 8, a1[r]);
    } else {
      alignas(32) float tmp[kPanel];
      _mm256_store_ps(tmp, a0[r]);
      _mm256_store_ps(tmp + 8, a1[r]);
      for (int j = 0; j < nout; ++j) y[r * ldy + j] = tmp[j];
    }
  }
#else
  for (int r = 0; r < NR; ++r) {
    float acc[kPanel] = {};
    for (int64_t k = 0; k < in; ++k)
      for (int j = 0; j < kPanel; ++j) acc[j] += x[r * in + k] * panel[k * kPanel + j];
    for (int j = 0; j < nout; ++j) y[r * ldy + j] = acc[j];
  }
#endif
}

template <int NR>
void kernel_panel_rest(int64_t rest, const float* x, int64_t in, const float* panel, float* y, int64_t ldy, int nout) {
  if constexpr (NR > 0) {
    if (rest == NR) kernel_panel<NR>(x, in, panel, y, ldy, nout);
    else kernel_panel_rest<NR - 1>(rest, x, in, panel, y, ldy, nout);
  }
}

void matmul_panels(const float* x, int64_t num_rows, const PackedWeight& w, int64_t p_begin, int64_t p_end,
                   const float* bias, float* y) {
  const int64_t in = w.in, out = w.out;
  constexpr int kRows = 6;
  // Token blocks of ~256 KiB of x, so they stay in L2 while panels stream.
  const int64_t token_block = std::max<int64_t>(kRows, (256 * 1024 / 4) / std::max<int64_t>(1, in) / kRows * kRows);
  for (int64_t t0 = 0; t0 < num_rows; t0 += token_block) {
    const int64_t t1 = std::min(num_rows, t0 + token_block);
    for (int64_t p = p_begin; p < p_end; ++p) {
      const float* panel = w.data.data() + p * in * kPanel;  // [in, 16]
      const int64_t o = p * kPanel;
      const int nout = static_cast<int>(std::min<int64_t>(kPanel, out - o));
      int64_t t = t0;
      for (; t + kRows <= t1; t += kRows) kernel_panel<kRows>(x + t * in, in, panel, y + t * out + o, out, nout);
      kernel_panel_rest<kRows - 1>(t1 - t, x + t * in, in, panel, y + t * out + o, out, nout);
      if (bias != nullptr)
        for (int64_t r = t0; r < t1; ++r)
          for (int j = 0; j < nout; ++j) y[r * out + o + j] += bias[o + j];
    }
  }
}

}  // namespace

PackedWeight pack_weight(const float* w, int64_t out, int64_t in, ThreadPool* pool) {
  PackedWeight p;
  p.out = out;
  p.in = in;
  p.data.resize(static_cast<size_t>(p.num_panels() * in * kPanel));
  auto body = [&](int64_t p0, int64_t p1) {
    for (int64_t panel = p0; panel < p1; ++panel) {
      float* dst = p.data.data() + panel * in * kPanel;  // [in, 16]
      for (int64_t k = 0; k < in; ++k)
        for (int j = 0; j < kPanel; ++j) {
          const int64_t o = panel * kPanel + j;
          dst[k * kPanel + j] = o < out ? w[o * in + k] : 0.0f;
        }
    }
  };
  if (pool != nullptr) pool->parallel_for(p.num_panels(), body, 16);
  else body(0, p.num_panels());
  return p;
}

void matmul_packed(const float* x, int64_t num_rows, const PackedWeight& w, const float* bias, float* y,
                   ThreadPool* pool) {
  if (num_rows <= 0 || w.out <= 0) return;
  const int64_t num_panels = w.num_panels();
  const int64_t flops_per_panel = 2 * kPanel * num_rows * w.in;
  const int64_t min_chunk = std::max<int64_t>(1, (256 * 1024) / std::max<int64_t>(1, flops_per_panel));
  auto body = [&](int64_t p0, int64_t p1) { matmul_panels(x, num_rows, w, p0, p1, bias, y); };
  if (pool == nullptr || num_panels < 2 * min_chunk) {
    body(0, num_panels);
    return;
  }
  pool->parallel_for(num_panels, body, min_chunk);
}

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

void matmul(const float* x, int64_t num_rows, int64_t in, const float* w, int64_t out, const float* bias, float* y,
            ThreadPool* pool) {
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
