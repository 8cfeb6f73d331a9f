// YaRN rope scaling against values computed independently (Python, from
// HF's _compute_yarn_parameters formulas) for DeepSeek-V3's real config:
// rotary dim 64, theta 1e4, factor 40, original context 4096, beta 32 / 1,
// mscale = mscale_all_dim = 1.
#include <gtest/gtest.h>

#include <cmath>

#include "model/presets.h"
#include "model/yarn.h"

namespace baton {
namespace {

RopeScaling deepseek_yarn() {
  Result<ModelPreset> p = find_model_preset("deepseek-v3");
  EXPECT_TRUE(p.is_ok());
  return *p->config.rope_scaling;
}

TEST(Yarn, InverseFrequenciesBlendInterpolationAndExtrapolation) {
  const std::vector<float> inv = yarn_inv_freq(64, 10000.0, deepseek_yarn());
  ASSERT_EQ(inv.size(), 32u);
  // Correction range [10, 23]: below it pure extrapolation (theta^-2i/d),
  // above it pure interpolation (divided by the factor), a ramp between.
  const std::pair<int, double> expected[] = {{0, 1.0},
                                             {5, 0.23713736133077676},
                                             {10, 0.056234129824763876},
                                             {11, 0.039006925857898146},
                                             {12, 0.02687936059609244},
                                             {20, 0.0007905694483703238},
                                             {25, 1.8747354499291848e-05},
                                             {31, 3.333803668785824e-06}};
  for (const auto& [i, want] : expected) EXPECT_NEAR(inv[i], want, want * 2e-6) << "dim pair " << i;
  EXPECT_NEAR(inv[25] * 40.0, std::pow(10000.0, -50.0 / 64.0), 1e-9);  // interpolated: / factor
}

TEST(Yarn, TinyRangeCoversEveryPair) {
  RopeScaling y;
  y.rope_type = "yarn";
  y.factor = 4.0;
  y.original_max_position_embeddings = 1024;
  const std::vector<float> inv = yarn_inv_freq(8, 10000.0, y);
  const double expected[] = {1.0, 0.075, 0.005, 0.00025};
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(inv[i], expected[i], expected[i] * 2e-6) << i;
}

TEST(Yarn, MscaleTermsScaleSoftmaxNotRope) {
  Result<ModelPreset> p = find_model_preset("deepseek-v3");
  ASSERT_TRUE(p.is_ok());
  const ModelConfig& c = p->config;
  EXPECT_NEAR(yarn_mscale(40.0, 1.0), 1.3688879454113936, 1e-12);
  EXPECT_DOUBLE_EQ(yarn_mscale(1.0, 1.0), 1.0);
  // mscale == mscale_all_dim: cos/sin are unscaled, the softmax gets mscale^2.
  EXPECT_DOUBLE_EQ(rope_attention_factor(c), 1.0);
  EXPECT_NEAR(attention_softmax_scale(c), 0.1352337788608801, 1e-12);  // 192^-0.5 * 1.3689^2

  ModelConfig only_mscale = c;
  only_mscale.rope_scaling->mscale_all_dim = 0.0;  // vLLM/HF: attention factor mscale(factor), softmax unscaled
  EXPECT_NEAR(rope_attention_factor(only_mscale), 1.3688879454113936, 1e-12);
  EXPECT_NEAR(attention_softmax_scale(only_mscale), 1.0 / std::sqrt(192.0), 1e-12);

  ModelConfig explicit_factor = c;
  explicit_factor.rope_scaling->attention_factor = 0.5;
  EXPECT_DOUBLE_EQ(rope_attention_factor(explicit_factor), 0.5);

  ModelConfig plain = c;
  plain.rope_scaling.reset();
  EXPECT_DOUBLE_EQ(rope_attention_factor(plain), 1.0);
  EXPECT_NEAR(attention_softmax_scale(plain), 1.0 / std::sqrt(192.0), 1e-12);
}

}  // namespace
}  // namespace baton
