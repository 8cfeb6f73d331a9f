#include "tools/gpu_profile/profile_ceilings.h"

#include <algorithm>
#include <cstring>

#include "backend/cuda/cuda_common.h"
#include "backend/cuda/fp8_gemm.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/kernels.h"

namespace baton::cuda {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

Result<Ceilings> measure_ceilings() {
  Ceilings c;
  cudaDeviceProp prop;
  BATON_CUDA_RETURN(cudaGetDeviceProperties(&prop, 0));
  c.device = prop.name;
  cudaStream_t s;
  BATON_CUDA_RETURN(cudaStreamCreate(&s));
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  auto time_ms = [&](auto&& fn, int iters) {
    std::vector<double> t;
    for (int i = 0; i < iters + 3; ++i) {
      cudaEventRecord(e0, s);
      fn();
      cudaEventRecord(e1, s);
      cudaEventSynchronize(e1);
      float ms = 0;
      cudaEventElapsedTime(&ms, e0, e1);
      if (i >= 3) t.push_back(ms);
    }
    return median(t);
  };
  {  // device copy: 2 GiB, random contents
    const size_t bytes = size_t{2} << 30;
    DeviceBuffer a, b;
    BATON_RETURN_IF_ERROR(a.allocate(bytes));
    BATON_RETURN_IF_ERROR(b.allocate(bytes));
    launch_fill_random(a.as<bf16>(), bytes / 2, 1.0f, 1, s);
    double ms = time_ms([&] { cudaMemcpyAsync(b.get(), a.get(), bytes, cudaMemcpyDeviceToDevice, s); }, 20);
    c.copy_gbps = 2.0 * bytes / (ms * 1e-3) / 1e9;
    void* host = nullptr;
    BATON_CUDA_RETURN(cudaHostAlloc(&host, size_t{1} << 30, cudaHostAllocDefault));
    std::memset(host, 1, size_t{1} << 30);
    ms = time_ms([&] { cudaMemcpyAsync(a.get(), host, size_t{1} << 30, cudaMemcpyHostToDevice, s); }, 5);
    c.h2d_pinned_gbps = (size_t{1} << 30) / (ms * 1e-3) / 1e9;
    cudaFreeHost(host);
  }
  {  // GEMM 8192^3 bf16, random data
    const int n = 8192;
    DeviceBuffer x, w, y;
    BATON_RETURN_IF_ERROR(x.allocate(size_t{2} * n * n));
    BATON_RETURN_IF_ERROR(w.allocate(size_t{2} * n * n));
    BATON_RETURN_IF_ERROR(y.allocate(size_t{2} * n * n));
    launch_fill_random(x.as<bf16>(), int64_t{n} * n, 1.0f, 2, s);
    launch_fill_random(w.as<bf16>(), int64_t{n} * n, 1.0f, 3, s);
    Gemm g;
    BATON_RETURN_IF_ERROR(g.init());
    double ms = time_ms([&] { g.run(x.as<bf16>(), w.as<bf16>(), y.get(), n, n, n, false, s); }, 20);
    c.gemm_tflops = 2.0 * n * n * double(n) / (ms * 1e-3) / 1e12;
    // The same shape in FP8: W8A8 through Fp8Gemm, the activations' quantisation included.
    DeviceBuffer bits, scales;
    BATON_RETURN_IF_ERROR(bits.allocate(size_t{n} * n));
    const int ld = fp8_scale_ld(n);
    BATON_RETURN_IF_ERROR(scales.allocate(size_t{4} * (n / kFp8GroupCols) * ld));
    launch_fp8_fill_random(bits.as<uint8_t>(), int64_t{n} * n, 4, s);
    launch_fill_const_f32(scales.as<float>(), int64_t{n / kFp8GroupCols} * ld, 1.0f / 448.0f, s);
    Fp8Gemm f;
    BATON_RETURN_IF_ERROR(f.init(n, n, 0, int64_t{n} * n, &g));
    c.fp8_gemm_form = f.w8a8_form();
    const Fp8Weight w8{bits.as<uint8_t>(), scales.as<float>(), kFp8GroupCols, ld};
    ms = time_ms([&] { f.run(x.as<bf16>(), w8, y.as<bf16>(), n, n, n, s); }, 20);
    c.fp8_gemm_tflops = 2.0 * n * n * double(n) / (ms * 1e-3) / 1e12;
  }
  BATON_CUDA_RETURN(cudaStreamSynchronize(s));
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  cudaStreamDestroy(s);
  return c;
}

}  // namespace baton::cuda
