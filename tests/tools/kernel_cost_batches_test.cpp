// check_kernel_cost_batches (src/tools/gpu_profile/kernel_cost_batches.h):
// `baton profile --kernel-costs` refuses, before measuring anything, a batch
// the run would not time.
#include "tools/gpu_profile/kernel_cost_batches.h"

#include <gtest/gtest.h>

namespace baton::cuda {
namespace {

TEST(KernelCostBatchesTest, BatchesOfTheDecodeRowsOnOneGpu) {
  EXPECT_TRUE(check_kernel_cost_batches({}, {1, 64}, 4).is_ok());  // not asked for: nothing to check
  EXPECT_TRUE(check_kernel_cost_batches({1, 64}, {1, 8, 64}, 1).is_ok());

  const Status missing = check_kernel_cost_batches({1, 32}, {1, 64}, 1);
  EXPECT_EQ(missing.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(missing.message().find("batch 32 is not one of --decode-batches"), std::string::npos) << missing.message();

  const Status ranks = check_kernel_cost_batches({1}, {1}, 2);
  EXPECT_EQ(ranks.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(ranks.message().find("--tensor-parallel-size is 2"), std::string::npos) << ranks.message();
}

}  // namespace
}  // namespace baton::cuda
