// --load-format dummy (model/dummy_checkpoint.h): random weights from a
// config alone, the same values init-model writes for the same seed, from a
// preset name or a folder holding only config.json.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "common/json.h"
#include "model/dummy_checkpoint.h"
#include "model/presets.h"
#include "model/random_checkpoint.h"
#include "model/weight_names.h"
#include "support/temp_dir.h"

namespace baton {
namespace {

namespace fs = std::filesystem;

using DummyCheckpointTest = testing::TempDirTest;

TEST_F(DummyCheckpointTest, HoldsEveryTensorWithTheBytesInitModelWrites) {
  auto preset = find_model_preset("tiny-qwen3-moe");
  ASSERT_TRUE(preset.is_ok());
  RandomCheckpointOptions opts;
  opts.out_dir = (dir_ / "written").string();
  opts.seed = 11;
  ASSERT_TRUE(write_random_checkpoint(preset->config, opts).is_ok());
  auto written = Checkpoint::open(opts.out_dir);
  ASSERT_TRUE(written.is_ok()) << written.status().to_string();

  auto dummy = make_dummy_checkpoint(preset->config, "", 11);
  EXPECT_TRUE(validate_weights(*dummy).is_ok());
  EXPECT_EQ(dummy->tensor_names(), (*written)->tensor_names());
  for (const std::string& name : dummy->tensor_names()) {
    auto a = dummy->tensor(name);
    auto b = (*written)->tensor(name);
    ASSERT_TRUE(a.is_ok() && b.is_ok()) << name;
    ASSERT_EQ(a->num_bytes(), b->num_bytes()) << name;
    EXPECT_EQ(std::memcmp(a->data, b->data, a->num_bytes()), 0) << name << " differs from init-model's";
    EXPECT_EQ(a->data, dummy->tensor(name)->data) << name << " made twice";
  }
  auto other_seed = make_dummy_checkpoint(preset->config, "", 12);
  const std::string q = layer_weight_name(0, "self_attn.q_proj.weight");
  EXPECT_NE(std::memcmp(other_seed->tensor(q)->data, dummy->tensor(q)->data, dummy->tensor(q)->num_bytes()), 0);
  EXPECT_FALSE(dummy->tensor("model.nope.weight").is_ok());
  EXPECT_FALSE(dummy->tensor(q, {1, 2}).is_ok());
}

TEST_F(DummyCheckpointTest, ResolvesPresetsAndConfigOnlyFolders) {
  auto big = resolve_dummy_model("qwen3-235b-a22b");  // 470 GB in bf16: nothing is made until asked for
  ASSERT_TRUE(big.is_ok()) << big.status().to_string();
  EXPECT_EQ(big->config.num_experts, 128);
  EXPECT_EQ(big->config.num_layers, 94);
  auto dsv3 = resolve_dummy_model("deepseek-v3");
  ASSERT_TRUE(dsv3.is_ok());
  EXPECT_TRUE(dsv3->config.is_mla());
  auto llama70 = resolve_dummy_model("llama3.1-70b");
  ASSERT_TRUE(llama70.is_ok());
  auto ckpt = make_dummy_checkpoint(llama70->config, llama70->dir);
  EXPECT_EQ(ckpt->tensor_names().size(), expected_weights(llama70->config).size());
  EXPECT_TRUE(ckpt->has("model.layers.79.mlp.down_proj.weight"));

  // A folder with only config.json (and an FP8 quantization_config, dropped: dummy weights are bf16).
  auto preset = find_model_preset("tiny-llama");
  ASSERT_TRUE(preset.is_ok());
  Json config = preset->config.to_json();
  config["quantization_config"] = Fp8Quantization().to_json();
  ASSERT_TRUE(write_file((dir_ / "config.json").string(), config.dump()).is_ok());
  auto folder = resolve_dummy_model(dir_.string());
  ASSERT_TRUE(folder.is_ok()) << folder.status().to_string();
  EXPECT_EQ(folder->dir, dir_.string());
  auto from_folder = make_dummy_checkpoint(folder->config, folder->dir);
  EXPECT_FALSE(from_folder->config().quantization.has_value());
  auto t = from_folder->tensor(layer_weight_name(1, "mlp.up_proj.weight"));
  ASSERT_TRUE(t.is_ok());
  EXPECT_EQ(t->dtype, DType::kBF16);

  auto missing = resolve_dummy_model("llama9-1t");
  ASSERT_FALSE(missing.is_ok());
  EXPECT_NE(missing.status().message().find("neither a model folder nor a preset"), std::string::npos);
}

}  // namespace
}  // namespace baton
