#include "common/dtype.h"

namespace baton {

const char* dtype_name(DType d) {
  switch (d) {
    case DType::kF32: return "F32";
    case DType::kF16: return "F16";
    case DType::kBF16: return "BF16";
    case DType::kF8E4M3: return "F8_E4M3";
  }
  return "?";
}

Result<DType> parse_dtype(const std::string& name) {
  if (name == "F32" || name == "f32" || name == "float32") return DType::kF32;
  if (name == "F16" || name == "f16" || name == "float16") return DType::kF16;
  if (name == "BF16" || name == "bf16" || name == "bfloat16") return DType::kBF16;
  return invalid_argument("unknown dtype '{}' (expected F32, F16 or BF16)", name);
}

}  // namespace baton
