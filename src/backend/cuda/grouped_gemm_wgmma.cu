// The MoE grouped GEMM on Hopper's warpgroup MMA (sm_90a), for every MoE step
// past the skinny kernels' 8 tokens: C[i, :] = A[a_rows ? a_rows[i] /
// a_row_div : i, :] . W[e]^T over each expert e's sorted rows [offsets[e],
// offsets[e + 1]) (kernels.h), or gated: C = silu(gate) * up, the SwiGLU of
// an expert's gate/up projection fused (the epilogue, store_gated). The
// mma.sync kernel of moe.cu serves the batch-invariant mode.
//
// Design. Persistent blocks (one per SM) walk the 128 x BN tiles of the
// experts' rows (m tiles numbered expert by expert: moe_tiles.cuh; n fastest),
// each in 3 warpgroups (384 threads):
//   warpgroups 0, 1: consumers, 64 rows each: per 64-wide k tile, 4 x wgmma
//     m64nBNk16 with A and B from 128-byte-swizzled shared memory (K-major);
//   warpgroup 2: producer, filling kStages stages. B (the expert's weight
//     rows) comes by TMA; A by TMA too where its rows are the sorted rows
//     themselves (a_rows null: the down projection), else gathered through
//     a_rows (the tokens of the expert's slots) with cp.async by all 128
//     producer threads, each then arriving (cp.async.mbarrier.arrive.noinc)
//     on full[stage]. Producer thread 0 posts the TMA bytes
//     (mbarrier.arrive.expect_tx) and issues the copies: full[stage]
//     completes when every arrival is in and every byte has landed (init
//     count 1, or 129 with the gather).
//   A consumer waits on full[stage], issues the stage's wgmma group, and once
//   the next group is issued waits for this one (wgmma.wait_group 1) and gives
//   the stage back: lane 0 of each of the 8 consumer warps arrives on
//   empty[stage] (init 8). The producer waits on empty[stage] before it
//   refills it, so it fills the next tile's first stages while the consumers
//   store this one. Barrier phases, memory ordering and the hang guard are
//   attention_wgmma_ws.cu's (its top comment), over the block's running k-tile
//   count it: stage it % kStages, parity (it / kStages) & 1; a wait that times
//   out stops waiting and the block's tiles are written as NaN.
//   Rows of a TMA tile past the expert's rows are the next expert's (or zero
//   past the tensor): computed and not stored. Columns past n likewise.
//   Registers: setmaxnreg gives the producer 88 and the consumers 200.
// Measured (H200, Qwen3-30B-A3B's experts, 8K tokens, docs/gpu-notes.md): the
// weights by TMA took the gate/up GEMM from 348 to 476 TFLOP/s against
// cp.async; 128 x 256 tiles beat 128 x 128; a 2-block cluster sharing the
// weights by TMA multicast was slower (367).
#include <algorithm>

#include "backend/cuda/attention_wgmma.cuh"
#include "backend/cuda/cuda_common.h"
#include "backend/cuda/device_utils.cuh"
#include "backend/cuda/kernels.h"
#include "backend/cuda/mbarrier.cuh"
#include "backend/cuda/mma.cuh"
#include "backend/cuda/moe_tiles.cuh"
#include "backend/cuda/tma.cuh"

namespace baton::cuda {
namespace {

constexpr int kBM = 128;  // rows per tile: 64 per consumer warpgroup
constexpr int kBK = 64;   // k per stage: one 128-byte swizzle row of bf16
constexpr int kConsumers = 256, kProducers = 128, kThreads = kConsumers + kProducers;
constexpr int kProducerRegs = 88, kConsumerRegs = 200;
static_assert(kProducerRegs * kProducers + kConsumerRegs * kConsumers <= 65536, "register file");
constexpr int kRowBytes = 128;

template <int BN>
struct Tiling {
  static constexpr int kABytes = kBM * kRowBytes;  // A [128 rows][64 k], swizzled
  static constexpr int kBBytes = BN * kRowBytes;   // B [BN rows][64 k], swizzled
  static constexpr int kStageBytes = kABytes + kBBytes;
  static constexpr int kStages = BN == 256 ? 4 : 6;
  static constexpr size_t kSmemBytes = kStages * kStageBytes + 2 * kStages * 8 + 1024;  // + barriers, alignment
  static_assert(kSmemBytes <= 232448, "shared memory");
};

template <int BN>
__device__ __forceinline__ void wgmma_tile(float (&d)[BN / 2], uint64_t da, uint64_t db) {
  if constexpr (BN == 256) wgmma_m64n256k16_ss(d, da, db, 1);
  else wgmma_m64n128k16_ss(d, da, db, 1);
}

struct TileMaps {
  CUtensorMap a;  // A [rows][k] in boxes of [128 rows][64 k] (kGatherA: unused)
  CUtensorMap b;  // W [E n][k] in boxes of [BN rows][64 k]
};

// The tiles of one launch: tile t is (m tile t / n_tiles, n tile t % n_tiles);
// block b serves t = b, b + gridDim.x, ... (persistent).
struct TileWalk {
  const GroupedGemmArgs& g;
  const int* tiles_before;  // shared [E + 1] (moe_tiles.cuh)
  int n_tiles, total, num_k;
  __device__ ExpertTile tile(int t) const {
    return expert_tile_at(g.offsets, tiles_before, g.num_experts, t / n_tiles, kBM);
  }
};

// The producer warpgroup: every k tile of every tile of this block, into
// stage it % kStages of the block's running k-tile count `it`.
template <int BN, bool kGatherA>
__device__ __forceinline__ void produce(const TileWalk& w, const TileMaps& maps, uint32_t stages, uint32_t full_bar,
                                        uint32_t empty_bar) {
  using T = Tiling<BN>;
  const GroupedGemmArgs& g = w.g;
  const int pt = threadIdx.x - kConsumers;  // 0..127
  const int chunk = pt & 7;                 // the gather: 16-byte chunk of the k tile; rows pt / 8 + 16 j
  constexpr int kRowStep = kProducers / 8, kRowsPerThread = kBM / kRowStep;
  bool alive = true;
  int it = 0;
  for (int t = blockIdx.x; t < w.total; t += gridDim.x) {
    const ExpertTile tile = w.tile(t);
    // B's two halves: rows [j0, j0 + BN / 2) of the gate and of the up
    // projection (gated), or of W from n0 = BN (t % n_tiles) on.
    const int j0 = (t % w.n_tiles) * (g.gated ? BN / 2 : BN);
    const int b_half0 = tile.expert * g.n + j0, b_half1 = b_half0 + (g.gated ? g.n / 2 : BN / 2);
    int src[kRowsPerThread];  // the gather: A rows of this thread's tile rows, -1 past the expert's
#pragma unroll
    for (int j = 0; j < kRowsPerThread; ++j) {
      const int i = tile.row0 + (pt >> 3) + kRowStep * j;
      src[j] = kGatherA && i < tile.row_end ? g.a_rows[i] / g.a_row_div : -1;
    }
    for (int i = 0; i < w.num_k; ++i, ++it) {
      const int st = it % T::kStages;
      if (it >= T::kStages && alive) alive = mbar_wait(empty_bar + 8 * st, ((it / T::kStages) - 1) & 1);
      const uint32_t a_s = stages + st * T::kStageBytes, b_s = a_s + T::kABytes, full = full_bar + 8 * st;
      if (pt == 0) {
        mbar_arrive_expect_tx(full, T::kBBytes + (kGatherA ? 0 : T::kABytes));
        tma_load_2d(b_s, &maps.b, i * kBK, b_half0, full);
        tma_load_2d(b_s + T::kBBytes / 2, &maps.b, i * kBK, b_half1, full);
        if constexpr (!kGatherA) tma_load_2d(a_s, &maps.a, i * kBK, tile.row0, full);
      }
      if constexpr (kGatherA) {
        const int kc = i * kBK + chunk * 8;
        const bool kin = kc < g.k;
#pragma unroll
        for (int j = 0; j < kRowsPerThread; ++j) {
          const bool ok = kin && src[j] >= 0;
          cp_async16(a_s + sw128_off((pt >> 3) + kRowStep * j, chunk, kBM),
                     ok ? g.a + static_cast<int64_t>(src[j]) * g.k + kc : g.a, ok);
        }
        cp_async_mbar_arrive_noinc(full);
      }
    }
  }
  if constexpr (kGatherA) asm volatile("cp.async.wait_all;\n" ::: "memory");  // no copy outlives its thread
}

// The accumulator's element (row 16 warp + lane / 4 + 8 h, columns 8 j + 2 (lane % 4), + 1)
// of this warpgroup's 64 rows is acc[4 j + 2 h], acc[4 j + 2 h + 1].
template <int BN>
__device__ __forceinline__ void store(const GroupedGemmArgs& g, const ExpertTile& tile, const float (&acc)[BN / 2],
                                      int n0) {
  const int wg = threadIdx.x >> 7, warp = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int row = tile.row0 + wg * 64 + warp * 16 + (lane >> 2) + 8 * h;
    if (row >= tile.row_end) continue;
    bf16* out = g.c + static_cast<int64_t>(row) * g.n + n0 + 2 * (lane & 3);
#pragma unroll
    for (int j = 0; j < BN / 8; ++j) {
      if (n0 + 8 * j + 2 * (lane & 3) >= g.n) break;
      *reinterpret_cast<uint32_t*>(out + 8 * j) = pack_bf16(acc[4 * j + 2 * h], acc[4 * j + 2 * h + 1]);
    }
  }
}

// Gated: columns [0, BN / 2) are gate j0 + c and [BN / 2, BN) up j0 + c; C [rows, n / 2].
template <int BN>
__device__ __forceinline__ void store_gated(const GroupedGemmArgs& g, const ExpertTile& tile,
                                            const float (&acc)[BN / 2], int j0) {
  const int wg = threadIdx.x >> 7, warp = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31, inter = g.n / 2;
  auto silu_mul = [](float gate, float up) {  // both rounded to bf16 first, as GEMM then silu_mul
    gate = __bfloat162float(__float2bfloat16(gate));
    return gate / (1.0f + __expf(-gate)) * __bfloat162float(__float2bfloat16(up));
  };
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int row = tile.row0 + wg * 64 + warp * 16 + (lane >> 2) + 8 * h;
    if (row >= tile.row_end) continue;
    bf16* out = g.c + static_cast<int64_t>(row) * inter + j0 + 2 * (lane & 3);
#pragma unroll
    for (int j = 0; j < BN / 16; ++j) {
      if (j0 + 8 * j + 2 * (lane & 3) >= inter) break;
      const int gi = 4 * j + 2 * h, ui = 4 * (j + BN / 16) + 2 * h;
      *reinterpret_cast<uint32_t*>(out + 8 * j) = pack_bf16(silu_mul(acc[gi], acc[ui]),
                                                            silu_mul(acc[gi + 1], acc[ui + 1]));
    }
  }
}

// A consumer warpgroup: per tile, its 64 rows x BN over every k tile, then
// the store (while the producer already fills the next tile's stages).
template <int BN>
__device__ __forceinline__ void consume(const TileWalk& w, uint32_t stages, uint32_t full_bar, uint32_t empty_bar) {
  using T = Tiling<BN>;
  const GroupedGemmArgs& g = w.g;
  const int wg = threadIdx.x >> 7, lane = threadIdx.x & 31;
  auto release = [&](int it) {  // stage of k tile `it` goes back: its wgmma group is done
    __syncwarp();
    if (lane == 0) mbar_arrive(empty_bar + 8 * (it % T::kStages));
  };
  bool alive = true;
  int it = 0;
  for (int t = blockIdx.x; t < w.total; t += gridDim.x) {
    const ExpertTile tile = w.tile(t);
    float acc[BN / 2];  // the m64nBN accumulator: [BN / 8 column groups][4]
#pragma unroll
    for (int i = 0; i < BN / 2; ++i) acc[i] = 0.0f;
    for (int i = 0; i < w.num_k; ++i, ++it) {
      const int st = it % T::kStages;
      if (alive) alive = mbar_wait(full_bar + 8 * st, (it / T::kStages) & 1);
      __syncwarp();              // lanes leave the wait apart; wgmma is .aligned
      fence_proxy_async_smem();  // the gather's cp.async (generic proxy) before wgmma's reads
      const uint32_t a_s = stages + st * T::kStageBytes + wg * 64 * kRowBytes;
      const uint32_t b_s = stages + st * T::kStageBytes + T::kABytes;
      wgmma_fence();
#pragma unroll
      for (int kk = 0; kk < kBK / 16; ++kk)
        wgmma_tile<BN>(acc, wgmma_desc_sw128(a_s + kk * 32, 0, 1024), wgmma_desc_sw128(b_s + kk * 32, 0, 1024));
      wgmma_commit();
      if (i > 0) {
        wgmma_wait<1>();
        release(it - 1);
      }
    }
    wgmma_wait<0>();
    wgmma_fence_regs(acc);
    release(it - 1);
    if (!alive) {
#pragma unroll
      for (int i = 0; i < BN / 2; ++i) acc[i] = NAN;
    }
    if (g.gated) store_gated<BN>(g, tile, acc, (t % w.n_tiles) * (BN / 2));
    else store<BN>(g, tile, acc, (t % w.n_tiles) * BN);
  }
}

// Persistent: one block per SM (at most), each walking the tiles (TileWalk).
template <int BN, bool kGatherA>
__global__ void __launch_bounds__(kThreads, 1)
    grouped_gemm_wgmma_kernel(const __grid_constant__ TileMaps maps, GroupedGemmArgs g) {
  using T = Tiling<BN>;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  __shared__ int s_tiles_before[kMaxExperts + 1];
  const int n_tiles = g.gated ? (g.n / 2 + BN / 2 - 1) / (BN / 2) : (g.n + BN - 1) / BN;
  const TileWalk walk{g, s_tiles_before, n_tiles,
                      count_expert_tiles(g.offsets, g.num_experts, kBM, s_tiles_before) * n_tiles,
                      (g.k + kBK - 1) / kBK};
  // The swizzle is a function of address bits 4-9: the stages start 1024-aligned.
  const uint32_t stages = (static_cast<uint32_t>(__cvta_generic_to_shared(smem_raw)) + 1023u) & ~1023u;
  const uint32_t full_bar = stages + T::kStages * T::kStageBytes, empty_bar = full_bar + T::kStages * 8;
  if (threadIdx.x == 0) {
#pragma unroll
    for (int st = 0; st < T::kStages; ++st) {
      mbar_init(full_bar + 8 * st, 1 + (kGatherA ? kProducers : 0));  // expect_tx (+ the gather's noinc arrivals)
      mbar_init(empty_bar + 8 * st, kConsumers / 32);
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();
  if (threadIdx.x >= kConsumers) {
    setmaxnreg_dec<kProducerRegs>();
    produce<BN, kGatherA>(walk, maps, stages, full_bar, empty_bar);
  } else {
    setmaxnreg_inc<kConsumerRegs>();
    consume<BN>(walk, stages, full_bar, empty_bar);
  }
}

// A row-major bf16 matrix [rows][cols] in boxes of [box_rows][64] with the 128-byte swizzle.
CUtensorMap tile_map(const bf16* base, int64_t rows, int cols, int box_rows) {
  using Encode = CUresult (*)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*, const cuuint64_t*,
                              const cuuint64_t*, const cuuint32_t*, const cuuint32_t*, CUtensorMapInterleave,
                              CUtensorMapSwizzle, CUtensorMapL2promotion, CUtensorMapFloatOOBfill);
  static const Encode encode = [] {  // the driver's entry point: resolved once, never changes
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult found{};
    const cudaError_t e = cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault,
                                                           &found);
    BATON_CHECK(e == cudaSuccess && found == cudaDriverEntryPointSuccess && fn != nullptr,
                "grouped gemm: the driver has no cuTensorMapEncodeTiled ({})", cudaGetErrorString(e));
    return reinterpret_cast<Encode>(fn);
  }();
  CUtensorMap map{};
  const cuuint64_t dims[2] = {static_cast<cuuint64_t>(cols), static_cast<cuuint64_t>(rows)};
  const cuuint64_t strides[1] = {static_cast<cuuint64_t>(cols) * sizeof(bf16)};
  const cuuint32_t box[2] = {kBK, static_cast<cuuint32_t>(box_rows)};
  const cuuint32_t elem_strides[2] = {1, 1};
  const CUresult r = encode(&map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, const_cast<bf16*>(base), dims, strides, box,
                            elem_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                            CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  BATON_CHECK(r == CUDA_SUCCESS, "grouped gemm: cuTensorMapEncodeTiled failed ({}) for [{}][{}]", static_cast<int>(r),
              rows, cols);
  return map;
}

template <int BN, bool kGatherA>
void launch_variant(const GroupedGemmArgs& g, cudaStream_t stream) {
  const auto kernel = grouped_gemm_wgmma_kernel<BN, kGatherA>;
  set_dynamic_smem(reinterpret_cast<const void*>(kernel), Tiling<BN>::kSmemBytes, stream);
  TileMaps maps{};
  maps.b = tile_map(g.w, static_cast<int64_t>(g.num_experts) * g.n, g.k, BN / 2);  // B in two halves
  if constexpr (!kGatherA) maps.a = tile_map(g.a, g.num_rows, g.k, kBM);
  // Tiles: at most ceil(rows / 128) + E m tiles (and one per row), each n / BN wide.
  const int64_t tiles = static_cast<int64_t>(std::min((g.num_rows + kBM - 1) / kBM + g.num_experts, g.num_rows)) *
                        ((g.n + BN - 1) / BN) * (g.gated ? 2 : 1);
  kernel<<<static_cast<int>(std::min<int64_t>(tiles, device_sm_count())), kThreads, Tiling<BN>::kSmemBytes, stream>>>(
      maps, g);
}

}  // namespace

bool grouped_gemm_wgmma_fits(int n, int k, int num_experts) {
  return n % 8 == 0 && k % 8 == 0 && num_experts <= kMaxExperts;
}

void launch_grouped_gemm_wgmma(const GroupedGemmArgs& g, int tile_n, cudaStream_t stream) {
  BATON_CHECK(grouped_gemm_wgmma_fits(g.n, g.k, g.num_experts) && (tile_n == 128 || tile_n == 256) &&
                  (!g.gated || g.n % 16 == 0),
              "grouped gemm (wgmma): {} rows, {} experts, n {}, k {}, tile n {}", g.num_rows, g.num_experts, g.n, g.k,
              tile_n);
  const bool gather = g.a_rows != nullptr;
  if (tile_n == 256) gather ? launch_variant<256, true>(g, stream) : launch_variant<256, false>(g, stream);
  else gather ? launch_variant<128, true>(g, stream) : launch_variant<128, false>(g, stream);
  BATON_LAUNCH_CHECK();
}

}  // namespace baton::cuda
