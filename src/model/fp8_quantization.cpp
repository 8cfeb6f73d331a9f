#include "model/fp8_quantization.h"

#include <algorithm>
#include <array>
#include <cmath>

namespace baton {
namespace {

constexpr float kFp8Max = 448.0f;

Result<std::vector<std::string>> string_list(const Json& j, const char* key) {
  std::vector<std::string> out;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return out;
  if (!it->is_array()) return invalid_argument("quantization_config.{} must be a list of module names", key);
  for (const Json& e : *it) {
    if (!e.is_string()) return invalid_argument("quantization_config.{} must be a list of module names", key);
    out.push_back(e.get<std::string>());
  }
  return out;
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The module of a weight: "model.layers.0.mlp.gate.weight" -> "model.layers.0.mlp.gate".
std::string module_of(const std::string& weight_name) {
  const size_t dot = weight_name.rfind('.');
  return dot == std::string::npos ? weight_name : weight_name.substr(0, dot);
}

}  // namespace

Result<Fp8Quantization> Fp8Quantization::from_json(const Json& j) {
  if (!j.is_object()) return invalid_argument("quantization_config must be a JSON object");
  auto method = j.find("quant_method");
  if (method == j.end() || !method->is_string()) return invalid_argument("quantization_config has no 'quant_method'");
  if (method->get<std::string>() != "fp8") {
    return unimplemented("quantization_config.quant_method '{}' is not supported (supported: fp8)",
                         method->get<std::string>());
  }
  Fp8Quantization q;
  if (auto fmt_it = j.find("fmt"); fmt_it != j.end() && !fmt_it->is_null()) {
    if (!fmt_it->is_string() || fmt_it->get<std::string>() != "e4m3") {
      return unimplemented("quantization_config.fmt {} is not supported (supported: \"e4m3\")", fmt_it->dump());
    }
  }
  if (auto act = j.find("activation_scheme"); act != j.end() && !act->is_null()) {
    if (!act->is_string() || (act->get<std::string>() != "dynamic" && act->get<std::string>() != "static")) {
      return invalid_argument("quantization_config.activation_scheme {} must be \"dynamic\" or \"static\"",
                              act->dump());
    }
    q.activation_scheme = act->get<std::string>();
  }
  auto block = j.find("weight_block_size");
  if (block == j.end() || block->is_null()) {
    q.scheme = Fp8Scheme::kTensor;
  } else {
    auto dim_ok = [](const Json& d) {
      return d.is_number_integer() && d.get<int64_t>() > 0 && d.get<int64_t>() <= 65536;
    };
    if (!block->is_array() || block->size() != 2 || !dim_ok((*block)[0]) || !dim_ok((*block)[1])) {
      return invalid_argument("quantization_config.weight_block_size {} must be two positive integers [rows, cols]",
                              block->dump());
    }
    q.scheme = Fp8Scheme::kBlock;
    q.block_rows = (*block)[0].get<int>();
    q.block_cols = (*block)[1].get<int>();
  }
  BATON_ASSIGN_OR_RETURN(q.modules_not_converted, string_list(j, "modules_to_not_convert"));
  BATON_ASSIGN_OR_RETURN(std::vector<std::string> ignored, string_list(j, "ignored_layers"));
  q.modules_not_converted.insert(q.modules_not_converted.end(), ignored.begin(), ignored.end());
  return q;
}

Json Fp8Quantization::to_json() const {
  Json j = {{"quant_method", "fp8"}, {"fmt", "e4m3"}, {"activation_scheme", activation_scheme}};
  if (scheme == Fp8Scheme::kBlock) j["weight_block_size"] = {block_rows, block_cols};
  if (!modules_not_converted.empty()) j["modules_to_not_convert"] = modules_not_converted;
  return j;
}

std::string Fp8Quantization::scale_name(const std::string& weight_name) const {
  return weight_name + (scheme == Fp8Scheme::kBlock ? "_scale_inv" : "_scale");
}

std::vector<int64_t> Fp8Quantization::scale_shape(int64_t rows, int64_t cols) const {
  if (scheme == Fp8Scheme::kTensor) return {};
  return {ceil_div(rows, block_rows), ceil_div(cols, block_cols)};
}

bool Fp8Quantization::is_not_converted(const std::string& weight_name) const {
  const std::string module = module_of(weight_name);
  const std::string dotted = "." + module + ".";
  return std::any_of(modules_not_converted.begin(), modules_not_converted.end(), [&](const std::string& entry) {
    return !entry.empty() && dotted.find("." + entry + ".") != std::string::npos;
  });
}

Result<std::optional<Fp8Quantization>> parse_quantization_config(const Json& config) {
  auto it = config.find("quantization_config");
  if (it == config.end() || it->is_null()) return std::optional<Fp8Quantization>();
  auto q = Fp8Quantization::from_json(*it);
  if (!q.is_ok()) return q.status();
  return std::optional<Fp8Quantization>(std::move(q).value());
}

bool is_fp8_quantizable(const std::string& name, const std::vector<int64_t>& shape) {
  if (shape.size() != 2 || name.size() < 7 || name.compare(name.size() - 7, 7, ".weight") != 0) return false;
  const std::string module = module_of(name);
  const std::string last = module.substr(module.rfind('.') + 1);
  return last.find("_proj") != std::string::npos;
}

float fp8_e4m3_to_float(uint8_t bits) {
  const float sign = (bits & 0x80) ? -1.0f : 1.0f;
  const int exponent = (bits >> 3) & 0xf;
  const int mantissa = bits & 0x7;
  if (exponent == 0xf && mantissa == 0x7) return std::nanf("");
  if (exponent == 0) return sign * std::ldexp(static_cast<float>(mantissa), -9);  // subnormal: m/8 * 2^-6
  return sign * std::ldexp(1.0f + mantissa / 8.0f, exponent - 7);
}

uint8_t float_to_fp8_e4m3(float v) {
  if (std::isnan(v)) return 0x7f;
  const uint8_t sign = std::signbit(v) ? 0x80 : 0x00;
  const float a = std::min(std::fabs(v), kFp8Max);
  if (a < std::ldexp(1.0f, -6)) {  // subnormal (or the smallest normal, when it rounds up to 8/8)
    return static_cast<uint8_t>(sign | static_cast<uint8_t>(std::nearbyint(std::ldexp(a, 9))));
  }
  int e2 = 0;
  const float frac = std::frexp(a, &e2);  // a = frac * 2^e2, frac in [0.5, 1)
  int exponent = e2 - 1 + 7;
  int mantissa = static_cast<int>(std::nearbyint((frac * 2.0f - 1.0f) * 8.0f));
  if (mantissa == 8) {
    mantissa = 0;
    ++exponent;
  }
  return static_cast<uint8_t>(sign | (exponent << 3) | mantissa);
}

void quantize_fp8(const Fp8Quantization& quant, const float* w, int64_t rows, int64_t cols, uint8_t* q, float* scales) {
  const bool block = quant.scheme == Fp8Scheme::kBlock;
  const int64_t br = block ? quant.block_rows : std::max<int64_t>(rows, 1);
  const int64_t bc = block ? quant.block_cols : std::max<int64_t>(cols, 1);
  const int64_t grid_cols = ceil_div(cols, bc);
  if (!block) scales[0] = 1.0f;  // an empty tensor still has its scalar scale
  for (int64_t r0 = 0; r0 < rows; r0 += br) {
    for (int64_t c0 = 0; c0 < cols; c0 += bc) {
      const int64_t r1 = std::min(rows, r0 + br), c1 = std::min(cols, c0 + bc);
      float amax = 0.0f;
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = c0; c < c1; ++c) amax = std::max(amax, std::fabs(w[r * cols + c]));
      const float scale = std::max(amax, 1e-12f) / kFp8Max;  // as HF's FP8 quantiser clamps
      scales[(r0 / br) * grid_cols + c0 / bc] = scale;
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = c0; c < c1; ++c) q[r * cols + c] = float_to_fp8_e4m3(w[r * cols + c] / scale);
    }
  }
}

void dequantize_fp8(const Fp8Quantization& quant, const uint8_t* q, const float* scales, int64_t rows, int64_t cols,
                    float* out) {
  static const std::array<float, 256> kDecoded = [] {  // every code's value, once
    std::array<float, 256> t{};
    for (int b = 0; b < 256; ++b) t[static_cast<size_t>(b)] = fp8_e4m3_to_float(static_cast<uint8_t>(b));
    return t;
  }();
  if (quant.scheme == Fp8Scheme::kTensor) {
    for (int64_t i = 0; i < rows * cols; ++i) out[i] = kDecoded[q[i]] * scales[0];
    return;
  }
  const int64_t grid_cols = ceil_div(cols, quant.block_cols);
  for (int64_t r = 0; r < rows; ++r) {
    const float* srow = scales + (r / quant.block_rows) * grid_cols;
    for (int64_t c = 0; c < cols; ++c) out[r * cols + c] = kDecoded[q[r * cols + c]] * srow[c / quant.block_cols];
  }
}

}  // namespace baton
