// Self-consistency of the CPU backend on random checkpoints of every tiny
// preset (including qwen3_moe with a dense layer among sparse ones): a prompt
// fed whole, in chunks, or token by token gives the same logits bit for bit,
// whatever the thread count and whatever else shares the batch.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "backend/cpu/cpu_backend.h"
#include "backend/fixture_models.h"
#include "backend/step_builder.h"
#include "model/checkpoint.h"
#include "model/presets.h"
#include "model/random_checkpoint.h"

namespace baton {
namespace {

namespace fs = std::filesystem;
using testing::TestSeq;
constexpr int kBlockSize = 8;
constexpr int kPromptLen = 37;

class CpuConsistency : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() /
            ("baton_cpu_consistency_" + GetParam() + "_" + std::to_string(std::random_device{}())))
               .string();
    Result<ModelPreset> preset = find_model_preset(GetParam());
    ASSERT_TRUE(preset.is_ok()) << preset.status().to_string();
    RandomCheckpointOptions options;
    options.out_dir = dir_;
    options.seed = 5;
    options.num_threads = 1;
    options.initializer_range = 0.2;  // big enough that logits are far from uniform
    auto st = write_random_checkpoint(preset->config, options);
    ASSERT_TRUE(st.is_ok()) << st.status().to_string();
    auto ckpt = Checkpoint::open(dir_);
    ASSERT_TRUE(ckpt.is_ok()) << ckpt.status().to_string();
    ckpt_ = std::move(ckpt).value();
    std::mt19937 rng(9);
    std::uniform_int_distribution<int32_t> tok(0, ckpt_->config().vocab_size - 1);
    for (int i = 0; i < kPromptLen; ++i) prompt_.push_back(tok(rng));
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<CpuBackend> make(int num_threads) {
    auto b = CpuBackend::create(*ckpt_, BackendOptions{.num_threads = num_threads});
    EXPECT_TRUE(b.is_ok()) << b.status().to_string();
    if (!b.is_ok()) return nullptr;
    EXPECT_TRUE((*b)->init_kv_cache(64, kBlockSize).is_ok());
    return std::move(b).value();
  }

  // Logits at every prompt position, feeding `chunk` tokens per step
  // (alongside an unrelated sequence when `with_neighbour`).
  std::vector<float> run(CpuBackend& b, int chunk, bool with_neighbour) {
    std::vector<TestSeq> seqs(with_neighbour ? 2 : 1);
    seqs[0].tokens = prompt_;
    seqs[0].blocks = {17, 3, 40, 8, 22, 9};  // 48 slots >= 37
    seqs[0].params.temperature = 0.0f;
    if (with_neighbour) {
      seqs[1].tokens.assign(prompt_.rbegin(), prompt_.rend());
      seqs[1].blocks = {1, 2, 4, 5, 6, 7};
      seqs[1].params.temperature = 0.0f;
    }
    const int vocab = b.model_config().vocab_size;
    std::vector<float> logits;
    while (seqs[0].num_computed < kPromptLen) {
      std::vector<int> chunks;
      for (auto& s : seqs) chunks.push_back(std::min<int>(chunk, static_cast<int>(prompt_.size()) - s.num_computed));
      StepInput in = testing::build_step(seqs, chunks, kBlockSize);
      Result<std::vector<float>> all = b.forward_all_logits(in);
      EXPECT_TRUE(all.is_ok()) << all.status().to_string();
      if (!all.is_ok()) return {};
      logits.insert(logits.end(), all->begin(), all->begin() + static_cast<int64_t>(chunks[0]) * vocab);
      for (size_t i = 0; i < seqs.size(); ++i) seqs[i].num_computed += chunks[i];
    }
    return logits;  // [kPromptLen, vocab]
  }

  std::string dir_;
  std::unique_ptr<Checkpoint> ckpt_;
  std::vector<int32_t> prompt_;
};

TEST_P(CpuConsistency, SameLogitsWhateverTheChunkingThreadsAndBatch) {
  auto one = make(1);
  auto three = make(3);
  ASSERT_NE(one, nullptr);
  ASSERT_NE(three, nullptr);
  const std::vector<float> whole = run(*one, kPromptLen, false);
  ASSERT_EQ(whole.size(), static_cast<size_t>(kPromptLen) * one->model_config().vocab_size);
  float spread = 0.0f;
  for (float x : whole) spread = std::max(spread, std::abs(x));
  EXPECT_GT(spread, 0.1f);  // the model says something
  EXPECT_EQ(run(*three, kPromptLen, false), whole) << "thread count changed the logits";
  EXPECT_EQ(run(*one, 1, false), whole) << "token-by-token decode differs from one prefill";
  EXPECT_EQ(run(*three, 5, false), whole) << "chunked prefill differs";
  EXPECT_EQ(run(*three, 6, true), whole) << "a neighbouring sequence changed the logits";
}

INSTANTIATE_TEST_SUITE_P(Presets, CpuConsistency,
                         ::testing::Values("tiny-llama", "tiny-qwen2", "tiny-qwen3", "tiny-qwen3-moe",
                                           "tiny-deepseek-v3"),
                         testing::model_param_name);

}  // namespace
}  // namespace baton
