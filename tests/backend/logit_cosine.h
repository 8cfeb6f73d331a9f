// Test helper: the cosine of two logit vectors, what the FP8 tests hold
// quantised models' logits to (issue 18: >= 0.99 against the bf16 model's).
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <span>

namespace baton::testing {

// a . b / (|a| |b|) over the shorter of the two, summed in double; NaN when
// either is all zeros, so that no comparison with it passes.
inline double cosine(std::span<const float> a, std::span<const float> b) {
  double ab = 0.0, aa = 0.0, bb = 0.0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    ab += static_cast<double>(a[i]) * b[i];
    aa += static_cast<double>(a[i]) * a[i];
    bb += static_cast<double>(b[i]) * b[i];
  }
  return aa > 0.0 && bb > 0.0 ? ab / std::sqrt(aa * bb) : std::numeric_limits<double>::quiet_NaN();
}

}  // namespace baton::testing
