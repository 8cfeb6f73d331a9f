// Prefill attention over the paged KV cache for head_dim 128 with Hopper
// warpgroup MMA (FlashAttention-3 style, without warp specialisation).
// A block serves 128 rows, (query token, head of the GQA group) pairs of one
// KV head, as two warpgroups of 64 rows. Per 64-key tile:
//   S = Q K^T      wgmma m64n64k16 x 8, Q and K in swizzled shared memory
//   online softmax in registers (exp2, fp32)
//   O += P V       wgmma m64n128k16 x 4, P (bf16) from registers, V in shared
//                  memory read N-major (transposed) by the tensor cores
// K/V tiles are gathered from whole 16-token cache blocks with cp.async into a
// 4-stage pipeline (two tiles load ahead, one barrier a tile). Within a
// warpgroup the softmax of tile i overlaps the P V product of tile i - 1
// (FlashAttention-3's intra-warpgroup pipelining).
#include "backend/cuda/attention_wgmma.h"

#include "backend/cuda/attention_wgmma.cuh"
#include "backend/cuda/cuda_common.h"
#include "backend/cuda/device_utils.cuh"
#include "backend/cuda/mma.cuh"

namespace baton::cuda {
namespace {

constexpr int kHd = 128;
constexpr int kRows = 128;       // rows per block (attention_rows_per_tile())
constexpr int kKeys = 64;        // keys per tile
constexpr int kThreads = 256;    // two warpgroups
constexpr int kRowBytes = 128;   // one swizzle row: 64 bf16
constexpr int kQBytes = 2 * kRows * kRowBytes;   // [2 dim halves][128 rows][64]
constexpr int kKvBytes = 2 * kKeys * kRowBytes;  // [2 dim halves][64 keys][64]
constexpr int kStages = 4;
constexpr size_t kSmemBytes = kQBytes + kStages * 2 * kKvBytes + 1024;  // + 1024-byte alignment slack

// Starts the copy of keys [start, start + 64) into the stage's K and V
// regions; keys at or past `end` are zero-filled. kv_head: this layer's K of
// kv head kvh in block 0, plus the thread's 16-byte chunk (threadIdx.x % 16).
__device__ __forceinline__ void issue_tile(uint32_t k_s, uint32_t v_s, const bf16* kv_head, const KvDev& kv,
                                           const int32_t* btab, int start, int end) {
  const int chunk = threadIdx.x & 15;
#pragma unroll
  for (int it = 0; it < kKeys * 16 / kThreads; ++it) {
    const int key = (threadIdx.x >> 4) + it * (kThreads / 16);
    const int kg = start + key;
    const bool ok = kg < end;
    const bf16* src = kv_head;
    if (ok) src += btab[kg / kv.block_size] * kv.block_elems + (kg % kv.block_size) * kv.token_elems;
    const uint32_t off = sw128_off(key, chunk, kKeys);
    cp_async16(k_s + off, src, ok);
    cp_async16(v_s + off, src + kv.half_elems, ok);
  }
  cp_async_commit();
}

// QR: q as register A fragments (loaded once) instead of shared memory, which
// halves the shared-memory reads of S = Q K^T (but runs slower: variant 3 only).
template <bool QR>
__global__ void __launch_bounds__(kThreads, 1) attn_prefill_wgmma_kernel(AttnArgs a, const int32_t* work) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  // The swizzle is a function of address bits 4-9: regions start 1024-aligned.
  const uint32_t q_s = (static_cast<uint32_t>(__cvta_generic_to_shared(smem_raw)) + 1023u) & ~1023u;
  const uint32_t kv_s = q_s + kQBytes;  // stage st: K at kv_s + st * 2 * kKvBytes, V after it

  const int seq = work[2 * blockIdx.y], row0 = work[2 * blockIdx.y + 1];
  const int kvh = blockIdx.x;
  const int group = a.num_heads / a.num_kv_heads;
  const int q0 = a.query_start[seq], q_len = a.query_start[seq + 1] - q0;
  const int seq_len = a.seq_lens[seq], ctx = seq_len - q_len;
  const int32_t* btab = a.block_tables + static_cast<int64_t>(seq) * a.max_blocks_per_seq;
  const int wg = threadIdx.x >> 7, warp = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31;
  const int g = lane >> 2, t = lane & 3;
  const bf16* kv_head = a.kv.base + a.layer * a.kv.layer_block_elems + kvh * kHd + (threadIdx.x & 15) * 8;

  // The block's 128 q rows (row rr: token q0 + (row0 + rr) / group, head
  // kvh * group + (row0 + rr) % group), zero past the sequence's queries:
  // in shared memory, or (QR) as this warp's A fragments of its 16 rows.
  uint32_t qa[QR ? kHd / 16 : 1][4];
  if constexpr (QR) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int row = row0 + wg * 64 + warp * 16 + g + 8 * r, i = row / group;
      const bf16* qp = a.q + ((static_cast<int64_t>(q0) + i) * a.num_heads + kvh * group + row % group) * kHd + 2 * t;
#pragma unroll
      for (int kk = 0; kk < kHd / 16; ++kk) {
#pragma unroll
        for (int h = 0; h < 2; ++h) qa[kk][2 * h + r] = i < q_len ? ld_u32(qp + kk * 16 + h * 8) : 0u;
      }
    }
  } else {
    for (int c = threadIdx.x; c < kRows * 16; c += kThreads) {
      const int rr = c >> 4, chunk = c & 15, row = row0 + rr, i = row / group;
      const bool ok = i < q_len;
      const bf16* src = ok ? a.q + ((static_cast<int64_t>(q0) + i) * a.num_heads + kvh * group + row % group) * kHd +
                                 chunk * 8
                           : a.q;
      cp_async16(q_s + sw128_off(rr, chunk, kRows), src, ok);
    }
  }

  // This thread's two rows: r = 0, 1 -> local row 64 wg + 16 warp + g + 8 r.
  int qpos[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int i = (row0 + wg * 64 + warp * 16 + g + 8 * r) / group;
    qpos[r] = i < q_len ? ctx + i : -1;
  }
  const int min_qpos = min(qpos[0], qpos[1]);
  const int last_i = min(q_len - 1, (row0 + kRows - 1) / group);
  const int end = min(seq_len, ctx + last_i + 1);
  const float scale_log2 = a.scale * 1.4426950408889634f;
  const int num_tiles = (end + kKeys - 1) / kKeys;

  float o[64];  // [16 dim groups of 8][4]: the m64n128 accumulator
#pragma unroll
  for (int i = 0; i < 64; ++i) o[i] = 0.0f;
  float s[32];  // S, then P (fp32), of the current tile: [8 key groups of 8][4]
#pragma unroll
  for (int i = 0; i < 32; ++i) s[i] = 0.0f;
  uint32_t pa[4][4];  // P of the previous tile as bf16 A fragments: k-step ks = keys 16 ks .. 16 ks + 15
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};  // m in log2 units (scaled)

  auto stage_k = [&](int i) { return kv_s + (i % kStages) * 2 * kKvBytes; };
  // S = Q K^T of tile i: [64 rows, 64 keys] per warpgroup (one commit group).
  auto issue_s = [&](int i) {
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < kHd / 16; ++kk) {
      const uint64_t db = wgmma_desc_sw128(stage_k(i) + (kk >> 2) * kKeys * kRowBytes + (kk & 3) * 32, 0, 1024);
      if constexpr (QR) {
        wgmma_m64n64k16_rs(s, qa[kk], db, kk > 0 ? 1 : 0);
      } else {
        const uint64_t da = wgmma_desc_sw128(
            q_s + (kk >> 2) * kRows * kRowBytes + wg * 64 * kRowBytes + (kk & 3) * 32, 0, 1024);
        wgmma_m64n64k16_ss(s, da, db, kk > 0 ? 1 : 0);
      }
    }
    wgmma_commit();
  };
  // O += P V of tile i: V [64 keys][128 dims] read N-major; lbo = the second 64-dim half.
  auto issue_pv = [&](int i) {
    wgmma_fence_regs(o);
    wgmma_fence();
#pragma unroll
    for (int ks = 0; ks < 4; ++ks) {
      const uint64_t dv = wgmma_desc_sw128(stage_k(i) + kKvBytes + ks * 16 * kRowBytes, kKeys * kRowBytes, 1024);
      wgmma_m64n128k16_rs_tb(o, pa[ks], dv);
    }
    wgmma_commit();
  };
  // Online softmax of tile i in place (s becomes P); returns O's rescale factors.
  auto softmax = [&](int i, float (&corr)[2]) {
    const int tile_start = i * kKeys;  // s[4j + e]: row r = e / 2, key tile_start + 8j + 2t + e % 2
    const bool need_mask = tile_start + kKeys - 1 > min_qpos || tile_start + kKeys > end;
    float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int j = 0; j < 8; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int r = e >> 1;
        if (need_mask) {
          const int kg = tile_start + 8 * j + 2 * t + (e & 1);
          if (kg >= end || kg > qpos[r]) s[4 * j + e] = -INFINITY;
        }
        mx[r] = fmaxf(mx[r], s[4 * j + e]);
      }
    }
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
      const float mnew = fmaxf(m[r], mx[r] * scale_log2);
      corr[r] = mnew == -INFINITY ? 1.0f : fast_exp2(m[r] - mnew);
      m[r] = mnew;
    }
    float rs[2] = {0.0f, 0.0f};
#pragma unroll
    for (int j = 0; j < 8; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int r = e >> 1;
        const float p = m[r] == -INFINITY ? 0.0f : fast_exp2(fmaf(s[4 * j + e], scale_log2, -m[r]));
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
  };
  auto rescale_and_pack = [&](const float (&corr)[2]) {
    if (corr[0] != 1.0f || corr[1] != 1.0f) {
#pragma unroll
      for (int d = 0; d < 16; ++d) {
        o[4 * d + 0] *= corr[0];
        o[4 * d + 1] *= corr[0];
        o[4 * d + 2] *= corr[1];
        o[4 * d + 3] *= corr[1];
      }
    }
#pragma unroll
    for (int ks = 0; ks < 4; ++ks) {
      pa[ks][0] = pack_bf16(s[8 * ks + 0], s[8 * ks + 1]);
      pa[ks][1] = pack_bf16(s[8 * ks + 2], s[8 * ks + 3]);
      pa[ks][2] = pack_bf16(s[8 * ks + 4], s[8 * ks + 5]);
      pa[ks][3] = pack_bf16(s[8 * ks + 6], s[8 * ks + 7]);
    }
  };

  // Loads run two tiles ahead (stage of tile i: i % 4). Iteration i computes
  // S_i = Q K_i^T and O += P_{i-1} V_{i-1} together: the softmax of tile i
  // overlaps the P V product of tile i - 1 on the tensor cores.
  for (int i = 0; i < 2; ++i) {  // tile 0's group also carries q
    if (i < num_tiles) issue_tile(stage_k(i), stage_k(i) + kKvBytes, kv_head, a.kv, btab, i * kKeys, end);
    else cp_async_commit();
  }
  for (int tile = 0; tile < num_tiles; ++tile) {
    cp_async_wait<1>();
    fence_proxy_async_smem();
    // Past this barrier every warp has finished iteration tile - 1 (K_{tile-1},
    // V_{tile-2}), so stage (tile + 2) % 4 = (tile - 2) % 4 is free.
    __syncthreads();
    if (tile + 2 < num_tiles) {
      issue_tile(stage_k(tile + 2), stage_k(tile + 2) + kKvBytes, kv_head, a.kv, btab, (tile + 2) * kKeys, end);
    } else {
      cp_async_commit();
    }
    issue_s(tile);
    float corr[2];
    if (tile > 0) {
      issue_pv(tile - 1);
      wgmma_wait<1>();  // S_tile done; P V still running
      wgmma_fence_regs(s);
      softmax(tile, corr);
      wgmma_wait<0>();
      wgmma_fence_regs(o);
    } else {
      wgmma_wait<0>();
      wgmma_fence_regs(s);
      softmax(tile, corr);
    }
    rescale_and_pack(corr);
  }
  if (num_tiles > 0) {
    issue_pv(num_tiles - 1);
    wgmma_wait<0>();
    wgmma_fence_regs(o);
  }
  cp_async_wait<0>();

#pragma unroll
  for (int r = 0; r < 2; ++r) {
    if (qpos[r] < 0) continue;
    const int row = row0 + wg * 64 + warp * 16 + g + 8 * r;
    const float inv = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
    bf16* op = a.out + ((static_cast<int64_t>(q0) + row / group) * a.num_heads + kvh * group + row % group) * kHd;
#pragma unroll
    for (int d = 0; d < 16; ++d)
      *reinterpret_cast<uint32_t*>(op + d * 8 + 2 * t) = pack_bf16(o[4 * d + 2 * r] * inv, o[4 * d + 2 * r + 1] * inv);
  }
}

}  // namespace

bool attention_wgmma_supports(int head_dim) { return head_dim == kHd; }

void launch_attention_prefill_wgmma(const AttnArgs& a, const int32_t* work, int num_items, cudaStream_t stream) {
  if (num_items == 0) return;
  BATON_CHECK(a.head_dim == kHd, "wgmma attention: head_dim {} (needs {})", a.head_dim, kHd);
  BATON_CHECK(attention_rows_per_tile() == kRows, "wgmma attention: tiles of {} rows", attention_rows_per_tile());
  BATON_CHECK(num_items <= 65535, "attention: {} work items in one step", num_items);
  // Auto (-1): the warp-specialised kernel with ping-pong and 128-key tiles
  // (variant 6), which measured fastest on an H100 (8K tokens: 1.50 vs 2.55 ms
  // per layer for variant 2, docs/perf-gpu.md); variant 2 where it does not serve.
  if (attention_wgmma_ws_supports(a) && (a.prefill_variant < 0 || (a.prefill_variant >= 4 && a.prefill_variant <= 6))) {
    AttnArgs ws = a;
    if (ws.prefill_variant < 0) ws.prefill_variant = 6;
    launch_attention_prefill_wgmma_ws(ws, work, num_items, stream);
    return;
  }
  // q in shared memory (variant 2); variant 3: q in registers, which
  // measured slower on an H100 (8K tokens: 2.87 vs 2.40 ms per layer, docs/gpu-notes.md).
  if (a.prefill_variant != 3) {
    set_dynamic_smem(reinterpret_cast<const void*>(attn_prefill_wgmma_kernel<false>), kSmemBytes, stream);
    attn_prefill_wgmma_kernel<false><<<dim3(a.num_kv_heads, num_items), kThreads, kSmemBytes, stream>>>(a, work);
  } else {
    set_dynamic_smem(reinterpret_cast<const void*>(attn_prefill_wgmma_kernel<true>), kSmemBytes, stream);
    attn_prefill_wgmma_kernel<true><<<dim3(a.num_kv_heads, num_items), kThreads, kSmemBytes, stream>>>(a, work);
  }
  BATON_LAUNCH_CHECK();
}

}  // namespace baton::cuda
