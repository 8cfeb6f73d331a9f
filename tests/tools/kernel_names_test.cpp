// kernel_display_name (src/tools/gpu_profile/kernel_names.h): the names the
// GPU profile's per-kernel costs carry, from the symbols the CUDA driver
// gives. The symbols here are the mangled names of this project's kernels as
// nvcc emits them, and of a library's kernel.
#include "tools/gpu_profile/kernel_names.h"

#include <gtest/gtest.h>

namespace baton::cuda {
namespace {

TEST(KernelNamesTest, DropsNamespacesReturnTypeAndParameters) {
  // baton::cuda::(anonymous namespace)::moe_skinny_kernel<true>(...)
  EXPECT_EQ(
      kernel_display_name("_ZN5baton4cuda39_GLOBAL__N__0ba57074_7_gemv_cu_63c0f73d17moe_skinny_kernelILb1EEEvPK13_"
                          "_nv_bfloat16PKiiS5_S7_S7_S7_iiiiPS3_"),
      "moe_skinny_kernel<true>");
  // baton::cuda::skinny::kernel<true, 5, __nv_bfloat16, false>(...): namespaces below baton::cuda stay.
  EXPECT_EQ(kernel_display_name("_ZN5baton4cuda6skinny6kernelILb1ELi5E13__nv_bfloat16Lb0EEEvPKS3_NS1_6WeightEPT1_ii"),
            "skinny::kernel<true, 5, __nv_bfloat16, false>");
}

TEST(KernelNamesTest, KeepsANameThatDoesNotDemangleAndCutsLongOnes) {
  EXPECT_EQ(kernel_display_name("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n"),
            "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n");
  EXPECT_EQ(kernel_display_name(std::string(150, 'k')).size(), 100u);
  EXPECT_EQ(kernel_display_name(""), "");
}

}  // namespace
}  // namespace baton::cuda
