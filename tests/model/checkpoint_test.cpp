#include "model/checkpoint.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "model/weight_names.h"

namespace baton {
namespace {

std::string fixture_dir(const std::string& model) {
  return std::string(BATON_TEST_DATA) + "/fixtures/models/" + model;
}

class FixtureCheckpointTest : public ::testing::TestWithParam<std::string> {};

TEST_P(FixtureCheckpointTest, OpensWithEveryExpectedTensor) {
  auto r = Checkpoint::open(fixture_dir(GetParam()));
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  const Checkpoint& ckpt = **r;
  Status st = validate_weights(ckpt);
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  const auto expected = expected_weights(ckpt.config());
  EXPECT_EQ(ckpt.tensor_names().size(), expected.size());
  // Norm weights are finite and the embedding is not all zeros.
  auto emb = ckpt.tensor("model.embed_tokens.weight",
                         {ckpt.config().vocab_size, ckpt.config().hidden_size});
  ASSERT_TRUE(emb.is_ok()) << emb.status().to_string();
  EXPECT_EQ(emb->dtype, ckpt.config().torch_dtype);
  std::vector<float> v = emb->to_float();
  double sum_sq = 0;
  for (float x : v) {
    ASSERT_TRUE(std::isfinite(x));
    sum_sq += x * x;
  }
  EXPECT_GT(sum_sq, 0.0);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, FixtureCheckpointTest,
                         ::testing::Values("llama3-tiny", "qwen2-tiny", "qwen3-tiny", "qwen3-moe-tiny"));

TEST(CheckpointTest, MissingTensorIsNotFoundNamingIt) {
  auto r = Checkpoint::open(fixture_dir("qwen3-tiny"));
  ASSERT_TRUE(r.is_ok());
  auto t = (*r)->tensor("model.layers.9.self_attn.q_proj.weight");
  ASSERT_FALSE(t.is_ok());
  EXPECT_EQ(t.status().code(), StatusCode::kNotFound);
  EXPECT_NE(t.status().message().find("model.layers.9.self_attn.q_proj.weight"), std::string::npos);
  EXPECT_FALSE((*r)->has("model.layers.9.self_attn.q_proj.weight"));
}

TEST(CheckpointTest, WrongShapeNamesExpectedAndActual) {
  auto r = Checkpoint::open(fixture_dir("qwen3-tiny"));
  ASSERT_TRUE(r.is_ok());
  auto t = (*r)->tensor("model.norm.weight", {32});
  ASSERT_FALSE(t.is_ok());
  EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument);
  const std::string& msg = t.status().message();
  EXPECT_NE(msg.find("model.norm.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[64]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[32]"), std::string::npos) << msg;
  EXPECT_TRUE((*r)->tensor("model.norm.weight", {64}).is_ok());
}

TEST(CheckpointTest, MissingFolderAndConfigAreClear) {
  auto r = Checkpoint::open("/nonexistent/baton-model");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("/nonexistent/baton-model"), std::string::npos);
  r = Checkpoint::open(BATON_TEST_DATA);  // a folder without config.json
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("config.json"), std::string::npos);
}

}  // namespace
}  // namespace baton
