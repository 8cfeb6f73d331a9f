// A read-only view of one tensor stored in a checkpoint (usually mmapped).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/dtype.h"

namespace baton {

struct TensorView {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const void* data = nullptr;  // points into the mapped file

  int64_t num_elements() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
  size_t num_bytes() const { return static_cast<size_t>(num_elements()) * dtype_size(dtype); }
  // Copies the elements into fp32 (converting bf16/fp16; F8_E4M3 elements
  // are decoded as they are, without their scale).
  void to_float(float* out) const;
  std::vector<float> to_float() const {
    std::vector<float> v(static_cast<size_t>(num_elements()));
    to_float(v.data());
    return v;
  }
};

// Stores v as element i of `out`, an array of `dtype` (rounding to nearest
// even; F8_E4M3 saturates to +-448).
void store_float(DType dtype, std::byte* out, int64_t i, float v);

}  // namespace baton
