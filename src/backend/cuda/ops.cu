// Elementwise and row kernels: embedding, residual add + RMSNorm, QKV bias +
// q/k norm + RoPE + paged KV write, SiLU-and-multiply, random init.
#include <algorithm>

#include "backend/cuda/device_utils.cuh"
#include "backend/cuda/fp8_kernels.h"
#include "backend/cuda/fp8_quantize.cuh"
#include "backend/cuda/kernels.h"
#include "backend/cuda/kv_fp8.cuh"

namespace baton::cuda {
namespace {

// One block per token. With hidden % 8 == 0 each thread moves 8 values (one
// 16-byte load): the loads are all in flight at once, where a loop of 2-byte
// loads through possibly aliasing pointers waited for each (9 us a decode
// step at hidden 4096, one table row from memory 16 times over).
__global__ void embedding_kernel(const int32_t* __restrict__ ids, const bf16* __restrict__ table,
                                 float* __restrict__ residual, int hidden, int vocab) {
  pdl_wait();
  int t = blockIdx.x;
  int id = ids[t];
  id = id < 0 ? 0 : (id >= vocab ? vocab - 1 : id);             // the backend validates ids before
  const bf16* row = table + static_cast<int64_t>(id) * hidden;  // [hidden]
  float* out = residual + static_cast<int64_t>(t) * hidden;
  if (hidden % 8 == 0) {
    for (int c = threadIdx.x; c < hidden / 8; c += blockDim.x) {
      const uint4 raw = reinterpret_cast<const uint4*>(row)[c];
      const __nv_bfloat162* p = reinterpret_cast<const __nv_bfloat162*>(&raw);
      float4 lo, hi;
      lo.x = __low2float(p[0]), lo.y = __high2float(p[0]), lo.z = __low2float(p[1]), lo.w = __high2float(p[1]);
      hi.x = __low2float(p[2]), hi.y = __high2float(p[2]), hi.z = __low2float(p[3]), hi.w = __high2float(p[3]);
      reinterpret_cast<float4*>(out)[2 * c] = lo;
      reinterpret_cast<float4*>(out)[2 * c + 1] = hi;
    }
    return;
  }
  for (int i = threadIdx.x; i < hidden; i += blockDim.x) out[i] = bf(row[i]);
}

// Where a row kernel writes its output: bf16 rows, or (kFp8) the e4m3 groups
// and scales of launch_fp8_quantize_groups over those bf16 rows.
struct RowsOut {
  bf16* bf16_rows = nullptr;    // [rows, cols]
  uint8_t* fp8_rows = nullptr;  // [rows, cols]
  float* fp8_scales = nullptr;  // [cols / 128, rows]
};

// One block per output row; the row is held in shared memory. 4 elements per
// thread access (16-byte fp32, 8-byte bf16) when hidden % 4 == 0. kFp8
// (hidden % 128 == 0): a warp's 4 x 32 values of one pass are one group.
template <bool kFp8>
__global__ void add_rmsnorm_kernel(float* residual, const bf16* add, const bf16* add_bias, const bf16* w, RowsOut out,
                                   const int32_t* rows, int hidden, float eps) {
  pdl_wait();
  extern __shared__ float xs[];  // [hidden]
  __shared__ float scratch[32];
  int r = blockIdx.x;
  int src = rows ? rows[r] : r;
  float* res = residual + static_cast<int64_t>(src) * hidden;
  const bf16* ad = add ? add + static_cast<int64_t>(src) * hidden : nullptr;
  bf16* o = kFp8 ? nullptr : out.bf16_rows + static_cast<int64_t>(r) * hidden;
  float ss = 0.0f;
  if (hidden % 4 == 0) {
    const int n4 = hidden / 4;
    for (int i = threadIdx.x; i < n4; i += blockDim.x) {
      float4 x = reinterpret_cast<const float4*>(res)[i];
      if (ad) {
        uint2 av = reinterpret_cast<const uint2*>(ad)[i];
        float2 a0 = __bfloat1622float2(*reinterpret_cast<__nv_bfloat162*>(&av.x));
        float2 a1 = __bfloat1622float2(*reinterpret_cast<__nv_bfloat162*>(&av.y));
        x.x += a0.x;
        x.y += a0.y;
        x.z += a1.x;
        x.w += a1.y;
        if (add_bias) {
          x.x += bf(add_bias[4 * i]);
          x.y += bf(add_bias[4 * i + 1]);
          x.z += bf(add_bias[4 * i + 2]);
          x.w += bf(add_bias[4 * i + 3]);
        }
        if (!rows) reinterpret_cast<float4*>(res)[i] = x;
      }
      reinterpret_cast<float4*>(xs)[i] = x;
      ss += x.x * x.x + x.y * x.y + x.z * x.z + x.w * x.w;
    }
    ss = block_sum(ss, scratch);
    const float inv = rsqrtf(ss / hidden + eps);
    for (int i = threadIdx.x; i < n4; i += blockDim.x) {
      float4 x = reinterpret_cast<const float4*>(xs)[i];
      uint2 wv = reinterpret_cast<const uint2*>(w)[i];
      float2 w0 = __bfloat1622float2(*reinterpret_cast<__nv_bfloat162*>(&wv.x));
      float2 w1 = __bfloat1622float2(*reinterpret_cast<__nv_bfloat162*>(&wv.y));
      __nv_bfloat162 o0 = __floats2bfloat162_rn(w0.x * (x.x * inv), w0.y * (x.y * inv));
      __nv_bfloat162 o1 = __floats2bfloat162_rn(w1.x * (x.z * inv), w1.y * (x.w * inv));
      if constexpr (kFp8) {
        const float2 f0 = __bfloat1622float2(o0), f1 = __bfloat1622float2(o1);
        const float v[4] = {f0.x, f0.y, f1.x, f1.y};
        const float s = fp8_group_scale<32>(v, 0xffffffffu);
        store_e4m3(out.fp8_rows + static_cast<int64_t>(r) * hidden + 4 * i, v, s);
        if ((threadIdx.x & 31) == 0) out.fp8_scales[static_cast<int64_t>(i / 32) * gridDim.x + r] = s;
      } else {
        uint2 ov;
        ov.x = *reinterpret_cast<uint32_t*>(&o0);
        ov.y = *reinterpret_cast<uint32_t*>(&o1);
        reinterpret_cast<uint2*>(o)[i] = ov;
      }
    }
    return;
  }
  if constexpr (kFp8) return;  // the launcher allows no other width
  for (int i = threadIdx.x; i < hidden; i += blockDim.x) {
    float x = res[i];
    if (ad) x += bf(ad[i]) + (add_bias ? bf(add_bias[i]) : 0.0f);
    xs[i] = x;
    ss += x * x;
  }
  ss = block_sum(ss, scratch);
  float inv = rsqrtf(ss / hidden + eps);
  for (int i = threadIdx.x; i < hidden; i += blockDim.x) {
    float x = xs[i];
    if (!rows && ad) res[i] = x;
    o[i] = __float2bfloat16(bf(w[i]) * (x * inv));
  }
}

// One warp per (token, head) over q heads, then k heads, then v heads.
__global__ void qkv_rope_cache_kernel(QkvRopeArgs a) {
  if (!a.rotation_before_wait) pdl_wait();
  int warp = (blockIdx.x * blockDim.x + threadIdx.x) >> 5;
  int lane = threadIdx.x & 31;
  int heads = a.num_heads + 2 * a.num_kv_heads;
  if (warp >= a.num_tokens * heads) return;
  int t = warp / heads, h = warp % heads;
  const int hd = a.head_dim;
  const int half = hd / 2;
  const bf16* src = a.qkv + (static_cast<int64_t>(t) * heads + h) * hd;  // [hd]
  const bf16* bias = a.bias ? a.bias + static_cast<int64_t>(h) * hd : nullptr;
  bool is_q = h < a.num_heads, is_k = !is_q && h < a.num_heads + a.num_kv_heads;
  // The rotation of pairs (i, i + half): cos and sin of the token's position
  // times inv_freq[i], from the step's inputs alone, so it may run before the
  // wait (QkvRopeArgs::rotation_before_wait); else after the row's loads, as
  // their latency's cover.
  float rc[4] = {}, rs[4] = {};
  const auto rotation = [&] {
    if (!is_q && !is_k) return;
    float pos = static_cast<float>(a.positions[t]);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      int i = lane + 32 * j;
      if (i < half) {
        float ang = pos * a.inv_freq[i];
        rc[j] = cosf(ang);
        rs[j] = sinf(ang);
      }
    }
  };
  if (a.rotation_before_wait) {
    rotation();
    pdl_wait();
  }
  const int64_t slot = is_q ? 0 : a.slot_mapping[t];
  // Each lane holds pairs (i, i + half) for i = lane, lane + 32, ... (hd <= 256).
  float x1[4], x2[4];
  float ss = 0.0f;
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    int i = lane + 32 * j;
    x1[j] = x2[j] = 0.0f;
    if (i < half) {
      x1[j] = bf(src[i]) + (bias ? bf(bias[i]) : 0.0f);
      x2[j] = bf(src[i + half]) + (bias ? bf(bias[i + half]) : 0.0f);
      ss += x1[j] * x1[j] + x2[j] * x2[j];
    }
  }
  const bf16* nw = is_q ? a.q_norm : (is_k ? a.k_norm : nullptr);
  if (nw) {
    ss = warp_sum(ss);
    float inv = rsqrtf(ss / hd + a.eps);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      int i = lane + 32 * j;
      if (i < half) {
        x1[j] = bf(nw[i]) * (x1[j] * inv);
        x2[j] = bf(nw[i + half]) * (x2[j] * inv);
      }
    }
  }
  if (!a.rotation_before_wait) rotation();
  if (is_q || is_k) {
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      int i = lane + 32 * j;
      if (i < half) {
        float y1 = x1[j] * rc[j] - x2[j] * rs[j];
        float y2 = x2[j] * rc[j] + x1[j] * rs[j];
        x1[j] = y1;
        x2[j] = y2;
      }
    }
  }
  bf16* dst;
  if (is_q) {
    dst = a.q_out + (static_cast<int64_t>(t) * a.num_heads + h) * hd;
  } else {
    if (slot < 0) return;  // padding token: no cache write
    int64_t block = slot / a.kv.block_size, row = slot % a.kv.block_size;
    int kvh = is_k ? h - a.num_heads : h - a.num_heads - a.num_kv_heads;
    const int64_t off = block * a.kv.block_elems + a.layer * a.kv.layer_block_elems + (is_k ? 0 : a.kv.half_elems) +
                        row * a.kv.token_elems + static_cast<int64_t>(kvh) * hd;
    if (a.kv.fp8 != nullptr) {  // e4m3(x / scale), round to nearest even, saturated (the CPU's store_kv_row)
      uint8_t* q8 = a.kv.fp8 + off;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        int i = lane + 32 * j;
        if (i < half) {
          q8[i] = float_to_kv_fp8(x1[j]);
          q8[i + half] = float_to_kv_fp8(x2[j]);
        }
      }
      return;
    }
    dst = a.kv.base + off;
  }
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    int i = lane + 32 * j;
    if (i < half) {
      dst[i] = __float2bfloat16(x1[j]);
      dst[i + half] = __float2bfloat16(x2[j]);
    }
  }
}

// 8 elements (16 bytes) per thread when inter % 8 == 0, else one. kFp8
// (inter % 128 == 0): half a warp's 16 x 8 values are one group.
template <bool kFp8>
__global__ void silu_mul_kernel(const bf16* gu, RowsOut out, int num_rows, int inter) {
  pdl_wait();
  const bool vec = inter % 8 == 0;
  const int per_row = vec ? inter / 8 : inter;
  for (int64_t r = blockIdx.y; r < num_rows; r += gridDim.y) {
    const bf16* g = gu + r * 2 * inter;  // [2 * inter]: gate, then up
    const bf16* u = g + inter;
    bf16* o = kFp8 ? nullptr : out.bf16_rows + r * inter;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < per_row; i += gridDim.x * blockDim.x) {
      if (vec) {
        uint4 gv = *reinterpret_cast<const uint4*>(g + 8 * i);
        uint4 uv = *reinterpret_cast<const uint4*>(u + 8 * i);
        const __nv_bfloat162* gp = reinterpret_cast<const __nv_bfloat162*>(&gv);
        const __nv_bfloat162* up = reinterpret_cast<const __nv_bfloat162*>(&uv);
        uint4 ov;
        __nv_bfloat162* op = reinterpret_cast<__nv_bfloat162*>(&ov);
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          float2 x = __bfloat1622float2(gp[j]), y = __bfloat1622float2(up[j]);
          op[j] = __floats2bfloat162_rn(x.x / (1.0f + __expf(-x.x)) * y.x, x.y / (1.0f + __expf(-x.y)) * y.y);
        }
        if constexpr (kFp8) {
          float v[8];
#pragma unroll
          for (int j = 0; j < 4; ++j) {
            const float2 f = __bfloat1622float2(op[j]);
            v[2 * j] = f.x;
            v[2 * j + 1] = f.y;
          }
          // per_row and the stride are multiples of 16: a half warp stays in or leaves together.
          const float s = fp8_group_scale<16>(v, 0xffffu << (threadIdx.x & 16));
          store_e4m3(out.fp8_rows + r * inter + 8 * i, v, s);
          if ((threadIdx.x & 15) == 0) out.fp8_scales[static_cast<int64_t>(i / 16) * num_rows + r] = s;
        } else {
          *reinterpret_cast<uint4*>(o + 8 * i) = ov;
        }
      } else if constexpr (!kFp8) {
        float x = bf(g[i]);
        o[i] = __float2bfloat16(x / (1.0f + __expf(-x)) * bf(u[i]));
      }
    }
  }
}

__global__ void fill_random_kernel(bf16* x, int64_t n, float scale, uint64_t seed) {
  int64_t i4 = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) * 4;
  if (i4 >= n) return;
  float v[4];
  uniform_pm1_x4(i4, seed, v);
#pragma unroll
  for (int j = 0; j < 4; ++j)
    if (i4 + j < n) x[i4 + j] = __float2bfloat16(v[j] * scale);
}

__global__ void fill_const_kernel(bf16* x, int64_t n, float v) {
  int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) x[i] = __float2bfloat16(v);
}

__global__ void convert_kernel(const void* src, int dtype, bf16* dst, int64_t n) {
  int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  if (dtype == 0) dst[i] = __float2bfloat16(static_cast<const float*>(src)[i]);
  else if (dtype == 1) dst[i] = __float2bfloat16(__half2float(static_cast<const __half*>(src)[i]));
  else dst[i] = static_cast<const bf16*>(src)[i];
}

}  // namespace

void launch_embedding(const int32_t* ids, const bf16* table, float* residual, int num_tokens, int hidden, int vocab,
                      cudaStream_t stream) {
  if (num_tokens == 0) return;
  const int threads = hidden % 8 == 0 ? std::min(1024, (hidden / 8 + 31) / 32 * 32) : 256;
  launch_pdl(embedding_kernel, num_tokens, threads, 0, stream, ids, table, residual, hidden, vocab);
  BATON_LAUNCH_CHECK();
}

void launch_add_rmsnorm(float* residual, const bf16* add, const bf16* add_bias, const bf16* weight, bf16* out,
                        const int32_t* rows, int num_rows, int hidden, float eps, cudaStream_t stream) {
  if (num_rows == 0) return;
  const int lanes = hidden % 4 == 0 ? hidden / 4 : hidden;  // threads with work
  int threads = lanes >= 1024 ? 1024 : ((lanes + 31) / 32) * 32;
  launch_pdl(add_rmsnorm_kernel<false>, num_rows, threads, hidden * sizeof(float), stream, residual, add, add_bias,
             weight, RowsOut{out}, rows, hidden, eps);
  BATON_LAUNCH_CHECK();
}

void launch_add_rmsnorm_fp8(float* residual, const bf16* add, const bf16* add_bias, const bf16* weight, uint8_t* q,
                            float* q_scales, int num_rows, int hidden, float eps, cudaStream_t stream) {
  BATON_CHECK(hidden % kFp8GroupCols == 0, "add_rmsnorm_fp8: hidden {} is not a multiple of {}", hidden, kFp8GroupCols);
  if (num_rows == 0) return;
  const int threads = std::min(1024, hidden / 4);  // a multiple of 32: whole warps, whole groups
  launch_pdl(add_rmsnorm_kernel<true>, num_rows, threads, hidden * sizeof(float), stream, residual, add, add_bias,
             weight, RowsOut{nullptr, q, q_scales}, nullptr, hidden, eps);
  BATON_LAUNCH_CHECK();
}

void launch_qkv_rope_cache(const QkvRopeArgs& a, cudaStream_t stream) {
  if (a.num_tokens == 0) return;
  BATON_CHECK(a.head_dim % 2 == 0 && a.head_dim <= 256, "head_dim {}", a.head_dim);
  int64_t warps = static_cast<int64_t>(a.num_tokens) * (a.num_heads + 2 * a.num_kv_heads);
  int blocks = static_cast<int>((warps * 32 + 255) / 256);
  launch_pdl(qkv_rope_cache_kernel, blocks, 256, 0, stream, a);
  BATON_LAUNCH_CHECK();
}

void launch_silu_mul(const bf16* gu, bf16* out, int num_rows, int inter, cudaStream_t stream) {
  if (num_rows == 0) return;
  const int per_row = inter % 8 == 0 ? inter / 8 : inter;
  dim3 grid((per_row + 255) / 256, num_rows < 65535 ? num_rows : 65535);
  launch_pdl(silu_mul_kernel<false>, grid, 256, 0, stream, gu, RowsOut{out}, num_rows, inter);
  BATON_LAUNCH_CHECK();
}

void launch_silu_mul_fp8(const bf16* gu, uint8_t* q, float* q_scales, int num_rows, int inter, cudaStream_t stream) {
  BATON_CHECK(inter % kFp8GroupCols == 0, "silu_mul_fp8: inter {} is not a multiple of {}", inter, kFp8GroupCols);
  if (num_rows == 0) return;
  dim3 grid((inter / 8 + 255) / 256, num_rows < 65535 ? num_rows : 65535);
  launch_pdl(silu_mul_kernel<true>, grid, 256, 0, stream, gu, RowsOut{nullptr, q, q_scales}, num_rows, inter);
  BATON_LAUNCH_CHECK();
}

namespace {
// Spins until *flag is set or timeout_ns pass (the GPU's global timer).
__global__ void hold_stream_kernel(const volatile int* flag, uint64_t timeout_ns) {
  uint64_t start = 0, now = 0;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
  do {
    if (*flag != 0) return;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
  } while (now - start < timeout_ns);
}

// Waits for the kernel before it, as every programmatically launched kernel
// does first, and does nothing else.
__global__ void wait_only_kernel() { pdl_wait(); }
}  // namespace

const void* wait_only_kernel_symbol() { return reinterpret_cast<const void*>(&wait_only_kernel); }

void launch_hold_stream(const int* flag, cudaStream_t stream) {
  hold_stream_kernel<<<1, 1, 0, stream>>>(flag, 2'000'000'000ull);
  BATON_LAUNCH_CHECK();
}

void launch_fill_random(bf16* x, int64_t n, float scale, uint64_t seed, cudaStream_t stream) {
  if (n == 0) return;
  int64_t threads = (n + 3) / 4;
  fill_random_kernel<<<static_cast<unsigned>((threads + 255) / 256), 256, 0, stream>>>(x, n, scale, seed);
  BATON_LAUNCH_CHECK();
}

void launch_fill_const(bf16* x, int64_t n, float value, cudaStream_t stream) {
  if (n == 0) return;
  fill_const_kernel<<<static_cast<unsigned>((n + 255) / 256), 256, 0, stream>>>(x, n, value);
  BATON_LAUNCH_CHECK();
}

void launch_convert_to_bf16(const void* src, int src_dtype, bf16* dst, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  convert_kernel<<<static_cast<unsigned>((n + 255) / 256), 256, 0, stream>>>(src, src_dtype, dst, n);
  BATON_LAUNCH_CHECK();
}

}  // namespace baton::cuda
