// Element types of stored tensors and of the KV cache (the safetensors names).
#pragma once

#include <cstddef>
#include <string>

#include "common/status.h"

namespace baton {

// kF8E4M3: FP8 checkpoint weights only (model/fp8_quantization.h); not a
// --dtype a user picks, so parse_dtype does not take it.
enum class DType { kF32, kF16, kBF16, kF8E4M3 };

inline size_t dtype_size(DType d) { return d == DType::kF32 ? 4 : (d == DType::kF8E4M3 ? 1 : 2); }
const char* dtype_name(DType d);  // "F32", "F16", "BF16", "F8_E4M3" (safetensors names)
// F32|F16|BF16, also lower case and float32|float16|bfloat16.
Result<DType> parse_dtype(const std::string& name);

}  // namespace baton
