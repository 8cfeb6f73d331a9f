#include "model/checkpoint.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "model/weight_names.h"

namespace baton {
namespace {

std::string fixture_dir(const std::string& model) { return std::string(BATON_TEST_DATA) + "/fixtures/models/" + model; }

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
  auto emb = ckpt.tensor("model.embed_tokens.weight", {ckpt.config().vocab_size, ckpt.config().hidden_size});
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
                         ::testing::Values("llama3-tiny", "qwen2-tiny", "qwen3-tiny", "qwen3-moe-tiny",
                                           "deepseek-v3-tiny"));

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

TEST(CheckpointTest, GenerationConfigEosIdsAreAdded) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("baton-genconfig-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (const char* f : {"config.json", "model.safetensors"})
    fs::copy_file(fixture_dir("qwen3-tiny") + "/" + f, dir / f);
  {
    std::ofstream(dir / "generation_config.json") << R"({"eos_token_id": [2, 7], "temperature": 0.6})";
    auto r = Checkpoint::open(dir.string());
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    EXPECT_EQ((*r)->config().eos_token_ids, (std::vector<int>{2, 7}));  // 2 from config.json, 7 added
  }
  {
    std::ofstream(dir / "generation_config.json") << R"({"eos_token_id": "two"})";
    auto r = Checkpoint::open(dir.string());
    ASSERT_FALSE(r.is_ok());
    EXPECT_NE(r.status().message().find("generation_config.json"), std::string::npos) << r.status().message();
  }
  {
    std::ofstream(dir / "generation_config.json") << "{broken";
    auto r = Checkpoint::open(dir.string());
    ASSERT_FALSE(r.is_ok());
    EXPECT_NE(r.status().message().find("generation_config.json"), std::string::npos) << r.status().message();
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace baton
