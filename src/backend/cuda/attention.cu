// Attention over the paged KV cache with tensor cores (mma.sync, FA2-style
// online softmax). Rows of a tile are (query token, query head of the group)
// pairs of one KV head, so the heads of a GQA group share every K/V load.
// Prefill: 4 warps x 16 rows, 64-key tiles, causal, any cached prefix.
// Decode: one token; the 4 warps split each 64-key tile, the context is split
// over blocks and merged by a combine kernel.
#include <cfloat>

#include "backend/cuda/cuda_common.h"
#include "backend/cuda/device_utils.cuh"
#include "backend/cuda/kernels.h"
#include "backend/cuda/mma.cuh"

namespace baton::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kThreads = 32 * kWarps;
constexpr int kKeyTile = 64;
constexpr int kVtPad = 8;

// One pipeline stage: a 64-key tile of K and V, row-major [key][dim], rows
// padded by 16 bytes so fragment loads and ldmatrix hit distinct banks.
template <int HD>
struct Stage {
  bf16 k[kKeyTile][HD + 8];
  bf16 v[kKeyTile][HD + 8];
};
constexpr int kStages = 2;

__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool valid) {
  unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  int n = valid ? 16 : 0;  // 0: zero-fill
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(n));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const bf16* p) {
  unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(p));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(s));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const bf16* p) {
  unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(p));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(s));
}

// Starts the asynchronous copy of keys [start, start + 64) of (seq, kvh) into
// `st`; keys at or past `end` are zero-filled.
template <int HD>
__device__ __forceinline__ void issue_kv_tile(Stage<HD>& st, const AttnArgs& a, const int32_t* btab,
                                              int kvh, int start, int end) {
  constexpr int kChunks = HD / 8;
  for (int c = threadIdx.x; c < kKeyTile * kChunks; c += kThreads) {
    int key = c / kChunks, chunk = c % kChunks;
    int kg = start + key;
    bool ok = kg < end;
    const bf16* src = a.kv.base;
    if (ok) {
      int64_t block = btab[kg / a.kv.block_size];
      int row = kg % a.kv.block_size;
      src = a.kv.base + block * a.kv.block_elems + a.layer * a.kv.layer_block_elems +
            static_cast<int64_t>(row) * a.kv.token_elems + static_cast<int64_t>(kvh) * HD + chunk * 8;
    }
    cp_async16(&st.k[key][chunk * 8], src, ok);
    cp_async16(&st.v[key][chunk * 8], ok ? src + a.kv.half_elems : src, ok);
  }
  cp_async_commit();
}

// Per-warp state: 16 rows; lane holds rows g and g + 8.
template <int HD>
struct WarpState {
  float o[HD / 8][4];
  float m[2], l[2];
  uint32_t q[HD / 16][4];
  int qpos[2];  // causal limit of rows g, g+8 (-1: padding row)
};

// Attends the warp's rows to keys [key0, key0 + NK) of the smem tile, whose
// first key has global index tile_start. Keys > qpos or >= end are masked.
template <int HD, int NK>
__device__ __forceinline__ void warp_attend(WarpState<HD>& st, const Stage<HD>& s, int key0,
                                            int tile_start, int end, float scale_log2) {
  const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  float sc[NK / 8][4];
#pragma unroll
  for (int j = 0; j < NK / 8; ++j) {
    sc[j][0] = sc[j][1] = sc[j][2] = sc[j][3] = 0.0f;
    if constexpr (HD % 32 == 0) {
#pragma unroll
      for (int kk = 0; kk < HD / 16; kk += 2) {
        uint32_t kb[4];  // b0, b1 of k-steps kk and kk + 1
        ldmatrix_x4(kb, &s.k[key0 + j * 8 + (lane & 7)][kk * 16 + (lane >> 3) * 8]);
        mma_bf16_16816(sc[j], st.q[kk], kb[0], kb[1]);
        mma_bf16_16816(sc[j], st.q[kk + 1], kb[2], kb[3]);
      }
    } else {
#pragma unroll
      for (int kk = 0; kk < HD / 16; ++kk) {
        const bf16* kr = &s.k[key0 + j * 8 + g][kk * 16 + 2 * t];
        mma_bf16_16816(sc[j], st.q[kk], ld_u32(kr), ld_u32(kr + 8));
      }
    }
  }
  float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
  for (int j = 0; j < NK / 8; ++j) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      int kg = tile_start + key0 + j * 8 + 2 * t + (e & 1);
      int r = e >> 1;
      bool ok = kg < end && kg <= st.qpos[r];
      sc[j][e] = ok ? sc[j][e] * scale_log2 : -INFINITY;
      mx[r] = fmaxf(mx[r], sc[j][e]);
    }
  }
  float corr[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
    mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
    float mnew = fmaxf(st.m[r], mx[r]);
    corr[r] = mnew == -INFINITY ? 1.0f : exp2f(st.m[r] - mnew);
    st.m[r] = mnew;
  }
  float rs[2] = {0.0f, 0.0f};
#pragma unroll
  for (int j = 0; j < NK / 8; ++j) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      int r = e >> 1;
      float p = st.m[r] == -INFINITY ? 0.0f : exp2f(sc[j][e] - st.m[r]);
      sc[j][e] = p;
      rs[r] += p;
    }
  }
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    rs[r] += __shfl_xor_sync(0xffffffffu, rs[r], 1);
    rs[r] += __shfl_xor_sync(0xffffffffu, rs[r], 2);
    st.l[r] = st.l[r] * corr[r] + rs[r];
  }
#pragma unroll
  for (int d = 0; d < HD / 8; ++d) {
    st.o[d][0] *= corr[0];
    st.o[d][1] *= corr[0];
    st.o[d][2] *= corr[1];
    st.o[d][3] *= corr[1];
  }
#pragma unroll
  for (int kk = 0; kk < NK / 16; ++kk) {
    uint32_t pa[4] = {pack_bf16(sc[2 * kk][0], sc[2 * kk][1]), pack_bf16(sc[2 * kk][2], sc[2 * kk][3]),
                      pack_bf16(sc[2 * kk + 1][0], sc[2 * kk + 1][1]),
                      pack_bf16(sc[2 * kk + 1][2], sc[2 * kk + 1][3])};
#pragma unroll
    for (int d = 0; d < HD / 8; d += 2) {
      uint32_t vb[4];
      ldmatrix_x4_trans(vb, &s.v[key0 + kk * 16 + (lane & 15)][d * 8 + (lane >> 4) * 8]);
      mma_bf16_16816(st.o[d], pa, vb[0], vb[1]);
      mma_bf16_16816(st.o[d + 1], pa, vb[2], vb[3]);
    }
  }
}

// Loads the A fragments of q for rows (token i, head hq) of the warp.
template <int HD>
__device__ __forceinline__ void load_q(WarpState<HD>& st, const AttnArgs& a, const int64_t tok[2],
                                       const int hq[2], const bool valid[2]) {
  const int t = (threadIdx.x & 31) & 3;
#pragma unroll
  for (int kk = 0; kk < HD / 16; ++kk) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {  // column halves
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        uint32_t v = 0;
        if (valid[r]) {
          const bf16* qp = a.q + (tok[r] * a.num_heads + hq[r]) * HD + kk * 16 + h * 8 + 2 * t;
          v = ld_u32(qp);
        }
        st.q[kk][h * 2 + r] = v;
      }
    }
  }
}

template <int HD>
__global__ void __launch_bounds__(kThreads) attn_prefill_kernel(AttnArgs a, const int32_t* work) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  Stage<HD>* stages = reinterpret_cast<Stage<HD>*>(smem_raw);
  const int seq = work[2 * blockIdx.x], row0 = work[2 * blockIdx.x + 1];
  const int kvh = blockIdx.y;
  const int group = a.num_heads / a.num_kv_heads;
  const int q0 = a.query_start[seq], q_len = a.query_start[seq + 1] - q0;
  const int seq_len = a.seq_lens[seq], ctx = seq_len - q_len;
  const int32_t* btab = a.block_tables + static_cast<int64_t>(seq) * a.max_blocks_per_seq;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;

  WarpState<HD> st;
  int64_t tok[2];
  int hq[2];
  bool valid[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    int row = row0 + warp * 16 + g + 8 * r;
    int i = row / group;
    valid[r] = i < q_len;
    tok[r] = q0 + i;
    hq[r] = kvh * group + row % group;
    st.qpos[r] = valid[r] ? ctx + i : -1;
    st.m[r] = -INFINITY;
    st.l[r] = 0.0f;
  }
#pragma unroll
  for (int d = 0; d < HD / 8; ++d) st.o[d][0] = st.o[d][1] = st.o[d][2] = st.o[d][3] = 0.0f;
  load_q<HD>(st, a, tok, hq, valid);

  int last_i = min(q_len - 1, (row0 + kWarps * 16 - 1) / group);
  int end = min(seq_len, ctx + last_i + 1);
  const float scale_log2 = a.scale * 1.4426950408889634f;
  const int num_tiles = (end + kKeyTile - 1) / kKeyTile;
  if (num_tiles > 0) issue_kv_tile<HD>(stages[0], a, btab, kvh, 0, end);
  for (int i = 0; i < num_tiles; ++i) {
    if (i + 1 < num_tiles) issue_kv_tile<HD>(stages[(i + 1) & 1], a, btab, kvh, (i + 1) * kKeyTile, end);
    else cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    warp_attend<HD, kKeyTile>(st, stages[i & 1], 0, i * kKeyTile, end, scale_log2);
    __syncthreads();
  }
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    if (!valid[r]) continue;
    float inv = st.l[r] > 0.0f ? 1.0f / st.l[r] : 0.0f;
    bf16* op = a.out + (tok[r] * a.num_heads + hq[r]) * HD;
#pragma unroll
    for (int d = 0; d < HD / 8; ++d) {
      *reinterpret_cast<uint32_t*>(op + d * 8 + 2 * t) =
          pack_bf16(st.o[d][2 * r] * inv, st.o[d][2 * r + 1] * inv);
    }
  }
}

// grid (S, nkv, max_splits). Rows: the group's heads of the one query token.
template <int HD>
__global__ void __launch_bounds__(kThreads) attn_decode_kernel(AttnArgs a, int split_len,
                                                               int max_splits, float* partial) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  Stage<HD>* stages = reinterpret_cast<Stage<HD>*>(smem_raw);
  const int seq = blockIdx.x, kvh = blockIdx.y, split = blockIdx.z;
  const int group = a.num_heads / a.num_kv_heads;
  const int seq_len = a.seq_lens[seq];
  const int kv_begin = split * split_len;
  if (kv_begin >= seq_len && !(split == 0)) return;
  const int kv_end = min(seq_len, kv_begin + split_len);
  const int tok0 = a.query_start[seq];
  const int32_t* btab = a.block_tables + static_cast<int64_t>(seq) * a.max_blocks_per_seq;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;

  WarpState<HD> st;
  int64_t tok[2];
  int hq[2];
  bool valid[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    int row = g + 8 * r;
    valid[r] = row < group;
    tok[r] = tok0;
    hq[r] = kvh * group + row;
    st.qpos[r] = valid[r] ? seq_len - 1 : -1;
    st.m[r] = -INFINITY;
    st.l[r] = 0.0f;
  }
#pragma unroll
  for (int d = 0; d < HD / 8; ++d) st.o[d][0] = st.o[d][1] = st.o[d][2] = st.o[d][3] = 0.0f;
  load_q<HD>(st, a, tok, hq, valid);

  const float scale_log2 = a.scale * 1.4426950408889634f;
  const int num_tiles = (kv_end - kv_begin + kKeyTile - 1) / kKeyTile;
  if (num_tiles > 0) issue_kv_tile<HD>(stages[0], a, btab, kvh, kv_begin, kv_end);
  for (int i = 0; i < num_tiles; ++i) {
    if (i + 1 < num_tiles) issue_kv_tile<HD>(stages[(i + 1) & 1], a, btab, kvh, kv_begin + (i + 1) * kKeyTile, kv_end);
    else cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    warp_attend<HD, 16>(st, stages[i & 1], warp * 16, kv_begin + i * kKeyTile, kv_end, scale_log2);
    __syncthreads();
  }
  cp_async_wait<0>();
  __syncthreads();
  // Merge the 4 warps' states through shared memory (reusing the stages).
  float* red = reinterpret_cast<float*>(smem_raw);   // [warps][16][HD + 2]
  constexpr int kStride = HD + 2;
  static_assert(kStages * sizeof(Stage<HD>) >= kWarps * 16 * kStride * sizeof(float), "smem reuse");
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float* rowp = red + (warp * 16 + g + 8 * r) * kStride;
#pragma unroll
    for (int d = 0; d < HD / 8; ++d) {
      rowp[d * 8 + 2 * t] = st.o[d][2 * r];
      rowp[d * 8 + 2 * t + 1] = st.o[d][2 * r + 1];
    }
    if (t == 0) {
      rowp[HD] = st.m[r];
      rowp[HD + 1] = st.l[r];
    }
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < group * HD; idx += kThreads) {
    int row = idx / HD, d = idx % HD;
    float mm = -INFINITY;
    for (int w = 0; w < kWarps; ++w) mm = fmaxf(mm, red[(w * 16 + row) * kStride + HD]);
    float o = 0.0f, l = 0.0f;
    for (int w = 0; w < kWarps; ++w) {
      const float* rp = red + (w * 16 + row) * kStride;
      float f = rp[HD] == -INFINITY ? 0.0f : exp2f(rp[HD] - mm);
      o += rp[d] * f;
      l += rp[HD + 1] * f;
    }
    // partial: [S, nh, max_splits, HD + 2]: o / l, then m (log2 units), l
    float* pp = partial + ((static_cast<int64_t>(seq) * a.num_heads + kvh * group + row) * max_splits +
                           split) * (HD + 2);
    pp[d] = l > 0.0f ? o / l : 0.0f;
    if (d == 0) {
      pp[HD] = mm;
      pp[HD + 1] = l;
    }
  }
}

// grid (S, nh), HD threads.
__global__ void attn_combine_kernel(AttnArgs a, int split_len, int max_splits, const float* partial) {
  const int seq = blockIdx.x, h = blockIdx.y, d = threadIdx.x;
  const int hd = a.head_dim;
  const int splits = max(1, min(max_splits, (a.seq_lens[seq] + split_len - 1) / split_len));
  const float* pp = partial + (static_cast<int64_t>(seq) * a.num_heads + h) * max_splits * (hd + 2);
  float mm = -INFINITY;
  for (int sp = 0; sp < splits; ++sp) mm = fmaxf(mm, pp[sp * (hd + 2) + hd]);
  float o = 0.0f, w = 0.0f;
  for (int sp = 0; sp < splits; ++sp) {
    const float* q = pp + sp * (hd + 2);
    float f = q[hd] == -INFINITY ? 0.0f : exp2f(q[hd] - mm) * q[hd + 1];
    o += q[d] * f;
    w += f;
  }
  int tok = a.query_start[seq];
  a.out[(static_cast<int64_t>(tok) * a.num_heads + h) * hd + d] = __float2bfloat16(w > 0.0f ? o / w : 0.0f);
}

}  // namespace

int attention_rows_per_tile() { return kWarps * 16; }

template <int HD>
void prefill_hd(const AttnArgs& a, const int32_t* work, int num_items, cudaStream_t stream) {
  constexpr size_t smem = kStages * sizeof(Stage<HD>);
  static bool configured = false;
  if (!configured) {
    BATON_CUDA_CHECK(cudaFuncSetAttribute(attn_prefill_kernel<HD>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                          static_cast<int>(smem)));
    configured = true;
  }
  attn_prefill_kernel<HD><<<dim3(num_items, a.num_kv_heads), kThreads, smem, stream>>>(a, work);
}

template <int HD>
void decode_hd(const AttnArgs& a, int split_len, int max_splits, float* partial, cudaStream_t stream) {
  constexpr size_t smem = kStages * sizeof(Stage<HD>);
  static bool configured = false;
  if (!configured) {
    BATON_CUDA_CHECK(cudaFuncSetAttribute(attn_decode_kernel<HD>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                          static_cast<int>(smem)));
    configured = true;
  }
  attn_decode_kernel<HD><<<dim3(a.num_seqs, a.num_kv_heads, max_splits), kThreads, smem, stream>>>(
      a, split_len, max_splits, partial);
}

void launch_attention_prefill(const AttnArgs& a, const int32_t* work, int num_items,
                              cudaStream_t stream) {
  if (num_items == 0) return;
  switch (a.head_dim) {
    case 16: prefill_hd<16>(a, work, num_items, stream); break;
    case 32: prefill_hd<32>(a, work, num_items, stream); break;
    case 64: prefill_hd<64>(a, work, num_items, stream); break;
    case 128: prefill_hd<128>(a, work, num_items, stream); break;
    default: BATON_CHECK(false, "attention: unsupported head_dim {}", a.head_dim);
  }
  BATON_LAUNCH_CHECK();
}

void launch_attention_decode(const AttnArgs& a, int split_len, int max_splits, float* partial,
                             cudaStream_t stream) {
  if (a.num_seqs == 0) return;
  BATON_CHECK(a.num_heads / a.num_kv_heads <= 16, "decode attention: GQA group > 16");
  BATON_CHECK(split_len % kKeyTile == 0, "split_len {}", split_len);
  switch (a.head_dim) {
    case 16: decode_hd<16>(a, split_len, max_splits, partial, stream); break;
    case 32: decode_hd<32>(a, split_len, max_splits, partial, stream); break;
    case 64: decode_hd<64>(a, split_len, max_splits, partial, stream); break;
    case 128: decode_hd<128>(a, split_len, max_splits, partial, stream); break;
    default: BATON_CHECK(false, "attention: unsupported head_dim {}", a.head_dim);
  }
  BATON_LAUNCH_CHECK();
  attn_combine_kernel<<<dim3(a.num_seqs, a.num_heads), a.head_dim, 0, stream>>>(a, split_len, max_splits,
                                                                               partial);
  BATON_LAUNCH_CHECK();
}

}  // namespace baton::cuda
