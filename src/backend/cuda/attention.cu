// Attention over the paged KV cache with tensor cores (mma.sync, FA2-style
// online softmax). Rows of a tile are (query token, query head of the group)
// pairs of one KV head, so the heads of a GQA group share every K/V load.
// Prefill: 4 warps x 32 rows, 64-key tiles, causal, any cached prefix; any
// head_dim the backend serves and any cache block size. Where the Hopper
// kernel serves the arguments (head_dim 128, power-of-two block size:
// attention_wgmma_ws.cu) prefill goes there instead; this one is the general
// fallback. Decode: one token; the 4 warps split each 64-key tile, the context
// is split over blocks and merged by a combine kernel.
#include <cfloat>

#include "backend/cuda/attention_softmax.cuh"
#include "backend/cuda/attention_wgmma.h"
#include "backend/cuda/cuda_common.h"
#include "backend/cuda/device_utils.cuh"
#include "backend/cuda/kernels.h"
#include "backend/cuda/kv_fp8.cuh"
#include "backend/cuda/mma.cuh"

namespace baton::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kThreads = 32 * kWarps;
constexpr int kKeyTile = 64;

// One pipeline stage: a KT-key tile of K and V, row-major [key][dim], rows
// padded by 16 bytes so fragment loads and ldmatrix hit distinct banks.
template <int HD, int KT = kKeyTile>
struct Stage {
  bf16 k[KT][HD + 8];
  bf16 v[KT][HD + 8];
};
constexpr int kStages = 2;

__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool valid) {
  unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  int n = valid ? 16 : 0;  // 0: zero-fill
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(n));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

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
// `st`; keys at or past `end` are zero-filled. An FP8 cache (a.kv.fp8) is
// loaded and converted to bf16 here instead (synchronously: the stage's
// previous readers are past a __syncthreads, the next ones wait at one).
template <int HD, int KT = kKeyTile, int NT = kThreads>
__device__ __forceinline__ void issue_kv_tile(Stage<HD, KT>& st, const AttnArgs& a, const int32_t* btab, int kvh,
                                              int start, int end) {
  constexpr int kChunks = HD / 8;
  for (int c = threadIdx.x; c < KT * kChunks; c += NT) {
    int key = c / kChunks, chunk = c % kChunks;
    int kg = start + key;
    bool ok = kg < end;
    int64_t off = 0;
    if (ok) {
      int64_t block = btab[kg / a.kv.block_size];
      int row = kg % a.kv.block_size;
      off = block * a.kv.block_elems + a.layer * a.kv.layer_block_elems + static_cast<int64_t>(row) * a.kv.token_elems +
            static_cast<int64_t>(kvh) * HD + chunk * 8;
    }
    if (a.kv.fp8 != nullptr) {
      const uint4 zero = make_uint4(0, 0, 0, 0);
      *reinterpret_cast<uint4*>(
          &st.k[key][chunk * 8]) = ok ? kv_fp8x8_to_bf16x8(*reinterpret_cast<const uint2*>(a.kv.fp8 + off)) : zero;
      *reinterpret_cast<uint4*>(&st.v[key][chunk * 8]) = ok ? kv_fp8x8_to_bf16x8(*reinterpret_cast<const uint2*>(
                                                                  a.kv.fp8 + off + a.kv.half_elems))
                                                            : zero;
      continue;
    }
    const bf16* src = a.kv.base + off;
    cp_async16(&st.k[key][chunk * 8], src, ok);
    cp_async16(&st.v[key][chunk * 8], ok ? src + a.kv.half_elems : src, ok);
  }
  cp_async_commit();
}

// Per-warp state: MT m-tiles of 16 rows; in m-tile mt a lane holds rows g and g + 8.
template <int HD, int MT, bool QS = false>
struct WarpState {
  float o[MT][HD / 8][4];
  float m[MT][2], l[MT][2];
  uint32_t q[QS ? 1 : MT][QS ? 1 : HD / 16][4];  // unused when q lives in shared memory
  int qpos[MT][2];                               // causal limit of each row (-1: padding row)
  int min_qpos;                                  // the smallest over the warp's rows
};

template <typename St>
__device__ __forceinline__ void set_min_qpos(St& st, int mt_count) {
  int v = 0x7fffffff;
  for (int mt = 0; mt < mt_count; ++mt) v = min(v, min(st.qpos[mt][0], st.qpos[mt][1]));
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = min(v, __shfl_xor_sync(0xffffffffu, v, o));
  st.min_qpos = v;
}

// Attends the warp's rows to keys [key0, key0 + NK) of the smem tile, whose
// first key has global index tile_start. Keys > qpos or >= end are masked.
// Every K and V fragment loaded from shared memory serves all MT m-tiles.
template <int HD, int MT, int NK, bool QS = false, int KT = kKeyTile>
__device__ __forceinline__ void warp_attend(WarpState<HD, MT, QS>& st, const Stage<HD, KT>& s, int key0, int tile_start,
                                            int end, float scale_log2, const bf16 (*qs)[HD + 8] = nullptr) {
  const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  float sc[MT][NK / 2];  // 8-key group j: sc[mt][4j .. 4j + 3] (attention_softmax.cuh)
  auto acc = [&](int mt, int j) -> float(&)[4] { return *reinterpret_cast<float(*)[4]>(&sc[mt][4 * j]); };
  if constexpr (QS) {
    // q from shared memory (warp rows [32 * warp, +32)), one k-step at a time;
    // K fragments for two 8-key groups per ldmatrix.x4.
    static_assert(NK % 16 == 0, "QS needs key pairs");
#pragma unroll
    for (int j = 0; j < NK / 8; ++j)
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) sc[mt][4 * j] = sc[mt][4 * j + 1] = sc[mt][4 * j + 2] = sc[mt][4 * j + 3] = 0.0f;
#pragma unroll 2
    for (int kk = 0; kk < HD / 16; ++kk) {
      uint32_t qa[MT][4];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) ldmatrix_x4(qa[mt], &qs[mt * 16 + (lane & 15)][kk * 16 + (lane >> 4) * 8]);
#pragma unroll
      for (int j = 0; j < NK / 8; j += 2) {
        uint32_t kb[4];  // b0, b1 of key groups j and j + 1
        ldmatrix_x4(kb, &s.k[key0 + j * 8 + (lane & 7) + ((lane >> 4) << 3)][kk * 16 + ((lane >> 3) & 1) * 8]);
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          mma_bf16_16816(acc(mt, j), qa[mt], kb[0], kb[1]);
          mma_bf16_16816(acc(mt, j + 1), qa[mt], kb[2], kb[3]);
        }
      }
    }
  }
#pragma unroll
  for (int j = 0; j < NK / 8 && !QS; ++j) {
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) sc[mt][4 * j] = sc[mt][4 * j + 1] = sc[mt][4 * j + 2] = sc[mt][4 * j + 3] = 0.0f;
    if constexpr (HD % 32 == 0) {
#pragma unroll
      for (int kk = 0; kk < HD / 16; kk += 2) {
        uint32_t kb[4];  // b0, b1 of k-steps kk and kk + 1
        ldmatrix_x4(kb, &s.k[key0 + j * 8 + (lane & 7)][kk * 16 + (lane >> 3) * 8]);
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
          if constexpr (!QS) {
            mma_bf16_16816(acc(mt, j), st.q[mt][kk], kb[0], kb[1]);
            mma_bf16_16816(acc(mt, j), st.q[mt][kk + 1], kb[2], kb[3]);
          }
        }
      }
    } else {
#pragma unroll
      for (int kk = 0; kk < HD / 16; ++kk) {
        const bf16* kr = &s.k[key0 + j * 8 + g][kk * 16 + 2 * t];
        const uint32_t b0 = ld_u32(kr), b1 = ld_u32(kr + 8);
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
          if constexpr (!QS) mma_bf16_16816(acc(mt, j), st.q[mt][kk], b0, b1);
      }
    }
  }
  // Masking is needed only where a key may be past a row's causal limit or
  // the end (the diagonal and last tiles); st.min_qpos is the warp's smallest.
  const bool need_mask = tile_start + key0 + NK - 1 > st.min_qpos || tile_start + key0 + NK > end;
#pragma unroll
  for (int mt = 0; mt < MT; ++mt) {
    float corr[2];
    online_softmax_tile(sc[mt], st.m[mt], st.l[mt], corr, st.qpos[mt], tile_start + key0, end, need_mask, scale_log2,
                        t);
    // Once the running max settles, corr is 1 for every row: skip the rescale.
    if (!__all_sync(0xffffffffu, corr[0] == 1.0f && corr[1] == 1.0f)) {
#pragma unroll
      for (int d = 0; d < HD / 8; ++d) {
        st.o[mt][d][0] *= corr[0];
        st.o[mt][d][1] *= corr[0];
        st.o[mt][d][2] *= corr[1];
        st.o[mt][d][3] *= corr[1];
      }
    }
  }
#pragma unroll
  for (int kk = 0; kk < NK / 16; ++kk) {
    uint32_t pa[MT][4];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
      pa[mt][0] = pack_bf16(sc[mt][8 * kk + 0], sc[mt][8 * kk + 1]);
      pa[mt][1] = pack_bf16(sc[mt][8 * kk + 2], sc[mt][8 * kk + 3]);
      pa[mt][2] = pack_bf16(sc[mt][8 * kk + 4], sc[mt][8 * kk + 5]);
      pa[mt][3] = pack_bf16(sc[mt][8 * kk + 6], sc[mt][8 * kk + 7]);
    }
#pragma unroll
    for (int d = 0; d < HD / 8; d += 2) {
      uint32_t vb[4];
      ldmatrix_x4_trans(vb, &s.v[key0 + kk * 16 + (lane & 15)][d * 8 + (lane >> 4) * 8]);
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        mma_bf16_16816(st.o[mt][d], pa[mt], vb[0], vb[1]);
        mma_bf16_16816(st.o[mt][d + 1], pa[mt], vb[2], vb[3]);
      }
    }
  }
}

// Loads the A fragments of q for m-tile mt: rows (token tok[r], head hq[r]).
template <int HD, int MT>
__device__ __forceinline__ void load_q(WarpState<HD, MT, false>& st, int mt, const AttnArgs& a, const int64_t tok[2],
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
        st.q[mt][kk][h * 2 + r] = v;
      }
    }
  }
}

// Prefill: each warp owns kPrefillMT m-tiles (32 rows); a block 128 rows.
constexpr int kPrefillMT = 2;
constexpr int kPrefillRows = kWarps * 16 * kPrefillMT;

template <int HD, bool QS>
__global__ void __launch_bounds__(kThreads) attn_prefill_kernel(AttnArgs a, const int32_t* work) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  Stage<HD>* stages = reinterpret_cast<Stage<HD>*>(smem_raw);
  bf16(*qsm)[HD + 8] = reinterpret_cast<bf16(*)[HD + 8]>(smem_raw + kStages * sizeof(Stage<HD>));  // [128][HD + 8]
  // grid (kv heads, items): blocks launch item-major, so the heaviest items of
  // every head start first and the causal tail is light.
  const int seq = work[2 * blockIdx.y], row0 = work[2 * blockIdx.y + 1];
  const int kvh = blockIdx.x;
  const int group = a.num_heads / a.num_kv_heads;
  const int q0 = a.query_start[seq], q_len = a.query_start[seq + 1] - q0;
  const int seq_len = a.seq_lens[seq], ctx = seq_len - q_len;
  const int32_t* btab = a.block_tables + static_cast<int64_t>(seq) * a.max_blocks_per_seq;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;

  WarpState<HD, kPrefillMT, QS> st;
  if constexpr (QS) {  // the block's 128 q rows into shared memory
    constexpr int kChunks = HD / 8;
    for (int c = threadIdx.x; c < kPrefillRows * kChunks; c += kThreads) {
      const int rr = c / kChunks, chunk = c % kChunks, row = row0 + rr, i = row / group;
      uint4 v = make_uint4(0, 0, 0, 0);
      if (i < q_len)
        v = *reinterpret_cast<const uint4*>(
            a.q + ((static_cast<int64_t>(q0) + i) * a.num_heads + kvh * group + row % group) * HD + chunk * 8);
      *reinterpret_cast<uint4*>(&qsm[rr][chunk * 8]) = v;
    }
  }
  // Row r of m-tile mt: (token q0 + i, head kvh * group + row % group).
  auto row_of = [&](int mt, int r) { return row0 + warp * 16 * kPrefillMT + mt * 16 + g + 8 * r; };
#pragma unroll
  for (int mt = 0; mt < kPrefillMT; ++mt) {
    int64_t tok[2];
    int hq[2];
    bool valid[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      int row = row_of(mt, r);
      int i = row / group;
      valid[r] = i < q_len;
      tok[r] = q0 + i;
      hq[r] = kvh * group + row % group;
      st.qpos[mt][r] = valid[r] ? ctx + i : -1;
      st.m[mt][r] = -INFINITY;
      st.l[mt][r] = 0.0f;
    }
#pragma unroll
    for (int d = 0; d < HD / 8; ++d) st.o[mt][d][0] = st.o[mt][d][1] = st.o[mt][d][2] = st.o[mt][d][3] = 0.0f;
    if constexpr (!QS) load_q<HD, kPrefillMT>(st, mt, a, tok, hq, valid);
  }

  set_min_qpos(st, kPrefillMT);
  int last_i = min(q_len - 1, (row0 + kPrefillRows - 1) / group);
  int end = min(seq_len, ctx + last_i + 1);
  const float scale_log2 = a.scale * 1.4426950408889634f;
  const int num_tiles = (end + kKeyTile - 1) / kKeyTile;
  if (num_tiles > 0) issue_kv_tile<HD>(stages[0], a, btab, kvh, 0, end);
  for (int i = 0; i < num_tiles; ++i) {
    if (i + 1 < num_tiles) issue_kv_tile<HD>(stages[(i + 1) & 1], a, btab, kvh, (i + 1) * kKeyTile, end);
    else cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    const bf16(*wq)[HD + 8] = qsm + warp * 16 * kPrefillMT;
    warp_attend<HD, kPrefillMT, kKeyTile / 2, QS>(st, stages[i & 1], 0, i * kKeyTile, end, scale_log2, wq);
    warp_attend<HD, kPrefillMT, kKeyTile / 2, QS>(st, stages[i & 1], kKeyTile / 2, i * kKeyTile, end, scale_log2, wq);
    __syncthreads();
  }
#pragma unroll
  for (int mt = 0; mt < kPrefillMT; ++mt) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      if (st.qpos[mt][r] < 0) continue;
      const int row = row_of(mt, r);
      float inv = st.l[mt][r] > 0.0f ? 1.0f / st.l[mt][r] : 0.0f;
      bf16* op = a.out + ((static_cast<int64_t>(q0) + row / group) * a.num_heads + kvh * group + row % group) * HD;
#pragma unroll
      for (int d = 0; d < HD / 8; ++d) {
        *reinterpret_cast<uint32_t*>(op + d * 8 + 2 * t) = pack_bf16(st.o[mt][d][2 * r] * inv,
                                                                     st.o[mt][d][2 * r + 1] * inv);
      }
    }
  }
}

// grid (S, nkv, max_splits). Rows: the group's heads of the one query token.
// KT-key tiles, one 16-key slice a warp (KT / 16 warps), ST stages in flight.
template <int HD, int KT, int ST>
__global__ void __launch_bounds__(2 * KT)
    attn_decode_kernel(AttnArgs a, int split_len, int max_splits, float* partial) {
  constexpr int kDecWarps = KT / 16, kDecThreads = 32 * kDecWarps;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  Stage<HD, KT>* stages = reinterpret_cast<Stage<HD, KT>*>(smem_raw);
  const int seq = blockIdx.x, kvh = blockIdx.y, split = blockIdx.z;
  const int group = a.num_heads / a.num_kv_heads;
  const int seq_len = a.seq_lens[seq];
  const int kv_begin = split * split_len;
  if (kv_begin >= seq_len && !(split == 0)) return;
  const int kv_end = min(seq_len, kv_begin + split_len);
  const int tok0 = a.query_start[seq];
  const int32_t* btab = a.block_tables + static_cast<int64_t>(seq) * a.max_blocks_per_seq;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int num_tiles = (kv_end - kv_begin + KT - 1) / KT;
  // Before the wait: the step's inputs above (lengths, query starts, block
  // tables) and the first tiles that hold no key of this step (the newest,
  // seq_len - 1, is the rope kernel's write just before).
  int early_tiles = 0;
  for (; early_tiles < ST - 1 && early_tiles < num_tiles; ++early_tiles) {
    if (min(kv_end, kv_begin + (early_tiles + 1) * KT) > seq_len - 1) break;
    issue_kv_tile<HD, KT, kDecThreads>(stages[early_tiles], a, btab, kvh, kv_begin + early_tiles * KT, kv_end);
  }
  pdl_wait();

  WarpState<HD, 1> st;
  int64_t tok[2];
  int hq[2];
  bool valid[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    int row = g + 8 * r;
    valid[r] = row < group;
    tok[r] = tok0;
    hq[r] = kvh * group + row;
    st.qpos[0][r] = valid[r] ? seq_len - 1 : -1;
    st.m[0][r] = -INFINITY;
    st.l[0][r] = 0.0f;
  }
#pragma unroll
  for (int d = 0; d < HD / 8; ++d) st.o[0][d][0] = st.o[0][d][1] = st.o[0][d][2] = st.o[0][d][3] = 0.0f;
  load_q<HD, 1>(st, 0, a, tok, hq, valid);
  set_min_qpos(st, 1);

  const float scale_log2 = a.scale * 1.4426950408889634f;
  for (int p = early_tiles; p < ST - 1; ++p) {
    if (p < num_tiles) issue_kv_tile<HD, KT, kDecThreads>(stages[p], a, btab, kvh, kv_begin + p * KT, kv_end);
    else cp_async_commit();
  }
  for (int i = 0; i < num_tiles; ++i) {
    const int next = i + ST - 1;
    if (next < num_tiles)
      issue_kv_tile<HD, KT, kDecThreads>(stages[next % ST], a, btab, kvh, kv_begin + next * KT, kv_end);
    else cp_async_commit();
    cp_async_wait<ST - 1>();
    __syncthreads();
    warp_attend<HD, 1, 16, false, KT>(st, stages[i % ST], warp * 16, kv_begin + i * KT, kv_end, scale_log2);
    __syncthreads();
  }
  cp_async_wait<0>();
  __syncthreads();
  // Merge the warps' states through shared memory (reusing the stages): each
  // warp's rows of the group only (a GQA group of 4 fills 4 of the 16 rows).
  float* red = reinterpret_cast<float*>(smem_raw);  // [warps][group][HD + 2]
  constexpr int kStride = HD + 2;
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    if (!valid[r]) continue;
    float* rowp = red + (warp * group + g + 8 * r) * kStride;
#pragma unroll
    for (int d = 0; d < HD / 8; ++d)
      *reinterpret_cast<float2*>(rowp + d * 8 + 2 * t) = make_float2(st.o[0][d][2 * r], st.o[0][d][2 * r + 1]);
    if (t == 0) {
      rowp[HD] = st.m[0][r];
      rowp[HD + 1] = st.l[0][r];
    }
  }
  // Per row: the warps' weights (their max-shifted sums' shares, over the
  // row's sum), then the row's max and sum: [group][warps + 2] after red.
  float* fac = red + kDecWarps * group * kStride;
  static_assert(ST * sizeof(Stage<HD, KT>) >= (kDecWarps * 16 * kStride + 16 * (kDecWarps + 2)) * sizeof(float),
                "smem reuse");
  __syncthreads();
  if (threadIdx.x < group) {
    const int row = threadIdx.x;
    float mm = -INFINITY, l = 0.0f, f[kDecWarps];
#pragma unroll
    for (int w = 0; w < kDecWarps; ++w) mm = fmaxf(mm, red[(w * group + row) * kStride + HD]);
#pragma unroll
    for (int w = 0; w < kDecWarps; ++w) {
      const float* rp = red + (w * group + row) * kStride;
      f[w] = rp[HD] == -INFINITY ? 0.0f : exp2f(rp[HD] - mm);
      l += rp[HD + 1] * f[w];
    }
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
    float* fr = fac + row * (kDecWarps + 2);
#pragma unroll
    for (int w = 0; w < kDecWarps; ++w) fr[w] = f[w] * inv;
    fr[kDecWarps] = mm;
    fr[kDecWarps + 1] = l;
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < group * HD; idx += kDecThreads) {
    const int row = idx / HD, d = idx % HD;
    const float* fr = fac + row * (kDecWarps + 2);
    float o = 0.0f;
#pragma unroll
    for (int w = 0; w < kDecWarps; ++w) o += red[(w * group + row) * kStride + d] * fr[w];
    // partial: [S, nh, max_splits, HD + 2]: o / l, then m (log2 units), l
    float* pp = partial +
                ((static_cast<int64_t>(seq) * a.num_heads + kvh * group + row) * max_splits + split) * (HD + 2);
    pp[d] = o;
    if (d == 0) {
      pp[HD] = fr[kDecWarps];
      pp[HD + 1] = fr[kDecWarps + 1];
    }
  }
}

// grid (S, nh), HD threads. Up to kCombineSplitsInFlight splits every
// split's values are loaded before the first is used, and the next kernel
// (the o projection) may launch only at this one's end. On an H100 (session
// 31, 5 runs a side) the two together ran the decode step at one token 0.980
// of the loops' (Qwen3-30B-A3B, with the MoE combine's rows loaded at once,
// moe.cu) and 0.997 (Llama-3.1-8B bf16); the loads alone 0.974 and 1.007:
// with the early trigger a faster combine let the o projection's blocks in
// sooner, and Llama's o projection and attention cost 74 and 79 us more a
// step (--kernel-costs).
constexpr int kCombineSplitsInFlight = 16;
__global__ void attn_combine_kernel(AttnArgs a, int split_len, int max_splits, const float* partial) {
  const int seq = blockIdx.x, h = blockIdx.y, d = threadIdx.x;
  const int hd = a.head_dim;
  const int splits = max(1, min(max_splits, (a.seq_lens[seq] + split_len - 1) / split_len));
  const int tok = a.query_start[seq];
  pdl_wait<false>();  // the step's inputs above were read before it; the next kernel launches at the end
  const float* pp = partial + (static_cast<int64_t>(seq) * a.num_heads + h) * max_splits * (hd + 2);
  float mm = -INFINITY, o = 0.0f, w = 0.0f;
  if (splits <= kCombineSplitsInFlight) {
    // Every split's m, l and o[d] loaded at once, then the same sums in the
    // same order as below: one wait on memory, where the loops below wait
    // on it once per few splits.
    float ms[kCombineSplitsInFlight], ls[kCombineSplitsInFlight], os[kCombineSplitsInFlight];
#pragma unroll
    for (int sp = 0; sp < kCombineSplitsInFlight; ++sp) {
      if (sp >= splits) break;
      const float* q = pp + sp * (hd + 2);
      ms[sp] = q[hd];
      ls[sp] = q[hd + 1];
      os[sp] = q[d];
    }
#pragma unroll
    for (int sp = 0; sp < kCombineSplitsInFlight; ++sp)
      if (sp < splits) mm = fmaxf(mm, ms[sp]);
#pragma unroll
    for (int sp = 0; sp < kCombineSplitsInFlight; ++sp) {
      if (sp >= splits) break;
      const float f = ms[sp] == -INFINITY ? 0.0f : exp2f(ms[sp] - mm) * ls[sp];
      o += os[sp] * f;
      w += f;
    }
  } else {
    for (int sp = 0; sp < splits; ++sp) mm = fmaxf(mm, pp[sp * (hd + 2) + hd]);
    for (int sp = 0; sp < splits; ++sp) {
      const float* q = pp + sp * (hd + 2);
      float f = q[hd] == -INFINITY ? 0.0f : exp2f(q[hd] - mm) * q[hd + 1];
      o += q[d] * f;
      w += f;
    }
  }
  a.out[(static_cast<int64_t>(tok) * a.num_heads + h) * hd + d] = __float2bfloat16(w > 0.0f ? o / w : 0.0f);
  pdl_trigger();
}

}  // namespace

int attention_rows_per_tile() { return kPrefillRows; }

// q lives in shared memory for head_dim 128 (in registers it spills), in
// registers below.
template <int HD>
void prefill_hd(const AttnArgs& a, const int32_t* work, int num_items, cudaStream_t stream) {
  constexpr bool kQs = HD == 128;
  constexpr size_t smem = kStages * sizeof(Stage<HD>) + (kQs ? kPrefillRows * (HD + 8) * sizeof(bf16) : 0);
  set_dynamic_smem(reinterpret_cast<const void*>(attn_prefill_kernel<HD, kQs>), smem, stream);
  attn_prefill_kernel<HD, kQs><<<dim3(a.num_kv_heads, num_items), kThreads, smem, stream>>>(a, work);
}

template <int HD, int KT = kKeyTile, int ST = kStages>
void decode_hd(const AttnArgs& a, int split_len, int max_splits, float* partial, cudaStream_t stream) {
  constexpr size_t smem = ST * sizeof(Stage<HD, KT>);
  set_dynamic_smem(reinterpret_cast<const void*>(attn_decode_kernel<HD, KT, ST>), smem, stream);
  launch_pdl(attn_decode_kernel<HD, KT, ST>, dim3(a.num_seqs, a.num_kv_heads, max_splits), 2 * KT, smem, stream, a,
             split_len, max_splits, partial);
}

void launch_attention_prefill(const AttnArgs& a, const int32_t* work, int num_items, cudaStream_t stream) {
  if (num_items == 0) return;
  BATON_CHECK(num_items <= 65535, "attention: {} work items in one step", num_items);
  if (attention_wgmma_ws_supports(a) && a.kv.fp8 == nullptr) {  // the Hopper kernel reads a bf16 cache only
    launch_attention_prefill_wgmma_ws(a, work, num_items, stream);
    return;
  }
  switch (a.head_dim) {
    case 16: prefill_hd<16>(a, work, num_items, stream); break;
    case 32: prefill_hd<32>(a, work, num_items, stream); break;
    case 64: prefill_hd<64>(a, work, num_items, stream); break;
    case 128: prefill_hd<128>(a, work, num_items, stream); break;
    default: BATON_CHECK(false, "attention: unsupported head_dim {}", a.head_dim);
  }
  BATON_LAUNCH_CHECK();
}

void launch_attention_decode(const AttnArgs& a, int split_len, int max_splits, float* partial, cudaStream_t stream) {
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
  launch_pdl(attn_combine_kernel, dim3(a.num_seqs, a.num_heads), a.head_dim, 0, stream, a, split_len, max_splits,
             partial);
  BATON_LAUNCH_CHECK();
}

}  // namespace baton::cuda
