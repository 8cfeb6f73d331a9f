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

TEST(StepTimeModelTest, APromptsGemmsHideTheWeightStream) {
  // fixed 4 ms (the weights' stream), 20 us per prompt token: a 100-token
  // chunk costs the floor, a 1,000-token prompt its GEMMs alone, and eight
  // 1,024-token prompts in one step cost eight times one (the stream is not
  // saved by sharing a step: it hides under each prompt's GEMMs already).
  const StepTimeModel m(StepTimeModel::Coefficients{4e-3, 2e-5, 1e-9, 1e-5, 0});
  EXPECT_DOUBLE_EQ(m.step_s({.prefill_tokens = 100}), 4e-3);
  EXPECT_DOUBLE_EQ(m.step_s({.prefill_tokens = 1000}), 2e-2);
  const StepShape one{.prefill_tokens = 1024, .prefill_attention_pairs = causal_pairs(0, 1024)};
  const StepShape eight{.prefill_tokens = 8 * 1024, .prefill_attention_pairs = 8 * causal_pairs(0, 1024)};
  EXPECT_NEAR(m.step_s(eight), 8 * m.step_s(one), 1e-15);
  // A decode step pays the stream and its sequences; a small chunk beside them rides on the stream.
  EXPECT_DOUBLE_EQ(m.step_s({.decode_seqs = 10}), 4e-3 + 10 * 1e-5);
  EXPECT_DOUBLE_EQ(m.step_s({.prefill_tokens = 50, .decode_seqs = 10}), 4e-3 + 10 * 1e-5);
}

TEST(StepTimeModelTest, AttentionTimedAloneSeparatesTheContextFromTheSequenceCount) {
  // Decode measured at one context only: batch and KV tokens rise together,
  // so the whole steps cannot say which term costs. The attention kernel
  // timed alone (the profile's attention_us_per_layer) measures the context
  // term by itself: the fit then predicts decode at another context.
  const StepTimeModel truth(StepTimeModel::Coefficients{4e-3, 2e-5, 3e-10, 1e-5, 4e-8});
  std::vector<StepSample> samples;
  for (int64_t b : {1, 8, 32, 64, 128, 256}) {
    StepSample s = sample(0, b, 1024, truth);
    samples.push_back(s);
    if (b < 32) continue;
    s.part = StepPart::kDecodeAttention;
    s.seconds = truth.part_s(s.shape, StepPart::kDecodeAttention);
    samples.push_back(s);
  }
  for (int64_t t : {512, 2048, 8192}) samples.push_back(sample(t, 0, 0, truth));
  FitReport report;
  auto fitted = StepTimeModel::fit(samples, &report);
  ASSERT_TRUE(fitted.is_ok()) << fitted.status().to_string();
  EXPECT_LT(report.max_rel_error, 1e-3);
  EXPECT_NEAR(fitted->coefficients()[4], 4e-8, 4e-11);
  const StepShape long_context{.decode_seqs = 64, .decode_context_tokens = 64 * 8192};
  EXPECT_NEAR(fitted->step_s(long_context), truth.step_s(long_context), 1e-3 * truth.step_s(long_context));
}

TEST(StepTimeModelTest, AServedInstancesThroughputPinsThePerRequestHostWork) {
  // The kernel profile times one prompt a step: its host work per request is
  // in every prefill sample alike. A served instance at saturation, eight
  // prompts a step, shows it apart (served_prefill: batch / requests_per_s).
  const StepTimeModel truth(StepTimeModel::Coefficients{4e-3, 2e-5, 3e-10, 1e-5, 4e-8, 2e-3});
  std::vector<StepSample> samples;
  for (int64_t b : {1, 8, 64, 256}) {
    for (int64_t ctx : {1024, 8192}) samples.push_back(sample(0, b, ctx, truth));
  }
  for (int64_t t : {512, 2048, 8192}) {
    StepSample s = sample(t, 0, 0, truth);
    s.shape.first_token_seqs = 1;
    s.seconds = truth.step_s(s.shape);
    samples.push_back(s);
  }
  const double rps = 8 / truth.step_s({.prefill_tokens = 8 * 1024,
                                       .prefill_attention_pairs = 8 * causal_pairs(0, 1024),
                                       .first_token_seqs = 8});
  const Json profile{
      {"models",
       {{{"model", "m"}, {"served_prefill", {{{"prompt_tokens", 1024}, {"batch", 8}, {"requests_per_s", rps}}}}}}}};
  auto served = samples_from_profile(profile, "m");
  ASSERT_TRUE(served.is_ok()) << served.status().to_string();
  ASSERT_EQ(served->size(), 1u);
  EXPECT_EQ((*served)[0].shape.first_token_seqs, 8);
  samples.push_back((*served)[0]);
  FitReport report;
  auto fitted = StepTimeModel::fit(samples, &report);
  ASSERT_TRUE(fitted.is_ok()) << fitted.status().to_string();
  EXPECT_LT(report.max_rel_error, 1e-3);
  EXPECT_NEAR(fitted->coefficients()[5], 2e-3, 2e-6);
  const Json bad{{"models", {{{"model", "m"}, {"served_prefill", {{{"prompt_tokens", 1024}, {"batch", 8}}}}}}}};
  auto refused = samples_from_profile(bad, "m");
  ASSERT_FALSE(refused.is_ok());
  EXPECT_NE(refused.status().message().find("requests_per_s"), std::string::npos);
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

TEST(StepTimeModelTest, ReadsTheAttentionTimedAloneMixedStepsAndLeavesSkippedRowsOut) {
  // 2 layers: the per-layer kernel times double. A row the profile skipped
  // has no time; a prefill row with a context is a later chunk.
  const Json profile = Json::parse(R"({"device": "X", "models": [{"model": "a", "num_layers": 2,
    "decode": [{"batch": 32, "context": 1024, "step_ms": 6.6, "attention_us_per_layer": 60.0},
               {"batch": 256, "context": 8192, "skipped": "KV does not fit"}],
    "prefill": [{"tokens": 2048, "time_ms": 50.9, "attention_ms_per_layer": 0.15},
                {"tokens": 1024, "context": 7168, "time_ms": 30.0}],
    "mixed": [{"decode_batch": 32, "decode_context": 8192, "prefill_tokens": 512, "prefill_context": 7680,
               "step_ms": 40.0}]}]})");
  auto s = samples_from_profile(profile, "a");
  ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  ASSERT_EQ(s->size(), 6u);
  const StepShape& mixed = (*s)[5].shape;
  EXPECT_EQ(mixed.decode_seqs, 32);
  EXPECT_EQ(mixed.decode_context_tokens, 32 * 8192);
  EXPECT_EQ(mixed.prefill_tokens, 512);
  EXPECT_DOUBLE_EQ(mixed.prefill_attention_pairs, causal_pairs(7680, 512));
  EXPECT_EQ(mixed.first_token_seqs, 1);
  EXPECT_DOUBLE_EQ((*s)[5].seconds, 0.040);
  auto broken = samples_from_profile(
      Json::parse(R"({"models": [{"mixed": [{"decode_batch": 4, "decode_context": 64, "step_ms": 5}]}]})"), "");
  ASSERT_FALSE(broken.is_ok());
  EXPECT_NE(broken.status().message().find("prefill_tokens"), std::string::npos);
  auto negative = samples_from_profile(Json::parse(R"({"models": [{"mixed": [{"decode_batch": -4,
      "decode_context": 64, "prefill_tokens": 0, "prefill_context": 0, "step_ms": 5}]}]})"),
                                       "");
  ASSERT_FALSE(negative.is_ok());
  EXPECT_NE(negative.status().message().find("'decode_batch' is -4"), std::string::npos);
  // Hostile numbers are refused before any cast: a huge batch, a step that took no time, a context past range.
  for (const char* row :
       {R"({"batch": 1e300, "context": 1024, "step_ms": 5})", R"({"batch": 8, "context": 1024, "step_ms": 0})",
        R"({"batch": 8, "context": -1, "step_ms": 5})"}) {
    auto refused = samples_from_profile(
        Json{{"models", Json::array({Json{{"model", "m"}, {"decode", Json::array({Json::parse(row)})}}})}}, "m");
    ASSERT_FALSE(refused.is_ok()) << row;
    EXPECT_NE(refused.status().message().find("outside"), std::string::npos) << refused.status().message();
  }
  EXPECT_EQ((*s)[0].part, StepPart::kDecodeAttention);
  EXPECT_DOUBLE_EQ((*s)[0].seconds, 120e-6);
  EXPECT_EQ((*s)[0].shape.decode_context_tokens, 32 * 1024);
  EXPECT_EQ((*s)[1].part, StepPart::kWholeStep);
  EXPECT_EQ((*s)[2].part, StepPart::kPrefillAttention);
  EXPECT_DOUBLE_EQ((*s)[2].seconds, 0.3e-3);
  EXPECT_DOUBLE_EQ((*s)[4].shape.prefill_attention_pairs, causal_pairs(7168, 1024));
  EXPECT_EQ((*s)[4].shape.prefill_tokens, 1024);
}

}  // namespace
}  // namespace baton::planner
