// moe_exchange_bytes: what each expert-parallel combine scheme moves per
// step, checked against the ring formulas and the routing probabilities.
#include "model/moe_exchange.h"

#include <gtest/gtest.h>

#include <cmath>

#include "model/presets.h"

namespace baton {
namespace {

ModelConfig preset(const std::string& name) {
  Result<ModelPreset> p = find_model_preset(name);
  EXPECT_TRUE(p.is_ok()) << p.status().to_string();
  return p.is_ok() ? p->config : ModelConfig{};
}

TEST(MoeExchange, RankHitProbability) {
  EXPECT_DOUBLE_EQ(probability_rank_hit(8, 0, 2), 0.0);
  EXPECT_DOUBLE_EQ(probability_rank_hit(8, 7, 2), 1.0);  // one expert left elsewhere: k=2 must hit
  // 8 experts, rank holds 4, k=2: P(miss) = C(4,2)/C(8,2) = 6/28.
  EXPECT_NEAR(probability_rank_hit(8, 4, 2), 1.0 - 6.0 / 28.0, 1e-12);
}

TEST(MoeExchange, RingCollectivesAndAllToAllOnQwen3) {
  const ModelConfig c = preset("qwen3-235b-a22b");
  ASSERT_EQ(c.num_experts, 128);
  const MoeExchangeBytes one = moe_exchange_bytes(c, 64, 1);
  EXPECT_EQ(one.all_reduce, 0.0);
  EXPECT_EQ(one.all_to_all, 0.0);
  const MoeExchangeBytes b = moe_exchange_bytes(c, 64, 4);
  EXPECT_EQ(b.moe_layers, c.num_layers);  // every layer of Qwen3-235B is MoE
  const double layer = 64.0 * c.hidden_size * 2;
  EXPECT_DOUBLE_EQ(b.all_reduce, c.num_layers * 1.5 * layer);  // 2 (N-1)/N
  EXPECT_DOUBLE_EQ(b.all_gather_reduce_scatter, b.all_reduce);
  // 32 experts a rank, 8 picked of 128: P(miss) = C(96,8)/C(128,8).
  const double miss = std::exp(std::lgamma(97.0) - std::lgamma(89.0) - std::lgamma(129.0) + std::lgamma(121.0));
  EXPECT_NEAR(b.remote_ranks_per_token, 3.0 * (1.0 - miss), 1e-9);
  EXPECT_NEAR(b.all_to_all, c.num_layers * 2.0 * b.remote_ranks_per_token * layer / 4, 1e-3);
  EXPECT_LT(b.all_to_all, b.all_reduce);
  // Bytes scale with the step's tokens.
  EXPECT_DOUBLE_EQ(moe_exchange_bytes(c, 8192, 4).all_reduce, 128 * b.all_reduce);
}

TEST(MoeExchange, DeepseekGroupsLimitTheRanksATokenReaches) {
  const ModelConfig c = preset("deepseek-v3");
  ASSERT_EQ(c.deepseek_moe.n_group, 8);
  ASSERT_EQ(c.deepseek_moe.topk_group, 4);
  const MoeExchangeBytes b = moe_exchange_bytes(c, 128, 8);
  EXPECT_EQ(b.moe_layers, c.num_layers - c.deepseek_moe.first_k_dense_replace);
  // At N = 8 a rank is one group: a token reaches at most topk_group ranks,
  // so at most 3 others (plus its own group when chosen) — fewer than uniform routing's.
  EXPECT_LE(b.remote_ranks_per_token, 4.0);
  ModelConfig ungrouped = c;
  ungrouped.deepseek_moe.n_group = 1;
  ungrouped.deepseek_moe.topk_group = 1;
  EXPECT_LT(b.remote_ranks_per_token, moe_exchange_bytes(ungrouped, 128, 8).remote_ranks_per_token);
  // Half the groups chosen, each the rank's with P 1/2; given its group, P(hit) = 1 - C(96,8)/C(128,8).
  const double miss = std::exp(std::lgamma(97.0) - std::lgamma(89.0) - std::lgamma(129.0) + std::lgamma(121.0));
  EXPECT_NEAR(b.remote_ranks_per_token, 7.0 * 0.5 * (1.0 - miss), 1e-9);
}

TEST(MoeExchange, DenseModelsMoveNothing) {
  const MoeExchangeBytes b = moe_exchange_bytes(preset("llama3.1-8b"), 64, 4);
  EXPECT_EQ(b.moe_layers, 0);
  EXPECT_EQ(b.all_reduce, 0.0);
  EXPECT_EQ(b.all_to_all, 0.0);
}

}  // namespace
}  // namespace baton
