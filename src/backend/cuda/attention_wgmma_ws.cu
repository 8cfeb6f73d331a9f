// Prefill attention on Hopper (sm_90a), FlashAttention-3 style
// (warp-specialised, ping-pong, 128-key tiles), in two instantiations:
//   PagedHd128: over the paged KV cache for head_dim 128 with a power-of-two
//     cache block size, the production kernel for those shapes (other shapes
//     go to the mma.sync kernel of attention.cu). Measured history and the
//     variants this replaced: docs/gpu-notes.md.
//   MlaExpanded: DeepSeek-V3's expanded MLA prefill (mla_prefill.h), qk head
//     dim 192 (Q and K tiles of 3 swizzled 64-column thirds), v head dim 128,
//     K and V read from the expanded rows (K_nope, V per head) and the latent
//     rows (the shared rope part). 2 stages fit beside the 48 KB of Q, so K
//     and V have barriers of their own (see "Split K/V stages" below).
// The design below is PagedHd128's; MlaExpanded differs where said.
//
// Design. A block serves 128 rows, (query token, head of the GQA group)
// pairs of one KV head, in 3 warpgroups (384 threads):
//   warpgroups 0, 1 (threads 0-255): consumers, 64 query rows each:
//     S_i = Q K_i^T (8 x wgmma m64n128k16, Q and K in 128-byte-swizzled shared
//     memory) issued with O += P_{i-1} V_{i-1} (8 x m64n128k16, P from
//     registers, V read N-major), the softmax of tile i under the P V product
//     (intra-warpgroup pipelining);
//   warpgroup 2 (threads 256-383): producer. Gathers each 128-key K/V tile
//     from the paged cache with cp.async (16 bytes a thread) into kStages
//     stages, then `cp.async.mbarrier.arrive.noinc` on the stage's full
//     barrier: it completes when all 128 producer threads' copies of that tile
//     have landed (init count 128).
//   Issue slots are the kernel's limit (each scheduler runs one warp of each
//   consumer warpgroup and one producer warp): the producer's addresses are a
//   page's 64-bit offset plus 32-bit token offsets, only the last tile checks
//   the end; the softmax masks only the tiles that need it (a branch on the
//   warp's smallest row position: the diagonal and last tiles); the wgmma
//   descriptors are bases plus constant offsets. docs/gpu-notes.md (issue 18,
//   session 14) has the instruction counts and stalls.
//   Each consumer warp waits on full[stage] (try_wait.parity), issues its
//   wgmma, and when the tile's last use is over (P V of tile i, waited in
//   iteration i + 1) lane 0 of each of the 8 consumer warps arrives on
//   empty[stage] (init count 8). The producer waits on empty[stage] before
//   refilling it. No block-wide barrier after the start.
//   Q: each consumer warpgroup loads its own 64 rows with cp.async, waits,
//   fences (generic -> async proxy) and meets its own 128 threads at a named
//   barrier (ids 3, 4) before its first wgmma.
//   Registers: __launch_bounds__(384, 1) caps the kernel at 168 a thread;
//   setmaxnreg gives the producer 40 and the consumers 232 (40 x 128 + 232 x
//   256 = 64,512 <= 65,536); ptxas allocates the consumer branch to that
//   budget (below 216 it spills). A __trap() anywhere made ptxas ignore the
//   setmaxnreg budget, hence no trap below.
//   128-key tiles: S is m64n128, s[64] + pa[8][4] + o[64] live at once; 3
//   stages of 64 KB, so the producer runs one tile ahead.
//   Split K/V stages (MlaExpanded: 2 stages of 48 + 32 KB): K of tile i is
//   released as soon as S_i is done (iteration i) and V of tile i after
//   P_i V_i (iteration i + 1), on barriers full_k/empty_k and full_v/empty_v;
//   the producer fills K_i then V_i. K_{i+2} and V_{i+1} are then loaded
//   while iteration i + 1 runs: a whole iteration of slack, which one barrier
//   per 2-stage slot would not leave (tile i + 1 could only load after
//   iteration i ended, right when it is needed).
//   Ping-pong: the two consumer warpgroups take turns to issue their GEMMs
//   (named barriers 1 and 2, 256 threads: warpgroup w syncs on 1 + w before
//   issuing S_i and P_{i-1} V_{i-1}, and arrives on the other's once its S_i
//   is done), so one warpgroup's softmax runs while the other's GEMMs hold the
//   tensor cores. The arrive sits after the S wait because one between wgmma
//   issue and that wait made ptxas serialise the wgmma pipeline (C7514).
//   Warpgroup 1 gives warpgroup 0 the first turn and skips its last arrive,
//   so every barrier generation is matched (num_tiles syncs and arrives each).
//
// Barrier phases. Tile i uses stage s = i % kStages, fill f = i / kStages.
//   consumer: wait full[s] for parity f & 1 (its f-th completion);
//   producer, f >= 1: wait empty[s] for parity (f - 1) & 1 (the consumers'
//   release of tile i - kStages). Neither barrier can run two phases ahead
//   of a waiter: full[s]'s next completion needs the producer to pass
//   empty[s], which needs this waiter's own release; empty[s]'s next needs
//   full[s], which needs the producer's next fill after this wait.
//   Releasing tile i - 1 needs only tiles <= i loaded, and loading tile i
//   needs only tile i - kStages released: no deadlock.
// Memory ordering. cp.async writes complete, then the noinc arrive releases
// them (mbarrier arrive: release.cta); try_wait acquires; each consumer then
// executes fence.proxy.async.shared::cta before its wgmma (async proxy)
// reads the stage. The producer drains its copies (cp.async.wait_all) before
// it exits.
// A hang guard: an mbarrier wait gives up after 2^32 clock cycles (~2.5 s);
// that thread waits no more and writes NaN rows, so a protocol bug fails the
// op test instead of hanging the GPU.
#include "backend/cuda/attention_wgmma.h"

#include "backend/cuda/attention_softmax.cuh"
#include "backend/cuda/attention_wgmma.cuh"
#include "backend/cuda/cuda_common.h"
#include "backend/cuda/device_utils.cuh"
#include "backend/cuda/mbarrier.cuh"
#include "backend/cuda/mla_prefill.h"
#include "backend/cuda/mma.cuh"

namespace baton::cuda {
namespace {

constexpr int kDv = 128;         // value head dim (both instantiations)
constexpr int kRows = 128;       // rows per block (attention_rows_per_tile())
constexpr int kConsumers = 256;  // two consumer warpgroups
constexpr int kProducers = 128;  // one producer warpgroup
constexpr int kThreads = kConsumers + kProducers;
constexpr int kRowBytes = 128;  // one swizzle row: 64 bf16
constexpr int kKeys = 128;      // keys per tile
constexpr int kProducerRegs = 40, kConsumerRegs = 232;
static_assert(kProducerRegs * kProducers + kConsumerRegs * kConsumers <= 65536, "register file");
static_assert(kKeys * 16 / kProducers == kKeys / 8, "PagedHd128's producer: 8 keys a step");

// The two instantiations (see the top).
struct PagedHd128 {
  using Args = AttnArgs;
  static constexpr int kDqk = 128;
  static constexpr int kStages = 3;  // what fits in 227 KB beside q
  static constexpr bool kSplitKv = false;
  static constexpr bool kItemsFastest = false;  // grid (KV heads, items)
};
struct MlaExpanded {
  using Args = MlaExpandedAttnArgs;
  static constexpr int kDqk = kMlaExpandedNope + kMlaExpandedRope;
  static constexpr int kNope = kMlaExpandedNope;  // K's columns from the expanded rows; the rest from k_rope
  static constexpr int kStages = 2;
  static constexpr bool kSplitKv = true;
  // Grid (items, heads): the blocks resident at once are mostly tiles of the
  // same head, which share its K/V (8K keys: 4 MB a head, 512 MB for 128
  // heads) in L2; head-fastest order streamed every tile's K/V from memory.
  static constexpr bool kItemsFastest = true;
};
// Shared memory: q [Dqk / 64 thirds or halves][128 rows][64], then per stage
// K [Dqk / 64][128 keys][64] and V [2 halves][128 keys][64], then the mbarriers.
template <class P>
struct Smem {
  static constexpr int kQBytes = (P::kDqk / 64) * kRows * kRowBytes;
  static constexpr int kKBytes = (P::kDqk / 64) * kKeys * kRowBytes;
  static constexpr int kStageBytes = kKBytes + (kDv / 64) * kKeys * kRowBytes;
  static constexpr int kBarBytes = (P::kSplitKv ? 4 : 2) * P::kStages * 8;
  static constexpr size_t kBytes = kQBytes + P::kStages * kStageBytes + kBarBytes + 1024;  // + alignment
  static_assert(kBytes <= 232448, "shared memory");
};

// Named barrier ids (0 is __syncthreads): 1, 2 ping-pong; 3, 4 q ready per warpgroup.
constexpr int kBarPingPong = 1, kBarQ = 3;

// (query token, head) rows per KV head: the GQA group (1 for MLA).
__device__ __forceinline__ int group_of(const AttnArgs& a) { return a.num_heads / a.num_kv_heads; }
__device__ __forceinline__ int group_of(const MlaExpandedAttnArgs&) { return 1; }

// PagedHd128's producer: K/V tiles of keys [kKeys i, kKeys (i + 1)) from the
// paged cache into stage i % kStages, one full barrier for both. Thread pt
// copies 16-byte chunk pt % 16 of keys pt / 16 + 8 j (j < 16): in the swizzled
// stage those sit 1024 bytes apart, and a key's bytes are its page's (64-bit)
// plus its token's (32-bit; the host checks the cache's byte strides fit).
// Only the last tile checks `end` (zero-filling past it): the producer issues
// few instructions, as it shares each scheduler with the consumers.
__device__ __forceinline__ void produce(const AttnArgs& a, int seq, int kvh, int end, int num_tiles, uint32_t kv_s,
                                        uint32_t full_bar, uint32_t empty_bar) {
  using P = PagedHd128;
  using S = Smem<P>;
  const int pt = threadIdx.x - kConsumers;  // 0..127
  const int chunk = pt & 15, key_lo = pt >> 4;
  const int32_t* btab = a.block_tables + static_cast<int64_t>(seq) * a.max_blocks_per_seq;
  const char* head = reinterpret_cast<const char*>(a.kv.base + a.layer * a.kv.layer_block_elems + kvh * P::kDqk +
                                                   chunk * 8);
  const uint32_t block_bytes = static_cast<uint32_t>(a.kv.block_elems * sizeof(bf16));
  const uint32_t token_bytes = static_cast<uint32_t>(a.kv.token_elems * sizeof(bf16));
  const uint32_t half_bytes = static_cast<uint32_t>(a.kv.half_elems * sizeof(bf16));
  const int bs_shift = __ffs(a.kv.block_size) - 1, bs_mask = a.kv.block_size - 1;  // a power of two (host check)
  const uint32_t dst0 = sw128_off(key_lo, chunk, kKeys);                           // key key_lo + 8 j: + 1024 j
  auto key_src = [&](int kg) {
    const uint32_t page = static_cast<uint32_t>(__ldg(btab + (kg >> bs_shift)));
    return head + static_cast<uint64_t>(page) * block_bytes + static_cast<uint32_t>(kg & bs_mask) * token_bytes;
  };
  bool alive = true;  // false once a wait timed out
  for (int i = 0; i < num_tiles; ++i) {
    if (i >= P::kStages && alive) alive = mbar_wait(empty_bar + 8 * (i % P::kStages), ((i / P::kStages) - 1) & 1);
    const uint32_t k_s = kv_s + (i % P::kStages) * S::kStageBytes + dst0, v_s = k_s + S::kKBytes;
    const int key0 = i * kKeys + key_lo;
    if ((i + 1) * kKeys <= end) {
#pragma unroll
      for (int j = 0; j < kKeys / 8; ++j) {
        const char* src = key_src(key0 + 8 * j);
        cp_async16(k_s + 1024 * j, src, true);               // K [key][dims]
        cp_async16(v_s + 1024 * j, src + half_bytes, true);  // V [key][dims]
      }
    } else {
#pragma unroll
      for (int j = 0; j < kKeys / 8; ++j) {
        const int kg = key0 + 8 * j;
        const bool ok = kg < end;
        const char* src = ok ? key_src(kg) : head;
        cp_async16(k_s + 1024 * j, src, ok);
        cp_async16(v_s + 1024 * j, src + half_bytes, ok);
      }
    }
    cp_async_mbar_arrive_noinc(full_bar + 8 * (i % P::kStages));
  }
}

// MlaExpanded's producer: K of tile i (128 nope columns from the expanded
// rows, 64 rope columns from the latent rows) then its V, each on its own
// barrier pair (bars: full_k, empty_k, full_v, empty_v, kStages each).
__device__ __forceinline__ void produce(const MlaExpandedAttnArgs& a, int seq, int head, int end, int num_tiles,
                                        uint32_t kv_s, uint32_t full_k, uint32_t empty_k) {
  using P = MlaExpanded;
  using S = Smem<P>;
  const uint32_t full_v = empty_k + 8 * P::kStages, empty_v = full_v + 8 * P::kStages;
  const int pt = threadIdx.x - kConsumers;  // 0..127
  const int64_t row0 = a.key_start[seq];
  const bf16* kv_head = a.kv + row0 * a.kv_stride + static_cast<int64_t>(head) * (P::kNope + kDv) + (pt & 15) * 8;
  const bf16* rope = a.k_rope + row0 * a.k_rope_stride + (pt & 7) * 8;
  bool alive = true;
  for (int i = 0; i < num_tiles; ++i) {
    const int st = i % P::kStages;
    const uint32_t k_s = kv_s + st * S::kStageBytes, v_s = k_s + S::kKBytes;
    if (i >= P::kStages && alive) alive = mbar_wait(empty_k + 8 * st, ((i / P::kStages) - 1) & 1);
#pragma unroll 4
    for (int it = 0; it < kKeys * 16 / kProducers; ++it) {  // nope: 16 chunks a key
      const int key = (pt >> 4) + it * (kProducers / 16), kg = i * kKeys + key;
      const bool ok = kg < end;
      cp_async16(k_s + sw128_off(key, pt & 15, kKeys), ok ? kv_head + kg * a.kv_stride : a.kv, ok);
    }
#pragma unroll 4
    for (int it = 0; it < kKeys * 8 / kProducers; ++it) {  // rope: 8 chunks a key, the third 64-column part
      const int key = (pt >> 3) + it * (kProducers / 8), kg = i * kKeys + key;
      const bool ok = kg < end;
      cp_async16(k_s + sw128_off(key, 16 + (pt & 7), kKeys), ok ? rope + kg * a.k_rope_stride : a.k_rope, ok);
    }
    cp_async_mbar_arrive_noinc(full_k + 8 * st);
    if (i >= P::kStages && alive) alive = mbar_wait(empty_v + 8 * st, ((i / P::kStages) - 1) & 1);
#pragma unroll 4
    for (int it = 0; it < kKeys * 16 / kProducers; ++it) {
      const int key = (pt >> 4) + it * (kProducers / 16), kg = i * kKeys + key;
      const bool ok = kg < end;
      cp_async16(v_s + sw128_off(key, pt & 15, kKeys), ok ? kv_head + kg * a.kv_stride + P::kNope : a.kv, ok);
    }
    cp_async_mbar_arrive_noinc(full_v + 8 * st);
  }
}

template <class P>
__global__ void __launch_bounds__(kThreads, 1) attn_prefill_wgmma_ws_kernel(typename P::Args a, const int32_t* work) {
  using S = Smem<P>;
  constexpr int kStages = P::kStages, kQChunks = P::kDqk / 8;
  const int item = P::kItemsFastest ? blockIdx.x : blockIdx.y;
  const int kvh = P::kItemsFastest ? blockIdx.y : blockIdx.x;
  if constexpr (P::kSplitKv) {
    if (item >= *a.num_items) return;  // launched for an upper bound of the items
  }
  extern __shared__ __align__(16) unsigned char smem_raw[];
  // The swizzle is a function of address bits 4-9: regions start 1024-aligned.
  const uint32_t q_s = (static_cast<uint32_t>(__cvta_generic_to_shared(smem_raw)) + 1023u) & ~1023u;
  const uint32_t kv_s = q_s + S::kQBytes;                     // stage st: K at kv_s + st * kStageBytes, V after it
  const uint32_t full_bar = kv_s + kStages * S::kStageBytes;  // [kStages] x 8 bytes (split: of K)
  const uint32_t empty_bar = full_bar + kStages * 8;          // [kStages] x 8 bytes (split: of K)
  // Split K/V: full_v, empty_v follow ([kStages] x 8 bytes each).
  const uint32_t full_v = empty_bar + kStages * 8, empty_v = full_v + kStages * 8;

  const int seq = work[2 * item], row0 = work[2 * item + 1];
  const int group = group_of(a);
  const int q0 = a.query_start[seq], q_len = a.query_start[seq + 1] - q0;
  const int seq_len = a.seq_lens[seq], ctx = seq_len - q_len;
  const int last_i = min(q_len - 1, (row0 + kRows - 1) / group);
  const int end = min(seq_len, ctx + last_i + 1);  // keys [0, end) serve the block's rows
  const int num_tiles = (end + kKeys - 1) / kKeys;

  if (threadIdx.x == 0) {
#pragma unroll
    for (int st = 0; st < kStages; ++st) {
      mbar_init(full_bar + 8 * st, kProducers);
      mbar_init(empty_bar + 8 * st, kConsumers / 32);
      if constexpr (P::kSplitKv) {
        mbar_init(full_v + 8 * st, kProducers);
        mbar_init(empty_v + 8 * st, kConsumers / 32);
      }
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();  // the only block-wide barrier

  if (threadIdx.x >= kConsumers) {
    // ---- producer warpgroup
    setmaxnreg_dec<kProducerRegs>();
    produce(a, seq, kvh, end, num_tiles, kv_s, full_bar, empty_bar);
    asm volatile("cp.async.wait_all;\n" ::: "memory");  // no copy outlives its thread
  } else {
    // ---- consumer warpgroups, fed by the barriers.
    setmaxnreg_inc<kConsumerRegs>();
    const int wg = threadIdx.x >> 7, warp = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31;
    const int g = lane >> 2, t = lane & 3;

    // This warpgroup's 64 q rows (row rr: token q0 + (row0 + rr) / group, head
    // kvh * group + (row0 + rr) % group), zero past the sequence's queries.
    for (int c = threadIdx.x & 127; c < 64 * kQChunks; c += 128) {
      const int rr = wg * 64 + c / kQChunks, chunk = c % kQChunks, row = row0 + rr, i = row / group;
      const bool ok = i < q_len;
      const bf16* src = ok ? a.q +
                                 ((static_cast<int64_t>(q0) + i) * a.num_heads + kvh * group + row % group) * P::kDqk +
                                 chunk * 8
                           : a.q;
      cp_async16(q_s + sw128_off(rr, chunk, kRows), src, ok);
    }
    cp_async_commit();
    cp_async_wait<0>();
    fence_proxy_async_smem();
    named_sync(kBarQ + wg, 128);
    named_arrive_if(wg == 1 && num_tiles > 0, kBarPingPong, 2 * 128);  // warpgroup 0 issues first

    // This thread's two rows: r = 0, 1 -> local row 64 wg + 16 warp + g + 8 r.
    int qpos[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int i = (row0 + wg * 64 + warp * 16 + g + 8 * r) / group;
      qpos[r] = i < q_len ? ctx + i : -1;
    }
    // The smallest over the warp's rows: whether a tile needs the mask is then
    // the same in every lane (online_softmax_tile's branch).
    const int min_qpos = __reduce_min_sync(0xffffffffu, min(qpos[0], qpos[1]));
    const float scale_log2 = a.scale * 1.4426950408889634f;
    // Operand descriptors: an offset below 256 KB moves only the start-address
    // field (the low 14 bits, in 16-byte units), so each is a base plus a constant.
    const uint64_t desc_q = wgmma_desc_sw128(q_s + wg * 64 * kRowBytes, 0, 1024);
    const uint64_t desc_k = wgmma_desc_sw128(kv_s, 0, 1024);
    const uint64_t desc_v = wgmma_desc_sw128(kv_s + S::kKBytes, kKeys * kRowBytes, 1024);
    auto stage_desc = [&](uint64_t base, int i) { return base + (((i % kStages) * S::kStageBytes) >> 4); };

    float o[64];  // [16 dim groups of 8][4]: the m64n128 accumulator
#pragma unroll
    for (int i = 0; i < 64; ++i) o[i] = 0.0f;
    float s[kKeys / 2];  // S, then P (fp32), of the current tile: [kKeys / 8 key groups of 8][4]
#pragma unroll
    for (int i = 0; i < kKeys / 2; ++i) s[i] = 0.0f;
    uint32_t pa[kKeys / 16][4];  // P of the previous tile as bf16 A fragments: k-step ks = keys 16 ks .. 16 ks + 15
    float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};  // m in log2 units (scaled)
    bool alive = true;  // false once a wait timed out: the rows are written as NaN

    // S = Q K^T of tile i: [64 rows, 128 keys] per warpgroup (one commit group).
    auto issue_s = [&](int i) {
      wgmma_fence();
      const uint64_t dk = stage_desc(desc_k, i);
#pragma unroll
      for (int kk = 0; kk < P::kDqk / 16; ++kk) {  // 64-column part kk / 4, k-step kk % 4 (32 bytes)
        wgmma_m64n128k16_ss(s, desc_q + (((kk >> 2) * kRows * kRowBytes + (kk & 3) * 32) >> 4),
                            dk + (((kk >> 2) * kKeys * kRowBytes + (kk & 3) * 32) >> 4), kk > 0 ? 1 : 0);
      }
      wgmma_commit();
    };
    // O += P V of tile i: V [128 keys][128 dims] read N-major; lbo = the second 64-dim half.
    auto issue_pv = [&](int i) {
      wgmma_fence_regs(o);
      wgmma_fence();
      const uint64_t dv = stage_desc(desc_v, i);
#pragma unroll
      for (int ks = 0; ks < kKeys / 16; ++ks) wgmma_m64n128k16_rs_tb(o, pa[ks], dv + ((ks * 16 * kRowBytes) >> 4));
      wgmma_commit();
    };
    // Online softmax of tile i in place (s becomes P); returns O's rescale factors.
    auto softmax = [&](int i, float(&corr)[2]) {
      const int tile_start = i * kKeys;
      const bool need_mask = tile_start + kKeys - 1 > min_qpos || tile_start + kKeys > end;
      online_softmax_tile(s, m, l, corr, qpos, tile_start, end, need_mask, scale_log2, t);
    };
    auto rescale_and_pack = [&](const float(&corr)[2]) {
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
      for (int ks = 0; ks < kKeys / 16; ++ks) {
        pa[ks][0] = pack_bf16(s[8 * ks + 0], s[8 * ks + 1]);
        pa[ks][1] = pack_bf16(s[8 * ks + 2], s[8 * ks + 3]);
        pa[ks][2] = pack_bf16(s[8 * ks + 4], s[8 * ks + 5]);
        pa[ks][3] = pack_bf16(s[8 * ks + 6], s[8 * ks + 7]);
      }
    };
    // Tile i's stage (split: its K or its V part, on `bar`) is given back once
    // its last reader has completed: one arrival per consumer warp.
    auto release = [&](uint32_t bar, int i) {
      __syncwarp();
      if (lane == 0) mbar_arrive(bar + 8 * (i % kStages));
    };
    auto wait_full = [&](uint32_t bar, int i) {
      if (alive) alive = mbar_wait(bar + 8 * (i % kStages), (i / kStages) & 1);
    };

    // Ping-pong: the other warpgroup's turn to issue once this one's S product
    // is done (see the top). Warpgroup 1's last turn has no taker.
    auto hand_over = [&](int tile) {
      named_arrive_if(wg == 0 || tile + 1 < num_tiles, kBarPingPong + 1 - wg, 2 * 128);
    };

    // Iteration i computes S_i = Q K_i^T and O += P_{i-1} V_{i-1} together:
    // the softmax of tile i overlaps the P V product of tile i - 1. Without
    // split K/V, full_bar covers both and tile i - 1's V is there already.
    for (int tile = 0; tile < num_tiles; ++tile) {
      wait_full(full_bar, tile);
      if constexpr (P::kSplitKv) {
        if (tile > 0) wait_full(full_v, tile - 1);
      }
      __syncwarp();              // lanes leave the wait loop apart; wgmma and bar.sync are .aligned
      fence_proxy_async_smem();  // the producer's (generic-proxy) copies before wgmma's reads
      named_sync(kBarPingPong + wg, 2 * 128);
      issue_s(tile);
      if (tile > 0) issue_pv(tile - 1);
      float corr[2];
      if (tile > 0) {
        wgmma_wait<1>();                                      // S_tile done; P V still running
        if constexpr (P::kSplitKv) release(empty_bar, tile);  // K of this tile
        hand_over(tile);
        wgmma_fence_regs(s);
        softmax(tile, corr);
        wgmma_wait<0>();
        wgmma_fence_regs(o);
        release(P::kSplitKv ? empty_v : empty_bar, tile - 1);
      } else {
        wgmma_wait<0>();
        if constexpr (P::kSplitKv) release(empty_bar, tile);
        hand_over(tile);
        wgmma_fence_regs(s);
        softmax(tile, corr);
      }
      rescale_and_pack(corr);
    }
    if (num_tiles > 0) {
      if constexpr (P::kSplitKv) {
        wait_full(full_v, num_tiles - 1);
        __syncwarp();
        fence_proxy_async_smem();
      }
      issue_pv(num_tiles - 1);  // its stage is never waited for again: no release
      wgmma_wait<0>();
      wgmma_fence_regs(o);
    }

#pragma unroll
    for (int r = 0; r < 2; ++r) {
      if (qpos[r] < 0) continue;
      const int row = row0 + wg * 64 + warp * 16 + g + 8 * r;
      const float inv = !alive ? NAN : l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
      bf16* op = a.out + ((static_cast<int64_t>(q0) + row / group) * a.num_heads + kvh * group + row % group) * kDv;
#pragma unroll
      for (int d = 0; d < 16; ++d)
        *reinterpret_cast<uint32_t*>(op + d * 8 + 2 * t) = pack_bf16(o[4 * d + 2 * r] * inv,
                                                                     o[4 * d + 2 * r + 1] * inv);
    }
  }
}

// Blocks per work item: one per KV head (MLA: per head).
int grid_heads(const AttnArgs& a) { return a.num_kv_heads; }
int grid_heads(const MlaExpandedAttnArgs& a) { return a.num_heads; }

template <class P>
void launch_ws(const typename P::Args& a, const int32_t* work, int num_items, cudaStream_t stream) {
  BATON_CHECK(num_items <= 65535, "attention: {} work items in one step", num_items);
  const auto kernel = attn_prefill_wgmma_ws_kernel<P>;
  set_dynamic_smem(reinterpret_cast<const void*>(kernel), Smem<P>::kBytes, stream);
  const dim3 grid = P::kItemsFastest ? dim3(num_items, grid_heads(a)) : dim3(grid_heads(a), num_items);
  kernel<<<grid, kThreads, Smem<P>::kBytes, stream>>>(a, work);
  BATON_LAUNCH_CHECK();
}

}  // namespace

bool attention_wgmma_ws_supports(const AttnArgs& a) {
  const int bs = a.kv.block_size;
  constexpr int64_t kU32 = int64_t{1} << 32;  // the producer's byte strides are 32-bit
  return a.head_dim == PagedHd128::kDqk && bs > 0 && (bs & (bs - 1)) == 0 &&
         a.kv.block_elems * static_cast<int64_t>(sizeof(bf16)) < kU32;
}

void launch_attention_prefill_wgmma_ws(const AttnArgs& a, const int32_t* work, int num_items, cudaStream_t stream) {
  if (num_items == 0) return;
  BATON_CHECK(attention_wgmma_ws_supports(a),
              "warp-specialised attention: head_dim {} (needs {}), block_size {} (a power of two), {} elements a "
              "cache block (under 2^31)",
              a.head_dim, PagedHd128::kDqk, a.kv.block_size, a.kv.block_elems);
  BATON_CHECK(attention_rows_per_tile() == kRows, "wgmma attention: tiles of {} rows", attention_rows_per_tile());
  launch_ws<PagedHd128>(a, work, num_items, stream);
}

bool mla_expanded_supports(int nope, int rope_dim, int v_dim) {
  return nope == MlaExpanded::kNope && nope + rope_dim == MlaExpanded::kDqk && v_dim == kDv;
}

static_assert(kDv == kMlaExpandedV, "the expanded form's v head dim");

int mla_expanded_rows_per_item() { return kRows; }

int mla_expanded_max_items(int num_tokens, int num_seqs) { return (num_tokens + kRows - 1) / kRows + num_seqs; }

void launch_mla_attention_prefill_expanded(const MlaExpandedAttnArgs& a, const int32_t* work, int max_items,
                                           cudaStream_t stream) {
  if (max_items == 0) return;
  launch_ws<MlaExpanded>(a, work, max_items, stream);
}

}  // namespace baton::cuda
