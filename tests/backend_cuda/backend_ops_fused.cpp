// backend-ops runners of the GEMV's fused forms (gemv.cuh; decode at 1 or 2
// rows): norm-in against the CPU's rmsnorm (rounded to bf16) and matmul, and
// against the unfused pair on the GPU (add_rmsnorm, then the GEMV); residual-
// add against the CPU, and bit for bit against the plain GEMV's bf16 output
// added as add_rmsnorm adds it. Both over bf16 weights and e4m3 ones.
#include "backend/cpu/cpu_ops.h"
#include "backend/cuda/fp8_kernels.h"
#include "backend/cuda/kernels.h"
#include "backend_ops.h"

namespace baton::cuda::ops {
namespace {

using testing::download;
using testing::download_bf16;
using testing::poisoned_bf16;
using testing::random_bf16_values;
using testing::round_bf16;
using testing::upload;
using testing::upload_bf16;

constexpr float kEps = 1e-5f;

// A [rows, k] weight on the device, bf16 or e4m3 in 128-row scale blocks, and
// its values as the kernels see them.
struct Weight {
  std::vector<float> values;
  DeviceBuffer bf16_rows;
  Fp8Inputs fp8;
};
Weight random_weight(int rows, int k, bool fp8, std::mt19937& rng) {
  Weight w;
  if (fp8) {
    w.fp8 = fp8_inputs({1, rows, k}, 128, rng);
    w.values = w.fp8.w_deq;
  } else {
    w.values = random_bf16_values(static_cast<size_t>(rows) * k, 0.1f, rng);
    w.bf16_rows = upload_bf16(w.values);
  }
  return w;
}

// y = x . w^T through the unfused GEMV (gated: with the SwiGLU).
void plain_gemv(const bf16* x, const Weight& w, bool fp8, bool gated, bf16* y, GemmShape s) {
  if (fp8 && gated) launch_fp8_gemv_silu_mul(x, w.fp8.w, y, s.m, s.n, s.k, nullptr);
  else if (fp8) launch_fp8_gemv(x, w.fp8.w, y, s.m, s.n, s.k, nullptr);
  else if (gated) launch_gemv_silu_mul(x, w.bf16_rows.as<bf16>(), y, s.m, s.n, s.k, nullptr);
  else launch_gemv(x, w.bf16_rows.as<bf16>(), y, s.m, s.n, s.k, false, nullptr);
}

std::vector<Check> run_norm_in(GemmShape s, bool gated, bool fp8, std::mt19937& rng) {
  BATON_CHECK(gemv_norm_in_supports(s.m, s.k, fp8), "norm-in case outside the kernel's shapes");
  const int rows = gated ? 2 * s.n : s.n;
  const auto res = random_bf16_values(static_cast<size_t>(s.m) * s.k, 3.0f, rng);
  const auto norm_w = random_bf16_values(s.k, 1.5f, rng);
  const Weight w = random_weight(rows, s.k, fp8, rng);
  std::vector<float> normed(res.size()), prod(static_cast<size_t>(s.m) * rows);
  rmsnorm(res.data(), norm_w.data(), s.m, s.k, kEps, normed.data());
  for (float& v : normed) v = round_bf16(v);
  matmul(normed.data(), s.m, s.k, w.values.data(), rows, nullptr, prod.data(), &reference_pool());
  std::vector<float> ref(static_cast<size_t>(s.m) * s.n);
  if (gated) {
    for (float& v : prod) v = round_bf16(v);
    silu_mul(prod.data(), s.m, s.n, ref.data());
  } else {
    ref = prod;
  }
  auto dres = upload(res), dnw = upload_bf16(norm_w);
  auto dy = poisoned_bf16(ref.size()), dnormed = poisoned_bf16(res.size()), dy_unfused = poisoned_bf16(ref.size());
  const GemvNormIn in{dres.as<float>(), dnw.as<bf16>(), kEps};
  if (fp8) launch_fp8_gemv_norm_in(in, w.fp8.w, dy.as<bf16>(), s.m, s.n, s.k, gated, nullptr);
  else launch_gemv_norm_in(in, w.bf16_rows.as<bf16>(), dy.as<bf16>(), s.m, s.n, s.k, gated, nullptr);
  launch_add_rmsnorm(dres.as<float>(), nullptr, nullptr, dnw.as<bf16>(), dnormed.as<bf16>(), nullptr, s.m, s.k, kEps,
                     nullptr);
  plain_gemv(dnormed.as<bf16>(), w, fp8, gated, dy_unfused.as<bf16>(), s);
  const auto y = download_bf16(dy, ref.size());
  return {compare("out", y, ref, fp8 ? kTolFp8Linear : kTolBf16),
          compare("out_vs_unfused", y, download_bf16(dy_unfused, ref.size()), kTolBf16Step),
          compare_exact("residual_untouched", download<float>(dres, res.size()), res)};
}

std::vector<Check> run_residual_add(GemmShape s, bool with_bias, bool fp8, std::mt19937& rng) {
  BATON_CHECK(gemv_residual_add_supports(s.m, s.k, fp8), "residual-add case outside the kernel's shapes");
  const auto x = random_bf16_values(static_cast<size_t>(s.m) * s.k, 1.0f, rng);
  const auto res = random_bf16_values(static_cast<size_t>(s.m) * s.n, 3.0f, rng);
  const auto bias = random_bf16_values(s.n, 0.5f, rng);
  const Weight w = random_weight(s.n, s.k, fp8, rng);
  std::vector<float> prod(res.size());
  matmul(x.data(), s.m, s.k, w.values.data(), s.n, nullptr, prod.data(), &reference_pool());
  auto dx = upload_bf16(x), dres = upload(res), dbias = upload_bf16(bias), dy = poisoned_bf16(res.size());
  const bf16* b = with_bias ? dbias.as<bf16>() : nullptr;
  if (fp8) launch_fp8_gemv_residual_add(dx.as<bf16>(), w.fp8.w, b, dres.as<float>(), s.m, s.n, s.k, nullptr);
  else launch_gemv_residual_add(dx.as<bf16>(), w.bf16_rows.as<bf16>(), b, dres.as<float>(), s.m, s.n, s.k, nullptr);
  plain_gemv(dx.as<bf16>(), w, fp8, false, dy.as<bf16>(), s);
  const auto y = download_bf16(dy, res.size());
  // The CPU's sums rounded to bf16, and the plain GEMV's outputs, each added
  // as launch_add_rmsnorm adds them: x = residual + out, then + bias.
  std::vector<float> ref(res), exact(res);
  for (size_t i = 0; i < res.size(); ++i) {
    const size_t col = i % s.n;
    ref[i] += round_bf16(prod[i]);
    exact[i] += y[i];
    if (with_bias) {
      ref[i] += bias[col];
      exact[i] += bias[col];
    }
  }
  const auto got = download<float>(dres, res.size());
  return {compare("residual", got, ref, fp8 ? kTolFp8Linear : kTolBf16Step),
          compare_exact("residual_vs_gemv", got, exact)};
}

std::string shape_name(GemmShape s, const char* form, bool fp8) {
  return std::to_string(s.m) + "x" + std::to_string(s.n) + "x" + std::to_string(s.k) + form + (fp8 ? "_fp8" : "");
}

}  // namespace

OpCase gemv_norm_in_case(GemmShape s, bool gated, bool fp8) {
  return make_case("gemv_norm_in", shape_name(s, gated ? "_gated" : "", fp8), s,
                   [gated, fp8](GemmShape sh, std::mt19937& rng) { return run_norm_in(sh, gated, fp8, rng); });
}

OpCase gemv_residual_add_case(GemmShape s, bool bias, bool fp8) {
  return make_case("gemv_residual_add", shape_name(s, bias ? "_bias" : "", fp8), s,
                   [bias, fp8](GemmShape sh, std::mt19937& rng) { return run_residual_add(sh, bias, fp8, rng); });
}

}  // namespace baton::cuda::ops
