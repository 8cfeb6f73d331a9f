// Hopper's tensor memory accelerator (TMA, sm_90a): 2-D tile copies global ->
// shared (a CUtensorMap's box, swizzled as the map says) that complete on an
// mbarrier, and the transaction-count arrive they need.
#pragma once

#include <cuda.h>

#include <cstdint>

namespace baton::cuda {

// Arrives on `bar` and adds `bytes` to the transactions its phase waits for.
__device__ __forceinline__ void mbar_arrive_expect_tx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}

// The box at (x = innermost coordinate, y) of `map` into shared `dst`; its
// bytes complete on `bar`.
__device__ __forceinline__ void tma_load_2d(uint32_t dst, const CUtensorMap* map, int x, int y, uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n" ::
          "r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(x), "r"(y), "r"(bar)
      : "memory");
}
}  // namespace baton::cuda
