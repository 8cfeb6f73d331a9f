// backend-ops runners of the FP8 ops (fp8_kernels.h, fp8_gemm.h): the
// per-token-group activation quantiser against the CPU codec
// (model/fp8_quantization.h), and the FP8 linear on each of its paths (the
// W8A16 GEMV, cuBLASLt's W8A8 block-scaled GEMM, the dequantising fallback)
// against the CPU's matmul over the dequantised weight; the norm and SwiGLU
// that quantise their own output, bit for bit against their bf16 forms
// followed by the quantiser.
#include <algorithm>
#include <cmath>

#include "backend/cpu/cpu_ops.h"
#include "backend/cuda/fp8_gemm.h"
#include "backend/cuda/fp8_kernels.h"
#include "backend_ops.h"
#include "model/fp8_quantization.h"

namespace baton::cuda::ops {

using testing::download;
using testing::download_bf16;
using testing::poisoned_bf16;
using testing::random_bf16_values;
using testing::upload;
using testing::upload_bf16;

Fp8Inputs fp8_inputs(GemmShape s, int scale_rows, std::mt19937& rng) {
  Fp8Inputs in;
  in.x = random_bf16_values(static_cast<size_t>(s.m) * s.k, 1.0f, rng);
  const std::vector<float> w = random_bf16_values(static_cast<size_t>(s.n) * s.k, 0.1f, rng);
  Fp8Quantization quant;  // 128 x 128 blocks
  const std::vector<int64_t> grid = quant.scale_shape(s.n, s.k);
  std::vector<uint8_t> bits(w.size());
  std::vector<float> block_scales(static_cast<size_t>(grid[0] * grid[1]));
  quantize_fp8(quant, w.data(), s.n, s.k, bits.data(), block_scales.data());
  in.w_deq.resize(w.size());
  dequantize_fp8(quant, bits.data(), block_scales.data(), s.n, s.k, in.w_deq.data());
  const int ld = fp8_scale_ld(s.k), scale_row_count = (s.n + scale_rows - 1) / scale_rows;
  std::vector<float> dev_scales(static_cast<size_t>(scale_row_count) * ld, 0.0f);
  for (int sr = 0; sr < scale_row_count; ++sr)
    for (int g = 0; g < grid[1]; ++g)
      dev_scales[static_cast<size_t>(sr) * ld + g] =
          block_scales[static_cast<size_t>(sr * scale_rows / 128) * grid[1] + g];
  in.dx = upload_bf16(in.x);
  in.bits = upload(bits);
  in.scales = upload(dev_scales);
  in.w = Fp8Weight{in.bits.as<uint8_t>(), in.scales.as<float>(), scale_rows, ld};
  return in;
}

namespace {

constexpr double kTolFp8Scale = 1e-6;  // the groups' scales: relative L2
constexpr double kTolFp8Bits = 1e-3;   // quantised bytes that differ from the CPU codec's (division rounding)

// The CPU reference of launch_fp8_quantize_groups: bits [m, k], scales group-major [groups, m].
void quantize_groups_reference(const std::vector<float>& x, int m, int k, std::vector<uint8_t>* bits,
                               std::vector<float>* scales) {
  const int groups = (k + kFp8GroupCols - 1) / kFp8GroupCols;
  bits->assign(static_cast<size_t>(m) * k, 0);
  scales->assign(static_cast<size_t>(groups) * m, 0.0f);
  for (int r = 0; r < m; ++r)
    for (int g = 0; g < groups; ++g) {
      const int c0 = g * kFp8GroupCols, c1 = std::min(k, c0 + kFp8GroupCols);
      float amax = 0.0f;
      for (int c = c0; c < c1; ++c) amax = std::max(amax, std::fabs(x[static_cast<size_t>(r) * k + c]));
      const float s = amax > 0.0f ? amax / 448.0f : 1.0f;
      (*scales)[static_cast<size_t>(g) * m + r] = s;
      for (int c = c0; c < c1; ++c)
        (*bits)[static_cast<size_t>(r) * k + c] = float_to_fp8_e4m3(x[static_cast<size_t>(r) * k + c] / s);
    }
}

std::vector<Check> run_quantize(RowsShape s, std::mt19937& rng) {
  const int m = s.rows, k = s.cols, groups = (k + kFp8GroupCols - 1) / kFp8GroupCols;
  std::vector<float> x = random_bf16_values(static_cast<size_t>(m) * k, 3.0f, rng);
  for (int c = 0; c < std::min(k, kFp8GroupCols); ++c) x[c] = 0.0f;  // an all-zero group: scale 1
  auto dx = upload_bf16(x);
  DeviceBuffer dq, ds;
  BATON_CHECK_OK(dq.allocate(x.size()));
  BATON_CHECK_OK(ds.allocate(static_cast<size_t>(groups) * m * sizeof(float)));
  launch_fp8_quantize_groups(dx.as<bf16>(), m, k, dq.as<uint8_t>(), ds.as<float>(), nullptr);
  std::vector<uint8_t> ref_bits;
  std::vector<float> ref_scales;
  quantize_groups_reference(x, m, k, &ref_bits, &ref_scales);
  return {compare("scales", download<float>(ds, ref_scales.size()), ref_scales, kTolFp8Scale),
          compare_exact("bits", download<uint8_t>(dq, ref_bits.size()), ref_bits, kTolFp8Bits)};
}

// launch_add_rmsnorm_fp8 (norm) or launch_silu_mul_fp8 over s.rows rows of
// s.cols: the same bits and scales as the bf16 form then the quantiser (and,
// the norm, the same residual), and those against the CPU codec over the
// bf16 form's rows.
std::vector<Check> run_quantizing_producer(RowsShape s, bool norm, std::mt19937& rng) {
  const int m = s.rows, k = s.cols, groups = k / kFp8GroupCols;
  const size_t elems = static_cast<size_t>(m) * k;
  DeviceBuffer q, scales, q_unfused, scales_unfused;
  for (DeviceBuffer* b : {&q, &q_unfused}) BATON_CHECK_OK(b->allocate(elems));
  for (DeviceBuffer* b : {&scales, &scales_unfused})
    BATON_CHECK_OK(b->allocate(static_cast<size_t>(groups) * m * sizeof(float)));
  auto rows = poisoned_bf16(elems);
  std::vector<Check> checks;
  if (norm) {
    const auto res = random_bf16_values(elems, 2.0f, rng), add = random_bf16_values(elems, 2.0f, rng);
    const auto bias = random_bf16_values(k, 0.5f, rng), w = random_bf16_values(k, 1.5f, rng);
    auto dres = upload(res), dres_unfused = upload(res);
    auto dadd = upload_bf16(add), dbias = upload_bf16(bias), dw = upload_bf16(w);
    launch_add_rmsnorm_fp8(dres.as<float>(), dadd.as<bf16>(), dbias.as<bf16>(), dw.as<bf16>(), q.as<uint8_t>(),
                           scales.as<float>(), m, k, 1e-5f, nullptr);
    launch_add_rmsnorm(dres_unfused.as<float>(), dadd.as<bf16>(), dbias.as<bf16>(), dw.as<bf16>(), rows.as<bf16>(),
                       nullptr, m, k, 1e-5f, nullptr);
    checks.push_back(
        compare_exact("residual_vs_unfused", download<float>(dres, elems), download<float>(dres_unfused, elems)));
  } else {
    const auto gu = random_bf16_values(2 * elems, 4.0f, rng);
    auto dgu = upload_bf16(gu);
    launch_silu_mul_fp8(dgu.as<bf16>(), q.as<uint8_t>(), scales.as<float>(), m, k, nullptr);
    launch_silu_mul(dgu.as<bf16>(), rows.as<bf16>(), m, k, nullptr);
  }
  launch_fp8_quantize_groups(rows.as<bf16>(), m, k, q_unfused.as<uint8_t>(), scales_unfused.as<float>(), nullptr);
  const auto bits = download<uint8_t>(q, elems);
  const auto group_scales = download<float>(scales, static_cast<size_t>(groups) * m);
  std::vector<uint8_t> ref_bits;
  std::vector<float> ref_scales;
  quantize_groups_reference(download_bf16(rows, elems), m, k, &ref_bits, &ref_scales);
  checks.push_back(compare_exact("bits_vs_unfused", bits, download<uint8_t>(q_unfused, elems)));
  checks.push_back(
      compare_exact("scales_vs_unfused", group_scales, download<float>(scales_unfused, group_scales.size())));
  checks.push_back(compare_exact("bits_vs_cpu_codec", bits, ref_bits, kTolFp8Bits));
  checks.push_back(compare("scales_vs_cpu_codec", group_scales, ref_scales, kTolFp8Scale));
  return checks;
}

// The path Fp8Gemm::run takes decides the reference's activations: the rows
// cuBLASLt's W8A8 GEMM computes see them quantised per token group, the
// others (GEMV, fallback, the m mod 4 remainder) in bf16.
std::vector<Check> run_fp8_linear(GemmShape s, int scale_rows, std::mt19937& rng) {
  Fp8Inputs in = fp8_inputs(s, scale_rows, rng);
  Gemm gemm;
  BATON_CHECK_OK(gemm.init());
  Fp8Gemm fp8;
  BATON_CHECK_OK(fp8.init(s.m, s.k, static_cast<int64_t>(s.n) * s.k, static_cast<int64_t>(s.n) * s.k, &gemm));
  const size_t elems = static_cast<size_t>(s.m) * s.n;
  auto dy = poisoned_bf16(elems);
  fp8.run(in.dx.as<bf16>(), in.w, dy.as<bf16>(), s.m, s.n, s.k, nullptr);
  std::vector<float> x_ref = in.x;
  const Fp8Gemm::Path path = fp8.path_of(in.w, s.m, s.n, s.k);
  const bool w8a8 = path == Fp8Gemm::Path::kW8a8;
  const int quantised_rows = w8a8 ? s.m / 4 * 4 : 0;
  if (quantised_rows > 0) {
    std::vector<uint8_t> bits;
    std::vector<float> scales;
    quantize_groups_reference(in.x, quantised_rows, s.k, &bits, &scales);
    for (int r = 0; r < quantised_rows; ++r)
      for (int c = 0; c < s.k; ++c)
        x_ref[static_cast<size_t>(r) * s.k + c] = fp8_e4m3_to_float(bits[static_cast<size_t>(r) * s.k + c]) *
                                                  scales[static_cast<size_t>(c / kFp8GroupCols) * quantised_rows + r];
  }
  std::vector<float> ref(elems);
  matmul(x_ref.data(), s.m, s.k, in.w_deq.data(), s.n, nullptr, ref.data(), &reference_pool());
  std::vector<Check> checks = {compare(w8a8 ? "w8a8" : (path == Fp8Gemm::Path::kGemv ? "w8a16_gemv" : "dequant_gemm"),
                                       download_bf16(dy, elems), ref, kTolFp8Linear)};
  // On Hopper cuBLASLt must take the block-scaled form (else prefill runs dequantised).
  if (Fp8Gemm::w8a8_supports(in.w, s.n, s.k))
    checks.push_back(compare_exact("w8a8_available", std::vector<int>{fp8.has_w8a8()}, std::vector<int>{1}));
  return checks;
}

// The gated W8A16 GEMV: s.n outputs from a [2 s.n, k] weight, against the
// CPU's matmul over the dequantised weight, rounded to bf16, then silu_mul.
std::vector<Check> run_fp8_gemv_silu_mul(GemmShape s, int scale_rows, std::mt19937& rng) {
  BATON_CHECK(fp8_gemv_supports(s.m, s.k), "fp8 gemv case outside the kernel's shapes");
  const GemmShape rows{s.m, 2 * s.n, s.k};
  Fp8Inputs in = fp8_inputs(rows, scale_rows, rng);
  std::vector<float> gu(static_cast<size_t>(s.m) * rows.n);
  matmul(in.x.data(), s.m, s.k, in.w_deq.data(), rows.n, nullptr, gu.data(), &reference_pool());
  for (float& v : gu) v = testing::round_bf16(v);
  std::vector<float> ref(static_cast<size_t>(s.m) * s.n);
  silu_mul(gu.data(), s.m, s.n, ref.data());
  auto dact = poisoned_bf16(ref.size());
  launch_fp8_gemv_silu_mul(in.dx.as<bf16>(), in.w, dact.as<bf16>(), s.m, s.n, s.k, nullptr);
  return {compare("act", download_bf16(dact, ref.size()), ref, kTolFp8Linear)};
}

std::string mnk(GemmShape s) { return std::to_string(s.m) + "x" + std::to_string(s.n) + "x" + std::to_string(s.k); }

}  // namespace

OpCase fp8_quantize_case(RowsShape s) {
  return make_case("fp8_quantize_groups", std::to_string(s.rows) + "x" + std::to_string(s.cols), s, run_quantize);
}

OpCase fp8_quantizing_norm_case(RowsShape s) {
  return make_case("fp8_add_rmsnorm", std::to_string(s.rows) + "x" + std::to_string(s.cols), s,
                   [](RowsShape sh, std::mt19937& rng) { return run_quantizing_producer(sh, true, rng); });
}

OpCase fp8_quantizing_silu_mul_case(RowsShape s) {
  return make_case("fp8_silu_mul", std::to_string(s.rows) + "x" + std::to_string(s.cols), s,
                   [](RowsShape sh, std::mt19937& rng) { return run_quantizing_producer(sh, false, rng); });
}

OpCase fp8_gemv_silu_mul_case(GemmShape s, int scale_rows) {
  return make_case(
      "fp8_gemv_silu_mul", mnk(s) + "_scale_rows" + std::to_string(scale_rows), s,
      [scale_rows](GemmShape sh, std::mt19937& rng) { return run_fp8_gemv_silu_mul(sh, scale_rows, rng); });
}

OpCase fp8_linear_case(GemmShape s, int scale_rows) {
  return make_case("fp8_linear", mnk(s) + "_scale_rows" + std::to_string(scale_rows), s,
                   [scale_rows](GemmShape sh, std::mt19937& rng) { return run_fp8_linear(sh, scale_rows, rng); });
}

}  // namespace baton::cuda::ops
