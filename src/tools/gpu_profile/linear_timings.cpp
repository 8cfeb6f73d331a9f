#include "tools/gpu_profile/linear_timings.h"

#include <algorithm>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "backend/cuda/fp8_gemm.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/kernels.h"
#include "tools/gpu_profile/profile_ceilings.h"

namespace baton::cuda {
namespace {

struct LinearShape {
  const char* name;
  int n, k;
};

// The dense layer's linears: fused qkv, o, fused gate/up, down.
std::vector<LinearShape> layer_shapes(const ModelConfig& c) {
  const int h = c.hidden_size, q = c.q_size(), kv = c.kv_size(), in = c.intermediate_size;
  return {{"qkv", q + 2 * kv, h}, {"o", h, q}, {"gate_up", 2 * in, h}, {"down", h, in}};
}

// Copies of a weight that together exceed the L2 (50 MB on Hopper) several times.
int copies_past_l2(int64_t weight_bytes) {
  constexpr int64_t kRotateBytes = int64_t{256} << 20;
  return static_cast<int>(std::clamp<int64_t>(kRotateBytes / std::max<int64_t>(weight_bytes, 1) + 1, 1, 64));
}

// One linear's decode time: bf16 through Gemm, or FP8 (random e4m3 weights,
// every scale 1/448 as the profile's random FP8 models) through Fp8Gemm.
Result<double> decode_linear_ms(const LinearShape& sh, int m, bool fp8, const DeviceBuffer& x, DeviceBuffer& y,
                                Gemm& gemm, Fp8Gemm& fp8_gemm, cudaStream_t s) {
  const int64_t elems = int64_t{sh.n} * sh.k;
  const int64_t bytes = fp8 ? elems : 2 * elems;
  const int copies = copies_past_l2(bytes);
  DeviceBuffer w, scales;
  BATON_RETURN_IF_ERROR(w.allocate(static_cast<size_t>(bytes) * copies));
  const int ld = fp8_scale_ld(sh.k), scale_rows = (sh.n + 127) / 128;
  if (fp8) {
    BATON_RETURN_IF_ERROR(scales.allocate(sizeof(float) * scale_rows * ld));
    launch_fp8_fill_random(w.as<uint8_t>(), elems * copies, 11, s);
    launch_fill_const_f32(scales.as<float>(), int64_t{scale_rows} * ld, 1.0f / 448.0f, s);
  } else {
    launch_fill_random(w.as<bf16>(), elems * copies, 0.05f, 11, s);
  }
  return median_call_ms(5, 30, s, [&](int i) {
    const int64_t off = (i % copies) * bytes;
    if (fp8)
      fp8_gemm.run(x.as<bf16>(), Fp8Weight{w.as<uint8_t>() + off, scales.as<float>(), 128, ld}, y.as<bf16>(), m, sh.n,
                   sh.k, s);
    else gemm.run(x.as<bf16>(), w.as<bf16>() + off / 2, y.get(), m, sh.n, sh.k, false, s);
  });
}

}  // namespace

// Each timed on random data as the prefill runs it: where the time outside
// attention goes, against the same run's GEMM ceiling.
Result<Json> time_layer_gemms(const ModelConfig& c, int m, double ceiling_tflops, cudaStream_t s) {
  const std::vector<LinearShape> shapes = layer_shapes(c);
  int64_t max_n = 0, max_k = 0, max_nk = 0;
  for (const LinearShape& sh : shapes) {
    max_n = std::max<int64_t>(max_n, sh.n);
    max_k = std::max<int64_t>(max_k, sh.k);
    max_nk = std::max<int64_t>(max_nk, int64_t{sh.n} * sh.k);
  }
  DeviceBuffer x, w, y;  // what is left beside the KV cache may not hold them: then no breakdown
  BATON_RETURN_IF_ERROR(x.allocate(size_t{2} * m * max_k));
  BATON_RETURN_IF_ERROR(w.allocate(size_t{2} * max_nk));
  BATON_RETURN_IF_ERROR(y.allocate(size_t{2} * m * max_n));
  launch_fill_random(x.as<bf16>(), int64_t{m} * max_k, 1.0f, 7, s);
  launch_fill_random(w.as<bf16>(), max_nk, 0.05f, 8, s);
  Gemm g;
  BATON_RETURN_IF_ERROR(g.init());
  Json rows = Json::array();
  double layer_ms = 0;
  for (const LinearShape& sh : shapes) {
    // The first call plans the algorithm; 3 warm-ups in all.
    const double ms = median_call_ms(3, 5, s,
                                     [&](int) { g.run(x.as<bf16>(), w.as<bf16>(), y.get(), m, sh.n, sh.k, false, s); });
    const double tflops = 2.0 * m * double(sh.n) * sh.k / (ms * 1e-3) / 1e12;
    layer_ms += ms;
    rows.push_back({{"gemm", sh.name},
                    {"m", m},
                    {"n", sh.n},
                    {"k", sh.k},
                    {"ms", ms},
                    {"tflops", tflops},
                    {"of_ceiling", tflops / ceiling_tflops}});
    fmt::print("        GEMM {:<8} {:>5} x {:>5} x {:>5}: {:.3f} ms ({:.0f} TFLOP/s, {:.1f}% of the ceiling)\n",
               sh.name, m, sh.n, sh.k, ms, tflops, 100 * tflops / ceiling_tflops);
  }
  fmt::print("        the four GEMMs: {:.3f} ms/layer, {:.1f} ms in all layers\n", layer_ms, layer_ms * c.num_layers);
  return Json{{"per_gemm", rows}, {"ms_per_layer", layer_ms}};
}

Result<Json> time_decode_linears(const ModelConfig& c, int m, double copy_gbps, cudaStream_t s) {
  const bool fp8 = c.quantization.has_value();
  std::vector<LinearShape> shapes = layer_shapes(c);
  shapes.push_back({"lm_head", c.vocab_size, c.hidden_size});
  int max_n = 0, max_k = 0;
  int64_t max_layer_nk = 0;  // the largest FP8 weight
  for (const LinearShape& sh : shapes) {
    max_n = std::max(max_n, sh.n);
    max_k = std::max(max_k, sh.k);
    if (std::string_view(sh.name) != "lm_head") max_layer_nk = std::max<int64_t>(max_layer_nk, int64_t{sh.n} * sh.k);
  }
  DeviceBuffer x, y;
  BATON_RETURN_IF_ERROR(x.allocate(size_t{2} * m * max_k));
  BATON_RETURN_IF_ERROR(y.allocate(size_t{2} * m * max_n));
  launch_fill_random(x.as<bf16>(), int64_t{m} * max_k, 1.0f, 7, s);
  Gemm gemm;
  BATON_RETURN_IF_ERROR(gemm.init());
  Fp8Gemm fp8_gemm;
  BATON_RETURN_IF_ERROR(fp8_gemm.init(m, max_k, 0, max_layer_nk, &gemm));
  Json rows = Json::array();
  double layer_ms = 0, head_ms = 0, layer_bytes = 0, head_bytes = 0;
  for (const LinearShape& sh : shapes) {
    const bool head = std::string_view(sh.name) == "lm_head";
    const bool in_fp8 = fp8 && !head;  // the LM head stays bf16 in FP8 checkpoints
    BATON_ASSIGN_OR_RETURN(double ms, decode_linear_ms(sh, m, in_fp8, x, y, gemm, fp8_gemm, s));
    const double bytes = double(sh.n) * sh.k * (in_fp8 ? 1 : 2);
    const double gbps = bytes / (ms * 1e-3) / 1e9;
    (head ? head_ms : layer_ms) += ms;
    (head ? head_bytes : layer_bytes) += bytes;
    rows.push_back({{"linear", sh.name},
                    {"dtype", in_fp8 ? "fp8" : "bf16"},
                    {"m", m},
                    {"n", sh.n},
                    {"k", sh.k},
                    {"us", ms * 1e3},
                    {"gbps", gbps},
                    {"of_copy_bandwidth", gbps / copy_gbps}});
    fmt::print("        {} {:<8} {} x {:>6} x {:>5}: {:7.1f} us, {:5.0f} GB/s ({:.1f}% of copy bandwidth)\n",
               in_fp8 ? "fp8 " : "bf16", sh.name, m, sh.n, sh.k, ms * 1e3, gbps, 100 * gbps / copy_gbps);
  }
  const double all_ms = layer_ms * c.num_layers + head_ms;
  const double all_bytes = layer_bytes * c.num_layers + head_bytes;
  fmt::print("        the linears alone: {:.3f} ms a step ({:.0f} GB/s, {:.1f}% of copy bandwidth)\n", all_ms,
             all_bytes / (all_ms * 1e-3) / 1e9, 100 * all_bytes / (all_ms * 1e-3) / 1e9 / copy_gbps);
  return Json{{"per_linear", rows}, {"ms_per_step", all_ms}, {"bytes_per_step", all_bytes}};
}

}  // namespace baton::cuda
