// Multi-head latent attention (DeepSeek-V3) in the absorbed form that
// FlashMLA and vLLM's and SGLang's MLA backends use: the cache holds one
// latent row per token ([rmsnorm(c_kv), rope(k_pe)], kv_lora_rank + rope_dim
// wide), every query head is taken into latent space (q_nope . W_UK and its
// roped part), attends to the rows as keys and to their first kv_lora_rank
// values as values (MQA with one 576-wide head for DeepSeek-V3), and its
// output is taken back out per head (W_UV) by the caller.
//
// The attention kernel: one block of 8 warps per tile of 64 (token, head)
// rows, 32 keys per step through a two-stage cp.async ring, S = Q K^T and
// O += P V on tensor cores (mma.sync m16n8k16, bf16 in, fp32 accumulate),
// online softmax in shared memory. Decode splits the context over blocks and
// merges the partial results (flash decoding).
#include <algorithm>

#include "backend/cuda/cuda_common.h"
#include "backend/cuda/device_utils.cuh"
#include "backend/cuda/kernels.h"
#include "backend/cuda/mma.cuh"

namespace baton::cuda {
namespace {

constexpr int kRows = 64, kKeys = 32, kWarps = 8, kThreads = 32 * kWarps;

__device__ __forceinline__ void rope_pair(float x, float y, float c, float s, float& ox, float& oy) {
  ox = x * c - y * s;
  oy = y * c + x * s;
}

// One block per token.
__global__ void mla_prepare_kernel(MlaPrepareArgs a) {
  __shared__ float scratch[32];
  const int t = blockIdx.x;
  const bf16* row = a.qkv_a + static_cast<int64_t>(t) * a.qkv_a_stride;
  if (a.q_a_norm) {
    float ss = 0.0f;
    for (int i = threadIdx.x; i < a.q_cols; i += blockDim.x) ss += bf(row[i]) * bf(row[i]);
    ss = block_sum(ss, scratch);
    const float inv = rsqrtf(ss / a.q_cols + a.eps);
    bf16* out = a.q_a_out + static_cast<int64_t>(t) * a.q_cols;
    for (int i = threadIdx.x; i < a.q_cols; i += blockDim.x)
      out[i] = __float2bfloat16(bf(row[i]) * inv * bf(a.q_a_norm[i]));
  }
  const int64_t slot = a.slot_mapping[t];
  if (slot < 0) return;  // padding token: no cache write
  const bf16* lat = row + a.q_cols;
  float ss = 0.0f;
  for (int i = threadIdx.x; i < a.kv_lora_rank; i += blockDim.x) ss += bf(lat[i]) * bf(lat[i]);
  ss = block_sum(ss, scratch);
  const float inv = rsqrtf(ss / a.kv_lora_rank + a.eps);
  const int64_t block = slot / a.kv.block_size, off = slot % a.kv.block_size;
  bf16* dst = a.kv.base + block * a.kv.block_elems + a.layer * a.kv.layer_block_elems + off * a.kv.token_elems;
  for (int i = threadIdx.x; i < a.kv_lora_rank; i += blockDim.x)
    dst[i] = __float2bfloat16(bf(lat[i]) * inv * bf(a.kv_a_norm[i]));
  const int half = a.rope_dim / 2;
  const float pos = static_cast<float>(a.positions[t]);
  const bf16* pe = lat + a.kv_lora_rank;
  bf16* dpe = dst + a.kv_lora_rank;
  for (int i = threadIdx.x; i < half; i += blockDim.x) {
    const float ang = pos * a.inv_freq[i];
    const float c = cosf(ang) * a.rope_scale, s = sinf(ang) * a.rope_scale;
    const int ia = a.interleaved ? 2 * i : i, ib = a.interleaved ? 2 * i + 1 : i + half;
    float x, y;
    rope_pair(bf(pe[ia]), bf(pe[ib]), c, s, x, y);
    dpe[ia] = __float2bfloat16(x);
    dpe[ib] = __float2bfloat16(y);
  }
}

// One block per token; threads over (head, pair).
__global__ void mla_q_rope_kernel(MlaQRopeArgs a) {
  const int t = blockIdx.x, half = a.rope_dim / 2, latent = a.kv_lora_rank + a.rope_dim;
  const float pos = static_cast<float>(a.positions[t]);
  for (int idx = threadIdx.x; idx < a.num_heads * half; idx += blockDim.x) {
    const int h = idx / half, i = idx % half;
    const bf16* src = a.q + static_cast<int64_t>(t) * a.q_stride + static_cast<int64_t>(h) * (a.nope + a.rope_dim) +
                      a.nope;
    bf16* dst = a.q_latent + (static_cast<int64_t>(t) * a.num_heads + h) * latent + a.kv_lora_rank;
    const float ang = pos * a.inv_freq[i];
    const float c = cosf(ang) * a.rope_scale, s = sinf(ang) * a.rope_scale;
    const int ia = a.interleaved ? 2 * i : i, ib = a.interleaved ? 2 * i + 1 : i + half;
    float x, y;
    rope_pair(bf(src[ia]), bf(src[ib]), c, s, x, y);
    dst[ia] = __float2bfloat16(x);
    dst[ib] = __float2bfloat16(y);
  }
}

__global__ void mla_split_uk_kernel(const bf16* kv_b, bf16* uk_t, int num_heads, int nope, int v_dim, int rank) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t per_head = static_cast<int64_t>(rank) * nope;
  if (i >= per_head * num_heads) return;
  const int64_t h = i / per_head, r = (i / nope) % rank, d = i % nope;
  uk_t[i] = kv_b[(h * (nope + v_dim) + d) * rank + r];
}

__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool valid) {
  unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  int n = valid ? 16 : 0;  // 0: zero-fill
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(n));
}
__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], const bf16* p, bool trans) {
  unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(p));
  if (trans)
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(s));
  else
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(s));
}

// Tile shapes for a latent of RANK + ROPE values.
template <int RANK, int ROPE>
struct MlaCfg {
  static constexpr int D = RANK + ROPE;
  static constexpr int DP = (D + 15) / 16 * 16;              // padded to whole k steps
  static constexpr int LD = DP + 8;                          // shared row stride: conflict-free ldmatrix
  static constexpr int WN = RANK / 16 >= 4 ? 4 : RANK / 16;  // warps along the value dims
  static constexpr int WM = kWarps / WN;                     // warps along the rows
  static constexpr int MT = kRows / 16 / WM;                 // 16-row tiles per warp (P V)
  static constexpr int NT = RANK / 8 / WN;                   // 8-dim tiles per warp (P V)
  static constexpr int SLD = kKeys + 1, PLD = kKeys + 8;
  static constexpr size_t kQBytes = size_t{2} * kRows * LD, kKBytes = size_t{2} * 2 * kKeys * LD;
  static constexpr size_t kSBytes = size_t{4} * kRows * SLD, kPBytes = size_t{2} * kRows * PLD;
  static constexpr size_t kSmem = kQBytes + kKBytes + kSBytes + kPBytes + 3 * 4 * kRows;
  static_assert(RANK % 16 == 0 && D % 8 == 0 && NT % 2 == 0 && MT >= 1, "MLA tile shape");
};

// The tile's scores: S = Q K^T * scale over one step of keys, masked
// (causal, past the split, rows past the sequence) to -inf; warp -> 16 rows x 16 keys.
template <int RANK, int ROPE>
__device__ __forceinline__ void mla_scores(const bf16 (*sq)[MlaCfg<RANK, ROPE>::LD],
                                           const bf16 (*sk)[MlaCfg<RANK, ROPE>::LD],
                                           float (*ss)[MlaCfg<RANK, ROPE>::SLD], const MlaAttnArgs& a, int row0,
                                           int rows, int ctx0, int k0, int key_end) {
  using C = MlaCfg<RANK, ROPE>;
  const int nh = a.num_heads, warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
  const int mt = warp >> 1, kp = warp & 1;
  float s0[4] = {}, s1[4] = {};
#pragma unroll 4
  for (int kk = 0; kk < C::DP / 16; ++kk) {
    uint32_t af[4], bfr[4];
    ldsm_x4(af, &sq[mt * 16 + (lane & 15)][kk * 16 + (lane >> 4) * 8], false);
    ldsm_x4(bfr, &sk[kp * 16 + (lane & 7) + ((lane >> 4) << 3)][kk * 16 + ((lane >> 3) & 1) * 8], false);
    mma_bf16_16816(s0, af, bfr[0], bfr[1]);
    mma_bf16_16816(s1, af, bfr[2], bfr[3]);
  }
#pragma unroll
  for (int nt = 0; nt < 2; ++nt) {
    const float* sv = nt ? s1 : s0;
    const int col = kp * 16 + nt * 8 + 2 * t4;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int r = mt * 16 + g + 8 * h, grow = row0 + r;
      const int limit = min(key_end, ctx0 + grow / nh + 1);  // keys < limit are visible
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int key = k0 + col + e;
        ss[r][col + e] = (grow < rows && key < limit) ? sv[2 * h + e] * a.scale : -INFINITY;
      }
    }
  }
}

// Online softmax over the step's scores: 4 threads per row, 8 keys each;
// P (bf16) for P V, and each row's running max, sum and rescale factor.
template <int SLD, int PLD>
__device__ __forceinline__ void mla_softmax(const float (*ss)[SLD], bf16 (*sp)[PLD], float* m_s, float* l_s,
                                            float* al_s) {
  const int tid = threadIdx.x;
  const int r = tid >> 2, part = tid & 3;
  float v[8], mx = -INFINITY;
#pragma unroll
  for (int e = 0; e < 8; ++e) {
    v[e] = ss[r][part * 8 + e];
    mx = fmaxf(mx, v[e]);
  }
  mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
  mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
  const float m_old = m_s[r], m_new = fmaxf(m_old, mx);
  const float base = m_new == -INFINITY ? 0.0f : m_new;
  float sum = 0.0f;
#pragma unroll
  for (int e = 0; e < 8; ++e) {
    const float p = __expf(v[e] - base);
    sp[r][part * 8 + e] = __float2bfloat16(p);
    sum += p;
  }
  sum += __shfl_xor_sync(0xffffffffu, sum, 1);
  sum += __shfl_xor_sync(0xffffffffu, sum, 2);
  __syncwarp();
  if (part == 0) {
    const float alpha = __expf(m_old - base);
    m_s[r] = m_new;
    l_s[r] = l_s[r] * alpha + sum;
    al_s[r] = alpha;
  }
}

// O = O * alpha + P V over one step of keys: warp -> MT x 16 rows, NT x 8 value dims.
template <int RANK, int ROPE>
__device__ __forceinline__ void mla_pv(float (&acc)[MlaCfg<RANK, ROPE>::MT][MlaCfg<RANK, ROPE>::NT][4],
                                       const bf16 (*sp)[MlaCfg<RANK, ROPE>::PLD],
                                       const bf16 (*sk)[MlaCfg<RANK, ROPE>::LD], const float* al_s) {
  using C = MlaCfg<RANK, ROPE>;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2;
  const int wm = warp / C::WN, wn = warp % C::WN;
#pragma unroll
  for (int mi = 0; mi < C::MT; ++mi) {
    const int r = (wm * C::MT + mi) * 16 + g;
    const float a0 = al_s[r], a1 = al_s[r + 8];
#pragma unroll
    for (int ni = 0; ni < C::NT; ++ni) {
      acc[mi][ni][0] *= a0;
      acc[mi][ni][1] *= a0;
      acc[mi][ni][2] *= a1;
      acc[mi][ni][3] *= a1;
    }
  }
#pragma unroll
  for (int kk = 0; kk < kKeys / 16; ++kk) {
    uint32_t pf[C::MT][4];
#pragma unroll
    for (int mi = 0; mi < C::MT; ++mi)
      ldsm_x4(pf[mi], &sp[(wm * C::MT + mi) * 16 + (lane & 15)][kk * 16 + (lane >> 4) * 8], false);
#pragma unroll
    for (int ni = 0; ni < C::NT; ni += 2) {
      uint32_t vb[4];
      ldsm_x4(vb, &sk[kk * 16 + (lane & 15)][(wn * C::NT + ni) * 8 + (lane >> 4) * 8], true);
#pragma unroll
      for (int mi = 0; mi < C::MT; ++mi) {
        mma_bf16_16816(acc[mi][ni], pf[mi], vb[0], vb[1]);
        mma_bf16_16816(acc[mi][ni + 1], pf[mi], vb[2], vb[3]);
      }
    }
  }
}

// grid (tiles, splits). work == null: decode, tile i = (seq i / tiles_per_seq,
// rows (i % tiles_per_seq) * kRows). partial == null: one split, out written.
template <int RANK, int ROPE>
__global__ void __launch_bounds__(kThreads, 1)
    mla_attn_kernel(MlaAttnArgs a, const int32_t* work, int split_len, float* partial) {
  using C = MlaCfg<RANK, ROPE>;
  extern __shared__ __align__(16) unsigned char smem[];
  auto* sq = reinterpret_cast<bf16(*)[C::LD]>(smem);
  auto* sk = reinterpret_cast<bf16(*)[kKeys][C::LD]>(smem + C::kQBytes);
  auto* ss = reinterpret_cast<float(*)[C::SLD]>(smem + C::kQBytes + C::kKBytes);
  auto* sp = reinterpret_cast<bf16(*)[C::PLD]>(smem + C::kQBytes + C::kKBytes + C::kSBytes);
  float* m_s = reinterpret_cast<float*>(smem + C::kQBytes + C::kKBytes + C::kSBytes + C::kPBytes);
  float* l_s = m_s + kRows;
  float* al_s = l_s + kRows;

  const int nh = a.num_heads, tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t4 = lane & 3;
  int seq, row0;
  if (work) {
    seq = work[2 * blockIdx.x];
    row0 = work[2 * blockIdx.x + 1];
  } else {
    const int tps = (nh + kRows - 1) / kRows;
    seq = blockIdx.x / tps;
    row0 = (blockIdx.x % tps) * kRows;
  }
  const int qs = a.query_start[seq], q_len = a.query_start[seq + 1] - qs, seq_len = a.seq_lens[seq];
  const int rows = q_len * nh, ctx0 = seq_len - q_len;
  const int last_row = min(row0 + kRows, rows) - 1;
  int key_begin = 0, key_end = ctx0 + last_row / nh + 1;
  const int split = blockIdx.y;
  if (split_len > 0) {
    key_begin = split * split_len;
    key_end = min(key_end, key_begin + split_len);
  }
  const int num_tiles = key_end > key_begin ? (key_end - key_begin + kKeys - 1) / kKeys : 0;

  constexpr int kChunks = C::DP / 8;  // 16-byte chunks per row
  const bf16* qbase = a.q + (static_cast<int64_t>(qs) * nh + row0) * C::D;
  for (int c = tid; c < kRows * kChunks; c += kThreads) {
    const int r = c / kChunks, col = (c % kChunks) * 8;
    const bool ok = row0 + r < rows && col < C::D;
    cp_async16(&sq[r][col], ok ? qbase + static_cast<int64_t>(r) * C::D + col : a.q, ok);
  }
  const int32_t* table = a.block_tables + static_cast<int64_t>(seq) * a.max_blocks_per_seq;
  auto load_keys = [&](int tile, int buf) {
    const int k0 = key_begin + tile * kKeys;
    for (int c = tid; c < kKeys * kChunks; c += kThreads) {
      const int r = c / kChunks, col = (c % kChunks) * 8, key = k0 + r;
      const bool ok = key < key_end && col < C::D;
      const bf16* src = a.kv.base;
      if (ok)
        src = a.kv.base + static_cast<int64_t>(table[key / a.kv.block_size]) * a.kv.block_elems +
              a.layer * a.kv.layer_block_elems + static_cast<int64_t>(key % a.kv.block_size) * a.kv.token_elems + col;
      cp_async16(&sk[buf][r][col], src, ok);
    }
  };
  if (num_tiles > 0) load_keys(0, 0);
  asm volatile("cp.async.commit_group;\n" ::);
  if (tid < kRows) {
    m_s[tid] = -INFINITY;
    l_s[tid] = 0.0f;
  }
  __syncthreads();

  float acc[C::MT][C::NT][4] = {};
  const int wm = warp / C::WN, wn = warp % C::WN;
  for (int tile = 0; tile < num_tiles; ++tile) {
    const int buf = tile & 1, k0 = key_begin + tile * kKeys;
    if (tile + 1 < num_tiles) load_keys(tile + 1, buf ^ 1);
    asm volatile("cp.async.commit_group;\n" ::);
    asm volatile("cp.async.wait_group 1;\n" ::);
    __syncthreads();
    mla_scores<RANK, ROPE>(sq, sk[buf], ss, a, row0, rows, ctx0, k0, key_end);
    __syncthreads();
    mla_softmax<C::SLD, C::PLD>(ss, sp, m_s, l_s, al_s);
    __syncthreads();
    mla_pv<RANK, ROPE>(acc, sp, sk[buf], al_s);
    __syncthreads();
  }
  asm volatile("cp.async.wait_group 0;\n" ::);

  const int splits = gridDim.y;
#pragma unroll
  for (int mi = 0; mi < C::MT; ++mi) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int r = (wm * C::MT + mi) * 16 + g + 8 * h, grow = row0 + r;
      if (grow >= rows) continue;
      const int64_t out_row = static_cast<int64_t>(qs) * nh + grow;
      const float l = l_s[r], inv = l > 0.0f ? 1.0f / l : 0.0f;
      float* prow = partial ? partial + (out_row * splits + split) * (RANK + 2) : nullptr;
#pragma unroll
      for (int ni = 0; ni < C::NT; ++ni) {
        const int col = (wn * C::NT + ni) * 8 + 2 * t4;
        const float x = acc[mi][ni][2 * h], y = acc[mi][ni][2 * h + 1];
        if (prow) {
          prow[col] = x;
          prow[col + 1] = y;
        } else {
          *reinterpret_cast<uint32_t*>(a.out + out_row * RANK + col) = pack_bf16(x * inv, y * inv);
        }
      }
      if (prow && wn == 0 && t4 == 0) {
        prow[RANK] = m_s[r];
        prow[RANK + 1] = l;
      }
    }
  }
}

// One block per (token, head) row: merges the splits' partial results.
__global__ void mla_combine_kernel(const float* partial, int splits, int rank, bf16* out) {
  const int64_t row = blockIdx.x;
  const float* p = partial + row * splits * (rank + 2);
  float m = -INFINITY;
  for (int s = 0; s < splits; ++s) m = fmaxf(m, p[s * (rank + 2) + rank]);
  float den = 0.0f;
  for (int s = 0; s < splits; ++s) {
    const float ms = p[s * (rank + 2) + rank];
    if (ms != -INFINITY) den += __expf(ms - m) * p[s * (rank + 2) + rank + 1];
  }
  const float inv = den > 0.0f ? 1.0f / den : 0.0f;
  for (int d = threadIdx.x; d < rank; d += blockDim.x) {
    float num = 0.0f;
    for (int s = 0; s < splits; ++s) {
      const float ms = p[s * (rank + 2) + rank];
      if (ms != -INFINITY) num += __expf(ms - m) * p[s * (rank + 2) + d];
    }
    out[row * rank + d] = __float2bfloat16(num * inv);
  }
}

template <int RANK, int ROPE>
void launch_tiles(const MlaAttnArgs& a, const int32_t* work, int num_tiles, int split_len, int splits, float* partial,
                  cudaStream_t stream) {
  constexpr size_t smem = MlaCfg<RANK, ROPE>::kSmem;
  set_dynamic_smem(reinterpret_cast<const void*>(mla_attn_kernel<RANK, ROPE>), smem, stream);
  mla_attn_kernel<RANK, ROPE><<<dim3(num_tiles, splits), kThreads, smem, stream>>>(a, work, split_len, partial);
}

void dispatch(const MlaAttnArgs& a, const int32_t* work, int num_tiles, int split_len, int splits, float* partial,
              cudaStream_t stream) {
  if (a.kv_lora_rank == 512 && a.rope_dim == 64)
    launch_tiles<512, 64>(a, work, num_tiles, split_len, splits, partial, stream);
  else if (a.kv_lora_rank == 32 && a.rope_dim == 8)
    launch_tiles<32, 8>(a, work, num_tiles, split_len, splits, partial, stream);
  else BATON_CHECK(false, "MLA attention: kv_lora_rank {} with rope dim {} is not built", a.kv_lora_rank, a.rope_dim);
  BATON_LAUNCH_CHECK();
}

}  // namespace

bool mla_attention_supports(int kv_lora_rank, int rope_dim) {
  return (kv_lora_rank == 512 && rope_dim == 64) || (kv_lora_rank == 32 && rope_dim == 8);
}

int mla_rows_per_tile() { return kRows; }

void launch_mla_prepare(const MlaPrepareArgs& a, cudaStream_t stream) {
  if (a.num_tokens == 0) return;
  mla_prepare_kernel<<<a.num_tokens, 128, 0, stream>>>(a);
  BATON_LAUNCH_CHECK();
}

void launch_mla_q_rope(const MlaQRopeArgs& a, cudaStream_t stream) {
  if (a.num_tokens == 0) return;
  const int threads = std::min(256, std::max(32, a.num_heads * a.rope_dim / 2));
  mla_q_rope_kernel<<<a.num_tokens, threads, 0, stream>>>(a);
  BATON_LAUNCH_CHECK();
}

void launch_mla_split_uk(const bf16* kv_b, bf16* uk_t, int num_heads, int nope, int v_dim, int rank,
                         cudaStream_t stream) {
  const int64_t n = static_cast<int64_t>(num_heads) * nope * rank;
  if (n == 0) return;
  mla_split_uk_kernel<<<static_cast<unsigned>((n + 255) / 256), 256, 0, stream>>>(kv_b, uk_t, num_heads, nope, v_dim,
                                                                                  rank);
  BATON_LAUNCH_CHECK();
}

void launch_mla_attention_prefill(const MlaAttnArgs& a, const int32_t* work, int num_items, cudaStream_t stream) {
  if (num_items == 0) return;
  dispatch(a, work, num_items, 0, 1, nullptr, stream);
}

void launch_mla_attention_decode(const MlaAttnArgs& a, int split_len, int max_splits, float* partial,
                                 cudaStream_t stream) {
  if (a.num_seqs == 0) return;
  const int tiles = a.num_seqs * ((a.num_heads + kRows - 1) / kRows);
  if (max_splits <= 1) {
    dispatch(a, nullptr, tiles, 0, 1, nullptr, stream);
    return;
  }
  BATON_CHECK(split_len > 0 && split_len % 64 == 0, "MLA decode: split_len {} is not a positive multiple of 64",
              split_len);
  dispatch(a, nullptr, tiles, split_len, max_splits, partial, stream);
  mla_combine_kernel<<<a.num_seqs * a.num_heads, 128, 0, stream>>>(partial, max_splits, a.kv_lora_rank, a.out);
  BATON_LAUNCH_CHECK();
}

}  // namespace baton::cuda
