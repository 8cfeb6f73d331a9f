// Comparing a bf16 generation with a reference one on the same inputs
// (teacher-forced): the CUDA tensor-parallel and PD-handoff tests.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <vector>

#include "backend/greedy_batch.h"
#include "cuda_test_util.h"

namespace baton::cuda::testing {

// Top-2 logit gap under which bf16 rounding may flip the greedy pick.
constexpr float kTieMargin = 0.05f;

// g (teacher-forced by `reference`) against reference: logits within
// `tolerance` relative L2, and the same greedy token at every row but where
// the reference's top two are within bf16 rounding of each other (at most one).
inline void expect_same_greedy_picks(const baton::testing::Generation& g, const baton::testing::Generation& reference,
                                     int vocab, double tolerance) {
  ASSERT_EQ(g.logits.size(), reference.logits.size());
  ASSERT_EQ(g.sampled.size(), reference.sampled.size());
  EXPECT_LT(rel_l2(g.logits, reference.logits), tolerance);
  int flips = 0;
  for (size_t r = 0; r < g.sampled.size(); ++r) {
    if (g.sampled[r] == reference.sampled[r]) continue;
    std::vector<float> row(reference.logits.begin() + r * vocab, reference.logits.begin() + (r + 1) * vocab);
    std::partial_sort(row.begin(), row.begin() + 2, row.end(), std::greater<float>());
    EXPECT_LT(row[0] - row[1], kTieMargin)
        << "row " << r << ": " << g.sampled[r] << " against " << reference.sampled[r];
    ++flips;
  }
  EXPECT_LE(flips, 1) << "of " << g.sampled.size() << " rows";
}

}  // namespace baton::cuda::testing
