// deepseek_v3 config.json: the MLA and DeepSeekMoE fields, yarn, the weight
// list, and the refusal (naming the field) of what baton does not implement.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "model/model_config.h"
#include "model/presets.h"
#include "model/weight_names.h"

namespace baton {
namespace {

Json fixture_json() {
  Result<Json> j = read_json_file(std::string(BATON_TEST_DATA) + "/fixtures/models/deepseek-v3-tiny/config.json");
  EXPECT_TRUE(j.is_ok()) << j.status().to_string();
  return j.is_ok() ? *j : Json::object();
}

void expect_error(const Json& j, const std::string& needle) {
  auto r = ModelConfig::from_json(j);
  ASSERT_FALSE(r.is_ok()) << "expected an error mentioning '" << needle << "'";
  EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().to_string();
}

TEST(DeepseekConfig, ParsesTheFixture) {
  auto r = ModelConfig::from_json(fixture_json());
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  const ModelConfig& c = *r;
  EXPECT_EQ(c.arch, Arch::kDeepseekV3);
  EXPECT_TRUE(c.is_mla());
  EXPECT_EQ(c.mla.q_lora_rank, 48);
  EXPECT_EQ(c.mla.kv_lora_rank, 32);
  EXPECT_EQ(c.mla.qk_nope_head_dim, 16);
  EXPECT_EQ(c.mla.qk_rope_head_dim, 8);
  EXPECT_EQ(c.mla.v_head_dim, 16);
  EXPECT_TRUE(c.mla.rope_interleave);  // HF's default
  EXPECT_EQ(c.mla.latent_dim(), 40);
  EXPECT_EQ(c.head_dim, 8);  // the rotary dim, as HF sets it
  EXPECT_EQ(c.num_experts, 8);
  EXPECT_EQ(c.num_experts_per_tok, 2);
  EXPECT_EQ(c.moe_intermediate_size, 32);
  EXPECT_TRUE(c.norm_topk_prob);
  EXPECT_EQ(c.deepseek_moe.n_shared_experts, 1);
  EXPECT_EQ(c.deepseek_moe.n_group, 2);
  EXPECT_EQ(c.deepseek_moe.topk_group, 1);
  EXPECT_DOUBLE_EQ(c.deepseek_moe.routed_scaling_factor, 2.5);
  EXPECT_EQ(c.deepseek_moe.first_k_dense_replace, 1);
  EXPECT_FALSE(c.is_moe_layer(0));  // first_k_dense_replace
  EXPECT_TRUE(c.is_moe_layer(1));
  EXPECT_TRUE(c.is_moe_layer(2));
}

TEST(DeepseekConfig, QLoraRankNullAndMoeLayerFreq) {
  Json j = fixture_json();
  j["q_lora_rank"] = nullptr;
  j["moe_layer_freq"] = 2;
  auto r = ModelConfig::from_json(j);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->mla.q_lora_rank, 0);
  EXPECT_FALSE(r->is_moe_layer(1));  // 1 % 2 != 0
  EXPECT_TRUE(r->is_moe_layer(2));
  const auto weights = expected_weights(*r);
  auto has = [&](const std::string& name) {
    return std::any_of(weights.begin(), weights.end(), [&](const WeightSpec& w) { return w.name == name; });
  };
  EXPECT_TRUE(has("model.layers.0.self_attn.q_proj.weight"));
  EXPECT_FALSE(has("model.layers.0.self_attn.q_a_proj.weight"));
  EXPECT_TRUE(has("model.layers.2.mlp.gate.e_score_correction_bias"));
  EXPECT_TRUE(has("model.layers.2.mlp.shared_experts.down_proj.weight"));
  EXPECT_TRUE(has("model.layers.1.mlp.down_proj.weight"));  // dense: not a MoE layer
}

TEST(DeepseekConfig, YarnIsParsedWithItsMscaleTerms) {
  Json j = fixture_json();
  j["max_position_embeddings"] = 163840;
  j["rope_scaling"] = {{"type", "yarn"},
                       {"factor", 40},
                       {"beta_fast", 32},
                       {"beta_slow", 1},
                       {"mscale", 1.0},
                       {"mscale_all_dim", 0.707},
                       {"original_max_position_embeddings", 4096}};
  auto r = ModelConfig::from_json(j);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  ASSERT_TRUE(r->rope_scaling.has_value());
  EXPECT_EQ(r->rope_scaling->rope_type, "yarn");
  EXPECT_DOUBLE_EQ(r->rope_scaling->factor, 40.0);
  EXPECT_DOUBLE_EQ(r->rope_scaling->mscale_all_dim, 0.707);
  EXPECT_EQ(r->rope_scaling->original_max_position_embeddings, 4096);
  j["rope_scaling"].erase("original_max_position_embeddings");  // HF: the model's own context
  r = ModelConfig::from_json(j);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->rope_scaling->original_max_position_embeddings, 163840);
}

TEST(DeepseekConfig, RoundTripsPresetsThroughJson) {
  for (const char* name : {"deepseek-v3", "deepseek-v3-6l", "tiny-deepseek-v3"}) {
    Result<ModelPreset> p = find_model_preset(name);
    ASSERT_TRUE(p.is_ok()) << name;
    auto back = ModelConfig::from_json(p->config.to_json());
    ASSERT_TRUE(back.is_ok()) << name << ": " << back.status().to_string();
    EXPECT_EQ(back->to_json(), p->config.to_json()) << name;
    EXPECT_EQ(back->mla.q_lora_rank, p->config.mla.q_lora_rank) << name;
    EXPECT_EQ(back->rope_scaling->mscale_all_dim, p->config.rope_scaling->mscale_all_dim) << name;
  }
}

TEST(DeepseekConfig, UnsupportedValuesAreRefusedNamingTheField) {
  const std::pair<const char*, Json> cases[] = {
      {"scoring_func", "softmax"}, {"topk_method", "greedy"},    {"n_group", 3},
      {"topk_group", 3},           {"num_experts_per_tok", 5},   {"kv_lora_rank", 0},
      {"qk_rope_head_dim", 7},     {"v_head_dim", -1},           {"q_lora_rank", 0},
      {"attention_bias", true},    {"routed_scaling_factor", 0}, {"first_k_dense_replace", -1},
      {"n_shared_experts", -1},    {"hidden_act", "gelu"},       {"qk_nope_head_dim", "wide"}};
  for (const auto& [field, value] : cases) {
    Json j = fixture_json();
    j[field] = value;
    SCOPED_TRACE(std::string(field) + " = " + value.dump());
    expect_error(j, field);
  }
  Json yarn_llama = Json::parse(R"({
    "model_type": "llama", "vocab_size": 100, "hidden_size": 64, "intermediate_size": 128,
    "num_hidden_layers": 2, "num_attention_heads": 4, "max_position_embeddings": 512,
    "rope_scaling": {"rope_type": "yarn", "factor": 4.0}})");
  expect_error(yarn_llama, "yarn");
  Json bad_yarn = fixture_json();
  bad_yarn["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 0.5}};
  expect_error(bad_yarn, "rope_scaling.factor");
}

}  // namespace
}  // namespace baton
