// TpShard: the tensor-parallel sharding rules (heads, KV heads split or
// replicated, intermediate slices, padded vocabulary) and the refusals that
// name what cannot be split.
#include "model/tp_shard.h"

#include <gtest/gtest.h>

#include <string>

namespace baton {
namespace {

ModelConfig dense(int heads, int kv_heads) {
  ModelConfig c;
  c.arch = Arch::kLlama;
  c.vocab_size = 1001;
  c.hidden_size = 64;
  c.intermediate_size = 96;
  c.num_layers = 2;
  c.num_heads = heads;
  c.num_kv_heads = kv_heads;
  c.head_dim = 16;
  return c;
}

void expect_refused(const ModelConfig& c, int tp, const std::string& needle) {
  Status st = check_tensor_parallel(c, tp);
  ASSERT_FALSE(st.is_ok()) << "expected TP=" << tp << " to be refused";
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find(needle), std::string::npos) << st.to_string();
}

TEST(TpShard, SplitsHeadsKvHeadsAndIntermediate) {
  const ModelConfig c = dense(8, 4);
  for (int r = 0; r < 2; ++r) {
    Result<TpShard> s = TpShard::make(c, r, 2);
    ASSERT_TRUE(s.is_ok()) << s.status().to_string();
    EXPECT_EQ(s->num_heads, 4);
    EXPECT_EQ(s->head_begin, 4 * r);
    EXPECT_EQ(s->num_kv_heads, 2);
    EXPECT_EQ(s->kv_head_begin, 2 * r);
    EXPECT_EQ(s->kv_head_replicas, 1);
    EXPECT_EQ(s->intermediate_size, 48);
    EXPECT_EQ(s->intermediate_begin, 48 * r);
    const ModelConfig rc = s->rank_config(c);
    EXPECT_EQ(rc.num_heads, 4);
    EXPECT_EQ(rc.num_kv_heads, 2);
    EXPECT_EQ(rc.intermediate_size, 48);
    EXPECT_EQ(rc.vocab_size, c.vocab_size);
    EXPECT_EQ(rc.hidden_size, c.hidden_size);
  }
}

// More ranks than KV heads: each rank keeps the one KV head its query heads
// read (rank r's queries are heads 2r, 2r+1 of 16; KV head = query head / 4).
TEST(TpShard, ReplicatesKvHeadsWhenRanksOutnumberThem) {
  const ModelConfig c = dense(16, 2);
  for (int r = 0; r < 8; ++r) {
    Result<TpShard> s = TpShard::make(c, r, 8);
    ASSERT_TRUE(s.is_ok()) << s.status().to_string();
    EXPECT_EQ(s->num_heads, 2);
    EXPECT_EQ(s->num_kv_heads, 1);
    EXPECT_EQ(s->kv_head_replicas, 4);
    EXPECT_EQ(s->kv_head_begin, s->head_begin / (c.num_heads / c.num_kv_heads)) << "rank " << r;
  }
}

TEST(TpShard, PadsTheVocabularyToEqualSlices) {
  const ModelConfig c = dense(8, 4);  // vocab 1001
  Result<TpShard> last = TpShard::make(c, 3, 4);
  ASSERT_TRUE(last.is_ok());
  EXPECT_EQ(last->vocab_per_rank, 251);
  EXPECT_EQ(last->vocab_begin, 753);
  EXPECT_EQ(last->vocab_count(c), 248);  // 1001 - 753; three rows of padding
  Result<TpShard> first = TpShard::make(c, 0, 4);
  EXPECT_EQ(first->vocab_count(c), 251);
}

TEST(TpShard, RefusesLayoutsNamingWhatCannotSplit) {
  expect_refused(dense(4, 2), 3, "4 attention heads");
  expect_refused(dense(4, 2), 8, "4 attention heads");
  expect_refused(dense(12, 6), 4, "6 KV heads");
  ModelConfig odd_mlp = dense(8, 8);
  odd_mlp.intermediate_size = 90;
  expect_refused(odd_mlp, 4, "intermediate_size 90");
  expect_refused(dense(8, 4), 0, "at least 1");
  EXPECT_TRUE(check_tensor_parallel(dense(12, 6), 3).is_ok());
  EXPECT_TRUE(check_tensor_parallel(dense(4, 1), 4).is_ok());  // MQA: one KV head on every rank
}

TEST(TpShard, MlaKeepsTheLatentWholeOnEveryRank) {
  ModelConfig c = dense(4, 4);
  c.arch = Arch::kDeepseekV3;
  c.mla.kv_lora_rank = 32;
  c.mla.qk_rope_head_dim = 8;
  c.num_experts = 8;
  c.num_experts_per_tok = 2;
  c.moe_intermediate_size = 32;
  Result<TpShard> s = TpShard::make(c, 1, 4);
  ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  EXPECT_EQ(s->num_heads, 1);
  EXPECT_EQ(s->head_begin, 1);
  EXPECT_EQ(s->kv_head_replicas, 4);
  EXPECT_EQ(s->moe_intermediate_size, 8);
  EXPECT_EQ(s->moe_intermediate_begin, 8);
  EXPECT_EQ(s->rank_config(c).num_kv_heads, 1);  // as many as its query heads
  c.moe_intermediate_size = 30;
  expect_refused(c, 4, "moe_intermediate_size 30");
}

ModelConfig qwen3_moe(int experts) {
  ModelConfig c = dense(4, 2);
  c.arch = Arch::kQwen3Moe;
  c.num_experts = experts;
  c.num_experts_per_tok = 2;
  c.moe_intermediate_size = 32;
  return c;
}

TEST(TpShard, ExpertParallelHoldsWholeExpertsOfItsRun) {
  const ModelConfig c = qwen3_moe(8);
  for (int r = 0; r < 4; ++r) {
    Result<TpShard> s = TpShard::make(c, r, 4, /*expert_parallel=*/true);
    ASSERT_TRUE(s.is_ok()) << s.status().to_string();
    EXPECT_TRUE(s->expert_parallel);
    EXPECT_EQ(s->expert_begin, 2 * r);
    EXPECT_EQ(s->num_local_experts, 2);
    EXPECT_TRUE(s->holds_expert(2 * r + 1));
    EXPECT_FALSE(s->holds_expert((2 * r + 2) % 8));
    EXPECT_EQ(s->moe_intermediate_size, 32);  // whole experts
    EXPECT_EQ(s->moe_intermediate_begin, 0);
    EXPECT_EQ(s->rank_config(c).moe_intermediate_size, 32);
    EXPECT_EQ(s->rank_config(c).num_experts, 8);  // the router still scores every expert
    EXPECT_EQ(s->num_heads, 1);                   // attention stays tensor-parallel
  }
  Result<TpShard> tp = TpShard::make(c, 1, 4);  // without the flag: every expert, sliced
  ASSERT_TRUE(tp.is_ok());
  EXPECT_FALSE(tp->expert_parallel);
  EXPECT_EQ(tp->expert_begin, 0);
  EXPECT_EQ(tp->num_local_experts, 8);
  EXPECT_EQ(tp->moe_intermediate_size, 8);
}

TEST(TpShard, ExpertParallelKeepsSharedExpertsTensorParallel) {
  ModelConfig c = qwen3_moe(8);
  c.arch = Arch::kDeepseekV3;
  c.deepseek_moe.n_shared_experts = 2;
  Result<TpShard> s = TpShard::make(c, 3, 4, true);
  ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  EXPECT_EQ(s->shared_intermediate_size, 2 * 32 / 4);
  EXPECT_EQ(s->shared_intermediate_begin, 3 * 16);
  EXPECT_EQ(s->expert_begin, 6);
  // The moe_intermediate_size need not divide: experts are whole.
  c.moe_intermediate_size = 30;
  c.deepseek_moe.n_shared_experts = 0;
  EXPECT_TRUE(check_tensor_parallel(c, 4, true).is_ok());
  EXPECT_FALSE(check_tensor_parallel(c, 4, false).is_ok());
}

TEST(TpShard, ExpertParallelRefusesAnExpertCountTheRanksDoNotDivide) {
  const ModelConfig c = qwen3_moe(6);
  Status st = check_tensor_parallel(c, 4, true);
  ASSERT_FALSE(st.is_ok());
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("--enable-expert-parallel"), std::string::npos) << st.to_string();
  EXPECT_NE(st.message().find("6 experts"), std::string::npos) << st.to_string();
  EXPECT_NE(st.message().find("6 % 4 = 2"), std::string::npos) << st.to_string();
  EXPECT_TRUE(check_tensor_parallel(c, 2, true).is_ok());
  // A dense model ignores the flag, as vLLM does.
  EXPECT_TRUE(check_tensor_parallel(dense(4, 2), 4, true).is_ok());
  EXPECT_FALSE(TpShard::make(dense(4, 2), 0, 4, true)->expert_parallel);
}

}  // namespace
}  // namespace baton
