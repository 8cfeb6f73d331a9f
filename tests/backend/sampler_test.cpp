// Sampler and Philox on hand-worked rows.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>

#include "backend/philox.h"
#include "backend/sampler.h"

namespace baton {
namespace {

// Random123's known-answer vectors for philox4x32-10.
TEST(Philox, KnownAnswers) {
  EXPECT_EQ(philox4x32_10({0, 0, 0, 0}, {0, 0}), (PhiloxCounter{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}));
  EXPECT_EQ(philox4x32_10({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, {0xffffffffu, 0xffffffffu}),
            (PhiloxCounter{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}));
  EXPECT_EQ(philox4x32_10({0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}, {0xa4093822u, 0x299f31d0u}),
            (PhiloxCounter{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}));
}

TEST(Philox, ConstexprAndUniformInOpenInterval) {
  static_assert(philox_bits(1, 2, 3) == philox_bits(1, 2, 3));
  // The extremes stay strictly inside (0, 1): a draw of exactly 1 would give
  // a token an infinite Gumbel score.
  static_assert(uniform_from_bits(0xffffffffu) < 1.0f);
  static_assert(uniform_from_bits(0u) > 0.0f);
  double sum = 0.0;
  constexpr int kN = 100000;
  for (int i = 0; i < kN; ++i) {
    const float u = philox_uniform(42, 7, static_cast<uint64_t>(i));
    ASSERT_GT(u, 0.0f);
    ASSERT_LT(u, 1.0f);
    sum += u;
  }
  EXPECT_NEAR(sum / kN, 0.5, 0.005);
  EXPECT_NE(philox_bits(42, 7, 0), philox_bits(42, 8, 0));  // the step matters
  EXPECT_NE(philox_bits(42, 7, 0), philox_bits(43, 7, 0));  // the seed matters
}

struct Row {
  std::vector<float> logits;
  SamplingParams params;
  std::vector<int32_t> prompt, output, banned;
};

Result<SampleResult> draw(Sampler& s, const Row& r, uint64_t seed = 0, int64_t step = 0) {
  SampleRequest req;
  req.params = &r.params;
  req.seed = seed;
  req.num_output_tokens = step;
  req.prompt_ids = &r.prompt;
  req.output_ids = &r.output;
  req.banned_token_ids = r.banned;
  return s.sample(r.logits.data(), static_cast<int>(r.logits.size()), req);
}

int32_t token(Sampler& s, const Row& r, uint64_t seed = 0, int64_t step = 0) {
  Result<SampleResult> res = draw(s, r, seed, step);
  EXPECT_TRUE(res.is_ok()) << res.status().to_string();
  return res.is_ok() ? res->token_id : -1;
}

Row greedy(std::vector<float> logits) {
  Row r;
  r.logits = std::move(logits);
  r.params.temperature = 0.0f;
  return r;
}

TEST(Sampler, GreedyTakesLowestIndexOnTies) {
  Sampler s;
  EXPECT_EQ(token(s, greedy({1.0f, 3.0f, 3.0f, 2.0f})), 1);
  EXPECT_EQ(argmax_lowest(std::vector<float>{5, 5, 5}.data(), 3), 0);
}

TEST(Sampler, BannedTokensAreNeverChosen) {
  Sampler s;
  Row r = greedy({1.0f, 3.0f, 3.0f, 2.0f});
  r.banned = {1, 2};
  EXPECT_EQ(token(s, r), 3);
  r.params.temperature = 1.0f;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    const int32_t t = token(s, r, seed);
    EXPECT_TRUE(t == 0 || t == 3) << t;
  }
}

TEST(Sampler, RepetitionPenaltyDividesPositiveMultipliesNegative) {
  Sampler s;
  // Penalty 2 over prompt {0} and output {1}: {2, -1, 1.5, 0.5} -> {1, -2, 1.5, 0.5}.
  Row r = greedy({2.0f, -1.0f, 1.5f, 0.5f});
  EXPECT_EQ(token(s, r), 0);
  r.params.repetition_penalty = 2.0f;
  r.prompt = {0};
  r.output = {1};
  EXPECT_EQ(token(s, r), 2);
  // A negative logit moves further down: token 1 at -1 -> -2 loses to token 3 at -1.5.
  Row n = greedy({-3.0f, -1.0f, -3.0f, -1.5f});
  n.params.repetition_penalty = 2.0f;
  n.output = {1};
  EXPECT_EQ(token(s, n), 3);
}

TEST(Sampler, PresenceAndFrequencyPenaltiesOverOutputTokens) {
  Sampler s;
  // Token 0 was generated twice: 1.0 - 2 * 0.04 = 0.92 still beats 0.9;
  // adding presence 0.5 gives 0.42, which does not.
  Row r = greedy({1.0f, 0.9f, 0.0f});
  r.output = {0, 0};
  r.params.frequency_penalty = 0.04f;
  EXPECT_EQ(token(s, r), 0);
  r.params.presence_penalty = 0.5f;
  EXPECT_EQ(token(s, r), 1);
  r.params.presence_penalty = 0.0f;
  r.params.frequency_penalty = 0.1f;  // 1.0 - 0.2 = 0.8
  EXPECT_EQ(token(s, r), 1);
  // The prompt does not count for these penalties.
  Row p = greedy({1.0f, 0.9f, 0.0f});
  p.prompt = {0, 0, 0};
  p.params.presence_penalty = 0.5f;
  EXPECT_EQ(token(s, p), 0);
}

TEST(Sampler, LogprobsComeFromTheRawLogits) {
  Sampler s;
  // probs 1/8, 2/8, 5/8.
  Row r = greedy({std::log(1.0f), std::log(2.0f), std::log(5.0f)});
  r.params.num_logprobs = 2;
  Result<SampleResult> res = draw(s, r);
  ASSERT_TRUE(res.is_ok());
  EXPECT_EQ(res->token_id, 2);
  EXPECT_NEAR(res->logprob, std::log(5.0 / 8), 1e-6);
  ASSERT_EQ(res->top_logprobs.size(), 2u);
  EXPECT_EQ(res->top_logprobs[0].first, 2);
  EXPECT_NEAR(res->top_logprobs[0].second, std::log(5.0 / 8), 1e-6);
  EXPECT_EQ(res->top_logprobs[1].first, 1);
  EXPECT_NEAR(res->top_logprobs[1].second, std::log(2.0 / 8), 1e-6);
  // Banning token 2 changes the choice, not the distribution logprobs report.
  r.banned = {2};
  r.params.num_logprobs = 0;
  res = draw(s, r);
  ASSERT_TRUE(res.is_ok());
  EXPECT_EQ(res->token_id, 1);
  EXPECT_NEAR(res->logprob, std::log(2.0 / 8), 1e-6);
  EXPECT_TRUE(res->top_logprobs.empty());
}

// Frequencies of `n` seeded draws.
std::map<int32_t, double> frequencies(Sampler& s, const Row& r, int n) {
  std::map<int32_t, double> f;
  for (int i = 0; i < n; ++i) f[token(s, r, static_cast<uint64_t>(i) * 7919 + 1, 3)] += 1.0 / n;
  return f;
}

Row probs_row(std::vector<double> probs) {
  Row r;
  for (double p : probs) r.logits.push_back(static_cast<float>(std::log(p)));
  r.params.temperature = 1.0f;
  return r;
}

TEST(Sampler, DrawsFollowTheDistribution) {
  Sampler s;
  auto f = frequencies(s, probs_row({0.5, 0.3, 0.15, 0.05}), 8000);
  EXPECT_NEAR(f[0], 0.5, 0.025);
  EXPECT_NEAR(f[1], 0.3, 0.025);
  EXPECT_NEAR(f[2], 0.15, 0.02);
  EXPECT_NEAR(f[3], 0.05, 0.012);
}

TEST(Sampler, TemperatureSharpens) {
  Sampler s;
  Row r = probs_row({0.5, 0.3, 0.15, 0.05});
  r.params.temperature = 0.5f;  // probs proportional to p^2: 0.25, 0.09, 0.0225, 0.0025
  auto f = frequencies(s, r, 8000);
  EXPECT_NEAR(f[0], 0.25 / 0.365, 0.025);
  EXPECT_NEAR(f[1], 0.09 / 0.365, 0.025);
}

TEST(Sampler, TopKKeepsTheKLargest) {
  Sampler s;
  Row r = probs_row({0.3, 0.1, 0.4, 0.2});
  r.params.top_k = 1;
  for (uint64_t seed = 0; seed < 100; ++seed) EXPECT_EQ(token(s, r, seed), 2);
  r.params.top_k = 2;  // {0, 2} renormalised: 3/7, 4/7
  auto f = frequencies(s, r, 6000);
  EXPECT_EQ(f.count(1) + f.count(3), 0u);
  EXPECT_NEAR(f[2], 4.0 / 7, 0.025);
}

TEST(Sampler, TopPDropsTheSmallestTail) {
  Sampler s;
  // Ascending cumulative: 0.05, 0.20, 0.50, 1.0; cut = 1 - 0.75 = 0.25 drops
  // tokens 3 and 2, keeps 0 and 1 (renormalised 0.625, 0.375).
  Row r = probs_row({0.5, 0.3, 0.15, 0.05});
  r.params.top_p = 0.75f;
  auto f = frequencies(s, r, 6000);
  EXPECT_EQ(f.count(2) + f.count(3), 0u);
  EXPECT_NEAR(f[0], 0.625, 0.025);
  // A tiny top_p still keeps the most likely token.
  r.params.top_p = 0.01f;
  for (uint64_t seed = 0; seed < 50; ++seed) EXPECT_EQ(token(s, r, seed), 0);
}

TEST(Sampler, MinPDropsTokensBelowAShareOfTheMax) {
  Sampler s;
  // min_p 0.2 of max prob 0.5 = 0.1: token 3 (0.05) goes, token 2 (0.15) stays.
  Row r = probs_row({0.5, 0.3, 0.15, 0.05});
  r.params.min_p = 0.2f;
  auto f = frequencies(s, r, 6000);
  EXPECT_EQ(f.count(3), 0u);
  EXPECT_NEAR(f[2], 0.15 / 0.95, 0.02);
}

TEST(Sampler, LogitBiasIsAddedBeforeThePenalties) {
  Sampler s;
  // +5 lifts token 2 from last to first; -100 takes token 1 out of greedy reach.
  Row r = greedy({1.0f, 3.0f, -1.0f});
  r.params.logit_bias = {{1, -100.0f}, {2, 5.0f}};
  EXPECT_EQ(token(s, r), 2);
  // vLLM's order: bias, then the repetition penalty. Token 0 (2.0, seen)
  // with bias +1 is (2 + 1) / 1.5 = 2.0 < 2.1, so token 1 wins; penalised
  // first it would be 2 / 1.5 + 1 = 2.33 and win.
  Row o = greedy({2.0f, 2.1f, 0.0f});
  o.params.repetition_penalty = 1.5f;
  o.prompt = {0};
  o.params.logit_bias = {{0, 1.0f}};
  EXPECT_EQ(token(s, o), 1);
  // A banned token stays banned whatever its bias.
  Row b = greedy({1.0f, 0.0f});
  b.banned = {0};
  b.params.logit_bias = {{0, 100.0f}};
  EXPECT_EQ(token(s, b), 1);
  // Logprobs stay those of the raw row (vLLM's default).
  Row l = greedy({0.0f, 0.0f});
  l.params.num_logprobs = 0;
  l.params.logit_bias = {{1, 10.0f}};
  Result<SampleResult> res = draw(s, l);
  ASSERT_TRUE(res.is_ok()) << res.status().to_string();
  EXPECT_EQ(res->token_id, 1);
  EXPECT_NEAR(res->logprob, std::log(0.5), 1e-6);
  // Sampled: a bias of -100 leaves the token out of 200 draws.
  Row t = probs_row({0.5, 0.5});
  t.params.logit_bias = {{0, -100.0f}};
  for (uint64_t seed = 0; seed < 200; ++seed) EXPECT_EQ(token(s, t, seed), 1);
}

TEST(Sampler, SameSeedAndStepGiveTheSameToken) {
  Sampler a, b;
  Row r = probs_row(std::vector<double>(64, 1.0 / 64));
  int changes = 0;
  for (int64_t step = 0; step < 50; ++step) {
    const int32_t t = token(a, r, 1234, step);
    EXPECT_EQ(t, token(b, r, 1234, step));
    if (t != token(a, r, 1234, step + 1)) ++changes;
  }
  EXPECT_GT(changes, 40);  // the step counter moves the draw
}

TEST(Sampler, BadParametersAndRowsAreClearErrors) {
  Sampler s;
  Row r = probs_row({0.5, 0.5});
  r.params.top_p = 0.0f;
  Result<SampleResult> res = draw(s, r);
  ASSERT_FALSE(res.is_ok());
  EXPECT_NE(res.status().message().find("top_p"), std::string::npos);
  r.params.top_p = 1.0f;
  r.params.temperature = -1.0f;
  EXPECT_NE(draw(s, r).status().message().find("temperature"), std::string::npos);
  r.params.temperature = 1.0f;
  r.banned = {7};
  EXPECT_NE(draw(s, r).status().message().find("outside the vocabulary"), std::string::npos);
  r.banned = {0, 1};
  EXPECT_NE(draw(s, r).status().message().find("banned"), std::string::npos);
  r.params.temperature = 0.0f;
  EXPECT_NE(draw(s, r).status().message().find("banned"), std::string::npos);
  r.banned.clear();
  r.params.logit_bias = {{5, 1.0f}};
  EXPECT_NE(draw(s, r).status().message().find("logit_bias token id 5 outside the vocabulary"), std::string::npos);
  r.params.logit_bias = {{1, 1.0f}, {0, 1.0f}};
  EXPECT_NE(draw(s, r).status().message().find("ascending"), std::string::npos);
  r.params.logit_bias = {{0, std::numeric_limits<float>::infinity()}};
  EXPECT_NE(draw(s, r).status().message().find("finite"), std::string::npos);
  r.params.logit_bias = {{-1, 1.0f}};
  EXPECT_NE(draw(s, r).status().message().find(">= 0"), std::string::npos);
  Row nan = greedy({0.0f, std::numeric_limits<float>::quiet_NaN()});
  EXPECT_FALSE(draw(s, nan).is_ok());
  SampleRequest no_params;
  EXPECT_FALSE(s.sample(r.logits.data(), 2, no_params).is_ok());
}

}  // namespace
}  // namespace baton
