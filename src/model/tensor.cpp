#include "model/tensor.h"

#include <cstring>

#include "common/float16.h"
#include "model/fp8_quantization.h"

namespace baton {

void TensorView::to_float(float* out) const {
  const int64_t n = num_elements();
  switch (dtype) {
    case DType::kF32: std::memcpy(out, data, static_cast<size_t>(n) * 4); break;
    case DType::kBF16: {
      auto* p = static_cast<const uint16_t*>(data);
      for (int64_t i = 0; i < n; ++i) out[i] = bf16_to_float(p[i]);
      break;
    }
    case DType::kF16: {
      auto* p = static_cast<const uint16_t*>(data);
      for (int64_t i = 0; i < n; ++i) out[i] = fp16_to_float(p[i]);
      break;
    }
    case DType::kF8E4M3: {
      auto* p = static_cast<const uint8_t*>(data);
      for (int64_t i = 0; i < n; ++i) out[i] = fp8_e4m3_to_float(p[i]);
      break;
    }
  }
}

void store_float(DType dtype, std::byte* out, int64_t i, float v) {
  switch (dtype) {
    case DType::kF32: std::memcpy(out + i * 4, &v, 4); break;
    case DType::kBF16: {
      uint16_t h = float_to_bf16(v);
      std::memcpy(out + i * 2, &h, 2);
      break;
    }
    case DType::kF16: {
      uint16_t h = float_to_fp16(v);
      std::memcpy(out + i * 2, &h, 2);
      break;
    }
    case DType::kF8E4M3: out[i] = static_cast<std::byte>(float_to_fp8_e4m3(v)); break;
  }
}

}  // namespace baton
