#include "tools/gpu_profile/profile_ceilings.h"

#include <algorithm>
#include <cstring>
#include <functional>

#include "backend/cuda/cuda_common.h"
#include "backend/cuda/fp8_gemm.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/kernels.h"

namespace baton::cuda {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

Result<GemmRate> measure_gemm_rate(bool fp8, cudaStream_t s) {
  const int n = 8192;
  DeviceBuffer x, w, y;
  BATON_RETURN_IF_ERROR(x.allocate(size_t{2} * n * n));
  BATON_RETURN_IF_ERROR(y.allocate(size_t{2} * n * n));
  launch_fill_random(x.as<bf16>(), int64_t{n} * n, 1.0f, 2, s);
  Gemm g;
  BATON_RETURN_IF_ERROR(g.init());
  std::function<void(int)> run;
  GemmRate rate;
  DeviceBuffer bits, scales;
  Fp8Gemm f;
  if (!fp8) {
    BATON_RETURN_IF_ERROR(w.allocate(size_t{2} * n * n));
    launch_fill_random(w.as<bf16>(), int64_t{n} * n, 1.0f, 3, s);
    run = [&](int) { g.run(x.as<bf16>(), w.as<bf16>(), y.get(), n, n, n, false, s); };
  } else {
    // W8A8 through Fp8Gemm, the activations' quantisation included.
    BATON_RETURN_IF_ERROR(bits.allocate(size_t{n} * n));
    const int ld = fp8_scale_ld(n);
    BATON_RETURN_IF_ERROR(scales.allocate(size_t{4} * (n / kFp8GroupCols) * ld));
    launch_fp8_fill_random(bits.as<uint8_t>(), int64_t{n} * n, 4, s);
    launch_fill_const_f32(scales.as<float>(), int64_t{n / kFp8GroupCols} * ld, 1.0f / 448.0f, s);
    BATON_RETURN_IF_ERROR(f.init(n, n, 0, int64_t{n} * n, &g));
    rate.fp8_form = f.w8a8_form();
    const Fp8Weight w8{bits.as<uint8_t>(), scales.as<float>(), kFp8GroupCols, ld};
    run = [&, w8](int) { f.run(x.as<bf16>(), w8, y.as<bf16>(), n, n, n, s); };
  }
  const double ms = median_call_ms(3, 20, s, run);
  BATON_CUDA_RETURN(cudaStreamSynchronize(s));
  rate.tflops = 2.0 * n * n * double(n) / (ms * 1e-3) / 1e12;
  return rate;
}

Result<Ceilings> measure_ceilings() {
  Ceilings c;
  cudaDeviceProp prop;
  BATON_CUDA_RETURN(cudaGetDeviceProperties(&prop, 0));
  c.device = prop.name;
  cudaStream_t s;
  BATON_CUDA_RETURN(cudaStreamCreate(&s));
  {  // device copy: 2 GiB, random contents
    const size_t bytes = size_t{2} << 30;
    DeviceBuffer a, b;
    BATON_RETURN_IF_ERROR(a.allocate(bytes));
    BATON_RETURN_IF_ERROR(b.allocate(bytes));
    launch_fill_random(a.as<bf16>(), bytes / 2, 1.0f, 1, s);
    double ms = median_call_ms(3, 20, s,
                               [&](int) { cudaMemcpyAsync(b.get(), a.get(), bytes, cudaMemcpyDeviceToDevice, s); });
    c.copy_gbps = 2.0 * bytes / (ms * 1e-3) / 1e9;
    void* host = nullptr;
    BATON_CUDA_RETURN(cudaHostAlloc(&host, size_t{1} << 30, cudaHostAllocDefault));
    std::memset(host, 1, size_t{1} << 30);
    ms = median_call_ms(3, 5, s,
                        [&](int) { cudaMemcpyAsync(a.get(), host, size_t{1} << 30, cudaMemcpyHostToDevice, s); });
    c.h2d_pinned_gbps = (size_t{1} << 30) / (ms * 1e-3) / 1e9;
    cudaFreeHost(host);
  }
  {  // GEMM 8192^3, bf16 and FP8
    BATON_ASSIGN_OR_RETURN(const GemmRate bf16_rate, measure_gemm_rate(false, s));
    BATON_ASSIGN_OR_RETURN(const GemmRate fp8_rate, measure_gemm_rate(true, s));
    c.gemm_tflops = bf16_rate.tflops;
    c.fp8_gemm_tflops = fp8_rate.tflops;
    c.fp8_gemm_form = fp8_rate.fp8_form;
  }
  BATON_CUDA_RETURN(cudaStreamSynchronize(s));
  cudaStreamDestroy(s);
  return c;
}

}  // namespace baton::cuda
