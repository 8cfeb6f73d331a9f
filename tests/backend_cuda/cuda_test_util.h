// Helpers for the CUDA backend's tests: device upload/download, bf16 rounding,
// random data and the relative L2 error that METHOD.md asks for.
#pragma once

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_common.h"
#include "backend/cuda/kernels.h"
#include "common/float16.h"

namespace baton::cuda::testing {

inline float round_bf16(float x) { return bf16_to_float(float_to_bf16(x)); }

// Options for the fixture models' small steps; ranks that share the GPU split its memory.
inline CudaBackendOptions small_backend_options(double gpu_memory_utilization = 0.3) {
  CudaBackendOptions o;
  o.max_num_tokens = 1024;
  o.max_num_samples = 64;
  o.gpu_memory_utilization = gpu_memory_utilization;
  return o;
}

// Random values in [-scale, scale], already representable in bf16.
inline std::vector<float> random_bf16_values(size_t n, float scale, std::mt19937& rng) {
  std::uniform_real_distribution<float> d(-scale, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = round_bf16(d(rng));
  return v;
}

template <typename T>
DeviceBuffer upload(const std::vector<T>& v) {
  DeviceBuffer b;
  BATON_CHECK_OK(b.allocate(std::max<size_t>(v.size() * sizeof(T), 16)));
  BATON_CUDA_CHECK(cudaMemcpy(b.get(), v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
  return b;
}

inline DeviceBuffer upload_bf16(const std::vector<float>& v) {
  std::vector<uint16_t> h(v.size());
  for (size_t i = 0; i < v.size(); ++i) h[i] = float_to_bf16(v[i]);
  return upload(h);
}

// A device buffer of n bf16 filled with NaN (poison: unwritten outputs show).
inline DeviceBuffer poisoned_bf16(size_t n) {
  std::vector<uint16_t> h(n, 0x7fc0);
  return upload(h);
}
inline DeviceBuffer poisoned_f32(size_t n) {
  std::vector<float> h(n, std::nanf(""));
  return upload(h);
}

inline std::vector<float> download_bf16(const DeviceBuffer& b, size_t n) {
  std::vector<uint16_t> h(n);
  BATON_CUDA_CHECK(cudaDeviceSynchronize());
  BATON_CUDA_CHECK(cudaMemcpy(h.data(), b.get(), n * 2, cudaMemcpyDeviceToHost));
  std::vector<float> f(n);
  for (size_t i = 0; i < n; ++i) f[i] = bf16_to_float(h[i]);
  return f;
}

template <typename T>
std::vector<T> download(const DeviceBuffer& b, size_t n) {
  std::vector<T> h(n);
  BATON_CUDA_CHECK(cudaDeviceSynchronize());
  BATON_CUDA_CHECK(cudaMemcpy(h.data(), b.get(), n * sizeof(T), cudaMemcpyDeviceToHost));
  return h;
}

// ||out - ref|| / ||ref||; any NaN gives +inf.
inline double rel_l2(const std::vector<float>& out, const std::vector<float>& ref) {
  EXPECT_EQ(out.size(), ref.size());
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < std::min(out.size(), ref.size()); ++i) {
    if (std::isnan(out[i]) || std::isnan(ref[i])) return INFINITY;
    double d = static_cast<double>(out[i]) - ref[i];
    num += d * d;
    den += static_cast<double>(ref[i]) * ref[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

inline bool have_gpu() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

#define BATON_REQUIRE_GPU() \
  if (!::baton::cuda::testing::have_gpu()) GTEST_SKIP() << "no CUDA device"

}  // namespace baton::cuda::testing
