// `baton init-model`: the CLI writes a random checkpoint that loads, and
// refuses a preset that does not match the architecture asked for.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include <fmt/format.h>

#include "common/json.h"
#include "model/checkpoint.h"
#include "model/weight_names.h"

namespace baton {
namespace {

namespace fs = std::filesystem;

class InitModelCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / fmt::format("baton_init_model_{}_{}", getpid(),
                                                   ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

std::string file_bytes(const std::string& p) {
  auto r = read_file(p);
  EXPECT_TRUE(r.is_ok()) << p;
  return r.is_ok() ? *r : std::string();
}

TEST_F(InitModelCommandTest, CliWritesALoadableCheckpoint) {
  ASSERT_TRUE(fs::exists(BATON_BINARY)) << "baton binary not built: " << BATON_BINARY;
  const std::string out = path("cli");
  const std::string cmd = fmt::format(
      "'{}' init-model --arch llama --preset tiny-llama --out '{}' --seed 3 > '{}' 2>&1", BATON_BINARY, out,
      path("log"));
  ASSERT_EQ(std::system(cmd.c_str()), 0) << file_bytes(path("log"));
  auto ckpt = Checkpoint::open(out);
  ASSERT_TRUE(ckpt.is_ok()) << ckpt.status().to_string();
  EXPECT_EQ((*ckpt)->config().arch, Arch::kLlama);
  EXPECT_TRUE(validate_weights(**ckpt).is_ok());
  // The llama preset gets the Llama-3 tokenizer by default.
  auto tok = read_json_file(out + "/tokenizer_config.json");
  ASSERT_TRUE(tok.is_ok());
  EXPECT_NE(tok->dump().find("begin_of_text"), std::string::npos);
}

TEST_F(InitModelCommandTest, CliRefusesAPresetOfAnotherArchitecture) {
  ASSERT_TRUE(fs::exists(BATON_BINARY)) << "baton binary not built: " << BATON_BINARY;
  const std::string bad = fmt::format("'{}' init-model --arch qwen3 --preset tiny-llama --out '{}' > '{}' 2>&1",
                                      BATON_BINARY, path("bad"), path("log"));
  EXPECT_NE(std::system(bad.c_str()), 0);
  EXPECT_NE(file_bytes(path("log")).find("does not match"), std::string::npos);
}

// Finding 1 and 8 of issue 22: a checkpoint made here says it is random (a
// marker that generate reads), a tiny preset's size is not "0.000B", and a
// tiny preset says it takes token ids.
TEST_F(InitModelCommandTest, MarksRandomWeightsCountsInUnitsAndSaysTinyTakesTokenIds) {
  const std::string out = path("tiny");
  const std::string cmd = fmt::format("'{}' init-model --preset tiny-qwen3 --out '{}' > '{}' 2>&1", BATON_BINARY, out,
                                      path("log"));
  ASSERT_EQ(std::system(cmd.c_str()), 0) << file_bytes(path("log"));
  const std::string log = file_bytes(path("log"));
  EXPECT_EQ(log.find("0.000B"), std::string::npos) << log;
  EXPECT_NE(log.find("K parameters"), std::string::npos) << log;
  EXPECT_NE(log.find("weights are random"), std::string::npos) << log;
  EXPECT_NE(log.find("--prompt-ids"), std::string::npos) << log;
  auto marker = read_json_file(out + "/random-weights.json");
  ASSERT_TRUE(marker.is_ok()) << marker.status().to_string();
  EXPECT_EQ((*marker)["preset"], "tiny-qwen3");
  EXPECT_EQ((*marker)["written_by"], "baton init-model");
  // generate on it says the weights are random, and that text needs ids here.
  const std::string gen = fmt::format("'{}' generate --model '{}' --prompt 'Hello' --max-tokens 2 > '{}' 2>&1",
                                      BATON_BINARY, out, path("gen.log"));
  EXPECT_NE(std::system(gen.c_str()), 0);
  const std::string gen_log = file_bytes(path("gen.log"));
  EXPECT_NE(gen_log.find("holds RANDOM weights"), std::string::npos) << gen_log;
  EXPECT_NE(gen_log.find("give token ids below 512 with --prompt-ids"), std::string::npos) << gen_log;
}

// The 8B preset's size is said before 16 GB are written; --dry-run writes nothing.
TEST_F(InitModelCommandTest, DryRunSaysTheSizeAndWritesNothing) {
  const std::string out = path("big");
  const std::string cmd = fmt::format("'{}' init-model --preset llama3.1-8b --out '{}' --dry-run > '{}' 2>&1",
                                      BATON_BINARY, out, path("log"));
  ASSERT_EQ(std::system(cmd.c_str()), 0) << file_bytes(path("log"));
  const std::string log = file_bytes(path("log"));
  EXPECT_NE(log.find("8.03B parameters, 16.06 GB of weights"), std::string::npos) << log;
  EXPECT_NE(log.find("GB free there"), std::string::npos) << log;
  EXPECT_FALSE(fs::exists(out));
}

// --quantize: a preset's random weights and an existing bf16 checkpoint
// (--from) are written as FP8 checkpoints that load; generate runs on one;
// the dry run of the 8B preset in fp8-block counts about half the bytes.
TEST_F(InitModelCommandTest, QuantizeWritesFp8CheckpointsThatLoadAndRun) {
  const std::string random_fp8 = path("random_fp8");
  std::string cmd = fmt::format("'{}' init-model --preset tiny-qwen3 --quantize fp8-tensor --out '{}' > '{}' 2>&1",
                                BATON_BINARY, random_fp8, path("log"));
  ASSERT_EQ(std::system(cmd.c_str()), 0) << file_bytes(path("log"));
  auto a = Checkpoint::open(random_fp8);
  ASSERT_TRUE(a.is_ok()) << a.status().to_string();
  ASSERT_TRUE((*a)->config().quantization.has_value());
  EXPECT_EQ((*a)->config().quantization->scheme, Fp8Scheme::kTensor);
  EXPECT_TRUE(validate_weights(**a).is_ok());

  const std::string fixture = std::string(BATON_TEST_DATA) + "/fixtures/models/llama3-tiny";
  const std::string from_fp8 = path("from_fp8");
  cmd = fmt::format("'{}' init-model --from '{}' --quantize fp8-block --out '{}' > '{}' 2>&1", BATON_BINARY, fixture,
                    from_fp8, path("log"));
  ASSERT_EQ(std::system(cmd.c_str()), 0) << file_bytes(path("log"));
  EXPECT_NE(file_bytes(path("log")).find("Linear weights in FP8"), std::string::npos) << file_bytes(path("log"));
  auto config = read_json_file(from_fp8 + "/config.json");
  ASSERT_TRUE(config.is_ok());
  EXPECT_EQ((*config)["quantization_config"]["weight_block_size"], Json::array({128, 128}));
  EXPECT_EQ((*config)["quantization_config"]["fmt"], "e4m3");
  const std::string gen = fmt::format("'{}' generate --model '{}' --prompt-ids 1,5,9 --max-tokens 3 > '{}' 2>&1",
                                      BATON_BINARY, from_fp8, path("gen.log"));
  EXPECT_EQ(std::system(gen.c_str()), 0) << file_bytes(path("gen.log"));

  cmd = fmt::format("'{}' init-model --from '{}' --out '{}' > '{}' 2>&1", BATON_BINARY, fixture, path("x"),
                    path("log"));
  EXPECT_NE(std::system(cmd.c_str()), 0);
  EXPECT_NE(file_bytes(path("log")).find("needs --quantize"), std::string::npos) << file_bytes(path("log"));
  cmd = fmt::format("'{}' init-model --preset tiny-qwen3 --quantize int4 --out '{}' > '{}' 2>&1", BATON_BINARY,
                    path("y"), path("log"));
  EXPECT_NE(std::system(cmd.c_str()), 0);
  EXPECT_NE(file_bytes(path("log")).find("fp8-block or fp8-tensor"), std::string::npos) << file_bytes(path("log"));

  cmd = fmt::format("'{}' init-model --preset llama3.1-8b --quantize fp8-block --out '{}' --dry-run > '{}' 2>&1",
                    BATON_BINARY, path("big"), path("log"));
  ASSERT_EQ(std::system(cmd.c_str()), 0) << file_bytes(path("log"));
  EXPECT_NE(file_bytes(path("log")).find("8.03B parameters, 9.0"), std::string::npos) << file_bytes(path("log"));
}

}  // namespace
}  // namespace baton
