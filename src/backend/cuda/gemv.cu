// Skinny GEMMs with bf16 weights (decode at small batch): the kernel of gemv.cuh.
#include "backend/cuda/gemv.cuh"

namespace baton::cuda {

bool gemv_supports(int m, int k) { return m >= 1 && m <= 8 && k % 8 == 0; }

void launch_gemv(const bf16* x, const bf16* w, void* y, int m, int n, int k, bool y_f32, cudaStream_t stream) {
  BATON_CHECK(gemv_supports(m, k), "gemv: m {} k {}", m, k);
  const skinny::Weight wt{w};
  if (y_f32) skinny::launch<false, float, false>(x, wt, static_cast<float*>(y), m, n, k, stream);
  else skinny::launch<false, bf16, false>(x, wt, static_cast<bf16*>(y), m, n, k, stream);
  BATON_LAUNCH_CHECK();
}

void launch_gemv_silu_mul(const bf16* x, const bf16* w, bf16* out, int m, int inter, int k, cudaStream_t stream) {
  BATON_CHECK(gemv_supports(m, k), "gemv: m {} k {}", m, k);
  skinny::launch<false, bf16, true>(x, skinny::Weight{w}, out, m, inter, k, stream);
  BATON_LAUNCH_CHECK();
}

}  // namespace baton::cuda
