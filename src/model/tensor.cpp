#include "model/tensor.h"

#include <cstring>

#include "common/float16.h"

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
  }
}

}  // namespace baton
