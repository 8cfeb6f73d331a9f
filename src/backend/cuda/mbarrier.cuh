// Shared-memory mbarriers, named barriers and register reallocation for the
// warp-specialised Hopper kernels (sm_90a): a producer warpgroup fills stages
// and arrives on full[stage]; consumers wait on it, and give the stage back on
// empty[stage] (attention_wgmma_ws.cu and grouped_gemm_wgmma.cu describe their
// protocols).
#pragma once

#include <cstdint>

namespace baton::cuda {

// A wait this long (~2.5 s) is a protocol bug: stop waiting and poison the output.
constexpr long long kHangCycles = 1LL << 32;

__device__ __forceinline__ void mbar_init(uint32_t bar, int count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ bool mbar_try_wait(uint32_t bar, uint32_t parity) {
  uint32_t ok;
  asm volatile("{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
               : "=r"(ok)
               : "r"(bar), "r"(parity)
               : "memory");
  return ok != 0;
}
// Waits for the completion of the barrier's phase of this parity. False after
// kHangCycles: the caller stops waiting from then on and writes NaN, so a
// protocol bug fails the test instead of hanging the GPU. (Not __trap(): a
// trap made ptxas ignore setmaxnreg.inc's budget and spill the consumers.)
__device__ __forceinline__ bool mbar_wait(uint32_t bar, uint32_t parity) {
  if (mbar_try_wait(bar, parity)) return true;
  const long long t0 = clock64();
  while (!mbar_try_wait(bar, parity)) {
    if (clock64() - t0 > kHangCycles) return false;
  }
  return true;
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
  asm volatile("{\n.reg .b64 st;\nmbarrier.arrive.shared::cta.b64 st, [%0];\n}\n" ::"r"(bar) : "memory");
}
// Arrives on `bar` once all of this thread's earlier cp.async have landed;
// noinc: the arrival counts against the barrier's init count.
__device__ __forceinline__ void cp_async_mbar_arrive_noinc(uint32_t bar) {
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(bar) : "memory");
}
__device__ __forceinline__ void named_sync(int id, int num_threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(num_threads) : "memory");
}
__device__ __forceinline__ void named_arrive_if(bool cond, int id, int num_threads) {
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %0, 0;\n@p bar.arrive %1, %2;\n}\n" ::"r"(static_cast<int>(cond)),
               "r"(id), "r"(num_threads)
               : "memory");
}
template <int N>
__device__ __forceinline__ void setmaxnreg_inc() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(N));
}
template <int N>
__device__ __forceinline__ void setmaxnreg_dec() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(N));
}

}  // namespace baton::cuda
