#include "model/model_config.h"

#include <gtest/gtest.h>

#include <string>

namespace baton {
namespace {

std::string fixture_config(const std::string& model) {
  return std::string(BATON_TEST_DATA) + "/fixtures/models/" + model + "/config.json";
}

Json base_json() {
  return Json::parse(R"({
    "model_type": "llama", "vocab_size": 100, "hidden_size": 64, "intermediate_size": 128,
    "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
    "max_position_embeddings": 512, "rms_norm_eps": 1e-5, "rope_theta": 10000.0})");
}

void expect_error(const Json& j, const std::string& needle) {
  auto r = ModelConfig::from_json(j);
  ASSERT_FALSE(r.is_ok()) << "expected an error mentioning '" << needle << "'";
  EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().to_string();
}

TEST(ModelConfigTest, ParsesLlamaFixture) {
  auto r = ModelConfig::from_file(fixture_config("llama3-tiny"));
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  const ModelConfig& c = *r;
  EXPECT_EQ(c.arch, Arch::kLlama);
  EXPECT_EQ(c.vocab_size, 512);
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.intermediate_size, 176);
  EXPECT_EQ(c.num_layers, 2);
  EXPECT_EQ(c.num_heads, 4);
  EXPECT_EQ(c.num_kv_heads, 2);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(c.rope_theta, 500000.0);
  ASSERT_TRUE(c.rope_scaling.has_value());
  EXPECT_EQ(c.rope_scaling->rope_type, "llama3");
  EXPECT_DOUBLE_EQ(c.rope_scaling->factor, 8.0);
  EXPECT_DOUBLE_EQ(c.rope_scaling->low_freq_factor, 1.0);
  EXPECT_DOUBLE_EQ(c.rope_scaling->high_freq_factor, 4.0);
  EXPECT_EQ(c.rope_scaling->original_max_position_embeddings, 64);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_FALSE(c.qk_norm);
  EXPECT_EQ(c.torch_dtype, DType::kF32);
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_EQ(c.eos_token_ids, std::vector<int>({2}));
  EXPECT_FALSE(c.is_moe());
  EXPECT_FALSE(c.is_moe_layer(0));
}

TEST(ModelConfigTest, ParsesQwen2Fixture) {
  auto r = ModelConfig::from_file(fixture_config("qwen2-tiny"));
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->arch, Arch::kQwen2);
  EXPECT_EQ(r->head_dim, 16);  // hidden / heads: no explicit head_dim
  EXPECT_TRUE(r->qkv_bias);
  EXPECT_FALSE(r->qk_norm);
  EXPECT_TRUE(r->tie_word_embeddings);
  EXPECT_FALSE(r->rope_scaling.has_value());
  EXPECT_DOUBLE_EQ(r->rope_theta, 1e6);
  EXPECT_EQ(r->intermediate_size, 160);
}

TEST(ModelConfigTest, ParsesQwen3Fixture) {
  auto r = ModelConfig::from_file(fixture_config("qwen3-tiny"));
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->arch, Arch::kQwen3);
  EXPECT_EQ(r->num_layers, 3);
  EXPECT_EQ(r->head_dim, 32);  // explicit, != hidden / heads
  EXPECT_EQ(r->q_size(), 128);
  EXPECT_EQ(r->kv_size(), 64);
  EXPECT_TRUE(r->qk_norm);
  EXPECT_FALSE(r->qkv_bias);
  EXPECT_EQ(r->torch_dtype, DType::kBF16);
}

TEST(ModelConfigTest, ParsesQwen3MoeFixture) {
  auto r = ModelConfig::from_file(fixture_config("qwen3-moe-tiny"));
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->arch, Arch::kQwen3Moe);
  EXPECT_TRUE(r->qk_norm);
  EXPECT_EQ(r->num_experts, 8);
  EXPECT_EQ(r->num_experts_per_tok, 2);
  EXPECT_EQ(r->moe_intermediate_size, 32);
  EXPECT_TRUE(r->norm_topk_prob);
  EXPECT_EQ(r->decoder_sparse_step, 1);
  EXPECT_TRUE(r->mlp_only_layers.empty());
  EXPECT_TRUE(r->is_moe_layer(0));
  EXPECT_TRUE(r->is_moe_layer(1));
}

TEST(ModelConfigTest, SparseLayerRuleFollowsHf) {
  Json j = base_json();
  j["model_type"] = "qwen3_moe";
  j["num_hidden_layers"] = 6;
  j["num_experts"] = 4;
  j["num_experts_per_tok"] = 2;
  j["moe_intermediate_size"] = 16;
  j["decoder_sparse_step"] = 2;
  j["mlp_only_layers"] = {3};
  auto r = ModelConfig::from_json(j);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  // sparse iff not in mlp_only_layers and (i + 1) % step == 0
  std::vector<bool> expected = {false, true, false, false, false, true};
  for (int i = 0; i < 6; ++i) EXPECT_EQ(r->is_moe_layer(i), expected[i]) << "layer " << i;
}

TEST(ModelConfigTest, EosAsListAndDtypeAlias) {
  Json j = base_json();
  j["eos_token_id"] = {128001, 128008, 128009};
  j["dtype"] = "float16";
  auto r = ModelConfig::from_json(j);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->eos_token_ids, std::vector<int>({128001, 128008, 128009}));
  EXPECT_EQ(r->torch_dtype, DType::kF16);
}

TEST(ModelConfigTest, RopeScalingTypeAliasAndDefault) {
  Json j = base_json();
  j["rope_scaling"] = {{"type", "llama3"}, {"factor", 32.0}, {"original_max_position_embeddings", 8192}};
  auto r = ModelConfig::from_json(j);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  ASSERT_TRUE(r->rope_scaling.has_value());
  EXPECT_DOUBLE_EQ(r->rope_scaling->factor, 32.0);
  j["rope_scaling"] = {{"rope_type", "default"}};
  r = ModelConfig::from_json(j);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_FALSE(r->rope_scaling.has_value());
}

TEST(ModelConfigTest, AcceptsTransformersV5RopeParameters) {
  Json j = base_json();
  j.erase("rope_theta");
  j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 1000000.0}};
  auto r = ModelConfig::from_json(j);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_DOUBLE_EQ(r->rope_theta, 1e6);
  EXPECT_FALSE(r->rope_scaling.has_value());
  j["rope_parameters"] = {
      {"rope_type", "llama3"}, {"rope_theta", 500000.0}, {"factor", 8.0}, {"original_max_position_embeddings", 8192}};
  r = ModelConfig::from_json(j);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_DOUBLE_EQ(r->rope_theta, 500000.0);
  ASSERT_TRUE(r->rope_scaling.has_value());
  EXPECT_EQ(r->rope_scaling->original_max_position_embeddings, 8192);
}

TEST(ModelConfigTest, LlamaAttentionBiasAndHeadDimDefault) {
  Json j = base_json();
  j["attention_bias"] = true;
  auto r = ModelConfig::from_json(j);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_TRUE(r->qkv_bias);
  EXPECT_EQ(r->head_dim, 16);
  EXPECT_EQ(r->num_kv_heads, 2);
  j.erase("num_key_value_heads");  // defaults to num_attention_heads
  r = ModelConfig::from_json(j);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->num_kv_heads, 4);
}

TEST(ModelConfigTest, RoundTripsThroughJson) {
  for (const char* m : {"llama3-tiny", "qwen2-tiny", "qwen3-tiny", "qwen3-moe-tiny", "deepseek-v3-tiny"}) {
    auto a = ModelConfig::from_file(fixture_config(m));
    ASSERT_TRUE(a.is_ok()) << m;
    auto b = ModelConfig::from_json(a->to_json());
    ASSERT_TRUE(b.is_ok()) << m << ": " << b.status().to_string();
    EXPECT_EQ(a->to_json(), b->to_json()) << m;
    EXPECT_EQ(b->qkv_bias, a->qkv_bias);
    EXPECT_EQ(b->head_dim, a->head_dim);
  }
}

TEST(ModelConfigTest, UnknownModelTypeNamesItAndListsSupported) {
  Json j = base_json();
  j["model_type"] = "gpt_neox";
  auto r = ModelConfig::from_json(j);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("gpt_neox"), std::string::npos);
  EXPECT_NE(r.status().message().find("qwen3_moe"), std::string::npos);
  Json missing = base_json();
  missing.erase("model_type");
  expect_error(missing, "model_type");
}

TEST(ModelConfigTest, BadFieldsAreNamed) {
  Json j = base_json();
  j["hidden_size"] = 0;
  expect_error(j, "hidden_size");
  j = base_json();
  j["num_key_value_heads"] = 3;
  expect_error(j, "num_key_value_heads");
  j = base_json();
  j["vocab_size"] = "many";
  expect_error(j, "vocab_size");
  j = base_json();
  j.erase("num_hidden_layers");
  expect_error(j, "num_hidden_layers");
  j = base_json();
  j["hidden_size"] = 66;  // not divisible by 4 heads, no head_dim
  expect_error(j, "hidden_size");
  j = base_json();
  j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  expect_error(j, "yarn");
  j = base_json();
  j["torch_dtype"] = "int8";
  expect_error(j, "int8");
  j = base_json();
  j["hidden_act"] = "gelu";
  expect_error(j, "hidden_act");
  j = base_json();
  j["model_type"] = "qwen3_moe";
  j["num_experts"] = 4;
  j["num_experts_per_tok"] = 5;
  j["moe_intermediate_size"] = 16;
  expect_error(j, "num_experts_per_tok");
  j["num_experts_per_tok"] = 2;
  j["mlp_only_layers"] = {7};
  expect_error(j, "mlp_only_layers");
  expect_error(Json::array(), "object");
}

TEST(ModelConfigTest, MissingFileIsNotFound) {
  auto r = ModelConfig::from_file("/nonexistent/config.json");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace baton
