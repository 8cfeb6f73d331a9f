// Which rows a grouped GEMM's m tile covers. The rows are sorted by expert
// (offsets [E + 1] on the device, moe_align); each expert's rows are cut into
// tiles of `tile_rows`, numbered expert by expert, so a block finds its expert
// from the per-expert tile counts without a host sync.
#pragma once

#include <cstdint>

namespace baton::cuda {

constexpr int kMaxExperts = 512;

struct ExpertTile {
  int expert;   // -1: past the last non-empty tile (the grid is an upper bound)
  int row0;     // first sorted row of the tile
  int row_end;  // one past the expert's last row (the tile's rows are [row0, min(row0 + tile_rows, row_end)))
};

// One "expert" over rows [0, num_rows) (the dense GEMM).
__device__ __forceinline__ ExpertTile dense_tile(int tile, int tile_rows, int num_rows) {
  return tile * tile_rows < num_rows ? ExpertTile{0, tile * tile_rows, num_rows} : ExpertTile{-1, 0, 0};
}

// The m tiles of all experts; every thread of the block calls it (two
// __syncthreads inside). tiles_before: shared [kMaxExperts + 1], filled with
// the m tiles of experts < e.
__device__ __forceinline__ int count_expert_tiles(const int32_t* offsets, int num_experts, int tile_rows,
                                                  int* tiles_before) {
  for (int e = threadIdx.x; e < num_experts; e += blockDim.x)
    tiles_before[e + 1] = (offsets[e + 1] - offsets[e] + tile_rows - 1) / tile_rows;
  if (threadIdx.x == 0) tiles_before[0] = 0;
  __syncthreads();
  if (threadIdx.x < 32) {  // prefix sum by warp 0, 32 experts at a time
    int carry = 0;
    for (int base = 1; base <= num_experts; base += 32) {
      const int i = base + threadIdx.x;
      int v = i <= num_experts ? tiles_before[i] : 0;
#pragma unroll
      for (int o = 1; o < 32; o <<= 1) {
        const int u = __shfl_up_sync(0xffffffffu, v, o);
        if (threadIdx.x >= o) v += u;
      }
      if (i <= num_experts) tiles_before[i] = v + carry;
      carry += __shfl_sync(0xffffffffu, v, 31);
    }
  }
  __syncthreads();
  return tiles_before[num_experts];
}

// Tile `tile` (< count_expert_tiles's total) by binary search: any thread, no sync.
__device__ __forceinline__ ExpertTile expert_tile_at(const int32_t* offsets, const int* tiles_before, int num_experts,
                                                     int tile, int tile_rows) {
  int lo = 0, hi = num_experts;  // the expert e with before[e] <= tile < before[e + 1]
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    if (tiles_before[mid] <= tile) lo = mid;
    else hi = mid;
  }
  return {lo, offsets[lo] + (tile - tiles_before[lo]) * tile_rows, offsets[lo + 1]};
}

// This block's tile `tile` (blockIdx.y of a grid of one block per tile, an
// upper bound): every thread of the block calls it.
__device__ __forceinline__ ExpertTile find_expert_tile(const int32_t* offsets, int num_experts, int tile, int tile_rows,
                                                       int* tiles_before) {
  const int total = count_expert_tiles(offsets, num_experts, tile_rows, tiles_before);
  return tile < total ? expert_tile_at(offsets, tiles_before, num_experts, tile, tile_rows) : ExpertTile{-1, 0, 0};
}

}  // namespace baton::cuda
