// FP8 (e4m3) weight quantisation as Hugging Face checkpoints carry it
// (config.json "quantization_config" with quant_method "fp8"):
//  - block-wise (Qwen3-*-FP8, DeepSeek-V3): weight_block_size [128, 128];
//    each quantised Linear `X.weight` is F8_E4M3 beside a float tensor
//    `X.weight_scale_inv` of ceil(rows/128) x ceil(cols/128), and
//    w[r][c] = fp8[r][c] * weight_scale_inv[r / 128][c / 128];
//  - per-tensor (vLLM's fp8 format, no weight_block_size): a scalar float
//    `X.weight_scale`, w = fp8 * weight_scale (activation_scheme "static"
//    checkpoints also hold `X.input_scale`, which dequantised weights do not use).
// Which Linears are quantised follows the stored dtypes; those named by
// modules_to_not_convert / ignored_layers must not be.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"

namespace baton {

enum class Fp8Scheme { kBlock, kTensor };

struct Fp8Quantization {
  Fp8Scheme scheme = Fp8Scheme::kBlock;
  int block_rows = 128;  // weight_block_size[0] (output features)
  int block_cols = 128;  // weight_block_size[1] (input features)
  std::string activation_scheme = "dynamic";
  std::vector<std::string> modules_not_converted;  // modules_to_not_convert + ignored_layers

  // Parses config.json's quantization_config; anything but quant_method
  // "fp8" with fmt "e4m3" (or no fmt) is refused naming the field.
  static Result<Fp8Quantization> from_json(const Json& j);
  Json to_json() const;

  // The scale tensor's name and shape for the quantised weight `weight_name`
  // ("....weight") of [rows, cols].
  std::string scale_name(const std::string& weight_name) const;
  std::vector<int64_t> scale_shape(int64_t rows, int64_t cols) const;
  // Whether the module of `weight_name` is listed as not converted: an entry
  // equal to the module name ("lm_head", "model.layers.0.mlp.gate"), or a
  // whole dot-separated part of it ("mlp.gate" matches
  // "model.layers.3.mlp.gate", not "mlp.gate_proj").
  bool is_not_converted(const std::string& weight_name) const;
};

// The quantisation section of config.json, if any (nullopt when absent or null).
Result<std::optional<Fp8Quantization>> parse_quantization_config(const Json& config);

// The Linear weights `baton init-model --quantize` quantises: 2-D "....weight"
// tensors of a projection (q/k/v/o, gate/up/down, MLA's q_a/q_b/kv_a/kv_b),
// dense or expert. Embeddings, norms, the LM head and router gates stay.
bool is_fp8_quantizable(const std::string& name, const std::vector<int64_t>& shape);

// e4m3 (OCP "e4m3fn": bias 7, max 448, no infinities) conversions. Encoding
// rounds to nearest even and saturates to +-448; NaN encodes as 0x7f.
float fp8_e4m3_to_float(uint8_t bits);
uint8_t float_to_fp8_e4m3(float v);

// Quantises w ([rows, cols] row-major) into q (same size) and scales (the
// scale tensor's elements): per block or per tensor, scale = amax / 448.
void quantize_fp8(const Fp8Quantization& quant, const float* w, int64_t rows, int64_t cols, uint8_t* q, float* scales);
// The inverse: out[r][c] = fp8(q[r][c]) * scale of its block (or the tensor).
void dequantize_fp8(const Fp8Quantization& quant, const uint8_t* q, const float* scales, int64_t rows, int64_t cols,
                    float* out);

}  // namespace baton
