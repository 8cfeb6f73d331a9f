#include "planner/step_time_model.h"

#include <gtest/gtest.h>

namespace baton::planner {
namespace {

StepSample sample(int64_t prefill, int64_t seqs, int64_t context, const StepTimeModel& truth) {
  StepSample s;
  s.shape.prefill_tokens = prefill;
  s.shape.prefill_attention_pairs = causal_pairs(0, prefill);
  s.shape.decode_seqs = seqs;
  s.shape.decode_context_tokens = seqs * context;
  s.seconds = truth.step_s(s.shape);
  return s;
}

TEST(StepTimeModelTest, CausalPairsCountQueriesTimesKeys) {
  EXPECT_DOUBLE_EQ(causal_pairs(0, 1), 1);
  EXPECT_DOUBLE_EQ(causal_pairs(0, 4), 10);     // 1 + 2 + 3 + 4
  EXPECT_DOUBLE_EQ(causal_pairs(100, 2), 203);  // 101 + 102
}

TEST(StepTimeModelTest, FitRecoversTheCoefficientsOfExactMeasurements) {
  const StepTimeModel truth(StepTimeModel::Coefficients{4e-3, 2e-5, 3e-10, 1e-5, 2e-8});
  std::vector<StepSample> samples;
  for (int64_t b : {1, 8, 32, 64, 128, 256}) {
    for (int64_t ctx : {512, 1024, 4096}) samples.push_back(sample(0, b, ctx, truth));
  }
  for (int64_t t : {512, 2048, 8192, 16384}) samples.push_back(sample(t, 0, 0, truth));
  FitReport report;
  auto fitted = StepTimeModel::fit(samples, &report);
  ASSERT_TRUE(fitted.is_ok()) << fitted.status().to_string();
  EXPECT_LT(report.max_rel_error, 1e-4);
  EXPECT_EQ(report.num_samples, static_cast<int>(samples.size()));
  StepShape mixed{.prefill_tokens = 1000,
                  .prefill_attention_pairs = causal_pairs(3000, 1000),
                  .decode_seqs = 40,
                  .decode_context_tokens = 40 * 2000};
  EXPECT_NEAR(fitted->step_s(mixed), truth.step_s(mixed), 1e-4 * truth.step_s(mixed));
}

TEST(StepTimeModelTest, FitKeepsCoefficientsNonNegativeAndReportsItsResiduals) {
  // Decode steps that get cheaper with batch cannot be fitted by a
  // non-negative model: the fit says how far off it is.
  std::vector<StepSample> samples;
  for (int b : {1, 2, 4, 8}) {
    StepSample s;
    s.shape.decode_seqs = b;
    s.shape.decode_context_tokens = b * 100;
    s.seconds = 0.010 / b;
    samples.push_back(s);
  }
  FitReport report;
  auto fitted = StepTimeModel::fit(samples, &report);
  ASSERT_TRUE(fitted.is_ok());
  for (double c : fitted->coefficients()) EXPECT_GE(c, 0.0);
  EXPECT_GT(report.max_rel_error, 0.3);
  EXPECT_EQ(report.rel_errors.size(), 4u);
}

TEST(StepTimeModelTest, FitRefusesTooFewOrImpossibleMeasurements) {
  EXPECT_FALSE(StepTimeModel::fit(std::vector<StepSample>{}).is_ok());
  std::vector<StepSample> bad(2);
  bad[0].seconds = 0.01;
  bad[1].seconds = -1;
  bad[1].label = "decode batch 8";
  auto r = StepTimeModel::fit(bad);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("decode batch 8"), std::string::npos);
}

TEST(StepTimeModelTest, ReadsTheMeasuredStepsOfABatonProfile) {
  const Json profile = Json::parse(R"({"device": "X", "models": [
    {"model": "a", "decode": [{"batch": 1, "context": 1024, "step_ms": 5.0}],
     "prefill": [{"tokens": 512, "time_ms": 13.0}]},
    {"model": "b", "decode": [{"batch": 8, "context": 2048, "step_ms": 6.0}]}]})");
  auto a = samples_from_profile(profile, "a");
  ASSERT_TRUE(a.is_ok());
  ASSERT_EQ(a->size(), 2u);
  EXPECT_EQ((*a)[0].shape.decode_seqs, 1);
  EXPECT_EQ((*a)[0].shape.decode_context_tokens, 1024);
  EXPECT_DOUBLE_EQ((*a)[0].seconds, 0.005);
  EXPECT_EQ((*a)[1].shape.prefill_tokens, 512);
  auto b = samples_from_profile(profile, "b");
  ASSERT_TRUE(b.is_ok());
  EXPECT_EQ((*b)[0].shape.decode_context_tokens, 8 * 2048);
  EXPECT_FALSE(samples_from_profile(profile, "c").is_ok());
  auto broken = samples_from_profile(Json::parse(R"({"models": [{"decode": [{"batch": 1}]}]})"), "");
  ASSERT_FALSE(broken.is_ok());
  EXPECT_NE(broken.status().message().find("context"), std::string::npos);
}

}  // namespace
}  // namespace baton::planner
